"""Planning by geography: data-residency rules, region globs that match only real regions, clusters only where
they form, and ties broken by closeness to the data, never by spelling."""

from __future__ import annotations

import pytest
from conftest import NOW, make_offer, make_spec

from arbitrage.errors import SpecError
from arbitrage.jobspec import DataLocation, Work
from arbitrage.planner import (
    R_GEO,
    R_GEO_UNKNOWN,
    R_NO_CLUSTER,
    R_NO_RDMA,
    R_REGION,
    choice_key,
    forms_clusters,
    plan,
)
from arbitrage.specfile import parse_jobspec_text


def vast(region: str, country: str = "", continent: str = "", price: float = 16.0, **kw):
    """An 8xH100 Vast.ai host offer (no fabric between hosts)."""
    base = dict(provider="vast", region=region, instance_type="8x-H100_SXM", on_demand_usd_per_hour=price,
                spot_usd_per_hour=None, interconnect="none", interconnect_gbps=0.0, country=country,
                continent=continent)
    base.update(kw)
    return make_offer(**base)


def lam(region: str, price: float = 24.0, **kw):
    base = dict(provider="lambda", region=region, instance_type="gpu_8x_h100_sxm5", on_demand_usd_per_hour=price,
                spot_usd_per_hour=None, interconnect="ethernet", interconnect_gbps=100.0)
    base.update(kw)
    return make_offer(**base)


# -- Data residency -----------------------------------------------------------------------------------------------

def test_geo_allow_keeps_only_offers_in_the_named_places(facts) -> None:
    de = vast("de", "DE", "europe")
    us = vast("us-texas", "US", "north-america", price=12.0)
    unknown = vast("eu-any", "", "", price=8.0)  # a median with no real place: must never pass by accident
    aws_eu = make_offer(region="eu-central-1", on_demand_usd_per_hour=40.0, spot_usd_per_hour=None)  # located by table
    result = plan(make_spec(geo_allow=("EU",)), [de, us, unknown, aws_eu], facts, NOW)
    assert {c.placement.offer for c in result.placements} == {de, aws_eu}
    assert result.best.placement.offer is de
    assert result.rejections == {R_GEO: 1, R_GEO_UNKNOWN: 1}


@pytest.mark.parametrize(("tokens", "kept"), [
    (("US",), {"us-texas"}), (("europe",), {"de", "ch"}), (("EEA",), {"de"}), (("DE", "CH"), {"de", "ch"}),
    (("north-america", "EU"), {"us-texas", "de"}),
])
def test_geo_tokens_are_countries_continents_or_groups(facts, tokens, kept) -> None:
    offers = [vast("de", "DE", "europe"), vast("ch", "CH", "europe"), vast("us-texas", "US", "north-america")]
    result = plan(make_spec(geo_allow=tokens), offers, facts, NOW)
    assert {c.placement.offer.region for c in result.placements} == kept


def test_geo_deny_rejects_the_named_places_and_unknown_ones(facts) -> None:
    offers = [vast("de", "DE", "europe"), vast("us-texas", "US", "north-america"), vast("eu-any")]
    result = plan(make_spec(geo_deny=("US",)), offers, facts, NOW)
    assert [c.placement.offer.region for c in result.placements] == ["de"]
    assert result.rejections == {R_GEO: 1, R_GEO_UNKNOWN: 1}


def test_a_region_glob_is_not_satisfied_by_a_marketplace_pseudo_region(facts) -> None:
    pseudo = vast("eu-any", "", "europe", price=8.0)  # even with a continent: 'eu-any' is no region
    real = make_offer(region="eu-west-1", on_demand_usd_per_hour=40.0, spot_usd_per_hour=None)
    result = plan(make_spec(regions_allow=("eu-*",)), [pseudo, real], facts, NOW)
    assert [c.placement.offer for c in result.placements] == [real]
    assert result.rejections == {R_REGION: 1}


def test_geo_rules_parse_and_bad_tokens_name_the_line(facts) -> None:
    text = ("name: t\nresources: {accelerators: 'H100:8'}\narbitrage:\n  work: {gpu_hours: 64}\n"
            "  geo: {allow: [EU, us, North America], deny: [CH]}\n")
    spec = parse_jobspec_text(text, facts, "job.yaml")
    assert spec.geo_allow == ("EU", "us", "North America") and spec.geo_deny == ("CH",)
    with pytest.raises(SpecError, match=r"job.yaml:5: arbitrage.geo.allow: unknown place 'Narnia'"):
        parse_jobspec_text(text.replace("North America", "Narnia"), facts, "job.yaml")


# -- Clusters only where they form --------------------------------------------------------------------------------

def test_multi_node_only_on_providers_and_fabrics_that_form_clusters(facts) -> None:
    two_nodes = make_spec(num_nodes=2, work=Work(160.0, "H100"))
    hosts = vast("us-texas", "US", "north-america", price=10.0)
    aws_efa = make_offer(on_demand_usd_per_hour=40.0, spot_usd_per_hour=None)
    aws_lone = make_offer(instance_type="p5.4xlarge", gpus_per_node=8, interconnect="none", interconnect_gbps=0.0,
                          on_demand_usd_per_hour=30.0, spot_usd_per_hour=None)
    lambda_eth = lam("us-east-1", price=20.0)
    assert not forms_clusters(hosts) and forms_clusters(aws_efa) and forms_clusters(lambda_eth)
    assert not forms_clusters(aws_lone)  # 'none' is not among the AWS card's fabrics
    result = plan(two_nodes, [hosts, aws_efa, aws_lone, lambda_eth], facts, NOW)
    assert {c.placement.offer for c in result.placements} == {aws_efa, lambda_eth}
    assert result.rejections == {R_NO_CLUSTER: 2}
    # One node: the same hosts are fine.
    assert plan(make_spec(), [hosts], facts, NOW).best.placement.offer is hosts
    # The cluster rule comes before the RDMA rule: a Vast host is rejected for what it is.
    strict = plan(make_spec(num_nodes=2, interconnect="required", work=Work(160.0, "H100")), [hosts, lambda_eth],
                  facts, NOW)
    assert strict.rejections == {R_NO_CLUSTER: 1, R_NO_RDMA: 1}


# -- One row per real choice, ties by closeness -------------------------------------------------------------------

def test_same_price_regions_are_one_choice_nearest_the_data_first(facts) -> None:
    data = DataLocation("aws", "us-east-1", size_gb=0)
    # Spelled so that alphabetical order would pick Tokyo: closeness must decide.
    tokyo, virginia, ohio = lam("asia-northeast-1"), lam("us-east-1"), lam("us-east-2")
    result = plan(make_spec(data=data), [tokyo, ohio, virginia], facts, NOW)
    assert len(result.placements) == 3 and len(result.choices) == 1
    choice = result.choices[0]
    assert choice.best.placement.offer is ohio or choice.best.placement.offer is virginia
    assert choice.also_in[-1].placement.offer is tokyo  # other continent last
    assert result.best is choice.best


def test_same_provider_and_region_as_the_data_wins_a_tie(facts) -> None:
    data = DataLocation("aws", "us-east-2", size_gb=0)
    aws_east1 = make_offer(region="us-east-1", on_demand_usd_per_hour=40.0, spot_usd_per_hour=None)
    aws_east2 = make_offer(region="us-east-2", on_demand_usd_per_hour=40.0, spot_usd_per_hour=None)
    lam_east2 = lam("us-east-2", price=40.0, instance_type="gpu_8x_h100_sxm5")
    result = plan(make_spec(data=data), [lam_east2, aws_east1, aws_east2], facts, NOW)
    order = [c.placement.offer for c in result.placements]
    assert order == [aws_east2, aws_east1, lam_east2]  # same region, same provider, then same continent


def test_capacity_breaks_a_tie_when_closeness_does_not(facts) -> None:
    few = vast("us-texas", "US", "north-america", available=1)
    many = vast("us-ohio", "US", "north-america", available=6)
    result = plan(make_spec(), [few, many], facts, NOW)
    assert [c.placement.offer for c in result.placements] == [many, few]
    assert len(result.choices) == 1 and result.choices[0].also_in[0].placement.offer is few


def test_different_prices_or_shapes_stay_separate_choices(facts) -> None:
    a, b = lam("us-east-1", price=24.0), lam("us-east-2", price=24.5)
    c = lam("us-west-1", price=24.0, instance_type="gpu_8x_h100_sxm5_v2")
    result = plan(make_spec(), [a, b, c], facts, NOW)
    assert len(result.choices) == 3
    assert choice_key(result.placements[0]) != choice_key(result.placements[1])

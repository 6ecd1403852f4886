"""Spot rates with sources: Advisor bands per family and region, zone kinds, host reliability, ledger history."""

from __future__ import annotations

import dataclasses
import itertools
import math
from datetime import datetime, timedelta, timezone

import pytest
from conftest import make_offer

from arbitrage.capacity import CapacityBook, offer_signals, placement_score, verdict
from arbitrage.facts import AdvisorTable
from arbitrage.ledger import AttemptRow, PlacementRow
from arbitrage.spotrisk import (
    Observed,
    RiskBook,
    SpotRisk,
    band_rate,
    family_of,
    observations,
    spot_verdict,
    zone_kind,
)

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def test_zone_kinds(facts) -> None:
    assert zone_kind(facts, "aws", "us-east-1", "use1-az4") == "region"
    assert zone_kind(facts, "aws", "us-east-1", "use1-atl2-az1") == "local-zone"
    assert zone_kind(facts, "aws", "us-east-1", "us-east-1-atl-2a") == "local-zone"
    assert zone_kind(facts, "aws", "us-east-1", "us-east-1-wl1-bos-wlz-1") == "wavelength"
    assert zone_kind(facts, "gcp", "us-central1", "us-central1-a") == "region"
    assert zone_kind(facts, "aws", "us-east-1", None) == "region"


def test_families() -> None:
    assert family_of("aws", "p5.48xlarge") == "p5" and family_of("aws", "p6-b200.48xlarge") == "p6-b200"
    assert family_of("gcp", "a3-highgpu-8g") == "a3-highgpu"
    assert family_of("runpod", "8x NVIDIA H100 80GB HBM3") == "NVIDIA H100 80GB HBM3"
    assert family_of("azure", "Standard_ND96isr_H100_v5") == "Standard_ND96isr_H100_v5"


def test_band_table_is_monotone_and_scales_with_the_odds(facts) -> None:
    bands = facts.spot_bands
    assert [b.label for b in bands] == ["<5%", "5-10%", "10-15%", "15-20%", ">20%"]
    for low, high in itertools.pairwise(bands):
        assert low.preemptions_per_hour_1gpu < high.preemptions_per_hour_1gpu
        assert low.preemptions_per_hour_8gpu < high.preemptions_per_hour_8gpu
    odds = [b.representative_frequency / (1 - b.representative_frequency) for b in bands]
    for b, o in zip(bands, odds, strict=True):  # rate = band-4 rate x odds / odds(band 4), rounded in the file
        assert b.preemptions_per_hour_8gpu == pytest.approx(bands[4].preemptions_per_hour_8gpu * o / odds[4], rel=2e-3)
        assert b.preemptions_per_hour_1gpu == pytest.approx(bands[4].preemptions_per_hour_1gpu * o / odds[4], rel=3e-3)
    worst = bands[4]
    assert band_rate(worst, 1) == worst.preemptions_per_hour_1gpu and band_rate(worst, 8) == pytest.approx(
        worst.preemptions_per_hour_8gpu) and band_rate(worst, 16) == pytest.approx(worst.preemptions_per_hour_8gpu)
    assert worst.preemptions_per_hour_1gpu < band_rate(worst, 2) < band_rate(worst, 4) < band_rate(worst, 8)


def test_band_4_is_what_the_public_traces_measure(facts) -> None:
    """The anchor of spot_bands.csv: spot runs ended per spot-hour on the 1-node p2/p3 traces."""
    from bench.spot import trace_anchor_rates
    from bench.spot_sim import TRACES, load_public_traces

    if not TRACES.exists():
        pytest.skip("bench/traces not present")
    one, eight = trace_anchor_rates(load_public_traces())
    assert facts.spot_bands[4].preemptions_per_hour_1gpu == pytest.approx(one.rate, abs=5e-4)
    assert facts.spot_bands[4].preemptions_per_hour_8gpu == pytest.approx(eight.rate, abs=5e-4)
    # the traced families are in band 4 in every traced region of the bundled Advisor copy
    for region in ("us-east-1", "us-east-2", "us-west-2"):
        for instance in ("p3.2xlarge", "p3.16xlarge", "p2.xlarge", "p2.8xlarge"):
            assert facts.spot_advisor.bands[(region, instance)] == 4


def test_aws_families_and_regions_get_different_sourced_rates(facts) -> None:
    book = RiskBook(facts)
    p5_use1 = book.rate(make_offer(instance_type="p5.48xlarge", region="us-east-1", zone="use1-az4"))
    p5_eun1 = book.rate(make_offer(instance_type="p5.48xlarge", region="eu-north-1", zone="eun1-az1"))
    p5en_use1 = book.rate(make_offer(instance_type="p5en.48xlarge", region="us-east-1", zone="use1-az2"))
    assert p5_use1.label == "advisor >20%" and p5_eun1.label == "advisor <5%" and p5en_use1.label == "advisor <5%"
    assert p5_use1.preemptions_per_hour == pytest.approx(facts.spot_bands[4].preemptions_per_hour_8gpu)
    assert p5_eun1.preemptions_per_hour == pytest.approx(facts.spot_bands[0].preemptions_per_hour_8gpu)
    assert "Spot Instance Advisor" in p5_use1.source and "2025-06-28" in p5_use1.source
    # a Local Zone is rated at the worst band, not at its parent region's band
    atl = book.rate(make_offer(instance_type="p5en.48xlarge", region="us-east-1", zone="use1-atl2-az1"))
    assert atl.label == "local-zone >20%" and atl.preemptions_per_hour > 10 * p5en_use1.preemptions_per_hour
    assert atl.restart_hours == 0.25
    # not in the Advisor: its row's band, said so
    b200 = book.rate(make_offer(instance_type="p6-b200.48xlarge", accelerator="B200", region="us-east-1"))
    assert b200.label.startswith("not in advisor") and "not in the AWS Spot Instance Advisor" in b200.source
    # one GPU per instance: the band's 1-GPU rate
    small = book.rate(make_offer(instance_type="p5.4xlarge", gpus_per_node=1, region="ap-south-1"))
    assert small.preemptions_per_hour < 0.35


def test_a_live_advisor_table_replaces_the_bundled_copy(facts) -> None:
    live = AdvisorTable({("us-east-1", "p5.48xlarge"): 1}, "live", "2026-12-01T10:00:00+00:00", "feed")
    rate = RiskBook(facts, advisor=live).rate(make_offer(region="us-east-1"))
    assert rate.label == "advisor 5-10%" and "live, as of 2026-12-01" in rate.source


def test_other_providers_cite_their_guidance_and_lambda_has_no_spot(facts) -> None:
    book = RiskBook(facts)
    gcp = book.rate(make_offer(provider="gcp", region="us-central1", instance_type="a3-highgpu-8g"))
    assert gcp.label == "docs" and gcp.preemptions_per_hour == 0.06 and "Google Cloud docs" in gcp.source
    assert book.rate(make_offer(provider="lambda", region="us-east-1", instance_type="gpu_8x_h100_sxm5")
                     ).preemptions_per_hour == 0.0
    unknown = book.rate(make_offer(provider="newcloud", region="x"))
    assert unknown.label == "default" and unknown.preemptions_per_hour == facts.assumptions.default_preemptions_per_hour


def test_host_reliability_adds_the_hosts_outages(facts) -> None:
    book = RiskBook(facts)
    base = book.rate(make_offer(provider="vast", region="us", instance_type="8x H100"))
    shaky = book.rate(make_offer(provider="vast", region="us", instance_type="8x H100", host_reliability=0.9))
    assert shaky.preemptions_per_hour == pytest.approx(base.preemptions_per_hour + 0.1 / 0.9 / 1.0)
    assert "host 0.90" in shaky.label and "reliability 0.900" in shaky.source


def _history(preemptions: int, hours: float, nodes: int = 1) -> tuple[list[PlacementRow], list[AttemptRow]]:
    p = PlacementRow(run_id="r", rank=0, provider="aws", region="us-east-1", zone="use1-az4",
                     instance_type="p5.48xlarge", accelerator="H100", gpus_per_node=8, nodes=nodes, spot=True,
                     usd_per_hour=30.0, expected_hours=10, expected_total_usd=300, compute_usd=300, preemption_usd=0,
                     egress_in_usd=0, egress_out_usd=0, price_source="snapshot", price_as_of="x", price_ref="x")
    a = AttemptRow(run_id="r", n=1, rank=0, cluster_name="c", handle=None, started_at=T0, running_at=T0,
                   ended_at=T0 + timedelta(hours=hours), outcome="succeeded", message="", restarts=preemptions)
    return [p], [a]


def test_ledger_history_moves_the_rate(facts) -> None:
    offer = make_offer(region="us-east-1", zone="use1-az4")
    prior = RiskBook(facts).rate(offer)
    # 200 instance-hours (2 nodes x 100 h) with 4 preemptions: 0.02/h observed, far under the band's 0.96/h.
    seen = observations([_history(4, 100.0, nodes=2)], now=T0 + timedelta(days=10))
    assert seen == {("aws", "p5", "us-east-1"): Observed(4, 200.0, 1)}
    learned = RiskBook(facts, observed=seen).rate(offer)
    weight = facts.assumptions.preemption_prior_hours
    assert learned.preemptions_per_hour == pytest.approx((prior.preemptions_per_hour * weight + 4) / (weight + 200))
    assert learned.preemptions_per_hour < prior.preemptions_per_hour / 2
    assert learned.observed_hours == 200.0 and learned.prior_per_hour == prior.preemptions_per_hour
    assert "200 h observed" in learned.label and "4 preemptions in 200.0 instance-hours" in learned.source
    # a bad streak moves it up
    worse = RiskBook(facts, observed=observations([_history(30, 10.0)], now=T0)).rate(offer)
    assert worse.preemptions_per_hour > prior.preemptions_per_hour
    # other families and regions are untouched
    other = RiskBook(facts, observed=seen).rate(make_offer(region="us-west-2", zone="usw2-az1"))
    assert other.observed_hours == 0


def test_observations_count_preempted_endings_and_skip_on_demand() -> None:
    placements, attempts = _history(1, 5.0)
    ended = dataclasses.replace(attempts[0], outcome="preempted")
    never = dataclasses.replace(attempts[0], n=2, running_at=None)
    od = dataclasses.replace(placements[0], rank=1, spot=False)
    on_od = dataclasses.replace(attempts[0], n=3, rank=1)
    seen = observations([([*placements, od], [ended, never, on_od])], now=T0)
    assert seen == {("aws", "p5", "us-east-1"): Observed(2, 5.0, 1)}


def test_spot_verdict_both_ways() -> None:
    risk = SpotRisk(preemptions_per_hour=0.074, restart_hours=0.2, segment_hours=1 / 6 + 1 / 120, work_hours=20.0,
                    nodes=1, provision_hours=1 / 6, source="advisor <5%")
    roomy = spot_verdict(risk, hours_to_deadline=30.0, done_work_hours=5.0, preemptions=1, spot_instance_hours=5.0,
                         confidence=0.95)
    assert roomy.stay and roomy.probability >= 0.95 and "staying on spot" in roomy.message
    tight = spot_verdict(risk, hours_to_deadline=15.6, done_work_hours=5.0, preemptions=1, spot_instance_hours=5.0,
                         confidence=0.95)
    assert not tight.stay and tight.probability < 0.95 and "leaving spot" in tight.message
    assert "P(meet the deadline on spot)" in tight.message and "15.0 h of work left" in tight.message
    # a run that keeps being preempted learns a higher rate and leaves spot earlier
    stormy = spot_verdict(risk, hours_to_deadline=30.0, done_work_hours=5.0, preemptions=20, spot_instance_hours=5.0,
                          confidence=0.95)
    assert stormy.rate_per_hour > 0.1 and stormy.probability < roomy.probability
    assert SpotRisk.from_dict(risk.as_dict()) == risk


def test_capacity_signals_from_offers() -> None:
    lam = make_offer(provider="lambda", region="us-east-1", instance_type="gpu_8x_h100_sxm5", source="live")
    snap = make_offer(provider="lambda", region="us-west-1", instance_type="gpu_8x_h100_sxm5")
    vast = make_offer(provider="vast", region="us", instance_type="8x H100", available=1)
    signals = offer_signals([lam, snap, vast], {"lambda": "Lambda API regions_with_capacity_available"})
    book = CapacityBook(signals)
    assert book.signal(lam, spot=False, nodes=1).label == "in stock"
    assert book.signal(snap, spot=False, nodes=1) is None  # a snapshot says nothing about capacity now
    one = book.signal(vast, spot=True, nodes=1)
    assert placement_score(one, 1) == 0.5 and placement_score(one, 2) == 0.25
    assert verdict(placement_score(one, 1), 0.35, 0.65) == "demote" and verdict(0.25, 0.35, 0.65) == "reject"
    assert math.isclose(placement_score(dataclasses.replace(one, listed=8), 2), 1.0)


def test_every_provider_card_spot_kind_agrees_with_its_preemption_row(facts) -> None:
    """A provider without spot has a 'none' row (rate 0); a provider with spot has a rated row."""
    from providers.registry import cards

    for card in cards():
        rule = facts.preemption_for(card.id, "any-region", "any-type", "region")
        if card.spot == "none" or card.tier == "owned":
            assert rule is None or rule.evidence == "none", card.id
        else:
            assert rule is not None and rule.evidence != "none", card.id
            assert rule.source and rule.as_of, card.id

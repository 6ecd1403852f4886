"""Baselines: what 'run it next to the data' and 'take the cheapest listed GPU-hour' pick, costed in full."""

from __future__ import annotations

from conftest import make_offer, make_spec

from arbitrage.baselines import cheapest_listed, naive
from arbitrage.jobspec import AcceleratorChoice, Checkpoint, DataLocation, Deadline, Work

AWS_EAST = make_offer(region="us-east-1", on_demand_usd_per_hour=55.0, spot_usd_per_hour=20.0)
AWS_WEST = make_offer(region="us-west-2", on_demand_usd_per_hour=50.0, spot_usd_per_hour=12.0)
GCP = make_offer(provider="gcp", region="us-central1", instance_type="a3-highgpu-8g", on_demand_usd_per_hour=43.0,
                 spot_usd_per_hour=None, interconnect="gpudirect-tcpx", interconnect_gbps=800.0)
LAMBDA = make_offer(provider="lambda", region="us-east-1", instance_type="gpu_8x_h100_sxm5",
                    on_demand_usd_per_hour=32.0, spot_usd_per_hour=None, interconnect="ethernet",
                    interconnect_gbps=100.0)
A100 = make_offer(provider="lambda", region="us-east-1", instance_type="gpu_8x_a100", accelerator="A100",
                  on_demand_usd_per_hour=10.0, spot_usd_per_hour=None, interconnect="ethernet")
OFFERS = [AWS_EAST, AWS_WEST, GCP, LAMBDA, A100]


def test_naive_runs_on_demand_in_the_datas_region_even_when_elsewhere_is_cheaper(facts) -> None:
    spec = make_spec(data=DataLocation("aws", "us-east-1", size_gb=100), spot="auto")
    pick = naive(spec, OFFERS, facts)
    assert pick.placement.offer is AWS_EAST and not pick.placement.spot
    assert pick.egress_usd == 0


def test_naive_takes_the_cheapest_region_of_the_home_cloud_when_the_datas_region_has_none(facts) -> None:
    pick = naive(make_spec(data=DataLocation("aws", "eu-west-1", size_gb=100)), OFFERS, facts)
    assert pick.placement.offer is AWS_WEST
    assert pick.egress_in_usd > 0  # inter-region transfer is costed


def test_naive_defaults_to_aws_without_a_hyperscaler_data_home(facts) -> None:
    assert naive(make_spec(), OFFERS, facts).placement.offer is AWS_WEST
    assert naive(make_spec(data=DataLocation("lambda", "us-east-1", size_gb=10)), OFFERS, facts) \
        .placement.offer.provider == "aws"


def test_naive_uses_the_first_choice_only_and_can_find_nothing(facts) -> None:
    spec = make_spec(accelerators=(AcceleratorChoice("H100", 8), AcceleratorChoice("A100", 8)),
                     data=DataLocation("gcp", "us-central1", size_gb=10))
    assert naive(spec, OFFERS, facts).placement.offer is GCP  # the A100 at $10/h is not the first choice
    assert naive(make_spec(data=DataLocation("azure", "eastus", size_gb=10)), OFFERS, facts) is None


def test_cheapest_listed_ignores_egress_but_its_cost_includes_it(facts) -> None:
    spec = make_spec(data=DataLocation("aws", "us-east-1", size_gb=20000))
    pick = cheapest_listed(spec, [AWS_EAST, LAMBDA], facts)
    assert pick.placement.offer is LAMBDA  # $4/GPU-h listed beats $6.9/GPU-h next to the data
    assert pick.egress_in_usd > 1000
    assert pick.total_usd > naive(spec, [AWS_EAST, LAMBDA], facts).total_usd


def test_cheapest_listed_uses_spot_prices_only_when_the_job_allows_spot(facts) -> None:
    checkpointed = dict(checkpoint=Checkpoint("s3://c", 10))
    assert cheapest_listed(make_spec(spot="auto", **checkpointed), OFFERS, facts).placement.offer is AWS_WEST
    assert cheapest_listed(make_spec(spot="auto", **checkpointed), OFFERS, facts).placement.spot
    never = cheapest_listed(make_spec(spot="never"), OFFERS, facts)
    assert never.placement.offer is LAMBDA and not never.placement.spot


def test_cheapest_listed_compares_per_gpu_hour_across_node_sizes(facts) -> None:
    one_gpu = make_offer(provider="lambda", instance_type="gpu_1x_h100", gpus_per_node=1,
                         on_demand_usd_per_hour=3.5, spot_usd_per_hour=None)
    spec = make_spec(accelerators=(AcceleratorChoice("H100", 1),))
    assert cheapest_listed(spec, [one_gpu, LAMBDA], facts).placement.offer is one_gpu  # only 1-GPU nodes qualify


def test_baselines_ignore_the_deadline_but_keep_the_hard_rules(facts) -> None:
    spec = make_spec(deadline=Deadline(hours=0.5), providers_deny=("lambda",), work=Work(640.0, "H100"))
    pick = cheapest_listed(spec, OFFERS, facts)
    assert pick is not None and pick.expected_hours > 0.5
    assert pick.placement.offer.provider != "lambda"
    assert naive(spec, OFFERS, facts).expected_hours > 0.5
    assert naive(make_spec(providers_deny=("aws",)), OFFERS, facts) is None


def test_naive_is_on_demand_even_for_a_spot_only_job(facts) -> None:
    spec = make_spec(data=DataLocation("aws", "us-east-1", size_gb=100), spot="always",
                     checkpoint=Checkpoint("s3://b/c", 30.0))
    pick = naive(spec, OFFERS, facts)
    assert pick is not None and pick.placement.offer is AWS_EAST and not pick.placement.spot

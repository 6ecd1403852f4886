"""Planner: true minimum of the model, and decisions that change for the right reasons."""

from __future__ import annotations

import itertools
import random

import pytest
from conftest import NOW, make_offer, make_spec

from arbitrage.costmodel import Placement, estimate
from arbitrage.jobspec import AcceleratorChoice, Budget, Checkpoint, DataLocation, Deadline, Work
from arbitrage.planner import (
    R_DEADLINE,
    R_GPU_COUNT,
    R_NO_RDMA,
    R_PREFERRED,
    R_PROVIDER,
    R_REGION,
    R_TOTAL,
    plan,
)
from providers.snapshot import load_snapshot


def brute_force_min(spec, offers, facts, deadline_hours=None):
    """Every (offer, purchase option) costed directly, constraints applied by hand."""
    best = None
    for offer, spot in itertools.product(offers, (False, True)):
        choice = next((a for a in spec.accelerators if offer.provides(a.name)), None)
        if choice is None or offer.gpus_per_node != choice.count or offer.usd_per_hour(spot) is None:
            continue
        if (spec.spot == "never" and spot) or (spec.spot == "always" and not spot):
            continue
        cost = estimate(spec, Placement(offer, spec.num_nodes, spot), facts)
        if not cost.finite or (deadline_hours is not None and cost.expected_hours > deadline_hours):
            continue
        if spec.budget.max_total_usd is not None and cost.total_usd > spec.budget.max_total_usd:
            continue
        if best is None or cost.total_usd < best.total_usd:
            best = cost
    return best


@pytest.mark.parametrize("seed", range(6))
def test_plan_is_the_brute_force_minimum_on_the_snapshot(seed: int, facts) -> None:
    rng = random.Random(seed)
    offers = load_snapshot(facts)
    gpus = rng.sample(["H100", "A100", "A100-80GB", "H200"], k=2)
    count = rng.choice([1, 8])
    data_home = rng.choice([("aws", "us-east-1"), ("gcp", "us-central1"), ("azure", "eastus")])
    spec = make_spec(
        accelerators=tuple(AcceleratorChoice(g, count) for g in gpus),
        work=Work(gpu_hours=rng.choice([10, 200, 900]) * count / 8 + 1, reference="H100"),
        spot=rng.choice(["never", "always", "auto"]),
        checkpoint=Checkpoint("s3://c", interval_minutes=rng.choice([10, 30])) if rng.random() < 0.7 else None,
        data=DataLocation(data_home[0], data_home[1], size_gb=rng.choice([0, 500, 20000])),
        outputs_gb=rng.choice([0, 50]),
        deadline=Deadline(hours=rng.choice([30.0, 200.0])) if rng.random() < 0.5 else None,
    )
    result = plan(spec, offers, facts, NOW)
    expected = brute_force_min(spec, offers, facts, result.deadline_hours)
    if expected is None:
        assert result.best is None
    else:
        assert result.best is not None
        assert result.best.total_usd == pytest.approx(expected.total_usd)
        assert all(c.total_usd >= result.best.total_usd - 1e-9 for c in result.placements)
        # One row per real choice: the first row is the chosen placement, every placement is in exactly one row.
        assert result.choices[0].best is result.best
        assert sum(1 + len(c.also_in) for c in result.choices) == len(result.placements)


def test_large_data_in_s3_makes_in_region_aws_win(facts) -> None:
    aws = make_offer(on_demand_usd_per_hour=40.0, spot_usd_per_hour=None)
    cheaper = make_offer(provider="lambda", region="us-east-1", instance_type="gpu_8x_h100_sxm5",
                         on_demand_usd_per_hour=32.0, spot_usd_per_hour=None, interconnect="ethernet",
                         interconnect_gbps=100.0)
    small = make_spec(data=DataLocation("aws", "us-east-1", size_gb=10))
    large = make_spec(data=DataLocation("aws", "us-east-1", size_gb=20000))
    assert plan(small, [aws, cheaper], facts, NOW).best.placement.offer.provider == "lambda"
    winner = plan(large, [aws, cheaper], facts, NOW).best
    assert winner.placement.offer.provider == "aws" and winner.egress_usd == 0


def test_required_interconnect_rules_out_offers_without_rdma(facts) -> None:
    rdma = make_offer(on_demand_usd_per_hour=60.0)
    plain = make_offer(provider="lambda", instance_type="gpu_8x_h100_sxm5", on_demand_usd_per_hour=20.0,
                       interconnect="ethernet", interconnect_gbps=100.0)
    spec = make_spec(num_nodes=2, interconnect="required", work=Work(160.0, "H100"))
    result = plan(spec, [rdma, plain], facts, NOW)
    assert result.best.placement.offer is rdma
    assert result.rejections == {R_NO_RDMA: 1}
    # Without the requirement the cheap ethernet cluster wins despite its slowdown.
    relaxed = plan(make_spec(num_nodes=2, work=Work(160.0, "H100")), [rdma, plain], facts, NOW)
    assert relaxed.best.placement.offer is plain
    assert relaxed.best.scaling_efficiency < 1
    # "preferred" keeps ethernet only when no RDMA placement is feasible.
    preferred = plan(make_spec(num_nodes=2, interconnect="preferred", work=Work(160.0, "H100")),
                     [rdma, plain], facts, NOW)
    assert preferred.best.placement.offer is rdma and preferred.rejections == {R_PREFERRED: 1}
    assert plan(make_spec(num_nodes=2, interconnect="preferred", work=Work(160.0, "H100")), [plain], facts,
                NOW).best.placement.offer is plain


def test_interconnect_slowdown_can_make_the_cheaper_hour_cost_more(facts) -> None:
    rdma = make_offer(on_demand_usd_per_hour=40.0)
    plain = make_offer(provider="lambda", instance_type="gpu_8x_h100_sxm5", on_demand_usd_per_hour=34.0,
                       interconnect="ethernet", interconnect_gbps=25.0)
    result = plan(make_spec(num_nodes=4, work=Work(3200.0, "H100")), [rdma, plain], facts, NOW)
    assert result.best.placement.offer is rdma


def test_tight_deadline_rules_out_spot(facts) -> None:
    offer = make_offer(on_demand_usd_per_hour=40.0, spot_usd_per_hour=12.0)
    spec = make_spec(spot="auto", work=Work(8 * 20.0, "H100"), checkpoint=Checkpoint("s3://c", 60))
    loose = plan(spec, [offer], facts, NOW)
    assert loose.best.placement.spot
    on_demand_hours = next(c for c in loose.placements if not c.placement.spot).expected_hours
    tight = plan(make_spec(spot="auto", work=Work(8 * 20.0, "H100"), checkpoint=Checkpoint("s3://c", 60),
                           deadline=Deadline(hours=on_demand_hours + 0.05)), [offer], facts, NOW)
    assert not tight.best.placement.spot
    assert tight.rejections == {R_DEADLINE: 1}


def test_budget_over_goes_to_over_budget_not_placements(facts) -> None:
    spec = make_spec(budget=Budget(max_total_usd=100.0))
    result = plan(spec, [make_offer()], facts, NOW)
    assert result.best is None and len(result.over_budget) == 1
    assert result.rejections == {R_TOTAL: 1}


def test_filters_count_rejections(facts) -> None:
    offers = [make_offer(gpus_per_node=4), make_offer(provider="vast", region="us-any", instance_type="x"),
              make_offer(region="ap-south-1"), make_offer(accelerator="B200")]
    spec = make_spec(providers_deny=("vast",), regions_allow=("us-*",))
    result = plan(spec, offers, facts, NOW)
    assert result.best is None
    assert result.rejections == {R_GPU_COUNT: 1, R_PROVIDER: 1, R_REGION: 1}


def test_ordered_preference_beats_price(facts) -> None:
    h100 = make_offer(on_demand_usd_per_hour=80.0)
    a100 = make_offer(accelerator="A100", instance_type="p4d.24xlarge", on_demand_usd_per_hour=10.0)
    choices = (AcceleratorChoice("H100", 8), AcceleratorChoice("A100", 8))
    assert plan(make_spec(accelerators=choices), [h100, a100], facts, NOW).best.placement.offer is a100
    ordered = plan(make_spec(accelerators=choices, ordered=True), [h100, a100], facts, NOW)
    assert ordered.best.placement.offer is h100


def test_objective_time_prefers_faster(facts) -> None:
    h100 = make_offer(on_demand_usd_per_hour=40.0)
    a100 = make_offer(accelerator="A100", instance_type="p4d.24xlarge", on_demand_usd_per_hour=10.0)
    choices = (AcceleratorChoice("H100", 8), AcceleratorChoice("A100", 8))
    assert plan(make_spec(accelerators=choices), [h100, a100], facts, NOW, "cost").best.placement.offer is a100
    assert plan(make_spec(accelerators=choices), [h100, a100], facts, NOW, "time").best.placement.offer is h100


def test_requesting_a_variant_matches_only_that_variant(facts) -> None:
    sxm, pcie = make_offer(), make_offer(gpu_model="H100-PCIE", instance_type="gpu_1x_h100_pcie")
    spec = make_spec(accelerators=(AcceleratorChoice("H100-PCIE", 8),))
    result = plan(spec, [sxm, pcie], facts, NOW)
    assert [c.placement.offer for c in result.placements] == [pcie]

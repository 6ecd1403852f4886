"""Cost model arithmetic: work hours, scaling, checkpoints, spot overhead, egress (the rule itself: test_egress)."""

from __future__ import annotations

import math
import random

import pytest
from conftest import make_offer, make_spec, replace

from arbitrage.costmodel import Placement, estimate, spot_overhead
from arbitrage.egress import egress_usd
from arbitrage.jobspec import AcceleratorChoice, Checkpoint, DataLocation, Work


def test_on_demand_single_node_terms(facts) -> None:
    spec = make_spec()
    cost = estimate(spec, Placement(make_offer(), 1, spot=False), facts)
    provision = facts.assumptions.provision_minutes / 60
    assert cost.work_hours == pytest.approx(64 / 8)
    assert cost.expected_hours == pytest.approx(8 + provision)
    assert cost.compute_usd == pytest.approx(40.0 * (8 + provision))
    assert cost.preemption_usd == 0 and cost.egress_usd == 0
    assert cost.total_usd == pytest.approx(cost.compute_usd)


def test_slower_gpu_takes_proportionally_longer(facts) -> None:
    spec = make_spec(accelerators=(AcceleratorChoice("A100", 8),))
    a100 = make_offer(accelerator="A100", instance_type="p4d.24xlarge", gpu_memory_gb=40.0)
    cost = estimate(spec, Placement(a100, 1, spot=False), facts)
    ratio = facts.gpu("H100").train_throughput_vs_h100 / facts.gpu("A100").train_throughput_vs_h100
    assert cost.work_hours == pytest.approx(8 * ratio)


def test_variant_uses_its_own_throughput(facts) -> None:
    pcie = make_offer(gpu_model="H100-PCIE")
    cost = estimate(make_spec(), Placement(pcie, 1, spot=False), facts)
    assert cost.relative_throughput == pytest.approx(facts.gpu("H100-PCIE").train_throughput_vs_h100)
    assert cost.work_hours > 8


def test_multi_node_scaling_depends_on_fabric(facts) -> None:
    spec = make_spec(num_nodes=4)
    fast = estimate(spec, Placement(make_offer(), 4, spot=False), facts)
    slow = estimate(spec, Placement(make_offer(interconnect="ethernet", interconnect_gbps=25.0), 4, spot=False),
                    facts)
    assert fast.scaling_efficiency == pytest.approx(facts.scaling_efficiency(3200, 4))
    assert 0 < slow.scaling_efficiency < fast.scaling_efficiency < 1
    assert slow.work_hours == pytest.approx(64 / 32 / slow.scaling_efficiency)
    assert slow.hourly_usd == fast.hourly_usd == 160.0


def test_checkpoint_writes_cost_time_on_demand_too(facts) -> None:
    spec = make_spec(checkpoint=Checkpoint("s3://x", interval_minutes=30, write_minutes=1.5))
    cost = estimate(spec, Placement(make_offer(), 1, spot=False), facts)
    assert cost.checkpoint_hours == pytest.approx((8 / 0.5) * 1.5 / 60)


def test_spot_overhead_first_order_is_half_an_interval_plus_restart() -> None:
    extra, preemptions = spot_overhead(100.0, 0.25, 0.0, 0.01, 0.2)
    assert preemptions == pytest.approx(100 * 0.01, rel=0.01)
    assert extra == pytest.approx(preemptions * (0.25 / 2 + 0.2), rel=0.02)


def test_spot_overhead_matches_monte_carlo() -> None:
    """Simulate Poisson preemptions with checkpoint segments; the closed form must agree."""
    rng = random.Random(7)
    work, segment, write, rate, restart = 20.0, 1.0, 0.05, 0.3, 0.25
    runs, total = 4000, 0.0
    for _ in range(runs):
        elapsed = 0.0
        for _seg in range(int(work / segment)):
            while True:
                t = rng.expovariate(rate)
                if t >= segment + write:
                    elapsed += segment + write
                    break
                elapsed += t + restart
        total += elapsed
    simulated_extra = total / runs - work / segment * (segment + write)
    extra, _ = spot_overhead(work, segment, write, rate, restart)
    assert extra == pytest.approx(simulated_extra, rel=0.05)


def test_spot_without_checkpoint_can_be_unbounded(facts) -> None:
    spec = make_spec(work=Work(gpu_hours=8 * 5000, reference="H100"))
    cost = estimate(spec, Placement(make_offer(), 1, spot=True), facts)
    assert not cost.finite
    assert math.isinf(cost.total_usd)


def test_spot_multi_node_preempts_more(facts) -> None:
    ckpt = Checkpoint("s3://x", interval_minutes=30)
    one = estimate(make_spec(checkpoint=ckpt), Placement(make_offer(), 1, spot=True), facts)
    four = estimate(make_spec(checkpoint=ckpt, num_nodes=4, work=Work(256.0, "H100")),
                    Placement(make_offer(), 4, spot=True), facts)
    assert four.expected_preemptions > 3 * one.expected_preemptions


def test_data_egress_billed_by_its_home_and_outputs_by_the_placement(facts) -> None:
    data = DataLocation(provider="aws", region="us-east-1", size_gb=1000)
    spec = make_spec(data=data, outputs_gb=100)
    same = estimate(spec, Placement(make_offer(), 1, spot=False), facts)
    assert same.egress_usd == 0 and same.staging_hours == 0
    other = estimate(spec, Placement(make_offer(provider="gcp", region="us-central1", instance_type="a3-highgpu-8g"),
                                     1, spot=False), facts)
    assert other.egress_in_usd == pytest.approx(egress_usd(facts.egress_tiers, "aws", "internet", 1000))
    assert other.egress_out_usd == pytest.approx(egress_usd(facts.egress_tiers, "gcp", "internet", 100))
    assert other.staging_hours > 0
    cross_region = estimate(replace(spec), Placement(make_offer(region="us-west-2"), 1, spot=False), facts)
    assert cross_region.egress_in_usd == pytest.approx(1000 * 0.02)


# -- Intra-node GPU links (intranode.csv) --------------------------------------------------------------

def test_pcie_only_boxes_lose_speed_up_inside_the_node(facts) -> None:
    """8x H100 PCIe without NVLink used to be costed at full intra-node scaling, like an NVSwitch board."""
    spec = make_spec()
    sxm = estimate(spec, Placement(make_offer(), 1, spot=False), facts)
    pcie_offer = make_offer(provider="vast", instance_type="8x-H100_PCIE", gpu_model="H100-PCIE",
                            interconnect="none", interconnect_gbps=0.0)
    pcie = estimate(spec, Placement(pcie_offer, 1, spot=False), facts)
    assert sxm.intra_node_efficiency == 1.0 and sxm.scaling_efficiency == 1.0
    rule = facts.intra_node_rule("vast", "8x-H100_PCIE", "H100-PCIE")
    assert rule is not None and rule.link == "pcie"
    assert pcie.intra_node_efficiency == pytest.approx(rule.efficiency_per_doubling ** 3)  # 8 GPUs: 3 doublings
    assert 0.6 < pcie.intra_node_efficiency < 0.95
    assert pcie.scaling_efficiency == pytest.approx(pcie.intra_node_efficiency)
    throughput = facts.gpu("H100-PCIE").train_throughput_vs_h100
    assert pcie.work_hours == pytest.approx(64 / (8 * throughput * pcie.intra_node_efficiency))
    # one PCIe GPU has nobody to talk to; an H100 NVL pair is bridged by NVLink, four NVLs cross PCIe once
    one = make_offer(provider="vast", instance_type="1x-H100_PCIE", gpu_model="H100-PCIE", gpus_per_node=1)
    assert estimate(make_spec(), Placement(one, 1, spot=False), facts).intra_node_efficiency == 1.0
    assert facts.intra_node_efficiency("runpod", "2x NVIDIA H100 NVL", "H100-NVL", 2) == 1.0
    nvl = facts.intra_node_rule("runpod", "4x NVIDIA H100 NVL", "H100-NVL")
    assert facts.intra_node_efficiency("runpod", "4x NVIDIA H100 NVL", "H100-NVL", 4) == pytest.approx(
        nvl.efficiency_per_doubling)


def test_pcie_rules_by_instance_and_by_gpu_model(facts) -> None:
    # an A100 PCIe box is the A100-80GB model, told apart by its instance type
    assert facts.intra_node_rule("runpod", "8x NVIDIA A100 80GB PCIe", "A100-80GB").link == "pcie"
    assert facts.intra_node_rule("runpod", "8x NVIDIA A100-SXM4-80GB", "A100-80GB").link == "nvlink"
    assert facts.intra_node_rule("azure", "Standard_NC96ads_A100_v4", "A100-80GB").link == "pcie"
    for gpu in ("L4", "L40S", "A10G", "T4"):
        assert facts.intra_node_rule("aws", "g6.48xlarge", gpu).link == "pcie"
    assert facts.intra_node_efficiency("aws", "p4d.24xlarge", "A100", 8) == 1.0
    assert all(r.source for r in facts.intra_node_rules)

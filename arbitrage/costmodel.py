"""Cost model: one placement of a job -> expected hours and a USD cost breakdown. Pure, no I/O.

Expected wall time = provisioning + data staging + work / (GPUs x relative throughput x multi-node
scaling efficiency) + checkpoint writes + expected preemption overhead (spot only). Egress follows the one rule
in ``arbitrage.egress``: data in is billed by its home, outputs back by the placement's provider.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arbitrage.egress import EgressPath, egress_path, egress_usd
from arbitrage.offers import Offer

if TYPE_CHECKING:  # typing only: keeps pydantic (via jobspec) out of the cost model's imports
    from arbitrage.facts import Facts
    from arbitrage.jobspec import DataLocation, JobSpec

# A segment expected to need over a million attempts never finishes in practice (and expm1 overflows ~709).
_MAX_EXPONENT = math.log(1e6)


@dataclass(frozen=True, slots=True)
class Placement:
    """A candidate: an offer, how many nodes of it, spot or on-demand, and its preference rank."""

    offer: Offer
    nodes: int
    spot: bool
    preference: int = 0

    @property
    def hourly_usd(self) -> float:
        """USD per hour for the whole cluster (nodes x per-instance price)."""
        price = self.offer.usd_per_hour(self.spot)
        if price is None:
            raise ValueError(f"{self.offer.instance_type} has no {'spot' if self.spot else 'on-demand'} price")
        return price * self.nodes

    @property
    def total_gpus(self) -> int:
        """GPUs across all nodes."""
        return self.offer.gpus_per_node * self.nodes


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Expected time and cost of one placement, with every term shown."""

    placement: Placement
    hourly_usd: float
    relative_throughput: float
    scaling_efficiency: float
    work_hours: float
    checkpoint_hours: float
    provision_hours: float
    staging_hours: float
    preemption_hours: float
    expected_preemptions: float
    expected_hours: float
    compute_usd: float
    preemption_usd: float
    egress_in_usd: float
    egress_out_usd: float

    @property
    def egress_usd(self) -> float:
        """Data in plus outputs back home."""
        return self.egress_in_usd + self.egress_out_usd

    @property
    def total_usd(self) -> float:
        """Expected total: compute + preemption overhead + egress."""
        return self.compute_usd + self.preemption_usd + self.egress_usd

    @property
    def finite(self) -> bool:
        """False when spot preemptions would keep the job from ever finishing."""
        return math.isfinite(self.expected_hours)


def _transfer_hours(facts: Facts, path: EgressPath, size_gb: float) -> float:
    if size_gb <= 0 or path == "same_region":
        return 0.0  # in-region data is streamed from the object store while training
    gbps = (facts.assumptions.transfer_gbps_cross_cloud if path == "internet"
            else facts.assumptions.transfer_gbps_inter_region)
    return size_gb * 8 / gbps / 3600


def spot_overhead(work_hours: float, segment_hours: float, checkpoint_hours_each: float,
                  rate_per_hour: float, restart_hours: float) -> tuple[float, float]:
    """(expected extra hours, expected preemptions) for work split into checkpointed segments.

    Each segment of ``segment_hours`` of work plus one checkpoint write is retried until it runs
    uninterrupted; with Poisson preemptions at ``rate_per_hour`` and ``restart_hours`` per restart the
    expected time per segment is (1/rate + restart) * (exp(rate * s) - 1). To first order each
    preemption loses half a segment plus the restart.
    """
    if rate_per_hour <= 0 or work_hours <= 0:
        return 0.0, 0.0
    segment = segment_hours + checkpoint_hours_each
    segments = work_hours / segment_hours
    exponent = rate_per_hour * segment
    if exponent > _MAX_EXPONENT:
        return math.inf, math.inf
    failures_per_segment = math.expm1(exponent)
    expected = segments * (1 / rate_per_hour + restart_hours) * failures_per_segment
    return max(0.0, expected - segments * segment), segments * failures_per_segment


def estimate(spec: JobSpec, placement: Placement, facts: Facts) -> CostBreakdown:
    """Expected hours and costs of running ``spec`` on ``placement``."""
    offer, nodes = placement.offer, placement.nodes
    hourly = placement.hourly_usd
    assume = facts.assumptions

    reference = facts.gpu(spec.work.reference).throughput(spec.workload)
    relative = facts.gpu(offer.gpu_model).throughput(spec.workload) / reference
    efficiency = facts.scaling_efficiency(offer.interconnect_gbps, nodes)
    work_hours = spec.work.gpu_hours / (placement.total_gpus * relative * efficiency)

    if spec.checkpoint is not None:
        segment_hours = min(spec.checkpoint.interval_minutes / 60, work_hours)
        write_minutes = spec.checkpoint.write_minutes
        write_hours = (assume.checkpoint_write_minutes if write_minutes is None else write_minutes) / 60
        checkpoint_hours = work_hours / segment_hours * write_hours if work_hours > 0 else 0.0
    else:
        segment_hours, write_hours, checkpoint_hours = work_hours, 0.0, 0.0

    preemption_hours = expected_preemptions = 0.0
    if placement.spot:
        rule = facts.preemption_for(offer.provider, offer.region)
        rate = rule.preemptions_per_hour if rule else assume.default_preemptions_per_hour
        restart = (rule.restart_minutes if rule else assume.default_restart_minutes) / 60
        preemption_hours, expected_preemptions = spot_overhead(
            work_hours, segment_hours, write_hours, rate * nodes, restart)

    egress_in = egress_out = staging = 0.0
    data: DataLocation | None = spec.data
    if data is not None:
        path_in = egress_path(data.provider, data.region, offer.provider, offer.region)
        path_out = egress_path(offer.provider, offer.region, data.provider, data.region)
        egress_in = egress_usd(facts.egress_tiers, data.provider, path_in, data.size_gb)
        egress_out = egress_usd(facts.egress_tiers, offer.provider, path_out, spec.outputs_gb)
        staging = _transfer_hours(facts, path_in, data.size_gb) + _transfer_hours(facts, path_out, spec.outputs_gb)

    provision = assume.provision_minutes / 60
    billed_hours = provision + staging + work_hours + checkpoint_hours
    return CostBreakdown(
        placement=placement,
        hourly_usd=hourly,
        relative_throughput=relative,
        scaling_efficiency=efficiency,
        work_hours=work_hours,
        checkpoint_hours=checkpoint_hours,
        provision_hours=provision,
        staging_hours=staging,
        preemption_hours=preemption_hours,
        expected_preemptions=expected_preemptions,
        expected_hours=billed_hours + preemption_hours,
        compute_usd=billed_hours * hourly,
        preemption_usd=preemption_hours * hourly,
        egress_in_usd=egress_in,
        egress_out_usd=egress_out,
    )

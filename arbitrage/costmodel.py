"""Cost model: one placement of a job -> expected hours and a USD cost breakdown. Pure, no I/O.

Expected wall time = provisioning + data staging + work / (GPUs x relative throughput x multi-node
scaling efficiency x intra-node efficiency) + checkpoint writes + expected preemption overhead (spot only).
Work stated in tokens of a model takes its work hours from ``arbitrage.units`` (tokens/s or FLOPs x MFU per
offer) instead of reference GPU-hours.
Egress follows the one rule in ``arbitrage.egress``: data in is billed by its home, outputs back by the
placement's provider, each transfer classified by both ends' regions, zones and continents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arbitrage.egress import EgressPath, egress_path, egress_usd
from arbitrage.geo import locate
from arbitrage.offers import Offer
from arbitrage.units import UnitRate, unit_rate, usd_per_million

if TYPE_CHECKING:  # typing only: keeps pydantic (via jobspec) out of the cost model's imports
    from arbitrage.facts import Facts
    from arbitrage.jobspec import DataLocation, JobSpec
    from arbitrage.spotrisk import SpotRate

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
    # Fraction of linear speed-up kept: multi-node fabric x intra-node GPU links (see intra_node_efficiency).
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
    # The part of scaling_efficiency lost inside one node (PCIe-only GPUs, intranode.csv); 1.0 on NVSwitch boards.
    intra_node_efficiency: float = 1.0
    # Spot risk (arbitrage/spotrisk.py): the per-instance rate used and where it came from ('' on-demand), the
    # retried segment (work per checkpoint + one write) and the restart after a preemption.
    preemptions_per_hour: float = 0.0
    preemption_source: str = ""
    preemption_label: str = ""
    segment_hours: float = 0.0
    restart_hours: float = 0.0
    # Set by the planner for a job with a deadline: P(finish by it) (risk.finish_by; on-demand 1 or 0).
    deadline_probability: float | None = None
    # Set by the planner: the capacity signal of this placement ('' none) and whether it ranks after the rest.
    capacity: str = ""
    capacity_demoted: bool = False
    # Work stated in tokens (arbitrage/units.py): the rate, memory layout and sources behind work_hours; or, when
    # the placement cannot do the work (model does not fit, no throughput fact), the reason (R_* in units).
    unit: UnitRate | None = None
    unfit: str = ""
    # Set by app.plan_job from the default backend: why a launch may not run at this price ('' when the launch pins
    # exactly what was priced), e.g. an AWS zone SkyPilot picks itself or a marketplace offer it rents.
    launch_note: str = ""

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

    @property
    def usd_per_million_tokens(self) -> float | None:
        """Expected total per million tokens of the work (all tokens it states); None for GPU-hour work."""
        return None if self.unit is None else usd_per_million(self.total_usd, self.unit.tokens)

    @property
    def usd_per_task(self) -> float | None:
        """Expected total per task for work stated in tasks; None otherwise."""
        if self.unit is None or not self.unit.tasks or not math.isfinite(self.total_usd):
            return None
        return self.total_usd / self.unit.tasks


def _transfer_paths(data: DataLocation, offer: Offer, facts: Facts) -> tuple[EgressPath, EgressPath, str, str]:
    """(path in, path out, data's continent, offer's continent) by the egress rule, with each end's place from the
    offer's own country/continent or the region table (arbitrage.geo); '' where unknown."""
    data_continent = locate(facts, data.provider, data.region)[1] if getattr(facts, "regions", None) else ""
    offer_continent = offer.continent or (
        locate(facts, offer.provider, offer.region, offer.zone)[1] if getattr(facts, "regions", None) else "")
    path_in = egress_path(data.provider, data.region, offer.provider, offer.region, dst_zone=offer.zone,
                          src_continent=data_continent, dst_continent=offer_continent)
    path_out = egress_path(offer.provider, offer.region, data.provider, data.region, src_zone=offer.zone,
                           src_continent=offer_continent, dst_continent=data_continent)
    return path_in, path_out, data_continent, offer_continent


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


def estimate(spec: JobSpec, placement: Placement, facts: Facts, rate: SpotRate | None = None) -> CostBreakdown:
    """Expected hours and costs of running ``spec`` on ``placement``.

    ``rate`` is the spot preemption rate to use (the planner's `spotrisk.RiskBook`, which knows the live Advisor
    table and the ledger's history); without it a spot placement is rated from the fact tables alone.
    """
    offer, nodes = placement.offer, placement.nodes
    hourly = placement.hourly_usd
    assume = facts.assumptions

    intra_node = facts.intra_node_efficiency(offer.provider, offer.instance_type, offer.gpu_model, offer.gpus_per_node)
    efficiency = facts.scaling_efficiency(offer.interconnect_gbps, nodes) * intra_node
    unit: UnitRate | None = None
    if spec.work.tokens is not None:  # hours from the unit tables; relative throughput does not apply
        found = unit_rate(spec.work.tokens, spec.workload, offer.gpu_model, offer.gpu_memory_gb,
                          offer.gpus_per_node, nodes, efficiency, facts.units)
        if isinstance(found, str):
            return _unfit(placement, hourly, efficiency, intra_node, assume.provision_minutes / 60, found)
        unit, relative, work_hours = found, math.nan, found.work_hours
    else:
        reference = facts.gpu(spec.work.reference).throughput(spec.workload)
        relative = facts.gpu(offer.gpu_model).throughput(spec.workload) / reference
        if spec.work.wall_hours is not None:  # no work stated: the same wall hours everywhere (cluster $/h ranking)
            work_hours = spec.work.wall_hours
        else:
            work_hours = spec.work.gpu_hours / (placement.total_gpus * relative * efficiency)

    if spec.checkpoint is not None:
        segment_hours = min(spec.checkpoint.interval_minutes / 60, work_hours)
        write_minutes = spec.checkpoint.write_minutes
        write_hours = (assume.checkpoint_write_minutes if write_minutes is None else write_minutes) / 60
        checkpoint_hours = work_hours / segment_hours * write_hours if work_hours > 0 else 0.0
    else:
        segment_hours, write_hours, checkpoint_hours = work_hours, 0.0, 0.0

    preemption_hours = expected_preemptions = 0.0
    spot_rate: SpotRate | None = None
    if placement.spot:
        if rate is None:
            from arbitrage.spotrisk import RiskBook

            rate = RiskBook(facts).rate(offer)
        spot_rate = rate
        preemption_hours, expected_preemptions = spot_overhead(
            work_hours, segment_hours, write_hours, rate.preemptions_per_hour * nodes, rate.restart_hours)

    egress_in = egress_out = staging = 0.0
    data: DataLocation | None = spec.data
    if data is not None:
        path_in, path_out, data_continent, offer_continent = _transfer_paths(data, offer, facts)
        egress_in = egress_usd(facts.egress_tiers, data.provider, path_in, data.size_gb, from_continent=data_continent)
        egress_out = egress_usd(facts.egress_tiers, offer.provider, path_out, spec.outputs_gb,
                                from_continent=offer_continent)
        staging = _transfer_hours(facts, path_in, data.size_gb) + _transfer_hours(facts, path_out, spec.outputs_gb)

    provision = assume.provision_minutes / 60
    billed_hours = provision + staging + work_hours + checkpoint_hours
    return CostBreakdown(
        placement=placement,
        hourly_usd=hourly,
        relative_throughput=relative,
        scaling_efficiency=efficiency,
        intra_node_efficiency=intra_node,
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
        preemptions_per_hour=spot_rate.preemptions_per_hour if spot_rate else 0.0,
        preemption_source=spot_rate.source if spot_rate else "",
        preemption_label=spot_rate.label if spot_rate else "",
        segment_hours=segment_hours + write_hours,
        restart_hours=spot_rate.restart_hours if spot_rate else 0.0,
        unit=unit,
    )


def _unfit(placement: Placement, hourly: float, efficiency: float, intra_node: float, provision: float,
           reason: str) -> CostBreakdown:
    """A placement that cannot do the token work at all: infinite hours and cost, and the reason."""
    return CostBreakdown(
        placement=placement, hourly_usd=hourly, relative_throughput=math.nan, scaling_efficiency=efficiency,
        intra_node_efficiency=intra_node, work_hours=math.inf, checkpoint_hours=0.0, provision_hours=provision,
        staging_hours=0.0, preemption_hours=0.0, expected_preemptions=0.0, expected_hours=math.inf,
        compute_usd=math.inf, preemption_usd=0.0, egress_in_usd=0.0, egress_out_usd=0.0, unfit=reason)


def deadline_probability(cost: CostBreakdown, deadline_hours: float) -> float:
    """P(the placement finishes within ``deadline_hours``) under the cost model's own preemption model.

    On-demand (or a zero rate) is deterministic: 1.0 when the expected hours fit, else 0.0. Spot uses
    `risk.finish_by` with the same work (compute + checkpoint writes), retried segment, restart and cluster rate
    (nodes x the per-instance rate) as the expected hours, after provisioning and staging.
    """
    rate = cost.preemptions_per_hour * cost.placement.nodes if cost.placement.spot else 0.0
    if rate <= 0 or not cost.finite:
        return 1.0 if cost.expected_hours <= deadline_hours else 0.0
    if deadline_hours <= 0:
        return 0.0
    from arbitrage.risk import finish_by

    work = cost.work_hours + cost.checkpoint_hours
    segment = cost.segment_hours if cost.segment_hours > 0 else work
    return finish_by(deadline_hours, work_hours=work, segment_hours=segment, restart_hours=cost.restart_hours,
                     rate_per_hour=rate, fixed_hours=cost.provision_hours + cost.staging_hours).probability

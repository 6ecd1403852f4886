"""Planner: job spec + offers -> ranked feasible placements and counted rejections. Pure, no I/O."""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from arbitrage.costmodel import CostBreakdown, Placement, estimate
from arbitrage.offers import Offer

if TYPE_CHECKING:
    from arbitrage.facts import Facts
    from arbitrage.jobspec import JobSpec

Objective = Literal["cost", "time"]

# Rejection reasons, worded for people; the JSON output uses them as keys.
R_GPU_COUNT = "GPUs per node differ from the request"
R_GPU_MEMORY = "GPU memory below minimum"
R_PROVIDER = "provider not allowed"
R_REGION = "region not allowed"
R_HOST = "vCPUs or RAM below minimum"
R_NO_RDMA = "no RDMA interconnect (required for multi-node)"
R_PREFERRED = "no RDMA interconnect (preferred, and an RDMA placement is feasible)"
R_NO_SPOT = "no spot price (spot: always)"
R_NO_ON_DEMAND = "no on-demand price (spot: never)"
R_UNBOUNDED = "spot preemptions would never let it finish"
R_DEADLINE = "misses the deadline"
R_HOURLY = "over the hourly budget"
R_TOTAL = "over the total budget"
BUDGET_REASONS = frozenset({R_HOURLY, R_TOTAL})


@dataclass(frozen=True)
class Plan:
    """Ranked feasible placements, the best over-budget ones, and why the rest were rejected."""

    spec: JobSpec
    objective: Objective
    placements: tuple[CostBreakdown, ...]
    over_budget: tuple[CostBreakdown, ...]
    rejections: dict[str, int] = field(default_factory=dict)
    candidates: int = 0
    deadline_hours: float | None = None

    @property
    def best(self) -> CostBreakdown | None:
        """The chosen placement, or None when nothing is feasible within budget."""
        return self.placements[0] if self.placements else None


def _matches(value: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)


def offer_rejection(spec: JobSpec, offer: Offer, count: int) -> str | None:
    """Why an offer of a requested accelerator cannot host the job at all, or None."""
    if offer.gpus_per_node != count:
        return R_GPU_COUNT
    if spec.min_gpu_memory_gb is not None and offer.gpu_memory_gb < spec.min_gpu_memory_gb:
        return R_GPU_MEMORY
    if spec.providers_allow is not None and not _matches(offer.provider, spec.providers_allow):
        return R_PROVIDER
    if _matches(offer.provider, spec.providers_deny):
        return R_PROVIDER
    if spec.regions_allow is not None and not _matches(offer.region, spec.regions_allow):
        return R_REGION
    if _matches(offer.region, spec.regions_deny):
        return R_REGION
    if (spec.min_vcpus is not None and offer.vcpus is not None and offer.vcpus < spec.min_vcpus) or (
            spec.min_ram_gb is not None and offer.ram_gb is not None and offer.ram_gb < spec.min_ram_gb):
        return R_HOST
    if spec.num_nodes > 1 and spec.interconnect == "required" and not offer.has_rdma:
        return R_NO_RDMA
    return None


def candidates(spec: JobSpec, offers: Iterable[Offer], rejections: Counter[str]) -> Iterator[Placement]:
    """Every placement allowed by the spec's hard rules; offers ruled out are counted by reason."""
    for offer in offers:
        rank = next((i for i, a in enumerate(spec.accelerators) if offer.provides(a.name)), None)
        if rank is None:
            continue  # not a requested GPU: not a rejection, just not a candidate
        reason = offer_rejection(spec, offer, spec.accelerators[rank].count)
        if reason is not None:
            rejections[reason] += 1
            continue
        has_od, has_spot = offer.on_demand_usd_per_hour is not None, offer.spot_usd_per_hour is not None
        if spec.spot == "never" and not has_od:
            rejections[R_NO_ON_DEMAND] += 1
        elif spec.spot == "always" and not has_spot:
            rejections[R_NO_SPOT] += 1
        if spec.spot != "always" and has_od:
            yield Placement(offer, spec.num_nodes, spot=False, preference=rank)
        if spec.spot != "never" and has_spot:
            yield Placement(offer, spec.num_nodes, spot=True, preference=rank)


def rank_key(spec: JobSpec, objective: Objective):
    """Sort key: ordered preference first (if the spec lists one), then the objective, then stable ties."""

    def key(b: CostBreakdown) -> tuple:
        o = b.placement.offer
        pref = b.placement.preference if spec.ordered else 0
        primary = (b.total_usd, b.expected_hours) if objective == "cost" else (b.expected_hours, b.total_usd)
        return (pref, *primary, o.provider, o.region, o.zone or "", o.instance_type, b.placement.spot)

    return key


def plan(spec: JobSpec, offers: Iterable[Offer], facts: Facts, now: datetime,
         objective: Objective = "cost") -> Plan:
    """Cost every candidate placement and rank the feasible ones by the objective."""
    rejections: Counter[str] = Counter()
    deadline_hours = spec.deadline.hours_left(now) if spec.deadline is not None else None
    budget = spec.budget
    feasible: list[CostBreakdown] = []
    over: list[CostBreakdown] = []
    total = 0
    for placement in candidates(spec, offers, rejections):
        total += 1
        cost = estimate(spec, placement, facts)
        if not cost.finite:
            rejections[R_UNBOUNDED] += 1
        elif deadline_hours is not None and cost.expected_hours > deadline_hours:
            rejections[R_DEADLINE] += 1
        elif budget.max_hourly_usd is not None and cost.hourly_usd > budget.max_hourly_usd:
            rejections[R_HOURLY] += 1
            over.append(cost)
        elif budget.max_total_usd is not None and cost.total_usd > budget.max_total_usd:
            rejections[R_TOTAL] += 1
            over.append(cost)
        else:
            feasible.append(cost)

    if spec.num_nodes > 1 and spec.interconnect == "preferred" and any(c.placement.offer.has_rdma for c in feasible):
        dropped = [c for c in feasible if not c.placement.offer.has_rdma]
        if dropped:
            rejections[R_PREFERRED] += len(dropped)
        feasible = [c for c in feasible if c.placement.offer.has_rdma]

    key = rank_key(spec, objective)
    return Plan(
        spec=spec,
        objective=objective,
        placements=tuple(sorted(feasible, key=key)),
        over_budget=tuple(sorted(over, key=key)),
        rejections=dict(rejections.most_common()),
        candidates=total,
        deadline_hours=deadline_hours,
    )

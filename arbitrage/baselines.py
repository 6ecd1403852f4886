"""What people pick without gpuarb, costed with the same model. Pure, no I/O.

Two baselines, used by `gpuarb report plan` (savings) and the plan-quality benchmark:
- naive: the first-choice GPUs, on-demand, on the hyperscaler where the data lives (in its region when sold
  there), i.e. "just run it next to the data";
- cheapest_listed: the lowest listed price per GPU-hour among the requested GPUs, ignoring egress, interconnect
  and preemption, i.e. what a price list (or a price-only optimizer) picks.
Both respect the job's hard rules (GPU count, memory, allow/deny lists) but not its deadline or budget:
they answer "what would this have cost", not "is it feasible".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from arbitrage.costmodel import CostBreakdown, Placement, estimate
from arbitrage.offers import Offer
from arbitrage.planner import candidates
from providers.registry import find

if TYPE_CHECKING:
    from arbitrage.facts import Facts
    from arbitrage.jobspec import JobSpec

# Where data with no declared home is assumed to live for the naive choice: the biggest hyperscaler.
DEFAULT_HOME_PROVIDER = "aws"


def _stable(offer: Offer) -> tuple[str, str, str, str]:
    return (offer.provider, offer.region, offer.zone or "", offer.instance_type)


def _can_do(spec: JobSpec, placement: Placement, facts: Facts) -> bool:
    """False when work stated in tokens cannot run on the placement at all (the model does not fit it, or no
    throughput fact): a hard rule like the GPU count, so no baseline picks it."""
    return spec.work.tokens is None or not estimate(spec, placement, facts).unfit


def naive(spec: JobSpec, offers: Iterable[Offer], facts: Facts) -> CostBreakdown | None:
    """First-choice GPUs on-demand at the data's hyperscaler (its region if sold there), or None if not sold."""
    home_provider = spec.data.provider if spec.data is not None else DEFAULT_HOME_PROVIDER
    home_card = find(home_provider)
    if home_card is None or home_card.tier != "hyperscaler":
        home_provider = DEFAULT_HOME_PROVIDER
    home_region = spec.data.region if spec.data is not None and spec.data.provider == home_provider else None
    first = spec.accelerators[0].name
    on_demand = replace(spec, spot="never")  # naive means on-demand, whatever spot policy the job allows
    options = [
        p for p in candidates(on_demand, offers, Counter(), facts)
        if not p.spot and p.offer.provider == home_provider and p.offer.provides(first) and _can_do(on_demand, p, facts)
    ]
    if not options:
        return None
    in_region = [p for p in options if p.offer.region == home_region]
    pool = in_region or options
    best = min(pool, key=lambda p: (p.hourly_usd, _stable(p.offer)))
    return estimate(on_demand, Placement(best.offer, best.nodes, spot=False, preference=best.preference), facts)


def cheapest_listed(spec: JobSpec, offers: Iterable[Offer], facts: Facts) -> CostBreakdown | None:
    """Lowest listed USD per GPU-hour among allowed placements (spot if the spec allows it), costed in full."""
    options = [p for p in candidates(spec, offers, Counter(), facts) if _can_do(spec, p, facts)]
    if not options:
        return None
    best = min(options, key=lambda p: (p.hourly_usd / p.total_gpus, p.spot, _stable(p.offer)))
    return estimate(spec, best, facts)

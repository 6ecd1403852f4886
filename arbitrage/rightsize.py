"""Right-sizing for work stated in tokens: which smaller or fewer GPUs the model also fits, and whether one of them
would do the same work for less. Pure, no I/O.

The memory rule is arbitrage.units': a serving replica needs parameters x bytes per parameter x (1 + overhead) and
spans the smallest power-of-two group of GPUs of one node that holds it; training shards 16 bytes per parameter
over every GPU. The planner asks this module after ranking, with the same hard rules (provider, region, host) and
feasibility (deadline, budget) it applied to the requested accelerators, but over every offer in the catalog.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arbitrage.costmodel import CostBreakdown, Placement, estimate
from arbitrage.offers import Offer
from arbitrage.plural import plural
from arbitrage.units import inference_memory_gb, tensor_parallel, training_memory_gb_per_gpu, unit_rate

if TYPE_CHECKING:
    from arbitrage.facts import Facts
    from arbitrage.jobspec import JobSpec
    from arbitrage.spotrisk import SpotRate


@dataclass(frozen=True, slots=True)
class Fit:
    """One GPU model's smallest configuration that holds the model: GPUs per replica (inference) or node."""

    gpu_model: str
    gpu_memory_gb: float
    gpus: int

    def __str__(self) -> str:
        return f"{self.gpus}x {self.gpu_model} {self.gpu_memory_gb:g}GB"


@dataclass(frozen=True)
class RightSize:
    """What the model needs, the smallest configurations that hold it, and a cheaper smaller one if any."""

    need_gb: float  # inference: per replica; training: in total (before sharding)
    rule: str  # the memory rule in words, with its numbers
    fits: tuple[Fit, ...]  # smallest configuration per GPU model with a rate fact, fewest GPU-GB first
    cheaper: CostBreakdown | None  # cheapest feasible placement on fewer or smaller GPUs than #1, cheaper than it
    considered: int  # placements costed
    advice: str = ""  # how to get ``cheaper`` planned: the spec change it needs


def _fit(spec: JobSpec, offer: Offer, facts: Facts) -> int | None:
    """GPUs of ``offer`` the model needs at the least (one replica, or one node for training), or None when it does
    not fit or the GPU has no rate fact for the work (then it could not be planned either)."""
    work = spec.work.tokens
    assert work is not None
    if isinstance(unit_rate(work, spec.workload, offer.gpu_model, offer.gpu_memory_gb, offer.gpus_per_node, 1, 1.0,
                            facts.units), str):
        return None
    if spec.workload == "training":
        for gpus in range(1, offer.gpus_per_node + 1):
            if training_memory_gb_per_gpu(work.model, gpus, facts.units) <= offer.gpu_memory_gb:
                return gpus
        return None
    return tensor_parallel(inference_memory_gb(work.model, facts.units), offer.gpu_memory_gb, offer.gpus_per_node)


def right_size(spec: JobSpec, best: CostBreakdown, offers: Iterable[Offer], facts: Facts, *,
               allowed: Callable[[Offer], bool], feasible: Callable[[CostBreakdown], bool],
               rate: Callable[[Offer], SpotRate | None]) -> RightSize | None:
    """The right-sizing hint for ``best`` (the plan's #1), or None for work not stated in tokens.

    ``allowed`` applies the job's hard rules to an offer of any GPU count; ``feasible`` its deadline and budget to a
    costed placement; ``rate`` gives a spot offer's preemption rate (the planner's risk book).
    """
    work = spec.work.tokens
    if work is None:
        return None
    units = facts.units
    if spec.workload == "training":
        need = work.model.params_b * units.constants.training_bytes_per_param * (
            1 + units.constants.training_memory_overhead)
        rule = (f"{work.model} needs {need:,.0f} GB of training state ({work.model.params_b:g}e9 params x "
                f"{units.constants.training_bytes_per_param:g} bytes x {1 + units.constants.training_memory_overhead:g}"
                ") sharded over the GPUs")
    else:
        need = inference_memory_gb(work.model, units)
        rule = (f"{work.model} needs {need:,.0f} GB per replica ({work.model.params_b:g}e9 params x "
                f"{plural(units.bytes_per_param(work.model.precision), 'byte')} x "
                f"{1 + units.constants.inference_memory_overhead:g} for KV cache and activations)")
    b_offer = best.placement.offer
    fits: dict[str, Fit] = {}
    cheaper: CostBreakdown | None = None
    considered = 0
    for offer in offers:
        gpus = _fit(spec, offer, facts)
        if gpus is None:
            continue
        known = fits.get(offer.gpu_model)
        if known is None or gpus < known.gpus:
            fits[offer.gpu_model] = Fit(offer.gpu_model, offer.gpu_memory_gb, gpus)
        smaller = (offer.gpus_per_node < best.placement.total_gpus or offer.gpu_memory_gb < b_offer.gpu_memory_gb)
        if not smaller or not allowed(offer):
            continue
        for spot in (False, True):
            if (spot and spec.spot == "never") or (not spot and spec.spot == "always"):
                continue
            if offer.usd_per_hour(spot) is None:
                continue
            placement = Placement(offer, 1, spot=spot)
            cost = estimate(spec, placement, facts, rate(offer) if spot else None)
            considered += 1
            if cost.unfit or not math.isfinite(cost.total_usd) or not feasible(cost):
                continue
            if cost.total_usd < best.total_usd and (cheaper is None or cost.total_usd < cheaper.total_usd):
                cheaper = cost
    ordered = tuple(sorted(fits.values(), key=lambda f: (f.gpus * f.gpu_memory_gb, f.gpus, f.gpu_model)))
    advice = ""
    if cheaper is not None:
        o = cheaper.placement.offer
        requested = any(o.provides(a.name) and a.count == o.gpus_per_node for a in spec.accelerators)
        advice = ("set num_nodes: 1" if requested else
                  f"add {o.gpu_model}: {o.gpus_per_node} to resources.accelerators"
                  + (" and set num_nodes: 1" if spec.num_nodes > 1 else ""))
    return RightSize(need, rule, ordered, cheaper, considered, advice)


def hint_lines(hint: RightSize, best: CostBreakdown) -> list[str]:
    """Plain-language lines for a plan's explanation."""
    shown = ", ".join(str(f) for f in hint.fits[:4]) or "nothing in the catalog"
    lines = [f"right-sizing: {hint.rule}; smallest that hold it: {shown}"]
    if hint.cheaper is not None:
        c, o = hint.cheaper, hint.cheaper.placement.offer
        unit, mine = c.usd_per_million_tokens, best.usd_per_million_tokens
        per = (f" = ${unit:,.4f}/1M tokens vs ${mine:,.4f}/1M for #1" if unit is not None and mine is not None
               else "")
        lines.append(f"right-sizing: a smaller configuration would also do it for less: {o.gpus_per_node}x "
                     f"{o.gpu_model} {o.provider} {o.location} {o.instance_type} "
                     f"({'spot' if c.placement.spot else 'on-demand'}) ${c.total_usd:,.2f}{per}; to plan it, "
                     f"{hint.advice}")
    else:
        lines.append(f"right-sizing: no smaller or fewer-GPU configuration is cheaper ({hint.considered} costed)")
    return lines

"""Price comparison data: per GPU model, each provider's cheapest on-demand and spot offer, the price per unit
of work (USD per reference-GPU-hour), spot discounts and the spread between market tiers. Pure, no I/O.

The effective price divides USD per GPU-hour by the GPU's throughput relative to a reference GPU (gpus.csv),
so an H100 at 2.4x the A100's hourly price is the cheaper one when it does 2.5x the work.

With a model (``unit_model``: billions of parameters and precision) the report also prices a million tokens of that
model per offer (arbitrage.units: the instance's USD per hour x the hours its tensor-parallel replicas take for a
million output tokens, or training tokens), and ranks GPU models by their cheapest unit cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from arbitrage.catalog import age_days, is_stale
from arbitrage.offers import Offer
from arbitrage.units import ModelSpec, TokenWork, UnitRate, unit_rate
from providers.registry import TIERS, tier_of

if TYPE_CHECKING:
    from arbitrage.facts import Facts, Workload

@dataclass(frozen=True, slots=True)
class Quote:
    """One offer at one purchase option: per GPU-hour, per instance-hour and per reference-GPU-hour (USD)."""

    offer: Offer
    spot: bool
    usd_per_gpu_hour: float
    usd_per_hour: float  # per instance
    effective_usd_per_ref_gpu_hour: float | None  # None when the GPU's relative throughput is unknown or zero
    age_days: float | None = None  # the price's age at the report's time; None when undated or no time was given
    stale: bool | None = None  # older than the stale threshold (assumptions.toml) or undated; None without a time
    usd_per_million_tokens: float | None = None  # with the report's unit model: this offer's unit cost

    @property
    def option(self) -> str:
        """'spot' or 'on-demand'."""
        return "spot" if self.spot else "on-demand"


@dataclass(frozen=True, slots=True)
class ProviderRow:
    """One provider's cheapest on-demand and cheapest spot offer for one GPU model."""

    provider: str
    tier: str
    on_demand: Quote | None
    spot: Quote | None
    offers: int  # how many of this provider's offers carry the model

    @property
    def spot_discount(self) -> float | None:
        """1 - cheapest spot / cheapest on-demand (per GPU-hour), when both exist."""
        if self.on_demand is None or self.spot is None or self.on_demand.usd_per_gpu_hour <= 0:
            return None
        return 1 - self.spot.usd_per_gpu_hour / self.on_demand.usd_per_gpu_hour

    @property
    def quotes(self) -> tuple[Quote, ...]:
        """The quotes present (on-demand first)."""
        return tuple(q for q in (self.on_demand, self.spot) if q is not None)


@dataclass(frozen=True, slots=True)
class TierSpread:
    """The cheapest offer of one market tier, and how it compares with the cheapest tier (1.0 = cheapest)."""

    tier: str
    on_demand: Quote | None
    spot: Quote | None
    on_demand_ratio: float | None
    spot_ratio: float | None


@dataclass(frozen=True, slots=True)
class ModelSection:
    """Everything about one GPU model: throughput fact, per-provider rows, tier spread, cheapest quotes."""

    gpu_model: str
    memory_gb: float
    relative_throughput: float | None  # vs the report's reference GPU
    throughput_source: str
    providers: tuple[ProviderRow, ...]  # cheapest on-demand (else spot) per GPU-hour first
    tiers: tuple[TierSpread, ...]
    best_on_demand: Quote | None
    best_spot: Quote | None
    # With the report's unit model: the cheapest offer per million tokens of each option, where the figure comes
    # from (units' basis line), and why there is none ('' when there is).
    unit_on_demand: Quote | None = None
    unit_spot: Quote | None = None
    unit_basis: str = ""
    unit_missing: str = ""

    @property
    def best_unit(self) -> float | None:
        """The lowest USD per million tokens of either option (None without a unit model or a fact)."""
        values = [q.usd_per_million_tokens for q in (self.unit_on_demand, self.unit_spot)
                  if q is not None and q.usd_per_million_tokens is not None]
        return min(values) if values else None

    @property
    def best_effective(self) -> float | None:
        """The lowest effective price of either option (for ranking models)."""
        values = [q.effective_usd_per_ref_gpu_hour for q in (self.best_on_demand, self.best_spot)
                  if q is not None and q.effective_usd_per_ref_gpu_hour is not None]
        return min(values) if values else None

    @property
    def quotes(self) -> tuple[Quote, ...]:
        """Every quote shown for this model."""
        return tuple(q for row in self.providers for q in row.quotes)


@dataclass(frozen=True, slots=True)
class PriceReport:
    """The whole comparison: one section per GPU model, cheapest per unit of work first."""

    reference_gpu: str
    workload: str
    models: tuple[ModelSection, ...]  # cheapest effective on-demand price first (cheapest unit cost with a model)
    offers_considered: int
    unit_model: ModelSpec | None = None  # the model the USD-per-million-tokens view prices

    @property
    def quotes(self) -> tuple[Quote, ...]:
        """Every quote in the report."""
        return tuple(q for m in self.models for q in m.quotes)

    def provenance(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """Per provider shown: its sources, as-of dates and price references."""
        out: dict[str, dict[str, set[str]]] = {}
        for q in self.quotes:
            o = q.offer
            entry = out.setdefault(o.provider, {"source": set(), "as_of": set(), "price_ref": set()})
            entry["source"].add(o.source)
            entry["as_of"].add(o.as_of)
            entry["price_ref"].add(o.price_ref)
        return {p: {k: tuple(sorted(v)) for k, v in e.items()} for p, e in sorted(out.items())}


def _stable(o: Offer) -> tuple[str, str, str, str]:
    return (o.provider, o.region, o.zone or "", o.instance_type)


@dataclass(frozen=True, slots=True)
class Clock:
    """The time ages are counted to and the age past which a price is stale (None: ages not shown)."""

    now: datetime | None = None
    stale_days: float = 90.0


def _quote(offer: Offer, spot: bool, relative: float | None, clock: Clock = Clock()) -> Quote | None:
    per_gpu, per_instance = offer.usd_per_gpu_hour(spot), offer.usd_per_hour(spot)
    if per_gpu is None or per_instance is None or per_gpu <= 0:
        return None  # not sold so (a zero price is a catalog gap, not a free GPU)
    effective = per_gpu / relative if relative else None
    if clock.now is None:
        return Quote(offer, spot, per_gpu, per_instance, effective)
    return Quote(offer, spot, per_gpu, per_instance, effective, age_days(offer, clock.now),
                 is_stale(offer, clock.now, clock.stale_days))


def _cheapest(quotes: Iterable[Quote | None]) -> Quote | None:
    present = [q for q in quotes if q is not None]
    return min(present, key=lambda q: (q.usd_per_gpu_hour, _stable(q.offer))) if present else None


def _ratio(value: Quote | None, floor: float | None) -> float | None:
    return None if value is None or not floor else value.usd_per_gpu_hour / floor


def _tiers(rows: list[ProviderRow]) -> tuple[TierSpread, ...]:
    best: dict[str, tuple[Quote | None, Quote | None]] = {}
    for tier in sorted({r.tier for r in rows}, key=lambda t: (TIERS.index(t) if t in TIERS else 99, t)):
        members = [r for r in rows if r.tier == tier]
        best[tier] = (_cheapest(r.on_demand for r in members), _cheapest(r.spot for r in members))
    od_floor = min((od.usd_per_gpu_hour for od, _ in best.values() if od is not None), default=None)
    spot_floor = min((sp.usd_per_gpu_hour for _, sp in best.values() if sp is not None), default=None)
    return tuple(TierSpread(t, od, sp, _ratio(od, od_floor), _ratio(sp, spot_floor)) for t, (od, sp) in best.items())


def _section(model: str, offers: list[Offer], facts: Facts, reference: float | None,
             workload: Workload, clock: Clock = Clock(), unit: ModelSpec | None = None) -> ModelSection:
    fact = facts.gpus.get(model)
    relative = fact.throughput(workload) / reference if fact is not None and reference else None
    by_provider: dict[str, list[Offer]] = {}
    for o in offers:
        by_provider.setdefault(o.provider, []).append(o)
    rows = []
    for provider, group in by_provider.items():
        od = _cheapest(_quote(o, False, relative, clock) for o in group)
        sp = _cheapest(_quote(o, True, relative, clock) for o in group)
        if od is None and sp is None:
            continue
        rows.append(ProviderRow(provider, tier_of(provider), od, sp, len(group)))

    def row_key(r: ProviderRow) -> tuple:
        first = r.on_demand or r.spot
        assert first is not None
        return (r.on_demand is None, first.usd_per_gpu_hour, r.provider)

    rows.sort(key=row_key)
    section = ModelSection(
        gpu_model=model, memory_gb=fact.memory_gb if fact else max(o.gpu_memory_gb for o in offers),
        relative_throughput=relative, throughput_source=fact.source if fact else "no row in gpus.csv",
        providers=tuple(rows), tiers=_tiers(rows),
        best_on_demand=_cheapest(r.on_demand for r in rows), best_spot=_cheapest(r.spot for r in rows),
    )
    return section if unit is None else _unit_view(section, offers, facts, relative, workload, clock, unit)


def _unit_view(section: ModelSection, offers: list[Offer], facts: Facts, relative: float | None, workload: str,
               clock: Clock, model: ModelSpec) -> ModelSection:
    """The section with its cheapest on-demand and spot offer per million tokens of ``model`` (one node each)."""
    work = TokenWork(model, 1e6)
    best: dict[bool, Quote] = {}
    basis, missing = "", set()
    for o in offers:
        found = unit_rate(work, workload, o.gpu_model, o.gpu_memory_gb, o.gpus_per_node, 1, 1.0, facts.units)
        if not isinstance(found, UnitRate):
            missing.add(found)
            continue
        basis = basis or found.basis
        for spot in (False, True):
            q = _quote(o, spot, relative, clock)
            if q is None:
                continue
            q = replace(q, usd_per_million_tokens=q.usd_per_hour * found.work_hours)
            held = best.get(spot)
            if held is None or (q.usd_per_hour * found.work_hours, _stable(o)) < (
                    held.usd_per_million_tokens or 0.0, _stable(held.offer)):
                best[spot] = q
    return replace(section, unit_on_demand=best.get(False), unit_spot=best.get(True), unit_basis=basis,
                   unit_missing="" if best else "; ".join(sorted(missing)))


def build_price_report(offers: Iterable[Offer], facts: Facts, reference_gpu: str = "H100",
                       workload: Workload = "training", now: datetime | None = None,
                       unit_model: ModelSpec | None = None) -> PriceReport:
    """Group offers by exact GPU model and compare providers, options and tiers.

    Models come cheapest effective on-demand price per reference-GPU-hour first; models sold only as spot
    (or without a throughput fact) come last. With ``now``, every quote carries its price's age and stale flag.
    With ``unit_model`` each model also gets its cheapest USD per million tokens, and models come cheapest unit cost
    first (models without a fact for it last).
    """
    clock = Clock(now, facts.assumptions.stale_price_days)
    offers = list(offers)
    ref_fact = facts.gpu(reference_gpu)
    reference = ref_fact.throughput(workload) or None
    by_model: dict[str, list[Offer]] = {}
    for o in offers:
        by_model.setdefault(o.gpu_model, []).append(o)
    sections = [_section(m, group, facts, reference, workload, clock, unit_model) for m, group in by_model.items()]
    sections = [s for s in sections if s.providers]

    def model_key(s: ModelSection) -> tuple:
        od = s.best_on_demand.effective_usd_per_ref_gpu_hour if s.best_on_demand else None
        best = s.best_effective
        return (od is None, od or 0.0, best is None, best or 0.0, s.gpu_model)

    ordered = sorted(sections, key=model_key)
    if unit_model is not None:
        ordered.sort(key=lambda s: (s.best_unit is None, s.best_unit or 0.0))
    return PriceReport(reference_gpu, workload, tuple(ordered), len(offers), unit_model)

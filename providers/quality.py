"""The price quality gate: sets aside prices that cannot be what a user pays, each with its rule and reason.

Run on every batch of offers before anything plans with them: when the snapshot is built
(scripts/build_snapshot.py, through ``gate_rows``) and on every live or cached fetch (providers/fetch.py).
The gate is pure: offers and rules in, kept offers and set-aside prices out. It judges each price (on-demand
and spot) on its own: an offer loses only the price that failed, and is dropped only when no price is left.

Rules, in the order they are applied (rule ids are what JSON shows):

* ``not-a-price``: not a finite number above zero (or an offer with no GPUs).
* ``not-sold-on-demand``: an on-demand price for a shape the provider does not sell on-demand
  (``arbitrage/data/not_on_demand.csv``, each row cited: GCP A3 High 1/2/4-GPU, A3 Ultra, A4; AWS p5e).
* ``out-of-band``: a per-GPU-hour price outside the GPU's plausible band (``arbitrage/data/price_bands.csv``:
  1/5 of the lowest to 4x the highest public price seen, each row cited; ``*`` for GPUs without a row).
* ``outlier-low`` / ``outlier-high``: an on-demand per-GPU price under ``price_outlier_low_ratio`` (0.55) or over
  ``price_outlier_high_ratio`` (2.0) times the same provider's median for the same SKU (instance type and GPU)
  across its regions (``arbitrage/data/assumptions.toml``). The SKU, not the GPU model, because small-GPU shapes
  carry their host's vCPUs and RAM (a g4dn.2xlarge and a g4dn.12xlarge differ per GPU by design). The median is
  taken over regions (each region's median first), needs at least ``MIN_REGIONS`` regions, and skips marketplaces
  and owned capacity (hosts set their own prices there). Spot prices are not compared this way: spot markets
  differ by zone by design.
* ``spot-above-on-demand``: a spot price above the same offer's on-demand price (after the rules above); AWS caps
  Spot at the On-Demand price and no provider sells preemptible capacity dearer than the same machine on-demand.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from arbitrage.errors import DataError
from arbitrage.globs import glob_match
from arbitrage.offers import Offer
from arbitrage.plural import noun, plural
from providers.registry import find

if TYPE_CHECKING:
    from arbitrage.facts import Facts

Option = Literal["on-demand", "spot"]
OPTIONS: tuple[Option, ...] = ("on-demand", "spot")

R_NOT_A_PRICE = "not-a-price"
R_NOT_SOLD = "not-sold-on-demand"
R_BAND = "out-of-band"
R_LOW = "outlier-low"
R_HIGH = "outlier-high"
R_SPOT_ABOVE = "spot-above-on-demand"
RULES = (R_NOT_A_PRICE, R_NOT_SOLD, R_BAND, R_LOW, R_HIGH, R_SPOT_ABOVE)

# A provider's median for a GPU is only a reference when the GPU is priced in this many regions or more.
MIN_REGIONS = 3
# Tiers whose prices are set per host (marketplaces) or by the owner: no provider-wide list price to compare with.
_NO_LIST_PRICE_TIERS = frozenset({"marketplace", "owned"})


@dataclass(frozen=True, slots=True)
class NotSoldOnDemand:
    """A shape a provider does not sell on-demand (what it is sold as instead, and the citation)."""

    provider: str
    instance_glob: str
    sold_as: str
    source: str


@dataclass(frozen=True, slots=True)
class PriceBand:
    """The plausible USD per GPU-hour of one GPU model (``*`` = any model without its own row)."""

    gpu_model: str
    min_usd_per_gpu_hour: float
    max_usd_per_gpu_hour: float
    source: str


@dataclass(frozen=True)
class GateRules:
    """Everything the gate judges by: cited tables plus the outlier thresholds (assumptions.toml)."""

    bands: dict[str, PriceBand]
    not_on_demand: tuple[NotSoldOnDemand, ...] = ()
    outlier_low_ratio: float = 0.55
    outlier_high_ratio: float = 2.0
    min_regions: int = MIN_REGIONS

    def band(self, gpu_model: str) -> PriceBand | None:
        """The band of a GPU model, else the ``*`` row, else None (no band check)."""
        return self.bands.get(gpu_model) or self.bands.get("*")

    def not_sold_on_demand(self, provider: str, instance_type: str) -> NotSoldOnDemand | None:
        """The row saying a shape is not sold on-demand, or None."""
        return next((r for r in self.not_on_demand if r.provider == provider
                     and glob_match(instance_type, r.instance_glob)), None)


@dataclass(frozen=True, slots=True)
class Quarantined:
    """One price set aside: the offer as received, which of its prices, the rule and a one-line reason."""

    offer: Offer
    option: Option
    rule: str
    reason: str

    @property
    def usd_per_hour(self) -> float | None:
        """The set-aside price, USD per instance-hour as received."""
        return self.offer.usd_per_hour(self.option == "spot")


@dataclass(frozen=True)
class GateResult:
    """Offers that keep at least one good price (bad prices removed), and every price set aside."""

    kept: list[Offer]
    quarantined: list[Quarantined]

    def counts(self) -> dict[str, int]:
        """Set-aside prices per provider."""
        return dict(Counter(q.offer.provider for q in self.quarantined))


def _per_gpu(price: float, gpus: int) -> float:
    return price / gpus


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:.3f}"


def _valid(price: float | None) -> bool:
    return price is not None and isinstance(price, int | float) and math.isfinite(price) and price > 0


def _has_list_price(provider: str) -> bool:
    info = find(provider)
    return info is not None and info.tier not in _NO_LIST_PRICE_TIERS


def _sku(o: Offer) -> tuple[str, str, str]:
    return o.provider, o.instance_type, o.gpu_model


def _medians(prices: dict[int, dict[Option, float]], offers: Sequence[Offer],
             min_regions: int) -> dict[tuple[str, str, str], tuple[float, int]]:
    """(provider, instance type, gpu model) -> (median across regions of on-demand USD/GPU-h, regions), where the
    SKU is priced in enough regions."""
    by_region: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for i, o in enumerate(offers):
        od = prices[i].get("on-demand")
        if od is None or not _has_list_price(o.provider):
            continue
        by_region.setdefault(_sku(o), {}).setdefault(o.region, []).append(od)
    out = {}
    for key, regions in by_region.items():
        if len(regions) >= min_regions:
            out[key] = (statistics.median(statistics.median(v) for v in regions.values()), len(regions))
    return out


def _judge(offers: Sequence[Offer], rules: GateRules) -> tuple[list[dict[Option, float]], list[list[Quarantined]]]:
    """Per offer (by index): the prices left standing (USD per GPU-hour) and the prices set aside."""
    aside: list[list[Quarantined]] = [[] for _ in offers]
    prices: list[dict[Option, float]] = []
    for i, o in enumerate(offers):
        standing: dict[Option, float] = {}
        for option in OPTIONS:
            raw = o.usd_per_hour(option == "spot")
            if raw is None:
                continue
            if not _valid(raw) or o.gpus_per_node <= 0:
                aside[i].append(Quarantined(o, option, R_NOT_A_PRICE, f"{option} price {raw!r} for "
                                            f"{plural(o.gpus_per_node, 'GPU')} is not a price"))
                continue
            per_gpu = _per_gpu(raw, o.gpus_per_node)
            if option == "on-demand":
                row = rules.not_sold_on_demand(o.provider, o.instance_type)
                if row is not None:
                    aside[i].append(Quarantined(o, option, R_NOT_SOLD,
                                                f"{o.instance_type} is not sold on-demand (only {row.sold_as}): "
                                                f"{row.source}"))
                    continue
            band = rules.band(o.gpu_model)
            if band is not None and not band.min_usd_per_gpu_hour <= per_gpu <= band.max_usd_per_gpu_hour:
                aside[i].append(Quarantined(
                    o, option, R_BAND,
                    f"{option} {_usd(per_gpu)}/GPU-h is outside {o.gpu_model}'s plausible "
                    f"{_usd(band.min_usd_per_gpu_hour)}-{_usd(band.max_usd_per_gpu_hour)}/GPU-h (price_bands.csv)"))
                continue
            standing[option] = per_gpu
        prices.append(standing)

    medians = _medians(dict(enumerate(prices)), offers, rules.min_regions)
    for i, o in enumerate(offers):
        standing = prices[i]
        od = standing.get("on-demand")
        ref = medians.get(_sku(o))
        if od is not None and ref is not None:
            median, regions = ref
            ratio = od / median
            rule = R_LOW if ratio < rules.outlier_low_ratio else R_HIGH if ratio > rules.outlier_high_ratio else None
            if rule is not None:
                aside[i].append(Quarantined(
                    o, "on-demand", rule,
                    f"on-demand {_usd(od)}/GPU-h is {ratio:.2f}x {o.provider}'s median {_usd(median)}/GPU-h for "
                    f"{o.instance_type} across {plural(regions, 'region')} (set aside under "
                    f"{rules.outlier_low_ratio:g}x or over {rules.outlier_high_ratio:g}x)"))
                del standing["on-demand"]
                od = None
        spot = standing.get("spot")
        if spot is not None and od is not None and spot > od * (1 + 1e-9):
            aside[i].append(Quarantined(o, "spot", R_SPOT_ABOVE,
                                        f"spot {_usd(spot)}/GPU-h is above on-demand {_usd(od)}/GPU-h"))
            del standing["spot"]
    return prices, aside


def _cleaned(o: Offer, standing: dict[Option, float]) -> Offer | None:
    """The offer with only its standing prices, or None when none is left."""
    if not standing:
        return None
    od_ok, spot_ok = "on-demand" in standing, "spot" in standing
    if (od_ok or o.on_demand_usd_per_hour is None) and (spot_ok or o.spot_usd_per_hour is None):
        return o
    return replace(o, on_demand_usd_per_hour=o.on_demand_usd_per_hour if od_ok else None,
                   spot_usd_per_hour=o.spot_usd_per_hour if spot_ok else None)


def gate(offers: Iterable[Offer], rules: GateRules) -> GateResult:
    """Judge every price of every offer; see the module docstring for the rules and their order."""
    offers = list(offers)
    prices, aside = _judge(offers, rules)
    kept = [c for c in (_cleaned(o, p) for o, p in zip(offers, prices, strict=True)) if c is not None]
    return GateResult(kept, [q for qs in aside for q in qs])


# -- The cited tables ---------------------------------------------------------------------------------------------

def _read(name: str, required: tuple[str, ...]) -> list[tuple[str, dict[str, str]]]:
    from arbitrage.facts import table_text

    label, text = table_text(name)
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{label}: missing {noun(len(missing), 'column')} {', '.join(missing)}")
    rows = []
    for lineno, row in enumerate(reader, start=2):
        clean = {k: (v or "").strip() for k, v in row.items() if k}
        if not clean.get("source"):
            raise DataError(f"{label}:{lineno}: column 'source' is empty")
        rows.append((f"{label}:{lineno}", clean))
    return rows


def _number(where: str, row: dict[str, str], key: str) -> float:
    try:
        value = float(row[key])
    except ValueError:
        raise DataError(f"{where}: column '{key}' is not a number: {row[key]!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise DataError(f"{where}: column '{key}' must be a number above 0, got {row[key]!r}")
    return value


def load_rules(facts: Facts) -> GateRules:
    """The gate's rules: price_bands.csv and not_on_demand.csv (user overrides in the facts folder apply) plus the
    outlier thresholds of the facts' assumptions."""
    bands: dict[str, PriceBand] = {}
    for where, row in _read("price_bands.csv", ("gpu_model", "min_usd_per_gpu_hour", "max_usd_per_gpu_hour",
                                                 "source")):
        low, high = _number(where, row, "min_usd_per_gpu_hour"), _number(where, row, "max_usd_per_gpu_hour")
        if low >= high:
            raise DataError(f"{where}: min_usd_per_gpu_hour {low:g} must be below max_usd_per_gpu_hour {high:g}")
        bands[row["gpu_model"]] = PriceBand(row["gpu_model"], low, high, row["source"])
    not_sold = tuple(NotSoldOnDemand(r["provider"], r["instance_glob"], r["sold_as"], r["source"])
                     for _, r in _read("not_on_demand.csv", ("provider", "instance_glob", "sold_as", "source")))
    a = facts.assumptions
    return GateRules(bands, not_sold, a.price_outlier_low_ratio, a.price_outlier_high_ratio)


# -- Snapshot rows (scripts/build_snapshot.py) --------------------------------------------------------------------

QUARANTINE_COLUMNS = ("quarantined_option", "rule", "reason")


def gate_rows(rows: Sequence[dict[str, Any]], facts: Facts,
              rules: GateRules | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Gate snapshot rows (dicts with snapshot.csv's columns): (rows to keep, set-aside rows).

    A kept row loses the price that failed (its cell emptied); a row with no price left is not kept. Each set-aside
    row is the row as received plus ``quarantined_option``, ``rule`` and ``reason`` (QUARANTINE_COLUMNS): write
    them to arbitrage/data/snapshot_quarantine.csv so `gpuarb prices --quarantined` can show them. Rows of GPUs the
    facts do not know are kept as they are (the snapshot loader skips them).
    """
    from providers.snapshot import parse_snapshot

    if not rows:
        return [], []
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if r.get(k) is None else r.get(k) for k in columns} for r in rows)
    offers = parse_snapshot(buf.getvalue(), facts, "snapshot rows")
    known = [i for i, r in enumerate(rows) if facts.gpus.get(str(r.get("accelerator", ""))) is not None]
    prices, aside = _judge(offers, rules or load_rules(facts))
    verdicts = {row_index: (offers[k], prices[k], aside[k]) for k, row_index in enumerate(known)}
    kept_rows, quarantine_rows = [], []
    for i, r in enumerate(rows):
        if i not in verdicts:
            kept_rows.append(r)
            continue
        offer, standing, set_aside = verdicts[i]
        quarantine_rows += [{**r, "quarantined_option": q.option, "rule": q.rule, "reason": q.reason}
                            for q in set_aside]
        if not set_aside:
            kept_rows.append(r)
        elif _cleaned(offer, standing) is not None:
            kept_rows.append({**r, "on_demand_usd_per_hour": r["on_demand_usd_per_hour"] if "on-demand" in standing
                              else "", "spot_usd_per_hour": r["spot_usd_per_hour"] if "spot" in standing else ""})
    return kept_rows, quarantine_rows


def parse_quarantine(text: str, facts: Facts, label: str = "snapshot_quarantine.csv") -> list[Quarantined]:
    """Set-aside snapshot rows (snapshot.csv's columns plus QUARANTINE_COLUMNS) -> Quarantined records."""
    from providers.snapshot import parse_snapshot

    reader = list(csv.DictReader(io.StringIO(text)))
    # parse_snapshot skips rows of GPUs without facts; keep the reasons of the rows it keeps, in order.
    reasons = [r for r in reader if facts.gpus.get(r.get("accelerator", "")) is not None]
    offers = parse_snapshot(text, facts, label)
    out = []
    for o, r in zip(offers, reasons, strict=True):
        option: Option = "spot" if r.get("quarantined_option") == "spot" else "on-demand"
        out.append(Quarantined(o, option, r.get("rule", ""), r.get("reason", "")))
    return out


def load_quarantine(facts: Facts) -> list[Quarantined]:
    """The prices the gate set aside when the bundled snapshot was built (arbitrage/data/snapshot_quarantine.csv,
    written by scripts/build_snapshot.py); [] when the snapshot has none."""
    from importlib import resources

    path = resources.files("arbitrage") / "data" / "snapshot_quarantine.csv"
    if not path.is_file():
        return []
    return parse_quarantine(path.read_text(encoding="utf-8"), facts, "arbitrage/data/snapshot_quarantine.csv")

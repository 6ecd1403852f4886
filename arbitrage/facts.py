"""Fact tables (GPU throughput, interconnect, scaling, egress, preemption) loaded from data files.

The tables live in ``arbitrage/data/*.csv`` with a source on every row; a user can replace any of
them by dropping a file of the same name into ``$GPUARB_CONFIG_DIR/facts/`` (default
``~/.config/gpuarb/facts/``, see ``arbitrage.paths.facts_dir``). Loading is the only I/O here; lookups are pure.
The egress tiers are loaded here and priced by ``arbitrage.egress``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from typing import Literal

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from arbitrage import paths
from arbitrage.egress import EGRESS_PATHS, EGRESS_UNITS, EgressTier, tier_in_gb
from arbitrage.errors import DataError
from arbitrage.geo import CONTINENTS, REGION_KINDS, Place, RegionTable, normalise_country
from arbitrage.globs import glob_match
from arbitrage.offers import INTERCONNECTS
from arbitrage.plural import noun
from arbitrage.units import UnitFacts, build_unit_facts, cell_number

Workload = Literal["training", "inference"]


@dataclass(frozen=True, slots=True)
class GpuFact:
    """One accelerator model: memory and throughput relative to an H100 SXM (= 1.0)."""

    name: str
    aliases: tuple[str, ...]
    memory_gb: float
    train_throughput_vs_h100: float
    infer_throughput_vs_h100: float
    source: str

    def throughput(self, workload: Workload) -> float:
        """Relative per-GPU throughput for the given kind of work."""
        return self.train_throughput_vs_h100 if workload == "training" else self.infer_throughput_vs_h100


@dataclass(frozen=True, slots=True)
class InterconnectRule:
    """Node-to-node fabric of the instance types a glob matches, first match wins."""

    provider: str
    instance_glob: str
    interconnect: str
    gbps: float
    source: str


@dataclass(frozen=True, slots=True)
class VariantRule:
    """Exact GPU model (e.g. H100-PCIE) of the instance types a glob matches, first match wins."""

    provider: str
    instance_glob: str
    gpu_model: str
    source: str


@dataclass(frozen=True, slots=True)
class ScalingRule:
    """Data-parallel efficiency per doubling of nodes at or above a node-to-node bandwidth."""

    min_gbps: float
    efficiency_per_doubling: float
    source: str


@dataclass(frozen=True, slots=True)
class IntraNodeRule:
    """How the GPUs inside one node are linked, for the instance types / GPU models the globs match (first wins).

    ``linked_gpus`` GPUs talk over the fast link (0 = every GPU of the node, as on NVSwitch boards); each doubling
    of GPUs beyond that group crosses PCIe and keeps ``efficiency_per_doubling`` of linear speed-up.
    """

    provider: str
    instance_glob: str
    gpu_model: str
    link: str
    linked_gpus: int
    efficiency_per_doubling: float
    source: str

    def efficiency(self, gpus: int) -> float:
        """Fraction of linear speed-up kept by ``gpus`` GPUs of one node."""
        group = self.linked_gpus or gpus
        return 1.0 if gpus <= group else self.efficiency_per_doubling ** math.log2(gpus / group)


@dataclass(frozen=True, slots=True)
class PreemptionRule:
    """Spot interruptions per instance-hour and replacement time for the offers its globs match (preemption.csv).

    ``evidence`` says where the rate comes from: ``advisor`` (the AWS Spot Instance Advisor band of the exact
    instance type and region, else ``band``), ``band`` (that fixed band of spot_bands.csv), ``docs`` (the
    provider's guidance plus a stated assumption: ``preemptions_per_hour``) or ``none`` (no spot product).
    ``zone_kind`` is region / local-zone / wavelength or ``*`` (arbitrage/spotrisk.py zone_kind).
    """

    provider: str
    region_glob: str
    preemptions_per_hour: float
    restart_minutes: float
    source: str
    instance_glob: str = "*"
    zone_kind: str = "*"
    evidence: str = "docs"
    band: int | None = None
    as_of: str = ""

    def matches(self, provider: str, instance_type: str, region: str, zone_kind: str) -> bool:
        """True when this rule covers an offer of ``provider`` (globs are case-sensitive, as in the data)."""
        return (self.provider == provider and self.zone_kind in ("*", zone_kind)
                and glob_match(region, self.region_glob)
                and glob_match(instance_type, self.instance_glob))


@dataclass(frozen=True, slots=True)
class SpotBand:
    """One AWS Spot Instance Advisor interruption band and the preemption rate it stands for (spot_bands.csv)."""

    band: int
    label: str
    representative_frequency: float
    preemptions_per_hour_1gpu: float
    preemptions_per_hour_8gpu: float
    source: str


@dataclass(frozen=True)
class AdvisorTable:
    """AWS Spot Instance Advisor bands per (region, instance type), and where they came from.

    The bundled copy (spot_advisor.csv, ``source`` 'snapshot') lives in the facts; providers/spot_advisor.py
    fetches the live feed into the same shape (``source`` 'live' or 'cache').
    """

    bands: dict[tuple[str, str], int]
    source: str = "snapshot"
    as_of: str = ""
    ref: str = ""


@dataclass(frozen=True, slots=True)
class Assumptions:
    """Model constants that are not per-provider facts (see data/assumptions.toml for sources)."""

    checkpoint_write_minutes: float
    provision_minutes: float
    transfer_gbps_cross_cloud: float
    transfer_gbps_inter_region: float
    default_restart_minutes: float
    default_preemptions_per_hour: float
    # Price quality (providers/quality.py) and age: defaults so an older override file without them still loads.
    stale_price_days: float = 90.0
    price_outlier_low_ratio: float = 0.55
    price_outlier_high_ratio: float = 2.0
    # Spot risk (arbitrage/spotrisk.py) and capacity signals (arbitrage/capacity.py).
    preemption_prior_hours: float = 100.0
    host_outage_hours: float = 1.0
    deadline_confidence: float = 0.95
    capacity_reject_below: float = 0.35
    capacity_demote_below: float = 0.65


@dataclass(frozen=True)
class Facts:
    """All fact tables, immutable; the cost model and planner take this as an argument."""

    gpus: dict[str, GpuFact]
    interconnect_rules: tuple[InterconnectRule, ...]
    variant_rules: tuple[VariantRule, ...]
    scaling_rules: tuple[ScalingRule, ...]
    egress_tiers: tuple[EgressTier, ...]
    preemption_rules: tuple[PreemptionRule, ...]
    assumptions: Assumptions
    # Where each provider's regions/zones are (regions.csv); arbitrage.geo.locate(facts, ...) reads it.
    regions: RegionTable = field(default_factory=lambda: RegionTable({}))
    # How GPUs inside a node are linked (intranode.csv): PCIe-only boxes lose speed-up, NVSwitch boards do not.
    intra_node_rules: tuple[IntraNodeRule, ...] = ()
    # Spot risk (arbitrage/spotrisk.py): Advisor bands -> rates (spot_bands.csv), the bundled Advisor copy.
    spot_bands: tuple[SpotBand, ...] = ()
    spot_advisor: AdvisorTable = field(default_factory=lambda: AdvisorTable({}))
    # Work in tokens (arbitrage/units.py): inference tokens/s, peak FLOPs, MFU, precisions, memory rules.
    units: UnitFacts = field(default_factory=UnitFacts)

    # -- GPUs -------------------------------------------------------------------------------
    @cached_property
    def gpu_index(self) -> dict[str, str]:
        """Lower-cased names and aliases mapped to canonical GPU names."""
        index: dict[str, str] = {}
        for fact in self.gpus.values():
            index[fact.name.lower()] = fact.name
            for alias in fact.aliases:
                index.setdefault(alias.lower(), fact.name)
        return index

    def canonical_gpu(self, name: str) -> str | None:
        """The canonical accelerator name for a user-typed name or alias (case-insensitive)."""
        return self.gpu_index.get(name.strip().lower())

    def suggest_gpu(self, name: str) -> str | None:
        """The closest known GPU name to a misspelt one, for 'did you mean' hints."""
        import difflib  # only on the error path

        names = sorted(self.gpus)
        lowered = {n.lower(): n for n in names}
        match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.5)
        return lowered[match[0]] if match else None

    def gpu(self, name: str) -> GpuFact:
        """Facts for a canonical GPU name; raises DataError naming the table when missing."""
        try:
            return self.gpus[name]
        except KeyError:
            raise DataError(f"gpus.csv: no facts for accelerator '{name}'") from None

    @cached_property
    def _instance_facts(self) -> dict[tuple[str, str], tuple[str, float, str | None]]:
        """Memo of (provider, instance type) -> (fabric, Gbit/s, GPU variant); glob matching is slow."""
        return {}

    def _lookup(self, provider: str, instance_type: str) -> tuple[str, float, str | None]:
        key = (provider, instance_type)
        found = self._instance_facts.get(key)
        if found is None:
            fabric, gbps = "none", 0.0
            for rule in self.interconnect_rules:
                if rule.provider == provider and glob_match(instance_type, rule.instance_glob):
                    fabric, gbps = rule.interconnect, rule.gbps
                    break
            variant = next((v.gpu_model for v in self.variant_rules if v.provider == provider
                            and glob_match(instance_type, v.instance_glob)), None)
            found = self._instance_facts[key] = (fabric, gbps, variant)
        return found

    def gpu_model_for(self, provider: str, instance_type: str, accelerator: str) -> str:
        """The exact GPU variant of an instance type (H100-PCIE...), else its accelerator name."""
        return self._lookup(provider, instance_type)[2] or accelerator

    # -- Interconnect and scaling ------------------------------------------------------------
    def interconnect_for(self, provider: str, instance_type: str) -> tuple[str, float]:
        """(fabric, node-to-node Gbit/s) for an instance type; ('none', 0) when no rule matches."""
        fabric, gbps, _ = self._lookup(provider, instance_type)
        return fabric, gbps

    def scaling_efficiency(self, gbps: float, nodes: int) -> float:
        """Fraction of linear speed-up kept when spreading over ``nodes`` at ``gbps`` per node."""
        if nodes <= 1:
            return 1.0
        per_doubling = 0.0
        for rule in self.scaling_rules:  # sorted by min_gbps descending
            if gbps >= rule.min_gbps:
                per_doubling = rule.efficiency_per_doubling
                break
        return per_doubling ** math.log2(nodes)

    @cached_property
    def _intra_node_memo(self) -> dict[tuple[str, str, str], IntraNodeRule | None]:
        """Memo of (provider, instance type, GPU model) -> intra-node rule; glob matching is slow."""
        return {}

    def intra_node_rule(self, provider: str, instance_type: str, gpu_model: str) -> IntraNodeRule | None:
        """The first intranode.csv rule matching an offer's provider, instance type and GPU model."""
        key = (provider, instance_type, gpu_model)
        if key not in self._intra_node_memo:
            self._intra_node_memo[key] = next(
                (r for r in self.intra_node_rules if glob_match(provider, r.provider)
                 and glob_match(instance_type, r.instance_glob)
                 and glob_match(gpu_model, r.gpu_model)), None)
        return self._intra_node_memo[key]

    def intra_node_efficiency(self, provider: str, instance_type: str, gpu_model: str, gpus: int) -> float:
        """Fraction of linear speed-up ``gpus`` GPUs of one node keep (1.0 without a matching rule)."""
        if gpus <= 1:
            return 1.0
        rule = self.intra_node_rule(provider, instance_type, gpu_model)
        return 1.0 if rule is None else rule.efficiency(gpus)

    # -- Preemption ---------------------------------------------------------------------------
    def preemption_for(self, provider: str, region: str, instance_type: str = "",
                       zone_kind: str = "region") -> PreemptionRule | None:
        """The first preemption rule matching provider, instance type, region and zone kind, or None."""
        for rule in self.preemption_rules:
            if rule.matches(provider, instance_type, region, zone_kind):
                return rule
        return None


# -- Loading ------------------------------------------------------------------------------------

_MAX_TABLE_BYTES = 16 << 20


def table_text(name: str) -> tuple[str, str]:
    """(label, text) of a data file: the user's override in the facts folder if present, else the bundled one."""
    override = paths.facts_dir() / name
    if override.is_file():
        try:
            with open(override, "rb") as fh:
                data = fh.read(_MAX_TABLE_BYTES + 1)
            if len(data) > _MAX_TABLE_BYTES:
                raise DataError(f"{override}: over {_MAX_TABLE_BYTES >> 20} MiB; not a fact table")
            return str(override), data.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{override}: not a UTF-8 text file") from None
        except OSError as exc:
            raise DataError(f"{override}: cannot read: {exc.strerror or exc}") from None
    bundled = resources.files("arbitrage") / "data" / name
    return f"arbitrage/data/{name}", bundled.read_text(encoding="utf-8")


def _rows(name: str, required: tuple[str, ...]) -> Iterator[tuple[str, dict[str, str]]]:
    label, text = table_text(name)
    reader = csv.DictReader(text.splitlines())
    try:
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{label}: missing {noun(len(missing), 'column')} {', '.join(missing)}")
        for lineno, row in enumerate(reader, start=2):
            yield f"{label}:{lineno}", {k: (v or "").strip() if isinstance(v, str) else "" for k, v in row.items()
                                        if k}
    except csv.Error as exc:
        raise DataError(f"{label}:{reader.line_num}: not a readable CSV row ({exc})") from None


# Bounds per (table, column): (low, high, low_inclusive). A value outside is a typo or a broken override, not a
# fact: a zero throughput or transfer speed would divide by zero, a negative one price work below nothing.
# Columns not listed must be finite and >= 0.
_RANGES: dict[tuple[str, str], tuple[float, float, bool]] = {
    ("gpus.csv", "memory_gb"): (0.0, 4096.0, False),
    ("gpus.csv", "train_throughput_vs_h100"): (0.0, 100.0, False),
    ("gpus.csv", "infer_throughput_vs_h100"): (0.0, 100.0, False),
    ("interconnect.csv", "gbps"): (0.0, 100_000.0, True),
    ("scaling.csv", "min_gbps"): (0.0, 100_000.0, True),
    ("egress.csv", "up_to_gb"): (0.0, 1e12, False),
    ("egress.csv", "up_to"): (0.0, 1e12, False),
    ("egress.csv", "usd_per_gb"): (0.0, 100.0, True),
    ("egress.csv", "usd_per_unit"): (0.0, 100.0, True),
    ("preemption.csv", "preemptions_per_hour"): (0.0, 100.0, True),
    ("preemption.csv", "restart_minutes"): (0.0, 10_080.0, True),
    ("intranode.csv", "linked_gpus"): (0.0, 1024.0, True),
    ("spot_bands.csv", "preemptions_per_hour_1gpu"): (0.0, 100.0, True),
    ("spot_bands.csv", "preemptions_per_hour_8gpu"): (0.0, 100.0, True),
    ("spot_bands.csv", "representative_frequency"): (0.0, 1.0, True),
}
# assumptions.toml constants: (low, high, low_inclusive); a constant not listed must be a finite number.
ASSUMPTION_RANGES: dict[str, tuple[float, float, bool]] = {
    "checkpoint_write_minutes": (0.0, 1440.0, True),
    "provision_minutes": (0.0, 1440.0, True),
    "transfer_gbps_cross_cloud": (0.0, 100_000.0, False),
    "transfer_gbps_inter_region": (0.0, 100_000.0, False),
    "default_restart_minutes": (0.0, 10_080.0, True),
    "default_preemptions_per_hour": (0.0, 100.0, True),
    "stale_price_days": (0.0, 36_500.0, False),
    "price_outlier_low_ratio": (0.0, 1.0, False),
    "price_outlier_high_ratio": (1.0, 1000.0, True),
    "preemption_prior_hours": (0.0, 1e6, False),
    "host_outage_hours": (0.0, 10_000.0, True),
    "deadline_confidence": (0.0, 1.0, False),
    "capacity_reject_below": (0.0, 1.0, True),
    "capacity_demote_below": (0.0, 1.0, True),
}


def _in_range(value: float, bounds: tuple[float, float, bool]) -> bool:
    low, high, inclusive = bounds
    return math.isfinite(value) and (value >= low if inclusive else value > low) and value <= high


def _range_text(bounds: tuple[float, float, bool]) -> str:
    low, high, inclusive = bounds
    return f"a number {'>=' if inclusive else '>'} {low:g} and <= {high:g}"


def _num(where: str, row: dict[str, str], key: str, *, optional: bool = False) -> float | None:
    value = cell_number(where, row, key, optional=optional)
    if value is None:
        return None
    raw = row.get(key, "")
    table = where.rsplit(":", 1)[0].replace("\\", "/").rsplit("/", 1)[-1]
    bounds = _RANGES.get((table, key), (0.0, math.inf, True))
    if not _in_range(value, bounds):
        raise DataError(f"{where}: column '{key}' must be {_range_text(bounds)}, got {raw[:40]!r}")
    return value


def _req(where: str, row: dict[str, str], key: str) -> float:
    value = _num(where, row, key)
    assert value is not None
    return value


def load_gpus() -> dict[str, GpuFact]:
    """GPU facts keyed by canonical name."""
    cols = ("name", "aliases", "memory_gb", "train_throughput_vs_h100", "infer_throughput_vs_h100", "source")
    gpus: dict[str, GpuFact] = {}
    for where, row in _rows("gpus.csv", cols):
        gpus[row["name"]] = GpuFact(
            name=row["name"],
            aliases=tuple(a.strip() for a in row["aliases"].split(";") if a.strip()),
            memory_gb=_req(where, row, "memory_gb"),
            train_throughput_vs_h100=_req(where, row, "train_throughput_vs_h100"),
            infer_throughput_vs_h100=_req(where, row, "infer_throughput_vs_h100"),
            source=row["source"],
        )
    return gpus


def load_interconnect() -> tuple[InterconnectRule, ...]:
    """Interconnect rules in file order (first match wins)."""
    rules = []
    for where, row in _rows("interconnect.csv", ("provider", "instance_glob", "interconnect", "gbps", "source")):
        if row["interconnect"] not in INTERCONNECTS:
            raise DataError(f"{where}: unknown interconnect {row['interconnect']!r}")
        rules.append(InterconnectRule(row["provider"], row["instance_glob"], row["interconnect"],
                                      _req(where, row, "gbps"), row["source"]))
    return tuple(rules)


def load_variants(gpus: dict[str, GpuFact]) -> tuple[VariantRule, ...]:
    """GPU variant rules in file order; every model they name must exist in gpus.csv."""
    rules = []
    for where, row in _rows("gpu_variants.csv", ("provider", "instance_glob", "gpu_model", "source")):
        if row["gpu_model"] not in gpus:
            raise DataError(f"{where}: gpu_model {row['gpu_model']!r} is not in gpus.csv")
        rules.append(VariantRule(row["provider"], row["instance_glob"], row["gpu_model"], row["source"]))
    return tuple(rules)


def load_scaling() -> tuple[ScalingRule, ...]:
    """Scaling rules sorted by bandwidth threshold, highest first."""
    rules = [
        ScalingRule(_req(w, r, "min_gbps"), _req(w, r, "efficiency_per_doubling"), r["source"])
        for w, r in _rows("scaling.csv", ("min_gbps", "efficiency_per_doubling", "source"))
    ]
    for rule in rules:
        if not 0 < rule.efficiency_per_doubling <= 1:
            raise DataError(f"scaling.csv: efficiency_per_doubling must be in (0, 1], got {rule}")
    return tuple(sorted(rules, key=lambda r: -r.min_gbps))


def load_intra_node() -> tuple[IntraNodeRule, ...]:
    """Intra-node GPU link rules in file order (first match wins)."""
    cols = ("provider", "instance_glob", "gpu_model", "link", "linked_gpus", "efficiency_per_doubling", "source")
    rules = []
    for where, row in _rows("intranode.csv", cols):
        efficiency = _req(where, row, "efficiency_per_doubling")
        if not 0 < efficiency <= 1:
            raise DataError(f"{where}: efficiency_per_doubling must be in (0, 1], got {efficiency:g}")
        linked = _req(where, row, "linked_gpus")
        if linked != int(linked):
            raise DataError(f"{where}: linked_gpus must be a whole number, got {row['linked_gpus']!r}")
        rules.append(IntraNodeRule(row["provider"], row["instance_glob"], row["gpu_model"], row["link"], int(linked),
                                   efficiency, row["source"]))
    return tuple(rules)


def load_egress() -> tuple[EgressTier, ...]:
    """Egress price tiers for every provider and path, converted to USD per GB (``arbitrage.egress.tier_in_gb``).

    Columns: provider, path, from_continent ('' = any), unit (GB or GiB: the unit the provider publishes),
    up_to (tier bound in that unit, '' = unbounded), usd_per_unit, source, as_of. A file with the older
    ``up_to_gb`` / ``usd_per_gb`` columns is read as per-GB rows.
    """
    tiers = []
    for where, row in _rows("egress.csv", ("provider", "path", "source")):
        if row["path"] not in EGRESS_PATHS:
            raise DataError(f"{where}: unknown egress path {row['path']!r}")
        legacy = "usd_per_unit" not in row
        unit = "GB" if legacy else (row.get("unit") or "")
        if unit not in EGRESS_UNITS:
            raise DataError(f"{where}: column 'unit' must be GB or GiB, got {unit!r}")
        from_continent = row.get("from_continent", "")
        if from_continent and from_continent not in CONTINENTS:
            raise DataError(f"{where}: from_continent {from_continent!r} is not one of {', '.join(CONTINENTS)}")
        up_to = _num(where, row, "up_to_gb" if legacy else "up_to", optional=True)
        rate = _req(where, row, "usd_per_gb" if legacy else "usd_per_unit")
        tiers.append(tier_in_gb(row["provider"], row["path"], up_to, rate, unit,  # type: ignore[arg-type]
                                row["source"], row.get("as_of", ""), from_continent))
    return tuple(tiers)


PREEMPTION_EVIDENCE = ("advisor", "band", "docs", "none")
ZONE_KINDS = ("region", "local-zone", "wavelength")


def load_preemption() -> tuple[PreemptionRule, ...]:
    """Preemption rules in file order (first match wins); an older file without the newer columns still loads."""
    cols = ("provider", "region_glob", "preemptions_per_hour", "restart_minutes", "source")
    rules = []
    for w, r in _rows("preemption.csv", cols):
        evidence = r.get("evidence") or "docs"
        zone_kind = r.get("zone_kind") or "*"
        if evidence not in PREEMPTION_EVIDENCE:
            raise DataError(f"{w}: evidence {evidence!r} is not one of {', '.join(PREEMPTION_EVIDENCE)}")
        if zone_kind != "*" and zone_kind not in ZONE_KINDS:
            raise DataError(f"{w}: zone_kind {zone_kind!r} is not one of *, {', '.join(ZONE_KINDS)}")
        if not r["source"]:
            raise DataError(f"{w}: column 'source' is empty")
        band = _num(w, r, "band", optional=True)
        if evidence in ("advisor", "band") and band is None:
            raise DataError(f"{w}: evidence {evidence} needs a band (0-4) for offers the Advisor does not list")
        rate = _num(w, r, "preemptions_per_hour", optional=evidence in ("advisor", "band"))
        rules.append(PreemptionRule(r["provider"], r["region_glob"], rate or 0.0, _req(w, r, "restart_minutes"),
                                    r["source"], r.get("instance_glob") or "*", zone_kind, evidence,
                                    None if band is None else int(band), r.get("as_of", "")))
    return tuple(rules)


def load_spot_bands() -> tuple[SpotBand, ...]:
    """The Advisor's interruption bands and their rates, by band index (spot_bands.csv)."""
    cols = ("band", "label", "representative_frequency", "preemptions_per_hour_1gpu", "preemptions_per_hour_8gpu",
            "source")
    bands = [SpotBand(int(_req(w, r, "band")), r["label"], _req(w, r, "representative_frequency"),
                      _req(w, r, "preemptions_per_hour_1gpu"), _req(w, r, "preemptions_per_hour_8gpu"), r["source"])
             for w, r in _rows("spot_bands.csv", cols)]
    if [b.band for b in bands] != list(range(len(bands))):
        raise DataError("spot_bands.csv: bands must be numbered 0, 1, 2... in order")
    return tuple(bands)


def load_spot_advisor() -> AdvisorTable:
    """The bundled, dated copy of the AWS Spot Instance Advisor's GPU rows (spot_advisor.csv).

    Read with a plain csv.reader (700 rows on every plan: the DictReader path costs several milliseconds).
    """
    label, text = table_text("spot_advisor.csv")
    reader = csv.reader(text.splitlines())
    header = next(reader, [])
    try:
        region, itype, band_col, date_col, ref_col = (header.index(c) for c in
                                                      ("region", "instance_type", "band", "as_of", "source"))
    except ValueError:
        raise DataError(f"{label}: needs columns region, instance_type, band, as_of, source") from None
    bands: dict[tuple[str, str], int] = {}
    dates: set[str] = set()
    refs: set[str] = set()
    for lineno, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            band = int(row[band_col])
            bands[(row[region].strip(), row[itype].strip())] = band
            dates.add(row[date_col].strip())
            refs.add(row[ref_col].strip())
        except (IndexError, ValueError):
            raise DataError(f"{label}:{lineno}: a row needs a region, an instance type and an integer band") from None
        if not 0 <= band <= 9:
            raise DataError(f"{label}:{lineno}: band {band} is not a Spot Instance Advisor band")
    return AdvisorTable(bands, "snapshot", ", ".join(sorted(dates)), "; ".join(sorted(refs)))


def load_regions() -> RegionTable:
    """Country, continent and city of every provider region, zone and data centre (regions.csv)."""
    cols = ("provider", "region", "country", "continent", "city", "kind", "parent_region", "source")
    places = []
    for where, row in _rows("regions.csv", cols):
        country = row["country"].upper()
        if country and normalise_country(country) != country:
            raise DataError(f"{where}: country {row['country']!r} is not an ISO 3166-1 alpha-2 code")
        if row["continent"] not in CONTINENTS:
            raise DataError(f"{where}: continent {row['continent']!r} is not one of {', '.join(CONTINENTS)}")
        if row["kind"] not in REGION_KINDS:
            raise DataError(f"{where}: kind {row['kind']!r} is not one of {', '.join(sorted(REGION_KINDS))}")
        if not row["source"]:
            raise DataError(f"{where}: column 'source' is empty")
        places.append(Place(row["provider"], row["region"], country, row["continent"], row["city"], row["kind"],
                            row["parent_region"], row["source"]))
    return RegionTable.of(places)


def load_assumptions() -> Assumptions:
    """Model constants from assumptions.toml."""
    label, text = table_text("assumptions.toml")
    try:
        raw = tomllib.loads(text)
        values = {}
        for key, entry in raw.items():
            value = entry["value"]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key}: value must be a number, got {value!r}")
            bounds = ASSUMPTION_RANGES.get(key, (-math.inf, math.inf, True))
            if not _in_range(float(value), bounds):
                raise ValueError(f"{key}: value must be {_range_text(bounds)}, got {value!r}")
            values[key] = float(value)
        return Assumptions(**values)
    except (tomllib.TOMLDecodeError, TypeError, KeyError, ValueError) as exc:
        raise DataError(f"{label}: {exc}") from None


@cache
def load_facts() -> Facts:
    """Every fact table, read once per process."""
    gpus = load_gpus()
    return Facts(
        gpus=gpus,
        interconnect_rules=load_interconnect(),
        variant_rules=load_variants(gpus),
        scaling_rules=load_scaling(),
        egress_tiers=load_egress(),
        preemption_rules=load_preemption(),
        assumptions=load_assumptions(),
        regions=load_regions(),
        intra_node_rules=load_intra_node(),
        spot_bands=load_spot_bands(),
        spot_advisor=load_spot_advisor(),
        units=build_unit_facts(table_text, gpus),
    )

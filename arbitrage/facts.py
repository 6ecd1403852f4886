"""Fact tables (GPU throughput, interconnect, scaling, egress, preemption) loaded from data files.

The tables live in ``arbitrage/data/*.csv`` with a source on every row; a user can replace any of
them by dropping a file of the same name into ``$GPUARB_CONFIG_DIR/facts/`` (default
``~/.config/gpuarb/facts/``, see ``arbitrage.paths.facts_dir``). Loading is the only I/O here; lookups are pure.
The egress tiers are loaded here and priced by ``arbitrage.egress``.
"""

from __future__ import annotations

import csv
import fnmatch
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import Literal

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from arbitrage import paths
from arbitrage.egress import EGRESS_PATHS, EgressTier
from arbitrage.errors import DataError
from arbitrage.offers import INTERCONNECTS

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
class PreemptionRule:
    """Spot interruptions per instance-hour and replacement time for regions a glob matches."""

    provider: str
    region_glob: str
    preemptions_per_hour: float
    restart_minutes: float
    source: str


@dataclass(frozen=True, slots=True)
class Assumptions:
    """Model constants that are not per-provider facts (see data/assumptions.toml for sources)."""

    checkpoint_write_minutes: float
    provision_minutes: float
    transfer_gbps_cross_cloud: float
    transfer_gbps_inter_region: float
    default_restart_minutes: float
    default_preemptions_per_hour: float


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
                if rule.provider == provider and fnmatch.fnmatchcase(instance_type, rule.instance_glob):
                    fabric, gbps = rule.interconnect, rule.gbps
                    break
            variant = next((v.gpu_model for v in self.variant_rules if v.provider == provider
                            and fnmatch.fnmatchcase(instance_type, v.instance_glob)), None)
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

    # -- Preemption ---------------------------------------------------------------------------
    def preemption_for(self, provider: str, region: str) -> PreemptionRule | None:
        """The first preemption rule matching provider and region, or None if none is known."""
        for rule in self.preemption_rules:
            if rule.provider == provider and fnmatch.fnmatchcase(region, rule.region_glob):
                return rule
        return None


# -- Loading ------------------------------------------------------------------------------------

def table_text(name: str) -> tuple[str, str]:
    """(label, text) of a data file: the user's override in the facts folder if present, else the bundled one."""
    override = paths.facts_dir() / name
    if override.is_file():
        return str(override), override.read_text(encoding="utf-8")
    bundled = resources.files("arbitrage") / "data" / name
    return f"arbitrage/data/{name}", bundled.read_text(encoding="utf-8")


def _rows(name: str, required: tuple[str, ...]) -> Iterator[tuple[str, dict[str, str]]]:
    label, text = table_text(name)
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{label}: missing column(s) {', '.join(missing)}")
    for lineno, row in enumerate(reader, start=2):
        yield f"{label}:{lineno}", {k: (v or "").strip() for k, v in row.items() if k}


def _num(where: str, row: dict[str, str], key: str, *, optional: bool = False) -> float | None:
    raw = row.get(key, "")
    if raw == "":
        if optional:
            return None
        raise DataError(f"{where}: column '{key}' is empty")
    try:
        value = float(raw)
    except ValueError:
        raise DataError(f"{where}: column '{key}' is not a number: {raw!r}") from None
    if value < 0 or math.isnan(value):
        raise DataError(f"{where}: column '{key}' must be >= 0, got {raw!r}")
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


def load_egress() -> tuple[EgressTier, ...]:
    """Egress price tiers for every provider and path."""
    tiers = []
    for where, row in _rows("egress.csv", ("provider", "path", "up_to_gb", "usd_per_gb", "source")):
        if row["path"] not in EGRESS_PATHS:
            raise DataError(f"{where}: unknown egress path {row['path']!r}")
        tiers.append(EgressTier(row["provider"], row["path"], _num(where, row, "up_to_gb", optional=True),
                                _req(where, row, "usd_per_gb"), row["source"], row.get("as_of", "")))
    return tuple(tiers)


def load_preemption() -> tuple[PreemptionRule, ...]:
    """Preemption rules in file order (first match wins)."""
    cols = ("provider", "region_glob", "preemptions_per_hour", "restart_minutes", "source")
    return tuple(
        PreemptionRule(r["provider"], r["region_glob"], _req(w, r, "preemptions_per_hour"),
                       _req(w, r, "restart_minutes"), r["source"])
        for w, r in _rows("preemption.csv", cols)
    )


def load_assumptions() -> Assumptions:
    """Model constants from assumptions.toml."""
    label, text = table_text("assumptions.toml")
    try:
        raw = tomllib.loads(text)
        return Assumptions(**{k: float(v["value"]) for k, v in raw.items()})
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
    )

"""Default ownership assumptions for `gpuarb breakeven`, read from data/ownership.toml (or the user's override)."""

from __future__ import annotations

import math
from dataclasses import dataclass

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from arbitrage.errors import DataError

DEFAULT_KEYS = ("usd_per_kwh", "pue", "hosting_usd_per_month", "years", "utilization")
GPU_KEYS = ("purchase_usd", "power_w")


@dataclass(frozen=True, slots=True)
class Sourced:
    """A default value and the sentence saying where it came from."""

    value: float
    source: str


@dataclass(frozen=True, slots=True)
class OwnershipDefaults:
    """Site-wide defaults and per-GPU purchase price and power, each with its source."""

    label: str  # which file they came from
    defaults: dict[str, Sourced]
    gpus: dict[str, dict[str, Sourced]]


def _number(label: str, where: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw < 0:
        raise DataError(f"{label}: {where}: expected a number >= 0, got {raw!r}")
    return float(raw)


def _sourced(label: str, where: str, entry: object) -> Sourced:
    if not isinstance(entry, dict) or "value" not in entry or not str(entry.get("source", "")).strip():
        raise DataError(f"{label}: {where}: needs a value and a source")
    return Sourced(_number(label, f"{where}.value", entry["value"]), str(entry["source"]))


def parse_ownership(text: str, label: str) -> OwnershipDefaults:
    """Validate the TOML text; every problem names the file and the key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{label}: {exc}") from None
    section = raw.get("defaults", {})
    if not isinstance(section, dict):
        raise DataError(f"{label}: [defaults] must be a table")
    defaults = {key: _sourced(label, f"defaults.{key}", section.get(key)) for key in DEFAULT_KEYS}
    gpus: dict[str, dict[str, Sourced]] = {}
    models = raw.get("gpus", {})
    if not isinstance(models, dict):
        raise DataError(f"{label}: [gpus] must be a table")
    for name, entry in models.items():
        if not isinstance(entry, dict):
            raise DataError(f"{label}: gpus.{name}: needs purchase_usd and power_w, each with a value and a source")
        gpus[name] = {k: _sourced(label, f"gpus.{name}.{k}", entry.get(k)) for k in GPU_KEYS}
    return OwnershipDefaults(label, defaults, gpus)


def load_ownership() -> OwnershipDefaults:
    """The bundled ownership.toml, or the user's copy in $GPUARB_CONFIG_DIR/facts/."""
    from arbitrage.facts import table_text  # the one place that knows the override rule

    label, text = table_text("ownership.toml")
    return parse_ownership(text, label)

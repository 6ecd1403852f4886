"""Load the bundled offer snapshot (arbitrage/data/snapshot.csv) as Offer records, offline."""

from __future__ import annotations

import csv
import json
from importlib import resources
from typing import Any

from arbitrage.errors import DataError
from arbitrage.facts import Facts
from arbitrage.geo import locate
from arbitrage.offers import Offer

_DATA = "data"


def _float(where: str, value: str, *, optional: bool = True) -> float | None:
    if value == "":
        if optional:
            return None
        raise DataError(f"{where}: missing value")
    try:
        return float(value)
    except ValueError:
        raise DataError(f"{where}: not a number: {value!r}") from None


def _int(where: str, value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise DataError(f"{where}: not a whole number: {value!r}") from None


def parse_snapshot(text: str, facts: Facts, label: str = "snapshot.csv") -> list[Offer]:
    """Snapshot CSV text -> offers; interconnect comes from the facts so user overrides apply.

    The location columns (country, continent) are optional: a row without them is placed from the facts' region
    table (arbitrage/data/regions.csv), so older caches and price lists still load, located.
    """
    offers = []
    for lineno, r in enumerate(csv.DictReader(text.splitlines()), start=2):
        where = f"{label}:{lineno}"
        try:
            accel = r["accelerator"]
            fact = facts.gpus.get(accel)
            if fact is None:
                continue  # a GPU model the fact table does not know cannot be costed
            fabric, gbps = facts.interconnect_for(r["provider"], r["instance_type"])
            country, continent = r.get("country") or "", r.get("continent") or ""
            if not continent:
                country, continent = locate(facts, r["provider"], r["region"], r["zone"] or None)
            offers.append(Offer(
                provider=r["provider"],
                region=r["region"],
                zone=r["zone"] or None,
                instance_type=r["instance_type"],
                accelerator=accel,
                gpus_per_node=int(r["gpus_per_node"]),
                gpu_memory_gb=_float(where, r["gpu_memory_gb"]) or fact.memory_gb,
                vcpus=_float(where, r["vcpus"]),
                ram_gb=_float(where, r["ram_gb"]),
                on_demand_usd_per_hour=_float(where, r["on_demand_usd_per_hour"]),
                spot_usd_per_hour=_float(where, r["spot_usd_per_hour"]),
                interconnect=fabric,
                interconnect_gbps=gbps,
                source="snapshot",
                as_of=r["as_of"],
                price_ref=r["price_ref"],
                gpu_model=facts.gpu_model_for(r["provider"], r["instance_type"], accel),
                country=country,
                continent=continent,
                as_of_estimated=(r.get("as_of_estimated") or "") == "true",
                available=_int(where, r.get("available")),
                host_reliability=_float(where, r.get("host_reliability") or ""),
            ))
        except (KeyError, ValueError) as exc:
            raise DataError(f"{where}: malformed row ({exc})") from None
    return offers


def load_snapshot(facts: Facts) -> list[Offer]:
    """Every offer in the bundled snapshot."""
    text = (resources.files("arbitrage") / _DATA / "snapshot.csv").read_text(encoding="utf-8")
    return parse_snapshot(text, facts, "arbitrage/data/snapshot.csv")


def snapshot_meta() -> dict[str, Any]:
    """The snapshot's provenance: sources, commits, as-of dates, row counts."""
    text = (resources.files("arbitrage") / _DATA / "snapshot.json").read_text(encoding="utf-8")
    return json.loads(text)

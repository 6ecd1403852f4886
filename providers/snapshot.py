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
from arbitrage.plural import plural

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
    rows = csv.reader(text.splitlines())
    head = next(rows, None) or []
    col = {name: i for i, name in enumerate(head)}
    try:
        (provider, region, zone, itype, accel, gpus, memory, vcpus, ram, od, spot, as_of, ref) = (col[c] for c in (
            "provider", "region", "zone", "instance_type", "accelerator", "gpus_per_node", "gpu_memory_gb", "vcpus",
            "ram_gb", "on_demand_usd_per_hour", "spot_usd_per_hour", "as_of", "price_ref"))
    except KeyError as exc:
        raise DataError(f"{label}:1: missing column {exc}") from None
    optional = {c: col.get(c) for c in ("country", "continent", "as_of_estimated", "available", "host_reliability")}

    def cell(r: list[str], name: str) -> str:
        i = optional[name]
        return r[i] if i is not None and i < len(r) else ""

    memo: dict[tuple[str, str, str], tuple[str, float, str]] = {}  # (provider, type, GPU) -> fabric, Gbit/s, model
    for lineno, r in enumerate(rows, start=2):
        where = f"{label}:{lineno}"
        if len(r) != len(head):
            raise DataError(f"{where}: malformed row ({plural(len(r), 'field')} for {len(head)} columns)")
        fact = facts.gpus.get(r[accel])
        if fact is None:
            continue  # a GPU model the fact table does not know cannot be costed
        key = (r[provider], r[itype], r[accel])
        known = memo.get(key)
        if known is None:
            fabric, gbps = facts.interconnect_for(key[0], key[1])
            known = memo[key] = (fabric, gbps, facts.gpu_model_for(*key))
        country, continent = cell(r, "country"), cell(r, "continent")
        if not continent:
            country, continent = locate(facts, r[provider], r[region], r[zone] or None)
        try:
            offers.append(Offer(
                provider=r[provider], region=r[region], zone=r[zone] or None, instance_type=r[itype],
                accelerator=r[accel], gpus_per_node=int(r[gpus]),
                gpu_memory_gb=_float(where, r[memory]) or fact.memory_gb,
                vcpus=_float(where, r[vcpus]), ram_gb=_float(where, r[ram]),
                on_demand_usd_per_hour=_float(where, r[od]), spot_usd_per_hour=_float(where, r[spot]),
                interconnect=known[0], interconnect_gbps=known[1], source="snapshot", as_of=r[as_of],
                price_ref=r[ref], gpu_model=known[2], country=country, continent=continent,
                as_of_estimated=cell(r, "as_of_estimated") == "true", available=_int(where, cell(r, "available")),
                host_reliability=_float(where, cell(r, "host_reliability")),
            ))
        except ValueError as exc:
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

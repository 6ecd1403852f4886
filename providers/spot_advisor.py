"""AWS Spot Instance Advisor interruption bands: live from AWS's public feed, cached, the bundled copy as fallback.

Feed: ``GET https://spot-bid-advisor.s3.amazonaws.com/spot-advisor-data.json`` (public, no credentials; the data
behind aws.amazon.com/ec2/spot/instance-advisor). Its shape::

    {"global_rate": "<10%",
     "instance_types": {"p5.48xlarge": {"emr": true, "cores": 192, "ram_gb": 2048.0}, ...},
     "ranges": [{"index": 0, "label": "<5%", "dots": 0, "max": 5}, ... {"index": 4, "label": ">20%", "max": 100}],
     "spot_advisor": {"us-east-1": {"Linux": {"p5.48xlarge": {"s": 52, "r": 4}, ...}, "Windows": {...}}, ...}}

``r`` is the band index into ``ranges`` ("Frequency of interruption represents the rate at which Spot has
reclaimed capacity during the trailing month"), ``s`` the savings over on-demand in percent. Only the Linux rows
of GPU families (p*, g*, gr*) are kept, as ``arbitrage.facts.AdvisorTable`` keyed by (region, instance type).

Sources, like prices (providers/fetch.py): ``snapshot`` is the bundled dated copy (arbitrage/data/spot_advisor.csv);
``cache`` the last good fetch; ``auto`` a fresh cache (``TTL_SECONDS``), else a live fetch, else a stale cache,
else the bundled copy, with one warning line naming the failure and a pause before the next try; ``live``
fetches now. The cache is one JSON document in the cache folder (providers/cache.py), replaced atomically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from arbitrage import paths
from arbitrage.facts import AdvisorTable
from providers import cache
from providers.base import FetchContext, ProviderError

NAME = "aws-spot-advisor"
URL = "https://spot-bid-advisor.s3.amazonaws.com/spot-advisor-data.json"
TTL_SECONDS = 6 * 3600  # the feed averages a trailing month; a few hours old is current
FAILURE_COOLDOWN_S = 600
DOCUMENT = "spot-advisor-aws"
_GPU_FAMILY = re.compile(r"^(p\d|g\d|gr\d)")
REF = "AWS Spot Instance Advisor feed spot-advisor-data.json"


@dataclass(frozen=True)
class AdvisorStatus:
    """Which Advisor table was used and why, for one notice line ('' when there is nothing to say)."""

    used: str  # live | cache | snapshot
    level: str = "ok"  # ok | info | warning
    message: str = ""


def parse_feed(payload: Any, fetched_at: datetime) -> AdvisorTable:
    """The GPU families' Linux bands from a decoded feed; ProviderError when the shape is not the feed's."""
    if not isinstance(payload, dict):
        raise ProviderError(NAME, "feed is not a JSON object")
    ranges, advisor = payload.get("ranges"), payload.get("spot_advisor")
    if not isinstance(ranges, list) or not isinstance(advisor, dict):
        raise ProviderError(NAME, "feed lacks the 'ranges' list or the 'spot_advisor' object")
    indexes = {r.get("index") for r in ranges if isinstance(r, dict)}
    if indexes != set(range(len(ranges))) or not ranges:
        raise ProviderError(NAME, f"feed 'ranges' are not bands 0..{len(ranges) - 1}: {sorted(map(str, indexes))}")
    bands: dict[tuple[str, str], int] = {}
    for region, by_os in advisor.items():
        linux = by_os.get("Linux") if isinstance(by_os, dict) else None
        if not isinstance(linux, dict):
            continue
        for instance_type, entry in linux.items():
            if not _GPU_FAMILY.match(str(instance_type).split(".")[0]):
                continue
            band = entry.get("r") if isinstance(entry, dict) else None
            if isinstance(band, bool) or not isinstance(band, int) or band not in indexes:
                raise ProviderError(NAME, f"{region} {instance_type}: band {band!r} is not one of the feed's ranges")
            bands[(str(region), str(instance_type))] = band
    if not bands:
        raise ProviderError(NAME, "feed lists no GPU instance types")
    return AdvisorTable(bands, "live", fetched_at.isoformat(timespec="seconds"), REF)


async def fetch_live(ctx: FetchContext) -> AdvisorTable:
    """GET the feed now (retries, timeouts and JSON checks of providers/http.py)."""
    from providers.http import new_client, request_json

    url = ctx.endpoints.get(NAME, URL)
    async with new_client(ctx) as client:
        payload = await request_json(client, ctx, NAME, "GET", url)
    return parse_feed(payload, ctx.now)


def _from_document(doc: dict[str, Any]) -> AdvisorTable | None:
    rows = doc.get("bands")
    if not isinstance(rows, list) or not doc.get("fetched_at"):
        return None
    try:
        bands = {(str(r), str(t)): int(b) for r, t, b in rows}
    except (TypeError, ValueError):
        return None
    return AdvisorTable(bands, "cache", str(doc["fetched_at"]), REF)


def _document(table: AdvisorTable | None, failed_at: datetime | None = None, failure: str | None = None,
              fetched_at: str | None = None) -> dict[str, Any]:
    rows = sorted([r, t, b] for (r, t), b in table.bands.items()) if table else []
    return {"fetched_at": fetched_at or (table.as_of if table else None), "bands": rows,
            "failed_at": failed_at.isoformat(timespec="seconds") if failed_at else None, "failure": failure}


def _age_seconds(when: str | None, now: datetime) -> float | None:
    try:
        return (now - datetime.fromisoformat(when)).total_seconds() if when else None
    except (TypeError, ValueError):
        return None


def load_advisor(mode: str, ctx: FetchContext, pause: bool = True) -> tuple[AdvisorTable, AdvisorStatus]:
    """The Advisor table for ``mode`` (auto | live | cache | snapshot) and how it was obtained; never raises.
    ``pause=False`` (--strict) fetches again even within `auto`'s pause after a failure."""
    bundled = ctx.facts.spot_advisor
    if mode == "snapshot":
        return bundled, AdvisorStatus("snapshot")
    directory = paths.cache_dir(ctx.env)
    doc = cache.read_document(directory, DOCUMENT) or {}
    cached = _from_document(doc) if doc else None

    def fallback(level: str, reason: str) -> tuple[AdvisorTable, AdvisorStatus]:
        if cached is not None:
            return cached, AdvisorStatus("cache", level, f"{reason}; using the cached feed of {cached.as_of}")
        return bundled, AdvisorStatus("snapshot", level, f"{reason}; using the bundled copy as of {bundled.as_of}")

    if mode == "cache":
        return (cached, AdvisorStatus("cache")) if cached else fallback("info", f"{NAME}: no cached feed")
    age = _age_seconds(cached.as_of, ctx.now) if cached else None
    if mode == "auto" and age is not None and age <= TTL_SECONDS:
        return cached, AdvisorStatus("cache")  # type: ignore[return-value]
    failed_age = _age_seconds(doc.get("failed_at"), ctx.now)
    if pause and mode == "auto" and failed_age is not None and failed_age < FAILURE_COOLDOWN_S:
        return fallback("warning", f"{NAME}: last fetch failed ({doc.get('failure')}); retrying after a "
                                   f"{FAILURE_COOLDOWN_S // 60} min pause")
    import asyncio

    try:
        table = asyncio.run(fetch_live(ctx))
    except ProviderError as exc:
        reason = str(exc).removeprefix(f"{NAME}: ")
        cache.write_document(directory, DOCUMENT, _document(cached, ctx.now, reason,
                                                            fetched_at=cached.as_of if cached else None))
        return fallback("warning", f"{NAME}: live fetch failed ({reason})")
    cache.write_document(directory, DOCUMENT, _document(table))
    return table, AdvisorStatus("live")

"""Gather offers from every provider concurrently: fresh cache, live API, stale cache, then snapshot.

This is the only place that decides which source a provider's prices come from, and it says so:
every provider gets a `ProviderStatus` (what was used, how old, and why) for the CLI to print.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from arbitrage.offers import Offer
from providers import cache
from providers.base import Adapter, FetchContext, MissingCredentials, ProviderError
from providers.registry import ADAPTER_MODULES, get_adapter

SourceMode = Literal["auto", "live", "cache", "snapshot"]
SOURCE_MODES: tuple[SourceMode, ...] = ("auto", "live", "cache", "snapshot")

# After a failed live fetch, `auto` waits this long before trying that provider again.
FAILURE_COOLDOWN_S = 600


@dataclass(frozen=True)
class ProviderStatus:
    """How one provider's offers were obtained, for `gpuarb providers` and warnings."""

    provider: str
    used: Literal["live", "cache", "snapshot", "none"]
    offers: int
    as_of: str
    credentials: bool | None
    level: Literal["ok", "info", "warning"] = "ok"
    message: str = ""


async def _fetch_live(adapter: Adapter, ctx: FetchContext, deadline_s: float) -> list[Offer]:
    try:
        return await asyncio.wait_for(adapter.fetch(ctx), timeout=deadline_s)
    except TimeoutError:
        raise ProviderError(adapter.name, f"no answer within {deadline_s:g}s") from None


async def _one(name: str, mode: SourceMode, ctx: FetchContext, snapshot: list[Offer], directory: Path,
               deadline_s: float) -> tuple[list[Offer], ProviderStatus]:
    """Offers for one provider under the given source mode, falling back and saying why."""

    def from_snapshot(level: Literal["ok", "info", "warning"], message: str,
                      creds: bool | None) -> tuple[list[Offer], ProviderStatus]:
        as_of = ", ".join(sorted({o.as_of for o in snapshot})) or "-"
        used: Literal["snapshot", "none"] = "snapshot" if snapshot else "none"
        return snapshot, ProviderStatus(name, used, len(snapshot), as_of, creds, level, message)

    def from_cache(entry: cache.CacheEntry, level: Literal["ok", "info", "warning"], message: str,
                   creds: bool | None) -> tuple[list[Offer], ProviderStatus]:
        stamp = entry.fetched_at.isoformat(timespec="seconds") if entry.fetched_at else "-"
        return list(entry.offers), ProviderStatus(name, "cache", len(entry.offers), stamp, creds, level, message)

    if mode == "snapshot" or name not in ADAPTER_MODULES:
        return from_snapshot("ok", "", None)

    entry = cache.read(directory, name)
    has_cache = entry is not None and entry.fetched_at is not None and bool(entry.offers)
    try:
        adapter = get_adapter(name)
    except ModuleNotFoundError as exc:  # an adapter whose SDK extra is not installed
        return from_snapshot("info", f"{name}: adapter unavailable ({exc.name} not installed)", None)

    if mode == "cache":
        if has_cache:
            assert entry is not None
            return from_cache(entry, "ok", "", None)
        return from_snapshot("info", f"{name}: no cached prices; using the bundled snapshot", None)

    age = entry.age_seconds(ctx.now) if has_cache and entry is not None else None
    if mode == "auto" and age is not None and age <= adapter.ttl_seconds:
        assert entry is not None
        return from_cache(entry, "ok", "", None)

    creds = adapter.has_credentials(ctx)
    if not creds:
        message = f"{name}: no credentials ({adapter.credentials_hint}); using " + (
            "cached prices" if has_cache else "the bundled snapshot")
        if has_cache:
            assert entry is not None
            return from_cache(entry, "info", message, False)
        return from_snapshot("info", message, False)

    if (mode == "auto" and entry is not None and entry.failed_at is not None
            and (ctx.now - entry.failed_at).total_seconds() < FAILURE_COOLDOWN_S
            and (entry.fetched_at is None or entry.failed_at > entry.fetched_at)):
        pause = FAILURE_COOLDOWN_S // 60
        reason = f"{name}: last live fetch failed ({entry.failure}); retrying after a {pause} min pause"
        if has_cache:
            return from_cache(entry, "warning", reason + "; using cached prices", True)
        return from_snapshot("warning", reason + "; using the bundled snapshot", True)

    try:
        offers = await _fetch_live(adapter, ctx, deadline_s)
        if not offers:
            raise ProviderError(name, "returned no GPU offers")
    except (ProviderError, MissingCredentials) as exc:
        reason = str(exc).removeprefix(f"{name}: ")
        cache.record_failure(directory, name, ctx.now, reason)
        if has_cache:
            assert entry is not None
            return from_cache(entry, "warning", f"{name}: live fetch failed ({reason}); using cached prices", True)
        return from_snapshot("warning", f"{name}: live fetch failed ({reason}); using the bundled snapshot", True)
    cache.write_offers(directory, name, offers, ctx.now)
    stamp = ctx.now.isoformat(timespec="seconds")
    return offers, ProviderStatus(name, "live", len(offers), stamp, True)


async def _gather(names: list[str], mode: SourceMode, ctx: FetchContext, snapshot: Mapping[str, list[Offer]],
                  directory: Path, deadline_s: float) -> list[tuple[list[Offer], ProviderStatus]]:
    tasks = [_one(n, mode, ctx, snapshot.get(n, []), directory, deadline_s) for n in names]
    return list(await asyncio.gather(*tasks))


def collect_offers(snapshot: Iterable[Offer], mode: SourceMode, ctx: FetchContext,
                   providers: Iterable[str] | None = None,
                   deadline_s: float = 60.0) -> tuple[list[Offer], list[ProviderStatus]]:
    """Offers from every provider (or the named ones) under `mode`, fetched concurrently."""
    by_provider: dict[str, list[Offer]] = {}
    for offer in snapshot:
        by_provider.setdefault(offer.provider, []).append(offer)
    names = sorted(set(providers) if providers is not None else set(by_provider) | set(ADAPTER_MODULES))
    directory = cache.cache_dir(ctx.env)
    results = asyncio.run(_gather(names, mode, ctx, by_provider, directory, deadline_s))
    offers = [o for batch, _ in results for o in batch]
    return offers, [status for _, status in results]

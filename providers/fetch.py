"""Gather offers from every provider concurrently: fresh cache, live API, stale cache, then snapshot.

This is the only place that decides which source a provider's prices come from, and it says so:
every provider gets a `ProviderStatus` (what was used, how old, and why) for the CLI to print.
Every live or cached batch passes the price quality gate (providers/quality.py) first; the prices it sets aside
ride along in the status (the bundled snapshot was gated when it was built).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from arbitrage import paths
from arbitrage.offers import Offer
from providers import cache
from providers.base import Adapter, FetchContext, NoCapacity, ProviderError
from providers.quality import GateRules, Quarantined, gate, load_rules
from providers.registry import adapter_ids, get_adapter

SourceMode = Literal["auto", "live", "cache", "snapshot"]

Level = Literal["ok", "info", "warning"]

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
    level: Level = "ok"
    message: str = ""
    # Prices the quality gate set aside from this batch (live or cached), with their reasons.
    quarantined: tuple[Quarantined, ...] = ()


Result = tuple[list[Offer], ProviderStatus]


@dataclass
class _Source:
    """One provider's inputs: its snapshot offers and cache entry, and how to report each outcome."""

    name: str
    snapshot: list[Offer]
    entry: cache.CacheEntry | None
    rules: GateRules | None = None

    @property
    def has_cache(self) -> bool:
        return self.entry is not None and self.entry.fetched_at is not None and bool(self.entry.offers)

    def from_snapshot(self, level: Level, message: str, creds: bool | None) -> Result:
        as_of = ", ".join(sorted({o.as_of for o in self.snapshot})) or "-"
        used: Literal["snapshot", "none"] = "snapshot" if self.snapshot else "none"
        return self.snapshot, ProviderStatus(self.name, used, len(self.snapshot), as_of, creds, level, message)

    def gated(self, offers: list[Offer]) -> tuple[list[Offer], tuple[Quarantined, ...]]:
        """The offers that pass the quality gate, and the prices it set aside."""
        if self.rules is None:
            return offers, ()
        result = gate(offers, self.rules)
        return result.kept, tuple(result.quarantined)

    def from_cache(self, level: Level, message: str, creds: bool | None) -> Result:
        assert self.entry is not None and self.entry.fetched_at is not None
        stamp = self.entry.fetched_at.isoformat(timespec="seconds")
        offers, aside = self.gated(list(self.entry.offers))
        return offers, ProviderStatus(self.name, "cache", len(offers), stamp, creds, level, message, aside)

    def fallback(self, level: Level, message: str, creds: bool | None) -> Result:
        """The last good cache if there is one, else the snapshot, with the reason appended."""
        if self.has_cache:
            return self.from_cache(level, f"{message}; using cached prices", creds)
        return self.from_snapshot(level, f"{message}; using the bundled snapshot", creds)


def _decide(source: _Source, mode: SourceMode, ctx: FetchContext) -> Result | Adapter:
    """Answer from cache/snapshot without touching the network, or return the adapter to call live."""
    name, entry = source.name, source.entry
    if mode == "snapshot" or name not in adapter_ids():
        return source.from_snapshot("ok", "", None)
    try:
        adapter = get_adapter(name)
    except ModuleNotFoundError as exc:  # an adapter whose SDK extra is not installed
        return source.from_snapshot("info", f"{name}: adapter unavailable ({exc.name} not installed)", None)
    if adapter.ttl_seconds <= 0:  # a local source (owned capacity): always read, never cached
        source.entry = entry = None
    if mode == "cache":
        if source.has_cache:
            return source.from_cache("ok", "", None)
        return source.from_snapshot("info", f"{name}: no cached prices; using the bundled snapshot", None)
    if mode == "auto" and source.has_cache:
        assert entry is not None
        age = entry.age_seconds(ctx.now)
        if age is not None and age <= adapter.ttl_seconds:
            return source.from_cache("ok", "", None)
    if not adapter.has_credentials(ctx):
        return source.fallback("info", f"{name}: no credentials ({adapter.credentials_hint})", False)
    failure_age = entry.failure_age_seconds(ctx.now) if entry is not None else None
    if (mode == "auto" and entry is not None and entry.failed_at is not None
            and failure_age is not None and failure_age < FAILURE_COOLDOWN_S
            and (entry.fetched_at is None or entry.failed_at > entry.fetched_at)):
        pause = FAILURE_COOLDOWN_S // 60
        return source.fallback("warning", f"{name}: last live fetch failed ({entry.failure}); "
                                          f"retrying after a {pause} min pause", True)
    return adapter


async def _fetch(adapter: Adapter, ctx: FetchContext, deadline_s: float) -> list[Offer]:
    """The adapter's offers, with every failure turned into ProviderError (ImportError passes through)."""
    import asyncio

    name = adapter.name
    try:
        offers = await asyncio.wait_for(adapter.fetch(ctx), timeout=deadline_s)
    except TimeoutError:
        raise ProviderError(name, f"no answer within {deadline_s:g}s") from None
    except (ProviderError, ImportError):
        raise
    except Exception as exc:  # an adapter bug must not fail the whole command: report it, fall back
        raise ProviderError(name, f"adapter error {type(exc).__name__}: {exc}") from exc
    if not offers:
        raise ProviderError(name, "returned no GPU offers")
    return offers


async def _live(source: _Source, adapter: Adapter, ctx: FetchContext, directory: Path, deadline_s: float) -> Result:
    """Fetch live; on success replace the cache, on failure record it and fall back."""
    name = source.name
    try:
        offers = await _fetch(adapter, ctx, deadline_s)
    except ImportError as exc:  # the provider's SDK extra is not installed
        return source.fallback("warning", f"{name}: live prices need the '{exc.name}' package "
                                          f"(pip install 'gpuarb[{name}]')", True)
    except NoCapacity as exc:  # a real answer: nothing to buy now; not a failure, so no fallback or cooldown
        reason = str(exc).removeprefix(f"{name}: ")
        if adapter.ttl_seconds > 0:
            cache.write_offers(directory, name, [], ctx.now)
        return [], ProviderStatus(name, "live", 0, ctx.now.isoformat(timespec="seconds"), True, "warning",
                                  f"{name}: {reason}")
    except ProviderError as exc:  # MissingCredentials included
        reason = str(exc).removeprefix(f"{name}: ")
        if adapter.ttl_seconds > 0:
            cache.record_failure(directory, name, ctx.now, reason, source.entry)
        return source.fallback("warning", f"{name}: live fetch failed ({reason})", True)
    kept, aside = source.gated(offers)
    if not kept:  # a broken answer: keep the last good cache, fall back to it, and say why
        reason = f"the price quality gate set aside all {len(aside)} prices (first: {aside[0].reason})"
        if adapter.ttl_seconds > 0:
            cache.record_failure(directory, name, ctx.now, reason, source.entry)
        offers_back, status = source.fallback("warning", f"{name}: live fetch failed ({reason})", True)
        return offers_back, replace(status, quarantined=aside + status.quarantined)
    if adapter.ttl_seconds > 0:  # the cache keeps the answer as received; the gate runs again on every read
        cache.write_offers(directory, name, offers, ctx.now)
    return kept, ProviderStatus(name, "live", len(kept), ctx.now.isoformat(timespec="seconds"), True,
                                quarantined=aside)


async def _gather(jobs: list[tuple[_Source, Adapter]], ctx: FetchContext, directory: Path,
                  deadline_s: float) -> list[Result]:
    import asyncio

    from providers.http import use_daemon_threads

    # An SDK call stuck in a thread (a socket dripping a byte a second) must not hold the command past deadline_s.
    use_daemon_threads(asyncio.get_running_loop())
    return list(await asyncio.gather(*(_live(s, a, ctx, directory, deadline_s) for s, a in jobs)))


def collect_offers(snapshot: Iterable[Offer], mode: SourceMode, ctx: FetchContext,
                   providers: Iterable[str] | None = None,
                   deadline_s: float = 60.0) -> tuple[list[Offer], list[ProviderStatus]]:
    """Offers from every provider (or the named ones) under `mode`; live fetches run concurrently."""
    by_provider: dict[str, list[Offer]] = {}
    for offer in snapshot:
        by_provider.setdefault(offer.provider, []).append(offer)
    live = adapter_ids()
    names = sorted(set(providers) if providers is not None else set(by_provider) | set(live))
    directory = paths.cache_dir(ctx.env)
    results: dict[str, Result] = {}
    jobs: list[tuple[_Source, Adapter]] = []
    rules = load_rules(ctx.facts) if mode != "snapshot" else None
    problems: dict[str, str] = {}  # a cache file that was ignored, and why: one warning per provider
    for name in names:
        entry, problem = cache.inspect(directory, name) if name in live and mode != "snapshot" else (None, None)
        if problem:
            problems[name] = problem
        source = _Source(name, by_provider.get(name, []), entry, rules)
        decided = _decide(source, mode, ctx)
        if isinstance(decided, tuple):
            results[name] = decided
        else:
            jobs.append((source, decided))
    if jobs:  # only now pay for an event loop and HTTP clients
        import asyncio

        for (source, _), result in zip(jobs, asyncio.run(_gather(jobs, ctx, directory, deadline_s)), strict=True):
            results[source.name] = result
    for name, problem in problems.items():
        batch, status = results[name]
        message = f"{name}: {problem}" + (f"; {status.message.removeprefix(name + ': ')}" if status.message else "")
        results[name] = (batch, replace(status, level="warning", message=message))
    ordered = [results[n] for n in names]
    return [o for batch, _ in ordered for o in batch], [status for _, status in ordered]

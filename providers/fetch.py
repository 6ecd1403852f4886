"""Gather offers from every provider concurrently: fresh cache, live API, stale cache, then snapshot.

This is the only place that decides which source a provider's prices come from, and it says so:
every provider gets a `ProviderStatus` (what was used, how old, and why) for the CLI to print.
Every live or cached batch passes the price quality gate (providers/quality.py) first; the prices it sets aside
ride along in the status (the bundled snapshot was gated when it was built).

Each status also says what `--strict` needs to know (``shortfall``: why the source asked for was not used), and
``notices`` turns the statuses into the lines a command prints: a provider that keeps failing the same way while the
network is unreachable (or it times out) is reported in full once, then in one short line per command, until a
fetch succeeds again (the offline state lives in the cache folder, providers/cache.py).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
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
    # Why the last live fetch failed (this command's, or the recent one `auto` pauses after); "" when none did.
    failure: str = ""
    # Why the source asked for (live; cache; auto: a fresh cache or live) was not used; "" when it was, or when the
    # provider has none to use (snapshot only, a local file that is not there): what `--strict` fails on.
    shortfall: str = ""


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

    def from_snapshot(self, level: Level, message: str, creds: bool | None, *, failure: str = "",
                      shortfall: str = "") -> Result:
        as_of = ", ".join(sorted({o.as_of for o in self.snapshot})) or "-"
        used: Literal["snapshot", "none"] = "snapshot" if self.snapshot else "none"
        return self.snapshot, ProviderStatus(self.name, used, len(self.snapshot), as_of, creds, level, message,
                                             failure=failure, shortfall=shortfall)

    def gated(self, offers: list[Offer]) -> tuple[list[Offer], tuple[Quarantined, ...]]:
        """The offers that pass the quality gate, and the prices it set aside."""
        if self.rules is None:
            return offers, ()
        result = gate(offers, self.rules)
        return result.kept, tuple(result.quarantined)

    def from_cache(self, level: Level, message: str, creds: bool | None, *, failure: str = "",
                   shortfall: str = "") -> Result:
        assert self.entry is not None and self.entry.fetched_at is not None
        stamp = self.entry.fetched_at.isoformat(timespec="seconds")
        offers, aside = self.gated(list(self.entry.offers))
        return offers, ProviderStatus(self.name, "cache", len(offers), stamp, creds, level, message, aside,
                                      failure=failure, shortfall=shortfall)

    def fallback(self, level: Level, reason: str, creds: bool | None, *, failure: str = "",
                 strict: bool = True) -> Result:
        """The last good cache if there is one, else the snapshot; the message is the reason with what was used
        instead, and (unless ``strict`` is False) the reason is the shortfall `--strict` fails on."""
        shortfall = reason if strict else ""
        if self.has_cache:
            return self.from_cache(level, f"{self.name}: {reason}; using cached prices", creds, failure=failure,
                                   shortfall=shortfall)
        return self.from_snapshot(level, f"{self.name}: {reason}; using the bundled snapshot", creds,
                                  failure=failure, shortfall=shortfall)


def _decide(source: _Source, mode: SourceMode, ctx: FetchContext, pause: bool = True) -> Result | Adapter:
    """Answer from cache/snapshot without touching the network, or return the adapter to call live (``pause``:
    `auto` waits FAILURE_COOLDOWN_S after a failed fetch before asking that provider again)."""
    name, entry = source.name, source.entry
    if mode == "snapshot" or name not in adapter_ids():
        return source.from_snapshot("ok", "", None)
    try:
        adapter = get_adapter(name)
    except ModuleNotFoundError as exc:  # an adapter whose SDK extra is not installed
        reason = f"adapter unavailable ({exc.name} not installed)"
        return source.from_snapshot("info", f"{name}: {reason}", None, shortfall=reason)
    local = adapter.ttl_seconds <= 0  # a local source (a published list, owned capacity): always read, never cached
    if local:
        source.entry = entry = None
    if mode == "cache":
        if source.has_cache:
            return source.from_cache("ok", "", None)
        return source.from_snapshot("info", f"{name}: no cached prices; using the bundled snapshot", None,
                                    shortfall="" if local else "no cached prices")
    if mode == "auto" and source.has_cache:
        assert entry is not None
        age = entry.age_seconds(ctx.now)
        if age is not None and age <= adapter.ttl_seconds:
            return source.from_cache("ok", "", None)
    if not adapter.has_credentials(ctx):  # a local source without its file: nothing of the user's to read
        return source.fallback("info", f"no credentials ({adapter.credentials_hint})", False, strict=not local)
    failure_age = entry.failure_age_seconds(ctx.now) if entry is not None else None
    if (pause and mode == "auto" and entry is not None and entry.failed_at is not None
            and failure_age is not None and failure_age < FAILURE_COOLDOWN_S
            and (entry.fetched_at is None or entry.failed_at > entry.fetched_at)):
        minutes = FAILURE_COOLDOWN_S // 60
        return source.fallback("warning", f"last live fetch failed ({entry.failure}); retrying after a {minutes} min "
                                          "pause", True, failure=entry.failure or "")
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
        return source.fallback("warning", f"live prices need the '{exc.name}' package (pip install 'gpuarb[{name}]')",
                               True)
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
        return source.fallback("warning", f"live fetch failed ({reason})", True, failure=reason)
    kept, aside = source.gated(offers)
    if not kept:  # a broken answer: keep the last good cache, fall back to it, and say why
        reason = (f"the price quality gate set aside its only price ({aside[0].reason})" if len(aside) == 1
                  else f"the price quality gate set aside all {len(aside)} prices (first: {aside[0].reason})")
        if adapter.ttl_seconds > 0:
            cache.record_failure(directory, name, ctx.now, reason, source.entry)
        offers_back, status = source.fallback("warning", f"live fetch failed ({reason})", True, failure=reason)
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
                   deadline_s: float = 60.0, *, pause: bool = True) -> tuple[list[Offer], list[ProviderStatus]]:
    """Offers from every provider (or the named ones) under `mode`; live fetches run concurrently. ``pause=False``
    (--strict) asks a provider again even within `auto`'s pause after a failure: insisting on current prices means
    trying for them."""
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
        decided = _decide(source, mode, ctx, pause)
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
        shortfall = f"{problem}; {status.shortfall}" if status.shortfall else ""
        results[name] = (batch, replace(status, level="warning", message=message, shortfall=shortfall))
    ordered = [results[n] for n in names]
    return [o for batch, _ in ordered for o in batch], [status for _, status in ordered]


# -- What a command says about its sources ----------------------------------------------------------------------

# Failures that mean the network (or the provider) cannot be reached just now. They heal by themselves, so they are
# reported in full once, then in one short line while they last. Any other failure (a refused key, a malformed
# answer) is reported in full every time: it needs the user. Matched against the one-line reasons of
# providers/http.py, botocore's connection errors and the resolver's own words.
_OFFLINE_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("unreachable", re.compile(
        r"cannot connect to|EndpointConnectionError|ConnectionClosedError|could not connect to the endpoint"
        r"|connection failed \((?:ConnectError|ReadError|WriteError|CloseError|NetworkError)"
        r"|name or service not known|temporary failure in name resolution|nodename nor servname|getaddrinfo failed"
        r"|network is unreachable|no route to host|connection refused", re.IGNORECASE)),
    ("timeout", re.compile(r"timed out|no answer within|ConnectTimeout|ReadTimeout", re.IGNORECASE)),
)


def offline_kind(reason: str) -> str | None:
    """'unreachable' or 'timeout' when a failure's reason says the provider could not be reached, else None."""
    for kind, pattern in _OFFLINE_KINDS:
        if pattern.search(reason):
            return kind
    return None


def notices(statuses: Sequence[ProviderStatus], mode: str, directory: Path, now: datetime, *, full: bool = False,
            summary: bool = True) -> list[str]:
    """The lines (``warning: ...``, ``info: ...``) a command prints about its price sources, in provider order.

    Warnings are always said, info lines unless ``mode`` is auto. A provider that cannot be reached (``offline_kind``)
    is said in full the first time and remembered in the cache folder's offline state; while it keeps failing the
    same way, later commands fold it into one short line (``summary``; none when False) instead. A successful fetch,
    or a failure of another kind, forgets it. ``full`` (--strict, --refresh) says everything in full.
    """
    state = cache.read_offline(directory)
    before = dict(state)
    lines: list[str] = []
    still: list[tuple[ProviderStatus, cache.OfflineRecord]] = []
    for status in statuses:
        kind = offline_kind(status.failure) if status.failure else None
        held = state.get(status.provider)
        if kind is not None:
            if held is not None and held.kind == kind and not full:
                still.append((status, held))
                continue
            if held is None or held.kind != kind:
                state[status.provider] = cache.OfflineRecord(kind, now, status.failure)
        elif held is not None and (status.used == "live" or status.failure):
            del state[status.provider]  # reachable again (or failing another way): the next pause is said in full
        if status.message and (status.level == "warning" or (status.level == "info" and mode != "auto")):
            lines.append(f"{status.level}: {status.message}")
    if still and summary:
        lines.append(_still_offline(still, now))
    if state != before:
        with contextlib.suppress(OSError):  # a read-only cache folder: said in full again next time, nothing worse
            cache.write_offline(directory, state)
    return lines


def _still_offline(still: Sequence[tuple[ProviderStatus, cache.OfflineRecord]], now: datetime) -> str:
    """'warning: still offline since 14:05 UTC: aws, gcp (using cached prices for aws; snapshot prices for gcp)'."""
    from datetime import timezone

    since = min(record.since for _, record in still).astimezone(timezone.utc)
    same_day = since.date() == now.astimezone(timezone.utc).date()
    stamp = since.strftime("%H:%M UTC" if same_day else "%Y-%m-%d %H:%M UTC")
    words = {"cache": "cached prices", "snapshot": "snapshot prices", "live": "live prices", "none": "no prices"}
    used: dict[str, list[str]] = {}
    for status, _ in still:
        used.setdefault(words.get(status.used, status.used), []).append(status.provider)
    tail = (f"using {next(iter(used))}" if len(used) == 1
            else "using " + "; ".join(f"{label} for {', '.join(names)}" for label, names in used.items()))
    return f"warning: still offline since {stamp}: {', '.join(s.provider for s, _ in still)} ({tail})"

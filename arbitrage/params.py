"""Values a user gives as text (on the command line, later in a server request), read into plain values.

One reader per kind of value, so the CLI and the server accept the same words and reject them with the same
one-line `UsageError` naming the option: sources, objectives, `--now`, `--since`, `--tag`, GPU and provider names,
and the bounds of every numeric option (README "Limits"; the CLI checks them, run ids are checked by the ledger).
No I/O; the environment and the clock come in as arguments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING

from arbitrage.errors import UsageError
from arbitrage.globs import glob_filter, glob_match

if TYPE_CHECKING:
    from arbitrage.facts import Facts


class Source(str, Enum):
    """Where prices come from (`--source`)."""

    auto = "auto"
    live = "live"
    cache = "cache"
    snapshot = "snapshot"


class Objective(str, Enum):
    """What a plan minimises first (`--objective`)."""

    cost = "cost"
    time = "time"


# Bounds of the numeric options: finite, and within these (a value outside is a typo, not a request).
MAX_GPUS_PER_NODE = 64  # --count; also the job spec's accelerator count
MAX_ROWS = 1_000_000  # --limit, --top
MAX_FAILOVERS = 100
MAX_RESTARTS = 1000
MAX_PENDING_MINUTES = 10_080.0  # a week
POLL_SECONDS = (0.05, 3600.0)
MAX_IDLE_MINUTES = 525_600.0  # a year
MAX_SINCE_DAYS = 36_500  # --since: a hundred years back


SOURCE_HELP = ("Where prices come from: auto (fresh cache, else live, else snapshot, per provider), live, cache, "
               "snapshot. Default: $GPUARB_SOURCE or auto.")


def source_or_default(source: Source | None, env: Mapping[str, str]) -> Source:
    """The chosen price source, else $GPUARB_SOURCE, else auto."""
    if source is not None:
        return source
    value = env.get("GPUARB_SOURCE", "auto").lower()
    try:
        return Source(value)
    except ValueError:
        raise UsageError(f"GPUARB_SOURCE: unknown source {value!r} (auto, live, cache, snapshot)") from None


def parse_now(now: str | None, clock: datetime) -> datetime:
    """`--now`: an ISO-8601 time (UTC when it has no zone), else the clock's time."""
    if not now:
        return clock
    try:
        stamp = datetime.fromisoformat(now.replace("Z", "+00:00"))
    except ValueError:
        shown = now if len(now) <= 40 else now[:37] + "..."
        raise UsageError(f"--now: cannot read {shown!r} as an ISO-8601 timestamp") from None
    return _utc("--now", stamp)


# `--since`: a duration back from now is one or more <number><unit> parts, optionally followed by "ago".
SINCE_FORMS = "2w, 7d, 1d12h, 90m back from now, or an ISO date/time (2026-11-01, 2026-11-01T12:00Z)"
_SINCE_UNIT_DAYS: dict[str, float] = {
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 7.0),
    **dict.fromkeys(("d", "day", "days"), 1.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 1 / 24),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 1 / 1440),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1 / 86400),
}
_SINCE_VAGUE_UNITS = frozenset({"mo", "mon", "month", "months", "y", "yr", "yrs", "year", "years"})
# Patterns as text: `re` compiles (and caches) them on first use, not on every command's start-up.
_SINCE_PART = r"\s*(\d{1,12}(?:\.\d{1,12})?)\s*([a-z]+)\s*,?"
_SINCE_DURATION = r"(?:\s*\d{1,12}(?:\.\d{1,12})?\s*[a-z]+\s*,?)+\s*"


def parse_since(text: str | None, now: datetime) -> datetime | None:
    """`--since`: a duration back from now (2w, 7d, 1d12h, 90m, "3 days ago"), or an ISO date/time (UTC when it
    has no zone); None when not given. Bad input is a UsageError naming the option."""
    if text is None:
        return None
    shown = text if len(text) <= 40 else text[:37] + "..."
    body = text.strip().lower()
    if not body:
        raise UsageError(f"--since: empty; give {SINCE_FORMS}")
    if body.endswith("ago"):
        body = body[:-3]
    if len(body) <= 100 and re.fullmatch(_SINCE_DURATION, body):
        from datetime import timedelta

        days = 0.0
        for amount, unit in re.findall(_SINCE_PART, body):
            if unit in _SINCE_VAGUE_UNITS:
                raise UsageError(f"--since: {shown!r}: months and years vary in length; give days (90d) or a date "
                                 "(2026-08-01)")
            if unit not in _SINCE_UNIT_DAYS:
                raise UsageError(f"--since: {shown!r}: unknown unit {unit!r}; give {SINCE_FORMS}")
            days += float(amount) * _SINCE_UNIT_DAYS[unit]
        if days > MAX_SINCE_DAYS:
            raise UsageError(f"--since: {shown!r} is more than {MAX_SINCE_DAYS:,} days back")
        return now - timedelta(days=days)
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since: cannot read {shown!r}; give {SINCE_FORMS}") from None
    return _utc("--since", stamp)


def _utc(option: str, stamp: datetime) -> datetime:
    """An ISO time made aware (UTC when it has no zone); UsageError for one UTC cannot hold (year 1 at +05:00)."""
    aware = stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
    try:
        aware.astimezone(timezone.utc)
    except OverflowError:
        raise UsageError(f"{option}: {stamp.isoformat()} is out of range") from None
    return aware


def parse_tags(tags: Sequence[str]) -> dict[str, str]:
    """`--tag key=value` (repeatable) as a mapping."""
    out = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise UsageError(f"--tag: expected key=value, got {tag!r}")
        out[key] = value
    return out


def canonical_gpu(name: str, facts: Facts, option: str) -> str:
    """One GPU name as gpus.csv spells it; unknown names fail naming the option, with a suggestion."""
    canonical = facts.canonical_gpu(name)
    if canonical is None:
        hint = facts.suggest_gpu(name)
        raise UsageError(f"{option}: unknown GPU '{name}'" + (f" (did you mean {hint}?)" if hint else ""))
    return canonical


_GLOB_CHARS = frozenset("*?[")


def canonical_gpus(names: Sequence[str], facts: Facts, option: str = "--gpu") -> tuple[str, ...]:
    """`--gpu` filter values (repeatable, or comma-separated) as canonical GPU names, each once, in the order given.

    A value with a shell-style glob character (``*``, ``?``, ``[``) stands for every GPU whose name or alias it
    matches (``matches_any``: case-insensitive; ``H100*`` is H100, H100-MEGA, H100-PCIE and H100-NVL); a glob that
    matches none is a UsageError naming it. Any other value is one GPU name (``canonical_gpu``: did-you-mean).
    """
    found: dict[str, None] = {}
    for part in (p.strip() for name in names for p in name.split(",")):
        if not _GLOB_CHARS & set(part):
            found[canonical_gpu(part, facts, option)] = None
            continue
        matched = [g.name for g in facts.gpus.values() if matches_any(g.name, (part,))
                   or any(matches_any(alias, (part,)) for alias in g.aliases)]
        if not matched:
            shown = part if len(part) <= 40 else part[:37] + "..."
            raise UsageError(f"{option}: no known GPU matches the glob '{shown}' (known: {', '.join(facts.gpus)})")
        found.update(dict.fromkeys(matched))
    return tuple(found)


def check_providers(patterns: Sequence[str]) -> tuple[str, ...]:
    """`--provider` ids or globs; each must match a known provider."""
    import difflib

    from providers.registry import provider_ids

    known = provider_ids()
    for p in patterns:
        if not glob_filter(known, p.lower()):
            match = difflib.get_close_matches(p.lower(), known, n=1)
            raise UsageError(f"--provider: unknown provider '{p}'" + (f" (did you mean {match[0]}?)" if match else "")
                             + f"; known: {', '.join(known)}")
    return tuple(patterns)


def matches_any(value: str, patterns: Iterable[str]) -> bool:
    """True when a provider id, region... matches one of the globs, case-insensitively (the one glob rule for
    --provider/--region options and the job spec's allow/deny lists)."""
    return any(glob_match(value.lower(), p.lower()) for p in patterns)

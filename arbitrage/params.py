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


def parse_since(text: str | None, now: datetime) -> datetime | None:
    """`--since`: an ISO date/time, or a duration back from now such as 7d, 12h, 30m (None: not given)."""
    if text is None:
        return None
    if not text.strip():
        raise UsageError("--since: empty; give 2026-11-01, 2026-11-01T12:00Z or 7d/12h/30m")
    match = re.fullmatch(r"(\d{1,12}(?:\.\d{1,12})?)([dhm])", text.strip())
    if match:
        from datetime import timedelta

        amount, unit = float(match.group(1)), match.group(2)
        days = amount / {"d": 1, "h": 24, "m": 1440}[unit]
        if days > MAX_SINCE_DAYS:
            raise UsageError(f"--since: {text!r} is more than {MAX_SINCE_DAYS:,} days back")
        return now - timedelta(days=days)
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise UsageError(f"--since: cannot read {shown!r} (use 2026-11-01, 2026-11-01T12:00Z or 7d/12h/30m)") from None
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


def canonical_gpus(names: Sequence[str], facts: Facts) -> tuple[str, ...]:
    """`--gpu` values (repeatable, or comma-separated) as canonical GPU names."""
    return tuple(canonical_gpu(part, facts, "--gpu") for name in names for part in name.split(","))


def check_providers(patterns: Sequence[str]) -> tuple[str, ...]:
    """`--provider` ids or globs; each must match a known provider."""
    import difflib
    import fnmatch

    from providers.registry import provider_ids

    known = provider_ids()
    for p in patterns:
        if not fnmatch.filter(known, p.lower()):
            match = difflib.get_close_matches(p.lower(), known, n=1)
            raise UsageError(f"--provider: unknown provider '{p}'" + (f" (did you mean {match[0]}?)" if match else "")
                             + f"; known: {', '.join(known)}")
    return tuple(patterns)


def matches_any(value: str, patterns: Iterable[str]) -> bool:
    """True when a provider id, region... matches one of the globs, case-insensitively (the one glob rule for
    --provider/--region options and the job spec's allow/deny lists)."""
    import fnmatch

    return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)

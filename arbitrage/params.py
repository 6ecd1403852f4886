"""Values a user gives as text (on the command line, later in a server request), read into plain values.

One reader per kind of value, so the CLI and the server accept the same words and reject them with the same
one-line `UsageError` naming the option: sources, objectives, `--now`, `--since`, `--tag`, GPU and provider names.
No I/O; the environment and the clock come in as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
        raise UsageError(f"--now: cannot read {now!r} as an ISO-8601 timestamp") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def parse_since(text: str | None, now: datetime) -> datetime | None:
    """`--since`: an ISO date/time, or a duration back from now such as 7d, 12h, 30m."""
    if not text:
        return None
    import re

    match = re.fullmatch(r"(\d+(?:\.\d+)?)([dhm])", text.strip())
    if match:
        from datetime import timedelta

        amount, unit = float(match.group(1)), match.group(2)
        return now - timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since: cannot read {text!r} (use 2026-11-01, 2026-11-01T12:00Z or 7d/12h/30m)") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


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


def matches_any(name: str, patterns: Sequence[str]) -> bool:
    """True when a provider id matches one of the (case-insensitive) globs."""
    import fnmatch

    return any(fnmatch.fnmatchcase(name, p.lower()) for p in patterns)

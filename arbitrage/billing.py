"""What a run has cost so far: billed hours of each launch attempt x its placement's price, plus egress charged.

Pure: no I/O and no clock; records and ``now`` come in as arguments. It works over anything shaped like the
ledger's rows (an attempt's start/end, a placement's rank and cluster price), so the ledger stays storage only
and the spend report, the FOCUS export and the runner's budget breaker all bill the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol


class BilledAttempt(Protocol):
    """A launch attempt as billing sees it: which placement it ran on, from when to when (None: still open)."""

    @property
    def rank(self) -> int: ...

    @property
    def started_at(self) -> datetime: ...

    @property
    def ended_at(self) -> datetime | None: ...


class PricedPlacement(Protocol):
    """A placement as billing sees it: the whole cluster's USD per hour."""

    @property
    def usd_per_hour(self) -> float: ...


def attempt_hours(attempt: BilledAttempt, now: datetime) -> float:
    """Billed hours of one attempt: launch to end, or to ``now`` while it is still open; never negative."""
    end = attempt.ended_at or now
    return max(0.0, (end - attempt.started_at).total_seconds() / 3600)


def attempt_cost_usd(attempt: BilledAttempt, placement: PricedPlacement, now: datetime) -> float:
    """Compute billed for one attempt: hours from launch to end (or now) x the cluster's USD per hour."""
    return attempt_hours(attempt, now) * placement.usd_per_hour


def spent_usd(attempts: Iterable[BilledAttempt], placements: Mapping[int, PricedPlacement], now: datetime, *,
              egress_in_usd: float = 0.0, egress_out_usd: float = 0.0) -> float:
    """Compute billed so far over all attempts (each priced by its placement, by rank), plus the egress charged."""
    compute = sum(attempt_cost_usd(a, placements[a.rank], now) for a in attempts)
    return compute + egress_in_usd + egress_out_usd

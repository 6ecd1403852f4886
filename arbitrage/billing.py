"""What a run has cost so far: billed hours of each launch attempt x its price, plus egress charged.

An attempt's price is what the backend launched at when it recorded one (``launched_usd_per_hour`` in the
handle's detail: SkyPilot's price for the zone and instance it really chose, where gpuarb's pin leaves it a choice),
else the planned placement's price.

Pure: no I/O and no clock; records and ``now`` come in as arguments. It works over anything shaped like the
ledger's rows (an attempt's start/end, a placement's rank and cluster price), so the ledger stays storage only
and the spend report, the FOCUS export and the runner's budget breaker all bill the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from fractions import Fraction
from typing import Any, Protocol

from arbitrage.money import cost_micro, exact_seconds, micro, usd

# Handle.detail keys a backend fills after a launch (strings, as every detail value): where it launched and the
# whole cluster's USD per hour there, with where that price came from.
LAUNCHED_USD_PER_HOUR = "launched_usd_per_hour"
LAUNCHED_PRICE_FROM = "launched_price_from"
LAUNCHED_WHERE = "launched_where"

# The provider a rehearsal on this machine (`--backend local` of a cloud placement) is booked under, at $0: not a
# price source, so not in the provider registry; the FOCUS export leaves it out (no charge to anyone).
LOCAL_PROVIDER = "local"


class BilledAttempt(Protocol):
    """A launch attempt as billing sees it: which placement it ran on, from when to when (None: still open)."""

    @property
    def rank(self) -> int: ...

    @property
    def started_at(self) -> datetime: ...

    @property
    def ended_at(self) -> datetime | None: ...

    @property
    def handle(self) -> Mapping[str, Any] | None: ...


class PricedPlacement(Protocol):
    """A placement as billing sees it: the whole cluster's USD per hour."""

    @property
    def usd_per_hour(self) -> float: ...


def attempt_hours(attempt: BilledAttempt, now: datetime) -> float:
    """Billed hours of one attempt: launch to end, or to ``now`` while it is still open; never negative."""
    end = attempt.ended_at or now
    return max(0.0, (end - attempt.started_at).total_seconds() / 3600)


def launched_usd_per_hour(handle: Mapping[str, Any] | None) -> float | None:
    """The cluster's USD per hour the backend recorded at launch, or None (not recorded, or not a sane price)."""
    detail = (handle or {}).get("detail") or {}
    try:
        price = float(detail.get(LAUNCHED_USD_PER_HOUR, ""))
    except (TypeError, ValueError):
        return None
    return price if math.isfinite(price) and price > 0 else None


def attempt_usd_per_hour(attempt: BilledAttempt, placement: PricedPlacement) -> float:
    """The whole cluster's USD per hour one attempt is billed at: the launched price, else the planned one."""
    return launched_usd_per_hour(attempt.handle) or placement.usd_per_hour


def attempt_seconds(attempt: BilledAttempt, now: datetime) -> Fraction:
    """Billed seconds of one attempt, exactly: launch to end, or to ``now`` while it is still open; never negative."""
    return max(Fraction(0), exact_seconds((attempt.ended_at or now) - attempt.started_at))


def attempt_cost_micro(attempt: BilledAttempt, placement: PricedPlacement, now: datetime) -> int:
    """Compute billed for one attempt in whole micro-USD: its billed seconds x its cluster USD per hour, rounded
    once (arbitrage/money.py: sums of these are exact)."""
    return cost_micro(attempt_usd_per_hour(attempt, placement), attempt_seconds(attempt, now))


def attempt_cost_usd(attempt: BilledAttempt, placement: PricedPlacement, now: datetime) -> float:
    """Compute billed for one attempt in USD (``attempt_cost_micro`` as a float)."""
    return usd(attempt_cost_micro(attempt, placement, now))


def spent_usd(attempts: Iterable[BilledAttempt], placements: Mapping[int, PricedPlacement], now: datetime, *,
              egress_in_usd: float = 0.0, egress_out_usd: float = 0.0) -> float:
    """Compute billed so far over all attempts (each priced by its placement, by rank), plus the egress charged."""
    compute = sum(attempt_cost_micro(a, placements[a.rank], now) for a in attempts)
    return usd(compute + micro(egress_in_usd) + micro(egress_out_usd))


def spent_between_micro(attempts: Iterable[BilledAttempt], placements: Mapping[int, PricedPlacement],
                        start: datetime, end: datetime, now: datetime) -> int:
    """Compute billed within [start, end) in whole micro-USD: each attempt's billed span clipped to the window
    (an attempt still open is billed to ``now``), at its cluster price (a team's month so far, for its cap)."""
    total = 0
    for attempt in attempts:
        if attempt.rank not in placements:
            continue
        began = max(attempt.started_at, start)
        stopped = min(attempt.ended_at or now, end, now)
        if stopped > began:
            total += cost_micro(attempt_usd_per_hour(attempt, placements[attempt.rank]), exact_seconds(stopped - began))
    return total

"""Billing arithmetic over ledger-shaped rows: pure, the clock comes in as an argument."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import NOW

from arbitrage.billing import attempt_cost_usd, attempt_hours, launched_usd_per_hour, spent_usd


@dataclass(frozen=True)
class Attempt:
    rank: int
    started_at: datetime
    ended_at: datetime | None = None
    handle: dict[str, Any] | None = None


@dataclass(frozen=True)
class Price:
    usd_per_hour: float


def test_an_open_attempt_bills_to_now_a_closed_one_to_its_end() -> None:
    open_ = Attempt(0, NOW)
    closed = Attempt(0, NOW, NOW + timedelta(minutes=90))
    assert attempt_hours(open_, NOW + timedelta(minutes=30)) == pytest.approx(0.5)
    assert attempt_hours(closed, NOW + timedelta(days=3)) == pytest.approx(1.5)
    assert attempt_cost_usd(closed, Price(40.0), NOW + timedelta(days=3)) == pytest.approx(60.0)


def test_time_never_runs_backwards_into_a_credit() -> None:
    assert attempt_hours(Attempt(0, NOW), NOW - timedelta(hours=2)) == 0.0
    assert attempt_cost_usd(Attempt(0, NOW, NOW - timedelta(hours=1)), Price(40.0), NOW) == 0.0


def test_spent_is_each_attempt_at_its_own_placements_price_plus_egress() -> None:
    attempts = [Attempt(0, NOW, NOW + timedelta(hours=2)), Attempt(1, NOW + timedelta(hours=2))]
    prices = {0: Price(10.0), 1: Price(100.0)}
    later = NOW + timedelta(hours=2, minutes=15)
    assert spent_usd(attempts, prices, later) == pytest.approx(2 * 10.0 + 0.25 * 100.0)
    assert spent_usd(attempts, prices, later, egress_in_usd=3.0, egress_out_usd=0.5) == pytest.approx(48.5)
    assert spent_usd([], prices, later, egress_in_usd=3.0) == 3.0


def test_an_attempt_on_an_unknown_placement_is_an_error_not_free() -> None:
    with pytest.raises(KeyError):
        spent_usd([Attempt(7, NOW)], {0: Price(1.0)}, NOW + timedelta(hours=1))


def test_the_ledger_bills_through_the_same_rule(tmp_path) -> None:
    from test_ledger import _new_run

    from arbitrage.ledger import Ledger
    from arbitrage.runstate import EventKind, RunState

    with Ledger.open(tmp_path / "l.db") as ledger:
        run_id = _new_run(ledger)
        n = ledger.start_attempt(run_id, 0, lambda k: f"c{k}", NOW)
        ledger.end_attempt(run_id, n, "preempted", NOW + timedelta(hours=1), "gone", kind=EventKind.PREEMPTED,
                           run_state=RunState.RECOVERING)
        ledger.start_attempt(run_id, 0, lambda k: f"c{k}", NOW + timedelta(hours=2))
        ledger.charge_egress(run_id, egress_out_usd=1.25)
        later = NOW + timedelta(hours=3)
        rows = {p.rank: p for p in ledger.placements(run_id)}
        expected = spent_usd(ledger.attempts(run_id), rows, later, egress_out_usd=1.25)
        assert ledger.spent_usd(run_id, later) == expected == pytest.approx(2 * 98.32 + 1.25)


def _launched(price: object) -> dict[str, Any]:
    return {"backend": "skypilot", "cluster_name": "c", "detail": {"launched_usd_per_hour": price}}


def test_an_attempt_is_billed_at_the_price_it_launched_at_where_the_backend_recorded_one() -> None:
    # planned at $40/h; SkyPilot chose another zone of the region at $44/h: the hour costs $44
    hour = Attempt(0, NOW, NOW + timedelta(hours=1), _launched("44.0"))
    assert attempt_cost_usd(hour, Price(40.0), NOW) == pytest.approx(44.0)
    assert spent_usd([hour, Attempt(0, NOW, NOW + timedelta(hours=1))], {0: Price(40.0)}, NOW) == pytest.approx(84.0)


@pytest.mark.parametrize("price", [None, "", "abc", "nan", "inf", "-3", "0", 12])
def test_a_missing_or_insane_launched_price_falls_back_to_the_planned_one(price: object) -> None:
    expected = 12.0 if price == 12 else None
    assert launched_usd_per_hour(_launched(price)) == expected
    hour = Attempt(0, NOW, NOW + timedelta(hours=1), _launched(price))
    assert attempt_cost_usd(hour, Price(40.0), NOW) == pytest.approx(expected or 40.0)
    assert launched_usd_per_hour(None) is None and launched_usd_per_hour({"detail": None}) is None

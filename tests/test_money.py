"""Money is exact: charges in whole micro-USD, added as integers, shown rounded half up once; history, spend and
the FOCUS export agree to the cent (and the export carries no float noise)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_report_spend import T, _attempt, _placement

from arbitrage import app as usecases
from arbitrage import ledger as L
from arbitrage.money import cents, cost_micro, decimal_usd, format_amount, micro, usd
from arbitrage.report.focus import focus_number, focus_rows
from arbitrage.report.runs import runs_table
from arbitrage.report.spend import spend_report
from arbitrage.runstate import EventKind, RunState


def test_the_helpers() -> None:
    assert micro(0.1) == 100_000 and micro(98.32) == 98_320_000 and micro(Decimal("0.0000005")) == 0
    assert micro(Fraction(3, 2_000_000)) == 2 and usd(micro(0.010750)) == 0.01075
    assert cost_micro(0.43, 90) == 10_750 and cost_micro(0.09, 1800) == 45_000
    assert str(decimal_usd(10_750)) == "0.01075" and str(decimal_usd(0)) == "0"
    assert cents(0.045) == Decimal("0.05") and cents(-0.045) == Decimal("-0.05") and cents(0.044999) == Decimal("0.04")
    assert format_amount(0.045) == "$0.05" and format_amount(-12) == "-$12.00" and format_amount(None) == "-"
    assert format_amount(1234.5) == "$1,234.50"
    with pytest.raises(ValueError):
        micro(float("nan"))


@given(st.lists(st.integers(min_value=0, max_value=10**12), max_size=20))
def test_amounts_from_micro_usd_round_trip_and_add_exactly(amounts: list[int]) -> None:
    assert [micro(usd(a)) for a in amounts] == amounts
    assert micro(usd(sum(amounts))) == sum(amounts)


def _run(ledger: L.Ledger, name: str, usd_per_hour: float, seconds: int, team: str) -> str:
    start = T("2026-11-20T10:00")
    run_id = ledger.create_run(name=name, spec_path=f"/jobs/{name}.yaml", spec_text=f"name: {name}",
                               backend="skypilot", now=start, placements=[_placement(usd_per_hour=usd_per_hour)],
                               tags={"team": team}, budget_total_usd=None, budget_hourly_usd=None)
    _attempt(ledger, run_id, 0, start, None)
    ledger.end_attempt(run_id, 1, "succeeded", start + timedelta(seconds=seconds), "exit 0",
                       kind=EventKind.FINISHED, run_state=RunState.SUCCEEDED)
    return run_id


def test_history_spend_and_focus_agree_to_the_cent_with_no_float_noise(tmp_path: Path) -> None:
    now = T("2026-11-25T00:00")
    with L.Ledger.open(tmp_path / "ledger.sqlite3") as ledger:
        half = _run(ledger, "half-cent", 0.09, 1800, "a")   # 0.045: floats print $0.04, the amount is $0.05
        _run(ledger, "tenth", 0.36, 1000, "b")               # 0.1
        _run(ledger, "fifth", 0.72, 1000, "b")               # 0.2: 0.1 + 0.2 in floats is 0.30000000000000004
        tiny = _run(ledger, "tiny", 0.43, 90, "c")           # 0.01075: floats carry 0.010750000000000001
        summaries = usecases.recent_runs(ledger)
        records = usecases.ledger_records(ledger, ledger.runs())
        assert ledger.spent_usd(half, now) == 0.045
    history = {s["name"]: s for s in summaries}
    assert format_amount(history["half-cent"]["spent_usd"]) == "$0.05"
    assert "$0.05" in runs_table(summaries).render(200)
    teams = {g.key: g for g in spend_report(records, "team", now).groups}
    assert teams["a"].actual_usd == 0.045 and format_amount(teams["a"].actual_usd) == "$0.05"
    assert teams["b"].actual_usd == 0.3  # exactly, not 0.30000000000000004
    rows = [r for r in focus_rows(records, now) if r["x_GpuarbRunId"] == tiny]
    assert [focus_number(r["BilledCost"]) for r in rows] == ["0.01075"]
    assert micro(sum(Decimal(focus_number(r["BilledCost"])) for r in focus_rows(records, now))) == micro(
        sum(Decimal(repr(g.actual_usd)) for g in teams.values()))

"""A `--backend local` rehearsal of a cloud placement is booked under provider local at $0: never cloud spend,
never a FOCUS charge; owned capacity keeps its own price."""

from __future__ import annotations

from pathlib import Path

from conftest import NOW
from test_report_spend import T, _attempt, _placement

from arbitrage import app as usecases
from arbitrage import ledger as L
from arbitrage.launch.ray.backend import RayBackend
from arbitrage.report.focus import focus_rows
from arbitrage.report.spend import spend_report
from arbitrage.runstate import EventKind, RunState


def _ledger(path: Path) -> tuple[str, str]:
    ray = RayBackend(state_dir=path.parent / "ray")
    with L.Ledger.open(path) as ledger:
        rehearsal = ledger.create_run(
            name="try-it", spec_path="/jobs/t.yaml", spec_text="name: try-it", backend="local",
            now=T("2026-11-20T10:00"), placements=[ray.accounted(_placement())], tags={"team": "research"},
            budget_total_usd=None, budget_hourly_usd=None)
        _attempt(ledger, rehearsal, 0, T("2026-11-20T10:00"), None)
        ledger.end_attempt(rehearsal, 1, "succeeded", T("2026-11-20T12:00"), "exit 0", kind=EventKind.FINISHED,
                           run_state=RunState.SUCCEEDED)
        cloud = ledger.create_run(
            name="real", spec_path="/jobs/r.yaml", spec_text="name: real", backend="skypilot",
            now=T("2026-11-20T10:00"), placements=[_placement()], tags={"team": "research"},
            budget_total_usd=None, budget_hourly_usd=None)
        _attempt(ledger, cloud, 0, T("2026-11-20T10:00"), None)
        ledger.end_attempt(cloud, 1, "succeeded", T("2026-11-20T12:00"), "exit 0", kind=EventKind.FINISHED,
                           run_state=RunState.SUCCEEDED)
    return rehearsal, cloud


def test_a_rehearsal_costs_nothing_in_spend_and_is_no_focus_charge(tmp_path: Path) -> None:
    rehearsal, cloud = _ledger(tmp_path / "ledger.sqlite3")
    with L.Ledger.open(tmp_path / "ledger.sqlite3") as ledger:
        records = usecases.ledger_records(ledger, ledger.runs())
        assert ledger.spent_usd(rehearsal, NOW) == 0.0
        assert ledger.spent_usd(cloud, NOW) == 2 * 98.32
    by_provider = {g.key: g for g in spend_report(records, "provider", NOW).groups}
    assert by_provider["local"].compute_usd == 0.0 and by_provider["local"].expected_usd == 0.0
    assert by_provider["aws"].compute_usd == 2 * 98.32
    assert {r["x_GpuarbRunId"] for r in focus_rows(records, NOW)} == {cloud}

"""The run ledger on SQLite and PostgreSQL: schema, queries, claims, and consistency when the writer is killed."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import NOW, ROOT

from arbitrage import ledger as L
from arbitrage.runstate import TERMINAL, EventKind, RunState
from arbitrage.store import engine as store

PLACEMENT = dict(provider="aws", region="us-east-1", zone=None, instance_type="p5.48xlarge", accelerator="H100",
                 gpus_per_node=8, nodes=1, spot=False, usd_per_hour=98.32, expected_hours=10.0,
                 expected_total_usd=983.2, compute_usd=983.2, preemption_usd=0.0, egress_in_usd=0.0,
                 egress_out_usd=0.0, price_source="snapshot", price_as_of="2026-11-01", price_ref="test")


def _new_run(ledger: L.Ledger, *, now=NOW, tags=None, name="job") -> str:
    return ledger.create_run(name=name, spec_path="/x/job.yaml", spec_text="name: job", backend="skypilot",
                             now=now, placements=[PLACEMENT], tags=tags or {}, budget_total_usd=None,
                             budget_hourly_usd=None)


def sql(ledger: L.Ledger, statement: str, **params: object) -> list[tuple]:
    """Run raw SQL on the ledger's database (to break a row, or to see how it is stored)."""
    with ledger.database.engine.connect() as conn, store.writing(conn).begin():
        result = conn.execute(sa.text(statement), params)
        return [tuple(r) for r in result] if result.returns_rows else []


def test_schema_is_at_head_and_sqlite_is_wal(tmp_path):
    with L.Ledger.open(tmp_path / "l.db") as ledger:
        assert sql(ledger, "SELECT version_num FROM alembic_version") == [(store.HEAD,)]
        assert sql(ledger, "PRAGMA journal_mode") == [("wal",)]
        assert sql(ledger, "PRAGMA user_version") == [(4,)]  # a gpuarb from before Alembic refuses the file
    with L.Ledger.open(tmp_path / "l.db") as again:  # reopening does not re-run migrations
        assert again.runs() == []


def test_newer_schema_is_refused_in_one_line(tmp_path, database_url):
    with L.Ledger.open(database_url) as ledger:
        sql(ledger, "UPDATE alembic_version SET version_num = '0099_from_the_future'")
    with pytest.raises(L.LedgerError, match="newer than this gpuarb"):
        L.Ledger.open(database_url)
    conn = sqlite3.connect(tmp_path / "old.db")  # a pre-Alembic file from a newer gpuarb
    conn.execute("PRAGMA user_version = 9")
    conn.close()
    with pytest.raises(L.LedgerError, match="v9 is newer than this gpuarb"):
        L.Ledger.open(tmp_path / "old.db")


def test_not_a_database_is_a_clear_error(tmp_path):
    (tmp_path / "l.db").write_text("hello, not sqlite" * 100)
    with pytest.raises(L.LedgerError, match="cannot open the run ledger"):
        L.Ledger.open(tmp_path / "l.db")


def test_lookup_by_prefix_and_filters(database_url):
    with L.Ledger.open(database_url) as ledger:
        a = _new_run(ledger, tags={"team": "research"}, name="a")
        b = _new_run(ledger, now=NOW + timedelta(days=2), tags={"team": "infra"}, name="b")
        assert ledger.run(a[:-2]).id == a
        with pytest.raises(L.LedgerError, match="no run"):
            ledger.run("nope")
        assert [r.id for r in ledger.runs()] == [b, a]  # newest first
        assert [r.id for r in ledger.runs(tags={"team": "research"})] == [a]
        assert [r.id for r in ledger.runs(since=NOW + timedelta(days=1))] == [b]
        assert ledger.run(a).tags == {"team": "research"}


def test_spend_is_hours_times_recorded_price_plus_egress(database_url):
    with L.Ledger.open(database_url) as ledger:
        run_id = _new_run(ledger)
        n = ledger.start_attempt(run_id, 0, lambda k: f"gpuarb-x-a{k}", NOW)
        ledger.attempt_launched(run_id, n, {"backend": "skypilot"}, NOW, "up")
        ledger.charge_egress(run_id, egress_in_usd=12.5)
        assert ledger.spent_usd(run_id, NOW + timedelta(minutes=30)) == pytest.approx(98.32 / 2 + 12.5)
        ledger.end_attempt(run_id, n, "succeeded", NOW + timedelta(hours=1), "done", kind=EventKind.FINISHED,
                           run_state=RunState.SUCCEEDED)
        # ended: later clocks do not add spend
        assert ledger.spent_usd(run_id, NOW + timedelta(hours=5)) == pytest.approx(98.32 + 12.5)
        assert ledger.run(run_id).terminal


CRASH_SCRIPT = textwrap.dedent("""
    import sys
    sys.path[:0] = [{tests!r}]
    from pathlib import Path
    from test_runner import RUNNING, DONE, _setup
    from arbitrage.launch.backend import JobState, JobStatus
    from arbitrage.launch.fake import FakeBackend
    from conftest import load_facts
    backend = FakeBackend(no_capacity={{"a"}}, scripts=[[RUNNING, JobStatus(JobState.PREEMPTED)], [RUNNING, DONE]])
    spec, ledger, run_id, runner, clock = _setup(Path({tmp!r}), load_facts(), backend)
    print(run_id, flush=True)
    runner.supervise(run_id, spec)
""")


@pytest.mark.parametrize("crash_after", ["launch-failed", "failed-over", "launched", "preempted", "torn-down",
                                         "resumed", "finished"])
def test_a_killed_supervisor_leaves_the_ledger_consistent(tmp_path, crash_after):
    script = CRASH_SCRIPT.format(tests=str(ROOT / "tests"), tmp=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          env={**__import__("os").environ, "GPUARB_CRASH_AFTER": crash_after}, timeout=60)
    assert proc.returncode == 70, proc.stderr  # died right after committing that event
    run_id = proc.stdout.split()[0]
    with L.Ledger.open(tmp_path / "ledger.sqlite3") as ledger:
        assert ledger.check() == []
        kinds = [e.kind for e in ledger.events(run_id)]
        assert kinds[-1] == crash_after
        run = ledger.run(run_id)
        # the state matches the last event: nothing half-written
        expected = {"launch-failed": RunState.LAUNCHING, "failed-over": RunState.LAUNCHING,
                    "launched": RunState.RUNNING, "preempted": RunState.RECOVERING, "resumed": RunState.RUNNING,
                    "finished": RunState.SUCCEEDED}
        if crash_after in expected:
            assert run.state == expected[crash_after]
        open_attempts = [a for a in ledger.attempts(run_id) if a.ended_at is None]
        assert len(open_attempts) <= 1


# -- run states and event kinds ----------------------------------------------------------------------------------

def test_states_and_kinds_are_the_strings_the_ledger_has_always_stored():
    assert [s.value for s in RunState] == ["planned", "launching", "running", "recovering", "succeeded", "failed",
                                           "no-capacity", "budget-stopped", "cancelled", "interrupted"]
    assert [k.value for k in EventKind] == ["planned", "launched", "launch-failed", "failed-over", "preempted",
                                            "resumed", "budget-stopped", "finished", "failed", "cancelled",
                                            "torn-down", "interrupted", "note"]
    # they print, format, compare and serialize as their values (CLI output and JSON are unchanged)
    assert str(RunState.NO_CAPACITY) == f"{RunState.NO_CAPACITY}" == format(RunState.NO_CAPACITY) == "no-capacity"
    assert f"{EventKind.TORN_DOWN:>10}" == " torn-down"
    assert RunState.SUCCEEDED == "succeeded" and {"succeeded": 1}[RunState.SUCCEEDED] == 1
    assert __import__("json").dumps({"state": RunState.BUDGET_STOPPED}) == '{"state": "budget-stopped"}'


def test_terminal_states():
    assert {s for s in RunState if s.terminal} == TERMINAL == {
        RunState.SUCCEEDED, RunState.FAILED, RunState.NO_CAPACITY, RunState.BUDGET_STOPPED, RunState.CANCELLED,
        RunState.INTERRUPTED}
    assert not any(s.terminal for s in (RunState.PLANNED, RunState.LAUNCHING, RunState.RUNNING,
                                        RunState.RECOVERING))


def test_rows_come_back_as_enums_and_are_stored_as_plain_strings(database_url):
    with L.Ledger.open(database_url) as ledger:
        run_id = _new_run(ledger)
        n = ledger.start_attempt(run_id, 0, lambda k: f"gpuarb-x-a{k}", NOW)
        ledger.end_attempt(run_id, n, "no-capacity", NOW, "none", kind=EventKind.LAUNCH_FAILED,
                           run_state=RunState.NO_CAPACITY)
        run = ledger.run(run_id)
        assert run.state is RunState.NO_CAPACITY and run.terminal and run.ended_at == NOW
        assert [e.kind for e in ledger.events(run_id)] == [EventKind.PLANNED, EventKind.LAUNCH_FAILED]
        assert all(type(e.kind) is EventKind for e in ledger.events(run_id))
        assert sql(ledger, "SELECT state FROM runs") == [("no-capacity",)]
        assert sql(ledger, "SELECT kind FROM events ORDER BY id") == [("planned",), ("launch-failed",)]
        assert [type(v) for v in sql(ledger, "SELECT state, kind FROM runs, events")[0]] == [str, str]
        assert [r.id for r in ledger.runs(states=frozenset({RunState.NO_CAPACITY}))] == [run_id]
        assert ledger.runs(states=frozenset({RunState.RUNNING})) == []


def test_an_unknown_stored_state_is_reported_not_guessed(database_url):
    with L.Ledger.open(database_url) as ledger:
        run_id = _new_run(ledger)
        sql(ledger, "UPDATE runs SET state='exploded' WHERE id=:id", id=run_id)
        assert ledger.check() == [f"run {run_id}: unknown state 'exploded'"]
        with pytest.raises(L.LedgerError, match="unknown RunState 'exploded'"):
            ledger.run(run_id)
        with pytest.raises(ValueError):
            ledger.record(run_id, "exploded", NOW)  # type: ignore[arg-type]

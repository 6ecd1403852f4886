"""`gpuarb run/status/logs/down/history/reap` as a user runs them; the backend is scripted (no clouds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT
from test_runner import DONE, RUNNING
from typer.testing import CliRunner

from arbitrage import app as usecases
from arbitrage import ledger as L
from arbitrage.cli import app
from arbitrage.launch.backend import ClusterInfo, JobState, JobStatus
from arbitrage.launch.fake import FakeBackend as ScriptedBackend
from arbitrage.runstate import RunState

SPEC = str(ROOT / "jobspecs" / "llama3-8b-finetune.yaml")
cli = CliRunner()


@pytest.fixture()
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture()
def backend(monkeypatch, data_dir) -> ScriptedBackend:
    scripted = ScriptedBackend(scripts=[[RUNNING, DONE]] * 5)
    monkeypatch.setattr(usecases, "make_backend", lambda name, ray_address=None, check=True: scripted)
    return scripted


def invoke(*args: str):
    return cli.invoke(app, list(args))


def test_run_launches_the_plans_best_placement_and_records_it(backend, data_dir):
    result = invoke("run", SPEC, "--poll-seconds", "0.05", "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["state"] == "succeeded" and summary["attempts"] == 1 and summary["currency"] == "USD"
    plan = json.loads(invoke("plan", SPEC, "--format", "json", "--top", "1").stdout)
    best = plan["placements"][0]
    launched = backend.launched[0].placement
    assert (launched.offer.provider, launched.offer.instance_type, launched.spot) == (
        best["provider"], best["instance_type"], best["spot"])
    with L.Ledger.open(data_dir / "ledger.sqlite3") as ledger:
        run = ledger.run(summary["run_id"])
        assert run.tags == {"team": "research", "model": "llama3-8b", "version": "v2"}
        assert run.spec_text.startswith("# 8xH100")


def test_run_exit_codes_follow_the_outcome(backend, data_dir):
    backend.scripts = [[JobStatus(JobState.FAILED, message="exit code 1")]]
    result = invoke("run", SPEC, "--poll-seconds", "0.05")
    assert result.exit_code == 5 and "exit code 1" in result.output


def test_no_capacity_on_every_tried_placement_exits_3(backend, data_dir, monkeypatch):
    class NoCapacity(ScriptedBackend):
        def launch(self, req):
            from arbitrage.launch.backend import CapacityError

            raise CapacityError(f"{req.placement.offer.instance_type}: out of capacity")

    monkeypatch.setattr(usecases, "make_backend", lambda name, ray_address=None, check=True: NoCapacity())
    result = invoke("run", SPEC, "--max-failovers", "2", "--poll-seconds", "0.05")
    assert result.exit_code == 3
    assert "no capacity on any of 3 placements" in result.output


def test_dry_run_prints_the_task_and_records_nothing(backend, data_dir):
    result = invoke("run", SPEC, "--dry-run")
    assert result.exit_code == 0
    assert "nothing launched (--dry-run)" in result.stdout and "gpuarb-dry-run-a1" in result.stdout
    assert backend.launched == []
    assert invoke("history", "--format", "json").stdout.strip() == "[]"


def test_over_budget_plan_launches_nothing(backend, data_dir, tmp_path):
    spec = Path(SPEC).read_text().replace("max_total_usd: 5000", "max_total_usd: 10")
    path = tmp_path / "tight.yaml"
    path.write_text(spec)
    result = invoke("run", str(path))
    assert result.exit_code == 4 and "over budget" in result.output
    assert backend.launched == []


def test_status_history_and_down(backend, data_dir):
    first = json.loads(invoke("run", SPEC, "--poll-seconds", "0.05", "--format", "json").stdout)["run_id"]
    status = json.loads(invoke("status", first, "--format", "json").stdout)
    assert [e["kind"] for e in status["events"]] == ["planned", "launched", "finished", "torn-down"]
    assert status["placements"][0]["source"] == "snapshot"
    table = invoke("status")
    assert table.exit_code == 0 and first[:15] in table.stdout
    assert json.loads(invoke("history", "--tag", "team=research", "--format", "json").stdout)[0]["run_id"] == first
    assert json.loads(invoke("history", "--tag", "team=nobody", "--format", "json").stdout) == []
    assert invoke("history", "--tag", "team").exit_code == 2
    assert invoke("history", "--since", "yesterday").exit_code == 2
    assert invoke("status", "no-such-run").exit_code == 1
    down = invoke("down", first)
    assert down.exit_code == 0 and "torn down" in down.stdout


def test_logs_stream_from_the_backend(backend, data_dir):
    run_id = json.loads(invoke("run", SPEC, "--poll-seconds", "0.05", "--format", "json").stdout)["run_id"]
    result = invoke("logs", run_id)
    assert result.exit_code == 0 and "log line" in result.stdout


def test_reap_tears_down_only_zombies(backend, data_dir, monkeypatch):
    run_id = json.loads(invoke("run", SPEC, "--poll-seconds", "0.05", "--format", "json").stdout)["run_id"]
    finished_cluster = f"gpuarb-{run_id}-a1"
    clusters = [ClusterInfo(name=finished_cluster, backend="skypilot", status="UP"),
                ClusterInfo(name="gpuarb-unknown-a1", backend="skypilot", status="UP")]
    backend.clusters = lambda: clusters  # type: ignore[method-assign]
    backend.torn_down.clear()
    listed = invoke("reap", "--dry-run", "--backend", "skypilot")
    assert listed.exit_code == 0 and "no run in the ledger" in listed.stdout and f"run {run_id} is succeeded" in \
        listed.stdout
    assert backend.torn_down == []
    assert invoke("reap", "--yes", "--backend", "skypilot").exit_code == 0
    assert sorted(backend.torn_down) == sorted(c.name for c in clusters)


def test_zombie_rules():
    from datetime import datetime, timezone

    from arbitrage.ledger import AttemptRow, RunRow

    now = datetime(2026, 11, 23, tzinfo=timezone.utc)
    run = RunRow(id="r", name="n", spec_path="p", spec_text="", backend="skypilot", state=RunState.RUNNING,
                 created_at=now, updated_at=now, ended_at=None, currency="USD", budget_total_usd=None,
                 budget_hourly_usd=None, expected_total_usd=None, expected_hours=None, egress_in_usd=0,
                 egress_out_usd=0, supervisor_pid=__import__("os").getpid(),
                 supervisor_host=__import__("socket").gethostname(), message="", tags={})
    attempt = AttemptRow(run_id="r", n=1, rank=0, cluster_name="c", handle=None, started_at=now, running_at=now,
                         ended_at=None, outcome=None, message="", restarts=0)
    busy = ClusterInfo(name="c", backend="skypilot", status="UP", idle_minutes=5)
    assert usecases._zombie_reason(busy, (run, attempt), 60) is None
    idle = ClusterInfo(name="c", backend="skypilot", status="UP", idle_minutes=90)
    assert "idle for 90 min" in usecases._zombie_reason(idle, (run, attempt), 60)
    orphan = RunRow(**{**run.__dict__, "supervisor_pid": 2**22 + 12345})
    assert "no live supervisor" in usecases._zombie_reason(busy, (orphan, attempt), 60)


def test_down_stops_a_running_run_once_and_says_so_in_json(backend, data_dir):
    from datetime import datetime, timezone

    from test_runner import PLACEMENT_ROW

    with L.Ledger.open(data_dir / "ledger.sqlite3") as ledger:
        now = datetime.now(timezone.utc)
        run_id = ledger.create_run(name="j", spec_path="/j.yaml", spec_text="", backend="skypilot", now=now,
                                   placements=[PLACEMENT_ROW], tags={}, budget_total_usd=None,
                                   budget_hourly_usd=None)
        n = ledger.start_attempt(run_id, 0, lambda k: f"gpuarb-{run_id}-a{k}", now)
        ledger.attempt_launched(run_id, n, {"backend": "skypilot", "cluster_name": f"gpuarb-{run_id}-a1"}, now,
                                "up")
    result = invoke("down", run_id, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"run_id": run_id, "state": "cancelled", "torn_down": f"gpuarb-{run_id}-a1"}
    assert backend.cancelled == backend.torn_down == [f"gpuarb-{run_id}-a1"]
    with L.Ledger.open(data_dir / "ledger.sqlite3") as ledger:
        kinds = [e.kind for e in ledger.events(run_id)]
        assert kinds == ["planned", "launched", "cancelled", "torn-down"] and ledger.check() == []

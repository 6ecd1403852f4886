"""Runs survive bad input and bad luck: `_supervise` never re-runs a finished run, a launch that fails before the
backend starts fails the run with its reason, supervisors are alive only while their heartbeat is, Ray heads die
with their supervisor, secrets stay out of the ledger, and what gpuarb writes is private to the user.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import NOW, ROOT, make_offer, make_spec
from typer.testing import CliRunner

from arbitrage import app as usecases
from arbitrage import ledger as L
from arbitrage.cli import app
from arbitrage.costmodel import Placement, estimate
from arbitrage.jobspec import Checkpoint
from arbitrage.launch.backend import JobState, JobStatus
from arbitrage.launch.fake import FakeBackend
from arbitrage.launch.runner import Runner, RunOptions, placement_row
from arbitrage.runstate import RunState

SPEC = str(ROOT / "jobspecs" / "llama3-8b-finetune.yaml")
RUNNING = JobStatus(JobState.RUNNING)
DONE = JobStatus(JobState.SUCCEEDED, message="exit 0")
cli = CliRunner()


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path))
    return tmp_path


def _use(monkeypatch, backend: FakeBackend) -> FakeBackend:
    monkeypatch.setattr(usecases, "make_backend", lambda name, ray_address=None, check=True: backend)
    return backend


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- _supervise ------------------------------------------------------------------------------------------------

def test_supervise_refuses_a_finished_run_and_changes_nothing(monkeypatch, data_dir: Path) -> None:
    backend = _use(monkeypatch, FakeBackend(scripts=[[RUNNING, DONE]] * 3))
    run_id = json.loads(cli.invoke(app, ["run", SPEC, "--poll-seconds", "0.05", "--format", "json"]).stdout)["run_id"]
    assert len(backend.launched) == 1
    with L.Ledger.open(data_dir / "ledger.sqlite3") as ledger:
        before = [e.kind for e in ledger.events(run_id)]
    result = cli.invoke(app, ["_supervise", run_id, "--poll-seconds", "0.05"])
    assert result.exit_code == 2 and "has ended (succeeded)" in result.output, result.output
    assert len(backend.launched) == 1
    with L.Ledger.open(data_dir / "ledger.sqlite3") as ledger:
        assert ledger.run(run_id).state == RunState.SUCCEEDED
        assert [e.kind for e in ledger.events(run_id)] == before


def test_supervise_refuses_a_run_another_live_supervisor_watches(monkeypatch, data_dir: Path) -> None:
    backend = _use(monkeypatch, FakeBackend(scripts=[[RUNNING, DONE]]))
    with L.Ledger.open(data_dir / "ledger.sqlite3") as ledger:
        run_id = ledger.create_run(name="j", spec_path=SPEC, spec_text=Path(SPEC).read_text(), backend="skypilot",
                                   now=datetime.now(timezone.utc), placements=[_row()], tags={},
                                   budget_total_usd=None, budget_hourly_usd=None, supervisor_pid=1,
                                   supervisor_host=socket.gethostname())
        ledger.heartbeat(run_id, 1, datetime.now(timezone.utc))
    result = cli.invoke(app, ["_supervise", run_id])
    assert result.exit_code == 2 and "already supervised by pid 1" in result.output, result.output
    assert backend.launched == []


def _row() -> dict:
    spec = make_spec(checkpoint=Checkpoint("s3://b/ck", 10.0))
    from conftest import load_facts

    return placement_row(estimate(spec, Placement(make_offer(instance_type="a"), 1, spot=False), load_facts()))


# -- a launch that fails before the backend starts -------------------------------------------------------------

class _ReadOnly(FakeBackend):
    """A backend whose state folder is on a read-only file system."""

    def launch(self, req):  # type: ignore[no-untyped-def]
        raise OSError(errno.EROFS, "Read-only file system", "/data/gpuarb/ray")


@pytest.mark.parametrize("how", ["backend-state", "checkpoint-folder"])
def test_a_launch_failing_before_the_backend_starts_fails_the_run_with_its_reason(how: str, tmp_path: Path,
                                                                                 facts) -> None:
    backend = _ReadOnly() if how == "backend-state" else FakeBackend(local_checkpoints=True, pins_placement=False)
    root = tmp_path / "ck"
    if how == "checkpoint-folder":
        root.write_text("a file where the checkpoint folder should be")
    ledger = L.Ledger.open(tmp_path / "ledger.sqlite3")
    run_id = ledger.create_run(name="t", spec_path="job.yaml", spec_text="name: t", backend=backend.name, now=NOW,
                               placements=[_row()], tags={}, budget_total_usd=None, budget_hourly_usd=None)
    clock = [NOW]
    runner = Runner(backend, ledger, clock=lambda: clock[0], sleep=lambda s: None,
                    options=RunOptions(poll_seconds=1.0, checkpoint_root=root), say=lambda m: None)
    assert runner.supervise(run_id, make_spec(checkpoint=Checkpoint("s3://b/ck", 10.0))) == RunState.FAILED
    run = ledger.run(run_id)
    [attempt] = ledger.attempts(run_id)
    assert run.state == RunState.FAILED and attempt.ended_at is not None and attempt.outcome == "launch-error"
    assert "before the job started" in attempt.message and ("Read-only" in attempt.message or "ck" in attempt.message)
    assert ledger.spent_usd(run_id, NOW + timedelta(days=30)) == 0.0  # spend does not grow forever
    assert ledger.check(NOW + timedelta(days=1)) == []


# -- liveness by heartbeat -------------------------------------------------------------------------------------

def test_a_killed_supervisor_is_dead_by_its_heartbeat_even_as_an_unreaped_zombie(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    path = tmp_path / "ledger.sqlite3"
    with L.Ledger.open(path) as ledger:
        run_id = ledger.create_run(name="j", spec_path="/j.yaml", spec_text="name: j", backend="skypilot", now=NOW,
                                   placements=[_row()], tags={}, budget_total_usd=None, budget_hourly_usd=None)
    code = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from arbitrage.ledger import Ledger
        from arbitrage.launch.runner import Heartbeat
        with Ledger.open(Path({str(path)!r})) as ledger:
            ledger.set_supervisor({run_id!r}, os.getpid(), "here")
        with Heartbeat(Path({str(path)!r}), {run_id!r}, 0.1):
            print("beating", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "beating"
        time.sleep(0.4)
        with L.Ledger.open(path) as ledger:
            run = ledger.run(run_id)
            assert run.heartbeat_at is not None and usecases.supervisor_alive(run) is True
            first = run.heartbeat_at
        time.sleep(1.2)
        with L.Ledger.open(path) as ledger:
            assert ledger.run(run_id).heartbeat_at > first  # still beating
        os.kill(proc.pid, signal.SIGKILL)  # not waited for: a zombie whose pid still answers kill(pid, 0)
        time.sleep(0.5)
        monkeypatch.setattr(L, "HEARTBEAT_STALE_SECONDS", 1.0)
        time.sleep(1.2)
        with L.Ledger.open(path) as ledger:
            run = ledger.run(run_id)
            assert usecases.supervisor_alive(run) is False
            assert usecases.state_label(run).endswith("(unsupervised)")
    finally:
        proc.kill()
        proc.wait()


def test_the_heartbeat_goes_on_while_a_launch_blocks(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    seen: list[datetime | None] = []

    class Slow(FakeBackend):
        def launch(self, req):  # type: ignore[no-untyped-def]
            with L.Ledger.open(path) as other:
                seen.append(other.run(req.run_id).heartbeat_at)
                time.sleep(1.5)  # the ledger keeps whole seconds
                seen.append(other.run(req.run_id).heartbeat_at)
            return super().launch(req)

    ledger = L.Ledger.open(path)
    run_id = ledger.create_run(name="t", spec_path="job.yaml", spec_text="name: t", backend="skypilot", now=NOW,
                               placements=[_row()], tags={}, budget_total_usd=None, budget_hourly_usd=None,
                               supervisor_pid=os.getpid(), supervisor_host=socket.gethostname())
    runner = Runner(Slow(scripts=[[DONE]]), ledger, clock=lambda: NOW, sleep=lambda s: None,
                    options=RunOptions(poll_seconds=1.0, heartbeat_seconds=0.1), say=lambda m: None)
    assert runner.supervise(run_id, make_spec(checkpoint=Checkpoint("s3://b/ck", 10.0))) == RunState.SUCCEEDED
    assert seen[0] is not None and seen[1] is not None and seen[1] > seen[0]


def test_ledger_check_reports_a_live_run_nobody_watches(tmp_path: Path) -> None:
    with L.Ledger.open(tmp_path / "l.db") as ledger:
        run_id = ledger.create_run(name="t", spec_path="job.yaml", spec_text="name: t", backend="skypilot", now=NOW,
                                   placements=[_row()], tags={}, budget_total_usd=None, budget_hourly_usd=None,
                                   supervisor_pid=12345, supervisor_host="h")
        ledger.start_attempt(run_id, 0, lambda k: f"gpuarb-{run_id}-a{k}", NOW)
        ledger.heartbeat(run_id, 12345, NOW)
        assert ledger.check(NOW + timedelta(seconds=10)) == []
        [problem] = ledger.check(NOW + timedelta(minutes=5))
        assert run_id in problem and "no supervisor heartbeat since" in problem


# -- Ray heads die with their supervisor -----------------------------------------------------------------------

def test_a_child_started_with_die_with_parent_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import os, subprocess, sys, time
        from arbitrage.launch.ray.heads import die_with_parent
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True,
                                 preexec_fn=die_with_parent(os.getpid()))
        print(child.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=ROOT, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{child}/stat") as fh:  # reparented to init, which reaps it; a zombie counts as gone
            if fh.read().split(") ")[1].startswith("Z"):
                break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child outlived its killed parent")


def test_heads_start_ray_with_die_with_parent_in_a_private_temp_dir(tmp_path: Path, monkeypatch) -> None:
    from arbitrage.launch.ray import heads
    from arbitrage.launch.ray.state import StateStore

    seen: dict = {}

    def fake_popen(cmd, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(kwargs, cmd=cmd)
        raise OSError("stop here")

    monkeypatch.setattr(heads.subprocess, "Popen", fake_popen)
    store = StateStore(tmp_path / "ray", lambda: NOW)
    with pytest.raises(OSError, match="stop here"):
        heads.LocalHeads(store, num_cpus=1, start_timeout_s=1, stop_grace_s=1).start("gpuarb-x-a1")
    assert callable(seen["preexec_fn"]) and seen["start_new_session"] is True
    temp = Path(next(a for a in seen["cmd"] if a.startswith("--temp-dir=")).split("=", 1)[1])
    assert _mode(temp) == 0o700 and _mode(tmp_path / "ray") == 0o700 and _mode(tmp_path / "ray" / "logs") == 0o700
    log = tmp_path / "ray" / "logs" / "gpuarb-x-a1.head.log"
    assert _mode(log) == 0o600


def test_ray_state_files_are_private(tmp_path: Path) -> None:
    from arbitrage.launch.ray.state import StateStore, read_json

    store = StateStore(tmp_path / "ray", lambda: NOW)
    store.write("gpuarb-x-a1", {"name": "gpuarb-x-a1", "mode": "head"})
    assert _mode(store.path("gpuarb-x-a1")) == 0o600 and _mode(tmp_path / "ray") == 0o700
    store.path("gpuarb-x-a1").write_text("[1, 2")  # corrupt: read as nothing, never a crash
    assert read_json(store.path("gpuarb-x-a1")) is None


# -- secrets and permissions -----------------------------------------------------------------------------------

SECRET_SPEC = textwrap.dedent("""\
    name: secret-job
    resources:
      accelerators: {H100: 8}
    envs:
      WANDB_API_KEY: 0123456789abcdef0123456789abcdef
      LEARNING_RATE: 1e-4
      MODEL: meta-llama/Meta-Llama-3-8B
      ANTHROPIC_KEYLESS: sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123
    secrets:
      HF_TOKEN: hf_abcdefghijklmnopqrstuvwxyzABCDEF
      FROM_ENV: null
    run: python train.py
    arbitrage:
      work: {gpu_hours: 64}
    """)
SECRET_VALUES = ("0123456789abcdef0123456789abcdef", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123",
                 "hf_abcdefghijklmnopqrstuvwxyzABCDEF")


def test_secrets_and_key_like_envs_are_redacted_in_the_ledger(monkeypatch, data_dir: Path, tmp_path: Path) -> None:
    backend = _use(monkeypatch, FakeBackend(scripts=[[RUNNING, DONE]]))
    spec = tmp_path / "secret.yaml"
    spec.write_text(SECRET_SPEC)
    result = cli.invoke(app, ["run", str(spec), "--poll-seconds", "0.05", "--format", "json"])
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    launched = backend.launched[0].spec.task
    assert launched["secrets"]["HF_TOKEN"] == SECRET_VALUES[2]  # the job still gets its secrets
    with L.Ledger.open(data_dir / "ledger.sqlite3") as ledger:
        stored = ledger.run(run_id).spec_text
    assert not any(v in stored for v in SECRET_VALUES)
    assert "LEARNING_RATE: 1e-4" in stored and "MODEL: meta-llama/Meta-Llama-3-8B" in stored
    assert "FROM_ENV: null" in stored and stored.count("'<redacted>'") == 3
    raw = (data_dir / "ledger.sqlite3").read_bytes()
    assert not any(v.encode() in raw for v in SECRET_VALUES)


def test_a_detached_supervisor_gets_the_secrets_it_needs_and_only_the_real_file(monkeypatch, data_dir: Path,
                                                                              tmp_path: Path, facts) -> None:
    from arbitrage.errors import UsageError
    from arbitrage.specfile import redact_secrets

    backend = _use(monkeypatch, FakeBackend(scripts=[[RUNNING, DONE]]))
    spec = tmp_path / "secret.yaml"
    spec.write_text(SECRET_SPEC)
    with L.Ledger.open(data_dir / "ledger.sqlite3") as ledger:
        run_id = ledger.create_run(name="s", spec_path=str(spec), spec_text=redact_secrets(SECRET_SPEC),
                                   backend="skypilot", now=datetime.now(timezone.utc), placements=[_row()], tags={},
                                   budget_total_usd=None, budget_hourly_usd=None)
    options = usecases.run_options(poll_seconds=0.05)
    with pytest.raises(UsageError, match="not the one the run was submitted with"):
        usecases.resume_supervision(run_id, facts, backend="skypilot", ray_address=None, options=options,
                                    spec_text=SECRET_SPEC.replace("train.py", "other.py"))
    state = usecases.resume_supervision(run_id, facts, backend="skypilot", ray_address=None, options=options,
                                        spec_text=SECRET_SPEC)
    assert state == RunState.SUCCEEDED and backend.launched[0].spec.task["secrets"]["HF_TOKEN"] == SECRET_VALUES[2]


def test_what_gpuarb_writes_is_private(monkeypatch, tmp_path: Path) -> None:
    data = tmp_path / "share" / "gpuarb"
    monkeypatch.setenv("GPUARB_DATA_DIR", str(data))
    backend = _use(monkeypatch, FakeBackend(scripts=[[RUNNING, DONE]]))
    assert cli.invoke(app, ["run", SPEC, "--poll-seconds", "0.05"]).exit_code == 0 and backend.launched
    assert _mode(data) == 0o700
    for name in ("ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm"):
        if (data / name).exists():
            assert _mode(data / name) == 0o600, name
    # An existing gpuarb folder with open permissions is tightened; a folder the user named is left as it is.
    data.chmod(0o755)
    (data / "ledger.sqlite3").chmod(0o644)  # as an older gpuarb left it
    L.Ledger.open(data / "ledger.sqlite3").close()
    assert _mode(data) == 0o700 and _mode(data / "ledger.sqlite3") == 0o600
    shared = tmp_path / "work"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    L.Ledger.open(shared / "ledger.sqlite3").close()
    assert _mode(shared) == 0o755 and _mode(shared / "ledger.sqlite3") == 0o600


def test_detached_run_logs_and_cache_files_are_private(tmp_path: Path, monkeypatch) -> None:
    from arbitrage import paths
    from providers import cache

    log = tmp_path / "runs" / "r.log"
    paths.private_dir(log.parent, own=True)
    with paths.open_private(log, "ab") as fh:
        fh.write(b"x")
    assert _mode(log) == 0o600 and _mode(log.parent) == 0o700
    cache_dir = tmp_path / "cache" / "gpuarb"
    cache.write_offers(cache_dir, "lambda", [make_offer(provider="lambda")], NOW)
    cache.record_failure(cache_dir, "lambda", NOW, "down")
    assert _mode(cache_dir) == 0o700
    assert all(_mode(p) == 0o600 for p in cache_dir.iterdir())

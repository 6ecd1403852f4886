"""The local Ray backend: status mapping and job assembly (pure), then end to end on a real Ray head.

The end-to-end tests start one Ray head for the module in a temp dir, run examples/train.py through RayBackend,
SIGKILL it mid-run, resume it as attempt 2, and check from its step log that only the steps after the checkpoint
it resumed from were done twice. They skip when Ray (with its Jobs API) or torch is not installed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from arbitrage.costmodel import Placement
from arbitrage.errors import GpuarbError
from arbitrage.launch.backend import (
    Backend,
    BackendUnavailable,
    CheckpointPlan,
    Handle,
    JobState,
    LaunchError,
    LaunchRequest,
)
from arbitrage.launch.ray import client as jobs_api
from arbitrage.launch.ray import heads
from arbitrage.launch.ray.backend import RayBackend
from arbitrage.launch.ray.jobs import entrypoint, job_env, job_workdir, submission_id
from arbitrage.launch.ray.status import classify, exit_signal
from arbitrage.specfile import read_jobspec
from tests.conftest import ROOT, make_offer

HAS_RAY = importlib.util.find_spec("ray") is not None and importlib.util.find_spec("aiohttp") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="needs ray[default] (pip install 'ray[default]')")
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs torch (the example training script)")


def write_spec(path: Path, run: str, *, workdir: str | None = None, extra: str = "") -> Path:
    """A minimal valid job spec running ``run``; returns its path."""
    lines = ["name: t", "resources: {accelerators: 'H100:1'}", f"run: {json.dumps(run)}"]
    if workdir is not None:
        lines.append(f"workdir: {json.dumps(workdir)}")
    lines += [extra, "arbitrage:", "  work: {hours: 0.1}"]
    path.write_text("\n".join(line for line in lines if line) + "\n")
    return path


def make_request(spec_path: Path, facts: Any, *, run_id: str, attempt: int = 1, cluster: str = "gpuarb-t",
                 ckpt: Path | None = None, resume: bool = False, envs: dict[str, str] | None = None) -> LaunchRequest:
    spec = read_jobspec(str(spec_path), facts)
    plan = CheckpointPlan(uri=ckpt.as_uri(), mount_path=str(ckpt), interval_minutes=10.0) if ckpt else None
    return LaunchRequest(run_id=run_id, attempt=attempt, cluster_name=cluster, spec=spec,
                         placement=Placement(make_offer(gpus_per_node=1), 1, spot=False), checkpoint=plan,
                         envs=envs or {}, resume=resume)


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.3) -> Any:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def wait_state(backend: RayBackend, handle: Handle, states: set[JobState], timeout: float) -> Any:
    last: list[Any] = []

    def reached() -> Any:
        status = backend.status(handle)
        last[:] = [status]
        return status if status.state in states else None

    deadline = time.monotonic() + timeout
    while True:
        found = reached()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"job {handle.job_id} never reached {sorted(s.value for s in states)}; last {last}")
        time.sleep(0.3)


# ---------------------------------------------------------------------------------------------
# Pure: how Ray's job states map to JobState.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("ray_status", "exit_code", "error_type", "cancelled", "expected"), [
    ("PENDING", None, None, False, JobState.PENDING),
    ("RUNNING", None, None, False, JobState.RUNNING),
    ("SUCCEEDED", 0, None, False, JobState.SUCCEEDED),
    ("FAILED", 3, "JOB_ENTRYPOINT_COMMAND_ERROR", False, JobState.FAILED),  # the job's own exit code
    ("FAILED", 1, "JOB_ENTRYPOINT_COMMAND_ERROR", True, JobState.FAILED),  # failed on its own during a cancel
    ("FAILED", -9, "JOB_ENTRYPOINT_COMMAND_ERROR", False, JobState.PREEMPTED),  # the driver itself SIGKILLed
    ("FAILED", 137, "JOB_ENTRYPOINT_COMMAND_ERROR", False, JobState.PREEMPTED),  # its shell: child SIGKILLed
    ("FAILED", 143, "JOB_ENTRYPOINT_COMMAND_ERROR", False, JobState.PREEMPTED),  # graceful: checkpointed on TERM
    ("FAILED", -15, "JOB_ENTRYPOINT_COMMAND_ERROR", False, JobState.PREEMPTED),
    ("FAILED", 139, "JOB_ENTRYPOINT_COMMAND_ERROR", False, JobState.FAILED),  # SIGSEGV: the job crashed
    ("FAILED", -6, "JOB_ENTRYPOINT_COMMAND_ERROR", False, JobState.FAILED),  # SIGABRT
    ("FAILED", -9, "JOB_ENTRYPOINT_COMMAND_ERROR", True, JobState.CANCELLED),  # killed after gpuarb's stop
    ("FAILED", None, "JOB_SUPERVISOR_ACTOR_DIED", False, JobState.PREEMPTED),  # its worker/node went away
    ("FAILED", None, "RUNTIME_ENV_SETUP_FAILURE", False, JobState.FAILED),
    ("STOPPED", None, None, False, JobState.PREEMPTED),  # `ray job stop` by someone else
    ("STOPPED", None, None, True, JobState.CANCELLED),  # gpuarb's own cancel
])
def test_classify_tells_preemption_from_failure_and_cancel(ray_status: str, exit_code: int | None,
                                                            error_type: str | None, cancelled: bool,
                                                            expected: JobState) -> None:
    status = classify(ray_status, driver_exit_code=exit_code, error_type=error_type, cancel_requested=cancelled,
                      message="Job entrypoint command failed with exit code 3, last available logs:\nboom")
    assert status.state is expected
    assert "\n" not in status.message


def test_classify_names_the_signal_and_keeps_the_first_message_line() -> None:
    assert classify("FAILED", driver_exit_code=-9).message == "killed by SIGKILL (exit code -9)"
    failed = classify("FAILED", driver_exit_code=3, message="\nJob entrypoint command failed with exit code 3\nx")
    assert failed.message == "Job entrypoint command failed with exit code 3"


@pytest.mark.parametrize(("code", "sig"), [(None, None), (0, None), (3, None), (128, None), (-9, 9), (137, 9),
                                           (143, 15), (255, None)])
def test_exit_signal(code: int | None, sig: int | None) -> None:
    assert exit_signal(code) == sig


# ---------------------------------------------------------------------------------------------
# Pure: what gets submitted.
# ---------------------------------------------------------------------------------------------

def test_entrypoint_runs_setup_then_execs_run_in_the_workdir() -> None:
    task = {"setup": "pip install x\necho 'set up'", "run": "python train.py --out \"a b\""}
    command = entrypoint(task, Path("/work dir"), "job.yaml")
    assert command == ("cd '/work dir' && bash -c 'pip install x\necho '\"'\"'set up'\"'\"'' && "
                       "exec bash -c 'python train.py --out \"a b\"'")
    out = subprocess.run(["sh", "-c", entrypoint({"setup": "echo one", "run": "echo two; exit 4"}, None, "j")],
                         capture_output=True, text=True)
    assert (out.stdout, out.returncode) == ("one\ntwo\n", 4)
    failed_setup = subprocess.run(["sh", "-c", entrypoint({"setup": "exit 5", "run": "echo never"}, None, "j")],
                                  capture_output=True, text=True)
    assert (failed_setup.stdout, failed_setup.returncode) == ("", 5)


def test_entrypoint_without_run_is_a_launch_error() -> None:
    with pytest.raises(LaunchError, match=r"job.yaml: run: the job has no run command"):
        entrypoint({"setup": "echo"}, None, "job.yaml")


def test_workdir_resolves_against_the_spec_file(tmp_path: Path, facts: Any) -> None:
    (tmp_path / "jobs").mkdir()
    spec = write_spec(tmp_path / "jobs" / "a.yaml", "true", workdir="..")
    assert job_workdir({"workdir": ".."}, str(spec)) == tmp_path
    assert job_workdir({}, str(spec)) == tmp_path / "jobs"
    with pytest.raises(LaunchError, match="workdir"):
        job_workdir({"workdir": {"url": "https://github.com/x/y"}}, str(spec))


def test_job_env_merges_spec_envs_and_gpuarb_variables(tmp_path: Path, facts: Any) -> None:
    extra = "envs: {LR: 0.1, GPUARB_ATTEMPT: 'x'}\nsecrets: {TOKEN: s3cret}"
    spec = write_spec(tmp_path / "a.yaml", "true", extra=extra)
    req = make_request(spec, facts, run_id="r1", attempt=2, resume=True, envs={"EXTRA": "1"})
    req = dataclasses.replace(req, checkpoint=CheckpointPlan(uri="rel/ckpt", mount_path="rel/ckpt",
                                                             interval_minutes=10.0))
    env = job_env(req)
    assert env == {"LR": "0.1", "TOKEN": "s3cret", "GPUARB_ATTEMPT": "2", "GPUARB_RUN_ID": "r1",
                   "GPUARB_RESUME": "1", "GPUARB_CHECKPOINT_DIR": str(tmp_path / "rel" / "ckpt"),
                   "GPUARB_CHECKPOINT_INTERVAL_SECONDS": "600", "EXTRA": "1",
                   "GPUARB_METRICS": str(tmp_path / "rel" / "ckpt" / "gpuarb-metrics.jsonl")}


def test_job_env_requires_a_value_for_every_declared_env(tmp_path: Path, facts: Any) -> None:
    spec = write_spec(tmp_path / "a.yaml", "true", extra="envs: {HF_TOKEN: null}")
    with pytest.raises(LaunchError, match=r"a.yaml: envs.HF_TOKEN: no value"):
        job_env(make_request(spec, facts, run_id="r"))
    assert job_env(make_request(spec, facts, run_id="r", envs={"HF_TOKEN": "t"}))["HF_TOKEN"] == "t"


def test_submission_id_counts_up_past_ids_the_cluster_already_has() -> None:
    taken = {"gpuarb-x-attempt1", "gpuarb-x-attempt1-2"}
    assert submission_id("gpuarb-x", 1, taken.__contains__) == "gpuarb-x-attempt1-3"
    assert submission_id("gpuarb-x", 2, taken.__contains__) == "gpuarb-x-attempt2"


def test_render_shows_the_job_without_starting_anything(tmp_path: Path, facts: Any) -> None:
    spec = write_spec(tmp_path / "a.yaml", "python train.py", extra="secrets: {TOKEN: s3cret}")
    backend = RayBackend(state_dir=tmp_path / "state")
    text = backend.render(make_request(spec, facts, run_id="r1", cluster="gpuarb-r1-a1"))
    assert f"entrypoint: cd {tmp_path} && exec bash -c 'python train.py'" in text
    assert "submission_id: gpuarb-r1-a1-attempt1" in text
    assert "TOKEN: <secret>" in text and "s3cret" not in text
    assert not (tmp_path / "state").exists()
    attached = RayBackend(address="http://10.0.0.5:8265", state_dir=tmp_path / "state")
    rendered = attached.render(make_request(spec, facts, run_id="r1", cluster="gpuarb-r1-a1"))
    assert "ray: http://10.0.0.5:8265" in rendered and f"working_dir: {tmp_path}" in rendered


def test_backend_satisfies_the_protocol_and_names_its_fix_when_ray_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = RayBackend(state_dir=tmp_path)
    assert isinstance(backend, Backend) and backend.name == "local"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackendUnavailable, match=r"pip install 'ray\[default\]'"):
        backend.check()


def test_default_state_dir_follows_gpuarb_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path))
    assert RayBackend().state_dir == tmp_path / "ray"
    monkeypatch.delenv("GPUARB_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert RayBackend().state_dir == tmp_path / "xdg" / "gpuarb" / "ray"


def test_long_state_dirs_get_a_short_ray_temp_dir(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60)
    temp = heads.new_temp_dir(deep)
    try:
        assert len(str(temp)) <= 40 and temp.is_dir()
    finally:
        temp.rmdir()


@needs_ray
def test_a_head_whose_processes_died_reads_preempted(tmp_path: Path) -> None:
    """A state file whose leader pid is gone (the machine or head died): the job is PREEMPTED, the head DOWN."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    backend = RayBackend(state_dir=tmp_path)
    state = {"name": "gpuarb-dead", "mode": "head", "dashboard_url": "http://127.0.0.1:9", "address": None,
             "temp_dir": str(tmp_path / "t" / "x"), "marker": str(tmp_path / "t" / "x"), "leader_pid": gone.pid,
             "leader_create_time": 1.0, "started_at": "2026-11-23T12:00:00+00:00", "ready_at": None,
             "jobs": {"gpuarb-dead-attempt1": {"submitted_at": "2026-11-23T12:00:01+00:00"},
                      "gpuarb-dead-attempt0": {"submitted_at": "2026-11-23T11:00:01+00:00"}}}
    (tmp_path / "gpuarb-dead.json").write_text(json.dumps(state))
    handle = Handle(backend="local", cluster_name="gpuarb-dead", job_id="gpuarb-dead-attempt1")
    status = backend.status(handle)
    assert status.state is JobState.PREEMPTED and "gone" in status.message
    [info] = backend.clusters()
    assert (info.name, info.status, info.job_state) == ("gpuarb-dead", "DOWN", JobState.PREEMPTED)
    older = Handle(backend="local", cluster_name="gpuarb-dead", job_id="gpuarb-dead-attempt0")
    backend.cancel(older)  # nothing left to stop: recorded, no error
    assert backend.status(older).state is JobState.CANCELLED
    backend.teardown(handle)
    assert backend.clusters() == [] and sorted(p.name for p in tmp_path.iterdir()) == ["done"]
    assert backend.status(handle).state is JobState.PREEMPTED  # the archived record still answers


def test_unknown_clusters_never_raise(tmp_path: Path) -> None:
    backend = RayBackend(state_dir=tmp_path)
    handle = Handle(backend="local", cluster_name="gpuarb-nope", job_id="x")
    assert backend.status(handle).state is JobState.FAILED
    assert list(backend.logs(handle)) == []
    backend.cancel(handle)
    backend.teardown(handle)
    assert backend.clusters() == []


# ---------------------------------------------------------------------------------------------
# End to end on a real Ray head (one per module).
# ---------------------------------------------------------------------------------------------

CLUSTER = "gpuarb-e2e"


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayBackend]:
    if not HAS_RAY:
        pytest.skip("needs ray[default]")
    backend = RayBackend(state_dir=tmp_path_factory.mktemp("ray-state"), num_cpus=1, stop_grace_s=5)
    yield backend
    backend.teardown(Handle(backend="local", cluster_name=CLUSTER))


def procs_with_env(key: str, value: str) -> list[int]:
    """Pids of live processes whose environment has key=value (read from /proc via psutil)."""
    psutil = heads.psutil_module()
    found = []
    for p in psutil.process_iter():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and p.environ().get(key) == value:
                found.append(p.pid)
        except psutil.Error:
            continue
    return found


def head_leftovers(detail: dict[str, str]) -> list[str]:
    """Live processes of the head named in a handle's detail: by its marker, temp dir, or the leader's session."""
    psutil = heads.psutil_module()
    temp_dir, leader = detail["temp_dir"], int(detail["leader_pid"])
    left = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if p.status() == psutil.STATUS_ZOMBIE or p.pid == os.getpid():
                continue
            cmdline = " ".join(p.info["cmdline"] or [])
            if (p.pid == leader or temp_dir in cmdline or os.getsid(p.pid) == leader
                    or p.environ().get(heads.HEAD_MARKER_ENV) == temp_dir):
                left.append(f"{p.pid} {cmdline[:80]}")
        except (psutil.Error, OSError):
            continue
    return left


@needs_ray
@needs_torch
def test_preempted_training_resumes_from_its_last_checkpoint(head: RayBackend, tmp_path: Path, facts: Any) -> None:
    steps, every = 30, 5
    run = f"python examples/train.py --steps {steps} --step-seconds 0.1 --checkpoint-every {every}"
    spec = write_spec(tmp_path / "train.yaml", run, workdir=str(ROOT))
    ckpt, reference = tmp_path / "ckpt", tmp_path / "reference"
    # An uninterrupted run of the same job, for comparison at the end (runs while the head starts).
    uninterrupted = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "train.py"), "--steps", str(steps), "--checkpoint-dir",
         str(reference)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "GPUARB_ATTEMPT": "1"})
    try:
        started = time.monotonic()
        h1 = head.launch(make_request(spec, facts, run_id="train", attempt=1, cluster=CLUSTER, ckpt=ckpt))
        launch_s = time.monotonic() - started
        assert h1.backend == "local" and h1.job_id == f"{CLUSTER}-attempt1"
        assert h1.detail["mode"] == "head" and h1.detail["dashboard_url"].startswith("http://127.0.0.1:")

        # Kill the training process (SIGKILL: no chance to checkpoint) once a checkpoint exists and it ran on past it.
        def checkpointed_and_beyond() -> bool:
            meta = ckpt / "checkpoint.json"
            if not meta.exists():
                return False
            done = (ckpt / "steps.log").read_text().count("\n")
            return json.loads(meta.read_text())["step"] >= every and done % every >= 2
        wait_for(checkpointed_and_beyond, 60, "a checkpoint and two more steps")
        pid_text, attempt_text = (ckpt / "train.pid").read_text().split()
        pid = int(pid_text)
        assert attempt_text == "1" and pid in procs_with_env("GPUARB_RUN_ID", "train")
        os.kill(pid, signal.SIGKILL)
        killed_s = time.monotonic() - started

        preempted = wait_state(head, h1, {JobState.PREEMPTED, JobState.FAILED, JobState.SUCCEEDED}, 30)
        assert preempted.state is JobState.PREEMPTED, preempted
        assert "SIGKILL" in preempted.message
        assert [c.name for c in head.clusters()] == [CLUSTER]

        h2 = head.launch(make_request(spec, facts, run_id="train", attempt=2, cluster=CLUSTER, ckpt=ckpt, resume=True))
        assert h2.detail["leader_pid"] == h1.detail["leader_pid"]  # the same head, reused
        relaunched_s = time.monotonic() - started
        done = wait_state(head, h2, {JobState.SUCCEEDED, JobState.FAILED, JobState.PREEMPTED}, 90)
        succeeded_s = time.monotonic() - started
        assert done.state is JobState.SUCCEEDED, (done, list(head.logs(h2))[-5:])

        # Exactly once up to the checkpoint attempt 2 resumed from; at most one interval redone; nothing thrice.
        records = [line.split() for line in (ckpt / "steps.log").read_text().splitlines()]
        by_attempt = {a: [int(r[1]) for r in records if r[3] == a] for a in ("1", "2")}
        first, second = by_attempt["1"], by_attempt["2"]
        resumed_from = second[0] - 1
        assert first == list(range(1, first[-1] + 1)) and second == list(range(second[0], steps + 1))
        assert resumed_from >= every and resumed_from % every == 0  # a real checkpoint, not a restart from scratch
        assert resumed_from <= first[-1] <= resumed_from + every  # the latest checkpoint before the kill
        counts = Counter(int(r[1]) for r in records)
        assert sorted(counts) == list(range(1, steps + 1))
        assert {s for s, c in counts.items() if c == 2} == set(range(resumed_from + 1, first[-1] + 1))
        assert max(counts.values()) <= 2
        logs = list(head.logs(h2))
        assert f"resumed from step {resumed_from} (checkpoint of attempt 1) in {ckpt}" in logs
        assert f"step {steps}/{steps}" in " ".join(logs)

        # The resumed run ends exactly where an uninterrupted one does: model, optimizer and RNG state all resumed.
        assert uninterrupted.wait(timeout=60) == 0
        assert json.loads((ckpt / "result.json").read_text()) == json.loads((reference / "result.json").read_text())
        print(f"\nhead start + submit {launch_s:.1f} s, killed at {killed_s:.1f} s, relaunched at "
              f"{relaunched_s:.1f} s, succeeded at {succeeded_s:.1f} s, test {time.monotonic() - started:.1f} s")
    finally:
        if uninterrupted.poll() is None:
            uninterrupted.kill()
            uninterrupted.wait()


@needs_ray
@pytest.mark.filterwarnings("ignore:ssl=None is deprecated:DeprecationWarning")  # inside Ray's log-tail client
def test_a_job_that_exits_non_zero_on_its_own_reads_failed(head: RayBackend, tmp_path: Path, facts: Any) -> None:
    spec = write_spec(tmp_path / "fail.yaml", "echo about to fail; sleep 1; echo failing now; exit 3")
    handle = head.launch(make_request(spec, facts, run_id="fail", cluster=CLUSTER))
    followed = list(head.logs(handle, follow=True))  # streams until the job ends
    assert followed.index("about to fail") < followed.index("failing now")
    status = wait_state(head, handle, {JobState.FAILED, JobState.PREEMPTED, JobState.SUCCEEDED}, 60)
    assert status.state is JobState.FAILED and "exit code 3" in status.message
    assert "failing now" in list(head.logs(handle))


@needs_ray
def test_cancel_stops_the_job_and_reads_cancelled(head: RayBackend, tmp_path: Path, facts: Any) -> None:
    spec = write_spec(tmp_path / "sleep.yaml", "sleep 300")
    handle = head.launch(make_request(spec, facts, run_id="cancel", cluster=CLUSTER))
    wait_state(head, handle, {JobState.RUNNING}, 60)
    wait_for(lambda: procs_with_env("GPUARB_RUN_ID", "cancel"), 30, "the job's process")
    head.cancel(handle)
    assert head.status(handle).state is JobState.CANCELLED
    wait_for(lambda: not procs_with_env("GPUARB_RUN_ID", "cancel"), 15, "the job's processes to end")
    head.cancel(handle)  # idempotent


@needs_ray
def test_a_stop_gpuarb_did_not_ask_for_reads_preempted(head: RayBackend, tmp_path: Path, facts: Any) -> None:
    from ray.job_submission import JobSubmissionClient

    spec = write_spec(tmp_path / "sleep.yaml", "sleep 300")
    handle = head.launch(make_request(spec, facts, run_id="outside", cluster=CLUSTER))
    wait_state(head, handle, {JobState.RUNNING}, 60)
    JobSubmissionClient(handle.detail["dashboard_url"]).stop_job(handle.job_id)  # `ray job stop` by someone else
    status = wait_state(head, handle, {JobState.PREEMPTED, JobState.CANCELLED, JobState.FAILED}, 30)
    assert status.state is JobState.PREEMPTED


@needs_ray
def test_an_existing_cluster_is_used_by_address_and_never_stopped(head: RayBackend, tmp_path: Path,
                                                                  facts: Any) -> None:
    url = head.heads.ensure(CLUSTER)["dashboard_url"]
    attached = RayBackend(address=url, state_dir=tmp_path / "attached-state")
    attached.check()
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "marker.txt").write_text("uploaded working dir\n")
    spec = write_spec(tmp_path / "job" / "a.yaml", "cat marker.txt; echo $GPUARB_RUN_ID; sleep 300")
    handle = attached.launch(make_request(spec, facts, run_id="attached", cluster="gpuarb-attached-a1"))
    assert handle.detail == {"mode": "address", "dashboard_url": url, "address": url}
    wait_for(lambda: "attached" in list(attached.logs(handle)), 60, "the job's output")
    assert "uploaded working dir" in list(attached.logs(handle))
    [info] = attached.clusters()
    assert (info.name, info.status, info.job_state) == ("gpuarb-attached-a1", "ATTACHED", JobState.RUNNING)
    attached.teardown(handle)  # stops the job gpuarb submitted, not the cluster
    assert attached.status(handle).state is JobState.CANCELLED
    assert jobs_api.api_answers(url) and attached.clusters() == []
    assert heads.head_alive(head.states.find(CLUSTER)[0])


@needs_ray
def test_teardown_stops_its_head_and_nothing_else(head: RayBackend, tmp_path: Path, facts: Any) -> None:
    spec = write_spec(tmp_path / "sleep.yaml", "echo still running; sleep 300")
    handle = head.launch(make_request(spec, facts, run_id="teardown", cluster=CLUSTER))
    wait_state(head, handle, {JobState.RUNNING}, 60)
    [info] = head.clusters()
    assert (info.name, info.status, info.job_state, info.idle_minutes) == (CLUSTER, "UP", JobState.RUNNING, 0.0)
    assert info.launched_at is not None
    # A stranger that looks like Ray to a name-matching `ray stop`: teardown must leave it alone.
    decoy = subprocess.Popen(["bash", "-c", "exec -a /x/ray/core/src/ray/raylet/raylet sleep 120"],
                             start_new_session=True)
    try:
        assert head_leftovers(dict(handle.detail))
        head.teardown(handle)
        assert head_leftovers(dict(handle.detail)) == []
        assert decoy.poll() is None
        assert not Path(handle.detail["temp_dir"]).exists()
    finally:
        decoy.kill()
        decoy.wait()
    assert head.clusters() == []
    assert head.status(handle).state is JobState.CANCELLED  # answered from the archived record
    assert "still running" in list(head.logs(handle))  # from the copy saved before the head stopped
    head.teardown(handle)  # idempotent


@needs_ray
def test_an_unreachable_cluster_address_is_unavailable(tmp_path: Path) -> None:
    port = heads.free_ports(1)[0]
    backend = RayBackend(address=f"http://127.0.0.1:{port}", state_dir=tmp_path)
    with pytest.raises(BackendUnavailable, match=f"127.0.0.1:{port} is not reachable") as err:
        backend.check()
    assert isinstance(err.value, GpuarbError) and "\n" not in str(err.value)

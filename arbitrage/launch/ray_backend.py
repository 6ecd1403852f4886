"""The local backend: runs a job under Ray on this machine (a head gpuarb starts and stops) or on a Ray cluster
you already run (owned GPUs), submitting it through the Ray Jobs API.

Two modes, one class:
- ``RayBackend(state_dir=...)``: each cluster name gets its own Ray head on this machine, started by
  ``ray start --head --block`` in a new session with its own short ``--temp-dir`` and free ports, so it never
  collides with other Ray instances. ``teardown`` stops that head and nothing else (no ``ray stop``), then checks
  that none of its processes is left.
- ``RayBackend(address=...)``: ``http://host:8265`` (the dashboard / Jobs API), ``ray://host:10001`` or ``auto``
  (the cluster ``ray start`` last started on this machine). gpuarb never starts or stops that cluster;
  ``teardown`` only stops the jobs it submitted there.

Per cluster name, a JSON file ``<state_dir>/<name>.json`` records the mode, the Jobs API URL, the head's
pid/ports/temp dir and the jobs submitted (with cancel requests and final states), so another gpuarb process
(status, logs, down, reap) finds everything from the name alone. A torn-down cluster's file moves to
``<state_dir>/done/``; job output is saved to ``<state_dir>/logs/<submission id>.log`` before the head stops.

How a Ray job's end maps to JobState (``classify``):
- SUCCEEDED -> SUCCEEDED.
- STOPPED -> CANCELLED when gpuarb asked for the stop (``cancel``/``teardown`` record it first), else PREEMPTED
  (someone ran ``ray job stop``, or the node drained it).
- FAILED with the driver killed by a signal -> PREEMPTED: exit code -N (the entrypoint process itself got signal N)
  or 128+N (its shell reports a child killed by N), for N in SIGKILL, SIGTERM, SIGINT, SIGHUP. A graceful
  preemption that checkpoints on SIGTERM should exit 143, as examples/train.py does.
- FAILED because the job's supervisor actor died (its worker or node went away) -> PREEMPTED.
- Any other FAILED (a non-zero exit of the job's own, e.g. 1 or 3; a crash by SIGSEGV/SIGABRT; a failed
  runtime env) -> FAILED. Again CANCELLED instead when gpuarb had asked for the stop.
- The head's processes gone while gpuarb did not tear it down -> PREEMPTED (the machine or the head died).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from arbitrage.launch.backend import (
    CLUSTER_PREFIX,
    ENV_CHECKPOINT_DIR,
    BackendUnavailable,
    ClusterInfo,
    Handle,
    JobState,
    JobStatus,
    LaunchError,
    LaunchRequest,
    gpuarb_envs,
)

# Every process of a head gpuarb started carries this variable (value: the head's temp dir), so teardown can find
# the head's processes, including job processes that Ray moved into sessions of their own.
HEAD_MARKER_ENV = "GPUARB_RAY_HEAD"

INSTALL_HINT = "pip install 'ray[default]' (or pip install 'gpuarb[launch]')"

# Signals that mean "stopped from outside" when they end a job's driver.
PREEMPTION_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
# Ray error types that mean the job's process host went away, not that the job failed.
_LOST_ERROR_TYPES = frozenset({"JOB_SUPERVISOR_ACTOR_DIED"})
_RAY_STATES = {"PENDING": JobState.PENDING, "RUNNING": JobState.RUNNING, "SUCCEEDED": JobState.SUCCEEDED}

# Ray's unix socket paths (<temp>/session_<date>_<pid>/sockets/plasma_store) must stay under 107 characters.
_MAX_TEMP_DIR_CHARS = 40
_UNREACHABLE_PREEMPT_MINUTES = 5.0  # an attached cluster unreachable this long counts as lost
_SUBMIT_RETRY_SECONDS = 30.0  # the job agent of a fresh head may need a moment after the API answers


# ---------------------------------------------------------------------------------------------
# Pure parts: what to submit, and what a Ray job status means.
# ---------------------------------------------------------------------------------------------

def exit_signal(code: int | None) -> int | None:
    """The signal that ended a process, from its exit code (-N from Popen, 128+N from a shell), else None."""
    if code is None:
        return None
    if code < 0:
        return -code
    if 128 < code <= 128 + 64:
        return code - 128
    return None


def classify(ray_status: str, *, driver_exit_code: int | None = None, error_type: str | None = None,
             cancel_requested: bool = False, message: str = "") -> JobStatus:
    """Map a Ray job's status to a JobState, telling preemption (from outside) from the job's own failure."""
    first_line = next((line.strip() for line in (message or "").splitlines() if line.strip()), "")
    status = ray_status.upper()
    if status in _RAY_STATES:
        return JobStatus(_RAY_STATES[status], message=first_line)
    if status == "STOPPED":
        if cancel_requested:
            return JobStatus(JobState.CANCELLED, message="stopped by gpuarb")
        return JobStatus(JobState.PREEMPTED, message="stopped from outside gpuarb (ray job stop or node drain)")
    if status == "FAILED":
        sig = exit_signal(driver_exit_code)
        killed = sig is not None and sig in PREEMPTION_SIGNALS
        if cancel_requested and (killed or (sig is None and driver_exit_code is None)):
            return JobStatus(JobState.CANCELLED, message="stopped by gpuarb")
        if killed:
            assert sig is not None
            return JobStatus(JobState.PREEMPTED, message=f"killed by {signal.Signals(sig).name} "
                             f"(exit code {driver_exit_code})")
        if error_type in _LOST_ERROR_TYPES:
            return JobStatus(JobState.PREEMPTED, message=first_line or "the job's Ray worker died")
        return JobStatus(JobState.FAILED, message=first_line or f"failed (exit code {driver_exit_code})")
    return JobStatus(JobState.FAILED, message=f"unknown Ray job status {ray_status!r}")


def spec_dir(spec_path: str) -> Path:
    """The directory relative paths in a spec are resolved against: the spec file's, or the cwd for text specs."""
    path = Path(spec_path)
    return path.resolve().parent if path.is_file() else Path.cwd()


def job_workdir(task: Mapping[str, Any], spec_path: str) -> Path:
    """The job's working directory: the spec's ``workdir`` relative to the spec file's directory (default: it).

    SkyPilot resolves ``workdir`` against the current directory; gpuarb resolves it against the spec file, so
    ``gpuarb run jobspecs/x.yaml`` behaves the same from anywhere.
    """
    base = spec_dir(spec_path)
    workdir = task.get("workdir")
    if workdir is None:
        return base
    if not isinstance(workdir, str):
        raise LaunchError(f"{spec_path}: workdir: the local backend needs a directory path, got {workdir!r}")
    return (base / Path(workdir).expanduser()).resolve()


def entrypoint(task: Mapping[str, Any], cwd: Path | None, spec_path: str) -> str:
    """The shell command Ray runs: cd to the workdir, run ``setup`` (stop if it fails), then exec ``run``."""
    run = task.get("run")
    if not isinstance(run, str) or not run.strip():
        raise LaunchError(f"{spec_path}: run: the job has no run command")
    parts = [f"cd {shlex.quote(str(cwd))}"] if cwd is not None else []
    setup = task.get("setup")
    if isinstance(setup, str) and setup.strip():
        parts.append(f"bash -c {shlex.quote(setup)}")
    parts.append(f"exec bash -c {shlex.quote(run)}")
    return " && ".join(parts)


def job_env(req: LaunchRequest) -> dict[str, str]:
    """The job's environment: the spec's envs and secrets, then the GPUARB_* variables (req.envs wins)."""
    env: dict[str, str] = {}
    for key in ("envs", "secrets"):
        values = req.spec.task.get(key) or {}
        for name, value in values.items():
            if value is None and name not in req.envs:
                raise LaunchError(f"{req.spec.path}: {key}.{name}: no value (set it in the spec)")
            if value is not None:
                env[str(name)] = str(value)
    env.update(gpuarb_envs(req))
    if req.checkpoint is not None:  # a relative local directory is relative to the spec file
        mount = Path(req.checkpoint.mount_path).expanduser()
        if not mount.is_absolute():
            env[ENV_CHECKPOINT_DIR] = str(spec_dir(req.spec.path) / mount)
    env.update({str(k): str(v) for k, v in req.envs.items()})
    return env


def submission_id(cluster_name: str, attempt: int, taken: Callable[[str], bool]) -> str:
    """``<cluster>-attempt<n>``, with ``-2``, ``-3``... appended while ``taken`` says the id exists on the cluster."""
    base = f"{cluster_name}-attempt{attempt}"
    candidate, n = base, 1
    while taken(candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


# ---------------------------------------------------------------------------------------------
# The backend.
# ---------------------------------------------------------------------------------------------

def default_state_dir() -> Path:
    """Where Ray heads' state lives: $GPUARB_DATA_DIR/ray, else $XDG_DATA_HOME/gpuarb/ray (~/.local/share)."""
    data = os.environ.get("GPUARB_DATA_DIR")
    if data:
        return Path(data).expanduser() / "ray"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser() / "gpuarb" / "ray"


class RayBackend:
    """Backend on a Ray head gpuarb starts here (``address=None``) or on an existing Ray cluster (``address``)."""

    name = "local"

    def __init__(self, address: str | None = None, state_dir: Path | None = None, *, num_cpus: int | None = None,
                 start_timeout_s: float = 120.0, stop_grace_s: float = 10.0,
                 entrypoint_num_gpus: float | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.address = address or None
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.num_cpus = num_cpus if num_cpus is not None else max(1, min(4, os.cpu_count() or 1))
        self.start_timeout_s = start_timeout_s
        self.stop_grace_s = stop_grace_s  # SIGTERM -> SIGKILL grace for a stopped job (RAY_JOB_STOP_WAIT_TIME_S)
        self.entrypoint_num_gpus = entrypoint_num_gpus  # GPUs Ray reserves for the entrypoint (attached clusters)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._clients: dict[str, Any] = {}
        self._heads: dict[str, subprocess.Popen[bytes]] = {}  # heads this process started, reaped at teardown

    # -- Backend protocol ------------------------------------------------------------------------

    def check(self) -> None:
        """Ray with its job server must be importable; an existing cluster must answer."""
        if importlib.util.find_spec("ray") is None or importlib.util.find_spec("aiohttp") is None:
            raise BackendUnavailable(f"the local backend needs Ray with its Jobs API: {INSTALL_HINT}")
        if self.address is not None:
            self._client(self.address)

    def render(self, req: LaunchRequest) -> str:
        """The Ray job gpuarb would submit (entrypoint, env, where), as YAML; secrets are masked."""
        import yaml

        submission = self._submission(req)
        env = dict(submission["runtime_env"].get("env_vars", {}))
        for name in req.spec.task.get("secrets") or {}:
            if name in env:
                env[name] = "<secret>"
        submission["runtime_env"]["env_vars"] = env
        where = self.address or f"a new local Ray head ({self.num_cpus} CPUs), state in {self.state_dir}"
        doc = {"backend": self.name, "cluster": req.cluster_name, "ray": where,
               "submission_id": f"{req.cluster_name}-attempt{req.attempt}", **submission}
        return yaml.safe_dump(doc, sort_keys=False, width=120)

    def launch(self, req: LaunchRequest) -> Handle:
        """Start (or reuse) the cluster's head, submit the job, and record it in the cluster's state file."""
        self.check()
        submission = self._submission(req)
        state = self._ensure_head(req.cluster_name) if self.address is None else self._attach(req.cluster_name)
        url = state["dashboard_url"]
        client = self._client(url)
        sid = submission_id(req.cluster_name, req.attempt, lambda s: self._job_exists(client, s))
        metadata = {"gpuarb_run_id": req.run_id, "gpuarb_attempt": str(req.attempt),
                    "gpuarb_cluster": req.cluster_name}
        deadline = time.monotonic() + _SUBMIT_RETRY_SECONDS
        while True:
            try:
                client.submit_job(submission_id=sid, metadata=metadata, **submission)
                break
            except Exception as exc:  # the Jobs SDK raises RuntimeError/ConnectionError with the server's text
                if time.monotonic() > deadline or not _retryable_submit_error(exc):
                    raise LaunchError(f"{req.cluster_name}: Ray job submission to {url} failed: "
                                      f"{_one_line(exc)}") from None
                time.sleep(1.0)
        now = self.clock().isoformat()

        def add_job(st: dict[str, Any]) -> None:
            st.setdefault("jobs", {})[sid] = {"run_id": req.run_id, "attempt": req.attempt, "submitted_at": now,
                                              "cancel_requested": False}
        self._update_state(req.cluster_name, add_job)
        return Handle(backend=self.name, cluster_name=req.cluster_name, job_id=sid,
                      detail=self._detail(state))

    def status(self, handle: Handle) -> JobStatus:
        """The job's state; a vanished job or head reads FAILED, CANCELLED or PREEMPTED, never an exception."""
        state, live = self._find_state(handle.cluster_name)
        if state is None:
            return JobStatus(JobState.FAILED, message=f"no record of cluster {handle.cluster_name} in {self.state_dir}")
        jobs = state.get("jobs", {})
        sid = handle.job_id or _latest_job(jobs)
        if sid is None:
            return JobStatus(JobState.FAILED, message=f"no job was submitted to {handle.cluster_name}")
        job = jobs.get(sid, {})
        if job.get("final"):
            return JobStatus(JobState(job["final"]), message=job.get("final_message", ""))
        if not live:
            return JobStatus(JobState.CANCELLED, message=f"{handle.cluster_name} was torn down")
        cancel_requested = bool(job.get("cancel_requested"))
        if state["mode"] == "head" and not _head_alive(state):
            gone = (JobStatus(JobState.CANCELLED, message="stopped by gpuarb") if cancel_requested else JobStatus(
                JobState.PREEMPTED, message=f"the Ray head of {handle.cluster_name} is gone (its processes died)"))
            return self._finish(handle.cluster_name, sid, gone)
        try:
            info = self._client(state["dashboard_url"]).get_job_info(sid)
        except Exception as exc:
            if _not_found(exc):
                return self._finish(handle.cluster_name, sid, JobStatus(
                    JobState.FAILED, message=f"job {sid} not found on {state['dashboard_url']}"))
            return self._unreachable(handle.cluster_name, sid, state, exc)
        if state.get("unreachable_since"):
            self._update_state(handle.cluster_name, lambda st: st.pop("unreachable_since", None))
        status = classify(str(getattr(info.status, "value", info.status)), driver_exit_code=info.driver_exit_code,
                          error_type=None if info.error_type is None else str(getattr(info.error_type, "value",
                                                                                      info.error_type)),
                          cancel_requested=cancel_requested, message=info.message or "")
        return self._finish(handle.cluster_name, sid, status) if status.state.terminal else status

    def logs(self, handle: Handle, follow: bool = False) -> Iterator[str]:
        """The job's output lines from the Jobs API; after teardown, from the copy saved in the state dir."""
        state, live = self._find_state(handle.cluster_name)
        sid = handle.job_id or (_latest_job(state.get("jobs", {})) if state else None)
        if sid is None:
            return iter(())
        saved = self.state_dir / "logs" / f"{sid}.log"
        if state is None or not live or (state["mode"] == "head" and not _head_alive(state)):
            return iter(saved.read_text(errors="replace").splitlines() if saved.exists() else ())
        client = self._client(state["dashboard_url"])
        if not follow:
            return iter(client.get_job_logs(sid).splitlines())
        return _follow_logs(client, sid)

    def cancel(self, handle: Handle) -> None:
        """Ask Ray to stop the job (SIGTERM, then SIGKILL after stop_grace_s) and wait until it has stopped."""
        state, live = self._find_state(handle.cluster_name)
        if state is None or not live:
            return
        sids = [handle.job_id] if handle.job_id else list(state.get("jobs", {}))
        self._stop_jobs(handle.cluster_name, state, sids)

    def teardown(self, handle: Handle) -> None:
        """Stop the cluster's jobs; for a head gpuarb started, stop that head and leave none of its processes."""
        name = handle.cluster_name
        state, live = self._find_state(name)
        if state is None or not live:
            return
        if state["mode"] == "address":  # not ours to stop: only the jobs gpuarb submitted there
            self._stop_jobs(name, state, list(state.get("jobs", {})))
            with contextlib.suppress(Exception):
                self._save_logs(state)
        else:
            if _head_alive(state):
                with contextlib.suppress(Exception):  # an unanswering API must not keep the head running
                    self._stop_jobs(name, state, list(state.get("jobs", {})))
                with contextlib.suppress(Exception):
                    self._save_logs(state)
            self._stop_head(name, state)
        state, _ = self._find_state(name)
        if state is not None:
            self._archive_state(name, state)

    def clusters(self) -> list[ClusterInfo]:
        """Clusters with a state file: heads gpuarb started (UP, INIT, DOWN), attached ones (ATTACHED, UNREACHABLE)."""
        infos: list[ClusterInfo] = []
        if not self.state_dir.is_dir():
            return infos
        for path in sorted(self.state_dir.glob(f"{CLUSTER_PREFIX}*.json")):
            state = _read_json(path)
            if state is None:
                continue
            infos.append(self._cluster_info(state))
        return infos

    # -- heads -------------------------------------------------------------------------------------

    def _ensure_head(self, name: str) -> dict[str, Any]:
        """The cluster's running head, or a new one (after clearing what a dead one left behind)."""
        state, live = self._find_state(name)
        if state is not None and live and state.get("mode") == "head":
            if _head_alive(state) and _wait_api(state["dashboard_url"], self.start_timeout_s):
                return state
            self._stop_head(name, state)
        return self._start_head(name)

    def _start_head(self, name: str) -> dict[str, Any]:
        """``ray start --head --block`` in its own session, temp dir and ports; wait until the Jobs API answers."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        last_error = ""
        for _ in range(2):  # a port taken between choosing and binding: try once more with new ports
            temp_dir = self._new_temp_dir()
            ports = _free_ports(4)
            gcs, dashboard, client_server, agent = ports
            url = f"http://127.0.0.1:{dashboard}"
            cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
                   f"--temp-dir={temp_dir}", f"--port={gcs}", "--include-dashboard=true",
                   "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
                   f"--ray-client-server-port={client_server}", f"--dashboard-agent-listen-port={agent}",
                   f"--num-cpus={self.num_cpus}", "--disable-usage-stats", "--log-color=false"]
            env = dict(os.environ)
            env.pop("RAY_ADDRESS", None)
            env[HEAD_MARKER_ENV] = str(temp_dir)
            env["RAY_JOB_STOP_WAIT_TIME_S"] = str(int(self.stop_grace_s))
            # Jobs on this head find the Python gpuarb runs under first (it has Ray, and usually the job's deps).
            env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
            head_log = self.state_dir / "logs" / f"{name}.head.log"
            started = time.monotonic()
            with open(head_log, "ab") as log:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        env=env, cwd=temp_dir, start_new_session=True)
            self._heads[name] = proc
            state = {"name": name, "mode": "head", "dashboard_url": url, "address": None,
                     "temp_dir": str(temp_dir), "marker": str(temp_dir), "leader_pid": proc.pid,
                     "leader_create_time": _create_time(proc.pid), "ports": {"gcs": gcs, "dashboard": dashboard,
                     "client_server": client_server, "dashboard_agent": agent}, "num_cpus": self.num_cpus,
                     "head_log": str(head_log), "started_at": self.clock().isoformat(), "ready_at": None,
                     "jobs": {}}
            self._write_state(name, state)
            error = self._wait_ready(proc, url, head_log)
            if error is None:
                state["ready_at"] = self.clock().isoformat()
                state["start_seconds"] = round(time.monotonic() - started, 2)
                self._write_state(name, state)
                return state
            last_error = error
            self._stop_head(name, state)
            self._remove_state(name)
        raise LaunchError(f"{name}: the local Ray head did not start: {last_error}")

    def _wait_ready(self, proc: subprocess.Popen[bytes], url: str, head_log: Path) -> str | None:
        """None once the Jobs API answers; else why not (the head exited, or start_timeout_s passed)."""
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                return f"`ray start` exited with code {code}: {_log_tail(head_log)} (log: {head_log})"
            if _api_answers(url):
                return None
            time.sleep(0.5)
        return f"the Jobs API at {url} did not answer within {self.start_timeout_s:g} s (log: {head_log})"

    def _new_temp_dir(self) -> Path:
        """A fresh, short Ray temp dir under the state dir, or under the system temp dir when that path is too long."""
        import tempfile

        base = self.state_dir / "t"
        if len(str(base.resolve())) + 9 <= _MAX_TEMP_DIR_CHARS:
            base.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix="", dir=base))
        return Path(tempfile.mkdtemp(prefix="gpuarb-ray-"))

    def _stop_head(self, name: str, state: Mapping[str, Any]) -> None:
        """Stop the head's leader gracefully, then every process still carrying its marker; raise if any survives."""
        import shutil

        psutil = _psutil()
        if _head_alive(state):
            with contextlib.suppress(psutil.Error):
                psutil.Process(int(state["leader_pid"])).send_signal(signal.SIGTERM)
            _wait_gone([int(state["leader_pid"])], timeout=20.0)
        proc = self._heads.pop(name, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        left = head_processes(state)
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if not left:
                break
            for p in left:
                with contextlib.suppress(psutil.Error):
                    p.send_signal(sig)
            _wait_gone([p.pid for p in left], timeout=wait)
            left = head_processes(state)
        if left:
            pids = ", ".join(str(p.pid) for p in left)
            raise LaunchError(f"{name}: could not stop the local Ray head: processes {pids} are still running")
        shutil.rmtree(state["temp_dir"], ignore_errors=True)

    # -- attached clusters -----------------------------------------------------------------------------

    def _attach(self, name: str) -> dict[str, Any]:
        """State for an existing cluster: its resolved Jobs API URL; never starts anything."""
        assert self.address is not None
        state, live = self._find_state(name)
        if state is not None and live and state.get("mode") == "address":
            return state
        client = self._client(self.address)
        url = str(client.get_address())
        self._clients[url] = client
        state = {"name": name, "mode": "address", "address": self.address, "dashboard_url": url,
                 "started_at": self.clock().isoformat(), "jobs": {}}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_state(name, state)
        return state

    # -- jobs ------------------------------------------------------------------------------------------

    def _submission(self, req: LaunchRequest) -> dict[str, Any]:
        """Keyword arguments for JobSubmissionClient.submit_job (without ids and metadata)."""
        workdir = job_workdir(req.spec.task, req.spec.path)
        if not workdir.is_dir():
            raise LaunchError(f"{req.spec.path}: workdir: {workdir} is not a directory")
        runtime_env: dict[str, Any] = {"env_vars": job_env(req)}
        if self.address is None:
            command = entrypoint(req.spec.task, workdir, req.spec.path)  # same machine: run in place
        else:
            command = entrypoint(req.spec.task, None, req.spec.path)
            runtime_env["working_dir"] = str(workdir)  # uploaded to the cluster by the Jobs SDK
        submission: dict[str, Any] = {"entrypoint": command, "runtime_env": runtime_env}
        if self.entrypoint_num_gpus:
            submission["entrypoint_num_gpus"] = self.entrypoint_num_gpus
        return submission

    def _stop_jobs(self, name: str, state: Mapping[str, Any], sids: list[str]) -> None:
        """Record the cancel request, ask Ray to stop each job, and wait (bounded) until each is terminal."""
        pending = [s for s in sids if not state.get("jobs", {}).get(s, {}).get("final")]
        if not pending:
            return

        def mark(st: dict[str, Any]) -> None:
            for sid in pending:
                st.setdefault("jobs", {}).setdefault(sid, {})["cancel_requested"] = True
        self._update_state(name, mark)
        if state["mode"] == "head" and not _head_alive(state):
            return  # nothing runs there any more; status() now reads CANCELLED
        client = self._client(state["dashboard_url"])
        for sid in pending:
            try:
                client.stop_job(sid)
            except Exception as exc:
                if not _not_found(exc):
                    raise LaunchError(f"{name}: could not stop Ray job {sid}: {_one_line(exc)}") from None
        deadline = time.monotonic() + self.stop_grace_s + 15.0
        for sid in pending:
            while True:
                status = self.status(Handle(backend=self.name, cluster_name=name, job_id=sid))
                if status.state.terminal or time.monotonic() > deadline:
                    break
                time.sleep(0.5)

    def _finish(self, name: str, sid: str, status: JobStatus) -> JobStatus:
        """Remember a job's terminal state, so status() still answers after the head is gone."""
        def record(st: dict[str, Any]) -> None:
            job = st.setdefault("jobs", {}).setdefault(sid, {})
            job["final"] = status.state.value
            job["final_message"] = status.message
            job["ended_at"] = self.clock().isoformat()
        with contextlib.suppress(OSError):
            self._update_state(name, record)
        return status

    def _unreachable(self, name: str, sid: str, state: Mapping[str, Any], exc: Exception) -> JobStatus:
        """The Jobs API does not answer: not terminal at first; an attached cluster lost for long is PREEMPTED."""
        now = self.clock()
        since_text = state.get("unreachable_since")
        if since_text is None:
            self._update_state(name, lambda st: st.__setitem__("unreachable_since", now.isoformat()))
            since = now
        else:
            since = datetime.fromisoformat(since_text)
        minutes = (now - since).total_seconds() / 60
        if state["mode"] == "address" and minutes >= _UNREACHABLE_PREEMPT_MINUTES:
            return self._finish(name, sid, JobStatus(JobState.PREEMPTED, message=(
                f"Ray cluster {state['dashboard_url']} unreachable for {minutes:.0f} min: {_one_line(exc)}")))
        return JobStatus(JobState.RUNNING, message=f"Jobs API at {state['dashboard_url']} not answering "
                         f"for {minutes:.1f} min: {_one_line(exc)}")

    def _save_logs(self, state: Mapping[str, Any]) -> None:
        """Copy each job's output into the state dir, so `gpuarb logs` works after teardown."""
        client = self._client(state["dashboard_url"])
        logs_dir = self.state_dir / "logs"
        logs_dir.mkdir(parents=True, exist_ok=True)
        for sid in state.get("jobs", {}):
            with contextlib.suppress(Exception):
                (logs_dir / f"{sid}.log").write_text(client.get_job_logs(sid))

    def _job_exists(self, client: Any, sid: str) -> bool:
        try:
            client.get_job_info(sid)
        except Exception as exc:
            if _not_found(exc):
                return False
            raise LaunchError(f"cannot reach the Ray Jobs API: {_one_line(exc)}") from None
        return True

    def _client(self, address: str) -> Any:
        """A JobSubmissionClient per address (its constructor checks the connection and the server version)."""
        client = self._clients.get(address)
        if client is None:
            try:
                from ray.job_submission import JobSubmissionClient
            except ImportError as exc:
                raise BackendUnavailable(f"cannot import Ray's Jobs SDK ({exc}): {INSTALL_HINT}") from None
            import logging

            # Ray's SDK sets INFO on its own loggers and prints a line per working-dir upload and log tail.
            for noisy in ("ray.dashboard.modules.job.sdk", "ray.dashboard.modules.dashboard_sdk",
                          "ray._private.runtime_env.packaging"):
                logging.getLogger(noisy).setLevel(logging.WARNING)
            try:
                client = JobSubmissionClient(address)
            except Exception as exc:
                raise BackendUnavailable(f"Ray cluster at {address} is not reachable: {_one_line(exc)}") from None
            self._clients[address] = client
        return client

    # -- reap ------------------------------------------------------------------------------------------

    def _cluster_info(self, state: Mapping[str, Any]) -> ClusterInfo:
        """One state file as a ClusterInfo: alive or not, launched when, idle since when, latest job's state."""
        name = state["name"]
        launched = _parse_time(state.get("started_at"))
        jobs = state.get("jobs", {})
        latest = _latest_job(jobs)
        job_state = None
        if state["mode"] == "head" and not _head_alive(state):
            word = "DOWN"
        elif state["mode"] == "head" and not state.get("ready_at"):
            word = "INIT"
        elif state["mode"] == "head":
            word = "UP" if _api_answers(state["dashboard_url"]) else "INIT"
        else:
            word = "ATTACHED" if _api_answers(state["dashboard_url"]) else "UNREACHABLE"
        if latest is not None and word in ("UP", "ATTACHED"):
            job_state = self.status(Handle(backend=self.name, cluster_name=name, job_id=latest)).state
        elif latest is not None and jobs[latest].get("final"):
            job_state = JobState(jobs[latest]["final"])
        idle = None
        if job_state is None or job_state.terminal:
            ended = [_parse_time(j.get("ended_at")) for j in jobs.values()]
            last = max([t for t in ended if t is not None], default=None) or launched
            if last is not None:
                idle = max(0.0, (self.clock() - last).total_seconds() / 60)
        else:
            idle = 0.0
        return ClusterInfo(name=name, backend=self.name, status=word, launched_at=launched, idle_minutes=idle,
                           job_state=job_state)

    # -- state files -----------------------------------------------------------------------------------

    def state_path(self, name: str) -> Path:
        """The JSON file of a live cluster."""
        return self.state_dir / f"{name}.json"

    def _find_state(self, name: str) -> tuple[dict[str, Any] | None, bool]:
        """(state, live): the live cluster's state, else the archived one of a torn-down cluster."""
        state = _read_json(self.state_path(name))
        if state is not None:
            return state, True
        return _read_json(self.state_dir / "done" / f"{name}.json"), False

    def _write_state(self, name: str, state: Mapping[str, Any]) -> None:
        with self._lock(name):
            _write_json(self.state_path(name), state)

    def _update_state(self, name: str, change: Callable[[dict[str, Any]], object]) -> None:
        """Read-modify-write the live state under a file lock (another gpuarb process may write too)."""
        with self._lock(name):
            path = self.state_path(name)
            state = _read_json(path)
            if state is None:
                done = self.state_dir / "done" / f"{name}.json"
                state, path = _read_json(done), done
            if state is None:
                return
            change(state)
            _write_json(path, state)

    def _archive_state(self, name: str, state: dict[str, Any]) -> None:
        state["torn_down_at"] = self.clock().isoformat()
        done = self.state_dir / "done"
        done.mkdir(parents=True, exist_ok=True)
        with self._lock(name):
            _write_json(done / f"{name}.json", state)
            self.state_path(name).unlink(missing_ok=True)
        (self.state_dir / f".{name}.lock").unlink(missing_ok=True)

    def _remove_state(self, name: str) -> None:
        with self._lock(name):
            self.state_path(name).unlink(missing_ok=True)

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        import fcntl

        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / f".{name}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @staticmethod
    def _detail(state: Mapping[str, Any]) -> dict[str, str]:
        detail = {"mode": state["mode"], "dashboard_url": state["dashboard_url"]}
        if state["mode"] == "head":
            detail.update(temp_dir=state["temp_dir"], leader_pid=str(state["leader_pid"]))
        else:
            detail["address"] = str(state["address"])
        return detail


# ---------------------------------------------------------------------------------------------
# Process and HTTP helpers (edges).
# ---------------------------------------------------------------------------------------------

def _psutil() -> Any:
    """psutil, from the environment or from Ray's bundled copy (importing ray puts it on sys.path)."""
    try:
        import psutil
    except ImportError:
        import ray  # noqa: F401  (adds ray/thirdparty_files to sys.path)

        psutil = importlib.import_module("psutil")
    return psutil


def _create_time(pid: int) -> float | None:
    psutil = _psutil()
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _running(p: Any) -> bool:
    psutil = _psutil()
    try:
        return bool(p.is_running() and p.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _head_alive(state: Mapping[str, Any]) -> bool:
    """Whether the head's leader (``ray start --block``, the same process: pid and start time match) still runs."""
    psutil = _psutil()
    try:
        leader = psutil.Process(int(state["leader_pid"]))
        created = state.get("leader_create_time")
        if created is not None and abs(leader.create_time() - float(created)) > 1.0:
            return False
        return _running(leader)
    except (psutil.Error, KeyError, ValueError, TypeError):
        return False


def head_processes(state: Mapping[str, Any]) -> list[Any]:
    """Live processes of a head gpuarb started: its leader's session, plus anything carrying its marker.

    Ray keeps its daemons and workers in the leader's session; job drivers get sessions of their own but inherit
    the marker variable. A process counts only when it shows the marker, the temp dir, or is the leader itself,
    so a reused pid or session id never makes gpuarb kill a stranger.
    """
    psutil = _psutil()
    leader_pid = int(state["leader_pid"])
    marker = f"{HEAD_MARKER_ENV}={state['marker']}"
    temp_dir = str(state["temp_dir"])
    leader_ok = _head_alive(state)
    found: list[Any] = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        if p.pid == os.getpid() or not _running(p):
            continue
        try:
            same_session = os.getsid(p.pid) == leader_pid
        except OSError:
            continue
        if p.pid == leader_pid:
            if leader_ok:
                found.append(p)
            continue
        cmdline = " ".join(p.info.get("cmdline") or [])
        try:
            env = p.environ()
        except psutil.Error:
            env = {}
        marked = env.get(HEAD_MARKER_ENV) == state["marker"] or temp_dir in cmdline or marker in cmdline
        if marked or (same_session and leader_ok):
            found.append(p)
    return found


def _wait_gone(pids: list[int], timeout: float) -> None:
    psutil = _psutil()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                alive.append(_running(psutil.Process(pid)))
            except psutil.Error:
                alive.append(False)
        if not any(alive):
            return
        time.sleep(0.2)


def _free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free right now on every interface."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _api_answers(url: str) -> bool:
    """Whether the Jobs API at ``url`` lists jobs (the dashboard's job module is up)."""
    import httpx

    try:
        return httpx.get(f"{url}/api/jobs/", timeout=3.0).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_api(url: str, timeout: float) -> bool:
    """Whether the Jobs API at ``url`` answers within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not _api_answers(url):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _retryable_submit_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("agent", "503", "502", "connection", "try again"))


def _not_found(exc: Exception) -> bool:
    text = str(exc).lower()
    return "404" in text or "does not exist" in text or "not found" in text


def _follow_logs(client: Any, sid: str) -> Iterator[str]:
    """Lines of the job's output as they come (Jobs API websocket), until the job ends or the caller stops."""
    import asyncio
    import queue
    import threading

    lines: queue.Queue[str | BaseException | None] = queue.Queue(maxsize=10_000)
    loop = asyncio.new_event_loop()
    task_box: dict[str, asyncio.Task[None]] = {}

    async def pump() -> None:
        buffer = ""
        async for chunk in client.tail_job_logs(sid):
            buffer += chunk
            *complete, buffer = buffer.split("\n")
            for line in complete:
                lines.put(line)
        if buffer:
            lines.put(buffer)

    def run() -> None:
        try:
            task_box["task"] = loop.create_task(pump())
            loop.run_until_complete(task_box["task"])
            lines.put(None)
        except asyncio.CancelledError:
            lines.put(None)
        except BaseException as exc:
            lines.put(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=f"ray-logs-{sid}", daemon=True)
    thread.start()
    try:
        while True:
            item = lines.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise LaunchError(f"following the logs of Ray job {sid} failed: {_one_line(item)}")
            yield item
    finally:
        task = task_box.get("task")
        if thread.is_alive() and task is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout=5)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Replace ``path`` atomically (temp file + os.replace)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _latest_job(jobs: Mapping[str, Any]) -> str | None:
    if not jobs:
        return None
    return max(jobs, key=lambda s: (str(jobs[s].get("submitted_at", "")), s))


def _parse_time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def _log_tail(path: Path) -> str:
    """The last meaningful line of the `ray start` log, for a one-line error."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    return lines[-1][-300:] if lines else "no output"


def _one_line(exc: BaseException) -> str:
    text = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return text[0][:300] if text else type(exc).__name__

"""RayBackend: the Backend protocol over Ray's Jobs API, on a head gpuarb starts here or a cluster you run.

Two modes, one class:
- ``RayBackend(state_dir=...)``: each cluster name gets its own Ray head on this machine (heads.py); ``teardown``
  stops that head and nothing else.
- ``RayBackend(address=...)``: ``http://host:8265`` (the dashboard / Jobs API), ``ray://host:10001`` or ``auto``
  (the cluster ``ray start`` last started on this machine). gpuarb never starts or stops that cluster;
  ``teardown`` only stops the jobs it submitted there.

What is submitted comes from jobs.py, what a job's end means from status.py; the records that let another gpuarb
process find a cluster from its name alone live in state files (state.py).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arbitrage.billing import LOCAL_PROVIDER
from arbitrage.launch.backend import (
    BackendOptions,
    BackendUnavailable,
    ClusterInfo,
    Handle,
    JobState,
    JobStatus,
    LaunchError,
    LaunchRequest,
    owned_capacity,
    owned_provider,
)
from arbitrage.launch.ray import client as jobs_api
from arbitrage.launch.ray.heads import LocalHeads, head_alive
from arbitrage.launch.ray.jobs import job_metadata, submission, submission_id
from arbitrage.launch.ray.logs import follow_logs
from arbitrage.launch.ray.state import StateStore, handle_detail, latest_job, parse_time
from arbitrage.launch.ray.status import classify, has_log_tail
from arbitrage.paths import private_dir, ray_state_dir, write_private

if TYPE_CHECKING:
    from arbitrage.costmodel import CostBreakdown, Placement

_UNREACHABLE_PREEMPT_MINUTES = 5.0  # an attached cluster unreachable this long counts as lost
_SUBMIT_RETRY_SECONDS = 30.0  # the job agent of a fresh head may need a moment after the API answers


class RayBackend:
    """Backend on a Ray head gpuarb starts here (``address=None``) or on an existing Ray cluster (``address``)."""

    name = "local"
    pins_placement = False  # every job runs on this machine or the attached cluster, whatever the plan chose
    local_checkpoints = True

    def __init__(self, address: str | None = None, state_dir: Path | None = None, *, num_cpus: int | None = None,
                 start_timeout_s: float = 120.0, stop_grace_s: float = 10.0,
                 entrypoint_num_gpus: float | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.address = address or None
        self.state_dir = Path(state_dir) if state_dir is not None else ray_state_dir()
        self.num_cpus = num_cpus if num_cpus is not None else max(1, min(4, os.cpu_count() or 1))
        self.start_timeout_s = start_timeout_s
        self.stop_grace_s = stop_grace_s  # SIGTERM -> SIGKILL grace for a stopped job (RAY_JOB_STOP_WAIT_TIME_S)
        self.entrypoint_num_gpus = entrypoint_num_gpus  # GPUs Ray reserves for the entrypoint (attached clusters)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.states = StateStore(self.state_dir, self.clock)
        self.heads = LocalHeads(self.states, num_cpus=self.num_cpus, start_timeout_s=start_timeout_s,
                                stop_grace_s=stop_grace_s)
        self._clients: dict[str, Any] = {}

    @classmethod
    def from_options(cls, options: BackendOptions) -> RayBackend:
        """Heads' state under ``<data dir>/ray``; ``--ray-address`` attaches to an existing cluster instead."""
        return cls(address=options.address, state_dir=options.data_dir / "ray")

    # -- Backend protocol ------------------------------------------------------------------------

    def launch_key(self, placement: Placement) -> Hashable | None:
        """Every placement is the same launch here: the job runs on this backend's own machines."""
        return ("ray", self.address)

    def accounting_note(self, cost: CostBreakdown) -> str | None:
        """Owned capacity is accounted at its own price; a rehearsal of a cloud placement at $0 (`accounted`)."""
        o = cost.placement.offer
        if owned_capacity(cost.placement):
            return (f"local backend: owned capacity of {o.provider} {o.instance_type}, accounted at "
                    f"${cost.hourly_usd:,.2f}/h ({o.source} price)")
        return (f"local backend: a local rehearsal of {o.provider} {o.instance_type} (planned at "
                f"${cost.hourly_usd:,.2f}/h), recorded as provider {LOCAL_PROVIDER} at $0: nothing is rented")

    def accounted(self, row: dict[str, Any]) -> dict[str, Any]:
        """Owned capacity as priced; a rehearsal of a cloud placement under provider `local` at $0, keeping what it
        rehearses (GPUs, nodes, spot) and naming the cloud placement and its planned price in ``price_ref``."""
        if owned_provider(str(row["provider"])) or row["provider"] == LOCAL_PROVIDER:
            return row
        where = "/".join(str(p) for p in (row["region"], row["zone"]) if p)
        rehearsed = (f"rehearsal of {row['provider']} {where} {row['instance_type']} "
                     f"{'spot' if row['spot'] else 'on-demand'}, planned at ${float(row['usd_per_hour']):,.2f}/h "
                     f"({row['price_source']}, {row['price_as_of']}); nothing rented")
        money = ("usd_per_hour", "expected_total_usd", "compute_usd", "preemption_usd", "egress_in_usd",
                 "egress_out_usd")
        return {**row, **dict.fromkeys(money, 0.0), "provider": LOCAL_PROVIDER, "region": "this-machine",
                "zone": None, "price_source": LOCAL_PROVIDER, "price_ref": rehearsed}

    def check(self) -> None:
        """Ray with its job server must be importable; an existing cluster must answer."""
        if importlib.util.find_spec("ray") is None or importlib.util.find_spec("aiohttp") is None:
            raise BackendUnavailable(f"the local backend needs Ray with its Jobs API: {jobs_api.INSTALL_HINT}")
        if self.address is not None:
            self._client(self.address)

    def render(self, req: LaunchRequest) -> str:
        """The Ray job gpuarb would submit (entrypoint, env, where), as YAML; secrets are masked."""
        import yaml

        job = self._submission(req)
        env = dict(job["runtime_env"].get("env_vars", {}))
        for name in req.spec.task.get("secrets") or {}:
            if name in env:
                env[name] = "<secret>"
        job["runtime_env"]["env_vars"] = env
        where = self.address or f"a new local Ray head ({self.num_cpus} CPUs), state in {self.state_dir}"
        doc = {"backend": self.name, "cluster": req.cluster_name, "ray": where,
               "submission_id": f"{req.cluster_name}-attempt{req.attempt}", **job}
        return yaml.safe_dump(doc, sort_keys=False, width=120)

    def launch(self, req: LaunchRequest) -> Handle:
        """Start (or reuse) the cluster's head, submit the job, and record it in the cluster's state file."""
        self.check()
        job = self._submission(req)
        state = self.heads.ensure(req.cluster_name) if self.address is None else self._attach(req.cluster_name)
        url = state["dashboard_url"]
        client = self._client(url)
        sid = submission_id(req.cluster_name, req.attempt, lambda s: jobs_api.job_exists(client, s))
        deadline = time.monotonic() + _SUBMIT_RETRY_SECONDS
        while True:
            try:
                client.submit_job(submission_id=sid, metadata=job_metadata(req), **job)
                break
            except Exception as exc:  # the Jobs SDK raises RuntimeError/ConnectionError with the server's text
                if time.monotonic() > deadline or not jobs_api.retryable_submit_error(exc):
                    raise LaunchError(f"{req.cluster_name}: Ray job submission to {url} failed: "
                                      f"{jobs_api.one_line(exc)}") from None
                time.sleep(1.0)
        now = self.clock().isoformat()

        def add_job(st: dict[str, Any]) -> None:
            st.setdefault("jobs", {})[sid] = {"run_id": req.run_id, "attempt": req.attempt, "submitted_at": now,
                                              "cancel_requested": False}
        self.states.update(req.cluster_name, add_job)
        return Handle(backend=self.name, cluster_name=req.cluster_name, job_id=sid, detail=handle_detail(state))

    def status(self, handle: Handle) -> JobStatus:
        """The job's state; a vanished job or head reads FAILED, CANCELLED or PREEMPTED, never an exception."""
        state, live = self.states.find(handle.cluster_name)
        if state is None:
            return JobStatus(JobState.FAILED, message=f"no record of cluster {handle.cluster_name} in {self.state_dir}")
        jobs = state.get("jobs", {})
        sid = handle.job_id or latest_job(jobs)
        if sid is None:
            return JobStatus(JobState.FAILED, message=f"no job was submitted to {handle.cluster_name}")
        job = jobs.get(sid, {})
        if job.get("final"):
            return JobStatus(JobState(job["final"]), message=job.get("final_message", ""))
        if not live:
            return JobStatus(JobState.CANCELLED, message=f"{handle.cluster_name} was torn down")
        cancel_requested = bool(job.get("cancel_requested"))
        if state["mode"] == "head" and not head_alive(state):
            gone = (JobStatus(JobState.CANCELLED, message="stopped by gpuarb") if cancel_requested else JobStatus(
                JobState.PREEMPTED, message=f"the Ray head of {handle.cluster_name} is gone (its processes died)"))
            return self._finish(handle.cluster_name, sid, gone)
        try:
            info = self._client(state["dashboard_url"]).get_job_info(sid)
        except Exception as exc:
            if jobs_api.not_found(exc):
                return self._finish(handle.cluster_name, sid, JobStatus(
                    JobState.FAILED, message=f"job {sid} not found on {state['dashboard_url']}"))
            return self._unreachable(handle.cluster_name, sid, state, exc)
        if state.get("unreachable_since"):
            self.states.update(handle.cluster_name, lambda st: st.pop("unreachable_since", None))
        ray_status = str(getattr(info.status, "value", info.status))
        logs = None
        if ray_status.upper() == "FAILED" and not has_log_tail(info.message or ""):
            with contextlib.suppress(Exception):  # Ray kept no log tail: the job's own output says why it failed
                logs = self._client(state["dashboard_url"]).get_job_logs(sid)
        status = classify(ray_status, driver_exit_code=info.driver_exit_code,
                          error_type=None if info.error_type is None else str(getattr(info.error_type, "value",
                                                                                      info.error_type)),
                          cancel_requested=cancel_requested, message=info.message or "", logs=logs)
        return self._finish(handle.cluster_name, sid, status) if status.state.terminal else status

    def logs(self, handle: Handle, follow: bool = False) -> Iterator[str]:
        """The job's output lines from the Jobs API; after teardown, from the copy saved in the state dir."""
        state, live = self.states.find(handle.cluster_name)
        sid = handle.job_id or (latest_job(state.get("jobs", {})) if state else None)
        if sid is None:
            return iter(())
        saved = self.states.saved_log(sid)
        if state is None or not live or (state["mode"] == "head" and not head_alive(state)):
            return iter(saved.read_text(errors="replace").splitlines() if saved.exists() else ())
        client = self._client(state["dashboard_url"])
        if not follow:
            return iter(client.get_job_logs(sid).splitlines())
        return follow_logs(client, sid)

    def cancel(self, handle: Handle) -> None:
        """Ask Ray to stop the job (SIGTERM, then SIGKILL after stop_grace_s) and wait until it has stopped."""
        state, live = self.states.find(handle.cluster_name)
        if state is None or not live:
            return
        sids = [handle.job_id] if handle.job_id else list(state.get("jobs", {}))
        self._stop_jobs(handle.cluster_name, state, sids)

    def teardown(self, handle: Handle) -> None:
        """Stop the cluster's jobs; for a head gpuarb started, stop that head and leave none of its processes."""
        name = handle.cluster_name
        state, live = self.states.find(name)
        if state is None or not live:
            return
        if state["mode"] == "address":  # not ours to stop: only the jobs gpuarb submitted there
            self._stop_jobs(name, state, list(state.get("jobs", {})))
            with contextlib.suppress(Exception):
                self._save_logs(state)
        else:
            if head_alive(state):
                with contextlib.suppress(Exception):  # an unanswering API must not keep the head running
                    self._stop_jobs(name, state, list(state.get("jobs", {})))
                with contextlib.suppress(Exception):
                    self._save_logs(state)
            self.heads.stop(name, state)
        state, _ = self.states.find(name)
        if state is not None:
            self.states.archive(name, state)

    def clusters(self) -> list[ClusterInfo]:
        """Clusters with a state file: heads gpuarb started (UP, INIT, DOWN), attached ones (ATTACHED, UNREACHABLE)."""
        return [self._cluster_info(state) for state in self.states.live()]

    def not_running(self) -> str | None:
        """Never: the clusters are read from the state files here, and nothing is started to list them."""
        return None

    # -- attached clusters -----------------------------------------------------------------------------

    def _attach(self, name: str) -> dict[str, Any]:
        """State for an existing cluster: its resolved Jobs API URL; never starts anything."""
        assert self.address is not None
        state, live = self.states.find(name)
        if state is not None and live and state.get("mode") == "address":
            return state
        client = self._client(self.address)
        url = str(client.get_address())
        self._clients[url] = client
        state = {"name": name, "mode": "address", "address": self.address, "dashboard_url": url,
                 "started_at": self.clock().isoformat(), "jobs": {}}
        private_dir(self.state_dir, own=True)
        self.states.write(name, state)
        return state

    # -- jobs ------------------------------------------------------------------------------------------

    def _submission(self, req: LaunchRequest) -> dict[str, Any]:
        return submission(req, attached=self.address is not None, entrypoint_num_gpus=self.entrypoint_num_gpus)

    def _stop_jobs(self, name: str, state: Mapping[str, Any], sids: list[str]) -> None:
        """Record the cancel request, ask Ray to stop each job, and wait (bounded) until each is terminal."""
        pending = [s for s in sids if not state.get("jobs", {}).get(s, {}).get("final")]
        if not pending:
            return

        def mark(st: dict[str, Any]) -> None:
            for sid in pending:
                st.setdefault("jobs", {}).setdefault(sid, {})["cancel_requested"] = True
        self.states.update(name, mark)
        if state["mode"] == "head" and not head_alive(state):
            return  # nothing runs there any more; status() now reads CANCELLED
        client = self._client(state["dashboard_url"])
        for sid in pending:
            try:
                client.stop_job(sid)
            except Exception as exc:
                if not jobs_api.not_found(exc):
                    raise LaunchError(f"{name}: could not stop Ray job {sid}: {jobs_api.one_line(exc)}") from None
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
            self.states.update(name, record)
        return status

    def _unreachable(self, name: str, sid: str, state: Mapping[str, Any], exc: Exception) -> JobStatus:
        """The Jobs API does not answer: not terminal at first; an attached cluster lost for long is PREEMPTED."""
        now = self.clock()
        since_text = state.get("unreachable_since")
        if since_text is None:
            self.states.update(name, lambda st: st.__setitem__("unreachable_since", now.isoformat()))
            since = now
        else:
            since = datetime.fromisoformat(since_text)
        minutes = (now - since).total_seconds() / 60
        if state["mode"] == "address" and minutes >= _UNREACHABLE_PREEMPT_MINUTES:
            return self._finish(name, sid, JobStatus(JobState.PREEMPTED, message=(
                f"Ray cluster {state['dashboard_url']} unreachable for {minutes:.0f} min: {jobs_api.one_line(exc)}")))
        return JobStatus(JobState.RUNNING, message=f"Jobs API at {state['dashboard_url']} not answering "
                         f"for {minutes:.1f} min: {jobs_api.one_line(exc)}")

    def _save_logs(self, state: Mapping[str, Any]) -> None:
        """Copy each job's output into the state dir, so `gpuarb logs` works after teardown."""
        client = self._client(state["dashboard_url"])
        private_dir(self.state_dir / "logs", own=True)
        for sid in state.get("jobs", {}):
            with contextlib.suppress(Exception):
                write_private(self.states.saved_log(sid), client.get_job_logs(sid))

    def _client(self, address: str) -> Any:
        """A JobSubmissionClient per address, connected on first use."""
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = jobs_api.connect(address)
        return client

    # -- reap ------------------------------------------------------------------------------------------

    def _cluster_info(self, state: Mapping[str, Any]) -> ClusterInfo:
        """One state file as a ClusterInfo: alive or not, launched when, idle since when, latest job's state."""
        name = state["name"]
        launched = parse_time(state.get("started_at"))
        jobs = state.get("jobs", {})
        latest = latest_job(jobs)
        job_state = None
        if state["mode"] == "head" and not head_alive(state):
            word = "DOWN"
        elif state["mode"] == "head" and not state.get("ready_at"):
            word = "INIT"
        elif state["mode"] == "head":
            word = "UP" if jobs_api.api_answers(state["dashboard_url"]) else "INIT"
        else:
            word = "ATTACHED" if jobs_api.api_answers(state["dashboard_url"]) else "UNREACHABLE"
        if latest is not None and word in ("UP", "ATTACHED"):
            job_state = self.status(Handle(backend=self.name, cluster_name=name, job_id=latest)).state
        elif latest is not None and jobs[latest].get("final"):
            job_state = JobState(jobs[latest]["final"])
        idle = None
        if job_state is None or job_state.terminal:
            ended = [parse_time(j.get("ended_at")) for j in jobs.values()]
            last = max([t for t in ended if t is not None], default=None) or launched
            if last is not None:
                idle = max(0.0, (self.clock() - last).total_seconds() / 60)
        else:
            idle = 0.0
        return ClusterInfo(name=name, backend=self.name, status=word, launched_at=launched, idle_minutes=idle,
                           job_state=job_state)

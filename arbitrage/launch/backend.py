"""The Backend protocol: what `gpuarb run` needs from a place that runs jobs (SkyPilot clouds, local Ray).

The runner (arbitrage/launch/runner.py) owns the lifecycle: failover, budget breaker, restarts, ledger.
A backend only launches, reports state, streams logs, cancels and tears down; it never decides.
All calls are synchronous and may block (a cloud launch takes minutes); the runner polls ``status``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO, runtime_checkable

from arbitrage.errors import BackendUnavailable, CapacityError, LaunchError

if TYPE_CHECKING:
    from arbitrage.costmodel import CostBreakdown, Placement
    from arbitrage.jobspec import JobSpec

__all__ = ["BackendUnavailable", "CapacityError", "LaunchError"]  # defined in arbitrage.errors

# Every cluster gpuarb launches is named with this prefix, so `gpuarb reap` can find its own and no one else's.
CLUSTER_PREFIX = "gpuarb-"

# The environment a job sees (documented in the README; the example training script reads them).
ENV_RUN_ID = "GPUARB_RUN_ID"
ENV_ATTEMPT = "GPUARB_ATTEMPT"
ENV_CHECKPOINT_DIR = "GPUARB_CHECKPOINT_DIR"
ENV_CHECKPOINT_INTERVAL = "GPUARB_CHECKPOINT_INTERVAL_SECONDS"
ENV_RESUME = "GPUARB_RESUME"  # "1" when an earlier attempt of the same run may have left a checkpoint
# A file the job appends JSON lines of work done to, e.g. {"tokens": 123456} (arbitrage.units.parse_metrics). It
# lives in the checkpoint directory, so it survives restarts; the runner reads it back after each attempt.
ENV_METRICS = "GPUARB_METRICS"
METRICS_FILE = "gpuarb-metrics.jsonl"

# Where checkpoints appear inside a cloud cluster (SkyPilot file_mounts / storage mount target).
CLUSTER_CHECKPOINT_PATH = "/gpuarb/checkpoints"


class JobState(str, Enum):
    """Where a launched job is, as far as the backend can tell."""

    PENDING = "pending"  # submitted; provisioning or queued
    RUNNING = "running"
    RECOVERING = "recovering"  # preempted; the backend itself is restarting it (SkyPilot managed jobs)
    PREEMPTED = "preempted"  # stopped from outside the job (spot reclaim, node loss, kill signal); not restarted
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the job's own failure (non-zero exit), or the backend gave up
    CANCELLED = "cancelled"  # stopped on request (gpuarb down, budget breaker)

    @property
    def terminal(self) -> bool:
        """True when nothing more will happen to this job without a new launch."""
        return self in (JobState.PREEMPTED, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class CheckpointPlan:
    """Where a run's checkpoints persist (``uri``) and where the job sees them (``mount_path``)."""

    uri: str  # s3://, gs://, az://, r2://, file:///abs/path or /abs/path
    mount_path: str  # the directory exported as GPUARB_CHECKPOINT_DIR
    interval_minutes: float


@dataclass(frozen=True)
class LaunchRequest:
    """One launch attempt of a run on one placement."""

    run_id: str
    attempt: int  # 1-based; the ledger records each
    cluster_name: str  # CLUSTER_PREFIX + run id (+ attempt suffix where a backend needs unique names)
    spec: JobSpec
    placement: Placement
    checkpoint: CheckpointPlan | None
    envs: Mapping[str, str] = field(default_factory=dict)  # extra variables, merged last (over GPUARB_*)
    resume: bool = False  # an earlier attempt ran: the job should resume from its last checkpoint
    idle_minutes_to_autostop: int = 30  # second line of defence for on-demand clusters


def gpuarb_envs(req: LaunchRequest) -> dict[str, str]:
    """The GPUARB_* variables every backend gives a job, all derived from the request."""
    envs = {ENV_RUN_ID: req.run_id, ENV_ATTEMPT: str(req.attempt), ENV_RESUME: "1" if req.resume else "0"}
    if req.checkpoint is not None:
        envs[ENV_CHECKPOINT_DIR] = req.checkpoint.mount_path
        envs[ENV_CHECKPOINT_INTERVAL] = str(int(req.checkpoint.interval_minutes * 60))
        envs[ENV_METRICS] = metrics_path(req.checkpoint)
    return envs


def metrics_path(checkpoint: CheckpointPlan) -> str:
    """Where the job sees its GPUARB_METRICS file: in its checkpoint directory (on the cluster, or local)."""
    return f"{checkpoint.mount_path.rstrip('/')}/{METRICS_FILE}"


def owned_provider(provider: str) -> bool:
    """Whether a provider is capacity the user owns (its card has the ``owned`` tier, e.g. onprem)."""
    from providers.registry import find

    info = find(provider)
    return info is not None and info.tier == "owned"


def owned_capacity(placement: Placement) -> bool:
    """Whether a placement is capacity the user owns (`owned_provider` of its offer's provider)."""
    return owned_provider(placement.offer.provider)


@dataclass(frozen=True)
class Handle:
    """What a launch left behind; enough to find the job again from another process (stored in the ledger)."""

    backend: str
    cluster_name: str
    job_id: str | None = None
    managed: bool = False  # a SkyPilot managed job (its controller restarts it after preemption)
    detail: Mapping[str, str] = field(default_factory=dict)  # JSON-serialisable backend specifics

    def to_dict(self) -> dict[str, Any]:
        """The JSON object the ledger stores with an attempt (keys as every existing ledger has them)."""
        return {"backend": self.backend, "cluster_name": self.cluster_name, "job_id": self.job_id,
                "managed": self.managed, "detail": dict(self.detail)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Handle:
        """A Handle back from its stored JSON object, for status/logs/down from another process."""
        job_id = data.get("job_id")
        return cls(backend=str(data["backend"]), cluster_name=str(data["cluster_name"]),
                   job_id=None if job_id is None else str(job_id), managed=bool(data.get("managed")),
                   detail=dict(data.get("detail") or {}))


@dataclass(frozen=True)
class JobStatus:
    """A job's state, with how many preemption recoveries the backend has done and a one-line message."""

    state: JobState
    restarts: int = 0
    message: str = ""


@dataclass(frozen=True)
class ClusterInfo:
    """A cluster gpuarb launched, as the backend sees it now (for `gpuarb reap`)."""

    name: str
    backend: str
    status: str  # the backend's word: UP, INIT, STOPPED...
    launched_at: datetime | None = None
    idle_minutes: float | None = None  # minutes since the cluster last ran a job, when known
    job_state: JobState | None = None


@dataclass(frozen=True)
class BackendOptions:
    """What gpuarb tells a backend it makes (from the command line); each backend takes what applies to it."""

    data_dir: Path  # gpuarb's data directory; a backend keeps any state of its own in a subdirectory
    address: str | None = None  # an existing cluster to run on (--ray-address); a backend without one refuses it
    progress: TextIO | None = None  # where launch progress is streamed (stderr in the CLI); None: wait silently


@runtime_checkable
class Backend(Protocol):
    """A place that runs jobs; the registry (backends.py) names them. Implementations: skypilot_backend.py,
    ray/ (local Ray), fake.py (scripted, for tests).

    The capability flags say what the runner and `gpuarb run` may assume, so no code asks for a backend's name.
    """

    name: str
    # True: each placement runs where the plan put it (a cloud), so failover moves between placements. False:
    # every job runs on the backend's own machines (this one, or a cluster it attaches to), so a run takes one
    # placement, owned capacity when the plan has it, else a rehearsal of #1, accounted at that price.
    pins_placement: bool
    # True: checkpoints go to a directory on this machine (the spec's own, or one per run under gpuarb's data
    # dir); False: to the spec's bucket, mounted at CLUSTER_CHECKPOINT_PATH on the cluster.
    local_checkpoints: bool

    @classmethod
    def from_options(cls, options: BackendOptions) -> Backend:
        """Make one from the command line's options; raise UsageError for an option it cannot use."""

    def launch_key(self, placement: Placement) -> Hashable | None:
        """What a launch of ``placement`` really pins: placements with equal keys are one launch to this backend
        (failover skips repeats); None means the backend cannot launch that placement at all."""

    def accounting_note(self, cost: CostBreakdown) -> str | None:
        """One line `gpuarb run` says before launching ``cost``'s placement when the run is not what the plan
        priced (a rehearsal on this machine, owned capacity); None when it is."""

    def accounted(self, row: dict[str, Any]) -> dict[str, Any]:
        """The ledger's placement row (``runner.placement_row``) as this backend's launch of it is accounted:
        unchanged where it rents what the plan priced; a rehearsal that rents nothing is booked at $0 under the
        provider ``local`` (billing.LOCAL_PROVIDER), never as the cloud's spend."""

    def check(self) -> None:
        """Raise BackendUnavailable with a one-line reason when this backend cannot run here."""

    def render(self, req: LaunchRequest) -> str:
        """The exact task this backend would launch for ``req`` (YAML for SkyPilot), for `--dry-run`."""

    def launch(self, req: LaunchRequest) -> Handle:
        """Start the job; raise CapacityError to fail over, LaunchError for anything else."""

    def status(self, handle: Handle) -> JobStatus:
        """The job's state now; never raises for a job that vanished (report FAILED or CANCELLED instead)."""

    def logs(self, handle: Handle, follow: bool = False) -> Iterator[str]:
        """The job's output lines; with ``follow`` keep yielding until the job ends."""

    def cancel(self, handle: Handle) -> None:
        """Stop the job (idempotent); the cluster may stay up until ``teardown``."""

    def teardown(self, handle: Handle) -> None:
        """Delete the cluster and everything billed with it (idempotent; no error if already gone)."""

    def clusters(self) -> list[ClusterInfo]:
        """Clusters this backend knows whose names start with CLUSTER_PREFIX."""

    def not_running(self) -> str | None:
        """Why ``clusters()`` would have to start something to answer (SkyPilot's local API server is down), in one
        line; None when it can answer as things are. `gpuarb reap` skips a backend that is not running rather than
        start a server it would leave behind."""

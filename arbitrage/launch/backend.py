"""The Backend protocol: what `gpuarb run` needs from a place that runs jobs (SkyPilot clouds, local Ray).

The runner (arbitrage/launch/runner.py) owns the lifecycle: failover, budget breaker, restarts, ledger.
A backend only launches, reports state, streams logs, cancels and tears down; it never decides.
All calls are synchronous and may block (a cloud launch takes minutes); the runner polls ``status``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from arbitrage.errors import GpuarbError

if TYPE_CHECKING:
    from arbitrage.costmodel import Placement
    from arbitrage.jobspec import JobSpec

# Every cluster gpuarb launches is named with this prefix, so `gpuarb reap` can find its own and no one else's.
CLUSTER_PREFIX = "gpuarb-"

# The environment a job sees (documented in the README; the example training script reads them).
ENV_RUN_ID = "GPUARB_RUN_ID"
ENV_ATTEMPT = "GPUARB_ATTEMPT"
ENV_CHECKPOINT_DIR = "GPUARB_CHECKPOINT_DIR"
ENV_CHECKPOINT_INTERVAL = "GPUARB_CHECKPOINT_INTERVAL_SECONDS"
ENV_RESUME = "GPUARB_RESUME"  # "1" when an earlier attempt of the same run may have left a checkpoint

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
    return envs


@dataclass(frozen=True)
class Handle:
    """What a launch left behind; enough to find the job again from another process (stored in the ledger)."""

    backend: str
    cluster_name: str
    job_id: str | None = None
    managed: bool = False  # a SkyPilot managed job (its controller restarts it after preemption)
    detail: Mapping[str, str] = field(default_factory=dict)  # JSON-serialisable backend specifics


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


class LaunchError(GpuarbError):
    """A launch failed; the message is one line naming the placement and the backend's reason."""


class CapacityError(LaunchError):
    """No capacity, quota or resource unavailable for this placement: the runner fails over to the next one."""


class BackendUnavailable(GpuarbError):
    """The backend cannot be used here (package not installed, server unreachable); one-line reason."""


@runtime_checkable
class Backend(Protocol):
    """A place that runs jobs. Implementations: skypilot_backend.SkyPilotBackend, ray_backend.RayBackend."""

    name: str

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


# Optional on a backend: ``launch_key(placement) -> Hashable | None``. Placements with equal keys are one launch
# to this backend (failover skips repeats); None means the backend cannot launch that placement at all.

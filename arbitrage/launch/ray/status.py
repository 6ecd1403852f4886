"""What a Ray job's end means (pure): its Jobs API status, driver exit code and error type -> a JobStatus.

- SUCCEEDED -> SUCCEEDED.
- STOPPED -> CANCELLED when gpuarb asked for the stop (``cancel``/``teardown`` record it first), else PREEMPTED
  (someone ran ``ray job stop``, or the node drained it).
- FAILED with the driver killed by a signal -> PREEMPTED: exit code -N (the entrypoint process itself got signal N)
  or 128+N (its shell reports a child killed by N), for N in SIGKILL, SIGTERM, SIGINT, SIGHUP. A graceful
  preemption that checkpoints on SIGTERM should exit 143, as examples/train.py does.
- FAILED because the job's supervisor actor died (its worker or node went away) -> PREEMPTED.
- Any other FAILED (a non-zero exit of the job's own, e.g. 1 or 3; a crash by SIGSEGV/SIGABRT; a failed
  runtime env) -> FAILED. Again CANCELLED instead when gpuarb had asked for the stop.
- The head's processes gone while gpuarb did not tear it down -> PREEMPTED (decided in backend.py: the machine or
  the head died).
"""

from __future__ import annotations

import signal

from arbitrage.launch.backend import JobState, JobStatus

# Signals that mean "stopped from outside" when they end a job's driver.
PREEMPTION_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
# Ray error types that mean the job's process host went away, not that the job failed.
_LOST_ERROR_TYPES = frozenset({"JOB_SUPERVISOR_ACTOR_DIED"})
_RAY_STATES = {"PENDING": JobState.PENDING, "RUNNING": JobState.RUNNING, "SUCCEEDED": JobState.SUCCEEDED}


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

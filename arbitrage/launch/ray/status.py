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

A failure's message carries the job's last meaningful output (``log_excerpt``): Ray puts the job's last log lines
in its FAILED message ("... last available logs (truncated to 20,000 chars):" then the lines; ray 2.x
dashboard/modules/job/job_supervisor.py), and when it has none the backend passes the job's logs it read itself.
So `gpuarb run` says "ModuleNotFoundError: No module named 'torch'", not just "exit code 1".
"""

from __future__ import annotations

import re
import signal

from arbitrage.launch.backend import JobState, JobStatus

# Signals that mean "stopped from outside" when they end a job's driver.
PREEMPTION_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
# Ray error types that mean the job's process host went away, not that the job failed.
_LOST_ERROR_TYPES = frozenset({"JOB_SUPERVISOR_ACTOR_DIED"})
_RAY_STATES = {"PENDING": JobState.PENDING, "RUNNING": JobState.RUNNING, "SUCCEEDED": JobState.SUCCEEDED}
# Ray's FAILED message: a head line (ending "last available logs (...):" when the job's log tail follows).
_LOG_TAIL_HEAD = re.compile(r"^(?P<head>Job entrypoint command failed with exit code -?\d+), last available logs"
                            r"[^\n]*:[ \t]*$", re.MULTILINE)
_NO_LOGS = re.compile(r"^(?P<head>Job entrypoint command failed with exit code -?\d+)\. No logs available\.")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# A Python exception line: `ModuleNotFoundError: No module named 'torch'`, `KeyboardInterrupt`, `a.b.CustomError: x`.
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failure|Fault|Warning)(?::\s.*)?$")
_FRAME = re.compile(r'^\s+File "(?P<file>[^"]+)", line (?P<line>\d+)')
# Lines Ray itself writes into a job's log (its job manager's log records, the entrypoint it runs): not the job's.
_RAY_LINE = re.compile(r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+(?:DEBUG|INFO|WARNING|ERROR)\s+\S+:\d+ -- "
                       r"|Running entrypoint for job )")
EXCERPT_CHARS = 300  # a failure message stays one readable line
EXCERPT_LINES = 3  # without an exception, the last this many output lines


def log_excerpt(text: str) -> str:
    """The last meaningful output of a job, as one line ('' when it printed nothing).

    A Python exception among the last lines is shown with where it was raised (`ModuleNotFoundError: No module
    named 'torch' (at /src/train.py line 118)`); otherwise the last EXCERPT_LINES non-blank lines, joined by ' | '.
    Ray's own lines (its job manager's log records, "Running entrypoint for job ...") and colour codes are dropped,
    and the line is cut at EXCERPT_CHARS.
    """
    lines = [line.rstrip() for line in _ANSI.sub("", text or "").splitlines()]
    lines = [line for line in lines if line.strip() and line.strip("^~ ") and not _RAY_LINE.match(line)]
    if not lines:
        return ""
    tail = lines[-EXCERPT_LINES:]
    exceptions = [i for i, line in enumerate(lines) if i >= len(lines) - EXCERPT_LINES and _EXCEPTION.match(line)]
    if exceptions:
        i = exceptions[-1]
        frames = [m for m in (_FRAME.match(line) for line in lines[:i]) if m]
        where = f" (at {frames[-1]['file']} line {frames[-1]['line']})" if frames else ""
        shown = lines[i] + where
    else:
        shown = " | ".join(line.strip() for line in tail)
    return shown if len(shown) <= EXCERPT_CHARS else shown[: EXCERPT_CHARS - 3] + "..."


def failure_message(message: str, logs: str | None = None) -> str | None:
    """One line for a FAILED job from Ray's message and, when Ray's has no log tail, the job's ``logs``: Ray's head
    line and the job's last meaningful output. None when the message is not Ray's entrypoint failure (or nothing
    meaningful was printed): the caller keeps the message's first line."""
    text = (message or "").strip("\n")
    found = _LOG_TAIL_HEAD.search(text)
    if found is not None:
        excerpt = log_excerpt(text[found.end():])
        if excerpt:
            return f"{found['head']}: {excerpt}"
        return f"{found['head']} (no output)"
    found = _NO_LOGS.match(text.strip())
    if found is not None:
        excerpt = log_excerpt(logs or "")
        return f"{found['head']}: {excerpt}" if excerpt else f"{found['head']} (no output)"
    return None


def has_log_tail(message: str) -> bool:
    """Whether Ray's FAILED message carries the job's last log lines (else the backend may read them itself)."""
    return _LOG_TAIL_HEAD.search(message or "") is not None


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
             cancel_requested: bool = False, message: str = "", logs: str | None = None) -> JobStatus:
    """Map a Ray job's status to a JobState, telling preemption (from outside) from the job's own failure.

    A failure's message is one line with the job's last meaningful output: from Ray's message, else from ``logs``
    (the job's output, when the backend could read it)."""
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
        failed = failure_message(message, logs)
        if failed is None and first_line.startswith("Traceback"):  # Ray's own error: its exception line
            failed = log_excerpt(message)
        if failed is None and not first_line and logs:
            failed = f"failed (exit code {driver_exit_code}): {log_excerpt(logs)}"
        return JobStatus(JobState.FAILED, message=failed or first_line or f"failed (exit code {driver_exit_code})")
    return JobStatus(JobState.FAILED, message=f"unknown Ray job status {ray_status!r}")

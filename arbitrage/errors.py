"""Errors the CLI turns into one line and an exit code; nothing else should escape to the user."""

from __future__ import annotations

# Exit codes are part of the public interface (README, CI pipelines rely on them).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INVALID_SPEC = 2
EXIT_NOTHING_FEASIBLE = 3
EXIT_OVER_BUDGET = 4


class GpuarbError(Exception):
    """A user-facing failure: the message is printed as one line, the exit code returned."""

    exit_code = EXIT_ERROR


class SpecError(GpuarbError):
    """A job spec that cannot be read or is invalid; the message names file, line and field."""

    exit_code = EXIT_INVALID_SPEC


class DataError(GpuarbError):
    """A bundled or user-supplied data file (catalog, fact table) that is malformed."""

    exit_code = EXIT_ERROR

# `gpuarb run` also ends with: 4 when the budget breaker stopped the run, 5 when the job failed (or gave up
# after max restarts), 3 when no placement had capacity, 130 when interrupted.
EXIT_JOB_FAILED = 5
EXIT_INTERRUPTED = 130

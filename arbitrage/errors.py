"""Every error gpuarb shows a user, as one tree; each class carries the process exit code it ends with.

The CLI's one guard (arbitrage/cli/common.py) prints each line of ``str(error)`` as ``gpuarb: error: LINE`` (an
outcome such as NothingFeasible, whose ``label`` is empty, as ``gpuarb: LINE``; an empty message prints nothing)
and exits with ``error.exit_code``. Nothing else in the code writes a literal exit code.

    GpuarbError (1)
    ├── UsageError (2)            a command-line option or environment variable that cannot be used
    │   └── SpecError (2)         a job spec that cannot be read or is invalid: file, line and field
    ├── NothingFeasible (3)       every candidate was rejected, no offer matched, or no placement had capacity
    ├── OverBudget (4)            the best plan is over budget, or the budget breaker stopped the run
    ├── JobFailed (5)             the job's own failure, a launch error, or more restarts than allowed
    ├── PolicyFailed (6)          `gpuarb diff`: the cost change is over a --fail-above-* threshold
    ├── SourceUnavailable (7)     --strict: a provider's live (or cached) prices could not be used; names each, and why
    ├── AuthError (8)             the team server refused the token (missing, malformed, unknown, expired, revoked)
    │   └── Forbidden (8)         the token is good but its role or team may not do this
    ├── Interrupted (130)         Ctrl-C / SIGTERM
    ├── Cancelled (1)             a run stopped by `gpuarb down`
    ├── DataError (1)             a bundled or user data file (catalog, fact table, config) is malformed
    ├── ProviderError (1)         a provider's API failed or answered something unusable (one line, names it)
    │   ├── NoCapacity            the provider answered: nothing can be bought now
    │   └── MissingCredentials    no credentials where the provider's SDK/docs say to look
    ├── LaunchError (1)           a launch failed; names the placement and the backend's reason
    │   └── CapacityError         no capacity or quota for this placement: the runner fails over
    ├── BackendUnavailable (1)    the backend cannot be used here (package missing, server unreachable)
    └── LedgerError (1)           the run ledger cannot be opened or is from a newer gpuarb
"""

from __future__ import annotations

# Exit codes are part of the public interface (README, CI pipelines rely on them).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INVALID_SPEC = 2
EXIT_NOTHING_FEASIBLE = 3
EXIT_OVER_BUDGET = 4
EXIT_JOB_FAILED = 5
EXIT_POLICY_FAILED = 6
EXIT_SOURCE_UNAVAILABLE = 7
EXIT_AUTH = 8
EXIT_INTERRUPTED = 130


class GpuarbError(Exception):
    """A user-facing failure: the message is printed as one line, the exit code returned."""

    exit_code = EXIT_ERROR
    label = "error"  # how the CLI heads its message lines; "" for outcomes that are not faults


class UsageError(GpuarbError):
    """A command-line option, argument or environment variable that cannot be used; names the option."""

    exit_code = EXIT_USAGE


class SpecError(UsageError):
    """A job spec that cannot be read or is invalid; the message names file, line and field."""

    exit_code = EXIT_INVALID_SPEC


class NothingFeasible(GpuarbError):
    """Nothing to offer: every candidate rejected, no offer matching the filters, or no capacity anywhere."""

    exit_code = EXIT_NOTHING_FEASIBLE
    label = ""


class OverBudget(GpuarbError):
    """The best plan is over the job's budget, or the budget breaker stopped the run."""

    exit_code = EXIT_OVER_BUDGET
    label = ""


class JobFailed(GpuarbError):
    """`gpuarb run`: the job failed (its own exit, a launch error, or more preemptions than allowed)."""

    exit_code = EXIT_JOB_FAILED
    label = ""


class PolicyFailed(GpuarbError):
    """`gpuarb diff`: the change in expected cost breaks a --fail-above-usd / --fail-above-percent policy."""

    exit_code = EXIT_POLICY_FAILED
    label = ""


class SourceUnavailable(GpuarbError):
    """--strict: a price source the command was told to use (live, cache, or auto's fresh cache or live fetch) could
    not be used for one or more providers; one line naming every one of them and why."""

    exit_code = EXIT_SOURCE_UNAVAILABLE


class Interrupted(GpuarbError):
    """Ctrl-C or SIGTERM."""

    exit_code = EXIT_INTERRUPTED
    label = ""


class Cancelled(GpuarbError):
    """A run that was stopped on request (`gpuarb down`) before it finished."""

    exit_code = EXIT_ERROR
    label = ""


class DataError(GpuarbError):
    """A bundled or user-supplied data file (catalog, fact table) that is malformed."""

    exit_code = EXIT_ERROR


class ProviderError(GpuarbError):
    """A provider's API failed or answered something unusable; the message is one line."""

    exit_code = EXIT_ERROR

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message


class NoCapacity(ProviderError):
    """The provider answered, and nothing can be bought now (sold out everywhere): a real, empty answer."""


class MissingCredentials(ProviderError):
    """No credentials were found where the provider's SDK/docs say to look; the provider is skipped."""


class LaunchError(GpuarbError):
    """A launch failed; the message is one line naming the placement and the backend's reason."""

    exit_code = EXIT_ERROR


class CapacityError(LaunchError):
    """No capacity, quota or resource unavailable for this placement: the runner fails over to the next one."""


class BackendUnavailable(GpuarbError):
    """The backend cannot be used here (package not installed, server unreachable); one-line reason."""

    exit_code = EXIT_ERROR


class AuthError(GpuarbError):
    """The team server refused the request's token: missing, malformed, unknown, expired, revoked, or its account
    disabled. What a client sees never says which (``reason`` is for the audit log only)."""

    exit_code = EXIT_AUTH

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class Forbidden(AuthError):
    """A valid token whose role may not do this, or a run of another team (which is reported as not found)."""


class LedgerError(GpuarbError):
    """The ledger file cannot be opened or is from a newer gpuarb; one line naming the file."""

    exit_code = EXIT_ERROR

"""Run states and ledger event kinds: the two closed vocabularies of a run's life, as enums.

Both are ``str`` enums whose values are the strings the run ledger stores (and `gpuarb status`/`history` print),
so a member compares, hashes, formats and serializes exactly like its value: ``RunState.SUCCEEDED == "succeeded"``
and ``f"{RunState.NO_CAPACITY}"`` is ``"no-capacity"``.
"""

from __future__ import annotations

from enum import Enum


class _Text(str, Enum):
    """A str enum that prints as its value everywhere (str(), format(), f-strings), as StrEnum does on 3.11+."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str(self), spec)


class RunState(_Text):
    """Where a run is. Terminal states never change again; the others mean a supervisor should be watching."""

    PLANNED = "planned"
    LAUNCHING = "launching"
    RUNNING = "running"
    RECOVERING = "recovering"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NO_CAPACITY = "no-capacity"
    BUDGET_STOPPED = "budget-stopped"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the supervisor stopped (Ctrl-C, crash) and the cluster was torn down

    @property
    def terminal(self) -> bool:
        """True when a run in this state will never change again."""
        return self in TERMINAL


TERMINAL: frozenset[RunState] = frozenset({
    RunState.SUCCEEDED, RunState.FAILED, RunState.NO_CAPACITY, RunState.BUDGET_STOPPED, RunState.CANCELLED,
    RunState.INTERRUPTED,
})


class EventKind(_Text):
    """What happened to a run, one ledger event each (the names the issue gives them)."""

    PLANNED = "planned"
    LAUNCHED = "launched"
    LAUNCH_FAILED = "launch-failed"
    FAILED_OVER = "failed-over"
    PREEMPTED = "preempted"
    RESUMED = "resumed"
    BUDGET_STOPPED = "budget-stopped"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TORN_DOWN = "torn-down"
    INTERRUPTED = "interrupted"
    NOTE = "note"

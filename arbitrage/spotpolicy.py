"""Deadline-aware spot policy: where a job stands -> run on spot, run on on-demand, or wait. Pure, clock-free.

The caller (the launcher, or ``bench/spot_sim.py``) passes plain numbers in a `SpotState` and consults `decide`
whenever spot availability changes (a preemption, capacity coming back), when a changeover finishes, and at least
every ``decision_interval_hours``. It never reads a clock: elapsed time is ``total_hours - hours_to_deadline``.

The idea is Uniform Progress (Wu et al., "Can't Be Late", NSDI 2024): use spot whenever it is available and safe,
run on-demand only when progress falls behind the straight line from start to deadline. Changed for real jobs:
the work a preemption destroys (at most one checkpoint interval) is part of every safety margin, a job that is ahead of
the line switches back to spot at once (no 2d hysteresis: on the public traces it only delayed the switch), and the
line starts a tenth of the slack late.

Safety rule (why the deadline is met)
-------------------------------------
Let slack = hours_to_deadline - remaining_work_hours: the hours the job can still spend making no progress.
Falling back to on-demand costs one changeover d and is never interrupted, so the job still finishes in time
whenever it switches to on-demand with slack >= d. Progress on either instance lowers both numbers together, so
slack only shrinks while the job waits, changes over, or loses work to a preemption, and the policy guards each:

- wait only while slack >= d + Δ (the next decision comes within Δ = decision_interval_hours);
- keep a spot instance only while slack >= d + I + Δ + the rest of its changeover (a preemption destroys at most
  one checkpoint interval I of work and is noticed within Δ);
- start spot only while slack >= 2d + I + Δ (its own changeover comes first).

When none of these holds it picks on-demand, with slack >= d left, and stays there. A job that starts with
slack < d cannot be saved by any policy; `decide` then runs on-demand as the best effort.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["spot", "on_demand", "wait"]


@dataclass(frozen=True, slots=True)
class SpotState:
    """Where a job stands at a decision point, in hours; the caller fills it from its own records."""

    remaining_work_hours: float  # C(t): work left; progress since the last checkpoint counts as done
    hours_to_deadline: float  # R(t)
    total_work_hours: float  # C(0)
    total_hours: float  # R(0): the deadline measured from the job's start
    changeover_hours: float  # d: launch + setup + checkpoint restore before a new instance makes progress
    spot_available: bool  # whether a spot instance (all nodes of one) can be had now
    mode: Mode  # what the job holds now; after a preemption the caller passes "wait"
    checkpoint_interval_hours: float  # I: the most work a preemption can destroy
    changeover_left_hours: float = 0.0  # of the current instance's changeover, still to go
    decision_interval_hours: float = 0.0  # Δ: longest time until the policy is consulted again

    @property
    def slack_hours(self) -> float:
        """Hours the job can still spend without progress and meet the deadline."""
        return self.hours_to_deadline - self.remaining_work_hours

    @property
    def progress_hours(self) -> float:
        """Work done so far, cp(t)."""
        return self.total_work_hours - self.remaining_work_hours

    def expected_progress_hours(self, ahead_hours: float = 0.0) -> float:
        """Where the uniform-progress line ep(t + ahead) is: C(0) x elapsed / R(0)."""
        if self.total_hours <= 0:
            return self.total_work_hours
        elapsed = self.total_hours - self.hours_to_deadline + ahead_hours
        return self.total_work_hours * min(1.0, max(0.0, elapsed / self.total_hours))


def start_spot_margin_hours(state: SpotState) -> float:
    """Slack needed to start a spot instance and still be able to fall back to on-demand (2d + I + Δ)."""
    return 2 * state.changeover_hours + state.checkpoint_interval_hours + state.decision_interval_hours


def keep_spot_margin_hours(state: SpotState) -> float:
    """Slack needed to keep the current spot instance (d + I + Δ + the rest of its changeover)."""
    return (state.changeover_hours + state.checkpoint_interval_hours + state.decision_interval_hours
            + state.changeover_left_hours)


def wait_margin_hours(state: SpotState) -> float:
    """Slack needed to wait until the next decision (d + Δ)."""
    return state.changeover_hours + state.decision_interval_hours


@dataclass(frozen=True, slots=True)
class SpotPolicy:
    """Uniform progress with a safety net; the knobs are data, so a caller can draw them at random.

    ``lead_share``: the uniform-progress line starts that share of the initial slack late, so the job waits a
    little longer for spot before catching up on on-demand. ``hysteresis_hours``: how far ahead of the line the
    job must be before it leaves on-demand for spot (the paper uses 2d). The defaults were chosen on the public
    AWS traces (see BENCHMARKS.md); no knob affects the safety rule.
    """

    lead_share: float = 0.1
    hysteresis_hours: float = 0.0

    def _line(self, state: SpotState, ahead_hours: float = 0.0) -> float:
        lead = self.lead_share * max(0.0, state.total_hours - state.total_work_hours)
        return state.expected_progress_hours(ahead_hours - lead)

    def decide(self, state: SpotState) -> Mode:
        """Spot, on-demand or wait for the job in ``state``; never trades the deadline for a saving."""
        if state.remaining_work_hours <= 0:
            return "wait"  # done: hold nothing
        slack = state.slack_hours
        can_start_spot = state.spot_available and slack >= start_spot_margin_hours(state)
        if state.mode == "spot" and state.spot_available:
            # Exploitation: progress on spot is the cheapest there is; keep it while a preemption stays survivable.
            return "spot" if slack >= keep_spot_margin_hours(state) else "on_demand"
        if state.mode == "on_demand":
            ahead = state.progress_hours >= self._line(state, self.hysteresis_hours)
            return "spot" if ahead and can_start_spot else "on_demand"
        # Idle (or just preempted).
        if can_start_spot:
            return "spot"  # taking risks: spot whenever it is available and safe
        if slack < start_spot_margin_hours(state):  # >= wait_margin_hours, so waiting below it is never allowed
            return "on_demand"  # safety net: spot can no longer be used safely, so waiting only burns slack
        return "on_demand" if state.progress_hours < self._line(state) else "wait"


DEFAULT_POLICY = SpotPolicy()


def decide(state: SpotState) -> Mode:
    """gpuarb's spot policy with its default knobs (see the module docstring for the safety rule)."""
    return DEFAULT_POLICY.decide(state)


def randomized_policy(u: float, max_lead_share: float = 0.2) -> SpotPolicy:
    """The policy with its line's lead drawn uniformly from [0, max_lead_share) of the slack; ``u`` in [0, 1).

    Randomizing the switching point is how a policy bounds its worst case against any availability pattern
    (the randomized shifted greedy of "Can't Be Late", section 4.1); the draw is the caller's, this stays pure.
    """
    if not 0 <= u < 1:
        raise ValueError(f"u must be in [0, 1), got {u}")
    return SpotPolicy(lead_share=u * max_lead_share)

"""Spot with deadlines: a discrete-event simulator replaying spot availability traces against switching policies.

A job needs ``work_hours`` of progress before ``deadline_hours``. Each new instance (spot or on-demand) first spends
``changeover_hours`` (billed, no progress); progress is checkpointed every ``checkpoint_interval_hours`` and a
preemption destroys what was done since the last checkpoint. Leaving an instance on purpose checkpoints first.
Events are availability changes in the trace, changeover ends, checkpoints, the job's end and a policy poll every
``decision_interval_hours``; the policy (a function of `arbitrage.spotpolicy.SpotState`) is consulted at each.
Past the end of a trace spot is unavailable.
"""

from __future__ import annotations

import bisect
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from arbitrage.spotpolicy import Mode, SpotState

TRACES = Path(__file__).resolve().parent / "traces" / "aws-gpu-spot-traces.json"
Policy = Callable[[SpotState], Mode]
_EPS = 1e-9


# -- traces ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Trace:
    """Spot availability as a step function: ``available[i]`` holds from ``starts_hours[i]`` to the next start."""

    name: str
    source: str
    starts_hours: tuple[float, ...]
    available: tuple[bool, ...]
    end_hours: float

    def __post_init__(self) -> None:
        if len(self.starts_hours) != len(self.available) or not self.starts_hours or self.starts_hours[0] != 0:
            raise ValueError(f"trace {self.name}: starts must begin at 0 and match the states")

    def state_at(self, t: float) -> bool:
        """Whether spot is available at hour ``t`` (never past the end)."""
        if t >= self.end_hours or t < 0:
            return False
        return self.available[bisect.bisect_right(self.starts_hours, t) - 1]

    def next_change_after(self, t: float) -> float:
        """The first hour after ``t`` at which availability may change (the end counts), else inf."""
        i = bisect.bisect_right(self.starts_hours, t)
        if i < len(self.starts_hours):
            return self.starts_hours[i]
        return self.end_hours if t < self.end_hours else math.inf

    def available_fraction(self, start: float = 0.0, end: float | None = None) -> float:
        """Share of hours in [start, end) with spot available."""
        end = self.end_hours if end is None else min(end, self.end_hours)
        if end <= start:
            return 0.0
        up, t = 0.0, start
        while t < end:
            nxt = min(self.next_change_after(t), end)
            if self.state_at(t):
                up += nxt - t
            t = nxt
        return up / (end - start)

    def window(self, start: float, length: float) -> Trace:
        """The part of the trace from ``start`` for ``length`` hours, re-based to hour 0."""
        end = min(self.end_hours, start + length)
        i = max(0, bisect.bisect_right(self.starts_hours, start) - 1)
        j = bisect.bisect_left(self.starts_hours, end)
        starts = [0.0] + [s - start for s in self.starts_hours[i + 1:j]]
        return Trace(f"{self.name}@{start:.1f}h", self.source, tuple(starts), self.available[i:j],
                     max(0.0, end - start))

    def runs_hours(self) -> tuple[list[float], list[float]]:
        """(lengths of available runs, lengths of unavailable gaps) in hours, the last one cut at the end."""
        up: list[float] = []
        down: list[float] = []
        for k, start in enumerate(self.starts_hours):
            end = self.starts_hours[k + 1] if k + 1 < len(self.starts_hours) else self.end_hours
            (up if self.available[k] else down).append(end - start)
        return up, down


def trace_from_runs(name: str, source: str, runs: Sequence[tuple[int, int]], gap_seconds: float) -> Trace:
    """A trace from run lengths [[available 0/1, probes], ...] at one probe every ``gap_seconds``."""
    starts: list[float] = []
    states: list[bool] = []
    t, step = 0.0, gap_seconds / 3600
    for up, count in runs:
        if states and states[-1] == bool(up):
            t += count * step
            continue
        starts.append(t)
        states.append(bool(up))
        t += count * step
    return Trace(name, source, tuple(starts), tuple(states), t)


def load_public_traces(path: Path = TRACES) -> list[Trace]:
    """The traces derived from skypilot-org/spot-traces (see bench/traces/README.md)."""
    payload = json.loads(path.read_text(encoding="utf-8"))
    source = f"skypilot-org/spot-traces@{payload['commit'][:8]}"
    return [trace_from_runs(f"{t['kind']}/{t['nodes']}-node/{t['name']}", source, t["runs"], t["gap_seconds"])
            for t in payload["traces"]]


def poisson_trace(rng: random.Random, hours: float, preemptions_per_hour: float, mean_gap_hours: float,
                  name: str, source: str) -> Trace:
    """Spot runs ending at a Poisson rate, each followed by an exponential unavailable gap."""
    starts: list[float] = []
    states: list[bool] = []
    t, up = 0.0, True
    while t < hours:
        starts.append(t)
        states.append(up)
        mean = (1 / preemptions_per_hour if preemptions_per_hour > 0 else math.inf) if up else mean_gap_hours
        t += rng.expovariate(1 / mean) if math.isfinite(mean) and mean > 0 else (math.inf if up else 0.0)
        up = not up
    return Trace(name, source, tuple(starts), tuple(states), hours)


def bursty_trace(rng: random.Random, hours: float, preemptions_per_hour: float, mean_gap_hours: float,
                 name: str, source: str, storm_share: float = 0.2, storm_factor: float = 10.0,
                 calm_hours: float = 48.0) -> Trace:
    """Markov-modulated spot: calm spells and storms (``storm_factor`` x the rate, gaps ``storm_factor``/2 x longer).

    The calm rate is set so the long-run preemption rate equals ``preemptions_per_hour``.
    """
    calm_rate = preemptions_per_hour / ((1 - storm_share) + storm_share * storm_factor)
    storm_hours = calm_hours * storm_share / (1 - storm_share)
    starts: list[float] = []
    states: list[bool] = []
    t, up, storm = 0.0, True, False
    regime_end = rng.expovariate(1 / calm_hours)
    while t < hours:
        if not states or states[-1] != up:
            starts.append(t)
            states.append(up)
        rate = calm_rate * (storm_factor if storm else 1.0)
        gap = mean_gap_hours * (storm_factor / 2 if storm else 1.0)
        step = rng.expovariate(rate) if up else rng.expovariate(1 / gap)
        if t + step >= regime_end:  # regime switch first: memoryless, so redraw in the new regime
            t = regime_end
            storm = not storm
            regime_end = t + rng.expovariate(1 / (storm_hours if storm else calm_hours))
            continue
        t += step
        up = not up
    return Trace(name, source, tuple(starts), tuple(states), hours)


# -- the simulator ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SimJob:
    """A job with a deadline, its overheads, and the two prices (USD per hour for the whole cluster)."""

    work_hours: float
    deadline_hours: float
    changeover_hours: float
    checkpoint_interval_hours: float
    on_demand_usd_per_hour: float
    spot_usd_per_hour: float
    decision_interval_hours: float = 0.1

    @property
    def on_demand_usd(self) -> float:
        """What always-on-demand costs: one changeover plus the work."""
        return (self.changeover_hours + self.work_hours) * self.on_demand_usd_per_hour


@dataclass
class SimResult:
    """What a policy did on one trace."""

    cost_usd: float = 0.0
    finish_hours: float = math.inf
    spot_hours: float = 0.0
    on_demand_hours: float = 0.0
    preemptions: int = 0
    changeovers: int = 0
    lost_work_hours: float = 0.0
    decisions: int = 0
    invalid: int = 0  # spot asked for while unavailable (treated as wait)
    modes: list[tuple[float, Mode]] = field(default_factory=list)

    def met(self, deadline_hours: float) -> bool:
        """Whether the job finished by its deadline."""
        return self.finish_hours <= deadline_hours + 1e-6


def simulate(job: SimJob, trace: Trace, policy: Policy, *, max_hours: float | None = None,
             record: bool = False) -> SimResult:
    """Replay ``trace`` from hour 0 with ``policy``; stops when the work is done or at ``max_hours``.

    A job still running at ``max_hours`` (default 3 x deadline) is finished on on-demand at its price and counted
    late, so every policy gets a comparable cost.
    """
    limit = 3 * job.deadline_hours if max_hours is None else max_hours
    res = SimResult()
    t = 0.0
    mode: Mode = "wait"
    changeover_left = 0.0
    committed = 0.0  # checkpointed progress
    uncommitted = 0.0  # progress since the last checkpoint
    spot_up = trace.state_at(0.0)
    next_change = trace.next_change_after(0.0)
    interval = job.checkpoint_interval_hours
    next_poll = 0.0

    def state() -> SpotState:
        return SpotState(
            remaining_work_hours=job.work_hours - committed - uncommitted,
            hours_to_deadline=job.deadline_hours - t,
            total_work_hours=job.work_hours,
            total_hours=job.deadline_hours,
            changeover_hours=job.changeover_hours,
            spot_available=spot_up,
            mode=mode,
            checkpoint_interval_hours=interval,
            changeover_left_hours=changeover_left,
            decision_interval_hours=job.decision_interval_hours,
        )

    while True:
        # Decide at every event (and so at least every decision interval).
        decision = policy(state())
        res.decisions += 1
        if decision == "spot" and not spot_up:
            res.invalid += 1
            decision = "wait"
        if decision != mode:
            committed += uncommitted  # leaving on purpose: checkpoint first
            uncommitted = 0.0
            changeover_left = job.changeover_hours if decision != "wait" else 0.0
            if decision != "wait":
                res.changeovers += 1
            mode = decision
            if record:
                res.modes.append((t, mode))
        next_poll = t + job.decision_interval_hours
        remaining = job.work_hours - committed - uncommitted
        if remaining <= _EPS:
            res.finish_hours = t
            return res
        if t >= limit:
            # Not done by the limit: finish on on-demand so the cost is comparable, and count it late.
            rest = job.changeover_hours + remaining
            res.cost_usd += rest * job.on_demand_usd_per_hour
            res.on_demand_hours += rest
            res.finish_hours = t + rest
            return res
        # Next event.
        horizon = min(next_change, next_poll, limit)
        if mode != "wait":
            if changeover_left > 0:
                horizon = min(horizon, t + changeover_left)
            else:
                horizon = min(horizon, t + remaining)
                if interval > 0:
                    horizon = min(horizon, t + interval - uncommitted)
        dt = max(0.0, horizon - t)
        # Advance.
        if mode != "wait":
            price = job.spot_usd_per_hour if mode == "spot" else job.on_demand_usd_per_hour
            res.cost_usd += dt * price
            if mode == "spot":
                res.spot_hours += dt
            else:
                res.on_demand_hours += dt
            if changeover_left > 0:
                changeover_left = max(0.0, changeover_left - dt)
                if changeover_left < _EPS:
                    changeover_left = 0.0
            else:
                uncommitted += dt
                if interval > 0 and uncommitted >= interval - _EPS:
                    committed += uncommitted
                    uncommitted = 0.0
        t = horizon
        if t >= next_change - _EPS:
            spot_up = trace.state_at(t)
            next_change = trace.next_change_after(t)
            if mode == "spot" and not spot_up:
                res.preemptions += 1
                res.lost_work_hours += uncommitted
                uncommitted = 0.0
                changeover_left = 0.0
                mode = "wait"
                if record:
                    res.modes.append((t, "wait"))


# -- policies -------------------------------------------------------------------------------------

def always_on_demand(state: SpotState) -> Mode:
    """Baseline: on-demand from start to end."""
    return "on_demand" if state.remaining_work_hours > 0 else "wait"


def greedy_spot(state: SpotState) -> Mode:
    """Baseline: spot whenever available, wait (and restart) after every preemption; no deadline guard."""
    if state.remaining_work_hours <= 0:
        return "wait"
    return "spot" if state.spot_available else "wait"


def greedy_safety_net(state: SpotState) -> Mode:
    """The paper's greedy: spot while it is safe to, then on-demand to the end once the slack runs out."""
    if state.remaining_work_hours <= 0:
        return "wait"
    if state.mode == "on_demand":
        return "on_demand"
    d_paper = state.changeover_hours + state.checkpoint_interval_hours  # the paper's d includes the lost work
    if state.mode == "spot" and state.spot_available:
        return "spot"
    if state.slack_hours < 2 * d_paper:
        return "on_demand"
    return "spot" if state.spot_available else "wait"


def uniform_progress(state: SpotState) -> Mode:
    """Uniform Progress as published (Wu et al., NSDI 2024, section 5.2): catch-up, taking risks, hysteresis
    cp(t) >= ep(t + 2d), safety net R < C + 2d, with the paper's d = changeover + the work a preemption loses."""
    if state.remaining_work_hours <= 0:
        return "wait"
    d_paper = state.changeover_hours + state.checkpoint_interval_hours
    if state.mode == "spot" and state.spot_available:
        return "spot"  # exploitation
    if state.mode == "on_demand":
        if state.slack_hours < 2 * d_paper:
            return "on_demand"
        if state.spot_available and state.progress_hours >= state.expected_progress_hours(2 * d_paper):
            return "spot"
        return "on_demand"
    if state.slack_hours < 2 * d_paper:
        return "on_demand"  # safety net
    if state.spot_available:
        return "spot"
    return "on_demand" if state.progress_hours < state.expected_progress_hours() else "wait"



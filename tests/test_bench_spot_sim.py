"""The spot simulator: exact costs in simple cases, lost work on preemption, and no missed deadline for gpuarb."""

from __future__ import annotations

import random

import pytest

from arbitrage.spotpolicy import decide, randomized_policy
from bench.spot_sim import (
    SimJob,
    Trace,
    always_on_demand,
    bursty_trace,
    greedy_safety_net,
    greedy_spot,
    load_public_traces,
    poisson_trace,
    simulate,
    trace_from_runs,
    uniform_progress,
)

OD, SPOT = 40.0, 12.0


def job(work: float = 8.0, deadline: float = 12.0, changeover: float = 0.2, interval: float = 0.25,
        delta: float = 0.1) -> SimJob:
    return SimJob(work, deadline, changeover, interval, OD, SPOT, delta)


def always_up(hours: float = 100.0) -> Trace:
    return Trace("up", "test", (0.0,), (True,), hours)


def test_on_demand_costs_changeover_plus_work_at_the_on_demand_price() -> None:
    j = job()
    result = simulate(j, always_up(), always_on_demand)
    assert result.cost_usd == pytest.approx(j.on_demand_usd) == pytest.approx((0.2 + 8.0) * OD)
    assert result.finish_hours == pytest.approx(8.2)
    assert result.changeovers == 1 and result.preemptions == 0 and result.met(j.deadline_hours)


def test_uninterrupted_spot_costs_changeover_plus_work_at_the_spot_price() -> None:
    result = simulate(job(), always_up(), decide)
    assert result.cost_usd == pytest.approx(8.2 * SPOT)
    assert result.on_demand_hours == 0 and result.spot_hours == pytest.approx(8.2)


def test_preemption_loses_the_work_since_the_last_checkpoint() -> None:
    # Spot for 3 h, gone for 1 h, then back: changeover 0.5, checkpoints every 1 h of progress (at 1.5 and 2.5 h).
    trace = Trace("t", "test", (0.0, 3.0, 4.0), (True, False, True), 100.0)
    result = simulate(job(work=5.0, deadline=100.0, changeover=0.5, interval=1.0), trace, greedy_spot)
    assert result.preemptions == 1
    assert result.lost_work_hours == pytest.approx(0.5)
    # 3 h billed before the preemption, then 0.5 changeover + the 3 h still to do from hour 4.
    assert result.finish_hours == pytest.approx(4.0 + 0.5 + 3.0)
    assert result.cost_usd == pytest.approx((3.0 + 3.5) * SPOT)


def test_greedy_spot_misses_a_deadline_that_gpuarb_meets() -> None:
    trace = Trace("outage", "test", (0.0, 1.0), (True, False), 100.0)  # spot disappears for good after 1 h
    j = job(work=8.0, deadline=10.0)
    assert not simulate(j, trace, greedy_spot).met(j.deadline_hours)
    ours = simulate(j, trace, decide)
    assert ours.met(j.deadline_hours) and ours.on_demand_hours > 0


def test_trace_from_runs_merges_repeated_states_and_windows_rebase() -> None:
    trace = trace_from_runs("r", "test", [(1, 2), (1, 1), (0, 3), (1, 6)], gap_seconds=1800)
    assert trace.starts_hours == (0.0, 1.5, 3.0) and trace.available == (True, False, True)
    assert trace.end_hours == pytest.approx(6.0)
    window = trace.window(1.0, 3.0)
    assert window.starts_hours == (0.0, 0.5, 2.0) and window.available == (True, False, True)
    assert window.state_at(0.7) is False and window.state_at(3.5) is False  # past the end: no spot
    assert trace.available_fraction() == pytest.approx(4.5 / 6)


@pytest.mark.parametrize("seed", range(4))
def test_gpuarb_never_misses_a_deadline_on_seeded_traces(seed: int) -> None:
    """Many short jobs on Poisson, bursty and public traces, tight and loose deadlines: no miss, ever."""
    rng = random.Random(seed)
    public = load_public_traces()
    for _ in range(40):
        j = job(work=rng.uniform(2, 10), changeover=rng.uniform(0.05, 0.4), interval=rng.uniform(0.05, 1.0),
                delta=rng.uniform(0.02, 0.2))
        j = SimJob(j.work_hours, j.work_hours / rng.uniform(0.3, 0.95) + j.changeover_hours, j.changeover_hours,
                   j.checkpoint_interval_hours, OD, SPOT, j.decision_interval_hours)
        rate = rng.choice([0.05, 0.5, 2.0])
        source = rng.random()
        if source < 0.35:
            trace = poisson_trace(rng, 3 * j.deadline_hours, rate, rng.uniform(0.1, 3), "p", "test")
        elif source < 0.7:
            trace = bursty_trace(rng, 3 * j.deadline_hours, rate, rng.uniform(0.1, 3), "b", "test")
        else:
            full = rng.choice(public)
            trace = full.window(rng.uniform(0, max(0.0, full.end_hours - 3 * j.deadline_hours)), 3 * j.deadline_hours)
        for policy in (decide, randomized_policy(rng.random()).decide):
            result = simulate(j, trace, policy)
            assert result.met(j.deadline_hours), (j, trace.name)
            assert result.invalid == 0


def test_baseline_policies_with_a_safety_net_meet_deadlines_on_public_windows() -> None:
    rng = random.Random(7)
    public = load_public_traces()
    j = job(work=24.0, deadline=30.0, changeover=0.2, interval=1 / 6)
    for _ in range(20):
        full = rng.choice(public)
        window = full.window(rng.uniform(0, max(0.0, full.end_hours - 45)), 45)
        for policy in (greedy_safety_net, uniform_progress, decide):
            assert simulate(j, window, policy).met(j.deadline_hours)


def test_public_traces_load_with_plausible_availability() -> None:
    traces = load_public_traces()
    assert len(traces) == 27
    assert all(t.source.startswith("skypilot-org/spot-traces@") for t in traces)
    assert all(0.0 < t.available_fraction() < 1.0 for t in traces)
    two_month = [t for t in traces if t.name.startswith("availability/1-node/aws-02-15-2023/")]
    assert len(two_month) == 9 and all(1000 < t.end_hours < 1200 for t in two_month)

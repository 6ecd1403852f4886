"""The deadline-aware spot policy: each rule, the safety margins, and that it stays a pure function."""

from __future__ import annotations

import ast
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from arbitrage import spotpolicy
from arbitrage.spotpolicy import (
    SpotPolicy,
    SpotState,
    decide,
    keep_spot_margin_hours,
    randomized_policy,
    start_spot_margin_hours,
    wait_margin_hours,
)

D, CKPT, DELTA = 0.2, 0.25, 0.1  # changeover, checkpoint interval, decision interval (hours)


def state(**overrides: Any) -> SpotState:
    """A 10-hour job due in 20 hours, just started, idle, spot available, unless overridden."""
    base: dict[str, Any] = dict(
        remaining_work_hours=10.0, hours_to_deadline=20.0, total_work_hours=10.0, total_hours=20.0,
        changeover_hours=D, spot_available=True, mode="wait", checkpoint_interval_hours=CKPT,
        changeover_left_hours=0.0, decision_interval_hours=DELTA)
    base.update(overrides)
    return SpotState(**base)


def test_margins_are_the_documented_sums() -> None:
    s = state(changeover_left_hours=0.05)
    assert start_spot_margin_hours(s) == pytest.approx(2 * D + CKPT + DELTA)
    assert keep_spot_margin_hours(s) == pytest.approx(D + CKPT + DELTA + 0.05)
    assert wait_margin_hours(s) == pytest.approx(D + DELTA)


def test_done_job_holds_nothing() -> None:
    assert decide(state(remaining_work_hours=0.0, mode="spot")) == "wait"


def test_idle_job_takes_available_spot_when_slack_allows() -> None:
    assert decide(state()) == "spot"


def test_spot_is_refused_once_a_preemption_could_no_longer_be_survived() -> None:
    margin = start_spot_margin_hours(state())
    tight = state(remaining_work_hours=10.0, hours_to_deadline=10.0 + margin - 0.01)
    assert decide(tight) == "on_demand"
    assert decide(replace(tight, hours_to_deadline=10.0 + margin + 0.01)) == "spot"


def test_idle_job_waits_for_spot_while_ahead_of_the_line_and_catches_up_when_behind() -> None:
    # Half the time gone: the line (with its lead of 10% of the 10 h slack) expects 10 x (10 - 1) / 20 = 4.5 h done.
    ahead = state(spot_available=False, remaining_work_hours=5.0, hours_to_deadline=10.0)
    behind = state(spot_available=False, remaining_work_hours=6.0, hours_to_deadline=10.0)
    assert decide(ahead) == "wait"
    assert decide(behind) == "on_demand"


def test_running_spot_is_kept_until_the_keep_margin_is_gone() -> None:
    running = state(mode="spot", remaining_work_hours=5.0, hours_to_deadline=5.0 + D + CKPT + DELTA + 0.01)
    assert decide(running) == "spot"
    assert decide(replace(running, hours_to_deadline=5.0 + D + CKPT + DELTA - 0.01)) == "on_demand"


def test_preempted_job_is_idle_and_decides_again() -> None:
    # After a preemption the caller passes mode "wait"; with no spot and little slack it goes on-demand.
    after = state(mode="wait", spot_available=False, remaining_work_hours=5.0, hours_to_deadline=5.5)
    assert decide(after) == "on_demand"


def test_on_demand_job_returns_to_spot_only_when_on_the_line_and_safe() -> None:
    on_line = state(mode="on_demand", remaining_work_hours=4.0, hours_to_deadline=10.0)  # 6 h done, line 4.5
    assert decide(on_line) == "spot"
    assert decide(replace(on_line, spot_available=False)) == "on_demand"  # never waits while on on-demand
    behind = state(mode="on_demand", remaining_work_hours=7.0, hours_to_deadline=10.0)
    assert decide(behind) == "on_demand"


def test_paper_hysteresis_keeps_on_demand_longer() -> None:
    s = state(mode="on_demand", remaining_work_hours=5.4, hours_to_deadline=10.0)  # 4.6 h done vs line 4.5
    assert SpotPolicy(hysteresis_hours=0.0).decide(s) == "spot"
    assert SpotPolicy(hysteresis_hours=2 * D).decide(s) == "on_demand"


def test_no_spot_when_unavailable_and_every_risk_is_guarded() -> None:
    """Over random states: spot only when available, and each choice keeps the margin the docstring promises."""
    rng = random.Random(1)
    policies = [SpotPolicy(), randomized_policy(0.9), SpotPolicy(lead_share=0.5, hysteresis_hours=1.0)]
    for _ in range(20000):
        total = rng.uniform(1, 50)
        deadline = total / rng.uniform(0.3, 1.0)
        s = SpotState(
            remaining_work_hours=rng.uniform(0, total), hours_to_deadline=rng.uniform(0, deadline),
            total_work_hours=total, total_hours=deadline, changeover_hours=rng.uniform(0, 0.5),
            spot_available=rng.random() < 0.5, mode=rng.choice(["spot", "on_demand", "wait"]),
            checkpoint_interval_hours=rng.uniform(0, 1), changeover_left_hours=rng.uniform(0, 0.5),
            decision_interval_hours=rng.uniform(0, 0.3))
        for policy in policies:
            choice = policy.decide(s)
            if s.remaining_work_hours <= 0:
                assert choice == "wait"
                continue
            if choice == "spot":
                assert s.spot_available
                needed = keep_spot_margin_hours(s) if s.mode == "spot" else start_spot_margin_hours(s)
                assert s.slack_hours >= needed
            elif choice == "wait":
                assert s.slack_hours >= wait_margin_hours(s)


def test_randomized_policy_draws_its_lead_from_the_callers_number() -> None:
    assert randomized_policy(0.0).lead_share == 0.0
    assert randomized_policy(0.5).lead_share == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        randomized_policy(1.0)


def test_module_is_pure_and_clock_free() -> None:
    tree = ast.parse(Path(spotpolicy.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "dataclasses", "typing"}

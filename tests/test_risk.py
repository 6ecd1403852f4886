"""Deadline probabilities of spot jobs against a Monte Carlo simulation of the same preemption model."""

from __future__ import annotations

import math
import random

import pytest

from arbitrage.risk import finish_by, posterior_rate
from bench.spot import simulate_model as simulate  # the same process the calibration benchmark replays

CASES = [
    # (work h, segment h, restart h, cluster rate /h, fixed h): short, long, no checkpoint, high rate, tiny rate
    (14.0, 14.0, 0.25, 0.05, 0.2),
    (14.0, 14.0, 0.25, 0.10, 0.2),
    (64.0, 1 / 6, 0.2, 0.3, 0.5),
    (64.0, 1 / 6, 0.2, 1.2, 0.5),
    (8.0, 0.5, 0.1, 0.02, 0.1),
    (30.0, 1.0, 0.3, 0.15, 0.0),
    (3.0, 3.0, 0.1, 0.5, 0.0),
]


@pytest.mark.parametrize("work,segment,restart,rate,fixed", CASES)
def test_probability_matches_monte_carlo(work, segment, restart, rate, fixed) -> None:
    rng = random.Random(7)
    samples = sorted(simulate(rng, work=work, segment=segment, restart=restart, rate=rate, fixed=fixed)
                     for _ in range(4000))
    mean = sum(samples) / len(samples)
    for quantile in (0.5, 0.8, 0.9, 0.95):
        deadline = samples[int(quantile * len(samples))]
        got = finish_by(deadline, work_hours=work, segment_hours=segment, restart_hours=restart,
                        rate_per_hour=rate, fixed_hours=fixed)
        empirical = sum(t <= deadline for t in samples) / len(samples)  # differs from quantile at an atom
        # 4000 samples: the empirical CDF is within about +-0.015 of the truth at these levels
        assert got.probability == pytest.approx(empirical, abs=0.035), (quantile, deadline, got)
    got = finish_by(1e9, work_hours=work, segment_hours=segment, restart_hours=restart, rate_per_hour=rate,
                    fixed_hours=fixed)
    assert got.mean_hours == pytest.approx(mean, rel=0.03)


def test_mean_matches_the_cost_models_formula() -> None:
    rate, segment, restart, work = 0.3, 0.25, 0.2, 10.0
    expected_per_segment = (1 / rate + restart) * (math.exp(rate * segment) - 1)
    got = finish_by(100, work_hours=work, segment_hours=segment, restart_hours=restart, rate_per_hour=rate)
    assert got.mean_hours == pytest.approx(work / segment * expected_per_segment)


def test_edges() -> None:
    sure = finish_by(10, work_hours=5, segment_hours=1, restart_hours=0.1, rate_per_hour=0.0, fixed_hours=1)
    assert sure.probability == 1.0 and sure.mean_hours == 6
    late = finish_by(5.5, work_hours=5, segment_hours=1, restart_hours=0.1, rate_per_hour=0.1, fixed_hours=1)
    assert late.probability == 0.0  # the deadline is before even an uninterrupted finish
    never = finish_by(1e6, work_hours=500, segment_hours=500, restart_hours=0.1, rate_per_hour=1.0)
    assert never.probability == 0.0 and math.isinf(never.mean_hours)
    with pytest.raises(ValueError, match="rate_per_hour"):
        finish_by(10, work_hours=1, segment_hours=1, restart_hours=0, rate_per_hour=float("nan"))


def test_probability_falls_as_the_rate_rises() -> None:
    probs = [finish_by(16, work_hours=14, segment_hours=14, restart_hours=0.25, rate_per_hour=r).probability
             for r in (0.01, 0.05, 0.1, 0.2)]
    assert probs == sorted(probs, reverse=True) and probs[0] > 0.85 and probs[-1] < 0.5


def test_gamma_poisson_update_moves_toward_the_observed_rate() -> None:
    prior = posterior_rate(0.05, 100, 0, 0)
    assert prior.rate_per_hour == pytest.approx(0.05)
    seen = posterior_rate(0.05, 100, 30, 100)  # observed 0.3/h over as many hours as the prior's weight
    assert seen.rate_per_hour == pytest.approx((5 + 30) / 200)
    much = posterior_rate(0.05, 100, 3000, 10000)
    assert much.rate_per_hour == pytest.approx(0.3, rel=0.02)
    with pytest.raises(ValueError):
        posterior_rate(0.05, 0, 1, 1)

"""Spot risk as probabilities: P(a checkpointed job on spot finishes by its deadline), and rates learned from runs.

Pure: no I/O, no clock. The model is the cost model's (arbitrage/costmodel.py): preemptions of the cluster
arrive as a Poisson process at ``rate`` per hour; the work is cut into checkpoint segments of ``segment_hours``;
a preempted segment is lost back to its start and retried after ``restart_hours``, until it runs through.

The finish time is T = fixed + W + sum over preemptions of (time into the segment when it hit + restart). Per
segment the number of preemptions K is geometric with success probability p = exp(-rate * segment) (so over
the job N = sum of K is negative binomial with n = W / segment, non-integer n allowed), and each loss X is an
exponential truncated to [0, segment]. Hence

    P(T <= D) = sum_k P(N = k) * P(X_1 + ... + X_k <= D - fixed - W - k * restart),

with the inner CDF exact for k <= 3 (inclusion-exclusion over Erlang CDFs) and normal beyond (a sum of 4 or more
bounded variables). When E[N] is large the total is itself close to normal (many independent segments) and
that form is used. A Monte Carlo test (tests/test_risk.py) checks both against simulation.

Learning (`posterior_rate`): a Gamma(shape, rate) prior on the preemption rate per instance-hour, updated with
observed preemptions over observed instance-hours (Gamma-Poisson conjugacy); the posterior mean is the rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_SERIES_MEAN_LIMIT = 30.0  # beyond this many expected preemptions the normal form of the total is used
_TAIL = 1e-9  # the negative binomial's tail probability at which the series stops
_EXACT_K = 3  # sums of up to this many truncated exponentials use the exact CDF


def _phi(z: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _erlang_cdf(k: int, rate: float, x: float) -> float:
    """P(sum of k Exp(rate) <= x)."""
    if x <= 0:
        return 0.0
    y = rate * x
    term, total = 1.0, 1.0
    for i in range(1, k):
        term *= y / i
        total += term
    return max(0.0, 1.0 - math.exp(-y) * total)


def _truncated_moments(rate: float, segment: float) -> tuple[float, float]:
    """Mean and variance of an Exp(rate) conditioned on being <= segment (the time lost to one preemption)."""
    e = math.exp(-rate * segment)
    q = 1.0 - e
    mean = 1.0 / rate - segment * e / q
    second = (2.0 / rate**2 - e * (segment**2 + 2.0 * segment / rate + 2.0 / rate**2)) / q
    return mean, max(0.0, second - mean * mean)


def _loss_cdf(k: int, x: float, rate: float, segment: float, mean: float, var: float) -> float:
    """P(X_1 + ... + X_k <= x) for k truncated exponentials on [0, segment]."""
    if x < 0:
        return 0.0
    if k == 0 or x >= k * segment:
        return 1.0
    if k <= _EXACT_K:
        e = math.exp(-rate * segment)
        total = 0.0
        for j in range(k + 1):
            total += math.comb(k, j) * (-e) ** j * _erlang_cdf(k, rate, x - j * segment)
        return min(1.0, max(0.0, total / (1.0 - e) ** k))
    sd = math.sqrt(k * var)
    return 1.0 if sd == 0 else _phi((x - k * mean) / sd)


@dataclass(frozen=True, slots=True)
class FinishTime:
    """Mean and standard deviation (hours) of a spot job's finish time, and P(finish by the deadline)."""

    mean_hours: float
    sd_hours: float
    probability: float


def finish_by(deadline_hours: float, *, work_hours: float, segment_hours: float, restart_hours: float,
              rate_per_hour: float, fixed_hours: float = 0.0) -> FinishTime:
    """P(a spot job finishes within ``deadline_hours``), with the finish time's mean and sd.

    ``work_hours`` is the compute the job needs; ``segment_hours`` the work between checkpoints (the whole job
    when it has none; the checkpoint write time belongs in ``fixed_hours`` with provisioning and staging);
    ``rate_per_hour`` the cluster's preemption rate (nodes x the per-node rate).
    """
    for name, value in (("deadline_hours", deadline_hours), ("work_hours", work_hours),
                        ("segment_hours", segment_hours), ("restart_hours", restart_hours),
                        ("rate_per_hour", rate_per_hour), ("fixed_hours", fixed_hours)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    base = fixed_hours + work_hours
    if rate_per_hour == 0 or work_hours == 0:
        return FinishTime(base, 0.0, 1.0 if deadline_hours >= base else 0.0)
    segment = min(segment_hours, work_hours) if segment_hours > 0 else work_hours
    n = work_hours / segment  # segments (the last one shorter: approximated as a fraction of a segment)
    q = -math.expm1(-rate_per_hour * segment)  # P(a segment is hit)
    p = 1.0 - q
    if p <= 0.0 or n * q / p > 1e7:
        return FinishTime(math.inf, math.inf, 0.0)  # would essentially never finish
    x_mean, x_var = _truncated_moments(rate_per_hour, segment)
    z_mean = x_mean + restart_hours
    n_mean, n_var = n * q / p, n * q / p**2
    mean = base + n_mean * z_mean
    var = n_mean * x_var + n_var * z_mean**2
    sd = math.sqrt(var)
    slack = deadline_hours - base
    if slack < 0:
        return FinishTime(mean, sd, 0.0)
    if n_mean > _SERIES_MEAN_LIMIT:
        return FinishTime(mean, sd, _phi((deadline_hours - mean) / sd) if sd > 0 else float(deadline_hours >= mean))
    # P(N = k) for the negative binomial with (real) n, by the recurrence P(k) = P(k-1) * q * (n + k - 1) / k.
    pk = p**n
    total, cum, k = 0.0, 0.0, 0
    while True:
        room = slack - k * restart_hours
        if room < 0:
            break  # every further k has even less room
        total += pk * _loss_cdf(k, room, rate_per_hour, segment, x_mean, x_var)
        cum += pk
        if 1.0 - cum < _TAIL and k > n_mean:
            break
        k += 1
        pk *= q * (n + k - 1) / k
        if k > 10_000:  # pragma: no cover - guarded by the mean limit above
            break
    return FinishTime(mean, sd, min(1.0, max(0.0, total)))


@dataclass(frozen=True, slots=True)
class RatePosterior:
    """A preemption rate per instance-hour after observing runs: the posterior mean and what backs it."""

    rate_per_hour: float
    prior_rate_per_hour: float
    observed_preemptions: int
    observed_hours: float
    shape: float
    rate: float  # the Gamma's rate parameter (instance-hours of evidence, prior pseudo-hours included)


def posterior_rate(prior_rate_per_hour: float, prior_hours: float, preemptions: int,
                   instance_hours: float) -> RatePosterior:
    """Gamma-Poisson update of a preemption rate.

    The prior is worth ``prior_hours`` instance-hours of evidence at ``prior_rate_per_hour`` (Gamma with
    shape = rate x hours, rate = hours); observing ``preemptions`` over ``instance_hours`` gives the posterior
    Gamma(shape + preemptions, hours + instance_hours), whose mean is returned.
    """
    for name, value in (("prior_rate_per_hour", prior_rate_per_hour), ("prior_hours", prior_hours),
                        ("instance_hours", instance_hours)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if preemptions < 0:
        raise ValueError(f"preemptions must be >= 0, got {preemptions}")
    if prior_hours <= 0:
        raise ValueError("prior_hours must be > 0 (a prior with no weight cannot be updated)")
    shape = prior_rate_per_hour * prior_hours + preemptions
    rate = prior_hours + instance_hours
    return RatePosterior(shape / rate, prior_rate_per_hour, preemptions, instance_hours, shape, rate)

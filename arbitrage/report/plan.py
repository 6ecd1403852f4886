"""Plan report data: the ranked plan, the naive choice it is compared with, and the savings. Pure, no I/O.

Naive = the first-choice GPUs, on-demand, on the hyperscaler where the data lives (arbitrage.baselines.naive);
cheapest listed = the lowest price per GPU-hour on a price list, costed in full (egress, preemption included).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from arbitrage.baselines import cheapest_listed, naive
from arbitrage.costmodel import CostBreakdown
from arbitrage.offers import Offer
from arbitrage.planner import Choice, Objective, Plan, plan

if TYPE_CHECKING:
    from arbitrage.facts import Facts
    from arbitrage.jobspec import JobSpec


@dataclass(frozen=True)
class PlanReport:
    """A plan with its baselines; `shown` is the top of the ranking (or the best over-budget placements)."""

    plan: Plan
    top: int
    planned_at: datetime
    naive: CostBreakdown | None
    cheapest_listed: CostBreakdown | None
    catalog: dict[str, Any]  # per-provider provenance of the offers the plan saw

    @property
    def best(self) -> CostBreakdown | None:
        """The chosen placement, or None when nothing is feasible within budget."""
        return self.plan.best

    @property
    def shown_choices(self) -> tuple[Choice, ...]:
        """The ranked choices to show (same-price regions folded into one, see planner.Choice); the cheapest
        over-budget ones when none is within budget."""
        ranked = self.plan.choices if self.plan.placements else self.plan.over_budget_choices
        return ranked[: self.top] if self.top else ranked

    @property
    def shown(self) -> tuple[CostBreakdown, ...]:
        """The placement of each shown choice, in rank order."""
        return tuple(c.best for c in self.shown_choices)

    @property
    def over_budget_only(self) -> bool:
        """True when the shown placements are over budget (nothing feasible within it)."""
        return not self.plan.placements and bool(self.plan.over_budget)

    @property
    def savings_usd(self) -> float | None:
        """Naive expected total minus the chosen placement's (positive = gpuarb saves money)."""
        if self.best is None or self.naive is None:
            return None
        return self.naive.total_usd - self.best.total_usd

    @property
    def savings_share(self) -> float | None:
        """Savings as a share of the naive total (0.4 = 40 % cheaper)."""
        saving = self.savings_usd
        if saving is None or self.naive is None or self.naive.total_usd <= 0:
            return None
        return saving / self.naive.total_usd

    def naive_meets_deadline(self) -> bool | None:
        """Whether the naive choice would finish before the deadline (None without one or without naive)."""
        if self.naive is None or self.plan.deadline_hours is None:
            return None
        return self.naive.expected_hours <= self.plan.deadline_hours


def build_plan_report(spec: JobSpec, offers: Iterable[Offer], facts: Facts, now: datetime, objective: Objective,
                      top: int, catalog: dict[str, Any], result: Plan | None = None) -> PlanReport:
    """The plan (``result``, made over the same offers and facts; planned here when not given) with the
    baselines costed on the same offers and facts."""
    offers = list(offers)
    result = result if result is not None else plan(spec, offers, facts, now, objective)
    return PlanReport(result, top, now, naive(spec, offers, facts), cheapest_listed(spec, offers, facts), catalog)

"""The cost change between two plans of a job (a pull request's base and head), and the CI policies on it. Pure.

Both sides are plan records, the JSON document `gpuarb plan --format json` prints (arbitrage/render.py
`plan_record`), so a freshly made plan and a saved plan.json compare the same way. A side's pick is its #1
placement; without one, the side is `over-budget` (its cheapest over-budget placement is shown) or `infeasible`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from arbitrage.errors import DataError

Status = Literal["ok", "over-budget", "infeasible"]


@dataclass(frozen=True)
class PlanSide:
    """One side of a diff: where its plan came from and its pick (None when nothing was feasible)."""

    label: str  # what the user named: a spec path, REV:path, or a saved plan file
    job: str
    status: Status
    placement: str | None  # "aws us-east-1 1x p5.48xlarge spot"
    hourly_usd: float | None
    expected_hours: float | None
    total_usd: float | None
    source: str | None  # "snapshot, as of 2025-12-01"
    planned_at: str | None


@dataclass(frozen=True)
class CostDiff:
    """HEAD against BASE: the change in expected total, hourly cost and hours (USD, hours), and the pick."""

    base: PlanSide
    head: PlanSide

    def _delta(self, field: str) -> float | None:
        a, b = getattr(self.base, field), getattr(self.head, field)
        return None if a is None or b is None else b - a

    @property
    def total_usd(self) -> float | None:
        return self._delta("total_usd")

    @property
    def hourly_usd(self) -> float | None:
        return self._delta("hourly_usd")

    @property
    def hours(self) -> float | None:
        return self._delta("expected_hours")

    @property
    def total_percent(self) -> float | None:
        """The change in expected total as a percentage of BASE (None when either side has no total)."""
        delta, base = self.total_usd, self.base.total_usd
        if delta is None or base is None:
            return None
        if base == 0:
            return 0.0 if delta == 0 else math.inf
        return 100 * delta / base

    @property
    def placement_changed(self) -> bool:
        return self.base.placement != self.head.placement


def _number(record: Mapping[str, Any], key: str, label: str) -> float | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"{label}: {key} is not a finite number: {value!r}")
    return float(value)


def plan_side(record: Mapping[str, Any], label: str) -> PlanSide:
    """A side from a plan record (made now, or read back from a saved plan JSON); DataError when malformed."""
    if not isinstance(record, Mapping) or not isinstance(record.get("placements"), list):
        raise DataError(f"{label}: not a gpuarb plan (expected the JSON of `gpuarb plan --format json`)")
    placements = record["placements"]
    over = record.get("over_budget") or []
    if not isinstance(over, list):
        raise DataError(f"{label}: over_budget is not a list")
    status: Status = "ok" if placements else "over-budget" if over else "infeasible"
    pick = placements[0] if placements else (over[0] if over else None)
    job = str(record.get("job", "?"))
    planned_at = record.get("planned_at")
    if pick is None:
        return PlanSide(label, job, status, None, None, None, None, None, planned_at)
    if not isinstance(pick, Mapping):
        raise DataError(f"{label}: placement #1 is not an object")
    where = pick.get("zone") or pick.get("region")
    placement = (f"{pick.get('provider')} {where} {pick.get('nodes')}x {pick.get('instance_type')} "
                 f"{'spot' if pick.get('spot') else 'on-demand'}")
    source = f"{pick.get('source')}, as of {pick.get('as_of')}" if pick.get("source") else None
    return PlanSide(label, job, status, placement, _number(pick, "hourly_usd", label),
                    _number(pick, "expected_hours", label), _number(pick, "total_usd", label), source,
                    planned_at)


def policy_violations(diff: CostDiff, *, fail_above_usd: float | None = None,
                      fail_above_percent: float | None = None) -> list[str]:
    """Why the change breaks the policies (empty: it passes). HEAD with no feasible pick is left to the exit code
    of the plan itself (3 or 4); a policy needs two totals to compare."""
    out = []
    delta, percent = diff.total_usd, diff.total_percent
    if fail_above_usd is not None and delta is not None and delta > fail_above_usd:
        out.append(f"expected total rises by ${delta:,.2f}, above --fail-above-usd {fail_above_usd:,.2f}")
    if fail_above_percent is not None and percent is not None and percent > fail_above_percent:
        out.append(f"expected total rises by {percent:.1f}%, above --fail-above-percent {fail_above_percent:g}")
    return out

"""`gpuarb diff` output: the cost change as a terminal table, JSON, or a Markdown pull-request comment."""

from __future__ import annotations

import json
import math
from typing import Any

from arbitrage.costdiff import CostDiff, PlanSide
from arbitrage.money import format_amount


def _signed_usd(value: float | None) -> str:
    if value is None:
        return "-"
    return ("+" if value > 0 else "-" if value < 0 else "±") + format_amount(abs(value))


def _signed(value: float | None, unit: str, digits: int = 1) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "+∞" + unit
    return f"{value:+.{digits}f}{unit}"


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} h"


def _side_record(side: PlanSide) -> dict[str, Any]:
    return {"label": side.label, "job": side.job, "status": side.status, "placement": side.placement,
            "hourly_usd": side.hourly_usd, "expected_hours": side.expected_hours, "total_usd": side.total_usd,
            "price_source": side.source, "planned_at": side.planned_at}


def diff_record(diff: CostDiff, violations: list[str]) -> dict[str, Any]:
    """The diff as a JSON-ready dict: both sides, the deltas (USD, hours, percent) and the policy verdict."""
    percent = diff.total_percent
    return {
        "base": _side_record(diff.base), "head": _side_record(diff.head), "currency": "USD",
        "delta": {"total_usd": None if diff.total_usd is None else round(diff.total_usd, 2),
                  "total_percent": None if percent is None or not math.isfinite(percent) else round(percent, 2),
                  "hourly_usd": None if diff.hourly_usd is None else round(diff.hourly_usd, 4),
                  "hours": None if diff.hours is None else round(diff.hours, 4),
                  "placement_changed": diff.placement_changed},
        "policy": {"passed": not violations, "violations": violations},
    }


def diff_json(diff: CostDiff, violations: list[str]) -> str:
    return json.dumps(diff_record(diff, violations), indent=2)


def _rows(diff: CostDiff) -> list[tuple[str, str, str, str]]:
    b, h = diff.base, diff.head
    return [
        ("Status", b.status, h.status, ""),
        ("#1 placement", b.placement or "-", h.placement or "-", "changed" if diff.placement_changed else "same"),
        ("Cluster $/h", format_amount(b.hourly_usd), format_amount(h.hourly_usd), _signed_usd(diff.hourly_usd)),
        ("Expected hours", _hours(b.expected_hours), _hours(h.expected_hours), _signed(diff.hours, " h")),
        ("Expected total", format_amount(b.total_usd), format_amount(h.total_usd),
         f"{_signed_usd(diff.total_usd)} ({_signed(diff.total_percent, '%')})"),
        ("Prices", b.source or "-", h.source or "-", ""),
    ]


def diff_markdown(diff: CostDiff, violations: list[str]) -> str:
    """A pull-request comment body: a headline, the table, and the policy verdict."""
    delta, percent = diff.total_usd, diff.total_percent
    if delta is None:
        headline = f"**gpuarb cost diff for `{diff.head.job}`**: no comparable total (base {diff.base.status}, " \
                   f"head {diff.head.status})"
    else:
        headline = (f"**gpuarb cost diff for `{diff.head.job}`**: expected total {_signed_usd(delta)} "
                    f"({_signed(percent, '%')}), {format_amount(diff.base.total_usd)} → "
                    f"{format_amount(diff.head.total_usd)}")
    lines = [headline, "", f"| | base (`{diff.base.label}`) | head (`{diff.head.label}`) | change |",
             "|---|---|---|---|"]
    lines += [f"| {name} | {a} | {b} | {c} |" for name, a, b, c in _rows(diff)]
    lines.append("")
    if violations:
        lines += ["**Policy failed:**", *(f"- {v}" for v in violations)]
    else:
        lines.append("Policy: passed.")
    lines += ["", "All money in USD; expected totals are compute + preemption + egress from gpuarb's cost model."]
    return "\n".join(lines) + "\n"


def diff_table(diff: CostDiff) -> Any:
    """A text table for the terminal."""
    from arbitrage.texttable import TextTable

    table = TextTable(title=f"Cost diff: {diff.head.job} (USD)")
    for head in ("", f"base: {diff.base.label}", f"head: {diff.head.label}", "change"):
        table.add_column(head)
    for row in _rows(diff):
        table.add_row(*row)
    return table

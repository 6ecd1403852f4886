"""Reports for a terminal: text tables (arbitrage/texttable.py) plus plain lines."""

from __future__ import annotations

from typing import Any

from arbitrage.plural import plural
from arbitrage.render import explain, plan_rows, plan_table, rejection_lines, usd
from arbitrage.report.plan import PlanReport
from arbitrage.report.prices import PriceReport, Quote
from arbitrage.report.summary import effective_cell, plan_summary


def _tier_cell(q: Quote | None, ratio: float | None) -> str:
    return "-" if q is None or ratio is None else f"{usd(q.usd_per_gpu_hour)} ({q.offer.provider}, {ratio:.2f}x)"


def _prov(q: Quote | None) -> str:
    if q is None:
        return "-"
    age = "" if q.stale is None else (" undated" if q.age_days is None else f" {q.age_days:.0f}d")
    return f"{q.offer.source} ({q.offer.as_of}{age}{' STALE' if q.stale else ''})"


def prices_renderables(report: PriceReport, generated_at: str, source_note: str) -> list[Any]:
    """A summary table and one table per GPU model, with tier spread lines, ready for Console.print."""
    from arbitrage.texttable import TextTable

    ref = report.reference_gpu
    unit = f"$/{ref}-h"
    out: list[Any] = [f"GPU price report, {generated_at}, {plural(report.offers_considered, 'offer')} ({source_note}). "
                      f"USD per hour. Effective = $/GPU-hour ÷ {report.workload} throughput relative to {ref}."]
    if not report.models:
        return [*out, "No offer matches these filters."]
    summary = TextTable(title="Cheapest per unit of work")
    for i, head in enumerate(("GPU", "Rel.", "On-demand $/GPU-h", f"Eff. {unit}", "Spot $/GPU-h", f"Eff. {unit}",
                              "Source (as of)")):
        summary.add_column(head, justify="right" if 1 <= i <= 5 else "left")
    for m in report.models:
        od, sp = m.best_on_demand, m.best_spot
        summary.add_row(m.gpu_model, "-" if m.relative_throughput is None else f"{m.relative_throughput:.2f}x",
                        "-" if od is None else f"{usd(od.usd_per_gpu_hour)} {od.offer.provider}", effective_cell(od),
                        "-" if sp is None else f"{usd(sp.usd_per_gpu_hour)} {sp.offer.provider}", effective_cell(sp),
                        "; ".join(dict.fromkeys(f"{q.offer.provider} {_prov(q)}" for q in (od, sp) if q is not None)))
    out.append(summary)
    if report.unit_model is not None:
        from arbitrage.report.summary import UNIT_HEAD, unit_rows, unit_title

        units = TextTable(title=unit_title(report))
        for i, head in enumerate(UNIT_HEAD):
            units.add_column(head, justify="right" if i in (2, 3) else "left")
        for cells in unit_rows(report):
            units.add_row(*cells)
        out.append(units)
    for m in report.models:
        rel = "-" if m.relative_throughput is None else f"{m.relative_throughput:.2f}x {ref}"
        table = TextTable(title=f"{m.gpu_model} ({m.memory_gb:g} GB, {rel})")
        for i, head in enumerate(("Provider", "Tier", "OD $/GPU-h", "OD $/h (instance)", "Spot $/GPU-h",
                                  "Spot $/h (instance)", "Spot disc.", f"Eff. OD {unit}", f"Eff. spot {unit}",
                                  "Source (as of)")):
            table.add_column(head, justify="right" if 2 <= i <= 8 else "left")
        for r in m.providers:
            def inst(q: Quote | None) -> str:
                return "-" if q is None else f"{usd(q.usd_per_hour)} {q.offer.instance_type}"
            table.add_row(r.provider, r.tier, "-" if r.on_demand is None else usd(r.on_demand.usd_per_gpu_hour),
                          inst(r.on_demand), "-" if r.spot is None else usd(r.spot.usd_per_gpu_hour), inst(r.spot),
                          "-" if r.spot_discount is None else f"{r.spot_discount:.0%}", effective_cell(r.on_demand),
                          effective_cell(r.spot),
                          "; ".join(dict.fromkeys(_prov(q) for q in r.quotes)))
        out.append(table)
        spread = []
        for t in m.tiers:
            od, sp = _tier_cell(t.on_demand, t.on_demand_ratio), _tier_cell(t.spot, t.spot_ratio)
            spread.append(f"  {t.tier}: on-demand {od}, spot {sp}")
        out.append("Tier spread (cheapest per tier, x the cheapest tier):\n" + "\n".join(spread))
    return out


def plan_renderables(report: PlanReport, catalog_line: str) -> list[Any]:
    """The ranked table (with the naive and cheapest-listed rows), summary, why #1, rejections and provenance."""
    plan, spec = report.plan, report.plan.spec
    head = (f"{spec.name}: {' | '.join(map(str, spec.accelerators))} x {plural(spec.num_nodes, 'node')}, "
            f"{spec.work.describe(spec.workload)}, spot {spec.spot}, objective {plan.objective}")
    out: list[Any] = []
    rows = list(report.shown_choices)
    now, stale = report.planned_at, plan.stale_days
    title = (f"{head}\n{len(plan.placements)} feasible of {plural(plan.candidates, 'candidate')} (USD; hours are "
             "expected wall time)" if not report.over_budget_only
             else f"{head}\nNOTHING within budget; cheapest over budget:")
    if rows:
        table = plan_table(rows, plan.deadline_hours, title, now, stale)
        for label, b in (("naive", report.naive), ("listed", report.cheapest_listed)):
            if b is not None:
                table.add_row(label, *plan_rows([b], plan.deadline_hours, now, stale)[0][1:])
        out.append(table)
    else:
        out.append(f"{head}\nNo feasible placement among {plural(plan.candidates, 'candidate')}.")
    lines = ["Summary:", *(f"  {line}" for line in plan_summary(report))]
    if report.best is not None:
        also = rows[0].also_in if rows else ()
        lines += ["Why #1:", *(f"  {line}" for line in explain(report.best, plan, also))]
    if plan.rejections:
        lines += ["Rejected:", *rejection_lines(plan)]
    lines.append(f"Prices: {catalog_line}")
    out.append("\n".join(lines))
    return out

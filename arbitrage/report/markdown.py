"""Reports as GitHub-flavoured Markdown (for wikis, pull requests, finance docs). Formatting only."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from arbitrage.planner import BUDGET_REASONS
from arbitrage.plural import plural
from arbitrage.render import explain, usd
from arbitrage.report.breakeven import Breakeven
from arbitrage.report.plan import PlanReport
from arbitrage.report.prices import PriceReport, Quote
from arbitrage.report.summary import (
    PLAN_HEAD,
    assumption_rows,
    breakeven_lines,
    effective_cell,
    instance_cell,
    pct_cell,
    plan_summary,
    priced_cell,
    ratio_cell,
    report_cells,
    sources_cell,
)


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """Markdown table lines; pipes in cells are escaped."""
    lines = ["| " + " | ".join(_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]






def _gpu_hour(q: Quote | None) -> str:
    return "-" if q is None else usd(q.usd_per_gpu_hour)










def prices_markdown(report: PriceReport, generated_at: str, source_note: str) -> str:
    """The price comparison: summary ranking, then one section per GPU model, then sources."""
    ref = report.reference_gpu
    unit = f"$/{ref}-h"
    out = ["# GPU price report", "",
           f"Generated {generated_at} from {plural(report.offers_considered, 'offer')} ({source_note}). Prices in USD "
           "per hour. "
           f"Effective price = USD per GPU-hour ÷ the GPU's {report.workload} throughput relative to {ref} "
           f"(gpus.csv), i.e. USD per {ref}-hour of work. Spot discount = 1 − cheapest spot ÷ cheapest on-demand at "
           "the same provider.", ""]
    if not report.models:
        return "\n".join([*out, "No offer matches these filters.", ""])
    out += ["## Cheapest per unit of work", ""]
    out += table(["GPU", "Rel. throughput", "Cheapest on-demand $/GPU-h", f"Effective {unit}",
                  "Cheapest spot $/GPU-h", f"Effective {unit}", "Source (as of)"],
                 [[m.gpu_model, "-" if m.relative_throughput is None else f"{m.relative_throughput:.2f}x",
                   priced_cell(m.best_on_demand), effective_cell(m.best_on_demand), priced_cell(m.best_spot),
                   effective_cell(m.best_spot),
                   sources_cell((m.best_on_demand, m.best_spot))]
                  for m in report.models])
    if report.unit_model is not None:
        from arbitrage.report.summary import UNIT_HEAD, unit_rows, unit_title

        out += [f"## {unit_title(report)}", ""]
        out += table(list(UNIT_HEAD), unit_rows(report))
    for m in report.models:
        rel = "-" if m.relative_throughput is None else f"{m.relative_throughput:.2f}x"
        out += [f"## {m.gpu_model} ({m.memory_gb:g} GB, {rel} the {report.workload} throughput of {ref})", ""]
        out += table(["Provider", "Tier", "On-demand $/GPU-h", "On-demand $/h per instance", "Spot $/GPU-h",
                      "Spot $/h per instance", "Spot discount", f"Effective on-demand {unit}",
                      f"Effective spot {unit}", "Source (as of)"],
                     [[r.provider, r.tier, _gpu_hour(r.on_demand), instance_cell(r.on_demand), _gpu_hour(r.spot),
                       instance_cell(r.spot), pct_cell(r.spot_discount), effective_cell(r.on_demand),
                       effective_cell(r.spot),
                       sources_cell(r.quotes, named=False)] for r in m.providers])
        out += [f"Spread between tiers ({m.gpu_model}):", ""]
        out += table(["Tier", "Cheapest on-demand $/GPU-h", "x cheapest tier", "Cheapest spot $/GPU-h",
                      "x cheapest tier", "Source (as of)"],
                     [[t.tier, priced_cell(t.on_demand), ratio_cell(t.on_demand_ratio), priced_cell(t.spot),
                     ratio_cell(t.spot_ratio),
                       sources_cell((t.on_demand, t.spot))]
                      for t in m.tiers])
        out += [f"Throughput source: {m.throughput_source}", ""]
    out += ["## Sources", ""]
    out += [f"- **{p}**: {', '.join(e['source'])}, as of {', '.join(e['as_of'])}; {'; '.join(e['price_ref'])}"
            for p, e in report.provenance().items()]
    return "\n".join(out) + "\n"


def plan_markdown(report: PlanReport) -> str:
    """The plan report: summary with savings, ranked breakdown with baselines, why #1, rejections, sources."""
    plan, spec = report.plan, report.plan.spec
    out = [f"# Plan report: {spec.name}", "",
           f"Planned {report.planned_at.isoformat(timespec='seconds')} · {' | '.join(map(str, spec.accelerators))} "
           f"x {plural(spec.num_nodes, 'node')} · {spec.work.describe(spec.workload)} · spot {spec.spot} "
           f"· objective {plan.objective} · {len(plan.placements)} feasible of {plural(plan.candidates, 'candidate')}. "
           "Money in USD; hours are expected wall time.", "", "## Summary", ""]
    out += [f"- {line}" for line in plan_summary(report)] + [""]
    rows = report_cells(report)
    if rows:
        out += ["## Cost breakdown", "", *table(PLAN_HEAD, rows)]
    if report.best is not None:
        also = report.shown_choices[0].also_in if report.shown_choices else ()
        out += ["### Why #1", ""] + [f"- {line}" for line in explain(report.best, plan, also)] + [""]
    out += ["## Rejected", ""]
    out += (table(["Reason", "Candidates", "Budget"],
                  [[r, n, "yes" if r in BUDGET_REASONS else ""] for r, n in plan.rejections.items()])
            if plan.rejections else ["None.", ""])
    out += ["## Sources", ""]
    for provider, entry in report.catalog.items():
        def joined(v: object) -> str:
            return ", ".join(v) if isinstance(v, list) else str(v)
        out.append(f"- **{provider}**: {joined(entry['source'])}, as of {joined(entry['as_of'])}; "
                   f"{joined(entry['price_ref'])} ({plural(entry['offers'], 'offer')})")
    return "\n".join(out) + "\n"


def breakeven_markdown(b: Breakeven) -> str:
    """Rent vs buy: assumptions with sources, findings, and the cumulative comparison by year."""
    own = b.ownership
    out = [f"# Rent vs buy: one {own.gpu}", "", "## Assumptions", ""]
    out += table(["Assumption", "Value", "Source"], assumption_rows(b))
    out += ["## Findings", ""] + [f"- {line}" for line in breakeven_lines(b)] + [""]
    out += [f"## Cumulative cost at {own.utilization:.0%} utilization", ""]
    out += table(["Years", "Own (USD)", "Rent (USD)", "Cheaper"],
                 [[f"{y.years:g}", usd(y.own_usd), usd(y.rent_usd), "own" if y.own_usd < y.rent_usd else "rent"]
                  for y in b.yearly])
    return "\n".join(out)


def breakeven_text(b: Breakeven) -> str:
    """Plain text for a terminal: assumptions (value and source), findings, cumulative table."""
    own = b.ownership
    rows = assumption_rows(b)
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows[:-1])
    out = [f"Rent vs buy: one {own.gpu} (USD)", "Assumptions:"]
    for name, value, source in rows:
        out.append(f"  {name:<{width}}  {value:<{vwidth}}  {source}" if name != "not modelled"
                   else f"  {name:<{width}}  {value}")
    out += ["Findings:", *(f"  {line}" for line in breakeven_lines(b)),
            f"Cumulative cost at {own.utilization:.0%} utilization:", f"  {'years':>5}  {'own':>14}  {'rent':>14}"]
    out += [f"  {y.years:>5g}  {usd(y.own_usd):>14}  {usd(y.rent_usd):>14}" for y in b.yearly]
    return "\n".join(out) + "\n"

"""Sentences shared by the text, Markdown and HTML renderers: plan summary and break-even findings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from arbitrage.catalog import age_days
from arbitrage.costmodel import CostBreakdown
from arbitrage.offers import Offer
from arbitrage.plural import noun, plural
from arbitrage.render import location_cell, usd
from arbitrage.report.breakeven import Breakeven
from arbitrage.report.plan import PlanReport
from arbitrage.report.prices import PriceReport, Quote
from arbitrage.report.tables import NOT_MODELLED

# Cells every report format shows for a quote; "-" where there is no figure.

def _age_text(age: float | None, stale: bool | None) -> str:
    if stale is None:
        return ""
    if age is None:
        return ": STALE"  # no date to count an age from
    return f", {age:.0f} d old" + (": STALE" if stale else "")


def age_note(o: Offer, now: datetime | None, stale_days: float) -> str:
    """', 67 d old' or ', 130 d old: STALE' (': STALE' when undated); '' without a time."""
    if now is None:
        return ""
    age = age_days(o, now)
    return _age_text(age, age is None or age > stale_days)


def quote_provenance(q: Quote | None) -> str:
    """Where a quoted price came from: source, as-of ('~' when estimated) and its age (STALE when too old)."""
    if q is None:
        return "-"
    o = q.offer
    return f"{o.source}, as of {'~' if o.as_of_estimated else ''}{o.as_of}{_age_text(q.age_days, q.stale)}"


def sources_cell(quotes: Iterable[Quote | None], *, named: bool = True) -> str:
    """Distinct provenance of several quotes, each with its provider when ``named``."""
    seen = (f"{q.offer.provider}: {quote_provenance(q)}" if named else quote_provenance(q) for q in quotes if q)
    return "; ".join(dict.fromkeys(seen))


def pct_cell(value: float | None) -> str:
    """A share as a whole percentage."""
    return "-" if value is None else f"{value:.0%}"


def ratio_cell(value: float | None) -> str:
    """A price ratio such as 1.85x."""
    return "-" if value is None else f"{value:.2f}x"


def effective_cell(q: Quote | None) -> str:
    """USD per reference-GPU-hour of work."""
    return "-" if q is None or q.effective_usd_per_ref_gpu_hour is None else usd(q.effective_usd_per_ref_gpu_hour)


def priced_cell(q: Quote | None) -> str:
    """USD per GPU-hour with the provider."""
    return "-" if q is None else f"{usd(q.usd_per_gpu_hour)} ({q.offer.provider})"


def instance_cell(q: Quote | None) -> str:
    """USD per instance-hour with the instance, its GPUs and location."""
    if q is None:
        return "-"
    o = q.offer
    return f"{usd(q.usd_per_hour)} ({o.instance_type}, {plural(o.gpus_per_node, 'GPU')}, {o.location})"


def where(b: CostBreakdown, also: int = 0) -> str:
    """'aws us-east-1/use1-az4 p5.48xlarge x1 spot' ('+N regions' when the same price is offered elsewhere)."""
    p, o = b.placement, b.placement.offer
    return f"{o.provider} {location_cell(o, also)} {o.instance_type} x{p.nodes} {'spot' if p.spot else 'on-demand'}"


def _deadline_note(b: CostBreakdown, deadline_hours: float | None) -> str:
    if deadline_hours is None:
        return ""
    return "; meets the deadline" if b.expected_hours <= deadline_hours else "; misses the deadline"


def placement_cells(label: str, b: CostBreakdown, deadline_hours: float | None, now: datetime | None = None,
                    stale_days: float = 90.0, also: int = 0) -> list[str]:
    """One placement as the plan table's cells: costs, deadline slack and price provenance with its age."""
    o = b.placement.offer
    deadline = "-" if deadline_hours is None else (
        f"ok +{deadline_hours - b.expected_hours:.1f}h" if b.expected_hours <= deadline_hours
        else f"late {b.expected_hours - deadline_hours:.1f}h")
    return [label, where(b, also), usd(b.hourly_usd), f"{b.expected_hours:,.1f}", usd(b.compute_usd),
            usd(b.preemption_usd), usd(b.egress_in_usd), usd(b.egress_out_usd), usd(b.total_usd), deadline,
            f"{o.source}, as of {'~' if o.as_of_estimated else ''}{o.as_of}{age_note(o, now, stale_days)}"]


PLAN_HEAD = ["#", "Placement", "$/h", "Hours", "Compute", "Preemption", "Egress in", "Egress out", "Total",
             "Deadline", "Source (as of)"]


def report_cells(report: PlanReport) -> list[list[str]]:
    """The plan table's rows: the shown choices (+N regions), then the naive and cheapest-listed baselines."""
    plan = report.plan
    now, stale, deadline = report.planned_at, plan.stale_days, plan.deadline_hours
    suffix = " (over budget)" if report.over_budget_only else ""
    rows = [placement_cells(f"#{i}{suffix}", c.best, deadline, now, stale, len(c.also_in))
            for i, c in enumerate(report.shown_choices, start=1)]
    for label, b in (("naive", report.naive), ("cheapest listed", report.cheapest_listed)):
        if b is not None:
            rows.append(placement_cells(label, b, deadline, now, stale))
    return rows


def plan_summary(report: PlanReport) -> list[str]:
    """Chosen placement, naive choice, savings and the cheapest-listed baseline, one sentence each."""
    lines = []
    best = report.best
    if best is not None:
        o = best.placement.offer
        also = len(report.shown_choices[0].also_in) if report.shown_choices else 0
        lines.append(f"Chosen: {where(best, also)}, {usd(best.total_usd)} expected over {best.expected_hours:.1f} h "
                     f"[{o.source}, as of {o.as_of}{age_note(o, report.planned_at, report.plan.stale_days)}]")
    elif report.over_budget_only:
        lines.append("Nothing fits the budget; the cheapest over-budget placements are shown.")
    else:
        lines.append("No feasible placement; see the rejection reasons.")
    if report.naive is not None:
        n, o = report.naive, report.naive.placement.offer
        lines.append(f"Naive (same GPUs, on-demand, on the hyperscaler where the data lives): {where(n)}, "
                     f"{usd(n.total_usd)} over {n.expected_hours:.1f} h [{o.source}, as of {o.as_of}"
                     f"{age_note(o, report.planned_at, report.plan.stale_days)}]"
                     + _deadline_note(n, report.plan.deadline_hours))
    else:
        lines.append("Naive: the first-choice GPUs are not sold on-demand at the data's hyperscaler.")
    saving = report.savings_usd
    if saving is not None:
        share = report.savings_share
        pct = "" if share is None else f" ({abs(share):.0%})"
        lines.append(f"Savings vs naive: {usd(saving)}{pct}" if saving >= 0
                     else f"Savings vs naive: none; the plan costs {usd(-saving)}{pct} more (it meets constraints "
                          "the naive choice ignores)")
    if report.cheapest_listed is not None:
        c, o = report.cheapest_listed, report.cheapest_listed.placement.offer
        lines.append(f"Cheapest listed price (what a price list picks, costed in full): {where(c)}, "
                     f"{usd(c.total_usd)} over {c.expected_hours:.1f} h [{o.source}, as of {o.as_of}"
                     f"{age_note(o, report.planned_at, report.plan.stale_days)}]"
                     + _deadline_note(c, report.plan.deadline_hours))
    if best is not None and best.usd_per_million_tokens is not None:
        def per(b: CostBreakdown | None) -> str:
            value = None if b is None else b.usd_per_million_tokens
            return "-" if value is None else (f"${value:,.4f}" if value < 10 else usd(value))

        lines.append(f"Unit cost: {per(best)} per million tokens chosen, {per(report.naive)} naive, "
                     f"{per(report.cheapest_listed)} cheapest listed")
    return lines


def _num(value: float) -> str:
    return f"{value:,.4g}" if value < 1000 else f"{value:,.0f}"


def assumption_rows(b: Breakeven) -> list[tuple[str, str, str]]:
    """(assumption, value, where it came from) for every input of the comparison."""
    own, src = b.ownership, b.ownership.sources
    return [
        ("GPU", own.gpu, src.get("gpu", "--gpu")),
        ("purchase price per GPU", usd(own.purchase_usd), src.get("purchase_usd", "")),
        ("power per GPU while busy", f"{_num(own.power_w)} W", src.get("power_w", "")),
        ("electricity", f"{usd(own.usd_per_kwh)}/kWh", src.get("usd_per_kwh", "")),
        ("PUE (facility overhead)", f"{own.pue:g}", src.get("pue", "")),
        ("hosting per GPU", f"{usd(own.hosting_usd_per_month)}/month", src.get("hosting_usd_per_month", "")),
        ("period", plural(own.years, "year"), src.get("years", "")),
        ("utilization (busy share of hours)", f"{own.utilization:.0%}", src.get("utilization", "")),
        ("rental price", f"{usd(b.rental.usd_per_gpu_hour)}/GPU-hour", b.rental.provenance),
        ("not modelled", ", ".join(NOT_MODELLED), "owning looks cheaper than it is without them"),
    ]


def breakeven_lines(b: Breakeven) -> list[str]:
    """The findings: hourly rates, break-even months, threshold utilization and the period totals."""
    own = b.ownership
    u = own.utilization
    period = f"{own.years:g} {noun(own.years, 'year')}"
    lines = [
        f"Owning costs {usd(b.own_usd_per_busy_hour)} per busy GPU-hour over {period} at {u:.0%} "
        f"utilization (power {usd(b.power_usd_per_busy_hour)}/busy hour, hosting {usd(b.hosting_usd_per_hour)}/hour "
        f"around the clock, purchase spread over {b.busy_hours:,.0f} busy hours); renting costs "
        f"{usd(b.rental.usd_per_gpu_hour)}.",
    ]
    if b.breakeven_months is None:
        lines.append(f"Break-even: never at {u:.0%} utilization (rent saved each month does not cover power and "
                     "hosting).")
    else:
        years = b.breakeven_months / 12
        within = "within" if b.breakeven_months <= own.years * 12 + 1e-9 else "after"
        lines.append(f"Break-even: after {b.breakeven_months:.1f} months ({years:.1f} years) at {u:.0%} utilization, "
                     f"{within} the {own.years:g}-year period.")
    t = b.threshold_utilization
    if t is None:
        lines.append("Owning never wins: the rental price is below the power bill alone.")
    elif t > 1:
        lines.append(f"Owning never wins within {period}: it would need {t:.0%} utilization.")
    else:
        lines.append(f"Owning wins over {period} above {t:.0%} utilization.")
    verdict = (f"owning saves {usd(b.saving_usd)}" if b.saving_usd >= 0 else f"renting saves {usd(-b.saving_usd)}")
    lines.append(f"{own.years:g}-year totals at {u:.0%} utilization: own {usd(b.own_usd)}, rent {usd(b.rent_usd)}; "
                 f"{verdict}.")
    return lines


# -- USD per million tokens (report prices --model-params-b) -------------------------------------------------------

UNIT_HEAD = ("GPU", "Memory", "Cheapest on-demand $/1M tok", "Cheapest spot $/1M tok", "Throughput basis",
             "Source (as of)")


def unit_title(report: PriceReport) -> str:
    """'USD per million output tokens of a 70B fp8 model (inference), cheapest first'."""
    m = report.unit_model
    kind = "training" if report.workload == "training" else "output"
    size = "" if m is None else f" of a {m.params_b:g}B {m.precision} model"
    return f"USD per million {kind} tokens{size} ({report.workload}), cheapest first"


def unit_cell(q: Quote | None) -> str:
    """'$0.1234 vast 8x-H200' (the offer's unit cost, provider and instance) or '-'."""
    if q is None or q.usd_per_million_tokens is None:
        return "-"
    per = q.usd_per_million_tokens
    cost = f"${per:,.4f}" if per < 10 else usd(per)
    return f"{cost} {q.offer.provider} {q.offer.instance_type}"


def unit_rows(report: PriceReport) -> list[list[str]]:
    """One row per GPU model: cheapest unit cost per option, where the rate comes from (or why there is none)."""
    return [[m.gpu_model, f"{m.memory_gb:g} GB", unit_cell(m.unit_on_demand), unit_cell(m.unit_spot),
             m.unit_basis or m.unit_missing or "-", sources_cell((m.unit_on_demand, m.unit_spot))]
            for m in report.models]

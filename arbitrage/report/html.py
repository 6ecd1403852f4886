"""Self-contained HTML reports: one file, inline CSS and inline SVG charts, no script and nothing fetched.

Every chart is a <figure> whose data-sources / data-as-of attributes and <figcaption> name the providers,
sources and as-of dates of the figures in it; every table row carries its own source and as-of. All text
is escaped. Formatting only: the numbers come from the report builders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape

from arbitrage.costmodel import CostBreakdown
from arbitrage.plural import plural
from arbitrage.render import explain, usd
from arbitrage.report import svg
from arbitrage.report.plan import PlanReport
from arbitrage.report.prices import ModelSection, PriceReport, Quote
from arbitrage.report.summary import (
    PLAN_HEAD,
    effective_cell,
    instance_cell,
    pct_cell,
    plan_summary,
    priced_cell,
    ratio_cell,
    report_cells,
    sources_cell,
    where,
)

OD_COLOR, SPOT_COLOR = "#2563eb", "#ea580c"
SERIES = {"on-demand": OD_COLOR, "spot": SPOT_COLOR}
COST_SERIES = {"compute": "#2563eb", "preemption": "#f59e0b", "egress": "#7c3aed"}

CSS = """
:root{color-scheme:light}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2937;
 margin:0 auto;max-width:1000px;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 6px;border-bottom:1px solid #e5e7eb}
h3{font-size:15px;margin:18px 0 6px}
p.meta,p.note,figcaption{color:#4b5563;font-size:12.5px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:12.5px;width:100%}
th,td{border:1px solid #e5e7eb;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
figure{margin:12px 0 20px}svg.chart-svg{max-width:100%;height:auto}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
.chart-title{font-size:13px;font-weight:600;fill:#111827}.legend,.tick,.sub{font-size:11px;fill:#4b5563}
.axis{font-size:11.5px;fill:#374151}.cat{font-size:12px;fill:#111827}.val{font-size:11px;fill:#111827}
line.grid{stroke:#e5e7eb;stroke-width:1}
.good{color:#047857;font-weight:600}.bad{color:#b91c1c;font-weight:600}
ul.lines{margin:4px 0 12px;padding-left:18px;font-size:12.5px}
@media print{body{max-width:none}h2{break-after:avoid}figure,table{break-inside:avoid}}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = (), cls: str = "") -> str:
    """A table; cells are escaped here, numeric columns right-aligned."""
    right = set(numeric)
    out = [f'<table class="{_e(cls)}"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="num">{_e(c)}</td>' if i in right else f"<td>{_e(c)}</td>"
                                     for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _figure(chart: str, caption: str, items: Iterable[tuple[str, str, str]], kind: str) -> str:
    """A chart in a <figure> with its provenance: (provider, source, as_of) of every figure shown."""
    seen: dict[str, tuple[set[str], set[str]]] = {}
    for provider, source, as_of in items:
        entry = seen.setdefault(provider, (set(), set()))
        entry[0].add(source)
        entry[1].add(as_of)
    sources = sorted({s for e in seen.values() for s in e[0]})
    dates = sorted({d for e in seen.values() for d in e[1]})
    prov = "; ".join(f"{p}: {', '.join(sorted(s))}, as of {', '.join(sorted(d))}" for p, (s, d) in sorted(seen.items()))
    return (f'<figure class="chart" data-kind="{_e(kind)}" data-providers="{_e(" ".join(sorted(seen)))}" '
            f'data-sources="{_e(" ".join(sources))}" data-as-of="{_e("; ".join(dates))}">{chart}'
            f"<figcaption>{_e(caption)} Source and as-of per provider: {_e(prov or 'none')}.</figcaption></figure>")














def _bar(q: Quote, unit: str, group: str) -> svg.Bar:
    o = q.offer
    value = q.effective_usd_per_ref_gpu_hour or 0.0
    return svg.Bar(
        series=q.option, value=value,
        label=f"{usd(value)} {q.option} · {o.provider} · {o.source}, as of {o.as_of}",
        provider=o.provider, source=o.source, as_of=o.as_of,
        tooltip=(f"{group}: {o.provider} {o.location} {o.instance_type}, {q.option} {usd(q.usd_per_gpu_hour)}/GPU-hour "
                 f"= {usd(value)} {unit} [{o.source}, as of {o.as_of}; {o.price_ref}]"),
    )


def _model_title(m: ModelSection, report: PriceReport) -> str:
    rel = "-" if m.relative_throughput is None else f"{m.relative_throughput:.2f}x"
    return f"{m.gpu_model} ({m.memory_gb:g} GB, {rel} the {report.workload} throughput of {report.reference_gpu})"


def _unit_bar(q: Quote, group: str) -> svg.Bar:
    o, value = q.offer, q.usd_per_million_tokens or 0.0
    cost = f"${value:,.4f}" if value < 10 else usd(value)
    return svg.Bar(
        series=q.option, value=value, label=f"{cost} {q.option} · {o.provider} · {o.source}, as of {o.as_of}",
        provider=o.provider, source=o.source, as_of=o.as_of,
        tooltip=(f"{group}: {o.provider} {o.location} {o.instance_type}, {q.option} {usd(q.usd_per_hour)}/h per "
                 f"instance = {cost} per million tokens [{o.source}, as of {o.as_of}; {o.price_ref}]"))


def _unit_section(report: PriceReport) -> str:
    """USD per million tokens of the report's model: chart (on-demand vs spot per GPU model) and table."""
    from arbitrage.report.summary import UNIT_HEAD, unit_rows, unit_title

    title = unit_title(report)
    groups, items = [], []
    for m in report.models:
        bars = tuple(_unit_bar(q, m.gpu_model) for q in (m.unit_on_demand, m.unit_spot)
                     if q is not None and q.usd_per_million_tokens is not None)
        if bars:
            groups.append(svg.Group(m.gpu_model, f"{m.memory_gb:g} GB", bars))
            items += [(b.provider, b.source, b.as_of) for b in bars]
    parts = ['<section id="unit-cost"><h2>' + _e(title) + "</h2>",
             '<p class="note">Per offer: the instance\'s USD per hour x the hours its tensor-parallel replicas of '
             "the model take for a million tokens, at the output tokens/s per GPU of the cited benchmark "
             "(inference_throughput.csv) or 6 x N FLOPs per token at peak x MFU (training); GPUs without a figure "
             "for this model size and precision, or that cannot hold it, have none.</p>"]
    if groups:
        chart = svg.grouped_bar_chart(groups, SERIES, chart_id="chart-unit-cost", title=title,
                                      axis="USD per million tokens (lower is better)", fmt=usd)
        parts.append(_figure(chart, "Cheapest on-demand and spot offer of each GPU model per million tokens.",
                             items, "unit-cost"))
    parts.append(_table(list(UNIT_HEAD), unit_rows(report), numeric=(2, 3), cls="unit-cost"))
    parts.append("</section>")
    return "".join(parts)


def prices_html(report: PriceReport, generated_at: str, source_note: str) -> str:
    """The price comparison as one self-contained HTML page with charts."""
    ref = report.reference_gpu
    unit = f"$/{ref}-hour"
    axis = f"USD per {ref} GPU-hour of {report.workload} work (price per GPU-hour / relative throughput)"
    parts = [
        "<header><h1>GPU price report</h1>",
        f'<p class="meta">Generated {_e(generated_at)} from {plural(report.offers_considered, "offer")} '
        f"({_e(source_note)}). "
        f"Prices in USD per hour. <b>Effective price</b> = USD per GPU-hour ÷ the GPU's {_e(report.workload)} "
        f"throughput relative to {_e(ref)} (gpus.csv), i.e. USD per {_e(ref)}-hour of work: a faster GPU at a "
        "higher hourly price can be the cheaper one. Spot discount = 1 − cheapest spot ÷ cheapest on-demand at "
        "the same provider.</p></header>",
    ]
    models = report.models
    if not models:
        parts.append("<p>No offer matches these filters.</p>")
        return _page("GPU price report", "".join(parts))

    # Summary: cheapest per unit of work, per GPU model.
    groups, items, rows = [], [], []
    for m in models:
        bars = tuple(_bar(q, unit, m.gpu_model) for q in (m.best_on_demand, m.best_spot)
                     if q is not None and q.effective_usd_per_ref_gpu_hour is not None)
        rel = "-" if m.relative_throughput is None else f"{m.relative_throughput:.2f}x {ref}"
        groups.append(svg.Group(m.gpu_model, rel, bars))
        items += [(b.provider, b.source, b.as_of) for b in bars]
        od, sp = m.best_on_demand, m.best_spot
        rows.append([m.gpu_model, rel, priced_cell(od), effective_cell(od), priced_cell(sp), effective_cell(sp),
                     sources_cell((od, sp))])
    chart = svg.grouped_bar_chart(groups, SERIES, chart_id="chart-summary",
                                  title=f"Cheapest effective price per GPU model ({unit}), on-demand vs spot",
                                  axis=axis, fmt=usd)
    parts.append('<section id="summary"><h2>Cheapest per unit of work</h2>')
    parts.append(_figure(chart, f"Cheapest on-demand and spot offer of each GPU model in {unit}; lower is better.",
                         items, "summary"))
    parts.append(_table(["GPU", "Relative throughput", "Cheapest on-demand $/GPU-h", f"Effective {unit}",
                         "Cheapest spot $/GPU-h", f"Effective {unit}", "Source (as of)"], rows, numeric=(2, 3, 4, 5)))
    parts.append("</section>")
    if report.unit_model is not None:
        parts.append(_unit_section(report))

    for m in models:
        slug = _slug(m.gpu_model)
        groups = [svg.Group(r.provider, r.tier, tuple(_bar(q, unit, m.gpu_model) for q in r.quotes
                                                      if q.effective_usd_per_ref_gpu_hour is not None))
                  for r in m.providers]
        groups = [g for g in groups if g.bars]
        parts.append(f'<section id="gpu-{_e(slug)}"><h2>{_e(_model_title(m, report))}</h2>')
        if groups:
            chart = svg.grouped_bar_chart(groups, SERIES, chart_id=f"chart-{slug}",
                                          title=f"{m.gpu_model}: effective {unit} by provider, on-demand vs spot",
                                          axis=axis, fmt=usd)
            parts.append(_figure(chart, f"Cheapest {m.gpu_model} offer per provider in {unit}.",
                                 [(b.provider, b.source, b.as_of) for g in groups for b in g.bars], "provider"))
        else:
            parts.append(f'<p class="note">No throughput fact for {_e(m.gpu_model)}: effective prices unavailable.</p>')
        parts.append(_table(
            ["Provider", "Tier", "On-demand $/GPU-h", "On-demand $/h per instance", "Spot $/GPU-h",
             "Spot $/h per instance", "Spot discount", f"Effective on-demand {unit}", f"Effective spot {unit}",
             "Source (as of)"],
            [[r.provider, r.tier, usd(r.on_demand.usd_per_gpu_hour) if r.on_demand else "-", instance_cell(r.on_demand),
              usd(r.spot.usd_per_gpu_hour) if r.spot else "-", instance_cell(r.spot), pct_cell(r.spot_discount),
              effective_cell(r.on_demand), effective_cell(r.spot), sources_cell(r.quotes, named=False)]
             for r in m.providers], numeric=(2, 4, 6, 7, 8), cls="offers"))
        parts.append("<h3>Spread between tiers</h3>")
        parts.append(_table(
            ["Tier", "Cheapest on-demand $/GPU-h", "x cheapest tier", "Cheapest spot $/GPU-h", "x cheapest tier",
             "Source (as of)"],
            [[t.tier, priced_cell(t.on_demand), ratio_cell(t.on_demand_ratio), priced_cell(t.spot),
              ratio_cell(t.spot_ratio),
              sources_cell((t.on_demand, t.spot))]
             for t in m.tiers], numeric=(1, 2, 3, 4), cls="tiers"))
        parts.append(f'<p class="note">Throughput source: {_e(m.throughput_source)}</p></section>')

    parts.append('<section id="sources"><h2>Sources</h2><ul class="lines">')
    for provider, entry in report.provenance().items():
        parts.append(f"<li><b>{_e(provider)}</b>: {_e(', '.join(entry['source']))}, as of "
                     f"{_e(', '.join(entry['as_of']))}; {_e('; '.join(entry['price_ref']))}</li>")
    parts.append("</ul></section>")
    return _page("GPU price report", "\n".join(parts))


# ---------------------------------------------------------------------------------------------
# Plan
# ---------------------------------------------------------------------------------------------

def _stack(label: str, b: CostBreakdown) -> svg.StackedRow:
    o = b.placement.offer
    return svg.StackedRow(
        label=label, sublabel=f"{o.provider} {o.region} {o.instance_type} {'spot' if b.placement.spot else 'OD'}",
        segments=(("compute", b.compute_usd), ("preemption", b.preemption_usd), ("egress", b.egress_usd)),
        total_label=f"{usd(b.total_usd)} · {o.source}, as of {o.as_of}",
        provider=o.provider, source=o.source, as_of=o.as_of,
        tooltip=(f"{label}: {where(b)}: compute {usd(b.compute_usd)} + preemption {usd(b.preemption_usd)} + egress "
                 f"{usd(b.egress_usd)} = {usd(b.total_usd)} [{o.source}, as of {o.as_of}; {o.price_ref}]"),
    )


def plan_html(report: PlanReport) -> str:
    """The plan report as one self-contained HTML page: ranking, breakdown chart, baselines, rejections."""
    plan, spec = report.plan, report.plan.spec
    title = f"Plan report: {spec.name}"
    parts = [f"<header><h1>{_e(title)}</h1>",
             f'<p class="meta">Planned {_e(report.planned_at.isoformat(timespec="seconds"))} · '
             f"{_e(' | '.join(map(str, spec.accelerators)))} x {plural(spec.num_nodes, 'node')} · "
             f"{_e(spec.work.describe(spec.workload))} · spot {_e(spec.spot)} · "
             f"objective {_e(plan.objective)} · {len(plan.placements)} feasible of "
             f"{plural(plan.candidates, 'candidate')}. "
             "Money in USD, hours are expected wall time.</p></header>"]

    best, shown = report.best, report.shown
    parts.append('<section id="summary"><h2>Summary</h2><ul class="lines">'
                 + "".join(f"<li>{_e(line)}</li>" for line in plan_summary(report)) + "</ul></section>")

    stacks = [_stack(f"#{i}" if not report.over_budget_only else f"#{i} (over budget)", b)
              for i, b in enumerate(shown, start=1)]
    if report.naive is not None:
        stacks.append(_stack("naive", report.naive))
    if report.cheapest_listed is not None:
        stacks.append(_stack("cheapest listed", report.cheapest_listed))
    if stacks:
        chart = svg.stacked_bar_chart(stacks, COST_SERIES, chart_id="chart-breakdown",
                                      title="Expected total cost per placement: compute + preemption + egress (USD)",
                                      axis="USD expected for the whole job", fmt=usd)
        parts.append('<section id="breakdown"><h2>Cost breakdown</h2>')
        parts.append(_figure(chart, "Ranked placements, then the naive and cheapest-listed baselines.",
                             [(s.provider, s.source, s.as_of) for s in stacks], "breakdown"))
        parts.append(_table(PLAN_HEAD, report_cells(report), numeric=(2, 3, 4, 5, 6, 7, 8), cls="placements"))
        if best is not None:
            also = report.shown_choices[0].also_in if report.shown_choices else ()
            parts.append("<h3>Why #1</h3><ul class=\"lines\">"
                         + "".join(f"<li>{_e(line)}</li>" for line in explain(best, plan, also)) + "</ul>")
        parts.append("</section>")

    parts.append('<section id="rejected"><h2>Rejected</h2>')
    if plan.rejections:
        from arbitrage.planner import BUDGET_REASONS

        parts.append(_table(["Reason", "Candidates", "Budget"],
                            [[reason, str(n), "yes" if reason in BUDGET_REASONS else ""]
                             for reason, n in plan.rejections.items()], numeric=(1,), cls="rejections"))
    else:
        parts.append("<p>None.</p>")
    parts.append("</section>")

    parts.append('<section id="sources"><h2>Sources</h2><ul class="lines">')
    for provider, entry in report.catalog.items():
        def joined(v: object) -> str:
            return ", ".join(v) if isinstance(v, list) else str(v)
        parts.append(f"<li><b>{_e(provider)}</b>: {_e(joined(entry['source']))}, as of {_e(joined(entry['as_of']))}; "
                     f"{_e(joined(entry['price_ref']))} ({plural(entry['offers'], 'offer')})</li>")
    parts.append("</ul></section>")
    return _page(title, "\n".join(parts))

"""Renderers: offers and plans as text tables (texttable.py), JSON, CSV or Markdown. Formatting only, no decisions."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from arbitrage.catalog import age_days, age_label, is_stale
from arbitrage.costmodel import CostBreakdown
from arbitrage.offers import Offer
from arbitrage.planner import BUDGET_REASONS, Choice, Plan
from arbitrage.plural import noun, plural

if TYPE_CHECKING:
    from arbitrage.errors import GpuarbError

# The age past which a price is flagged stale when the caller gives none (arbitrage/data/assumptions.toml).
DEFAULT_STALE_DAYS = 90.0


def usd(value: float | None) -> str:
    """'$1,234.56' (or '-' when there is no price)."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "∞"
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.3f}"


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None:
        return None
    return round(value, digits) if math.isfinite(value) else None


# ---------------------------------------------------------------------------------------------
# Prices
# ---------------------------------------------------------------------------------------------

PRICE_FIELDS = (
    "provider", "region", "zone", "country", "continent", "instance_type", "accelerator", "gpu_model",
    "gpus_per_node", "gpu_memory_gb", "on_demand_usd_per_hour", "spot_usd_per_hour", "on_demand_usd_per_gpu_hour",
    "spot_usd_per_gpu_hour", "interconnect", "interconnect_gbps", "available", "host_reliability", "source", "as_of",
    "as_of_estimated", "age_days", "stale", "price_ref",
)


def _age(o: Offer, now: datetime | None) -> float | None:
    if now is None:
        return None
    age = age_days(o, now)
    return None if age is None else round(age, 1)


def age_fields(o: Offer, now: datetime | None, stale_days: float = DEFAULT_STALE_DAYS) -> dict[str, Any]:
    """as_of, whether it is estimated, its age in days at ``now`` and whether that is stale (None without ``now``)."""
    return {"as_of": o.as_of, "as_of_estimated": o.as_of_estimated, "age_days": _age(o, now),
            "stale": None if now is None else is_stale(o, now, stale_days)}


def offer_record(o: Offer, now: datetime | None = None, stale_days: float = DEFAULT_STALE_DAYS) -> dict[str, Any]:
    """An offer as a flat dict with explicit units (USD per hour per instance and per GPU) and its price's age."""
    return {
        "provider": o.provider, "region": o.region, "zone": o.zone, "country": o.country or None,
        "continent": o.continent or None, "instance_type": o.instance_type,
        "accelerator": o.accelerator, "gpu_model": o.gpu_model, "gpus_per_node": o.gpus_per_node,
        "gpu_memory_gb": o.gpu_memory_gb,
        "on_demand_usd_per_hour": o.on_demand_usd_per_hour, "spot_usd_per_hour": o.spot_usd_per_hour,
        "on_demand_usd_per_gpu_hour": _round(o.usd_per_gpu_hour(False)),
        "spot_usd_per_gpu_hour": _round(o.usd_per_gpu_hour(True)),
        "interconnect": o.interconnect, "interconnect_gbps": o.interconnect_gbps,
        "available": o.available, "host_reliability": o.host_reliability,
        "source": o.source, **age_fields(o, now, stale_days), "price_ref": o.price_ref,
    }


def prices_json(offers: Sequence[Offer], total: int, now: datetime | None = None,
                stale_days: float = DEFAULT_STALE_DAYS) -> str:
    """JSON document: matching offer count and the rows shown, each with its price's age at ``now``."""
    return json.dumps({"matching": total, "shown": len(offers), "now": None if now is None else now.isoformat(),
                       "stale_after_days": stale_days,
                       "offers": [offer_record(o, now, stale_days) for o in offers]}, indent=2)


def prices_csv(offers: Sequence[Offer], now: datetime | None = None, stale_days: float = DEFAULT_STALE_DAYS) -> str:
    """CSV with a header row, one offer per line."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PRICE_FIELDS, lineterminator="\n")
    writer.writeheader()
    for o in offers:
        writer.writerow({k: "" if v is None else v for k, v in offer_record(o, now, stale_days).items()})
    return buf.getvalue()


_PRICE_HEAD = ("Provider", "Location", "Instance", "GPUs", "On-demand $/h", "Spot $/h", "OD $/GPU-h",
               "Spot $/GPU-h", "Fabric", "Source (as of)", "Age")


def source_cell(o: Offer) -> str:
    """'snapshot (2026-09-25)', with '~' before an estimated date."""
    return f"{o.source} ({'~' if o.as_of_estimated else ''}{o.as_of})"


def _age_cell(o: Offer, now: datetime | None, stale_days: float) -> str:
    return "-" if now is None else age_label(o, now, stale_days)


def _price_cells(o: Offer, now: datetime | None = None, stale_days: float = DEFAULT_STALE_DAYS) -> list[str]:
    fabric = o.interconnect if o.interconnect in ("none", "ethernet") else f"{o.interconnect} {o.interconnect_gbps:g}G"
    return [
        o.provider, o.location, o.instance_type, f"{o.gpus_per_node}x {o.gpu_model} {o.gpu_memory_gb:g}GB",
        usd(o.on_demand_usd_per_hour), usd(o.spot_usd_per_hour), usd(o.usd_per_gpu_hour(False)),
        usd(o.usd_per_gpu_hour(True)), fabric, source_cell(o), _age_cell(o, now, stale_days),
    ]


def prices_markdown(offers: Sequence[Offer], total: int, now: datetime | None = None,
                    stale_days: float = DEFAULT_STALE_DAYS) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(_PRICE_HEAD) + " |", "|" + "---|" * len(_PRICE_HEAD)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _price_cells(o, now, stale_days)) + " |"
              for o in offers]
    if total > len(offers):
        lines.append(f"\n{total - len(offers)} more matching offers not shown.")
    return "\n".join(lines) + "\n"


def prices_table(offers: Sequence[Offer], total: int, title: str, now: datetime | None = None,
                 stale_days: float = DEFAULT_STALE_DAYS):
    """A table of offers, cheapest first, with each price's age ('stale' past ``stale_days``)."""
    from arbitrage.texttable import TextTable

    table = TextTable(title=title)
    for i, head in enumerate(_PRICE_HEAD):
        table.add_column(head, justify="right" if 4 <= i <= 7 or i == 10 else "left", no_wrap=i < 3)
    for o in offers:
        table.add_row(*_price_cells(o, now, stale_days))
    if total > len(offers):
        table.caption = f"{total - len(offers)} more matching offers not shown (use --limit 0 for all)"
    return table


# ---------------------------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------------------------

def _also_in_record(b: CostBreakdown) -> dict[str, Any]:
    o = b.placement.offer
    return {"region": o.region, "zone": o.zone, "country": o.country or None, "continent": o.continent or None,
            "available": o.available, "source": o.source, "as_of": o.as_of}


def unit_record(b: CostBreakdown) -> dict[str, Any] | None:
    """How a placement does work stated in tokens (arbitrage.units): rate, layout, memory, basis; None otherwise."""
    u = b.unit
    if u is None:
        return None
    return {
        "tokens": u.tokens, "tasks": u.tasks, "tokens_per_second": _round(u.tokens_per_second, 2),
        "work_hours_range": [_round(u.work_hours_low), _round(u.work_hours_high)],
        "gpus_used_per_node": u.gpus_used_per_node, "tensor_parallel": u.tensor_parallel,
        "replicas_per_node": u.replicas_per_node, "memory_need_gb": _round(u.memory_need_gb, 2),
        "precision": u.precision, "comparable": u.comparable, "basis": u.basis, "sources": list(u.urls),
    }


def placement_record(b: CostBreakdown, rank: int, deadline_hours: float | None, now: datetime | None = None,
                     stale_days: float = DEFAULT_STALE_DAYS,
                     also_in: Sequence[CostBreakdown] = ()) -> dict[str, Any]:
    """A costed placement as a flat dict; every money field in USD, every duration in hours, the price's age in days
    at ``now``, and ``also_in``: the other regions/zones where the same choice costs the same."""
    p, o = b.placement, b.placement.offer
    slack = None if deadline_hours is None else deadline_hours - b.expected_hours
    return {
        "rank": rank,
        "provider": o.provider, "region": o.region, "zone": o.zone, "country": o.country or None,
        "continent": o.continent or None, "instance_type": o.instance_type,
        "accelerator": o.accelerator, "gpu_model": o.gpu_model, "gpus_per_node": o.gpus_per_node,
        "nodes": p.nodes, "spot": p.spot,
        "hourly_usd": _round(b.hourly_usd), "expected_hours": _round(b.expected_hours),
        "work_hours": _round(b.work_hours), "checkpoint_hours": _round(b.checkpoint_hours),
        "provision_hours": _round(b.provision_hours), "staging_hours": _round(b.staging_hours),
        "preemption_hours": _round(b.preemption_hours), "expected_preemptions": _round(b.expected_preemptions),
        "compute_usd": _round(b.compute_usd, 2), "preemption_usd": _round(b.preemption_usd, 2),
        "egress_usd": _round(b.egress_usd, 2), "egress_in_usd": _round(b.egress_in_usd, 2),
        "egress_out_usd": _round(b.egress_out_usd, 2), "total_usd": _round(b.total_usd, 2),
        "usd_per_million_tokens": _round(b.usd_per_million_tokens), "usd_per_task": _round(b.usd_per_task, 6),
        "unit": unit_record(b),
        "meets_deadline": None if slack is None else slack >= 0,
        "deadline_slack_hours": _round(slack),
        "deadline_probability": _round(b.deadline_probability),
        "preemptions_per_hour": _round(b.preemptions_per_hour) if p.spot else 0.0,
        "preemption_source": b.preemption_source or None,
        "capacity": b.capacity or None, "capacity_demoted": b.capacity_demoted,
        "interconnect": o.interconnect, "interconnect_gbps": o.interconnect_gbps,
        "scaling_efficiency": _round(b.scaling_efficiency), "relative_throughput": _round(b.relative_throughput),
        "available": o.available, "host_reliability": o.host_reliability,
        "source": o.source, **age_fields(o, now, stale_days), "price_ref": o.price_ref,
        "launch_price": "estimate" if b.launch_note else "exact", "launch_note": b.launch_note or None,
        "also_in": [_also_in_record(c) for c in also_in],
    }


def choice_record(c: Choice, rank: int, plan: Plan) -> dict[str, Any]:
    """One row of the plan: the placement, with its same-price alternatives in ``also_in``."""
    return placement_record(c.best, rank, plan.deadline_hours, plan.now, plan.stale_days, c.also_in)


def plan_record(plan: Plan, top: int, now: datetime, catalog: dict[str, Any]) -> dict[str, Any]:
    """The whole plan as a JSON-ready dict: placements (one per real choice), over-budget fallbacks, rejections,
    provenance. Placements that differ only by region/zone at the same price are one row, the rest in ``also_in``."""
    spec = plan.spec
    if plan.now is None:  # a Plan built by hand: ages are counted from the time the record is made for
        from dataclasses import replace

        plan = replace(plan, now=now)
    shown = plan.choices[:top] if top > 0 else plan.choices
    fallback = plan.over_budget_choices[:top] if top > 0 else plan.over_budget_choices
    return {
        "job": spec.name,
        "spec": spec.path,
        "objective": plan.objective,
        "planned_at": now.isoformat(),
        "stale_after_days": plan.stale_days,
        "request": {
            "accelerators": [str(a) for a in spec.accelerators], "ordered": spec.ordered,
            "num_nodes": spec.num_nodes, "work_gpu_hours": spec.work.gpu_hours, "reference": spec.work.reference,
            "work": _work_record(spec),
            "work_known": spec.work.known,
            "wall_hours_assumed": spec.work.wall_hours,
            "data": None if spec.data is None else {"provider": spec.data.provider, "region": spec.data.region or None,
                                                    "size_gb": spec.data.size_gb, "uri": spec.data.uri},
            "pins": [{"accelerator": str(c.accelerator), "provider": c.provider, "region": c.region, "zone": c.zone,
                      "use_spot": c.spot} for c in spec.candidates],
            "spot": spec.spot, "interconnect": spec.interconnect,
            "deadline": None if spec.deadline is None else str(spec.deadline),
            "deadline_hours": _round(plan.deadline_hours),
            "deadline_confidence": plan.confidence,
            "max_total_usd": spec.budget.max_total_usd, "max_hourly_usd": spec.budget.max_hourly_usd,
            "geo": {"allow": None if spec.geo_allow is None else list(spec.geo_allow), "deny": list(spec.geo_deny)},
            "tags": spec.tags,
        },
        "notes": list(spec.notes),
        "candidates": plan.candidates,
        "feasible": len(plan.placements),
        "choices": len(plan.choices),
        "placements": [choice_record(c, i + 1, plan) for i, c in enumerate(shown)],
        "over_budget": [] if plan.placements else [choice_record(c, i + 1, plan) for i, c in enumerate(fallback)],
        "rejected": plan.rejections,
        "capacity_note": plan.capacity_note,
        "right_sizing": _right_size_record(plan),
        "catalog": catalog,
    }


def _work_record(spec: Any) -> dict[str, Any] | None:
    """Work stated in tokens, as the spec gives it (None for GPU-hour work)."""
    w = spec.work.tokens
    if w is None:
        return None
    return {"workload": spec.workload, "tokens": w.tokens, "input_tokens": w.input_tokens,
            "total_tokens": w.total_tokens, "tasks": w.tasks, "tokens_per_task": w.tokens_per_task,
            "model": {"name": w.model.name, "params_b": w.model.params_b, "precision": w.model.precision},
            "description": w.describe(spec.workload)}


def _right_size_record(plan: Plan) -> dict[str, Any] | None:
    hint = plan.right_size
    if hint is None:
        return None
    return {"need_gb": _round(hint.need_gb, 2), "rule": hint.rule,
            "fits": [{"gpu_model": f.gpu_model, "gpu_memory_gb": f.gpu_memory_gb, "gpus": f.gpus} for f in hint.fits],
            "cheaper": None if hint.cheaper is None else placement_record(hint.cheaper, 0, plan.deadline_hours,
                                                                          plan.now, plan.stale_days),
            "considered": hint.considered, "advice": hint.advice or None}


def plan_json(plan: Plan, top: int, now: datetime, catalog: dict[str, Any]) -> str:
    """The plan as an indented JSON document."""
    return json.dumps(plan_record(plan, top, now, catalog), indent=2)


_PLAN_HEAD = ("#", "Provider", "Location", "Instance", "GPUs", "Buy", "$/h", "Hours", "Compute", "Preempt",
              "Egress", "Total", "Deadline", "Fabric", "Age", "Risk")


def _deadline_cell(b: CostBreakdown, deadline_hours: float | None) -> str:
    if deadline_hours is None:
        return "-"
    slack = deadline_hours - b.expected_hours
    cell = f"ok +{slack:.1f}h" if slack >= 0 else f"late {-slack:.1f}h"
    if b.deadline_probability is not None and b.placement.spot:
        shown = _probability(b.deadline_probability)
        cell += f" p{'' if shown.startswith('>') else '='}{shown}"
    return cell


def _probability(p: float) -> str:
    """'0.987', '>0.999' (never a rounded 1.000 for a spot placement that can still miss)."""
    return ">0.999" if 0.9995 <= p < 1 else f"{p:.3f}"


def risk_cell(b: CostBreakdown) -> str:
    """'0.234/h advisor 5-10%' for spot (per instance), plus the capacity signal; '-' when neither applies."""
    parts = [f"{b.preemptions_per_hour:.3g}/h {b.preemption_label}"] if b.placement.spot else []
    if b.capacity:
        parts.append(b.capacity)
    return "; ".join(parts) or "-"


def location_cell(o: Offer, also: int) -> str:
    """'us-east-1/use1-az4', with '+N regions' when the same choice costs the same elsewhere."""
    return o.location + (f" +{plural(also, 'region')}" if also else "")


def _as_choices(rows: Sequence[CostBreakdown | Choice]) -> list[Choice]:
    return [r if isinstance(r, Choice) else Choice(r) for r in rows]


def has_units(rows: Sequence[CostBreakdown | Choice]) -> bool:
    """True when the rows are costed from work in tokens (the table then shows USD per million tokens)."""
    return any(c.best.unit is not None for c in _as_choices(rows))


def unit_cell(b: CostBreakdown) -> str:
    """'$0.0123' per million tokens (with '/task' cost when the work is tasks), '-' for GPU-hour work."""
    per = b.usd_per_million_tokens
    if per is None:
        return "-"
    cell = f"${per:,.4f}" if per < 10 else usd(per)
    task = b.usd_per_task
    return cell + (f" ({usd(task)}/task)" if task is not None else "")


def plan_rows(rows: Sequence[CostBreakdown | Choice], deadline_hours: float | None, now: datetime | None = None,
              stale_days: float = DEFAULT_STALE_DAYS, unit_column: bool = False) -> list[list[str]]:
    """Table cells for ranked placements (or choices, whose alternatives show as '+N regions'); with
    ``unit_column`` a last cell of USD per million tokens."""
    out = []
    for i, c in enumerate(_as_choices(rows), start=1):
        b = c.best
        p, o = b.placement, b.placement.offer
        fabric = o.interconnect if not o.has_rdma else f"{o.interconnect} {o.interconnect_gbps:g}G"
        out.append([
            str(i), o.provider, location_cell(o, len(c.also_in)), o.instance_type,
            f"{p.nodes}x{o.gpus_per_node} {o.gpu_model}", "spot" if p.spot else "on-demand",
            f"{'~' if b.launch_note else ''}{usd(b.hourly_usd)}",
            f"{b.expected_hours:,.1f}", usd(b.compute_usd), usd(b.preemption_usd), usd(b.egress_usd), usd(b.total_usd),
            _deadline_cell(b, deadline_hours), fabric, _age_cell(o, now, stale_days), risk_cell(b),
        ] + ([unit_cell(b)] if unit_column else []))
    return out


# The compact plan table (readable at 100 columns): rank, where, what, $/h, hours, total; the deadline column with
# a deadline and the risk column with a spot placement. `--wide` shows every column of _PLAN_HEAD.
_COMPACT = (0, 1, 2, 3, 4, 5, 6, 7, 11)


def plan_table(rows: Sequence[CostBreakdown | Choice], deadline_hours: float | None, title: str,
               now: datetime | None = None, stale_days: float = DEFAULT_STALE_DAYS, wide: bool = True):
    """A table of ranked placements with the cost breakdown and each price's age (``wide``), or the compact
    columns that fit 100 terminal columns."""
    from arbitrage.texttable import TextTable

    table = TextTable(title=title)
    units = has_units(rows)
    shown = list(range(len(_PLAN_HEAD)))
    if not wide:
        shown = list(_COMPACT) + ([12] if deadline_hours is not None else [])
        if any(c.best.placement.spot for c in _as_choices(rows)):
            shown.append(15)
    for i in shown:
        table.add_column(_PLAN_HEAD[i], justify="right" if i == 0 or 6 <= i <= 11 or i == 14 else "left",
                         no_wrap=1 <= i <= 4 or 6 <= i <= 11)
    if units:
        table.add_column("$/1M tok", justify="right")
    for row in plan_rows(rows, deadline_hours, now, stale_days, unit_column=units):
        table.add_row(*([row[i] for i in shown] + list(row[len(_PLAN_HEAD):])))
    if any(c.best.launch_note for c in _as_choices(rows)):
        table.caption = ("~$/h: an estimate at launch (the launcher picks the zone or the offer; JSON `launch_note` "
                         "says why)")
    return table


def age_sentence(o: Offer, now: datetime | None, stale_days: float) -> str:
    """'as of 2026-09-25, 67 days old' (with 'estimated' and a STALE warning where they apply)."""
    stamp = f"as of {'~' if o.as_of_estimated else ''}{o.as_of}" + (" (estimated)" if o.as_of_estimated else "")
    if now is None:
        return stamp
    age = age_days(o, now)
    if age is None:
        return f"{stamp}; STALE: the price carries no date"
    days = f"{plural(round(age * 24), 'hour')} old" if age < 1 else f"{plural(round(age), 'day')} old"
    if age > stale_days:
        return (f"{stamp}, {days}; STALE: older than {stale_days:g} {noun(stale_days, 'day')} (assumptions.toml), "
                "refresh with `gpuarb providers --refresh`")
    return f"{stamp}, {days}"


def explain(b: CostBreakdown, plan: Plan, also_in: Sequence[CostBreakdown] = ()) -> list[str]:
    """Plain-language lines saying how the chosen placement's figures were reached, with the price's age."""
    spec, p, o = plan.spec, b.placement, b.placement.offer
    lines = [
        f"{o.provider} {o.location} {o.instance_type} x{p.nodes} ({'spot' if p.spot else 'on-demand'}): "
        f"{usd(o.usd_per_hour(p.spot))}/h per instance, {usd(b.hourly_usd)}/h for the cluster "
        f"[{o.source}, {age_sentence(o, plan.now, plan.stale_days)}; {o.price_ref}]",
    ]
    if b.launch_note:
        lines.append(f"launch: the price is an estimate: {b.launch_note}")
    if also_in:
        places = ", ".join(c.placement.offer.location for c in also_in[:6]) + (", ..." if len(also_in) > 6 else "")
        lines.append(f"same price also in: {places} (nearest the data first)")
    if b.unit is not None:
        lines += unit_lines(b, plan)
    elif not spec.work.known:
        lines.append(f"work: no duration known: {b.work_hours:g} h on every placement, so the ranking is the "
                     "cluster's $/h (as SkyPilot ranks); give --hours N or --gpu-hours N for a real total")
    else:
        lines.append(f"work: {spec.work.gpu_hours:g} {spec.work.reference} GPU-hours / "
                     f"({plural(p.total_gpus, 'GPU')} x {b.relative_throughput:.2f} relative throughput x "
                     f"{b.scaling_efficiency:.2f} scaling) = {b.work_hours:.1f} h")
    lines.append(f"overheads: {b.provision_hours:.2f} h provisioning, {b.staging_hours:.2f} h data staging, "
                 f"{b.checkpoint_hours:.2f} h checkpoint writes")
    if p.spot:
        lines.append(f"spot: {b.expected_preemptions:.2f} expected preemptions cost {b.preemption_hours:.2f} h "
                     f"= {usd(b.preemption_usd)}, at {b.preemptions_per_hour:.3g} preemptions per instance-hour x "
                     f"{plural(p.nodes, 'node')}, restart {b.restart_hours * 60:.0f} min")
        lines.append(f"spot rate: {b.preemption_source}")
    if b.deadline_probability is not None and plan.confidence is not None:
        sign = ">=" if b.deadline_probability >= plan.confidence else "<"
        lines.append(f"deadline: P(finish within {plan.deadline_hours:.1f} h) = {_probability(b.deadline_probability)} "
                     f"{sign} confidence {plan.confidence:g}")
    if b.capacity:
        lines.append(f"capacity: {b.capacity}")
    if spec.data is not None:
        lines.append(f"egress: data {spec.data.size_gb:g} GB from {spec.data.provider}/{spec.data.region} "
                     f"{usd(b.egress_in_usd)}, outputs {spec.outputs_gb:g} GB back {usd(b.egress_out_usd)}")
    total = (f"total: {usd(b.total_usd)} expected over {b.expected_hours:.1f} h"
             + (f"; deadline in {plan.deadline_hours:.1f} h" if plan.deadline_hours is not None else ""))
    lines.append(total)
    if b.unit is not None:
        lines.append(f"unit cost: {unit_cell(b)} per million tokens ({b.unit.tokens:.3g} tokens of work)")
        if plan.right_size is not None and plan.placements and b is plan.placements[0]:
            from arbitrage.rightsize import hint_lines

            lines += hint_lines(plan.right_size, b)
    return lines


def unit_lines(b: CostBreakdown, plan: Plan) -> list[str]:
    """How work stated in tokens became hours on this placement: the rate's basis, the layout and the memory."""
    u, p, spec = b.unit, b.placement, plan.spec
    assert u is not None
    desc = spec.work.describe(spec.workload)
    if u.tensor_parallel is not None:
        rate = (f"work: {desc} at {u.tokens_per_second:,.0f} output tok/s ({plural(p.nodes, 'node')} x "
                f"{plural(u.gpus_used_per_node, 'GPU')}) = {b.work_hours:.1f} h (range {u.work_hours_low:.1f}-"
                f"{u.work_hours_high:.1f} h)")
        layout = (f"memory: {u.memory_need_gb:,.0f} GB per replica -> tensor parallel {u.tensor_parallel}, "
                  f"{plural(u.replicas_per_node, 'replica')} per node, {u.gpus_used_per_node} of "
                  f"{plural(p.offer.gpus_per_node, 'GPU')} used")
    else:
        rate = (f"work: {desc} on {plural(p.total_gpus, 'GPU')} x {b.scaling_efficiency:.2f} scaling = "
                f"{b.work_hours:.1f} h (range {u.work_hours_low:.1f}-{u.work_hours_high:.1f} h)")
        layout = f"memory: {u.memory_need_gb:,.1f} GB per GPU of sharded training state"
    basis = f"rate: {u.basis}" + ("" if u.comparable else " (not comparable with the other GPUs' figures)")
    return [rate, basis, layout]


def provenance_line(catalog: dict[str, Any]) -> str:
    """'aws: snapshot as of undated; runpod: snapshot as of 2026-09-25, 2026-11-09; ...'."""

    def joined(value: Any) -> str:
        return ", ".join(value) if isinstance(value, list) else str(value)

    return "; ".join(f"{p}: {joined(e['source'])} as of {joined(e['as_of'])}" for p, e in catalog.items())


def rejection_lines(plan: Plan) -> list[str]:
    """'count  reason' lines, most frequent first; budget reasons flagged."""
    return [f"{n:>5}  {reason}" + ("  (budget)" if reason in BUDGET_REASONS else "")
            for reason, n in plan.rejections.items()]


# ---------------------------------------------------------------------------------------------
# Prices the quality gate set aside (providers/quality.py)
# ---------------------------------------------------------------------------------------------

QUARANTINE_FIELDS = ("provider", "region", "zone", "instance_type", "gpu_model", "gpus_per_node", "option",
                     "usd_per_hour", "usd_per_gpu_hour", "rule", "reason", "source", "as_of", "age_days", "price_ref")


def quarantine_record(q: Any, now: datetime | None = None,
                      stale_days: float = DEFAULT_STALE_DAYS) -> dict[str, Any]:
    """One set-aside price (a providers.quality.Quarantined) as a flat dict: the price as received and why."""
    o = q.offer
    price = o.usd_per_hour(q.option == "spot")
    per_gpu = price / o.gpus_per_node if price is not None and o.gpus_per_node > 0 else None
    return {
        "provider": o.provider, "region": o.region, "zone": o.zone, "instance_type": o.instance_type,
        "gpu_model": o.gpu_model, "gpus_per_node": o.gpus_per_node, "option": q.option,
        "usd_per_hour": price if price is None or math.isfinite(price) else str(price),
        "usd_per_gpu_hour": _round(per_gpu), "rule": q.rule, "reason": q.reason,
        "source": o.source, **age_fields(o, now, stale_days), "price_ref": o.price_ref,
    }


def quarantine_json(items: Sequence[Any], now: datetime | None = None,
                    stale_days: float = DEFAULT_STALE_DAYS) -> str:
    """JSON document: the set-aside prices with their rule and reason, and counts per provider and rule."""
    by_provider: dict[str, int] = {}
    by_rule: dict[str, int] = {}
    for q in items:
        by_provider[q.offer.provider] = by_provider.get(q.offer.provider, 0) + 1
        by_rule[q.rule] = by_rule.get(q.rule, 0) + 1
    return json.dumps({"quarantined": len(items), "by_provider": dict(sorted(by_provider.items())),
                       "by_rule": dict(sorted(by_rule.items())),
                       "prices": [quarantine_record(q, now, stale_days) for q in items]}, indent=2)


def quarantine_csv(items: Sequence[Any], now: datetime | None = None, stale_days: float = DEFAULT_STALE_DAYS) -> str:
    """CSV with a header row, one set-aside price per line."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=QUARANTINE_FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for q in items:
        writer.writerow({k: "" if v is None else v for k, v in quarantine_record(q, now, stale_days).items()})
    return buf.getvalue()


_QUARANTINE_HEAD = ("Provider", "Location", "Instance", "GPUs", "Option", "$/h", "$/GPU-h", "Rule", "Why",
                    "Source (as of)")


def quarantine_rows(items: Sequence[Any]) -> list[list[str]]:
    """Table cells for set-aside prices."""
    rows = []
    for q in items:
        o = q.offer
        price = o.usd_per_hour(q.option == "spot")
        finite = price is not None and math.isfinite(price)
        per_gpu = price / o.gpus_per_node if finite and o.gpus_per_node > 0 else None
        rows.append([o.provider, o.location, o.instance_type, f"{o.gpus_per_node}x {o.gpu_model}", q.option,
                     usd(price) if finite else str(price), usd(per_gpu), q.rule, q.reason, source_cell(o)])
    return rows


def quarantine_markdown(items: Sequence[Any]) -> str:
    """A GitHub-flavoured Markdown table of set-aside prices."""
    lines = ["| " + " | ".join(_QUARANTINE_HEAD) + " |", "|" + "---|" * len(_QUARANTINE_HEAD)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in quarantine_rows(items)]
    return "\n".join(lines) + "\n"


def quarantine_table(items: Sequence[Any], title: str):
    """A table of set-aside prices with the rule and the reason."""
    from arbitrage.texttable import TextTable

    table = TextTable(title=title)
    for i, head in enumerate(_QUARANTINE_HEAD):
        table.add_column(head, justify="right" if i in (5, 6) else "left", no_wrap=i < 3)
    for row in quarantine_rows(items):
        table.add_row(*row)
    return table


def plan_text(result: Any, top: int, catalog: dict[str, Any], wide: bool = False) -> str:
    """What `gpuarb plan` prints: the ranked table, then the explanation, rejections and provenance as plain
    lines (the CLI and the team server both send this)."""
    out: list[str] = []
    spec = result.spec
    shown = result.placements[:top] if top else result.placements
    head = (f"{spec.name}: {' | '.join(map(str, spec.accelerators))} x {plural(spec.num_nodes, 'node')}, "
            f"{spec.work.describe(spec.workload)}, spot {spec.spot}, objective {result.objective}")
    lines: list[str] = []
    when, stale = result.now, result.stale_days
    choices = result.choices[:top] if top else result.choices
    if shown:
        hours_note = ("hours are expected wall time" if spec.work.known
                      else "NO DURATION KNOWN: totals are for one hour, ranked by cluster $/h")
        out.append(str(plan_table(choices, result.deadline_hours,
                                          f"{head}\n{len(result.placements)} feasible of "
                                          f"{plural(result.candidates, 'candidate')}, "
                                          f"{plural(len(result.choices), 'distinct choice')} (USD; {hours_note}; "
                                          f"+N regions: same price elsewhere)", when, stale, wide=wide)))
        lines += ["Why #1:", *(f"  {line}" for line in explain(choices[0].best, result,
                                                                         choices[0].also_in))]
    elif result.over_budget:
        out.append(str(plan_table(result.over_budget_choices[: top or None], result.deadline_hours,
                                  f"{head}\nNOTHING within budget; cheapest over-budget placements:",
                                  when, stale, wide=wide)))
    else:
        lines += [head, f"No feasible placement among {plural(result.candidates, 'candidate')}."]
    lines += [f"Note: {note}" for note in spec.notes]
    if result.rejections:
        lines += ["Rejected:", *rejection_lines(result)]
    if result.capacity_note:
        lines.append(f"Capacity: {result.capacity_note.removeprefix('capacity signals: ')}")
    lines.append(f"Prices: {provenance_line(catalog)}")
    out.append("\n".join(lines))
    return "\n".join(out)


def prices_output(found: Any, fmt: str, limit: int | None) -> tuple[str, GpuarbError | None]:
    """What `gpuarb prices --format FMT` prints for a price query (``app.PriceList``), and the error it ends with
    (nothing matched: NothingFeasible, saying which filter emptied it). The CLI and the team server both send
    this."""
    from arbitrage.errors import NothingFeasible

    if found.quarantined is not None:
        return _quarantined_output(found, fmt), None
    matching = found.offers
    if limit is None:
        limit = 30 if fmt in ("table", "markdown") else 0
    shown = matching[:limit] if limit else matching
    when, stale, empty = found.now, found.stale_days, found.empty
    if fmt == "json":
        doc = json.loads(prices_json(shown, len(matching), when, stale))
        doc["empty_reason"] = empty.reason if empty else None
        doc["filter_counts"] = [c.record() for c in empty.counts] if empty else None
        text = json.dumps(doc, indent=2) + "\n"
    elif fmt == "csv":
        text = prices_csv(shown, when, stale)
    elif fmt == "markdown":
        text = prices_markdown(shown, len(matching), when, stale)
        if empty:  # a pull-request comment says why it is empty, too
            text += f"\n{empty.reason[0].upper()}{empty.reason[1:]}.\n"
    else:
        spot = found.spot
        option = "spot" if spot else "on-demand" if spot is False else "on-demand (spot where no on-demand)"
        title = (f"{plural(len(matching), 'offer')}, cheapest {option} $/GPU-hour first (USD, per hour; age of each "
                 f"price, stale after {stale:g} {noun(stale, 'day')})")
        text = f"{prices_table(shown, len(matching), title, when, stale)}\n"
    return text, None if empty is None else NothingFeasible(empty.reason)


def _quarantined_output(found: Any, fmt: str) -> str:
    """The set-aside prices (an empty list is a good answer, not a failure)."""
    items = found.quarantined or []
    if fmt == "json":
        return quarantine_json(items, found.now, found.stale_days) + "\n"
    if fmt == "csv":
        return quarantine_csv(items, found.now, found.stale_days)
    if fmt == "markdown":
        return quarantine_markdown(items)
    title = (f"{plural(len(items), 'price')} set aside by the quality gate (providers/quality.py), USD"
             if items else "No price matching these filters was set aside by the quality gate")
    return f"{quarantine_table(items, title)}\n"


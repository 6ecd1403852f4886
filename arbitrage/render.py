"""Renderers: offers and plans as rich tables, JSON, CSV or Markdown. Formatting only, no decisions."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from arbitrage.costmodel import CostBreakdown
from arbitrage.offers import Offer
from arbitrage.planner import BUDGET_REASONS, Plan


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
    "provider", "region", "zone", "instance_type", "accelerator", "gpu_model", "gpus_per_node", "gpu_memory_gb",
    "on_demand_usd_per_hour", "spot_usd_per_hour", "on_demand_usd_per_gpu_hour", "spot_usd_per_gpu_hour",
    "interconnect", "interconnect_gbps", "source", "as_of", "price_ref",
)


def offer_record(o: Offer) -> dict[str, Any]:
    """An offer as a flat dict with explicit units (USD per hour per instance and per GPU)."""
    return {
        "provider": o.provider, "region": o.region, "zone": o.zone, "instance_type": o.instance_type,
        "accelerator": o.accelerator, "gpu_model": o.gpu_model, "gpus_per_node": o.gpus_per_node,
        "gpu_memory_gb": o.gpu_memory_gb,
        "on_demand_usd_per_hour": o.on_demand_usd_per_hour, "spot_usd_per_hour": o.spot_usd_per_hour,
        "on_demand_usd_per_gpu_hour": _round(o.usd_per_gpu_hour(False)),
        "spot_usd_per_gpu_hour": _round(o.usd_per_gpu_hour(True)),
        "interconnect": o.interconnect, "interconnect_gbps": o.interconnect_gbps,
        "source": o.source, "as_of": o.as_of, "price_ref": o.price_ref,
    }


def prices_json(offers: Sequence[Offer], total: int) -> str:
    """JSON document: matching offer count and the rows shown."""
    return json.dumps({"matching": total, "shown": len(offers), "offers": [offer_record(o) for o in offers]},
                      indent=2)


def prices_csv(offers: Sequence[Offer]) -> str:
    """CSV with a header row, one offer per line."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PRICE_FIELDS, lineterminator="\n")
    writer.writeheader()
    for o in offers:
        writer.writerow({k: "" if v is None else v for k, v in offer_record(o).items()})
    return buf.getvalue()


_PRICE_HEAD = ("Provider", "Location", "Instance", "GPUs", "On-demand $/h", "Spot $/h", "OD $/GPU-h",
               "Spot $/GPU-h", "Fabric", "Source (as of)")


def _price_cells(o: Offer) -> list[str]:
    fabric = o.interconnect if o.interconnect in ("none", "ethernet") else f"{o.interconnect} {o.interconnect_gbps:g}G"
    return [
        o.provider, o.location, o.instance_type, f"{o.gpus_per_node}x {o.gpu_model} {o.gpu_memory_gb:g}GB",
        usd(o.on_demand_usd_per_hour), usd(o.spot_usd_per_hour), usd(o.usd_per_gpu_hour(False)),
        usd(o.usd_per_gpu_hour(True)), fabric, f"{o.source} ({o.as_of})",
    ]


def prices_markdown(offers: Sequence[Offer], total: int) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(_PRICE_HEAD) + " |", "|" + "---|" * len(_PRICE_HEAD)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _price_cells(o)) + " |" for o in offers]
    if total > len(offers):
        lines.append(f"\n{total - len(offers)} more matching offers not shown.")
    return "\n".join(lines) + "\n"


def prices_table(offers: Sequence[Offer], total: int, title: str):
    """A rich Table of offers, cheapest first."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for i, head in enumerate(_PRICE_HEAD):
        table.add_column(head, justify="right" if 4 <= i <= 7 else "left", no_wrap=i < 3)
    for o in offers:
        table.add_row(*_price_cells(o))
    if total > len(offers):
        table.caption = f"{total - len(offers)} more matching offers not shown (use --limit 0 for all)"
    return table


# ---------------------------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------------------------

def placement_record(b: CostBreakdown, rank: int, deadline_hours: float | None) -> dict[str, Any]:
    """A costed placement as a flat dict; every money field in USD, every duration in hours."""
    p, o = b.placement, b.placement.offer
    slack = None if deadline_hours is None else deadline_hours - b.expected_hours
    return {
        "rank": rank,
        "provider": o.provider, "region": o.region, "zone": o.zone, "instance_type": o.instance_type,
        "accelerator": o.accelerator, "gpu_model": o.gpu_model, "gpus_per_node": o.gpus_per_node,
        "nodes": p.nodes, "spot": p.spot,
        "hourly_usd": _round(b.hourly_usd), "expected_hours": _round(b.expected_hours),
        "work_hours": _round(b.work_hours), "checkpoint_hours": _round(b.checkpoint_hours),
        "provision_hours": _round(b.provision_hours), "staging_hours": _round(b.staging_hours),
        "preemption_hours": _round(b.preemption_hours), "expected_preemptions": _round(b.expected_preemptions),
        "compute_usd": _round(b.compute_usd, 2), "preemption_usd": _round(b.preemption_usd, 2),
        "egress_usd": _round(b.egress_usd, 2), "egress_in_usd": _round(b.egress_in_usd, 2),
        "egress_out_usd": _round(b.egress_out_usd, 2), "total_usd": _round(b.total_usd, 2),
        "meets_deadline": None if slack is None else slack >= 0,
        "deadline_slack_hours": _round(slack),
        "interconnect": o.interconnect, "interconnect_gbps": o.interconnect_gbps,
        "scaling_efficiency": _round(b.scaling_efficiency), "relative_throughput": _round(b.relative_throughput),
        "source": o.source, "as_of": o.as_of, "price_ref": o.price_ref,
    }


def plan_record(plan: Plan, top: int, now: datetime, catalog: dict[str, Any]) -> dict[str, Any]:
    """The whole plan as a JSON-ready dict: placements, over-budget fallbacks, rejections, provenance."""
    spec = plan.spec
    shown = plan.placements[:top] if top > 0 else plan.placements
    fallback = plan.over_budget[:top] if top > 0 else plan.over_budget
    return {
        "job": spec.name,
        "spec": spec.path,
        "objective": plan.objective,
        "planned_at": now.isoformat(),
        "request": {
            "accelerators": [str(a) for a in spec.accelerators], "ordered": spec.ordered,
            "num_nodes": spec.num_nodes, "work_gpu_hours": spec.work.gpu_hours, "reference": spec.work.reference,
            "spot": spec.spot, "interconnect": spec.interconnect,
            "deadline": None if spec.deadline is None else str(spec.deadline),
            "deadline_hours": _round(plan.deadline_hours),
            "max_total_usd": spec.budget.max_total_usd, "max_hourly_usd": spec.budget.max_hourly_usd,
            "tags": spec.tags,
        },
        "candidates": plan.candidates,
        "feasible": len(plan.placements),
        "placements": [placement_record(b, i + 1, plan.deadline_hours) for i, b in enumerate(shown)],
        "over_budget": [] if plan.placements else
        [placement_record(b, i + 1, plan.deadline_hours) for i, b in enumerate(fallback)],
        "rejected": plan.rejections,
        "catalog": catalog,
    }


def plan_json(plan: Plan, top: int, now: datetime, catalog: dict[str, Any]) -> str:
    """The plan as an indented JSON document."""
    return json.dumps(plan_record(plan, top, now, catalog), indent=2)


_PLAN_HEAD = ("#", "Provider", "Location", "Instance", "GPUs", "Buy", "$/h", "Hours", "Compute", "Preempt",
              "Egress", "Total", "Deadline", "Fabric")


def _deadline_cell(b: CostBreakdown, deadline_hours: float | None) -> str:
    if deadline_hours is None:
        return "-"
    slack = deadline_hours - b.expected_hours
    return f"ok +{slack:.1f}h" if slack >= 0 else f"late {-slack:.1f}h"


def plan_rows(breakdowns: Sequence[CostBreakdown], deadline_hours: float | None) -> list[list[str]]:
    """Table cells for ranked placements."""
    rows = []
    for i, b in enumerate(breakdowns, start=1):
        p, o = b.placement, b.placement.offer
        fabric = o.interconnect if not o.has_rdma else f"{o.interconnect} {o.interconnect_gbps:g}G"
        rows.append([
            str(i), o.provider, o.location, o.instance_type, f"{p.nodes}x{o.gpus_per_node} {o.gpu_model}",
            "spot" if p.spot else "on-demand", usd(b.hourly_usd), f"{b.expected_hours:,.1f}", usd(b.compute_usd),
            usd(b.preemption_usd), usd(b.egress_usd), usd(b.total_usd), _deadline_cell(b, deadline_hours), fabric,
        ])
    return rows


def plan_table(breakdowns: Sequence[CostBreakdown], deadline_hours: float | None, title: str):
    """A rich Table of ranked placements with the cost breakdown."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for i, head in enumerate(_PLAN_HEAD):
        table.add_column(head, justify="right" if i == 0 or 6 <= i <= 11 else "left", no_wrap=1 <= i <= 4)
    for row in plan_rows(breakdowns, deadline_hours):
        table.add_row(*row)
    return table


def explain(b: CostBreakdown, plan: Plan) -> list[str]:
    """Plain-language lines saying how the chosen placement's figures were reached."""
    spec, p, o = plan.spec, b.placement, b.placement.offer
    lines = [
        f"{o.provider} {o.location} {o.instance_type} x{p.nodes} ({'spot' if p.spot else 'on-demand'}): "
        f"{usd(o.usd_per_hour(p.spot))}/h per instance, {usd(b.hourly_usd)}/h for the cluster "
        f"[{o.source}, as of {o.as_of}; {o.price_ref}]",
        f"work: {spec.work.gpu_hours:g} {spec.work.reference} GPU-hours / ({p.total_gpus} GPUs x "
        f"{b.relative_throughput:.2f} relative throughput x {b.scaling_efficiency:.2f} scaling) = "
        f"{b.work_hours:.1f} h",
        f"overheads: {b.provision_hours:.2f} h provisioning, {b.staging_hours:.2f} h data staging, "
        f"{b.checkpoint_hours:.2f} h checkpoint writes",
    ]
    if p.spot:
        lines.append(f"spot: {b.expected_preemptions:.2f} expected preemptions cost {b.preemption_hours:.2f} h "
                     f"= {usd(b.preemption_usd)}")
    if spec.data is not None:
        lines.append(f"egress: data {spec.data.size_gb:g} GB from {spec.data.provider}/{spec.data.region} "
                     f"{usd(b.egress_in_usd)}, outputs {spec.outputs_gb:g} GB back {usd(b.egress_out_usd)}")
    total = (f"total: {usd(b.total_usd)} expected over {b.expected_hours:.1f} h"
             + (f"; deadline in {plan.deadline_hours:.1f} h" if plan.deadline_hours is not None else ""))
    lines.append(total)
    return lines


def provenance_line(catalog: dict[str, Any]) -> str:
    """'aws: snapshot as of undated; runpod: snapshot as of 2026-09-25, 2026-11-09; ...'."""

    def joined(value: Any) -> str:
        return ", ".join(value) if isinstance(value, list) else str(value)

    return "; ".join(f"{p}: {joined(e['source'])} as of {joined(e['as_of'])}" for p, e in catalog.items())


def rejection_lines(plan: Plan) -> list[str]:
    """'count  reason' lines, most frequent first; budget reasons flagged."""
    return [f"{n:>5}  {reason}" + ("  (budget)" if reason in BUDGET_REASONS else "")
            for reason, n in plan.rejections.items()]

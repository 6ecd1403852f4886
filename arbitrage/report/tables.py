"""Reports as JSON and CSV, with explicit units and provenance on every figure. Formatting only."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from arbitrage.costmodel import CostBreakdown
from arbitrage.render import placement_record, plan_record
from arbitrage.report.breakeven import Breakeven
from arbitrage.report.plan import PlanReport
from arbitrage.report.prices import PriceReport, Quote


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def quote_record(q: Quote | None) -> dict[str, Any] | None:
    """A quote as a flat dict: USD per GPU-hour, per instance-hour, per reference-GPU-hour, and provenance."""
    if q is None:
        return None
    o = q.offer
    return {
        "option": q.option, "usd_per_gpu_hour": _round(q.usd_per_gpu_hour), "usd_per_hour": _round(q.usd_per_hour),
        "effective_usd_per_ref_gpu_hour": _round(q.effective_usd_per_ref_gpu_hour),
        "provider": o.provider, "region": o.region, "zone": o.zone, "instance_type": o.instance_type,
        "gpus_per_node": o.gpus_per_node, "source": o.source, "as_of": o.as_of,
        "as_of_estimated": o.as_of_estimated, "age_days": _round(q.age_days, 1), "stale": q.stale,
        "price_ref": o.price_ref, "usd_per_million_tokens": _round(q.usd_per_million_tokens, 6),
    }


def _unit_model_record(report: PriceReport) -> dict[str, Any] | None:
    m = report.unit_model
    if m is None:
        return None
    return {"params_b": m.params_b, "precision": m.precision, "workload": report.workload,
            "unit": f"USD per million {'training' if report.workload == 'training' else 'output'} tokens"}


def prices_record(report: PriceReport, meta: dict[str, Any]) -> dict[str, Any]:
    """The price report as a JSON-ready dict."""
    return {
        **meta,
        "reference_gpu": report.reference_gpu, "workload": report.workload,
        "effective_price_unit": f"USD per {report.reference_gpu} GPU-hour of {report.workload} work",
        "offers_considered": report.offers_considered,
        "unit_model": _unit_model_record(report),
        "models": [{
            "gpu_model": m.gpu_model, "memory_gb": m.memory_gb,
            "relative_throughput": _round(m.relative_throughput), "throughput_source": m.throughput_source,
            "cheapest_on_demand": quote_record(m.best_on_demand), "cheapest_spot": quote_record(m.best_spot),
            "unit_cost": None if report.unit_model is None else {
                "cheapest_on_demand": quote_record(m.unit_on_demand), "cheapest_spot": quote_record(m.unit_spot),
                "usd_per_million_tokens": _round(m.best_unit, 6), "basis": m.unit_basis or None,
                "missing": m.unit_missing or None},
            "providers": [{
                "provider": r.provider, "tier": r.tier, "offers": r.offers,
                "spot_discount": _round(r.spot_discount), "on_demand": quote_record(r.on_demand),
                "spot": quote_record(r.spot),
            } for r in m.providers],
            "tiers": [{
                "tier": t.tier, "on_demand": quote_record(t.on_demand), "spot": quote_record(t.spot),
                "on_demand_vs_cheapest_tier": _round(t.on_demand_ratio), "spot_vs_cheapest_tier": _round(t.spot_ratio),
            } for t in m.tiers],
        } for m in report.models],
        "provenance": {p: {k: list(v) for k, v in e.items()} for p, e in report.provenance().items()},
    }


def prices_json(report: PriceReport, meta: dict[str, Any]) -> str:
    """The price report as indented JSON."""
    return json.dumps(prices_record(report, meta), indent=2) + "\n"


PRICE_CSV_FIELDS = (
    "gpu_model", "provider", "tier", "option", "usd_per_gpu_hour", "usd_per_hour", "instance_type", "gpus_per_node",
    "region", "zone", "relative_throughput", "reference_gpu", "effective_usd_per_ref_gpu_hour", "spot_discount",
    "source", "as_of", "age_days", "stale", "price_ref",
)


def prices_csv(report: PriceReport) -> str:
    """One row per GPU model, provider and purchase option (the provider's cheapest offer)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PRICE_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for m in report.models:
        for r in m.providers:
            for q in r.quotes:
                rec = quote_record(q)
                assert rec is not None
                row = {**rec, "gpu_model": m.gpu_model, "tier": r.tier, "reference_gpu": report.reference_gpu,
                       "relative_throughput": _round(m.relative_throughput), "spot_discount": _round(r.spot_discount)}
                writer.writerow({k: "" if row.get(k) is None else row[k] for k in PRICE_CSV_FIELDS})
    return buf.getvalue()


def _record(b: CostBreakdown | None, report: PlanReport) -> dict[str, Any] | None:
    plan = report.plan
    return None if b is None else placement_record(b, 0, plan.deadline_hours, report.planned_at, plan.stale_days)


def plan_report_record(report: PlanReport) -> dict[str, Any]:
    """The plan JSON of `gpuarb plan`, plus the baselines and the savings."""
    plan = report.plan
    doc = plan_record(plan, report.top, report.planned_at, report.catalog)
    naive = _record(report.naive, report)
    listed = _record(report.cheapest_listed, report)
    for rec in (naive, listed):
        if rec is not None:
            rec.pop("rank")
    doc["naive"] = naive
    doc["cheapest_listed"] = listed
    doc["savings_vs_naive"] = {
        "usd": _round(report.savings_usd, 2), "share": _round(report.savings_share),
        "naive_meets_deadline": report.naive_meets_deadline(),
        "definition": "naive = the first-choice GPUs, on-demand, on the hyperscaler where the data lives",
    }
    return doc


def plan_json(report: PlanReport) -> str:
    """The plan report as indented JSON."""
    return json.dumps(plan_report_record(report), indent=2) + "\n"


PLAN_CSV_FIELDS = ("role", "rank", "provider", "region", "zone", "instance_type", "accelerator", "gpus_per_node",
                   "nodes", "spot", "hourly_usd", "expected_hours", "compute_usd", "preemption_usd", "egress_in_usd",
                   "egress_out_usd", "egress_usd", "total_usd", "meets_deadline", "deadline_slack_hours", "source",
                   "as_of", "age_days", "stale", "also_in", "price_ref")


def plan_csv(report: PlanReport) -> str:
    """One row per shown placement (role 'placement' or 'over_budget'), then the naive and cheapest-listed rows."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PLAN_CSV_FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    role = "over_budget" if report.over_budget_only else "placement"
    plan = report.plan
    deadline, now, stale = plan.deadline_hours, report.planned_at, plan.stale_days
    rows = [(role, placement_record(c.best, i, deadline, now, stale, c.also_in))
            for i, c in enumerate(report.shown_choices, start=1)]
    for row in rows:  # one cell: 'region/zone; region/zone'
        row[1]["also_in"] = "; ".join(f"{a['region']}/{a['zone']}" if a["zone"] else a["region"]
                                      for a in row[1]["also_in"])
    for name, b in (("naive", report.naive), ("cheapest_listed", report.cheapest_listed)):
        if b is not None:
            rec = placement_record(b, 0, deadline, now, stale)
            rec["also_in"] = ""
            rec["rank"] = None
            rows.append((name, rec))
    for name, rec in rows:
        writer.writerow({k: "" if v is None else v for k, v in {**rec, "role": name}.items()})
    return buf.getvalue()


def breakeven_record(b: Breakeven) -> dict[str, Any]:
    """The rent-vs-buy comparison as a JSON-ready dict; every assumption with its source."""
    own, rent = b.ownership, b.rental
    o = rent.offer
    return {
        "gpu": own.gpu,
        "assumptions": {
            "purchase_usd_per_gpu": own.purchase_usd, "power_w_per_gpu": own.power_w,
            "usd_per_kwh": own.usd_per_kwh, "pue": own.pue, "hosting_usd_per_gpu_month": own.hosting_usd_per_month,
            "years": own.years, "utilization": own.utilization, "sources": dict(own.sources),
            "not_modelled": list(NOT_MODELLED),
        },
        "rental": {
            "usd_per_gpu_hour": _round(rent.usd_per_gpu_hour), "option": "spot" if rent.spot else "on-demand",
            "provider": o.provider if o else None, "region": o.region if o else None,
            "instance_type": o.instance_type if o else None, "gpus_per_node": o.gpus_per_node if o else None,
            "source": o.source if o else "command line", "as_of": o.as_of if o else None,
            "price_ref": o.price_ref if o else None,
        },
        "power_usd_per_busy_gpu_hour": _round(b.power_usd_per_busy_hour),
        "hosting_usd_per_calendar_hour": _round(b.hosting_usd_per_hour),
        "own_usd_per_busy_gpu_hour": _round(b.own_usd_per_busy_hour),
        "breakeven_months": _round(b.breakeven_months, 2),
        "threshold_utilization": _round(b.threshold_utilization),
        "owning_wins": b.owning_wins, "owning_can_win": b.owning_can_win,
        "period_years": own.years, "busy_gpu_hours": _round(b.busy_hours, 1),
        "own_total_usd": _round(b.own_usd, 2), "rent_total_usd": _round(b.rent_usd, 2),
        "saving_by_owning_usd": _round(b.saving_usd, 2),
        "yearly": [{"years": y.years, "own_usd": _round(y.own_usd, 2), "rent_usd": _round(y.rent_usd, 2)}
                   for y in b.yearly],
    }


NOT_MODELLED = ("resale value at the end", "financing / cost of capital", "staff time", "spare parts and failures",
                "committed-use or reserved rental discounts")


def breakeven_json(b: Breakeven) -> str:
    """The rent-vs-buy comparison as indented JSON."""
    return json.dumps(breakeven_record(b), indent=2) + "\n"

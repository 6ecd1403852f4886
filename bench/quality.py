"""Plan quality: gpuarb's plans vs what people pick without it, and vs a brute-force optimum of the same model.

A seeded generator makes realistic jobs (GPU types, 1-4 nodes, 0-50 TB of data in AWS, GCP or Azure, deadlines,
spot policies); each is planned over the bundled snapshot and compared with `arbitrage.baselines.naive`
(on-demand next to the data), `arbitrage.baselines.cheapest_listed` (lowest listed price per GPU-hour) and
`brute_force` (every offer x purchase option costed directly, the job's rules applied by hand).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timezone

from arbitrage import app
from arbitrage.baselines import cheapest_listed, naive
from arbitrage.costmodel import CostBreakdown, Placement, estimate
from arbitrage.facts import Facts, Workload
from arbitrage.jobspec import AcceleratorChoice, Checkpoint, DataLocation, Deadline, JobSpec, SpotPolicy, Work
from arbitrage.offers import Offer
from arbitrage.plural import plural

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
# (accelerator choices, GPUs per node); any-of sets are what people write for a fine-tune or a pretrain.
GPU_SETS: list[tuple[tuple[str, ...], int]] = [
    (("H100",), 8), (("H100", "A100-80GB"), 8), (("A100-80GB",), 8), (("A100",), 8), (("H200",), 8),
    (("H200", "H100"), 8), (("B200",), 8), (("H100",), 1), (("A100-80GB",), 1), (("A100", "A100-80GB"), 1),
]
DATA_HOMES = [("aws", "us-east-1", "s3"), ("aws", "us-west-2", "s3"), ("aws", "eu-west-1", "s3"),
              ("gcp", "us-central1", "gs"), ("gcp", "europe-west4", "gs"), ("azure", "eastus", "az"),
              ("azure", "westus2", "az")]
DATA_SIZES_GB = [0, 50, 200, 1000, 5000, 20000, 50000]


def make_jobs(count: int, seed: int, facts: Facts) -> list[JobSpec]:
    """``count`` realistic jobs drawn reproducibly from ``seed``."""
    rng = random.Random(seed)
    jobs = []
    for i in range(count):
        gpus, per_node = rng.choice(GPU_SETS)
        nodes = 1 if per_node == 1 else rng.choice([1, 1, 1, 2, 4])
        cluster = per_node * nodes
        # Reference H100 GPU-hours: a few hours to a few days of wall time on the cluster.
        gpu_hours = round(cluster * rng.choice([2, 6, 12, 24, 48, 96]) * rng.uniform(0.8, 1.2), 1)
        provider, region, scheme = rng.choice(DATA_HOMES)
        size = rng.choice(DATA_SIZES_GB)
        data = DataLocation(provider, region, float(size), f"{scheme}://bench-{i}/data") if size or rng.random() < .5 \
            else None
        spot: SpotPolicy = rng.choice(["never", "auto", "auto", "always"])
        checkpoint = (Checkpoint(f"{scheme}://bench-{i}/ckpt", rng.choice([10, 30, 60]))
                      if spot != "never" or rng.random() < 0.3 else None)
        # Deadlines are set from the first choice's speed: what its owner expects it to take, with some slack.
        workload: Workload = "inference" if rng.random() < 0.15 else "training"
        wall = gpu_hours / (cluster * facts.gpu(gpus[0]).throughput(workload))
        deadline = rng.choice([None, None, 1.3, 2.0, 4.0])
        jobs.append(JobSpec(
            name=f"job-{i:02d}",
            accelerators=tuple(AcceleratorChoice(g, per_node) for g in gpus),
            num_nodes=nodes,
            work=Work(gpu_hours=gpu_hours, reference="H100"),
            workload=workload,
            spot=spot,
            checkpoint=checkpoint,
            interconnect=rng.choice(["required", "preferred", "any"]) if nodes > 1 else "any",
            data=data,
            outputs_gb=float(rng.choice([0, 10, 100])) if data is not None else 0.0,
            deadline=Deadline(hours=round(wall * deadline + 1, 1)) if deadline else None,
        ))
    return jobs


def brute_force(spec: JobSpec, offers: list[Offer], facts: Facts, deadline_hours: float | None) -> \
        CostBreakdown | None:
    """The cheapest feasible placement by exhaustive search, with the job's rules applied here by hand."""
    feasible: list[CostBreakdown] = []
    for offer in offers:
        choice = next((a for a in spec.accelerators if offer.provides(a.name)), None)
        if choice is None or offer.gpus_per_node != choice.count:
            continue
        if spec.num_nodes > 1 and spec.interconnect == "required" and not offer.has_rdma:
            continue
        for spot in (False, True):
            if offer.usd_per_hour(spot) is None or (spec.spot == "never" and spot) or (
                    spec.spot == "always" and not spot):
                continue
            cost = estimate(spec, Placement(offer, spec.num_nodes, spot), facts)
            if not math.isfinite(cost.expected_hours):
                continue
            if deadline_hours is not None and cost.expected_hours > deadline_hours:
                continue
            feasible.append(cost)
    if spec.num_nodes > 1 and spec.interconnect == "preferred" and any(c.placement.offer.has_rdma for c in feasible):
        feasible = [c for c in feasible if c.placement.offer.has_rdma]
    return min(feasible, key=lambda c: c.total_usd, default=None)


@dataclass(frozen=True)
class JobResult:
    """One job: gpuarb's pick, the brute-force optimum, and the two baselines (None: nothing to pick)."""

    spec: JobSpec
    deadline_hours: float | None
    gpuarb: CostBreakdown | None
    optimum: CostBreakdown | None
    naive: CostBreakdown | None
    cheapest_listed: CostBreakdown | None

    def meets(self, cost: CostBreakdown | None) -> bool:
        """Finite and within the deadline."""
        return cost is not None and cost.finite and (
            self.deadline_hours is None or cost.expected_hours <= self.deadline_hours)


def evaluate(jobs: list[JobSpec], offers: list[Offer], facts: Facts) -> list[JobResult]:
    """Plan every job and cost the baselines."""
    results = []
    for spec in jobs:
        planned = app.plan_offers(spec, offers, facts, NOW)
        results.append(JobResult(spec, planned.deadline_hours, planned.best,
                                 brute_force(spec, offers, facts, planned.deadline_hours),
                                 # "always on-demand": a spot-only job's owner would run it on-demand there
                                 naive(spec, offers, facts),
                                 cheapest_listed(spec, offers, facts)))
    return results


def _preferred_rule(r: JobResult, pick: CostBreakdown) -> bool:
    """Whether ``pick`` is ruled out only by interconnect: preferred (gpuarb keeps it, the baselines do not)."""
    return r.spec.num_nodes > 1 and r.spec.interconnect == "preferred" and not pick.placement.offer.has_rdma


def _usd(cost: CostBreakdown | None) -> str:
    if cost is None:
        return "none"
    return "never ends" if not cost.finite else f"{cost.total_usd:,.0f}"


def _pick(cost: CostBreakdown | None) -> str:
    if cost is None:
        return "-"
    o = cost.placement.offer
    return f"{o.provider} {o.region} {o.instance_type}{' spot' if cost.placement.spot else ''}"


def _job_label(spec: JobSpec) -> str:
    gpus = "/".join(a.name for a in spec.accelerators)
    count = spec.accelerators[0].count
    data = ("no data" if spec.data is None
            else f"{spec.data.size_gb / 1000:g} TB {spec.data.provider} {spec.data.region}")
    deadline = f"{spec.deadline.hours:g} h" if spec.deadline and spec.deadline.hours else "none"
    ckpt = f", ckpt {spec.checkpoint.interval_minutes:g} min" if spec.checkpoint else ""
    return (f"{spec.num_nodes}×{count}×{gpus}, {spec.work.gpu_hours:g} GPU-h {spec.workload}, {data}, "
            f"deadline {deadline}, spot {spec.spot}{ckpt}, interconnect {spec.interconnect}")


def _saving(base: CostBreakdown | None, ours: CostBreakdown | None) -> str:
    if base is None or ours is None or not base.finite:
        return "-"
    return f"{100 * (1 - ours.total_usd / base.total_usd):.0f}%"


def run(count: int = 40, seed: int = 6) -> str:
    """Markdown section: per-job table and totals."""
    facts = app.load_facts()
    offers = app.load_snapshot(facts)
    results = evaluate(make_jobs(count, seed, facts), offers, facts)
    lines = [
        "## Plan quality",
        "",
        f"`python -m bench --only quality` → `bench/quality.py`: {plural(count, 'job')} generated from seed {seed} "
        f"(GPU types and any-of sets, 1-4 nodes, 0-50 TB of data in AWS/GCP/Azure, deadlines, spot never/auto/always), "
        f"each planned over the bundled snapshot ({len(offers)} offers, `arbitrage/data/snapshot.csv`). "
        "Expected total cost in USD (compute + preemption + egress) from the cost model. **naive**: the first-choice "
        "GPUs on-demand at the data's hyperscaler (`baselines.naive`); **cheapest listed**: the lowest listed price "
        "per GPU-hour, ignoring egress, interconnect and preemption, what a price list or SkyPilot's optimizer alone "
        "picks (`baselines.cheapest_listed`, costed in full); **optimum**: exhaustive search over every offer × "
        "purchase option (`bench.quality.brute_force`). Baselines ignore the deadline; ✗ marks a pick that misses "
        "it or never finishes.",
        "",
        "| job | spec | gpuarb pick | gpuarb $ | optimum $ | naive $ | naive pick | cheapest listed $ | "
        "cheapest listed pick | saved vs naive | saved vs cheapest listed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    mismatches = 0
    for r in results:
        same = (r.gpuarb is None) == (r.optimum is None) and (
            r.gpuarb is None or r.optimum is None or math.isclose(r.gpuarb.total_usd, r.optimum.total_usd,
                                                                  rel_tol=1e-9))
        mismatches += not same
        flag = {id(c): "" if r.meets(c) else " ✗" for c in (r.naive, r.cheapest_listed) if c is not None}
        lines.append(
            f"| {r.spec.name} | {_job_label(r.spec)} | {_pick(r.gpuarb)} | {_usd(r.gpuarb)} | "
            f"{_usd(r.optimum)}{'' if same else ' ≠'} | {_usd(r.naive)}{flag.get(id(r.naive), '')} | "
            f"{_pick(r.naive)} | {_usd(r.cheapest_listed)}{flag.get(id(r.cheapest_listed), '')} | "
            f"{_pick(r.cheapest_listed)} | {_saving(r.naive, r.gpuarb)} | {_saving(r.cheapest_listed, r.gpuarb)} |")
    planned = [r for r in results if r.gpuarb is not None]
    assert all(r.naive is None or not r.naive.placement.spot for r in results)
    lines += ["", f"gpuarb = optimum on **{len(results) - mismatches} of {len(results)}** jobs"
              + ("." if not mismatches else f"; **{mismatches} differ** (marked ≠).")]
    for label, pick in (("naive", lambda r: r.naive), ("cheapest listed", lambda r: r.cheapest_listed)):
        both = [r for r in planned if pick(r) is not None and pick(r).finite]
        ours = sum(r.gpuarb.total_usd for r in both if r.gpuarb is not None)
        theirs = sum(pick(r).total_usd for r in both)
        missed = sum(1 for r in results if pick(r) is not None and not r.meets(pick(r)))
        never = sum(1 for r in results if pick(r) is not None and not pick(r).finite)
        cheaper = [r for r in both if r.gpuarb is not None and pick(r).total_usd < r.gpuarb.total_usd - 1e-6]
        by_deadline = sum(1 for r in cheaper if not r.meets(pick(r)))
        by_preferred = sum(1 for r in cheaper if r.meets(pick(r)) and _preferred_rule(r, pick(r)))
        other = len(cheaper) - by_deadline - by_preferred
        savings = sorted(1 - r.gpuarb.total_usd / pick(r).total_usd for r in both if r.gpuarb is not None)
        lines.append(
            f"- vs **{label}**, over the {plural(len(both), 'job')} both can price: gpuarb **${ours:,.0f}** vs "
            f"**${theirs:,.0f}**, **{100 * (1 - ours / theirs):.1f}% less** (median per job "
            f"{100 * savings[len(savings) // 2]:.0f}%). The {label} pick misses the deadline or never finishes on "
            f"{missed} of {plural(len(results), 'job')} ({never} never finish). It is cheaper than gpuarb's on "
            f"{plural(len(cheaper), 'job')}: {by_deadline} by missing the deadline, {by_preferred} by using an "
            f"ethernet cluster where the job prefers RDMA and an RDMA placement is feasible"
            + (f", **{other} for no reason the model accepts**." if other else "."))
        fair = [r for r in both if r.gpuarb is not None and r.meets(pick(r)) and not _preferred_rule(r, pick(r))]
        fair_ours = sum(r.gpuarb.total_usd for r in fair if r.gpuarb is not None)
        fair_theirs = sum(pick(r).total_usd for r in fair)
        lines.append(
            f"  Counting only the {plural(len(fair), 'job')} where the {label} pick keeps every rule of the job "
            f"(deadline, interconnect): ${fair_ours:,.0f} vs ${fair_theirs:,.0f}, "
            f"{100 * (1 - fair_ours / fair_theirs):.1f}% less.")
    infeasible = len(results) - len(planned)
    if infeasible:
        lines.append(f"- {plural(infeasible, 'job')} {'has' if infeasible == 1 else 'have'} no feasible placement "
                     "(deadline too tight for every offer); gpuarb reports "
                     f"{'it' if infeasible == 1 else 'them'} as such (exit code 3) and the optimum agrees.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())

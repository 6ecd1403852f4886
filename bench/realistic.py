"""Realistic jobs (bench/jobs/*.yaml), planned over the bundled snapshot, with the checks an expert would make.

`python -m bench --only realistic` writes the table to BENCHMARKS.md; tests/test_realistic_jobs.py asserts the
same checks. For each job's #1 pick: is it in a real, located region; is a multi-node pick on a provider whose
card says it forms clusters; does it keep the job's geography; and for small-GPU jobs, how many providers offer a
feasible placement. The checks read the plan and the provider cards, never the code under test's own verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from arbitrage import app
from arbitrage.plural import plural

JOBS = Path(__file__).resolve().parent / "jobs"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
SMALL_GPUS = frozenset({"L4", "T4", "A10G", "A10", "V100", "L40S"})


@dataclass(frozen=True)
class JobResult:
    """One job's plan, as the table and the tests read it."""

    job: str
    pick: str  # "provider region instance nodes x spot/on-demand", or why nothing was picked
    total_usd: float | None
    providers_feasible: int  # distinct providers among the feasible placements
    small_gpu: bool
    problems: tuple[str, ...]  # expert checks the pick fails; empty when it passes


def job_files() -> list[Path]:
    """The realistic job specs, in file order."""
    return sorted(JOBS.glob("*.yaml"))


def check_job(path: Path, facts: object | None = None, offers: list | None = None) -> JobResult:
    """Plan one job over the snapshot and run the expert checks on its #1 pick."""
    from providers.registry import find

    known = facts or app.load_facts()
    spec = app.read_spec(str(path), known)  # type: ignore[arg-type]
    catalog = offers if offers is not None else app.load_snapshot(known)  # type: ignore[arg-type]
    plan = app.plan_offers(spec, catalog, known, NOW)  # type: ignore[arg-type]
    small = any(a.name in SMALL_GPUS for a in spec.accelerators)
    providers = len({c.placement.offer.provider for c in plan.placements})
    best = plan.best
    if best is None:
        reason = "over budget" if plan.over_budget else "nothing feasible"
        return JobResult(path.stem, reason, None, providers, small, ())
    o, p = best.placement.offer, best.placement
    problems = []
    if not o.country or not o.continent:
        problems.append(f"#1 is in a region with no known location ({o.provider} {o.region})")
    card = find(o.provider)
    if p.nodes > 1 and (card is None or not card.multi_node):
        problems.append(f"#1 is {p.nodes} nodes on {o.provider}, which cannot form clusters")
    geo = spec.geo_allow
    if geo:
        from arbitrage.geo import geo_matches

        if not any(geo_matches(o.country, o.continent, token) for token in geo):
            problems.append(f"#1 in {o.country or '?'} breaks geo allow {list(geo)}")
    pick = (f"{o.provider} {o.zone or o.region} ({o.country or '?'}) {p.nodes}x {o.instance_type} "
            f"{'spot' if p.spot else 'on-demand'}")
    return JobResult(path.stem, pick, best.total_usd, providers, small, tuple(problems))


def run() -> str:
    """Markdown section: one row per job."""
    facts = app.load_facts()
    offers = app.load_snapshot(facts)
    results = [check_job(path, facts, offers) for path in job_files()]
    lines = [
        "## Realistic jobs",
        "",
        f"`python -m bench --only realistic` → `bench/realistic.py`: the {len(results)} job specs in `bench/jobs/` "
        f"(written as users in the field would: LoRA and full fine-tunes, multi-node pretraining, EU/DE/US data "
        f"residency, small-GPU inference, large data sets in S3/GCS/Azure, tight deadlines and budgets), planned over "
        f"the bundled snapshot ({len(offers)} offers) as of {NOW:%Y-%m-%d}. **checks**: the #1 pick has a known "
        "location, a multi-node pick is on a provider that forms clusters, the pick keeps the job's `geo` rule. "
        "`tests/test_realistic_jobs.py` asserts the same.",
        "",
        "| job | #1 pick | expected total | providers feasible | checks |",
        "|---|---|---:|---:|---|",
    ]
    for r in results:
        total = "-" if r.total_usd is None else f"${r.total_usd:,.2f}"
        lines.append(f"| {r.job} | {r.pick} | {total} | {r.providers_feasible} | "
                     f"{'; '.join(r.problems) or 'ok'} |")
    failing = sum(1 for r in results if r.problems)
    small = [r for r in results if r.small_gpu]
    lines += ["", f"{failing} of {len(results)} picks fail a check. Small-GPU jobs: "
              + ", ".join(f"{r.job} on {plural(r.providers_feasible, 'provider')}" for r in small) + "."]
    return "\n".join(lines) + "\n"

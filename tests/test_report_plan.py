"""`gpuarb report plan`: the breakdown per placement, rejections, and savings against the naive choice."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import ROOT, make_offer, make_spec
from typer.testing import CliRunner

from arbitrage.baselines import naive
from arbitrage.cli import app
from arbitrage.facts import Facts
from arbitrage.jobspec import Budget, DataLocation
from arbitrage.report.plan import build_plan_report

runner = CliRunner()
SPEC = str(ROOT / "jobspecs" / "llama3-8b-finetune.yaml")
NOW = "2026-11-23T12:00:00Z"
MOMENT = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def run(*args: str):
    return runner.invoke(app, list(args))


def test_savings_are_naive_minus_chosen(facts: Facts) -> None:
    spec = make_spec(data=DataLocation(provider="aws", region="us-east-1", size_gb=0.0))
    offers = [
        make_offer(provider="aws", region="us-east-1", on_demand_usd_per_hour=40.0, spot_usd_per_hour=None),
        make_offer(provider="aws", region="us-west-2", on_demand_usd_per_hour=32.0, spot_usd_per_hour=None),
        make_offer(provider="lambda", region="us-east-1", instance_type="gpu_8x_h100", on_demand_usd_per_hour=24.0,
                   spot_usd_per_hour=None),
    ]
    report = build_plan_report(spec, offers, facts, MOMENT, "cost", 5, {})
    assert report.best is not None and report.best.placement.offer.provider == "lambda"
    # naive = on-demand at the data's hyperscaler, in its region when sold there (not the cheaper us-west-2)
    assert report.naive is not None and report.naive.placement.offer.region == "us-east-1"
    assert report.savings_usd == pytest.approx(report.naive.total_usd - report.best.total_usd)
    # same work and overheads on the same GPUs: the saving is the hourly difference x the billed hours
    assert report.savings_share == pytest.approx(1 - 24 / 40)
    assert report.naive_meets_deadline() is None  # no deadline
    assert report.cheapest_listed is not None and report.cheapest_listed.placement.offer.provider == "lambda"


def test_over_budget_report_shows_fallbacks_and_no_savings(facts: Facts) -> None:
    spec = make_spec(budget=Budget(max_total_usd=10.0))
    report = build_plan_report(spec, [make_offer()], facts, MOMENT, "cost", 3, {})
    assert report.best is None and report.over_budget_only and report.shown
    assert report.savings_usd is None and report.naive is not None


def test_cli_json_adds_baselines_and_savings_to_the_plan_json() -> None:
    result = run("report", "plan", SPEC, "--format", "json", "--now", NOW, "--top", "3")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    plan = json.loads(run("plan", SPEC, "-f", "json", "--now", NOW, "--top", "3").output)
    assert doc["placements"] == plan["placements"] and doc["rejected"] == plan["rejected"]
    best, base = doc["placements"][0], doc["naive"]
    assert base["provider"] == "aws" and base["region"] == "us-east-1" and base["spot"] is False
    assert base["accelerator"] == "H100" and base["source"] == "snapshot" and base["as_of"]
    savings = doc["savings_vs_naive"]
    assert savings["usd"] == pytest.approx(base["total_usd"] - best["total_usd"], abs=0.02)
    assert savings["share"] == pytest.approx(savings["usd"] / base["total_usd"], abs=1e-3)
    assert doc["cheapest_listed"]["total_usd"] > 0


def test_naive_matches_the_baseline_module(facts: Facts) -> None:
    from arbitrage.specfile import read_jobspec
    from providers.snapshot import load_snapshot

    spec = read_jobspec(SPEC, facts)
    expected = naive(spec, load_snapshot(facts), facts)
    doc = json.loads(run("report", "plan", SPEC, "-f", "json", "--now", NOW).output)
    assert expected is not None and doc["naive"]["total_usd"] == pytest.approx(expected.total_usd, abs=0.01)


def test_cli_table_markdown_csv() -> None:
    table = run("report", "plan", SPEC, "--now", NOW, "--top", "2")
    assert table.exit_code == 0, table.output
    for needle in ("naive", "Savings vs naive", "Why #1", "Rejected:", "Prices:", "[snapshot, as of "):
        assert needle in table.output
    md = run("report", "plan", SPEC, "--now", NOW, "-f", "markdown")
    assert md.exit_code == 0
    for needle in ("# Plan report: llama3-8b-finetune", "## Cost breakdown", "| naive |", "## Rejected",
                   "| misses the deadline |", "## Sources", "Egress in", "Preemption"):
        assert needle in md.output
    rows = list(csv.DictReader(io.StringIO(run("report", "plan", SPEC, "--now", NOW, "-f", "csv", "-t", "2").output)))
    assert [r["role"] for r in rows] == ["placement", "placement", "naive", "cheapest_listed"]
    for r in rows:
        assert float(r["total_usd"]) == pytest.approx(
            float(r["compute_usd"]) + float(r["preemption_usd"]) + float(r["egress_usd"]), abs=0.02)
        assert r["source"] == "snapshot"


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return str(path)


def test_cli_over_budget_writes_the_report_then_exits_4(tmp_path: Path) -> None:
    job = _write(tmp_path, "name: x\nresources: {accelerators: H100:8}\n"
                           "arbitrage:\n  work: {gpu_hours: 800}\n  budget: {max_total_usd: 10}\n")
    target = tmp_path / "plan.md"
    result = run("report", "plan", job, "--now", NOW, "--out", str(target))
    assert result.exit_code == 4, result.output
    assert "Nothing fits the budget" in target.read_text() and "(over budget)" in target.read_text()


def test_cli_nothing_feasible_exit_3_with_reasons(tmp_path: Path) -> None:
    job = _write(tmp_path, "name: x\nresources: {accelerators: H100:8}\n"
                           "arbitrage:\n  work: {gpu_hours: 8000}\n  deadline: 2h\n")
    result = run("report", "plan", job, "--now", NOW, "-f", "markdown")
    assert result.exit_code == 3 and "misses the deadline" in result.output and "No feasible placement" in result.output


def test_cli_bad_spec_exit_2() -> None:
    result = run("report", "plan", "/nonexistent/job.yaml")
    assert result.exit_code == 2 and "no such file" in result.output


def test_every_plan_report_format_shows_the_price_age_and_flags_stale_prices(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: azure-only\nresources: {accelerators: A100-80GB:8}\n"
                   "arbitrage:\n  work: {gpu_hours: 64}\n  providers: {allow: [azure]}\n", encoding="utf-8")
    late = "2030-01-01T00:00:00Z"  # every bundled price is old by then
    doc = json.loads(run("report", "plan", str(job), "-f", "json", "--now", late).output)
    best = doc["placements"][0]
    assert best["provider"] == "azure" and best["stale"] is True and doc["stale_after_days"] == 90
    age = best["age_days"]
    assert age > 365
    assert doc["naive"] is None or doc["naive"]["stale"] is True
    md = run("report", "plan", str(job), "-f", "markdown", "--now", late).output
    assert f"as of {best['as_of']}, {age:.0f} d old: STALE" in md
    assert "STALE: older than 90 days (assumptions.toml)" in md  # the Why #1 line
    out = tmp_path / "plan.html"
    assert run("report", "plan", str(job), "--out", str(out), "--now", late).exit_code == 0
    html = out.read_text(encoding="utf-8")
    assert f"{age:.0f} d old: STALE" in html and "STALE: older than 90 days" in html
    assert f"{age:.0f}d stale" in run("report", "plan", str(job), "--now", late).output
    fresh = json.loads(run("report", "plan", str(job), "-f", "json", "--now", best["as_of"] + "T12:00:00Z").output)
    assert fresh["placements"][0]["age_days"] == 0.5 and fresh["placements"][0]["stale"] is False

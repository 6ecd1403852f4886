"""The CLI as a user runs it: formats, exit codes, one-line errors, and a light --help."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from arbitrage.cli import app

runner = CliRunner()
SPEC = str(ROOT / "jobspecs" / "llama3-8b-finetune.yaml")
NOW = "2026-11-23T12:00:00Z"


def run(*args: str):
    return runner.invoke(app, list(args))


def test_help_lists_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("prices", "plan", "schema", "validate"):
        assert command in result.output


def test_help_imports_no_heavy_modules() -> None:
    code = ("import sys; from arbitrage.cli import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('boto3', 'sky', 'ray', 'google.cloud', 'azure', 'pydantic', 'httpx')"
            " if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_prices_json_is_sorted_per_gpu_hour_with_units_and_provenance() -> None:
    result = run("prices", "--gpu", "H100", "--count", "8", "--on-demand", "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.output)
    rows = doc["offers"]
    assert rows and doc["matching"] == len(rows)
    per_gpu = [r["on_demand_usd_per_gpu_hour"] for r in rows]
    assert per_gpu == sorted(per_gpu)
    for r in rows:
        assert r["gpus_per_node"] == 8 and r["accelerator"] == "H100"
        assert r["on_demand_usd_per_hour"] == pytest.approx(r["on_demand_usd_per_gpu_hour"] * 8, rel=1e-3)
        assert r["source"] == "snapshot" and r["as_of"] and r["price_ref"]


def test_prices_filters_and_formats() -> None:
    result = run("prices", "-g", "A100", "-p", "aws", "-r", "us-*", "--spot", "-f", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert rows and all(r["provider"] == "aws" and r["region"].startswith("us-") and r["spot_usd_per_hour"]
                        for r in rows)
    md = run("prices", "-g", "H100", "-f", "markdown", "--limit", "3")
    assert md.exit_code == 0 and md.output.startswith("| Provider |") and "more matching offers" in md.output
    table = run("prices", "-g", "H100", "--limit", "2")
    assert table.exit_code == 0 and "USD" in table.output


@pytest.mark.parametrize(("args", "needle"), [
    (("prices", "--gpu", "H10"), "unknown GPU 'H10' (did you mean H100?)"),
    (("prices", "--provider", "amazon"), "unknown provider 'amazon'"),
    (("prices", "--format", "xml"), "xml"),
])
def test_prices_bad_input_is_one_line_and_nonzero(args, needle) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert needle in result.output
    assert "Traceback" not in result.output


def test_prices_nothing_matches_exit_3() -> None:
    assert run("prices", "--gpu", "H100", "--provider", "hyperbolic", "--count", "8").exit_code == 3


def test_plan_json_fields() -> None:
    result = run("plan", SPEC, "--format", "json", "--now", NOW, "--top", "3")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["job"] == "llama3-8b-finetune" and doc["feasible"] > 0 and len(doc["placements"]) == 3
    required = {"provider", "region", "zone", "instance_type", "accelerator", "gpus_per_node", "nodes", "spot",
                "hourly_usd", "expected_hours", "compute_usd", "preemption_usd", "egress_usd", "total_usd",
                "meets_deadline", "interconnect", "source", "as_of"}
    for p in doc["placements"]:
        assert required <= set(p)
        assert p["total_usd"] == pytest.approx(p["compute_usd"] + p["preemption_usd"] + p["egress_usd"], abs=0.02)
        assert p["meets_deadline"] is True
    totals = [p["total_usd"] for p in doc["placements"]]
    assert totals == sorted(totals)
    assert doc["rejected"] and all(isinstance(v, int) for v in doc["rejected"].values())
    assert {"aws", "gcp", "azure", "lambda"} <= set(doc["catalog"])


def test_plan_table_explains_the_choice() -> None:
    result = run("plan", SPEC, "--now", NOW)
    assert result.exit_code == 0
    assert "Why #1" in result.output and "Rejected" in result.output and "Prices:" in result.output


def test_plan_objective_time_is_not_slower() -> None:
    cost = json.loads(run("plan", SPEC, "-f", "json", "--now", NOW).output)["placements"][0]
    fast = json.loads(run("plan", SPEC, "-f", "json", "--now", NOW, "--objective", "time").output)["placements"][0]
    assert fast["expected_hours"] <= cost["expected_hours"] and fast["total_usd"] >= cost["total_usd"]


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return str(path)


def test_plan_invalid_spec_exit_2_with_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nresources:\n  accelerators: H10:8\narbitrage:\n  work: {gpu_hours: 5}\n")
    result = run("plan", path)
    assert result.exit_code == 2
    assert f"{path}:3: resources.accelerators: unknown GPU 'H10' (did you mean H100?)" in result.output


def test_plan_missing_file_exit_2() -> None:
    result = run("plan", "/nonexistent/job.yaml")
    assert result.exit_code == 2 and "no such file" in result.output


def test_plan_nothing_feasible_exit_3(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nresources: {accelerators: H100:8}\n"
                            "arbitrage:\n  work: {gpu_hours: 8000}\n  deadline: 2h\n")
    result = run("plan", path, "--now", NOW)
    assert result.exit_code == 3 and "misses the deadline" in result.output


def test_plan_over_budget_exit_4(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nresources: {accelerators: H100:8}\n"
                            "arbitrage:\n  work: {gpu_hours: 800}\n  budget: {max_total_usd: 10}\n")
    result = run("plan", path, "--now", NOW, "-f", "json")
    assert result.exit_code == 4
    doc = json.loads(result.output[: result.output.rindex("}") + 1])
    assert doc["placements"] == [] and doc["over_budget"][0]["total_usd"] > 10


def test_validate_and_schema(tmp_path: Path) -> None:
    ok = run("validate", SPEC)
    assert ok.exit_code == 0 and "ok" in ok.output
    bad = run("validate", SPEC, _write(tmp_path, "name: x\n"))
    assert bad.exit_code == 2
    schema = json.loads(run("schema").output)
    assert schema["title"] == "gpuarb job spec"


def test_console_script_runs_from_a_subprocess() -> None:
    result = subprocess.run([sys.executable, "-m", "arbitrage.cli", "plan", SPEC, "--now", NOW, "-f", "json",
                             "--top", "1"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["placements"][0]["rank"] == 1


# -- Price age, set-aside prices, one row per choice ---------------------------------------------------------------

def test_prices_show_each_price_age_and_flag_stale_ones() -> None:
    from datetime import datetime, timezone

    doc = json.loads(run("prices", "--gpu", "A100-80GB", "--format", "json", "--now", NOW).output)
    assert doc["now"].startswith("2026-11-23T12:00") and doc["stale_after_days"] == 90
    rows = doc["offers"]
    assert rows and all({"age_days", "stale", "as_of_estimated", "country", "continent"} <= set(r) for r in rows)
    now = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
    for r in rows:  # age counted from the as-of date (midnight UTC) to --now; stale past 90 days or undated
        when = datetime.fromisoformat(r["as_of"][:10]).replace(tzinfo=timezone.utc)
        assert r["age_days"] == round(max(0.0, (now - when).total_seconds() / 86400), 1), r
        assert r["stale"] is (r["age_days"] > 90), r
    late = run("prices", "--gpu", "A100-80GB", "--provider", "azure", "--now", "2030-01-01T00:00:00Z", "--limit", "3")
    assert late.exit_code == 0 and "Age" in late.output and "d stale" in late.output


def _cache_gcp(tmp_path: Path) -> None:
    """A cached GCP answer with one shape GCP does not sell on-demand and one price under half of GCP's own."""
    from datetime import datetime, timezone

    from conftest import make_offer

    from providers import cache

    def h100(region: str, instance: str, gpus: int, od: float, spot: float | None) -> object:
        return make_offer(provider="gcp", region=region, instance_type=instance, gpus_per_node=gpus,
                          on_demand_usd_per_hour=od * gpus, spot_usd_per_hour=None if spot is None else spot * gpus,
                          source="live", as_of="2026-11-22T12:00:00+00:00", interconnect="gpudirect-tcpx")
    offers = [h100("us-east4", "a3-highgpu-8g", 8, 11.06, 2.5), h100("europe-west4", "a3-highgpu-8g", 8, 12.5, 3.2),
              h100("asia-east1", "a3-highgpu-8g", 8, 12.7, 3.2), h100("us-central1", "a3-highgpu-8g", 8, 5.38, 3.35),
              h100("us-central1", "a3-highgpu-1g", 1, 11.0, 3.35)]
    cache.write_offers(tmp_path, "gcp", offers, datetime(2026, 11, 23, 11, tzinfo=timezone.utc))


def test_prices_quarantined_lists_what_the_gate_set_aside_and_why(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUARB_CACHE_DIR", str(tmp_path))
    _cache_gcp(tmp_path)
    doc = json.loads(run("prices", "--quarantined", "--provider", "gcp", "--source", "cache", "-f", "json",
                         "--now", NOW).output)
    got = sorted((p["region"], p["instance_type"], p["option"], p["rule"]) for p in doc["prices"])
    assert got == [("us-central1", "a3-highgpu-1g", "on-demand", "not-sold-on-demand"),
                   ("us-central1", "a3-highgpu-8g", "on-demand", "outlier-low")]
    assert doc["by_provider"] == {"gcp": 2} and all(p["reason"] and p["age_days"] == 1.0 for p in doc["prices"])
    # The kept offers lost exactly those prices: us-central1 sells spot only now.
    kept = json.loads(run("prices", "--provider", "gcp", "--source", "cache", "-f", "json").output)["offers"]
    central = [r for r in kept if r["region"] == "us-central1"]
    assert central and all(r["on_demand_usd_per_hour"] is None and r["spot_usd_per_hour"] for r in central)
    table = run("prices", "--quarantined", "--provider", "gcp", "--source", "cache")
    assert table.exit_code == 0 and "set aside by the quality gate" in table.output
    assert "outlier-low" in table.output and "not-sold-on-demand" in table.output
    spot_only = json.loads(run("prices", "--quarantined", "--provider", "gcp", "--source", "cache", "--spot",
                               "-f", "json").output)
    assert spot_only["quarantined"] == 0
    providers = json.loads(run("providers", "--format", "json").output)["providers"]
    gcp = next(r for r in providers if r["provider"] == "gcp")
    assert gcp["cached_quarantined"] == 2 and "snapshot_quarantined" in gcp
    assert "Set aside" in run("providers").output


def test_prices_quarantined_on_the_snapshot_is_a_good_answer() -> None:
    result = run("prices", "--quarantined", "-f", "json")
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["quarantined"] == len(doc["prices"]) and all(p["rule"] and p["reason"] for p in doc["prices"])


def test_plan_json_rows_are_distinct_choices_with_age_and_alternatives() -> None:
    doc = json.loads(run("plan", SPEC, "-f", "json", "--now", NOW, "--top", "0").output)
    rows = doc["placements"]
    assert doc["choices"] == len(rows) <= doc["feasible"]
    keys = [(r["provider"], r["instance_type"], r["gpu_model"], r["spot"], r["nodes"], r["total_usd"]) for r in rows]
    assert len(keys) == len(set(keys))  # same price elsewhere is one row, listed in also_in
    assert sum(1 + len(r["also_in"]) for r in rows) == doc["feasible"]
    for r in rows:
        assert {"age_days", "stale", "as_of_estimated", "also_in"} <= set(r)
        assert all({"region", "zone", "country", "continent"} <= set(a) for a in r["also_in"])
    assert doc["stale_after_days"] == 90

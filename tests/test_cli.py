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
    fast = json.loads(run("plan", SPEC, "-f", "json", "--now", NOW, "-o", "time").output)["placements"][0]
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

"""`gpuarb diff`: the cost change between two plans of a job, as a user and a CI pipeline run it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from arbitrage.cli import app
from arbitrage.costdiff import CostDiff, plan_side, policy_violations
from arbitrage.errors import DataError

SPEC = ROOT / "jobspecs" / "llama3-8b-finetune.yaml"
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), env={"GPUARB_SOURCE": "snapshot"})


@pytest.fixture()
def bigger(tmp_path: Path) -> Path:
    text = SPEC.read_text().replace("gpu_hours: 512", "gpu_hours: 700")
    assert "gpu_hours: 700" in text
    path = tmp_path / "bigger.yaml"
    path.write_text(text)
    return path


def _plan_total(path: Path) -> float:
    doc = json.loads(run("plan", str(path), "--format", "json").stdout)
    return doc["placements"][0]["total_usd"]


def test_two_specs_give_the_change_of_their_plans(bigger: Path) -> None:
    result = run("diff", str(SPEC), str(bigger), "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    base, head = _plan_total(SPEC), _plan_total(bigger)
    assert doc["base"]["total_usd"] == pytest.approx(base) and doc["head"]["total_usd"] == pytest.approx(head)
    assert doc["delta"]["total_usd"] == pytest.approx(head - base, abs=0.01)
    assert doc["delta"]["total_percent"] == pytest.approx(100 * (head - base) / base, abs=0.01)
    assert doc["delta"]["hours"] > 0 and doc["currency"] == "USD" and doc["policy"]["passed"] is True


def test_a_saved_plan_compares_like_a_spec(tmp_path: Path, bigger: Path) -> None:
    saved = tmp_path / "plan.json"
    saved.write_text(run("plan", str(SPEC), "--format", "json").stdout)
    from_file = json.loads(run("diff", str(saved), str(bigger), "-f", "json").stdout)
    from_spec = json.loads(run("diff", str(SPEC), str(bigger), "-f", "json").stdout)
    assert from_file["delta"] == from_spec["delta"]


def test_policies_fail_with_their_own_exit_code(bigger: Path) -> None:
    over = run("diff", str(SPEC), str(bigger), "--fail-above-percent", "10")
    assert over.exit_code == 6 and "above --fail-above-percent 10" in over.output
    usd = run("diff", str(SPEC), str(bigger), "--fail-above-usd", "100")
    assert usd.exit_code == 6 and "--fail-above-usd" in usd.output
    fine = run("diff", str(SPEC), str(bigger), "--fail-above-percent", "90", "--fail-above-usd", "100000")
    assert fine.exit_code == 0, fine.output
    cheaper = run("diff", str(bigger), str(SPEC), "--fail-above-percent", "0")
    assert cheaper.exit_code == 0  # a cost drop never fails a rise policy


def test_markdown_is_a_comment_body_with_the_verdict(bigger: Path) -> None:
    result = run("diff", str(SPEC), str(bigger), "-f", "markdown", "--fail-above-percent", "10")
    assert result.exit_code == 6
    body = result.stdout
    assert body.startswith("**gpuarb cost diff for `llama3-8b-finetune`**: expected total +$")
    assert "| Expected total |" in body and "**Policy failed:**" in body and "All money in USD" in body


def test_git_revisions_of_one_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bigger: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    job = repo / "job.yaml"
    job.write_text(SPEC.read_text())

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
                            "GIT_COMMITTER_EMAIL": "t@e", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})

    git("init", "-q")
    git("add", "job.yaml")
    git("commit", "-q", "-m", "base")
    job.write_text(bigger.read_text())
    monkeypatch.chdir(repo)
    result = run("diff", "HEAD:job.yaml", "job.yaml", "-f", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["base"]["label"] == "HEAD:job.yaml" and doc["delta"]["total_usd"] > 0
    missing = run("diff", "HEAD:nope.yaml", "job.yaml")
    assert missing.exit_code == 2 and missing.output.count("\n") == 1 and "HEAD:nope.yaml" in missing.output


def test_bad_sides_are_one_line_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = run("diff", str(broken), str(SPEC))
    assert result.exit_code == 2 and "not a plan JSON file" in result.output
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"offers": []}')
    result = run("diff", str(wrong), str(SPEC))
    assert result.exit_code == 1 and "not a gpuarb plan" in result.output
    result = run("diff", str(tmp_path / "absent.yaml"), str(SPEC))
    assert result.exit_code == 2 and "no such file" in result.output
    assert run("diff", str(SPEC), str(SPEC), "--fail-above-usd", "-5").exit_code == 2


def test_infeasible_head_exits_3(tmp_path: Path) -> None:
    tight = tmp_path / "tight.yaml"
    tight.write_text(SPEC.read_text().replace("deadline: 96h", "deadline: 2h"))
    result = run("diff", str(SPEC), str(tight), "-f", "json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["head"]["status"] == "infeasible"


def test_plan_side_rejects_non_finite_money() -> None:
    record = {"job": "j", "placements": [{"provider": "aws", "region": "r", "nodes": 1, "instance_type": "i",
                                          "spot": False, "hourly_usd": 1.0, "expected_hours": 2.0,
                                          "total_usd": float("nan")}]}
    with pytest.raises(DataError, match="total_usd"):
        plan_side(record, "x.json")
    ok = plan_side({**record, "placements": [{**record["placements"][0], "total_usd": 2.0}]}, "a")
    zero = plan_side({**record, "placements": [{**record["placements"][0], "total_usd": 0.0}]}, "b")
    assert policy_violations(CostDiff(zero, ok), fail_above_percent=1e6)  # from $0 any rise is infinite

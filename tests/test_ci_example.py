"""The GitHub Actions example: valid YAML, and every gpuarb command and option it uses exists."""

from __future__ import annotations

import shlex

import typer.main
import yaml
from conftest import ROOT

from arbitrage.cli import app

WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"


def _gpuarb_calls() -> list[list[str]]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    calls = []
    for job in doc["jobs"].values():
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                words = shlex.split(line.split("|")[0].split(">")[0], comments=True)
                if words and words[0] == "gpuarb":
                    calls.append(words[1:])
    return calls


def test_workflow_runs_plan_on_pull_requests_and_run_on_push():
    doc = yaml.safe_load(WORKFLOW.read_text())
    triggers = doc[True] if True in doc else doc["on"]  # YAML 1.1 reads the key `on` as True
    assert set(triggers) == {"pull_request", "push"}
    commands = [c[0] for c in _gpuarb_calls()]
    assert {"validate", "plan", "diff", "run"} <= set(commands)


def test_every_command_and_option_in_the_workflow_exists():
    group = typer.main.get_command(app)
    for call in _gpuarb_calls():
        command = group.commands[call[0]]  # type: ignore[attr-defined]
        known = {opt for p in command.params for opt in p.opts}
        for word in call[1:]:
            if word.startswith("-"):
                assert word in known, f"gpuarb {call[0]} has no option {word}"


def test_merges_submit_to_the_team_server_with_only_a_ci_token():
    doc = yaml.safe_load(WORKFLOW.read_text())
    train = doc["jobs"]["train"]
    envs = {k: v for step in train["steps"] for k, v in (step.get("env") or {}).items()}
    assert set(envs) == {"GPUARB_SERVER", "GPUARB_TOKEN", "GPUARB_IDEMPOTENCY_KEY"}  # no cloud credentials
    assert envs["GPUARB_TOKEN"] == "${{ secrets.GPUARB_TOKEN }}"
    assert "github.run_id" in envs["GPUARB_IDEMPOTENCY_KEY"] and "run_attempt" not in envs["GPUARB_IDEMPOTENCY_KEY"]
    runs = [c for c in _gpuarb_calls() if c[0] == "run"]
    assert runs and all("--detach" in c for c in runs)

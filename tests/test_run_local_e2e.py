"""End to end, as a user runs it: `gpuarb run --backend local --detach`, the training process killed mid-run
(a preemption), resumed from its checkpoint by gpuarb, finished, torn down, and all of it in the ledger.

Real processes throughout: the gpuarb CLI, its detached supervisor, a Ray head, examples/train.py (PyTorch CPU).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import gpuarb_process, local_cpu_job, wait_for

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("ray", "aiohttp", "torch")),
    reason="needs ray[default] and torch (pip install 'ray[default]' torch)")

STEPS, EVERY = 120, 20


def test_detached_local_run_survives_a_kill_and_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    job = local_cpu_job(tmp_path, STEPS, EVERY)
    data = tmp_path / "data"
    env = {**os.environ, "GPUARB_DATA_DIR": str(data), "GPUARB_SOURCE": "snapshot"}

    submitted = gpuarb_process(env, "run", str(job), "--backend", "local", "--detach", "--poll-seconds", "1",
                       "--format", "json")
    assert submitted.returncode == 0, submitted.stderr
    run_id = json.loads(submitted.stdout)["run_id"]
    ckpt = data / "checkpoints" / run_id

    def checkpointed_past(step: int):
        try:
            return json.loads((ckpt / "checkpoint.json").read_text())["step"] >= step
        except (OSError, ValueError, KeyError):
            return False

    try:
        wait_for(lambda: checkpointed_past(2 * EVERY), 180, "two checkpoints of attempt 1")
        pid, attempt = (ckpt / "train.pid").read_text().split()
        assert attempt == "1"
        killed_after = json.loads((ckpt / "checkpoint.json").read_text())["step"]
        os.kill(int(pid), signal.SIGKILL)  # the preemption

        def ended():
            status = gpuarb_process(env, "status", run_id, "--format", "json")
            doc = json.loads(status.stdout)
            return doc if doc["ended_at"] and doc["events"][-1]["kind"] == "torn-down" else None

        final = wait_for(ended, 240, "the run to end")
    finally:
        gpuarb_process(env, "down", run_id)  # never leave a head behind, even when an assertion fails

    assert final["state"] == "succeeded", final
    kinds = [e["kind"] for e in final["events"]]
    assert kinds[:2] == ["planned", "launched"] and kinds[-2:] == ["finished", "torn-down"]
    assert kinds.count("preempted") == 1 and kinds.count("resumed") == 1 and kinds.count("launched") == 2
    assert [a["outcome"] for a in final["attempts_detail"]] == ["preempted", "succeeded"]
    assert final["currency"] == "USD" and final["spent_usd"] >= 0

    steps: dict[int, list[str]] = {}
    for line in (ckpt / "steps.log").read_text().splitlines():
        _, step, _, attempt_no, *_ = line.split()
        steps.setdefault(int(step), []).append(attempt_no)
    assert sorted(steps) == list(range(1, STEPS + 1))  # every step done
    resumed_from = min(s for s, a in steps.items() if "2" in a) - 1
    assert resumed_from % EVERY == 0 and resumed_from >= killed_after  # a real checkpoint, the latest one
    assert all(a == ["1"] for s, a in steps.items() if s <= resumed_from)  # nothing before it was redone
    twice = [s for s, a in steps.items() if a == ["1", "2"]]
    assert all(resumed_from < s <= resumed_from + EVERY for s in twice)  # only work after it, at most one interval
    assert all(len(a) <= 2 for a in steps.values())
    assert json.loads((ckpt / "result.json").read_text())["step"] == STEPS

    leftovers = subprocess.run(["pgrep", "-f", str(data)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], "processes of this run's Ray head are still alive"

"""The team server end to end, as CI uses it: a real `gpuarb server start` process on PostgreSQL (SQLite where no
PostgreSQL is configured), a token made with `gpuarb server token create`, a CI step that submits with
`gpuarb run --detach` and exits, the server killed with SIGKILL mid-run and started again, the retried CI step
finding its run by idempotency key, and the run supervised to its end (the local backend: a Ray head and
examples/train.py, resumed from its checkpoint after the kill took the head down with the server).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, _drop_database, _postgres_database, free_port, gpuarb_process, local_cpu_job, wait_for

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("ray", "aiohttp", "torch", "fastapi", "uvicorn")),
    reason="needs ray[default], torch and the server extra (pip install -e '.[test]' torch)")

STEPS, EVERY = 100, 20


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "arbitrage.cli", "server", "start", "--port", str(port),
                             "--backend", "local", "--poll-seconds", "1", "--heartbeat-seconds", "1",
                             "--stale-seconds", "3", "--claim-seconds", "0.5", "--budget-seconds", "2"],
                            cwd=ROOT, env=env, stdout=out, stderr=out)

    def up() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited: {log.read_text()[-2000:]}") from None
            return False

    wait_for(up, 60, "the server to listen")
    return proc


@pytest.fixture
def server_database(tmp_path: Path):
    if not os.environ.get("GPUARB_TEST_POSTGRES_URL") and not os.environ.get("GPUARB_REQUIRE_POSTGRES"):
        yield f"sqlite:///{tmp_path / 'server.sqlite3'}"
        return
    admin, name, url = _postgres_database()
    try:
        yield url
    finally:
        _drop_database(admin, name)
        admin.dispose()


def test_a_ci_submission_outlives_its_runner_and_a_server_kill(tmp_path: Path, server_database: str) -> None:
    job = local_cpu_job(tmp_path, STEPS, EVERY)
    data = tmp_path / "server-data"
    port = free_port()
    server_env = {**os.environ, "GPUARB_DATA_DIR": str(data), "GPUARB_SOURCE": "snapshot",
                  "GPUARB_DATABASE_URL": server_database}
    for key in ("GPUARB_SERVER", "GPUARB_TOKEN"):
        server_env.pop(key, None)
    made = gpuarb_process(server_env, "server", "token", "create", "--team", "ml", "--name", "github-ci",
                          "--role", "ci")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    ci_env = {k: v for k, v in os.environ.items() if k != "GPUARB_DATABASE_URL"}
    ci_env.update({"GPUARB_DATA_DIR": str(tmp_path / "ci-runner"), "GPUARB_SOURCE": "snapshot",
                   "GPUARB_SERVER": f"http://127.0.0.1:{port}", "GPUARB_TOKEN": token})
    log = tmp_path / "server.log"
    first = _serve(server_env, port, log)
    second = None
    run_id = None
    try:
        wrong = gpuarb_process({**ci_env, "GPUARB_TOKEN": token[:-1] + "x"}, "status")
        assert wrong.returncode == 8 and wrong.stderr.strip() == "gpuarb: error: invalid or missing token"

        submitted = gpuarb_process(ci_env, "run", str(job), "--backend", "local", "--detach", "--format", "json",
                           "--idempotency-key", "gh-7781-train")
        assert submitted.returncode == 0, submitted.stderr
        run_id = json.loads(submitted.stdout)["run_id"]  # the CI step has exited; the server goes on
        assert not (tmp_path / "ci-runner" / "ledger.sqlite3").exists()  # nothing lives on the runner
        ckpt = data / "checkpoints" / run_id

        def checkpointed_past(step: int) -> bool:
            try:
                return json.loads((ckpt / "checkpoint.json").read_text())["step"] >= step
            except (OSError, ValueError, KeyError):
                return False

        wait_for(lambda: checkpointed_past(EVERY), 180, "a checkpoint of attempt 1")
        first.send_signal(signal.SIGKILL)  # the server dies mid-run (its Ray head dies with it)
        first.wait(30)

        second = _serve(server_env, port, log)
        again = gpuarb_process(ci_env, "run", str(job), "--backend", "local", "--detach", "--format", "json",
                       "--idempotency-key", "gh-7781-train")  # the CI step retried
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["run_id"] == run_id and "already submitted" in again.stderr

        def ended():
            status = gpuarb_process(ci_env, "status", run_id, "--format", "json")
            assert status.returncode == 0, status.stderr
            doc = json.loads(status.stdout)
            return doc if doc["ended_at"] and doc["events"][-1]["kind"] == "torn-down" else None

        final = wait_for(ended, 300, "the run to end")
        assert final["state"] == "succeeded", (final, log.read_text()[-3000:])
        messages = [e["message"] for e in final["events"]]
        assert any("supervision resumed" in m for m in messages), messages
        assert json.loads((ckpt / "result.json").read_text())["step"] == STEPS
        done = set()
        for line in (ckpt / "steps.log").read_text().splitlines():
            done.add(int(line.split()[1]))
        assert done == set(range(1, STEPS + 1))  # every step, resumed from the checkpoint after the kill
        history = gpuarb_process(ci_env, "history", "--format", "json")
        assert history.returncode == 0, history.stderr
        assert len(json.loads(history.stdout)) == 1  # one run, not two
        spend = gpuarb_process(ci_env, "report", "spend", "--by", "model", "--format", "json")
        assert spend.returncode == 0 and "linear-regression" in spend.stdout, spend.stderr
        status_text = gpuarb_process(ci_env, "status", run_id)
        assert status_text.returncode == 0 and f"Run: {run_id}" in status_text.stdout.replace("  ", " ")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()


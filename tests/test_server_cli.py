"""The CLI talking to a team server (GPUARB_SERVER, GPUARB_TOKEN): the same output and exit codes as on its own
ledger, for plan, run, status, history, logs, down, report spend and export focus; and one-line errors for a
refused token, a missing token, a bad server URL and a server that does not answer.

The real server app runs under uvicorn on a loopback port (its workers off: runs stay planned unless a test
supervises them), over SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, free_port
from typer.testing import CliRunner

from arbitrage import app as usecases
from arbitrage.cli import app

uvicorn = pytest.importorskip("uvicorn")
from arbitrage.server.api import ServerConfig, create_app  # noqa: E402

JOB = ROOT / "jobspecs" / "llama3-8b-finetune.yaml"
runner = CliRunner()


@contextmanager
def serving(config: ServerConfig) -> Iterator[str]:
    """The server app under uvicorn on a loopback port, in a thread, for as long as the block runs; its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning",
                                           ws="none"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def served(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GPUARB_DATABASE_URL", database_url)
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path / "server-data"))
    token = usecases.issue_token("ml", "github-ci", "ci").token
    with serving(ServerConfig(supervise=False)) as url:
        yield {"GPUARB_SERVER": url, "GPUARB_TOKEN": token}, token


def cli(env: dict[str, str] | None, *args: str) -> Any:
    """The CLI, with the server's environment (None: on its own ledger, no server)."""
    extra = dict(env or {})
    if env is None:
        extra = {"GPUARB_SERVER": "", "GPUARB_TOKEN": ""}
    return runner.invoke(app, list(args), env=extra)


def test_plan_through_the_server_prints_what_a_local_plan_prints_with_the_same_exit_codes(served, tmp_path):
    env, _ = served
    for args in (["plan", str(JOB)], ["plan", str(JOB), "--top", "2", "--wide"], ["plan", str(JOB), "--gpus", "L4:1"]):
        local, remote = cli(None, *args), cli(env, *args)
        assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout), args
    over = tmp_path / "over.yaml"
    over.write_text(JOB.read_text().replace("max_total_usd: 5000", "max_total_usd: 10"))
    local, remote = cli(None, "plan", str(over)), cli(env, "plan", str(over))
    assert local.exit_code == remote.exit_code == 4 and remote.stdout == local.stdout
    assert "over budget" in remote.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nresources: {accelerators: H10:8}\n")
    local, remote = cli(None, "plan", str(bad)), cli(env, "plan", str(bad))
    assert local.exit_code == remote.exit_code == 2 and "H10" in remote.stderr
    as_json = json.loads(cli(env, "plan", str(JOB), "--format", "json").stdout)
    assert as_json["placements"][0]["provider"] == json.loads(cli(None, "plan", str(JOB), "--format",
                                                                    "json").stdout)["placements"][0]["provider"]


def test_a_run_submitted_through_the_server_is_read_listed_and_stopped_through_it(served):
    env, _ = served
    assert cli(env, "status").stdout.startswith("no runs yet (ledger: team ml on http://127.0.0.1:")
    submitted = cli(env, "run", str(JOB), "--detach", "--idempotency-key", "gh-1")
    assert submitted.exit_code == 0, submitted.output
    run_id = submitted.stdout.strip()
    again = cli(env, "run", str(JOB), "--detach", "--idempotency-key", "gh-1", "--format", "json")
    assert json.loads(again.stdout)["run_id"] == run_id and "already submitted" in again.stderr
    detail = cli(env, "status", run_id)
    assert detail.exit_code == 0 and f"Run: {run_id}" in detail.stdout and "planned (queued)" in detail.stdout
    assert "Events:" in detail.stdout and "planned from llama3-8b-finetune.yaml" in detail.stdout
    listed = json.loads(cli(env, "history", "--format", "json").stdout)
    assert [r["run_id"] for r in listed] == [run_id]
    by_name = json.loads(cli(env, "status", "llama3-8b-finetune", "--format", "json").stdout)
    assert by_name["run_id"] == run_id
    assert cli(env, "history", "--tag", "team=nobody").stdout.strip() == "no runs match"
    logs = cli(env, "logs", run_id)
    assert logs.exit_code == 1 and "has not launched anything yet" in logs.stderr
    stopped = cli(env, "down", run_id)
    assert stopped.exit_code == 0 and stopped.stdout.strip() == f"run {run_id}: nothing was launched; cancelled"
    spend = cli(env, "report", "spend", "--by", "model")
    assert spend.exit_code == 0 and "llama3" in spend.stdout
    focus = cli(env, "export", "focus")
    local_header = cli(None, "export", "focus").stdout.splitlines()[0]
    assert focus.exit_code == 0 and focus.stdout.splitlines()[0] == local_header and "BilledCost" in local_header
    assert "from team ml" in focus.stderr
    missing = cli(env, "status", "20991231-000000-abcdef")
    assert missing.exit_code == 1 and "no run" in missing.stderr
    # the server's database is not the client's business: its file (or URL, naming host and user) is not shown
    assert "in the team server's ledger" in missing.stderr and "ledger.sqlite3" not in missing.stderr
    assert "postgresql" not in missing.stderr


def test_a_refused_token_and_a_missing_server_are_one_line_errors(served):
    env, token = served
    for args in (["status"], ["history"], ["plan", str(JOB)], ["run", str(JOB), "--detach"], ["down", "x1234567"]):
        refused = cli({**env, "GPUARB_TOKEN": token[:-2] + "zz"}, *args)
        assert refused.exit_code == 8, (args, refused.output)
        assert refused.stderr == "gpuarb: error: invalid or missing token\n"
        assert token[10:] not in refused.output
    no_token = cli({**env, "GPUARB_TOKEN": ""}, "status")
    assert no_token.exit_code == 2 and "GPUARB_TOKEN: not set" in no_token.stderr
    bad_url = cli({**env, "GPUARB_SERVER": "gpuarb.internal:8080"}, "status")
    assert bad_url.exit_code == 2 and "GPUARB_SERVER: expected the server's URL" in bad_url.stderr
    gone = cli({**env, "GPUARB_SERVER": f"http://127.0.0.1:{free_port()}"}, "status")
    assert gone.exit_code == 1 and "cannot reach the gpuarb server" in gone.stderr and gone.stderr.endswith("\n")


def test_prices_through_the_server_print_what_local_prices_print(served):
    env, _ = served
    for args in (["prices", "--gpu", "H100", "--count", "8"], ["prices", "--gpu", "L4", "--format", "csv"],
                 ["prices", "--gpu", "A100*", "--format", "markdown", "--limit", "3"], ["prices", "--quarantined"],
                 ["prices", "--gpu", "H100", "--provider", "hyperbolic", "--count", "8"]):
        local, remote = cli(None, *args), cli(env, *args)
        assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout), args
    empty = cli(env, "prices", "--gpu", "H100", "--provider", "hyperbolic", "--count", "8")
    assert empty.exit_code == 3 and "no offer matches these filters" in empty.stderr
    unknown = cli(env, "prices", "--gpu", "H10")
    assert unknown.exit_code == 2 and "did you mean H100?" in unknown.stderr


@pytest.fixture
def supervising(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A server whose workers supervise with the FakeBackend: the first job succeeds, the second fails."""
    from arbitrage.launch.backend import JobState, JobStatus
    from arbitrage.launch.fake import FakeBackend

    monkeypatch.setenv("GPUARB_DATABASE_URL", database_url)
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path / "server-data"))
    token = usecases.issue_token("ml", "github-ci", "ci").token
    running = JobStatus(JobState.RUNNING)
    backend = FakeBackend(scripts=[[running, JobStatus(JobState.SUCCEEDED, message="exit 0")],
                                   [running, JobStatus(JobState.FAILED, message="exit 3: CUDA out of memory")]])
    config = ServerConfig(backend_factory=lambda name: backend, poll_seconds=0.05, heartbeat_seconds=0.5,
                          claim_seconds=0.05)
    with serving(config) as url:
        yield {"GPUARB_SERVER": url, "GPUARB_TOKEN": token}, backend


def test_run_without_detach_follows_the_server_run_to_its_end_and_exits_as_a_local_run_would(supervising):
    env, backend = supervising
    done = cli(env, "run", str(JOB), "--poll-seconds", "0.1")
    assert done.exit_code == 0, done.output
    assert "supervised by http://127.0.0.1:" in done.stderr and "finished: exit 0" in done.stderr
    assert done.stdout.startswith("run ") and "succeeded; spent $" in done.stdout
    failed = cli(env, "run", str(JOB), "--poll-seconds", "0.1", "--format", "json")
    assert failed.exit_code == 5, failed.output  # the job's own failure, as locally
    doc = json.loads(failed.stdout)
    assert doc["state"] == "failed" and "CUDA out of memory" in doc["message"]
    assert len(backend.launched) == 2 and len(backend.torn_down) == 2

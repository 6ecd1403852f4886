"""The team server under load and faults: 200 submissions from 20 concurrent CI clients to two replicas on one
PostgreSQL database, one replica killed with SIGKILL mid-run and restarted, every run supervised to its end.

What is measured: submission throughput and latency (each submission plans the job over the bundled snapshot,
checks the team's caps and records the run), retried submissions (same idempotency key) answered with the first
run, and after the runs end: none lost, none launched twice, every run's ledger rows consistent. Jobs run on
bench/file_backend.py (a job is a file that is "done" some seconds after its launch, so it outlives a killed
replica as a cloud cluster does). Needs PostgreSQL: $GPUARB_BENCH_POSTGRES_URL or $GPUARB_TEST_POSTGRES_URL, a
role that may create databases.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
JOB = """\
name: ci-train-{n}
resources:
  accelerators: H100:8
arbitrage:
  work: {{gpu_hours: 16, reference: H100}}
  tags: {{model: llama3, pipeline: p{client}}}
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _replica(port: int, state: Path, env: dict[str, str], log: Path, seconds: float) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "bench.server_replica", "--port", str(port), "--state",
                             str(state), "--seconds", str(seconds)], cwd=ROOT, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"replica on {port} exited: {log.read_text()[-2000:]}") from None
            time.sleep(0.2)
    raise RuntimeError(f"replica on {port} did not listen")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(submissions: int = 200, clients: int = 20, job_seconds: float = 6.0) -> str:
    admin_url = os.environ.get("GPUARB_BENCH_POSTGRES_URL") or os.environ.get("GPUARB_TEST_POSTGRES_URL")
    if not admin_url:
        return ("Not run: set GPUARB_BENCH_POSTGRES_URL (or GPUARB_TEST_POSTGRES_URL) to a PostgreSQL role that may "
                "create databases.\n")
    import httpx
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"gpuarb_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    work = Path(tempfile.mkdtemp(prefix="gpuarb-bench-server-"))
    env = {**os.environ, "GPUARB_DATABASE_URL": url, "GPUARB_DATA_DIR": str(work / "data"),
           "GPUARB_SOURCE": "snapshot", "PYTHONPATH": str(ROOT)}
    os.environ.update({"GPUARB_DATABASE_URL": url, "GPUARB_DATA_DIR": str(work / "data")})
    from arbitrage import app as usecases

    teams = ["ml", "infra", "research", "platform"]
    tokens = [usecases.issue_token(teams[c % len(teams)], f"pipeline-{c}", "ci").token for c in range(clients)]
    ports = [_port(), _port()]
    logs = [work / "replica-a.log", work / "replica-b.log"]
    state = work / "jobs"
    replicas = [_replica(ports[i], state, env, logs[i], job_seconds) for i in range(2)]
    latencies: list[float] = []
    retried_same: list[bool] = []
    failures: list[str] = []
    lock = threading.Lock()
    per_client = submissions // clients

    failovers: list[str] = []

    def client(c: int) -> None:
        http = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=120,
                             headers={"Authorization": f"Bearer {tokens[c]}"}) for p in ports]

        def post(first: int, body: dict[str, str], key: str) -> httpx.Response:
            """POST to one replica; one that does not answer (killed) is left for the other, as a load
            balancer would."""
            try:
                return http[first].post("/api/v1/runs", json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError as exc:
                with lock:
                    failovers.append(f"{key}: {type(exc).__name__}")
                return http[1 - first].post("/api/v1/runs", json=body, headers={"Idempotency-Key": key})

        for i in range(per_client):
            body = {"spec_text": JOB.format(n=f"{c}-{i}", client=c), "spec_name": f"ci-{c}-{i}.yaml"}
            key = f"gh-{c}-{i}"
            started = time.perf_counter()
            try:
                answer = post((c + i) % 2, body, key)
            except httpx.HTTPError as exc:
                with lock:
                    failures.append(f"{key}: {type(exc).__name__}")
                continue
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if answer.status_code != 201:
                    failures.append(f"{key}: HTTP {answer.status_code} {answer.text[:120]}")
            if i % 10 == 3:  # a CI step retried after a timeout: the same key, to the other replica
                again = post((c + i + 1) % 2, body, key)
                with lock:
                    retried_same.append(again.status_code == 200 and
                                        again.json()["run"]["run_id"] == answer.json()["run"]["run_id"])

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    killed_at = None
    # kill replica A with SIGKILL once half the submissions are in (its runs are mid-flight), then restart it
    while any(t.is_alive() for t in threads):
        if killed_at is None and len(latencies) >= submissions // 2:
            replicas[0].send_signal(signal.SIGKILL)
            replicas[0].wait(30)
            killed_at = time.perf_counter()
            replicas[0] = _replica(ports[0], state, env, logs[0], job_seconds)
        time.sleep(0.05)
    for t in threads:
        t.join()
    submit_seconds = time.perf_counter() - started
    ledger = usecases.open_ledger()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        runs = ledger.runs()
        if len(runs) >= submissions - len(failures) and all(r.terminal for r in runs):
            break
        time.sleep(1)
    all_done = time.perf_counter() - started
    for proc in replicas:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    runs = ledger.runs()
    states = Counter(str(r.state) for r in runs)
    launches = Counter(line.split()[0] for line in (state / "launches.log").read_text().splitlines())
    twice = sorted(run_id for run_id, n in launches.items() if n > 1)
    resumed = sum(any("supervision resumed" in e.message for e in ledger.events(r.id)) for r in runs)
    problems = ledger.check()
    left_up = len(list((state / "clusters").glob("*.json")))
    keys = Counter((r.team, r.idempotency_key) for r in runs)
    admin_dispose(admin, name, url)
    rows = [
        ("submissions (unique keys) from concurrent clients", f"{submissions} from {clients}"),
        ("submission throughput", f"{len(latencies) / submit_seconds:.1f} /s"),
        ("submission latency p50 / p99", f"{_percentile(latencies, 0.5) * 1000:.0f} ms / "
                                         f"{_percentile(latencies, 0.99) * 1000:.0f} ms"),
        ("submission latency mean", f"{statistics.fmean(latencies) * 1000:.0f} ms"),
        ("failed submissions", str(len(failures)) + (f" ({failures[0]})" if failures else "")),
        ("requests refused by the killed replica, sent to the other", str(len(failovers))),
        ("retries with the same key answered with the first run", f"{sum(retried_same)} of {len(retried_same)}"),
        ("runs recorded / keys used twice", f"{len(runs)} / {sum(1 for n in keys.values() if n > 1)}"),
        ("replica killed with SIGKILL", f"at {killed_at - started:.1f} s, restarted" if killed_at else "not reached"),
        ("runs taken up by another worker after the kill", str(resumed)),
        ("runs ended: states", ", ".join(f"{n} {s}" for s, n in sorted(states.items()))),
        ("runs lost (not ended)", str(sum(1 for r in runs if not r.terminal))),
        ("runs launched more than once", str(len(twice)) + (f" ({', '.join(twice[:3])})" if twice else "")),
        ("clusters left up", str(left_up)),
        ("ledger check (Ledger.check)", "consistent" if not problems else f"{len(problems)} problems: {problems[0]}"),
        ("all runs ended after", f"{all_done:.0f} s (each job runs {job_seconds:g} s)"),
    ]
    out = ["## Team server under load and faults", "",
           "Command: `python -m bench --only server` (`bench/server.py`). PostgreSQL 15; two server replicas "
           "(`bench/server_replica.py`, 64 workers each, status polled every 2 s, heartbeat 2 s, a run claimable "
           "after 8 s without one) on one database; 20 CI clients submitting concurrently, alternating replicas, "
           "one retry in ten with the same idempotency key to the other replica; replica A killed with SIGKILL "
           "when half the submissions are in, restarted at once. Each submission plans the job over the bundled "
           f"snapshot (1 node of 8 GPUs, 16 GPU-hours) and records it; each job runs {job_seconds:g} s on "
           "`bench/file_backend.py` (a file per cluster, so a job outlives the replica that launched it, as a cloud "
           "cluster does). The clients, both replicas and PostgreSQL share the machine's 2 cores.", "",
           "| measure | result |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(out) + "\n"


def admin_dispose(admin: Any, name: str, url: str) -> None:
    from arbitrage.store import engine

    engine.dispose(url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


if __name__ == "__main__":
    print(run())

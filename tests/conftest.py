"""Shared fixtures: the bundled facts, and builders for offers and specs with explicit defaults."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from arbitrage.facts import Facts, load_facts
from arbitrage.jobspec import AcceleratorChoice, JobSpec, Work
from arbitrage.offers import Offer

ROOT = Path(__file__).resolve().parent.parent
SHARED_CATALOG = ROOT.parent / "shared" / "catalog-snapshot"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def facts() -> Facts:
    return load_facts()


def make_offer(**overrides: Any) -> Offer:
    """An 8xH100 on-demand+spot offer in aws/us-east-1 unless overridden."""
    base: dict[str, Any] = dict(
        provider="aws", region="us-east-1", zone=None, instance_type="p5.48xlarge", accelerator="H100",
        gpus_per_node=8, gpu_memory_gb=80.0, vcpus=192.0, ram_gb=2048.0, on_demand_usd_per_hour=40.0,
        spot_usd_per_hour=16.0, interconnect="efa", interconnect_gbps=3200.0, source="snapshot",
        as_of="2026-11-01", price_ref="test",
    )
    base.update(overrides)
    return Offer(**base)


def make_spec(**overrides: Any) -> JobSpec:
    """An 8xH100, 1-node, 64 GPU-hour on-demand job unless overridden."""
    base: dict[str, Any] = dict(
        name="t", accelerators=(AcceleratorChoice("H100", 8),), num_nodes=1,
        work=Work(gpu_hours=64.0, reference="H100"),
    )
    base.update(overrides)
    return JobSpec(**base)


def replace(obj: Any, **changes: Any) -> Any:
    return dataclasses.replace(obj, **changes)


# Tests never reach a real cloud: the CLI defaults to the bundled snapshot and a private cache
# unless a test asks for another source explicitly.
os.environ.setdefault("GPUARB_SOURCE", "snapshot")
os.environ.setdefault("GPUARB_CACHE_DIR", tempfile.mkdtemp(prefix="gpuarb-test-cache-"))
# The run ledger and local-backend state likewise stay out of the user's data dir, and out of any team server or
# database the developer's shell points at (tests that want one set these themselves).
os.environ.setdefault("GPUARB_DATA_DIR", tempfile.mkdtemp(prefix="gpuarb-test-data-"))
for _name in ("GPUARB_DATABASE_URL", "GPUARB_SERVER", "GPUARB_TOKEN", "GPUARB_IDEMPOTENCY_KEY"):
    os.environ.pop(_name, None)


def fetch_ctx(provider: str, server: Any = None, **overrides: Any) -> Any:
    """A FetchContext for adapter tests: fast retries, a 1 s timeout, `provider` pointed at `server`."""
    from providers.base import FetchContext

    settings: dict[str, Any] = dict(facts=load_facts(), now=datetime(2026, 11, 23, tzinfo=timezone.utc),
                                    env={}, retries=2, backoff_s=0.01, max_backoff_s=0.05, timeout_s=1.0)
    if server is not None:
        settings["endpoints"] = {provider: server.url_for("").rstrip("/")}
    settings.update(overrides)
    return FetchContext(**settings)


# Set when a test ends: slow handlers still waiting answer at once, so a timeout test's requests (the client gave
# up on them, one per retry) never hold the shared loopback server into the next test, where they made
# fast requests time out on a loaded CI machine.
_RELEASE_SLOW = threading.Event()


@pytest.fixture(autouse=True)
def _release_slow_handlers() -> Any:
    _RELEASE_SLOW.clear()
    yield
    _RELEASE_SLOW.set()


def slow_response(seconds: float = 0.5) -> Any:
    """A pytest-httpserver handler that answers '{}' only after `seconds` (for timeout tests), or when the test
    ends, whichever is first."""
    from werkzeug import Response

    def handler(_request: Any) -> Any:
        _RELEASE_SLOW.wait(seconds)
        return Response("{}", status=200)

    return handler


# -- databases: the ledger and the server run against SQLite and PostgreSQL --------------------------------------
# GPUARB_TEST_POSTGRES_URL is a URL of a role that may create databases (.ci/run starts PostgreSQL and sets it);
# each test gets a database of its own, dropped after. Without it the PostgreSQL half skips, saying why, unless
# GPUARB_REQUIRE_POSTGRES is set (as in CI), where a missing server is a failure.
POSTGRES_ENV = "GPUARB_TEST_POSTGRES_URL"


def _postgres_database() -> Any:
    import uuid

    import sqlalchemy as sa

    admin_url = os.environ.get(POSTGRES_ENV, "")
    if not admin_url:
        if os.environ.get("GPUARB_REQUIRE_POSTGRES"):
            pytest.fail(f"{POSTGRES_ENV} is not set but GPUARB_REQUIRE_POSTGRES is: PostgreSQL tests cannot run")
        pytest.skip(f"PostgreSQL half: set {POSTGRES_ENV} to a role that may create databases (.ci/run does)")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"gpuarb_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return admin, name, url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A fresh, empty database's URL: a SQLite file, then a PostgreSQL database (see POSTGRES_ENV)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        return
    admin, name, url = _postgres_database()
    try:
        yield url
    finally:
        from arbitrage.store import engine as store_engine

        store_engine.dispose(url)
        _drop_database(admin, name)
        admin.dispose()


def _drop_database(admin: Any, name: str) -> None:
    """Drop a test database. WITH (FORCE) ends our own leftover connections, but PostgreSQL refuses it when an
    autovacuum worker (a superuser process) is in the new database and the role may not signal it; plain DROP
    DATABASE stops autovacuum itself, so that is the way round."""
    import sqlalchemy as sa

    with admin.connect() as conn:
        try:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except sa.exc.ProgrammingError:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')


# -- processes and servers the end-to-end tests start ----------------------------------------------------------

# A small real job for the team server's tests: one L4 for an hour.
SMALL_JOB = """\
name: smoke-l4
resources:
  accelerators: L4:1
arbitrage:
  work: {gpu_hours: 1, reference: L4}
  tags: {model: llama3, owner: ci}
"""


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gpuarb_process(env: dict[str, str], *args: str, timeout: float = 120) -> Any:
    """`gpuarb ARGS` as a real process (its CompletedProcess, text)."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "arbitrage.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=timeout)


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    """Poll ``predicate`` every half second until it returns something true (that value), or fail naming ``what``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def local_cpu_job(folder: Path, steps: int, every: int) -> Path:
    """jobspecs/local-cpu-example.yaml written to ``folder``, training ``steps`` steps of 0.15 s with a checkpoint
    every ``every`` (its workdir pointed at this repository)."""
    spec = (ROOT / "jobspecs" / "local-cpu-example.yaml").read_text()
    spec = spec.replace("workdir: ..", f"workdir: {ROOT}").replace(
        "--steps 300 --step-seconds 0.1 --checkpoint-every 20",
        f"--steps {steps} --step-seconds 0.15 --checkpoint-every {every}")
    job = folder / "job.yaml"
    job.write_text(spec)
    return job


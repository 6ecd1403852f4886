"""Bad command lines never pass: every numeric option is finite and bounded, run ids never match by an empty or
wildcard prefix, and `reap` starts no server it would leave behind (it says which backends it checked).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from arbitrage import app as usecases
from arbitrage import ledger as L
from arbitrage.cli import app
from arbitrage.launch.fake import FakeBackend
from arbitrage.runstate import RunState

SPEC = str(ROOT / "jobspecs" / "llama3-8b-finetune.yaml")
cli = CliRunner()
BIG = "100000000000000000000000000000"  # 1e29 as an integer

PLACEMENT = dict(provider="aws", region="us-east-1", zone=None, instance_type="p5.48xlarge", accelerator="H100",
                 gpus_per_node=8, nodes=1, spot=False, usd_per_hour=98.32, expected_hours=10.0,
                 expected_total_usd=983.2, compute_usd=983.2, preemption_usd=0.0, egress_in_usd=0.0,
                 egress_out_usd=0.0, price_source="snapshot", price_as_of="2026-11-01", price_ref="test")


@pytest.fixture()
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture()
def fake(monkeypatch, data_dir) -> FakeBackend:
    backend = FakeBackend(scripts=[])
    monkeypatch.setattr(usecases, "make_backend", lambda name, ray_address=None, check=True: backend)
    return backend


def invoke(*args: str):
    return cli.invoke(app, list(args))


def _usage_error(result) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output


@pytest.mark.parametrize("args", [
    ["prices", "--limit", "1e29"],
    ["prices", "--limit", BIG],
    ["prices", "--count", BIG],
    ["history", "--limit", BIG],
    ["status", "--limit", BIG],
    ["plan", SPEC, "--top", BIG],
    ["report", "plan", SPEC, "--top", BIG],
    ["report", "prices", "--count", "0"],
    ["history", "--since", "99999999999d"],
    ["history", "--since", "0001-01-01T00:00:00+05:00"],
    ["report", "spend", "--since", "99999999999d"],
    ["export", "focus", "--since", "99999999999d"],
    ["run", SPEC, "--dry-run", "--poll-seconds", "nan"],
    ["run", SPEC, "--dry-run", "--pending-timeout", "nan"],
    ["run", SPEC, "--dry-run", "--pending-timeout", "inf"],
    ["run", SPEC, "--dry-run", "--max-failovers", BIG],
    ["run", SPEC, "--dry-run", "--max-restarts", BIG],
    ["reap", "--dry-run", "--idle-minutes", "nan"],
    ["reap", "--dry-run", "--idle-minutes", "-1"],
    ["_supervise", "some-run", "--poll-seconds", "nan"],
    ["breakeven", "--gpu", "H100", "--purchase-usd", "nan"],
    ["breakeven", "--gpu", "H100", "--rental-usd-per-gpu-hour", "inf"],
])
def test_out_of_range_numbers_are_usage_errors(args: list[str], fake, data_dir) -> None:
    _usage_error(invoke(*args))
    assert fake.launched == []


def test_a_306_character_out_name_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("report", "prices", "--gpu", "H100", "--out", str(tmp_path / ("a" * 301 + ".html")))
    _usage_error(result)
    assert "--out: cannot write" in result.output and len(result.output.strip().splitlines()) == 1


def _recorded_run(data_dir: Path) -> str:
    with L.Ledger.open(data_dir / "ledger.sqlite3") as ledger:
        now = datetime.now(timezone.utc)
        run_id = ledger.create_run(name="j", spec_path="/j.yaml", spec_text="name: j", backend="skypilot", now=now,
                                   placements=[PLACEMENT], tags={}, budget_total_usd=None, budget_hourly_usd=None)
        n = ledger.start_attempt(run_id, 0, lambda k: f"gpuarb-{run_id}-a{k}", now)
        ledger.attempt_launched(run_id, n, {"backend": "skypilot", "cluster_name": f"gpuarb-{run_id}-a1"}, now, "up")
    return run_id


@pytest.mark.parametrize("arg", ["", "_", "%", "%%", "*", "2", " ", "_%_"])
def test_down_never_matches_an_empty_or_wildcard_prefix(arg: str, fake, data_dir) -> None:
    run_id = _recorded_run(data_dir)
    result = invoke("down", arg)
    assert result.exit_code in (1, 2) and "Traceback" not in result.output, result.output
    assert fake.cancelled == [] and fake.torn_down == []
    with L.Ledger.open(data_dir / "ledger.sqlite3") as ledger:
        assert ledger.run(run_id).state == RunState.RUNNING


def test_a_real_prefix_still_works(fake, data_dir) -> None:
    run_id = _recorded_run(data_dir)
    assert invoke("status", run_id[:15]).exit_code == 0
    result = invoke("down", run_id[:15])
    assert result.exit_code == 0 and fake.torn_down == [f"gpuarb-{run_id}-a1"]


def test_reap_does_not_start_skypilot_when_its_server_is_down(monkeypatch, data_dir) -> None:
    """A bare `gpuarb reap` looks at the backends that are running, and says which it checked."""
    from arbitrage.launch.skypilot_backend import SkyPilotBackend

    listed: list[str] = []
    monkeypatch.setattr(SkyPilotBackend, "not_running", lambda self: "SkyPilot's local API server is not running")
    monkeypatch.setattr(SkyPilotBackend, "clusters", lambda self: listed.append("sky") or [])
    result = invoke("reap", "--dry-run")
    assert result.exit_code == 0, result.output
    assert listed == []
    assert "skypilot: not checked: SkyPilot's local API server is not running" in result.output
    assert "checked local" in result.output


def test_skypilot_not_running_asks_the_health_endpoint_only(monkeypatch) -> None:
    """The check itself: a local API server that does not answer its health check is 'not running'."""
    pytest.importorskip("sky")
    from sky.server import common as server_common

    from arbitrage.launch.skypilot_backend import SkyPilotBackend

    monkeypatch.setattr(server_common, "get_server_url", lambda *a, **k: "http://127.0.0.1:46580")
    monkeypatch.setattr(server_common, "is_api_server_local", lambda *a, **k: True)
    monkeypatch.setattr(server_common, "get_api_server_status",
                        lambda *a, **k: server_common.ApiServerInfo(status=server_common.ApiServerStatus.UNHEALTHY))
    assert "not running" in (SkyPilotBackend().not_running() or "")
    monkeypatch.setattr(server_common, "is_api_server_local", lambda *a, **k: False)
    assert SkyPilotBackend().not_running() is None  # a team server is asked as usual

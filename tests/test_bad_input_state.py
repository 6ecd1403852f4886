"""State files are untrusted input: a corrupt cache entry, ledger row, fact table or on-prem file is reported in one
line and never crashes a command, never yields a wrong answer, and is never overwritten by a failed fetch.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from arbitrage import facts as F
from arbitrage import ledger as L
from arbitrage.cli import app
from arbitrage.errors import DataError, ProviderError
from arbitrage.facts import load_facts
from arbitrage.store import legacy
from providers import cache
from providers.base import FetchContext
from providers.fetch import collect_offers

SPEC = str(ROOT / "jobspecs" / "single-gpu-lora.yaml")
T0 = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
cli = CliRunner()

GOOD_OFFER: dict[str, Any] = {
    "provider": "lambda", "region": "us-east-1", "zone": None, "instance_type": "gpu_1x_h100_pcie",
    "accelerator": "H100", "gpus_per_node": 1, "gpu_memory_gb": 80.0, "vcpus": 26.0, "ram_gb": 200.0,
    "on_demand_usd_per_hour": 2.49, "spot_usd_per_hour": None, "interconnect": "none", "interconnect_gbps": 0.0,
    "source": "live", "as_of": "2026-11-23T11:00:00+00:00", "price_ref": "lambda test", "gpu_model": "H100-PCIE",
}


def _cache_file(directory: Path, offers: Any, **top: Any) -> Path:
    path = directory / "offers-lambda.json"
    doc = {"schema": 1, "provider": "lambda", "fetched_at": "2026-11-23T11:00:00+00:00", "offers": offers,
           "failed_at": None, "failure": None, **top}
    path.write_text(json.dumps(doc))
    return path


def _with(**changes: Any) -> list[dict[str, Any]]:
    return [{**GOOD_OFFER, **changes}]


CORRUPT = {
    "null": None,
    "list": [],
    "null-offer": [None],
    "string-price": _with(on_demand_usd_per_hour="2.49"),
    "no-gpus": _with(gpus_per_node=0),
    "negative-price": _with(on_demand_usd_per_hour=-5),
    "nan-price": _with(on_demand_usd_per_hour=float("nan")),
    "bool-count": _with(gpus_per_node=True),
}


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("GPUARB_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_a_corrupt_cache_entry_is_ignored_with_one_warning_and_kept(case: str, cache_dir: Path) -> None:
    value = CORRUPT[case]
    path = cache_dir / "offers-lambda.json"
    if case in ("null", "list"):
        path.write_text(json.dumps(value))
    else:
        _cache_file(cache_dir, value)
    before = path.read_bytes()
    for args in (["prices", "--provider", "lambda", "--source", "cache", "--format", "json"],
                 ["plan", SPEC, "--source", "cache", "--format", "json", "--now", "2026-11-23T12:00:00Z"],
                 ["providers", "--format", "json"]):
        result = cli.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        warnings = [line for line in result.stderr.splitlines() if "ignored" in line]
        assert len(warnings) == 1 and str(path) in warnings[0], result.stderr
    plan = json.loads(cli.invoke(app, ["plan", SPEC, "--source", "cache", "--format", "json", "--now",
                                       "2026-11-23T12:00:00Z"]).stdout)
    assert all(p["total_usd"] > 0 for p in plan["placements"])
    assert path.read_bytes() == before  # never rewritten by a read


def test_a_good_cache_entry_still_reads(cache_dir: Path) -> None:
    _cache_file(cache_dir, [GOOD_OFFER])
    entry, problem = cache.inspect(cache_dir, "lambda")
    assert problem is None and entry is not None and len(entry.offers) == 1 and entry.offers[0].source == "cache"


def test_a_link_to_dev_zero_is_not_read(cache_dir: Path) -> None:
    (cache_dir / "offers-lambda.json").symlink_to("/dev/zero")
    entry, problem = cache.inspect(cache_dir, "lambda")
    assert entry is None and problem is not None and "not a regular file" in problem


def test_an_oversized_cache_file_is_not_read_whole(cache_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(cache, "MAX_FILE_BYTES", 1000)
    _cache_file(cache_dir, [GOOD_OFFER] * 20)
    entry, problem = cache.inspect(cache_dir, "lambda")
    assert entry is None and problem is not None and "over" in problem


class _Adapter:
    """A lambda adapter whose live fetch fails (or counts calls), with credentials."""

    name = "lambda"
    ttl_seconds = 900
    credentials_hint = "-"

    def __init__(self, exc: BaseException | None = None) -> None:
        self.exc, self.calls = exc, 0

    def has_credentials(self, ctx: FetchContext) -> bool:
        return True

    async def fetch(self, ctx: FetchContext) -> list[Any]:
        self.calls += 1
        if self.exc is not None:
            raise self.exc
        return []


def _collect(directory: Path, mode: str, adapter: _Adapter, monkeypatch, now: datetime = T0) -> Any:
    import providers.fetch as fetch_module

    monkeypatch.setattr(fetch_module, "get_adapter", lambda name: adapter)
    ctx = FetchContext(facts=load_facts(), now=now, env={"GPUARB_CACHE_DIR": str(directory)})
    return collect_offers([], mode, ctx, ["lambda"])


@pytest.mark.parametrize("content", ["newer-schema", "unreadable", "corrupt-offer"])
def test_a_failed_live_fetch_never_replaces_a_cache_file_it_cannot_parse(content: str, tmp_path: Path,
                                                                          monkeypatch) -> None:
    path = tmp_path / "offers-lambda.json"
    if content == "newer-schema":
        path.write_text(json.dumps({"schema": 2, "provider": "lambda", "fetched_at": "2026-11-23T11:00:00+00:00",
                                    "offers": [GOOD_OFFER] * 374}))
    elif content == "unreadable":
        path.write_bytes(b"\x00\xff garbage \x89PNG")
    else:
        _cache_file(tmp_path, _with(spot_usd_per_hour="cheap"))
    before = path.read_bytes()
    _, [status] = _collect(tmp_path, "live", _Adapter(ProviderError("lambda", "HTTP 500")), monkeypatch)
    assert status.level == "warning" and "ignored" in status.message and "HTTP 500" in status.message
    assert path.read_bytes() == before
    # The failure is still remembered (beside the file): auto pauses before asking again.
    again = _Adapter(ProviderError("lambda", "HTTP 500"))
    _collect(tmp_path, "auto", again, monkeypatch, T0 + timedelta(seconds=30))
    assert again.calls == 0 and path.read_bytes() == before


def test_a_fetch_time_in_the_future_counts_as_stale(tmp_path: Path, monkeypatch) -> None:
    _cache_file(tmp_path, [GOOD_OFFER], fetched_at="2100-01-01T00:00:00+00:00")
    adapter = _Adapter(ProviderError("lambda", "down"))
    _collect(tmp_path, "auto", adapter, monkeypatch)
    assert adapter.calls == 1  # refreshed, not trusted as fresh for 74 years
    _cache_file(tmp_path, [GOOD_OFFER], failed_at="2100-01-01T00:00:00+00:00", failure="x")
    adapter = _Adapter(ProviderError("lambda", "down"))
    _collect(tmp_path, "auto", adapter, monkeypatch, T0 + timedelta(days=1))
    assert adapter.calls == 1  # a failure "in the future" does not pause the provider forever


# -- the run ledger --------------------------------------------------------------------------------------------

PLACEMENT = dict(provider="aws", region="us-east-1", zone=None, instance_type="p5.48xlarge", accelerator="H100",
                 gpus_per_node=8, nodes=1, spot=False, usd_per_hour=98.32, expected_hours=10.0,
                 expected_total_usd=983.2, compute_usd=983.2, preemption_usd=0.0, egress_in_usd=0.0,
                 egress_out_usd=0.0, price_source="snapshot", price_as_of="2026-11-01", price_ref="test")


def _ledger_with_runs(path: Path, n: int = 3) -> list[str]:
    ids = []
    with L.Ledger.open(path) as ledger:
        for i in range(n):
            now = T0 + timedelta(hours=i)
            run_id = ledger.create_run(name=f"job{i}", spec_path="/j.yaml", spec_text="name: j", backend="skypilot",
                                       now=now, placements=[PLACEMENT], tags={"team": "t"}, budget_total_usd=None,
                                       budget_hourly_usd=None)
            a = ledger.start_attempt(run_id, 0, lambda k, r=run_id: f"gpuarb-{r}-a{k}", now)
            ledger.end_attempt(run_id, a, "succeeded", now + timedelta(hours=1), "done", kind="finished",
                               run_state="succeeded")
            ids.append(run_id)
    return ids


@pytest.mark.parametrize(("table", "column", "value"), [
    ("runs", "created_at", "garbage"),
    ("runs", "updated_at", "2026-13-45T00:00:00+00:00"),
    ("runs", "expected_total_micro_usd", "a lot"),
    ("placements", "micro_usd_per_hour", "abc"),
    ("attempts", "started_at", "yesterday"),
    ("attempts", "handle", "{not json"),
    ("events", "data", "[unclosed"),
])
def test_a_bad_ledger_row_is_reported_and_skipped_by_every_reader(table: str, column: str, value: Any,
                                                                  tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path))
    ids = _ledger_with_runs(tmp_path / "ledger.sqlite3")
    bad = ids[1]
    conn = sqlite3.connect(tmp_path / "ledger.sqlite3")
    key = "id" if table == "runs" else "run_id"
    conn.execute(f"UPDATE {table} SET {column}=? WHERE {key}=?", (value, bad))
    conn.commit()
    conn.close()
    for args in (["status"], ["status", "--format", "json"], ["history", "--format", "json"],
                 ["report", "spend", "--format", "json"], ["export", "focus"]):
        result = cli.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        assert "internal error" not in result.output
        if table != "events":  # events are read by `status RUN` only
            assert f"{table} row" in result.stderr and "does not parse" in result.stderr, (args, result.stderr)
    history = json.loads(cli.invoke(app, ["history", "--format", "json"]).stdout)
    assert {ids[0], ids[2]} <= {r["run_id"] for r in history}
    detail = cli.invoke(app, ["status", ids[0]])
    assert detail.exit_code == 0
    if table == "events":
        shown = cli.invoke(app, ["status", bad])
        assert shown.exit_code == 0 and "events row" in shown.stderr, shown.output
    with L.Ledger.open(tmp_path / "ledger.sqlite3") as ledger:
        assert any("does not parse" in p for p in ledger.check())


def test_an_old_ledger_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(legacy.STEPS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO runs (id, name, spec_path, spec_text, backend, state, created_at, updated_at,"
                 " supervisor_pid) VALUES ('20261123-120000-abc123', 'old', '/j.yaml', 'name: j', 'skypilot',"
                 " 'succeeded', '2026-11-23T12:00:00+00:00', '2026-11-23T12:00:00+00:00', 4242)")
    conn.commit()
    conn.close()
    with L.Ledger.open(path) as ledger:
        with ledger.database.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA user_version").scalar() == legacy.MIGRATED_USER_VERSION
        run = ledger.run("20261123-120000-abc123")
        assert run.name == "old" and run.heartbeat_at is None and run.supervisor_pid == 4242
        ledger.set_supervisor(run.id, os.getpid(), "h")
        assert ledger.heartbeat(run.id, os.getpid(), T0) and ledger.run(run.id).heartbeat_at == T0


# -- fact tables and the on-prem file --------------------------------------------------------------------------

@pytest.fixture()
def facts_dir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("GPUARB_CONFIG_DIR", str(tmp_path))
    (tmp_path / "facts").mkdir()
    return tmp_path / "facts"


def _override(facts_dir: Path, name: str, old: str, new: str) -> Path:
    text = (ROOT / "arbitrage" / "data" / name).read_text()
    assert old in text
    path = facts_dir / name
    path.write_text(text.replace(old, new, 1))
    return path


def test_zero_throughput_names_file_row_and_column(facts_dir: Path) -> None:
    text = (ROOT / "arbitrage" / "data" / "gpus.csv").read_text().splitlines()
    header = text[0].split(",")
    col = header.index("train_throughput_vs_h100")
    row = text[1].split(",")
    row[col] = "0"
    (facts_dir / "gpus.csv").write_text("\n".join([text[0], ",".join(row), *text[2:]]) + "\n")
    with pytest.raises(DataError, match=r"gpus\.csv:2: column 'train_throughput_vs_h100' must be a number > 0"):
        F.load_gpus()


@pytest.mark.parametrize(("key", "value"), [("transfer_gbps_cross_cloud", "0.0"), ("provision_minutes", "-1000.0"),
                                            ("transfer_gbps_inter_region", "inf"), ("provision_minutes", "true")])
def test_out_of_range_assumptions_name_file_and_constant(key: str, value: str, facts_dir: Path) -> None:
    text = (ROOT / "arbitrage" / "data" / "assumptions.toml").read_text()
    start = text.index(f"[{key}]")
    end = text.index("\n", text.index("value =", start))
    (facts_dir / "assumptions.toml").write_text(text[:start] + f"[{key}]\nvalue = {value}" + text[end:])
    with pytest.raises(DataError, match=rf"assumptions\.toml: {key}: value must be"):
        F.load_assumptions()


def test_infinite_interconnect_speed_is_refused(facts_dir: Path) -> None:
    text = (ROOT / "arbitrage" / "data" / "interconnect.csv").read_text().splitlines()
    gbps = text[0].split(",").index("gbps")
    row = next(csv_row for csv_row in __import__("csv").reader([text[1]]))
    row[gbps] = "inf"
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf).writerow(row)
    (facts_dir / "interconnect.csv").write_text("\n".join([text[0], buf.getvalue().strip(), *text[2:]]) + "\n")
    with pytest.raises(DataError, match=r"interconnect\.csv:2: column 'gbps' must be a number"):
        F.load_interconnect()


ONPREM = """\
clusters:
  - name: lab-h100
    region: onprem-us-west
    accelerator: h100
    gpus_per_node: 8
    purchase_usd_per_node: 250000
    amortization_years: 3
    utilization: 0.5
    power_kw_per_node: 10
    usd_per_kwh: 0.10
    pue: 1.4
    hosting_usd_per_node_month: 2000
"""


@pytest.mark.parametrize(("edits", "needle"), [
    ([("purchase_usd_per_node: 250000", "purchase_usd_per_node: 0"), ("power_kw_per_node: 10", "power_kw_per_node: 0"),
      ("hosting_usd_per_node_month: 2000", "hosting_usd_per_node_month: 0")], "clusters[0]: costs $0 per node-hour"),
    ([("purchase_usd_per_node: 250000", "purchase_usd_per_node: 1.0e+308")], "clusters[0].purchase_usd_per_node"),
    ([("usd_per_kwh: 0.10", "usd_per_kwh: 9.5e+300")], "clusters[0].usd_per_kwh"),
    ([("gpus_per_node: 8", "gpus_per_node: 100000")], "clusters[0].gpus_per_node"),
    ([("name: lab-h100", "name: !!binary bGFi")], "tag !!binary is not allowed"),
])
def test_onprem_clusters_at_zero_or_absurd_prices_are_refused(edits, needle: str, tmp_path: Path) -> None:
    from providers.onprem import ADAPTER

    text = ONPREM
    for old, new in edits:
        text = text.replace(old, new)
    (tmp_path / "onprem.yaml").write_text(text)
    ctx = FetchContext(facts=load_facts(), now=T0, env={"GPUARB_CONFIG_DIR": str(tmp_path)})
    with pytest.raises(ProviderError) as info:
        asyncio.run(ADAPTER.fetch(ctx))
    assert needle in str(info.value) and "onprem.yaml" in str(info.value), str(info.value)

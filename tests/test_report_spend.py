"""`gpuarb report spend`: showback/chargeback from the run ledger, with hand-computed USD, GPU-hours and variance.

The ledger is built through its public API with explicit timestamps; the numbers in the asserts are worked out by
hand from those timestamps and prices (see `build_ledger`).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import typer
from conftest import NOW
from typer.testing import CliRunner

from arbitrage import app as usecases
from arbitrage import ledger as L
from arbitrage.cli import app as gpuarb_app
from arbitrage.report.spend import UNTAGGED, parse_group_by, spend_csv, spend_markdown, spend_report
from arbitrage.runstate import EventKind, RunState

runner = CliRunner()


def T(text: str) -> datetime:
    """A UTC timestamp from 'YYYY-MM-DDTHH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


SPEC_A = """name: llama-ft
resources: {accelerators: {H100: 8}}
arbitrage:
  work: {gpu_hours: 200, reference: H100}
  data: {uri: gs://corpus/pile, region: us-central1, size_gb: 100}
  outputs_gb: 10
  tags: {team: research, model: llama3-8b, version: v2}
"""


def _placement(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = dict(
        provider="aws", region="us-east-1", zone=None, instance_type="p5.48xlarge", accelerator="H100",
        gpus_per_node=8, nodes=1, spot=False, usd_per_hour=98.32, expected_hours=10.0, expected_total_usd=983.2,
        compute_usd=983.2, preemption_usd=0.0, egress_in_usd=0.0, egress_out_usd=0.0, price_source="snapshot",
        price_as_of="2026-11-01", price_ref="test")
    base.update(overrides)
    return base


def _attempt(ledger: L.Ledger, run_id: str, rank: int, start: datetime, end: datetime | None, outcome: str = "",
             *, launched: bool = True, run_state: str | None = None) -> None:
    n = ledger.start_attempt(run_id, rank, lambda k: f"gpuarb-{run_id[-6:]}-a{k}", start)
    if launched:
        ledger.attempt_launched(run_id, n, {"backend": "skypilot"}, start, "up")
    if end is not None:
        ledger.end_attempt(run_id, n, outcome, end, outcome, kind=EventKind.FINISHED, run_state=run_state)


def build_ledger(path: Path) -> dict[str, str]:
    """Four runs; the figures each test expects are worked out here.

    A  research/llama3-8b/v2, aws p5.48xlarge on-demand, 1 node x 8 GPUs at $98.32/h, 2026-11-20 22:00 to
       11-22 01:30 = 27.5 h: compute 27.5 x 98.32 = $2,703.80, 220 GPU-h; egress in $12.00 (100 GB from GCS),
       out $0.90 (10 GB back); actual $2,716.70 vs expected $2,500 (+$216.70, +8.668 %). Succeeded.
    B  research/mistral-7b, gcp a3-highgpu-8g spot, 2 nodes x 8 GPUs at $40/h per cluster ($20 per instance-hour):
       attempt 1 2026-10-31 23:00 to 11-01 01:00 (2 h, preempted), attempt 2 01:30 to 04:30 (3 h): compute
       5 x 40 = $200, 80 GPU-h; expected $180. Succeeded.
    C  no tags, azure 1 node x 4 GPUs at $30/h, launched 2 h before NOW and still running: $60, 8 GPU-h; expected
       $100; active.
    D  infra, plan lambda (rank 0, $24/h) then runpod (rank 1, $20/h, 8 GPUs): no capacity on lambda (0 s), 1.5 h
       on runpod: $30, 12 GPU-h; expected $50 (the plan's best). Provider = runpod, where it ran.
    """
    ids: dict[str, str] = {}
    with L.Ledger.open(path) as ledger:
        a = ids["A"] = ledger.create_run(
            name="llama-ft", spec_path="/jobs/a.yaml", spec_text=SPEC_A, backend="skypilot", now=T("2026-11-20T22:00"),
            placements=[_placement(zone="us-east-1a", expected_total_usd=2500.0, egress_in_usd=12.0,
                                   egress_out_usd=0.9)],
            tags={"team": "research", "model": "llama3-8b", "version": "v2"}, budget_total_usd=5000.0,
            budget_hourly_usd=None)
        _attempt(ledger, a, 0, T("2026-11-20T22:00"), None)
        ledger.charge_egress(a, egress_in_usd=12.0)
        ledger.charge_egress(a, egress_out_usd=0.9)
        ledger.end_attempt(a, 1, "succeeded", T("2026-11-22T01:30"), "exit 0", kind=EventKind.FINISHED,
                           run_state=RunState.SUCCEEDED)

        b = ids["B"] = ledger.create_run(
            name="mistral-sft", spec_path="/jobs/b.yaml", spec_text="name: mistral-sft", backend="skypilot",
            now=T("2026-10-31T23:00"),
            placements=[_placement(provider="gcp", region="us-central1", zone="us-central1-a",
                                   instance_type="a3-highgpu-8g", nodes=2, spot=True, usd_per_hour=40.0,
                                   expected_total_usd=180.0)],
            tags={"team": "research", "model": "mistral-7b"}, budget_total_usd=None, budget_hourly_usd=None)
        _attempt(ledger, b, 0, T("2026-10-31T23:00"), T("2026-11-01T01:00"), "preempted")
        _attempt(ledger, b, 0, T("2026-11-01T01:30"), T("2026-11-01T04:30"), "succeeded",
                 run_state=RunState.SUCCEEDED)

        c = ids["C"] = ledger.create_run(
            name="eval", spec_path="/jobs/c.yaml", spec_text="name: eval", backend="skypilot",
            now=T("2026-11-23T10:00"),
            placements=[_placement(provider="azure", region="eastus", instance_type="Standard_NC96ads_A100_v4",
                                   accelerator="A100-80GB", gpus_per_node=4, usd_per_hour=30.0,
                                   expected_total_usd=100.0)],
            tags={}, budget_total_usd=None, budget_hourly_usd=None)
        _attempt(ledger, c, 0, T("2026-11-23T10:00"), None)

        d = ids["D"] = ledger.create_run(
            name="serve-bench", spec_path="/jobs/d.yaml", spec_text="name: serve-bench", backend="skypilot",
            now=T("2026-11-22T08:00"),
            placements=[_placement(provider="lambda", region="us-east-1", instance_type="gpu_8x_h100_sxm5",
                                   usd_per_hour=24.0, expected_total_usd=50.0),
                        _placement(provider="runpod", region="US-TX-3", instance_type="8x_H100_SXM",
                                   usd_per_hour=20.0, expected_total_usd=45.0)],
            tags={"team": "infra"}, budget_total_usd=None, budget_hourly_usd=None)
        _attempt(ledger, d, 0, T("2026-11-22T08:00"), T("2026-11-22T08:00"), "no-capacity", launched=False)
        _attempt(ledger, d, 1, T("2026-11-22T08:00"), T("2026-11-22T09:30"), "succeeded",
                 run_state=RunState.SUCCEEDED)
    return ids


@pytest.fixture()
def ledger_path(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite3"
    build_ledger(path)
    return path


def _report(path: Path, by: str):
    with L.Ledger.open(path) as ledger:
        return spend_report(usecases.ledger_records(ledger, ledger.runs()), by, NOW)


def test_spend_by_team_is_hand_computed(ledger_path: Path) -> None:
    report = _report(ledger_path, "team")
    groups = {g.key: g for g in report.groups}
    assert [g.key for g in report.groups] == ["research", "infra", UNTAGGED]  # biggest first, untagged last
    research = groups["research"]
    assert (research.runs, research.active_runs) == (2, 0)
    assert research.gpu_hours == pytest.approx(220 + 80)
    assert research.compute_usd == pytest.approx(2703.80 + 200.0)
    assert research.egress_usd == pytest.approx(12.9)
    assert research.actual_usd == pytest.approx(2916.70)
    assert research.expected_usd == pytest.approx(2680.0)
    assert research.variance_usd == pytest.approx(236.70)
    assert research.variance_pct == pytest.approx(100 * 236.70 / 2680.0)
    assert research.usd_per_run == pytest.approx(2916.70 / 2)
    assert research.usd_per_gpu_hour == pytest.approx(2916.70 / 300)
    assert groups["infra"].actual_usd == pytest.approx(30.0)
    assert groups["infra"].variance_usd == pytest.approx(-20.0)
    untagged = groups[UNTAGGED]
    assert (untagged.runs, untagged.active_runs, untagged.actual_usd, untagged.gpu_hours) == (1, 1, 60.0, 8.0)
    total = report.total
    assert (total.runs, total.active_runs) == (4, 1)
    assert total.actual_usd == pytest.approx(2716.70 + 200 + 60 + 30)
    assert total.expected_usd == pytest.approx(2500 + 180 + 100 + 50)
    assert total.gpu_hours == pytest.approx(220 + 80 + 8 + 12)
    assert total.actual_usd == pytest.approx(sum(g.actual_usd for g in report.groups))


def test_spend_matches_the_ledgers_own_spent_usd(ledger_path: Path) -> None:
    report = _report(ledger_path, "name")
    with L.Ledger.open(ledger_path) as ledger:
        for spend in report.runs:
            assert spend.actual_usd == pytest.approx(ledger.spent_usd(spend.run_id, NOW))


def test_spend_by_provider_uses_where_the_run_ran(ledger_path: Path) -> None:
    groups = {g.key: g for g in _report(ledger_path, "provider").groups}
    assert set(groups) == {"aws", "gcp", "azure", "runpod"}  # D failed over from lambda: it ran on runpod
    assert groups["runpod"].actual_usd == pytest.approx(30.0)
    assert groups["runpod"].expected_usd == pytest.approx(50.0)  # the plan's estimate, made for lambda
    assert groups["aws"].actual_usd == pytest.approx(2716.70)
    assert groups["gcp"].price_sources == ("gcp snapshot 2026-11-01",)


def test_spend_by_any_tag_key_and_tag_prefix(ledger_path: Path) -> None:
    groups = {g.key: g for g in _report(ledger_path, "model").groups}
    assert set(groups) == {"llama3-8b", "mistral-7b", UNTAGGED}
    assert groups[UNTAGGED].runs == 2  # C (no tags) and D (no model tag)
    assert {g.key for g in _report(ledger_path, "tag:version").groups} == {"v2", UNTAGGED}
    assert parse_group_by("provider") == ("builtin", "provider")
    assert parse_group_by("tag:provider") == ("tag", "provider")
    assert parse_group_by("team") == ("tag", "team")
    with pytest.raises(ValueError):
        parse_group_by("tag:")


def test_spend_csv_and_markdown_carry_units_and_totals(ledger_path: Path) -> None:
    report = _report(ledger_path, "team")
    rows = list(csv.DictReader(io.StringIO(spend_csv(report))))
    assert [r["group"] for r in rows] == ["research", "infra", UNTAGGED, "(total)"]
    assert float(rows[-1]["actual_usd"]) == pytest.approx(3006.70)
    assert float(rows[0]["usd_per_gpu_hour"]) == pytest.approx(2916.70 / 300, abs=1e-4)
    assert rows[0]["price_sources"] == "aws snapshot 2026-11-01; gcp snapshot 2026-11-01"
    md = spend_markdown(report, "ledger.sqlite3")
    assert "| **Total** | **4** | **1** | **320.0** | **$3,006.70** | **$2,830.00** | **$176.70** |" in md
    assert "All money in USD" in md and "1 run still active: its actual is spend so far" in md


# -- the command ---------------------------------------------------------------------------------------------


def _app() -> typer.Typer:
    return gpuarb_app


@pytest.fixture()
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(usecases, "utcnow", lambda: NOW)
    return tmp_path


def test_report_spend_json_since_and_tag(cli_env: Path) -> None:
    build_ledger(cli_env / "ledger.sqlite3")
    result = runner.invoke(_app(), ["report", "spend", "--by", "team", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["currency"] == "USD" and doc["by"] == "team"
    assert doc["total"]["actual_usd"] == pytest.approx(3006.70)
    assert doc["total"]["variance_usd"] == pytest.approx(176.70)
    assert doc["ledger"].endswith("ledger.sqlite3")
    # runs created since 2026-11-21: C and D only
    result = runner.invoke(_app(), ["report", "spend", "--by", "provider", "--since", "2026-11-21", "-f", "json"])
    doc = json.loads(result.output)
    assert [g["group"] for g in doc["groups"]] == ["azure", "runpod"]
    result = runner.invoke(_app(), ["report", "spend", "--tag", "team=infra", "-f", "json"])
    assert json.loads(result.output)["total"]["runs"] == 1


def test_report_spend_table_and_markdown(cli_env: Path) -> None:
    build_ledger(cli_env / "ledger.sqlite3")
    result = runner.invoke(_app(), ["report", "spend"])
    assert result.exit_code == 0, result.output
    assert "Spend by team (USD)" in result.output and "$3,006.70" in result.output
    assert "Prices (provider, source, as of)" in result.output
    result = runner.invoke(_app(), ["report", "spend", "--by", "model", "--format", "markdown"])
    assert result.exit_code == 0 and "| model | Runs |" in result.output


def test_report_spend_empty_ledger_is_a_friendly_line(cli_env: Path) -> None:
    result = runner.invoke(_app(), ["report", "spend"])
    assert result.exit_code == 0
    assert "no runs in the ledger yet" in result.output
    result = runner.invoke(_app(), ["report", "spend", "-f", "json"])
    assert result.exit_code == 0 and json.loads(result.output)["total"]["runs"] == 0


@pytest.mark.parametrize(("args", "needle"), [
    (["--by", "tag:"], "--by tag: needs a tag key"),
    (["--since", "yesterday"], "--since: cannot read"),
    (["--tag", "team"], "--tag: expected key=value"),
])
def test_report_spend_bad_input_is_one_line_exit_2(cli_env: Path, args: list[str], needle: str) -> None:
    result = runner.invoke(_app(), ["report", "spend", *args])
    assert result.exit_code == 2
    assert needle in result.output and "Traceback" not in result.output

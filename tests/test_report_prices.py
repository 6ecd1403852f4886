"""`gpuarb report prices`: per-provider cheapest offers, effective price per unit of work, spot discount, tier
spread, and every output format with its provenance."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_offer
from typer.testing import CliRunner

from arbitrage.cli import app
from arbitrage.facts import Facts
from arbitrage.report.prices import build_price_report
from providers.snapshot import load_snapshot

runner = CliRunner()
NOW = "2026-11-23T12:00:00Z"


def run(*args: str):
    return runner.invoke(app, list(args))


def test_h100_at_2_4x_the_a100_price_is_cheaper_per_unit_of_work(facts: Facts) -> None:
    h100 = make_offer(provider="aws", on_demand_usd_per_hour=19.2, spot_usd_per_hour=None)  # $2.40 / GPU-hour
    a100 = make_offer(provider="lambda", instance_type="gpu_8x_a100_80gb", accelerator="A100-80GB",
                      on_demand_usd_per_hour=8.0, spot_usd_per_hour=None)  # $1.00 / GPU-hour
    report = build_price_report([a100, h100], facts)
    assert [m.gpu_model for m in report.models] == ["H100", "A100-80GB"]
    h, a = report.models
    assert h.best_on_demand is not None and a.best_on_demand is not None
    assert h.best_on_demand.usd_per_gpu_hour == pytest.approx(2.4) and h.best_on_demand.usd_per_hour == 19.2
    assert a.relative_throughput == pytest.approx(0.40)
    assert a.best_on_demand.effective_usd_per_ref_gpu_hour == pytest.approx(1.0 / 0.40)  # 2.50 > 2.40
    assert h.best_on_demand.effective_usd_per_ref_gpu_hour == pytest.approx(2.4)
    # Measured against the A100's work instead, the ranking is the same and the A100 costs its list price.
    by_a100 = build_price_report([a100, h100], facts, reference_gpu="A100-80GB")
    assert [m.gpu_model for m in by_a100.models] == ["H100", "A100-80GB"]
    assert by_a100.models[1].best_on_demand.effective_usd_per_ref_gpu_hour == pytest.approx(1.0)


def test_cheapest_per_provider_spot_discount_and_tier_spread(facts: Facts) -> None:
    offers = [
        make_offer(provider="aws", region="us-east-1", on_demand_usd_per_hour=40.0, spot_usd_per_hour=20.0),
        make_offer(provider="aws", region="us-west-2", on_demand_usd_per_hour=48.0, spot_usd_per_hour=12.0),
        make_offer(provider="gcp", region="us-central1", instance_type="a3", on_demand_usd_per_hour=88.0,
                   spot_usd_per_hour=None),
        make_offer(provider="lambda", instance_type="gpu_8x_h100", on_demand_usd_per_hour=24.0, spot_usd_per_hour=None),
        make_offer(provider="vast", instance_type="8x-H100", on_demand_usd_per_hour=16.0, spot_usd_per_hour=8.0),
        make_offer(provider="runpod", instance_type="zero", on_demand_usd_per_hour=0.0, spot_usd_per_hour=None),
    ]
    (m,) = build_price_report(offers, facts).models
    rows = {r.provider: r for r in m.providers}
    assert list(rows) == ["vast", "lambda", "aws", "gcp"]  # cheapest on-demand first; runpod's $0 is a gap
    aws = rows["aws"]
    assert aws.offers == 2 and aws.tier == "hyperscaler"
    assert aws.on_demand is not None and aws.on_demand.offer.region == "us-east-1"
    assert aws.spot is not None and aws.spot.offer.region == "us-west-2"  # another offer can be the cheaper spot
    assert aws.spot_discount == pytest.approx(1 - 1.5 / 5.0)
    assert rows["gcp"].spot is None and rows["gcp"].spot_discount is None
    tiers = {t.tier: t for t in m.tiers}
    assert list(tiers) == ["hyperscaler", "specialised", "marketplace"]
    assert tiers["marketplace"].on_demand_ratio == pytest.approx(1.0)
    assert tiers["hyperscaler"].on_demand is not None and tiers["hyperscaler"].on_demand.offer.provider == "aws"
    assert tiers["hyperscaler"].on_demand_ratio == pytest.approx(5.0 / 2.0)
    assert tiers["specialised"].on_demand_ratio == pytest.approx(3.0 / 2.0)
    assert tiers["specialised"].spot is None and tiers["specialised"].spot_ratio is None
    assert tiers["hyperscaler"].spot_ratio == pytest.approx(1.5 / 1.0)
    assert m.best_on_demand is not None and m.best_on_demand.offer.provider == "vast"


def test_inference_uses_the_inference_column(facts: Facts) -> None:
    a100 = make_offer(provider="lambda", accelerator="A100-80GB", on_demand_usd_per_hour=8.0)
    (m,) = build_price_report([a100], facts, workload="inference").models
    assert m.relative_throughput == pytest.approx(facts.gpu("A100-80GB").infer_throughput_vs_h100)


def test_snapshot_report_agrees_with_a_brute_force_over_the_offers(facts: Facts) -> None:
    offers = load_snapshot(facts)
    report = build_price_report(offers, facts)
    assert report.offers_considered == len(offers)
    ref = facts.gpu("H100").train_throughput_vs_h100
    for m in report.models:
        relative = facts.gpu(m.gpu_model).train_throughput_vs_h100 / ref
        for r in m.providers:
            mine = [o for o in offers if o.gpu_model == m.gpu_model and o.provider == r.provider]
            od = [p for o in mine if (p := o.usd_per_gpu_hour(False))]
            assert r.offers == len(mine)
            if r.on_demand is not None:
                assert r.on_demand.usd_per_gpu_hour == pytest.approx(min(od))
                assert r.on_demand.effective_usd_per_ref_gpu_hour == pytest.approx(min(od) / relative)
            else:
                assert not od
    ranked = [m.best_on_demand.effective_usd_per_ref_gpu_hour for m in report.models if m.best_on_demand]
    assert ranked == sorted(ranked)
    h100 = next(m for m in report.models if m.gpu_model == "H100")
    a100 = next(m for m in report.models if m.gpu_model == "A100-80GB")
    assert {"hyperscaler", "specialised", "marketplace"} <= {t.tier for t in h100.tiers}
    assert a100.relative_throughput is not None and a100.relative_throughput < 1


# -- CLI ------------------------------------------------------------------------------------------

def test_cli_json_has_units_effective_prices_and_provenance() -> None:
    result = run("report", "prices", "--gpu", "H100", "--gpu", "A100-80GB", "--format", "json", "--now", NOW)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["report"] == "prices" and doc["generated_at"] == "2026-11-23T12:00:00+00:00"
    assert doc["reference_gpu"] == "H100" and "USD per H100 GPU-hour" in doc["effective_price_unit"]
    models = {m["gpu_model"]: m for m in doc["models"]}
    assert {"H100", "A100-80GB"} <= set(models)
    for m in doc["models"]:
        for row in m["providers"]:
            for q in (row["on_demand"], row["spot"]):
                if q is None:
                    continue
                assert q["source"] == "snapshot" and q["as_of"] and q["price_ref"]
                assert q["usd_per_hour"] == pytest.approx(q["usd_per_gpu_hour"] * q["gpus_per_node"], rel=1e-3)
                assert q["effective_usd_per_ref_gpu_hour"] == pytest.approx(
                    q["usd_per_gpu_hour"] / m["relative_throughput"], rel=1e-3)
    assert set(doc["provenance"]) >= {"aws", "lambda"}


def test_cli_csv_rows_carry_source_and_as_of() -> None:
    result = run("report", "prices", "-g", "A100-80GB", "-f", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert rows and {r["option"] for r in rows} == {"on-demand", "spot"}
    assert all(r["source"] == "snapshot" and r["as_of"] and r["reference_gpu"] == "H100" for r in rows)
    assert len({(r["provider"], r["option"]) for r in rows}) == len(rows)  # one cheapest row per provider and option


def test_cli_markdown_and_table() -> None:
    md = run("report", "prices", "-g", "H100", "-f", "markdown")
    assert md.exit_code == 0 and md.output.startswith("# GPU price report")
    assert "## Cheapest per unit of work" in md.output and "Spread between tiers (H100)" in md.output
    assert "## Sources" in md.output and "snapshot, as of" in md.output
    table = run("report", "prices", "-g", "H100", "-p", "aws", "-p", "lambda")
    assert table.exit_code == 0 and "Cheapest per unit of work" in table.output and "Tier spread" in table.output


def test_cli_writes_each_format_by_extension(tmp_path: Path) -> None:
    for name, start in (("r.html", "<!DOCTYPE html>"), ("r.md", "# GPU price report"), ("r.csv", "gpu_model,"),
                        ("r.json", "{"), ("r.txt", "GPU price report")):
        target = tmp_path / name
        result = run("report", "prices", "-g", "H100", "--out", str(target))
        assert result.exit_code == 0, result.output
        assert result.output.strip().splitlines() == [result.output.strip()]  # one line
        assert result.output.startswith(f"wrote {target} (") and "replaced" not in result.output
        assert target.read_text().startswith(start)
    again = run("report", "prices", "-g", "H100", "--out", str(tmp_path / "r.json"))
    assert "replaced the existing file" in again.output


@pytest.mark.parametrize(("args", "needle", "code"), [
    (("--out", "r.xlsx"), "--out: unknown extension '.xlsx'", 2),
    (("--out", "r.md", "--format", "json"), "--format json conflicts with --out r.md", 2),
    (("--gpu", "H10"), "unknown GPU 'H10' (did you mean H100?)", 2),
    (("--reference", "Z9"), "--reference: unknown GPU 'Z9'", 2),
    (("--provider", "amazon"), "unknown provider 'amazon'", 2),
    (("--gpu", "H100", "--provider", "hyperbolic", "--count", "8"), "no offer matches these filters", 3),
])
def test_cli_errors_are_one_line(args: tuple[str, ...], needle: str, code: int) -> None:
    result = run("report", "prices", *args)
    assert result.exit_code == code, result.output
    assert needle in result.output and "Traceback" not in result.output


def test_cli_refuses_to_write_over_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "out.html"
    folder.mkdir()
    for target in (tmp_path, folder):
        result = run("report", "prices", "--out", str(target))
        assert result.exit_code == 2 and "is a directory" in result.output
    assert list(folder.iterdir()) == []
    missing = run("report", "prices", "--out", str(tmp_path / "nope" / "r.html"))
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_report_module_import_stays_cheap() -> None:
    code = ("import sys; import arbitrage.cli.report; from arbitrage.cli import app\n"
            "heavy = [m for m in ('pydantic', 'rich', 'httpx', 'boto3', 'arbitrage.report.html') if m in sys.modules]\n"
            "print('HEAVY', heavy, sorted(c.name for c in app.registered_groups))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY [] ['export', 'report', 'server']" in out


def test_every_price_report_format_shows_the_price_age(facts: Facts, tmp_path: Path) -> None:
    from datetime import datetime, timezone

    old = make_offer(provider="azure", region="eastus", instance_type="Standard_ND96isr_H100_v5",
                     on_demand_usd_per_hour=98.32, spot_usd_per_hour=None, as_of="2024-08-26")
    fresh = make_offer(provider="aws", on_demand_usd_per_hour=55.04, spot_usd_per_hour=None, as_of="2026-11-13")
    report = build_price_report([old, fresh], facts, now=datetime(2026, 11, 23, 12, tzinfo=timezone.utc))
    quotes = {q.offer.provider: q for q in report.quotes}
    assert (quotes["aws"].age_days, quotes["aws"].stale) == (pytest.approx(10.5), False)
    assert quotes["azure"].stale is True
    late = "2030-01-01T00:00:00Z"  # every bundled price is old by then
    doc = json.loads(run("report", "prices", "--gpu", "A100-80GB", "-p", "azure", "-f", "json", "--now", late).output)
    azure = doc["models"][0]["providers"][0]["on_demand"]
    assert azure["age_days"] > 365 and azure["stale"] is True
    out = tmp_path / "prices.html"
    assert run("report", "prices", "--gpu", "A100-80GB", "-p", "azure", "--out", str(out), "--now", late).exit_code == 0
    assert f"as of {azure['as_of']}, {azure['age_days']:.0f} d old: STALE" in out.read_text(encoding="utf-8")

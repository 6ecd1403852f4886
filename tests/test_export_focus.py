"""`gpuarb export focus`: the ledger as FinOps FOCUS 1.2 rows, hand-computed, and checked by `focus-validator`.

The validator (PyPI `focus-validator`, newest 1.0.0) knows FOCUS 0.5, 1.0-preview and 1.0, not 1.2, and pins
numpy<2 and pandas<3; it runs in a subprocess with an interpreter that has it: $GPUARB_FOCUS_PYTHON, else this
one. Without either the validator test skips; the 1.2 checks written here run regardless.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import NOW
from test_report_spend import SPEC_A, T, _app, build_ledger
from typer.testing import CliRunner

from arbitrage import app as usecases
from arbitrage import ledger as L
from arbitrage.report.focus import (
    COLUMNS,
    CUSTOM_COLUMNS,
    FOCUS_COLUMNS,
    MANDATORY_COLUMNS,
    DataHome,
    charge_periods,
    focus_number,
    focus_rows,
    write_focus_csv,
)

runner = CliRunner()
HOME_A = DataHome(provider="gcp", region="us-central1", size_gb=100.0, outputs_gb=10.0, uri="gs://corpus/pile")


@pytest.fixture()
def records(tmp_path: Path):
    ids = build_ledger(tmp_path / "ledger.sqlite3")
    with L.Ledger.open(tmp_path / "ledger.sqlite3") as ledger:
        recs = usecases.ledger_records(ledger, ledger.runs())
    return ids, recs


def _rows(records, **kwargs):
    ids, recs = records
    return ids, focus_rows(recs, NOW, data_homes={ids["A"]: HOME_A}, **kwargs)


def _of(rows, run_id: str, category: str = "Compute"):
    return [r for r in rows if r["x_GpuarbRunId"] == run_id and r["ServiceCategory"] == category]


def test_multi_day_attempt_is_split_at_utc_midnight(records) -> None:
    ids, rows = _rows(records)
    a = _of(rows, ids["A"])
    assert [(r["ChargePeriodStart"], r["ChargePeriodEnd"]) for r in a] == [
        ("2026-11-20T22:00:00Z", "2026-11-21T00:00:00Z"),
        ("2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z"),
        ("2026-11-22T00:00:00Z", "2026-11-22T01:30:00Z")]
    assert [r["PricingQuantity"] for r in a] == [2.0, 24.0, 1.5]  # instance-hours, 1 node
    assert [r["BilledCost"] for r in a] == pytest.approx([196.64, 2359.68, 147.48])  # x $98.32
    assert all(r["ListUnitPrice"] == 98.32 and r["PricingUnit"] == "Hours" and r["ConsumedUnit"] == "Hours"
               for r in a)
    assert [r["x_GpuHours"] for r in a] == [16.0, 192.0, 12.0]
    first = a[0]
    assert (first["ProviderName"], first["ServiceName"], first["ServiceCategory"]) == (
        "AWS", "Amazon Elastic Compute Cloud", "Compute")
    assert (first["ResourceId"], first["SkuId"], first["PricingCategory"]) == (
        f"gpuarb-{ids['A'][-6:]}-a1", "p5.48xlarge", "Standard")
    assert first["SkuPriceId"] == "aws:us-east-1a:p5.48xlarge:on-demand"
    assert (first["RegionId"], first["AvailabilityZone"]) == ("us-east-1", "us-east-1a")
    assert json.loads(first["Tags"]) == {"team": "research", "model": "llama3-8b", "version": "v2",
                                         "gpuarb:run-id": ids["A"], "gpuarb:job": "llama-ft"}
    assert first["BilledCost"] == first["EffectiveCost"] == first["ListCost"] == first["ContractedCost"]


def test_spot_multi_node_rows_cross_a_billing_period(records) -> None:
    ids, rows = _rows(records)
    b = _of(rows, ids["B"])
    # attempt 1 (23:00-01:00) straddles Oct/Nov: two rows in two billing periods; attempt 2 is one row
    assert [(r["x_GpuarbAttempt"], r["BillingPeriodStart"], r["BillingPeriodEnd"]) for r in b] == [
        (1, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"),
        (1, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
        (2, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")]
    assert [r["PricingQuantity"] for r in b] == [2.0, 2.0, 6.0]  # hours x 2 nodes
    assert all(r["ListUnitPrice"] == 20.0 for r in b)  # $40/h per 2-node cluster = $20 per instance-hour
    assert [r["BilledCost"] for r in b] == [40.0, 40.0, 120.0]
    assert {r["PricingCategory"] for r in b} == {"Dynamic"}  # spot
    assert {r["SkuId"] for r in b} == {"a3-highgpu-8g"}  # the same SKU as on-demand; the price id says spot
    assert {r["SkuPriceId"] for r in b} == {"gcp:us-central1-a:a3-highgpu-8g:spot"}


def test_egress_rows_are_billed_by_the_right_cloud(records) -> None:
    ids, rows = _rows(records)
    e_in, e_out = _of(rows, ids["A"], "Networking")
    assert (e_in["ProviderName"], e_in["RegionId"], e_in["BilledCost"]) == ("Google Cloud", "us-central1", 12.0)
    assert (e_in["PricingQuantity"], e_in["PricingUnit"], e_in["ListUnitPrice"]) == (100.0, "GB", 0.12)
    assert (e_in["ChargePeriodStart"], e_in["ChargePeriodEnd"]) == ("2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z")
    assert (e_in["SkuId"], e_in["ResourceId"]) == ("data-transfer-internet", "gs://corpus/pile")
    assert (e_out["ProviderName"], e_out["BilledCost"], e_out["PricingQuantity"]) == ("AWS", 0.9, 10.0)
    assert e_out["ChargePeriodStart"] == "2026-11-22T00:00:00Z"  # the day the run finished and sent outputs home
    assert e_out["ResourceId"] == f"gpuarb-{ids['A'][-6:]}-a1"


def test_egress_without_a_readable_spec_is_still_exported(records) -> None:
    ids, recs = records
    rows = focus_rows(recs, NOW)  # no data homes
    e_in, e_out = _of(rows, ids["A"], "Networking")
    assert (e_in["ProviderName"], e_in["PricingUnit"], e_in["PricingQuantity"], e_in["BilledCost"]) == (
        "AWS", "Transfers", 1.0, 12.0)
    assert "data home unknown" in e_in["ChargeDescription"]
    assert e_out["BilledCost"] == 0.9


def test_rows_add_up_to_the_spend_report_and_the_ledger(records, tmp_path: Path) -> None:
    ids, rows = _rows(records)
    with L.Ledger.open(tmp_path / "ledger.sqlite3") as ledger:
        for run_id in ids.values():
            billed = sum(r["BilledCost"] for r in rows if r["x_GpuarbRunId"] == run_id)
            assert billed == pytest.approx(ledger.spent_usd(run_id, NOW))
    assert sum(r["BilledCost"] for r in rows) == pytest.approx(3006.70)
    # the running run (C) is billed up to now; the zero-length failed launch (D, attempt 1) has no row
    assert [r["ChargePeriodEnd"] for r in _of(rows, ids["C"])] == ["2026-11-23T12:00:00Z"]
    assert [r["x_GpuarbAttempt"] for r in _of(rows, ids["D"])] == [2]
    assert _of(rows, ids["D"])[0]["ProviderName"] == "RunPod"


def test_since_clips_charges_and_hour_granularity(records) -> None:
    ids, rows = _rows(records, since=T("2026-11-21T12:00"))
    a = _of(rows, ids["A"])
    assert [(r["ChargePeriodStart"], r["PricingQuantity"]) for r in a] == [
        ("2026-11-21T12:00:00Z", 12.0), ("2026-11-22T00:00:00Z", 1.5)]
    assert not _of(rows, ids["B"])  # all before
    assert [r["PricingQuantity"] for r in _of(rows, ids["A"], "Networking")] == [10.0]  # only the outputs
    ids, rows = _rows(records, granularity="hour")
    a = _of(rows, ids["A"])
    assert len(a) == 28 and a[-1]["PricingQuantity"] == 0.5  # 27.5 h in hour buckets
    assert sum(r["BilledCost"] for r in a) == pytest.approx(27.5 * 98.32)
    with pytest.raises(ValueError):
        focus_rows([], NOW, granularity="week")  # type: ignore[arg-type]


def test_charge_periods_and_number_format() -> None:
    start = T("2026-11-30T23:30")
    assert charge_periods(start, start + timedelta(hours=1), "day") == [
        (start, T("2026-12-01T00:00")), (T("2026-12-01T00:00"), T("2026-12-01T00:30"))]
    assert charge_periods(start, start, "hour") == []
    assert focus_number(0.00001) == "0.00001"
    assert focus_number(1.5e16) == "15000000000000000"
    assert focus_number(3) == "3" and focus_number(2.5) == "2.5"
    with pytest.raises(ValueError):
        focus_number(float("nan"))


def _csv(records, **kwargs) -> tuple[list[str], list[dict[str, str]]]:
    _, rows = _rows(records, **kwargs)
    buf = io.StringIO()
    assert write_focus_csv(rows, buf) == len(rows)
    reader = csv.DictReader(io.StringIO(buf.getvalue()))
    return list(reader.fieldnames or []), list(reader)


def test_csv_meets_focus_1_2_rules_the_validator_does_not_know(records) -> None:
    """FOCUS 1.2 column set, names, order and formats; the cross-column rules for Usage rows."""
    header, rows = _csv(records)
    assert tuple(header) == COLUMNS
    assert set(FOCUS_COLUMNS) >= MANDATORY_COLUMNS
    assert list(FOCUS_COLUMNS) == sorted(FOCUS_COLUMNS)  # the spec's order; custom columns after, x_-prefixed
    assert all(c.startswith("x_") for c in CUSTOM_COLUMNS)
    for old in ("Provider", "Publisher", "InvoiceIssuer", "ResourceID", "ChargeType", "UsageQuantity"):
        assert old not in header  # pre-1.0 names
    stamp = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    number = re.compile(r"^-?\d+(\.\d+)?$")
    for r in rows:
        for c in ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd"):
            assert stamp.match(r[c]), (c, r[c])
        assert r["BillingPeriodStart"] <= r["ChargePeriodStart"] < r["ChargePeriodEnd"] <= r["BillingPeriodEnd"]
        for c in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ListUnitPrice",
                  "ContractedUnitPrice", "PricingQuantity", "ConsumedQuantity"):
            assert number.match(r[c]), (c, r[c])
        for c in ("ProviderName", "PublisherName", "InvoiceIssuerName", "BillingAccountId", "ServiceName",
                  "SkuId", "SkuPriceId", "PricingCategory", "ResourceId", "RegionId", "RegionName"):
            assert r[c], c  # Usage rows need these (ResourceId: every row here relates to a cluster or bucket)
        assert r["ChargeCategory"] == "Usage" and r["ChargeClass"] == "" and r["BillingCurrency"] == "USD"
        assert r["PricingCategory"] in ("Standard", "Dynamic")
        assert (r["ServiceCategory"], r["ServiceSubcategory"]) in {("Compute", "Virtual Machines"),
                                                                   ("Networking", "Network Connectivity")}
        assert float(r["ListUnitPrice"]) * float(r["PricingQuantity"]) == pytest.approx(float(r["ListCost"]))
        assert float(r["ContractedUnitPrice"]) * float(r["PricingQuantity"]) == pytest.approx(
            float(r["ContractedCost"]))
        tags = json.loads(r["Tags"])
        assert isinstance(tags, dict) and all(not isinstance(v, (dict, list)) for v in tags.values())
        if r["SkuPriceDetails"]:
            assert isinstance(json.loads(r["SkuPriceDetails"]), dict)


# -- the command and the validator ----------------------------------------------------------------------------


@pytest.fixture()
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(usecases, "utcnow", lambda: NOW)
    return tmp_path


def test_export_focus_command(cli_env: Path) -> None:
    ids = build_ledger(cli_env / "ledger.sqlite3")
    result = runner.invoke(_app(), ["export", "focus"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 10
    egress_in = next(r for r in rows if r["x_GpuarbRunId"] == ids["A"] and r["ServiceCategory"] == "Networking")
    assert (egress_in["ProviderName"], egress_in["PricingQuantity"]) == ("Google Cloud", "100.0")  # spec re-read
    out = cli_env / "costs.csv"
    result = runner.invoke(_app(), ["export", "focus", "--out", str(out), "--granularity", "hour",
                                    "--billing-account", "aws=123456789012", "--tag", "team=research"])
    assert result.exit_code == 0, result.output
    assert "FOCUS 1.2 rows" in result.output and str(out) in result.output
    rows = list(csv.DictReader(out.open()))
    assert {r["x_GpuarbRunId"] for r in rows} == {ids["A"], ids["B"]}
    assert {r["BillingAccountId"] for r in rows if r["ProviderName"] == "AWS"} == {"123456789012"}
    assert {r["BillingAccountId"] for r in rows if r["ProviderName"] == "Google Cloud"} == {"gpuarb-gcp"}


def test_export_focus_empty_ledger_and_bad_input(cli_env: Path) -> None:
    result = runner.invoke(_app(), ["export", "focus"])
    assert result.exit_code == 0
    assert result.stdout.strip() == ",".join(COLUMNS)
    result = runner.invoke(_app(), ["export", "focus", "--billing-account", "aws="])
    assert result.exit_code == 2 and "--billing-account" in result.output
    result = runner.invoke(_app(), ["export", "focus", "--since", "later"])
    assert result.exit_code == 2 and "--since" in result.output


def test_data_homes_come_from_the_recorded_spec(records) -> None:
    ids, recs = records
    assert SPEC_A in [r.run.spec_text for r in recs]
    assert usecases.data_homes(recs) == {ids["A"]: HOME_A}


# focus-validator 1.0.0's "1.0" rule set still names five columns by their pre-1.0 ids (Provider, Publisher,
# InvoiceIssuer, ResourceID, and ChargeType in the SkuPriceId rule); FOCUS 1.0-1.2 call them ProviderName,
# PublisherName, InvoiceIssuerName, ResourceId, ChargeCategory. Those 13 checks are skipped through the validator's
# override file, and test_csv_meets_focus_1_2_rules_the_validator_does_not_know checks the same things under the
# 1.2 names.
STALE_CHECKS = ("InvoiceIssuer_IsString", "InvoiceIssuer_NotNull", "InvoiceIssuer_Required", "Provider_IsString",
                "Provider_NotNull", "Provider_Required", "Publisher_IsString", "Publisher_NotNull",
                "Publisher_Required", "ResourceID_IsString", "ResourceID_Nullable", "ResourceID_Required",
                "SkuPriceId_Nullable")
VALIDATE = r"""
import json, os, sys
from importlib.metadata import version
import focus_validator
from focus_validator.validator import Validator
# its ISO currency list is read from a path relative to the package's parent directory
os.chdir(os.path.dirname(os.path.dirname(focus_validator.__file__)))
data, rules, overrides = sys.argv[1:4]
v = Validator(data_filename=data, output_destination=None, output_type="console", rules_version=rules,
              override_filename=overrides)
v.load()
result = v.spec_rules.validate(v.focus_data)
failures = [] if result.failure_cases is None else result.failure_cases.astype(str).to_dict("records")
print(json.dumps({"version": version("focus_validator"), "supported": v.get_supported_versions(),
                  "checks": {k: c.status.value for k, c in result.checklist.items()}, "failures": failures}))
"""


def _validator_python() -> str | None:
    configured = os.environ.get("GPUARB_FOCUS_PYTHON")
    if configured:
        return configured
    return sys.executable if importlib.util.find_spec("focus_validator") else None


def test_focus_validator_accepts_the_export(cli_env: Path) -> None:
    python = _validator_python()
    if python is None:
        pytest.skip("focus-validator is not installed (pip install focus-validator 'multimethod<2', or set "
                    "GPUARB_FOCUS_PYTHON to an interpreter that has it)")
    build_ledger(cli_env / "ledger.sqlite3")
    out = cli_env / "costs.csv"
    result = runner.invoke(_app(), ["export", "focus", "--out", str(out)])
    assert result.exit_code == 0, result.output
    overrides = cli_env / "overrides.yaml"
    overrides.write_text("overrides:\n" + "".join(f"  - {name}\n" for name in STALE_CHECKS))
    proc = subprocess.run([python, "-c", VALIDATE, str(out), "1.0", str(overrides)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "1.0" in report["supported"]  # the newest FOCUS version focus-validator knows (it has no 1.2 rules)
    assert report["failures"] == []
    statuses = report["checks"]
    assert {k for k, s in statuses.items() if s == "skipped"} == set(STALE_CHECKS)
    assert {s for k, s in statuses.items() if k not in STALE_CHECKS} == {"passed"}
    assert len(statuses) > 100  # the whole 1.0 rule set ran

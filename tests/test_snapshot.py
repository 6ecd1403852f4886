"""The bundled snapshot: conversion rules, coverage, provenance, and that it is reproducible."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict

import pytest
from conftest import ROOT, SHARED_CATALOG

from arbitrage.offers import INTERCONNECTS
from providers.skypilot_catalog import convert_gcp, convert_manual, convert_simple
from providers.snapshot import load_snapshot, snapshot_meta

GCP_ROWS = [
    {"InstanceType": "a2-highgpu-8g", "vCPUs": "96.0", "MemoryGiB": "680.0", "AcceleratorName": "",
     "AcceleratorCount": "", "GpuInfo": "", "Region": "europe-west4", "AvailabilityZone": "europe-west4-a",
     "Price": "6.51251", "SpotPrice": "2.2"},
    {"InstanceType": "", "vCPUs": "", "MemoryGiB": "", "AcceleratorName": "A100", "AcceleratorCount": "8",
     "GpuInfo": "{'Gpus': [{'MemoryInfo': {'SizeInMiB': 40960}}]}", "Region": "europe-west4",
     "AvailabilityZone": "europe-west4-a", "Price": "12.90919", "SpotPrice": ""},
    {"InstanceType": "", "vCPUs": "", "MemoryGiB": "", "AcceleratorName": "A100", "AcceleratorCount": "8",
     "GpuInfo": "", "Region": "europe-west4", "AvailabilityZone": "europe-west4-b", "Price": "12.9", "SpotPrice": ""},
]


def test_gcp_adds_host_vm_and_gpus_per_zone() -> None:
    rows = convert_gcp(GCP_ROWS, "undated", "ref")
    assert len(rows) == 1  # europe-west4-b has no host VM row: not purchasable
    row = rows[0]
    assert row["instance_type"] == "a2-highgpu-8g" and row["zone"] == "europe-west4-a"
    assert float(row["on_demand_usd_per_hour"]) == pytest.approx(19.4217, abs=1e-3)  # README's worked example
    assert row["spot_usd_per_hour"] == ""  # GPU spot price missing -> no spot offer
    assert row["gpu_memory_gb"] == "40" and row["vcpus"] == "96"


def test_simple_conversion_skips_cpu_rows_and_keeps_empty_prices_empty() -> None:
    rows = convert_simple("aws", [
        {"InstanceType": "p5e.48xlarge", "AcceleratorName": "H200", "AcceleratorCount": "8.0", "vCPUs": "192",
         "MemoryGiB": "2048", "GpuInfo": "", "Price": "", "SpotPrice": "19.4254", "Region": "ap-southeast-3",
         "AvailabilityZone": "apse3-az1"},
        {"InstanceType": "m5.large", "AcceleratorName": "", "AcceleratorCount": "", "vCPUs": "2", "MemoryGiB": "8",
         "GpuInfo": "", "Price": "0.1", "SpotPrice": "", "Region": "us-east-1", "AvailabilityZone": "use1-az1"},
    ], "undated", "ref")
    assert len(rows) == 1 and rows[0]["on_demand_usd_per_hour"] == "" and rows[0]["spot_usd_per_hour"] == "19.4254"


def test_manual_rows_need_source_and_date() -> None:
    row = {"provider": "x", "region": "r", "zone": "", "instance_type": "i", "accelerator": "H100",
           "gpus_per_node": "1", "gpu_memory_gb": "80", "vcpus": "", "ram_gb": "", "on_demand_usd_per_hour": "2",
           "spot_usd_per_hour": "", "source": "", "as_of": "2026-01-01"}
    with pytest.raises(ValueError, match="needs source and as_of"):
        convert_manual([row], "f.csv")


def test_snapshot_covers_required_providers_for_h100_and_a100(facts) -> None:
    offers = load_snapshot(facts)
    have: dict[str, set[str]] = defaultdict(set)
    for o in offers:
        have[o.provider].add("A100" if o.accelerator.startswith("A100") else o.accelerator)
    for provider in ("aws", "gcp", "azure", "lambda", "runpod", "vast"):
        assert {"H100", "A100"} <= have[provider], provider
    assert "H100" in have["nebius"]  # Nebius publishes no A100 price (see README)


def test_every_offer_is_priced_and_attributed(facts) -> None:
    for o in load_snapshot(facts):
        assert o.source == "snapshot" and o.as_of and o.price_ref
        assert o.on_demand_usd_per_hour or o.spot_usd_per_hour
        for price in (o.on_demand_usd_per_hour, o.spot_usd_per_hour):
            assert price is None or 0 < price < 200, o
        assert o.interconnect in INTERCONNECTS
        assert o.gpu_model in facts.gpus


def test_spot_cheaper_than_on_demand_where_both_exist(facts) -> None:
    both = [o for o in load_snapshot(facts) if o.on_demand_usd_per_hour and o.spot_usd_per_hour]
    assert both
    assert all(o.spot_usd_per_hour <= o.on_demand_usd_per_hour * 1.0001 for o in both)


def test_meta_counts_match() -> None:
    meta = snapshot_meta()
    assert sum(s["rows"] for s in meta["sources"]) >= meta["offers"]
    assert all(s.get("commit") or s["origin"] == "hand-built, cited per row" for s in meta["sources"])


@pytest.mark.skipif(not (SHARED_CATALOG / "aws" / "vms.csv").is_file(), reason="../shared/catalog-snapshot absent")
def test_committed_snapshot_is_what_the_build_script_produces() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_snapshot.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

"""Owned capacity priced from a config file, and the planner weighing it against rented GPUs."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arbitrage.cli import app
from arbitrage.facts import load_facts
from providers.base import FetchContext, ProviderError
from providers.onprem import ADAPTER, HOURS_PER_MONTH, HOURS_PER_YEAR

CONFIG = """\
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
    interconnect: infiniband
    interconnect_gbps: 3200
"""


def ctx(tmp_path: Path) -> FetchContext:
    return FetchContext(facts=load_facts(), now=datetime(2026, 11, 23, tzinfo=timezone.utc),
                        env={"GPUARB_CONFIG_DIR": str(tmp_path)})


def test_node_hour_price_is_amortized_purchase_plus_power_plus_hosting(tmp_path: Path) -> None:
    (tmp_path / "onprem.yaml").write_text(CONFIG)
    assert ADAPTER.has_credentials(ctx(tmp_path))
    [offer] = asyncio.run(ADAPTER.fetch(ctx(tmp_path)))
    expected = 250000 / (3 * HOURS_PER_YEAR * 0.5) + 10 * 1.4 * 0.10 + 2000 / (HOURS_PER_MONTH * 0.5)
    assert offer.on_demand_usd_per_hour == pytest.approx(expected)
    assert offer.accelerator == "H100" and offer.gpus_per_node == 8 and offer.has_rdma
    assert offer.provider == "onprem" and offer.spot_usd_per_hour is None


def test_no_config_means_no_credentials(tmp_path: Path) -> None:
    assert not ADAPTER.has_credentials(ctx(tmp_path))


@pytest.mark.parametrize(("edit", "needle"), [
    (("accelerator: h100", "accelerator: h900"), "clusters[0].accelerator: unknown GPU"),
    (("utilization: 0.5", "utilization: 1.5"), "clusters[0].utilization"),
    (("gpus_per_node: 8", "gpus_per_node: 0"), "clusters[0].gpus_per_node"),
    (("purchase_usd_per_node: 250000", "purchase_usd_per_node: -1"), "purchase_usd_per_node: must be >= 0"),
    (("interconnect: infiniband", "interconnect: carrier-pigeon"), "clusters[0].interconnect"),
    (("clusters:", "clusterz:"), "expected a non-empty 'clusters' list"),
])
def test_bad_config_names_file_cluster_and_field(tmp_path: Path, edit, needle: str) -> None:
    (tmp_path / "onprem.yaml").write_text(CONFIG.replace(*edit))
    with pytest.raises(ProviderError) as info:
        asyncio.run(ADAPTER.fetch(ctx(tmp_path)))
    assert needle in str(info.value) and "onprem.yaml" in str(info.value)


def test_plan_prefers_owned_nodes_when_cheaper(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "onprem.yaml").write_text(CONFIG)
    monkeypatch.setenv("GPUARB_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("GPUARB_CACHE_DIR", str(tmp_path / "cache"))
    job = tmp_path / "job.yaml"
    job.write_text("name: x\nresources: {accelerators: H100:8}\narbitrage:\n  work: {gpu_hours: 800}\n"
                   "  providers: {allow: [onprem, aws]}\n")
    result = CliRunner().invoke(app, ["plan", str(job), "-s", "auto", "-f", "json", "--top", "1"])
    assert result.exit_code == 0, result.output
    best = json.loads(result.output)["placements"][0]
    assert best["provider"] == "onprem" and best["source"] == "live"
    bad = CliRunner().invoke(app, ["plan", str(job), "-s", "auto", "-f", "json"], env={"GPUARB_CONFIG_DIR": "/nope"})
    assert bad.exit_code == 0 and all(p["provider"] == "aws" for p in json.loads(bad.output)["placements"])

"""The egress rule: classifying a transfer and pricing it from cumulative tiers, shared by cost model and FOCUS."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_offer, make_spec

from arbitrage.costmodel import Placement, estimate
from arbitrage.egress import EGRESS_PATHS, GIB_IN_GB, EgressTier, egress_path, egress_usd, is_local_zone, tier_in_gb
from arbitrage.errors import DataError
from arbitrage.facts import load_egress
from arbitrage.jobspec import DataLocation
from arbitrage.report.focus import EGRESS_SKUS, egress_sku


def _tier(up_to_gb: float | None, usd_per_gb: float, provider: str = "acme", path: str = "internet") -> EgressTier:
    return EgressTier(provider, path, up_to_gb, usd_per_gb, "test", "2026-11")  # type: ignore[arg-type]


def test_egress_paths() -> None:
    assert egress_path("aws", "us-east-1", "aws", "us-east-1") == "same_region"
    assert egress_path("aws", "us-east-1", "aws", "us-west-2") == "inter_region"
    assert egress_path("aws", "us-east-1", "lambda", "us-east-1") == "internet"


def test_egress_tiers_are_cumulative(facts) -> None:
    # AWS internet: 10 TB at $0.09, next 40 TB at $0.085.
    expected = 10240 * 0.09 + (20000 - 10240) * 0.085
    assert egress_usd(facts.egress_tiers, "aws", "internet", 20000) == pytest.approx(expected)
    assert egress_usd(facts.egress_tiers, "lambda", "internet", 20000) == 0


def test_tiers_apply_in_ascending_order_whatever_the_file_order() -> None:
    tiers = [_tier(None, 0.01), _tier(100, 0.10), _tier(50, 0.20), _tier(10, 0.50, path="inter_region")]
    assert egress_usd(tiers, "acme", "internet", 30) == pytest.approx(30 * 0.20)
    assert egress_usd(tiers, "acme", "internet", 100) == pytest.approx(50 * 0.20 + 50 * 0.10)
    assert egress_usd(tiers, "acme", "internet", 1100) == pytest.approx(50 * 0.20 + 50 * 0.10 + 1000 * 0.01)
    assert egress_usd(tiers, "acme", "inter_region", 10) == pytest.approx(5.0)


def test_nothing_moved_costs_nothing_even_without_a_rate() -> None:
    assert egress_usd([], "nobody", "internet", 0) == 0
    assert egress_usd([], "nobody", "internet", -5) == 0


def test_a_missing_rate_names_the_table_path_and_provider() -> None:
    with pytest.raises(DataError, match=r"egress\.csv: no 'same_region' rate for provider 'acme'"):
        egress_usd([_tier(None, 0.01)], "acme", "same_region", 1)


def test_every_provider_in_the_table_prices_every_path(facts) -> None:
    providers = {t.provider for t in facts.egress_tiers}
    for provider in providers:
        for path in EGRESS_PATHS:
            assert egress_usd(facts.egress_tiers, provider, path, 1.0) >= 0


def test_the_loader_rejects_a_path_the_rule_does_not_know(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "facts").mkdir()
    (tmp_path / "facts" / "egress.csv").write_text(
        "provider,path,up_to_gb,usd_per_gb,source,as_of\nacme,moon,,0.5,test,2026-11\n", encoding="utf-8")
    monkeypatch.setenv("GPUARB_CONFIG_DIR", str(tmp_path))
    with pytest.raises(DataError, match="unknown egress path 'moon'"):
        load_egress()


def test_focus_names_the_sku_of_the_transfer_the_cost_model_priced(facts) -> None:
    assert set(EGRESS_SKUS) == set(EGRESS_PATHS)
    home, there = ("gcp", "us-central1"), ("aws", "us-east-1")
    assert egress_sku(home, there) == EGRESS_SKUS[egress_path(*home, *there)] == "data-transfer-internet"
    assert egress_sku(home, ("gcp", "us-east1")) == "data-transfer-inter-region"
    assert egress_sku(home, home) == "data-transfer-same-region"
    assert egress_sku(home, None) == "data-transfer"
    # the cost model billed this same transfer at the internet price of the data's home
    spec = make_spec(data=DataLocation(provider="gcp", region="us-central1", size_gb=100), outputs_gb=0)
    cost = estimate(spec, Placement(make_offer(), 1, spot=False), facts)
    assert cost.egress_in_usd == pytest.approx(egress_usd(facts.egress_tiers, "gcp", "internet", 100))
    # GCP publishes $0.12 per GiB: 100 GB is 93.13 GiB (this assertion used to read 100 * 0.12, the GiB-as-GB bug)
    assert cost.egress_in_usd == pytest.approx(100 / 1.073741824 * 0.12)


# -- Units, continents, Local Zones ------------------------------------------------------------------

def test_every_row_says_its_unit_and_gcp_bills_per_gib(facts) -> None:
    units = {(t.provider, t.unit) for t in facts.egress_tiers}
    assert {u for _p, u in units} <= {"GB", "GiB"}
    assert {u for p, u in units if p == "gcp"} == {"GiB"} and {u for p, u in units if p in ("aws", "azure")} == {"GB"}
    # $0.12/GiB for the first 1,024 GiB = $0.1118/GB for the first 1,099.5 GB
    first = min((t for t in facts.egress_tiers if t.provider == "gcp" and t.path == "internet"),
                key=lambda t: t.up_to_gb or float("inf"))
    assert first.usd_per_gb == pytest.approx(0.12 / GIB_IN_GB) and first.up_to_gb == pytest.approx(1024 * GIB_IN_GB)
    one_tib_in_gb = 1024 * GIB_IN_GB
    assert egress_usd(facts.egress_tiers, "gcp", "internet", one_tib_in_gb) == pytest.approx(1024 * 0.12)


def test_a_gib_row_is_converted_and_a_gb_row_is_not() -> None:
    gib = tier_in_gb("acme", "internet", 1024, 0.12, "GiB", "test", "2026-12")
    gb = tier_in_gb("acme", "internet", 1024, 0.12, "GB", "test", "2026-12")
    assert (gib.up_to_gb, gib.usd_per_gb) == (pytest.approx(1099.511627776), pytest.approx(0.111758708954))
    assert (gb.up_to_gb, gb.usd_per_gb) == (1024, 0.12)
    with pytest.raises(DataError, match="unknown unit"):
        tier_in_gb("acme", "internet", None, 0.1, "TB", "test", "2026-12")  # type: ignore[arg-type]


def test_the_loader_reads_units_and_rejects_unknown_ones(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "facts").mkdir()
    table = tmp_path / "facts" / "egress.csv"
    monkeypatch.setenv("GPUARB_CONFIG_DIR", str(tmp_path))
    table.write_text("provider,path,from_continent,unit,up_to,usd_per_unit,source,as_of\n"
                     "acme,internet,,GiB,,0.10,test,2026-12\nacme,inter_region,asia,GB,,0.08,test,2026-12\n")
    internet, asia = load_egress()
    assert internet.unit == "GiB" and internet.usd_per_gb == pytest.approx(0.10 / GIB_IN_GB)
    assert asia.from_continent == "asia" and asia.usd_per_gb == 0.08
    table.write_text("provider,path,from_continent,unit,up_to,usd_per_unit,source,as_of\nacme,internet,,TB,,1,t,x\n")
    with pytest.raises(DataError, match="column 'unit' must be GB or GiB"):
        load_egress()
    table.write_text("provider,path,from_continent,unit,up_to,usd_per_unit,source,as_of\nacme,internet,mars,GB,,1,t,x\n")
    with pytest.raises(DataError, match="from_continent 'mars'"):
        load_egress()
    # An override file in the older per-GB layout still loads.
    table.write_text("provider,path,up_to_gb,usd_per_gb,source,as_of\nacme,internet,,0.05,test,2026-11\n")
    (old,) = load_egress()
    assert (old.unit, old.usd_per_gb, old.from_continent) == ("GB", 0.05, "")


def test_intercontinental_and_local_zone_paths() -> None:
    assert egress_path("gcp", "us-central1", "gcp", "europe-west4", src_continent="north-america",
                       dst_continent="europe") == "inter_continent"
    assert egress_path("gcp", "us-central1", "gcp", "us-east4", src_continent="north-america",
                       dst_continent="north-america") == "inter_region"
    # an unknown continent is not assumed to be another one
    assert egress_path("gcp", "us-central1", "gcp", "mystery1", src_continent="north-america") == "inter_region"
    assert egress_path("aws", "us-east-1", "aws", "us-east-1", dst_zone="use1-atl2-az1") == "local_zone"
    assert egress_path("aws", "us-east-1", "aws", "us-east-1", src_zone="us-west-2-lax-1a") == "local_zone"
    assert egress_path("aws", "us-east-1", "aws", "us-east-1", dst_zone="use1-az4") == "same_region"
    assert egress_path("aws", "us-east-1", "aws", "us-east-1", src_zone="use1-atl2-az1",
                       dst_zone="use1-atl2-az1") == "same_region"
    assert [z for z in ("use1-atl2-az1", "usw2-lax1-az2", "us-east-1-atl-2a", "use1-az4", "us-east-1a",
                        "us-central1-a", None, "") if is_local_zone(z)] == [
        "use1-atl2-az1", "usw2-lax1-az2", "us-east-1-atl-2a"]


def test_intercontinental_rates_are_higher_where_the_cloud_bills_them(facts) -> None:
    tiers = facts.egress_tiers
    gb = 1000.0
    assert egress_usd(tiers, "gcp", "inter_continent", gb) == pytest.approx(gb / GIB_IN_GB * 0.08)
    assert egress_usd(tiers, "gcp", "inter_continent", gb, from_continent="oceania") == pytest.approx(
        gb / GIB_IN_GB * 0.15)
    assert egress_usd(tiers, "gcp", "inter_continent", gb) > egress_usd(tiers, "gcp", "inter_region", gb)
    assert egress_usd(tiers, "azure", "inter_continent", gb, from_continent="europe") == pytest.approx(50.0)
    assert egress_usd(tiers, "azure", "inter_continent", gb, from_continent="asia") == pytest.approx(80.0)
    assert egress_usd(tiers, "azure", "inter_region", gb, from_continent="asia") == pytest.approx(80.0)
    assert egress_usd(tiers, "azure", "inter_region", gb, from_continent="europe") == pytest.approx(20.0)
    # AWS charges by source region only: from us-east-1 any other region is $0.02/GB
    assert egress_usd(tiers, "aws", "inter_continent", gb) == egress_usd(tiers, "aws", "inter_region", gb) == 20.0
    assert egress_usd(tiers, "aws", "local_zone", gb) == pytest.approx(20.0)
    assert egress_usd(tiers, "aws", "same_region", gb) == 0
    # providers without such rows fall back to their inter-region rate
    assert egress_usd(tiers, "lambda", "local_zone", gb) == 0 and egress_usd(tiers, "vast", "inter_continent", gb) == 10


def test_the_cost_model_prices_intercontinental_and_local_zone_transfers(facts) -> None:
    spec = make_spec(data=DataLocation(provider="gcp", region="us-central1", size_gb=1000), outputs_gb=100)
    europe = make_offer(provider="gcp", region="europe-west4", zone=None, instance_type="a3-highgpu-8g",
                        country="NL", continent="europe")
    cost = estimate(spec, Placement(europe, 1, spot=False), facts)
    assert cost.egress_in_usd == pytest.approx(1000 / GIB_IN_GB * 0.08)
    assert cost.egress_out_usd == pytest.approx(100 / GIB_IN_GB * 0.08)
    # the offer's continent comes from the region table when the offer does not carry one
    unlabelled = make_offer(provider="gcp", region="europe-west4", zone=None, instance_type="a3-highgpu-8g")
    assert estimate(spec, Placement(unlabelled, 1, spot=False), facts).egress_in_usd == pytest.approx(
        cost.egress_in_usd)
    same_continent = make_offer(provider="gcp", region="us-east4", zone=None, instance_type="a3-highgpu-8g")
    assert estimate(spec, Placement(same_continent, 1, spot=False), facts).egress_in_usd == pytest.approx(
        1000 / GIB_IN_GB * 0.02)
    s3 = make_spec(data=DataLocation(provider="aws", region="us-east-1", size_gb=1000), outputs_gb=0)
    atlanta = make_offer(zone="use1-atl2-az1")
    local = estimate(s3, Placement(atlanta, 1, spot=False), facts)
    assert local.egress_in_usd == pytest.approx(20.0) and local.staging_hours > 0
    in_region = estimate(s3, Placement(make_offer(zone="use1-az4"), 1, spot=False), facts)
    assert in_region.egress_in_usd == 0 and in_region.staging_hours == 0

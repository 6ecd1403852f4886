"""The price quality gate: each rule sets aside the price it should, and only that price, with a reason."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from conftest import ROOT, make_offer

from providers.quality import (
    QUARANTINE_COLUMNS,
    R_BAND,
    R_HIGH,
    R_LOW,
    R_NOT_A_PRICE,
    R_NOT_SOLD,
    R_SPOT_ABOVE,
    GateRules,
    PriceBand,
    gate,
    gate_rows,
    load_quarantine,
    load_rules,
    parse_quarantine,
)
from providers.skypilot_catalog import SNAPSHOT_COLUMNS
from providers.snapshot import load_snapshot


@pytest.fixture(scope="module")
def rules(facts) -> GateRules:
    return load_rules(facts)


def h100(region: str, od: float | None, spot: float | None = None, **kw) -> object:
    """An 8xH100 gcp offer priced per GPU-hour (the gate judges per GPU)."""
    base = dict(provider="gcp", region=region, instance_type="a3-highgpu-8g", interconnect="gpudirect-tcpx",
                interconnect_gbps=800.0, on_demand_usd_per_hour=None if od is None else od * 8,
                spot_usd_per_hour=None if spot is None else spot * 8)
    base.update(kw)
    return make_offer(**base)


def rules_of(result) -> list[tuple[str, str, str]]:
    return sorted((q.offer.region, q.option, q.rule) for q in result.quarantined)


def test_the_bundled_tables_load_and_every_row_is_cited(rules: GateRules) -> None:
    assert rules.band("H100") is not None and rules.band("H100").max_usd_per_gpu_hour > 15.98
    assert rules.band("a-gpu-without-a-row") is rules.bands["*"]
    assert all(b.source and b.min_usd_per_gpu_hour < b.max_usd_per_gpu_hour for b in rules.bands.values())
    assert rules.not_sold_on_demand("gcp", "a3-highgpu-1g") is not None
    assert rules.not_sold_on_demand("gcp", "a3-highgpu-8g") is None
    assert rules.not_sold_on_demand("gcp", "a4-highgpu-8g") is not None
    assert all(r.source for r in rules.not_on_demand)
    assert (rules.outlier_low_ratio, rules.outlier_high_ratio) == (0.55, 2.0)


def test_spot_above_on_demand_sets_aside_the_spot_price_only(rules: GateRules) -> None:
    offer = make_offer(on_demand_usd_per_hour=40.0, spot_usd_per_hour=41.0)
    result = gate([offer], rules)
    assert [(q.option, q.rule) for q in result.quarantined] == [("spot", R_SPOT_ABOVE)]
    assert "spot $5.12/GPU-h is above on-demand $5.00/GPU-h" in result.quarantined[0].reason
    assert len(result.kept) == 1 and result.kept[0].spot_usd_per_hour is None
    assert result.kept[0].on_demand_usd_per_hour == 40.0
    # Spot equal to on-demand (AWS's cap) is a real price.
    assert gate([make_offer(on_demand_usd_per_hour=40.0, spot_usd_per_hour=40.0)], rules).quarantined == []


def test_a_price_far_under_the_providers_own_median_is_set_aside(rules: GateRules) -> None:
    # GCP's Flex-start rows read as on-demand: about half of list in some regions.
    offers = [h100("us-east4", 11.06), h100("europe-west4", 12.5), h100("asia-east1", 12.7),
              h100("us-west1", 11.8), h100("us-central1", 5.38, 3.35)]
    result = gate(offers, rules)
    assert rules_of(result) == [("us-central1", "on-demand", R_LOW)]
    reason = result.quarantined[0].reason
    assert "0.46x gcp's median $11.80/GPU-h for a3-highgpu-8g across 5 regions" in reason
    central = next(o for o in result.kept if o.region == "us-central1")
    assert central.on_demand_usd_per_hour is None and central.spot_usd_per_hour == pytest.approx(3.35 * 8)
    assert len(result.kept) == 5


def test_a_price_far_over_the_median_is_set_aside(rules: GateRules) -> None:
    offers = [h100("us-east4", 11.0), h100("europe-west4", 12.0), h100("asia-east1", 11.5),
              h100("me-west1", 11.5 * 3)]  # 3x list: inside H100's plausible band, far from gcp's own prices
    result = gate(offers, rules)
    assert rules_of(result) == [("me-west1", "on-demand", R_HIGH)]
    assert [o.region for o in result.kept] == ["us-east4", "europe-west4", "asia-east1"]


def test_the_median_is_per_sku_so_shapes_with_more_host_are_not_outliers(rules: GateRules) -> None:
    """A small-GPU shape carries its host: 1xT4 g4dn.xlarge is dearer per GPU than no shape, cheaper than 4xT4."""
    def t4(region: str, instance: str, gpus: int, usd_per_gpu: float) -> object:
        return make_offer(region=region, instance_type=instance, accelerator="T4", gpu_model="T4", gpus_per_node=gpus,
                          on_demand_usd_per_hour=usd_per_gpu * gpus, spot_usd_per_hour=None, interconnect="ethernet")
    offers = [t4(r, "g4dn.xlarge", 1, 0.526) for r in ("us-east-1", "us-east-2", "us-west-2")]
    offers += [t4(r, "g4dn.12xlarge", 4, 0.978) for r in ("eu-west-1", "eu-west-2", "ap-south-1", "sa-east-1")]
    assert gate(offers, rules).quarantined == []  # 0.526 is 0.54x a median over both shapes, 1.0x its own


def test_the_median_needs_three_regions_and_skips_marketplaces(rules: GateRules) -> None:
    two = [h100("us-east4", 11.0), h100("us-central1", 5.0)]
    assert gate(two, rules).quarantined == []
    # A marketplace's hosts set their own prices: the cheap host is a real offer.
    vast = [make_offer(provider="vast", region=f"r{i}", instance_type="8x-H100_SXM", on_demand_usd_per_hour=p * 8,
                       spot_usd_per_hour=None, interconnect="none", interconnect_gbps=0.0)
            for i, p in enumerate([2.4, 2.5, 2.6, 1.0])]
    assert gate(vast, rules).quarantined == []
    # Spot prices are not compared with a median: spot markets differ by zone by design.
    spots = [h100(r, None, s) for r, s in (("a", 3.0), ("b", 3.1), ("c", 3.2), ("d", 0.9))]
    assert gate(spots, rules).quarantined == []


def test_shapes_not_sold_on_demand_lose_their_on_demand_price(rules: GateRules) -> None:
    both = h100("us-central1", 11.0, 3.0, instance_type="a3-highgpu-1g", gpus_per_node=1,
                on_demand_usd_per_hour=11.0, spot_usd_per_hour=3.0)
    od_only = make_offer(provider="gcp", region="us-central1", instance_type="a4-highgpu-8g", accelerator="B200",
                         gpu_model="B200", on_demand_usd_per_hour=90.0, spot_usd_per_hour=None)
    result = gate([both, od_only], rules)
    assert sorted((q.offer.instance_type, q.option, q.rule) for q in result.quarantined) == [
        ("a3-highgpu-1g", "on-demand", R_NOT_SOLD), ("a4-highgpu-8g", "on-demand", R_NOT_SOLD)]
    assert "not sold on-demand (only Spot, Flex-start)" in result.quarantined[0].reason
    assert [(o.instance_type, o.on_demand_usd_per_hour, o.spot_usd_per_hour) for o in result.kept] == [
        ("a3-highgpu-1g", None, 3.0)]  # the B200 row had nothing else to sell


@pytest.mark.parametrize(("od", "rule"), [
    (math.nan, R_NOT_A_PRICE), (math.inf, R_NOT_A_PRICE), (0.0, R_NOT_A_PRICE), (-8.0, R_NOT_A_PRICE),
    (0.08, R_BAND),        # 1 cent per GPU-hour: under H100's plausible floor
    (8 * 730.0, R_BAND),   # a monthly price read as hourly
])
def test_absurd_values_are_set_aside(rules: GateRules, od: float, rule: str) -> None:
    result = gate([make_offer(on_demand_usd_per_hour=od, spot_usd_per_hour=None)], rules)
    assert [(q.option, q.rule) for q in result.quarantined] == [("on-demand", rule)]
    assert result.kept == []


def test_band_of_a_gpu_without_a_row_is_the_default(rules: GateRules) -> None:
    custom = GateRules({"*": PriceBand("*", 0.02, 60.0, "test")})
    assert gate([make_offer(accelerator="T4", gpu_model="T4", gpus_per_node=1, on_demand_usd_per_hour=0.35,
                            spot_usd_per_hour=None)], custom).quarantined == []
    assert [q.rule for q in gate([make_offer(accelerator="T4", gpu_model="T4", gpus_per_node=1,
                                             on_demand_usd_per_hour=0.01, spot_usd_per_hour=None)],
                                 custom).quarantined] == [R_BAND]


def test_good_offers_pass_untouched(rules: GateRules) -> None:
    offers = [make_offer(region=r) for r in ("us-east-1", "us-east-2", "us-west-2")]
    result = gate(offers, rules)
    assert result.quarantined == [] and all(a is b for a, b in zip(result.kept, offers, strict=True))


def test_on_the_bundled_snapshot_no_shape_is_offered_as_it_is_not_sold(facts, rules: GateRules) -> None:
    result = gate(load_snapshot(facts), rules)
    for o in result.kept:
        if o.on_demand_usd_per_hour is not None:
            assert rules.not_sold_on_demand(o.provider, o.instance_type) is None, o
        if o.spot_usd_per_hour is not None and o.on_demand_usd_per_hour is not None:
            assert o.spot_usd_per_hour <= o.on_demand_usd_per_hour * (1 + 1e-9), o


def _snapshot_rows(*rows: dict) -> list[dict]:
    return [{c: r.get(c, "") for c in SNAPSHOT_COLUMNS} for r in rows]


def test_gate_rows_blanks_the_failed_cell_and_returns_the_set_aside_rows(facts) -> None:
    base = dict(provider="gcp", accelerator="H100", gpus_per_node="1", gpu_memory_gb="80", vcpus="26",
                ram_gb="234", as_of="2026-11-20", price_ref="test")
    rows = _snapshot_rows(
        {**base, "region": "us-central1", "zone": "us-central1-a", "instance_type": "a3-highgpu-1g",
         "on_demand_usd_per_hour": "11.0", "spot_usd_per_hour": "3.0"},
        {**base, "region": "us-east4", "zone": "us-east4-a", "instance_type": "a3-highgpu-1g",
         "on_demand_usd_per_hour": "11.0", "spot_usd_per_hour": "12.0"},
        {**base, "region": "us-east4", "zone": "us-east4-b", "instance_type": "a3-highgpu-1g",
         "on_demand_usd_per_hour": "11.0", "spot_usd_per_hour": ""},
        {**base, "accelerator": "NOT-A-GPU", "region": "us-east4", "zone": "", "instance_type": "x",
         "on_demand_usd_per_hour": "1.0", "spot_usd_per_hour": ""},
    )
    kept, aside = gate_rows(rows, facts)
    assert [(r["zone"], r["on_demand_usd_per_hour"], r["spot_usd_per_hour"]) for r in kept] == [
        ("us-central1-a", "", "3.0"), ("us-east4-a", "", "12.0"), ("", "1.0", "")]
    assert [(r["zone"], r["quarantined_option"], r["rule"]) for r in aside] == [
        ("us-central1-a", "on-demand", R_NOT_SOLD), ("us-east4-a", "on-demand", R_NOT_SOLD),
        ("us-east4-b", "on-demand", R_NOT_SOLD)]
    # The set-aside rows round-trip through the quarantine file format.
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*SNAPSHOT_COLUMNS, *QUARANTINE_COLUMNS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(aside)
    parsed = parse_quarantine(buf.getvalue(), facts)
    assert [(q.offer.zone, q.option, q.rule, q.usd_per_hour) for q in parsed] == [
        ("us-central1-a", "on-demand", R_NOT_SOLD, 11.0), ("us-east4-a", "on-demand", R_NOT_SOLD, 11.0),
        ("us-east4-b", "on-demand", R_NOT_SOLD, 11.0)]


def test_the_bundled_snapshot_was_built_through_the_gate(facts) -> None:
    meta = json.loads((ROOT / "arbitrage" / "data" / "snapshot.json").read_text(encoding="utf-8"))
    if "quality_gate" not in meta:
        pytest.skip("snapshot.json predates the quality gate: rebuild it with scripts/build_snapshot.py")
    result = gate(load_snapshot(facts), load_rules(facts))
    assert result.quarantined == [], result.quarantined[:3]
    assert len(load_quarantine(facts)) == sum(meta["quality_gate"]["quarantined"].values())


def test_load_quarantine_without_a_file_is_empty(facts, monkeypatch: pytest.MonkeyPatch) -> None:
    if (Path(ROOT) / "arbitrage" / "data" / "snapshot_quarantine.csv").is_file():
        assert all(q.reason and q.rule for q in load_quarantine(facts))
    else:
        assert load_quarantine(facts) == []

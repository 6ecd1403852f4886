"""The egress rule: classifying a transfer and pricing it from cumulative tiers, shared by cost model and FOCUS."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_offer, make_spec

from arbitrage.costmodel import Placement, estimate
from arbitrage.egress import EGRESS_PATHS, EgressTier, egress_path, egress_usd
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
    assert cost.egress_in_usd == pytest.approx(100 * 0.12)

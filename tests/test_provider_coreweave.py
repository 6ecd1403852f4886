"""CoreWeave adapter: its published list (bundled) or the user's own price file, as snapshot-labelled offers."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, fetch_ctx

from providers import coreweave
from providers.base import Adapter, FetchContext, ProviderError
from providers.registry import get_adapter

FIXTURES = Path(__file__).parent / "fixtures" / "coreweave"
PUBLISHED = ROOT / "data" / "price-sources" / "coreweave.csv"
HEADER = ("provider,region,zone,instance_type,accelerator,gpus_per_node,gpu_memory_gb,vcpus,ram_gb,"
          "on_demand_usd_per_hour,spot_usd_per_hour,source,as_of")


def ctx(**env: str) -> FetchContext:
    return fetch_ctx("coreweave", env=env)


def fetch(c: FetchContext) -> list:
    return asyncio.run(coreweave.ADAPTER.fetch(c))


def price_file(tmp_path: Path, *rows: str, header: str = HEADER) -> FetchContext:
    path = tmp_path / "prices.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return ctx(GPUARB_COREWEAVE_PRICES=str(path))


def test_default_is_the_published_list_with_its_own_date_and_page() -> None:
    offers = fetch(ctx())
    with PUBLISHED.open(newline="", encoding="utf-8") as fh:
        published = list(csv.DictReader(fh))
    # Every row of the cited list, nothing else: a stale bundled snapshot fails here.
    assert sorted((o.region, o.zone, o.instance_type, o.accelerator, o.on_demand_usd_per_hour, o.spot_usd_per_hour,
                   o.as_of) for o in offers) == sorted(
        (r["region"], r["zone"], r["instance_type"], r["accelerator"], float(r["on_demand_usd_per_hour"]),
         float(r["spot_usd_per_hour"]), r["as_of"]) for r in published)
    assert all(o.provider == "coreweave" and o.source == "snapshot" for o in offers)
    assert all(o.price_ref.startswith(coreweave.PUBLISHED_PAGE) for o in offers)
    h100 = next(o for o in offers if o.instance_type == "gd-8xh100ib-i128")
    assert (h100.gpus_per_node, h100.gpu_memory_gb, h100.interconnect, h100.interconnect_gbps) == (
        8, 80.0, "infiniband", 3200.0)  # fabric from interconnect.csv, as for the snapshot


def test_adapter_protocol_and_registration() -> None:
    adapter = get_adapter("coreweave")
    assert adapter is coreweave.ADAPTER and isinstance(adapter, Adapter)
    assert adapter.ttl_seconds == 0 and adapter.has_credentials(ctx()) is True
    assert adapter.credentials_hint.startswith("none needed")  # `gpuarb providers` shows "not needed"


def test_user_price_file_replaces_the_bundled_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coreweave, "bundled_offers", lambda _ctx: pytest.fail("the bundled list is not read"))
    offers = {o.instance_type: o for o in fetch(ctx(GPUARB_COREWEAVE_PRICES=str(FIXTURES / "contract_prices.csv")))}
    assert set(offers) == {"gd-8xh100ib-i128", "b200-8x"}  # GB300: a GPU the fact tables do not know
    contract = offers["gd-8xh100ib-i128"]
    assert (contract.region, contract.zone, contract.on_demand_usd_per_hour, contract.spot_usd_per_hour) == (
        "us-east-04", "us-east-04a", 39.5, None)
    assert (contract.source, contract.as_of) == ("snapshot", "2026-11-02")
    assert contract.price_ref.startswith("Example Corp / CoreWeave order form")
    assert (offers["b200-8x"].spot_usd_per_hour, offers["b200-8x"].as_of) == (30.0, "2026-11-20")


@pytest.mark.parametrize(("rows", "header", "needle"), [
    (["aws,us-east-1,,p5.48xlarge,H100,8,80,192,2048,55,,src,2026-11-01"], HEADER,
     "prices.csv:2: provider is 'aws', expected 'coreweave'"),
    (["coreweave,r,,t,H100,8,80,128,2048,40,,,2026-11-01"], HEADER, "prices.csv:2: every hand-built row needs source"),
    (["coreweave,r,,t,H100,8,80,128,2048,,,src,2026-11-01"], HEADER, "prices.csv:2: neither on-demand nor spot"),
    (["coreweave,r,,t,H100,8,80,128,2048,cheap,,src,2026-11-01"], HEADER, "prices.csv:2: could not convert"),
    (["coreweave,r,,t,H100,8,eighty,128,2048,40,,src,2026-11-01"], HEADER, "prices.csv: could not convert"),
    (["coreweave,r,,t,H100,8"], HEADER, "prices.csv:2: fewer fields than the header"),
    ([], HEADER, "prices.csv: no price rows"),
    (["coreweave,r,,t,H100,8,80,128,2048,40,,src"], HEADER.removesuffix(",as_of"), "missing column as_of"),
])
def test_a_bad_price_file_is_one_line_naming_file_and_line(tmp_path: Path, rows: list[str], header: str,
                                                          needle: str) -> None:
    with pytest.raises(ProviderError) as info:
        fetch(price_file(tmp_path, *rows, header=header))
    message = str(info.value)
    assert message.startswith("coreweave: ") and needle in message and "\n" not in message


def test_a_missing_price_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match=r"GPUARB_COREWEAVE_PRICES=.*gone\.csv: cannot read"):
        fetch(ctx(GPUARB_COREWEAVE_PRICES=str(tmp_path / "gone.csv")))


def test_plan_provenance_stays_snapshot_with_the_list_date(tmp_path: Path) -> None:
    from providers.fetch import collect_offers
    from providers.snapshot import load_snapshot

    c = fetch_ctx("coreweave", env={"GPUARB_CACHE_DIR": str(tmp_path)})
    offers, (status,) = collect_offers(load_snapshot(c.facts), "auto", c, ["coreweave"])
    assert offers and {(o.source, o.as_of) for o in offers} == {("snapshot", "2026-09-20")}
    assert status.level == "ok" and status.offers == len(offers)
    assert not list(tmp_path.iterdir())  # never cached: a cached copy would be relabelled 'cache'


def test_gpuarb_providers_no_longer_says_snapshot_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from arbitrage.cli import app

    monkeypatch.setenv("GPUARB_CACHE_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["providers", "--format", "json"])
    assert result.exit_code == 0, result.output
    row: dict[str, Any] = next(r for r in json.loads(result.output)["providers"] if r["provider"] == "coreweave")
    assert row["adapter"] is True and row["credentials"] is True and row["snapshot_offers"] > 0

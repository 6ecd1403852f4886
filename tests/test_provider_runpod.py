"""RunPod GraphQL adapter against a loopback server answering the catalogue and per-count stock queries."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import fetch_ctx, slow_response
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from providers.base import FetchContext, MissingCredentials, ProviderError
from providers.runpod import ADAPTER, GPU_COUNTS, PATH, community_region, gpu_from_type, is_community, stock_alias

FIXTURES = Path(__file__).parent / "fixtures" / "runpod"
KEY = "rpa_TESTKEY"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def ctx(server: HTTPServer | None = None, **kw: Any) -> FetchContext:
    return fetch_ctx("runpod", server, **{"env": {"RUNPOD_API_KEY": KEY}, **kw})


def fetch(c: FetchContext):
    return asyncio.run(ADAPTER.fetch(c))


class FakeRunPod:
    """Answers like api.runpod.io/graphql: catalogue query, or a stock query per GPU count."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.overrides: dict[str, dict[str, Any]] = {}

    def __call__(self, request: Request) -> Response:
        assert request.method == "POST" and request.args.get("api_key") == KEY
        payload = json.loads(request.get_data())
        self.requests.append(payload)
        if "GpuarbCatalog" in payload["query"]:
            name = "catalog.json"
        else:
            counts = {v["gpuCount"] for v in payload["variables"].values()}
            assert len(counts) == 1
            name = f"stock_gpucount_{counts.pop()}.json"
        answer = self.overrides.get(name) or fixture(name)
        return Response(json.dumps(answer), status=200, content_type="application/json")


@pytest.fixture
def runpod(httpserver: HTTPServer) -> FakeRunPod:
    fake = FakeRunPod()
    httpserver.expect_request(PATH, method="POST").respond_with_handler(fake)
    return fake


def test_secure_per_data_centre_and_community_offers(httpserver: HTTPServer, runpod: FakeRunPod) -> None:
    offers = {(o.region, o.instance_type): o for o in fetch(ctx(httpserver))}
    assert set(offers) == {
        ("us-tx-3", "1x NVIDIA H100 80GB HBM3"), ("us-tx-3", "1x NVIDIA H100 PCIe"),
        ("us-tx-3", "1x NVIDIA A100-SXM4-80GB"), ("eu-ro-1", "1x NVIDIA H100 80GB HBM3"),
        ("eu-ro-1", "1x NVIDIA H100 NVL"), ("us-ks-2", "1x NVIDIA B200"),
        ("community-us", "1x NVIDIA H100 80GB HBM3"), ("community-us", "1x NVIDIA H100 PCIe"),
        ("community-se", "1x NVIDIA H100 PCIe"),
        ("us-tx-3", "2x NVIDIA H100 80GB HBM3"), ("eu-ro-1", "2x NVIDIA H100 NVL"),
        ("community-us", "2x NVIDIA H100 80GB HBM3"), ("us-tx-3", "4x NVIDIA H100 80GB HBM3"),
        ("us-tx-3", "8x NVIDIA H100 80GB HBM3"), ("us-ks-2", "8x NVIDIA B200"),
    }  # RTX 4090 / MI300X unknown; H100 NVL not sold on Community Cloud; null stockStatus = no stock
    # Community Cloud used to be one made-up region 'community': now per host country, each a real place
    assert {(o.region, o.country, o.continent) for o in offers.values() if o.region.startswith("community")} == {
        ("community-us", "US", "north-america"), ("community-se", "SE", "europe")}
    # Secure Cloud data centres get their place from the region table
    assert (offers[("eu-ro-1", "1x NVIDIA H100 NVL")].country, offers[("eu-ro-1", "1x NVIDIA H100 NVL")].continent,
            offers[("us-ks-2", "1x NVIDIA B200")].country) == ("RO", "europe", "US")
    h100x8 = offers[("us-tx-3", "8x NVIDIA H100 80GB HBM3")]
    assert h100x8.on_demand_usd_per_hour == 23.92 and h100x8.spot_usd_per_hour == 14.0  # per-GPU x 8
    assert (h100x8.accelerator, h100x8.gpu_model, h100x8.gpus_per_node) == ("H100", "H100", 8)
    assert h100x8.interconnect == "none" and h100x8.source == "live" and "Secure Cloud" in h100x8.price_ref
    assert (h100x8.vcpus, h100x8.ram_gb) == (None, None)
    community = offers[("community-us", "2x NVIDIA H100 80GB HBM3")]
    assert community.on_demand_usd_per_hour == 5.38 and community.spot_usd_per_hour is None
    pcie = offers[("community-se", "1x NVIDIA H100 PCIe")]
    assert "Community Cloud hosts in SE" in pcie.price_ref
    assert (pcie.gpu_model, pcie.on_demand_usd_per_hour, pcie.spot_usd_per_hour) == ("H100-PCIE", 1.99, 1.05)
    nvl = offers[("eu-ro-1", "2x NVIDIA H100 NVL")]
    assert (nvl.accelerator, nvl.gpu_model, nvl.gpu_memory_gb, nvl.on_demand_usd_per_hour) == (
        "H100", "H100-NVL", 94, 5.58)
    assert offers[("us-tx-3", "1x NVIDIA A100-SXM4-80GB")].accelerator == "A100-80GB"
    b200 = offers[("us-ks-2", "8x NVIDIA B200")]
    assert b200.on_demand_usd_per_hour == 47.92 and b200.spot_usd_per_hour is None

    # One catalogue query, then one stock query per GPU count over the listed data centres only.
    assert len(runpod.requests) == 1 + len(GPU_COUNTS)
    stock = runpod.requests[1]["variables"]
    assert set(stock) == {"dc_US_TX_3", "dc_EU_RO_1", "dc_US_KS_2", "cc_SE", "cc_US"}  # the null country is skipped
    assert stock["dc_US_TX_3"]["secureCloud"] is True and stock["dc_US_TX_3"]["dataCenterId"] == "US-TX-3"
    assert stock["cc_SE"] == {"gpuCount": stock["cc_SE"]["gpuCount"], "secureCloud": False, "countryCode": "SE"}
    assert sorted(r["variables"]["cc_US"]["gpuCount"] for r in runpod.requests[1:]) == list(GPU_COUNTS)
    assert "countryCodes" in runpod.requests[0]["query"]
    assert "lowestPrice(input: $dc_US_TX_3)" in runpod.requests[1]["query"]


def test_region_convention_matches_the_snapshot_source() -> None:
    import csv

    rows = list(csv.DictReader((Path(__file__).parents[1] / "data" / "price-sources" / "runpod.csv").open()))
    assert "us-tx-3" in {r["region"] for r in rows} and "community" not in {r["region"] for r in rows}
    assert all(r["instance_type"].split("x ", 1)[0].isdigit() for r in rows)
    assert community_region("SE") == "community-se" and is_community("community-se") and not is_community("eu-se-1")


@pytest.mark.parametrize(("gpu_id", "display", "memory", "expected"), [
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 80, "H100"),
    ("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, "A100-80GB"),
    ("NVIDIA A100-SXM4-80GB", "A100 SXM", 80, "A100-80GB"),
    ("NVIDIA H200", "H200 SXM", 141, "H200"),
    ("NVIDIA RTX A6000", "RTX A6000", 48, "A6000"),
    ("NVIDIA L4", "L4", 24, "L4"),
    ("NVIDIA L40S", "L40S", 48, "L40S"),
    ("NVIDIA L40", "L40", 48, None),
    ("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada", 48, None),
    ("Tesla V100-SXM2-16GB", "V100 SXM2", 16, "V100"),
    ("AMD Instinct MI300X OAM", "MI300X", 192, None),
])
def test_gpu_type_names(gpu_id: str, display: str, memory: int, expected: str | None) -> None:
    assert gpu_from_type(ctx(), gpu_id, display, memory) == expected


def test_aliases_are_valid_and_unique() -> None:
    taken: set[str] = set()
    assert stock_alias("US-TX-3", taken) == "dc_US_TX_3"
    assert stock_alias("US_TX_3", taken) == "dc_US_TX_3_"
    assert stock_alias("SE", taken, "cc_") == "cc_SE"


def test_graphql_errors_in_a_200_answer(httpserver: HTTPServer, runpod: FakeRunPod) -> None:
    runpod.overrides["catalog.json"] = fixture("error_validation.json")
    with pytest.raises(ProviderError) as info:
        fetch(ctx(httpserver))
    assert str(info.value).startswith("runpod: GraphQL error: Cannot query field") and "\n" not in str(info.value)


def test_graphql_error_in_a_stock_query(httpserver: HTTPServer, runpod: FakeRunPod) -> None:
    runpod.overrides["stock_gpucount_4.json"] = {"data": None, "errors": [{"message": "Something went wrong"},
                                                                          {"message": "again"}]}
    with pytest.raises(ProviderError, match=r"GraphQL error: Something went wrong \(\+1 more\)"):
        fetch(ctx(httpserver))


def test_missing_credentials() -> None:
    assert not ADAPTER.has_credentials(ctx(env={})) and ADAPTER.has_credentials(ctx())
    with pytest.raises(MissingCredentials, match="RUNPOD_API_KEY"):
        fetch(ctx(env={}))


def test_429_then_success(httpserver: HTTPServer) -> None:
    fake = FakeRunPod()
    calls: list[int] = []

    def handler(request: Request) -> Response:
        calls.append(1)
        if len(calls) == 1:
            return Response("slow down", status=429, headers={"Retry-After": "0"})
        return fake(request)

    httpserver.expect_request(PATH, method="POST").respond_with_handler(handler)
    assert len(fetch(ctx(httpserver))) == 15 and len(calls) == 2 + len(GPU_COUNTS)


def non_numeric_price() -> dict[str, Any]:
    catalog = fixture("catalog.json")
    catalog["data"]["gpuTypes"][0]["securePrice"] = "2.99"
    return catalog


@pytest.mark.parametrize(("respond", "needle"), [
    (lambda s: s.expect_request(PATH).respond_with_data("oops", status=500), "HTTP 500"),
    (lambda s: s.expect_request(PATH).respond_with_data("{not json", content_type="application/json"),
     "invalid JSON"),
    (lambda s: s.expect_request(PATH).respond_with_data("Unauthorized", status=401), "check the API key"),
    (lambda s: s.expect_request(PATH).respond_with_json({"data": {"gpuTypes": []}}), "lacks 'dataCenters'"),
    (lambda s: s.expect_request(PATH).respond_with_json([]), "not a JSON object"),
    (lambda s: s.expect_request(PATH).respond_with_json({"data": None}), "no 'data' object"),
])
def test_failures_raise_one_line_provider_errors(httpserver: HTTPServer, respond, needle: str) -> None:
    respond(httpserver)
    with pytest.raises(ProviderError) as info:
        fetch(ctx(httpserver))
    message = str(info.value)
    assert needle in message and message.startswith("runpod: ") and "\n" not in message and KEY not in message


def test_non_numeric_price_and_missing_stock_alias(httpserver: HTTPServer, runpod: FakeRunPod) -> None:
    runpod.overrides["catalog.json"] = non_numeric_price()
    with pytest.raises(ProviderError, match="non-numeric securePrice"):
        fetch(ctx(httpserver))
    runpod.overrides.clear()
    stock = fixture("stock_gpucount_2.json")
    del stock["data"]["cc_US"]
    runpod.overrides["stock_gpucount_2.json"] = stock
    with pytest.raises(ProviderError, match="lacks the 'cc_US' list"):
        fetch(ctx(httpserver))


def test_timeout(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_handler(slow_response())
    with pytest.raises(ProviderError, match="timed out"):
        fetch(ctx(httpserver, timeout_s=0.1, retries=1))

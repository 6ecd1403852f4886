"""Lambda Cloud adapter against a loopback server serving the documented instance-types response."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import fetch_ctx, slow_response
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from providers.base import FetchContext, MissingCredentials, ProviderError
from providers.lambda_cloud import ADAPTER, DEFAULT_URL, PATH, NoCapacity, gpu_from_text

FIXTURES = Path(__file__).parent / "fixtures" / "lambda"
KEY = "secret_test-key.abc"
AUTH = {"Authorization": f"Bearer {KEY}"}


def body(name: str = "instance_types.json") -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def ctx(server: HTTPServer | None = None, **kw: Any) -> FetchContext:
    return fetch_ctx("lambda", server, **{"env": {"LAMBDA_API_KEY": KEY}, **kw})


def fetch(c: FetchContext):
    return asyncio.run(ADAPTER.fetch(c))


def test_one_offer_per_type_and_region_with_capacity(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="GET", headers=AUTH).respond_with_json(body())
    offers = {(o.instance_type, o.region): o for o in fetch(ctx(httpserver))}
    assert set(offers) == {
        ("gpu_1x_h100_pcie", "us-west-3"), ("gpu_8x_h100_sxm5", "us-east-1"), ("gpu_8x_h100_sxm5", "us-south-2"),
        ("gpu_8x_a100_80gb_sxm4", "us-midwest-1"), ("gpu_1x_a100_sxm4", "asia-northeast-1"),
        ("gpu_1x_rtx6000", "us-south-1"), ("gpu_1x_a6000", "us-south-1"), ("gpu_1x_gh200", "us-east-3"),
    }  # no B200 (no capacity anywhere), no MI300X (unknown GPU), no CPU instance
    h100 = offers[("gpu_8x_h100_sxm5", "us-east-1")]
    assert h100.on_demand_usd_per_hour == 23.92 and h100.spot_usd_per_hour is None
    assert (h100.accelerator, h100.gpu_model, h100.gpus_per_node) == ("H100", "H100", 8)
    assert (h100.vcpus, h100.ram_gb, h100.gpu_memory_gb) == (208, 1800, 80)
    assert h100.source == "live" and h100.as_of.startswith("2026-11-23")
    assert "price_cents_per_hour=2392" in h100.price_ref
    assert h100.interconnect == "ethernet"  # Lambda On-Demand: no InfiniBand between instances (interconnect.csv)
    pcie = offers[("gpu_1x_h100_pcie", "us-west-3")]
    assert (pcie.accelerator, pcie.gpu_model, pcie.on_demand_usd_per_hour) == ("H100", "H100-PCIE", 2.49)
    assert offers[("gpu_8x_a100_80gb_sxm4", "us-midwest-1")].accelerator == "A100-80GB"
    assert offers[("gpu_1x_a100_sxm4", "asia-northeast-1")].accelerator == "A100"
    assert offers[("gpu_1x_rtx6000", "us-south-1")].accelerator == "RTX6000"
    assert offers[("gpu_1x_a6000", "us-south-1")].accelerator == "A6000"
    assert offers[("gpu_1x_gh200", "us-east-3")].gpu_memory_gb == 96


@pytest.mark.parametrize(("texts", "expected"), [
    (("A100 (40 GB SXM4)",), ("A100", 40.0)),
    (("A100 (80 GB SXM4)",), ("A100-80GB", 80.0)),
    (("NVIDIA A100 (80 GB)",), ("A100-80GB", 80.0)),
    (("", "", "gpu_8x_a100_80gb_sxm4"), ("A100-80GB", 80.0)),
    (("H100 (80 GB SXM5)",), ("H100", 80.0)),
    (("Quadro RTX 6000 (24 GB)",), ("RTX6000", 24.0)),
    (("Tesla V100 (16 GB)",), ("V100", 16.0)),
    (("B200 (180 GB SXM6)",), ("B200", 180.0)),
    (("A10 (24 GB PCIe)",), ("A10", 24.0)),
    (("RTX 6000 Ada (48 GB)",), None),
    (("MI300X (192 GB)",), None),
])
def test_gpu_wording(texts: tuple[str, ...], expected) -> None:
    assert gpu_from_text(ctx(), *texts) == expected


def test_documented_host_is_the_default() -> None:
    assert DEFAULT_URL == "https://cloud.lambda.ai"


def test_missing_credentials() -> None:
    c = ctx(env={})
    assert not ADAPTER.has_credentials(c) and not ADAPTER.has_credentials(ctx(env={"LAMBDA_API_KEY": "  "}))
    assert ADAPTER.has_credentials(ctx())
    with pytest.raises(MissingCredentials, match="LAMBDA_API_KEY"):
        fetch(c)


def test_429_then_success(httpserver: HTTPServer) -> None:
    calls: list[float] = []

    def handler(request: Request) -> Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return Response("slow down", status=429, headers={"Retry-After": "0"})
        return Response(json.dumps(body()), status=200, content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(handler)
    assert len(fetch(ctx(httpserver))) == 8 and len(calls) == 2


def broken_price() -> dict[str, Any]:
    data = body()
    data["data"]["gpu_1x_h100_pcie"]["instance_type"]["price_cents_per_hour"] = "249"
    return data


def no_regions() -> dict[str, Any]:
    data = body()
    del data["data"]["gpu_8x_h100_sxm5"]["regions_with_capacity_available"]
    return data


@pytest.mark.parametrize(("respond", "needle"), [
    (lambda s: s.expect_request(PATH).respond_with_data("oops", status=500), "HTTP 500"),
    (lambda s: s.expect_request(PATH).respond_with_data("{not json", content_type="application/json"),
     "invalid JSON"),
    (lambda s: s.expect_request(PATH).respond_with_json(body("error_unauthorized.json"), status=401),
     "check the API key"),
    (lambda s: s.expect_request(PATH).respond_with_json(body("error_unauthorized.json")), "global/invalid-api-key"),
    (lambda s: s.expect_request(PATH).respond_with_json({"data": []}), "no 'data' object"),
    (lambda s: s.expect_request(PATH).respond_with_json(broken_price()), "non-numeric price_cents_per_hour"),
    (lambda s: s.expect_request(PATH).respond_with_json(no_regions()), "regions_with_capacity_available"),
])
def test_failures_raise_one_line_provider_errors(httpserver: HTTPServer, respond, needle: str) -> None:
    respond(httpserver)
    with pytest.raises(ProviderError) as info:
        fetch(ctx(httpserver))
    message = str(info.value)
    assert needle in message and message.startswith("lambda: ") and "\n" not in message and KEY not in message


def test_timeout(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_handler(slow_response())
    with pytest.raises(ProviderError, match="timed out"):
        fetch(ctx(httpserver, timeout_s=0.1, retries=1))


def sold_out() -> dict[str, Any]:
    data = body()
    for item in data["data"].values():
        item["regions_with_capacity_available"] = []
    return data


def test_sold_out_everywhere_is_said_so_not_an_empty_answer(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(sold_out())
    with pytest.raises(NoCapacity) as info:
        fetch(ctx(httpserver))
    message = str(info.value)
    # Eight GPU types priced (the CPU type and the unknown MI300X do not count), none launchable now.
    assert message.startswith("lambda: sold out: none of the 8 GPU instance types it prices has capacity in any "
                              "region now (gpu_1x_a100_sxm4, gpu_1x_a6000, gpu_1x_gh200, ...)")
    assert "\n" not in message
    assert isinstance(info.value, ProviderError)


def test_an_answer_without_any_gpu_type_is_not_a_sell_out(httpserver: HTTPServer) -> None:
    data = body()
    data["data"] = {k: v for k, v in data["data"].items() if v["instance_type"]["specs"]["gpus"] == 0}
    httpserver.expect_request(PATH).respond_with_json(data)
    assert fetch(ctx(httpserver)) == []  # nothing priced at all: fetch.py reports "returned no GPU offers"


def test_sold_out_reaches_the_user_as_a_warning_naming_the_sell_out(httpserver: HTTPServer, tmp_path: Path) -> None:
    from providers.fetch import collect_offers

    httpserver.expect_request(PATH).respond_with_json(sold_out())
    c = ctx(httpserver, env={"LAMBDA_API_KEY": KEY, "GPUARB_CACHE_DIR": str(tmp_path)})
    offers, (status,) = collect_offers([], "live", c, ["lambda"])
    assert offers == [] and status.level == "warning"
    assert "sold out: none of the 8 GPU instance types it prices has capacity" in status.message


def test_every_offer_carries_its_regions_place(httpserver: HTTPServer) -> None:
    """Country and continent come from the region table (arbitrage/geo.py) for every live offer."""
    httpserver.expect_request(PATH, method="GET", headers=AUTH).respond_with_json(body())
    places = {o.region: (o.country, o.continent) for o in fetch(ctx(httpserver))}
    assert places["asia-northeast-1"] == ("JP", "asia") and places["us-east-1"] == ("US", "north-america")
    assert all(continent for _country, continent in places.values())

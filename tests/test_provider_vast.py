"""Vast.ai adapter against a loopback server serving a documented-shape offer search answer."""

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
from providers.vast import ADAPTER, PATH, coarse_region, gpu_from_name, search_query

FIXTURES = Path(__file__).parent / "fixtures" / "vast"
KEY = "vast-test-key-0123"
AUTH = {"Authorization": f"Bearer {KEY}"}


def bundles() -> dict[str, Any]:
    return json.loads((FIXTURES / "bundles.json").read_text())


def ctx(server: HTTPServer | None = None, **kw: Any) -> FetchContext:
    return fetch_ctx("vast", server, **{"env": {"VAST_API_KEY": KEY}, **kw})


def fetch(c: FetchContext):
    return asyncio.run(ADAPTER.fetch(c))


def test_medians_per_gpu_model_count_and_geography(httpserver: HTTPServer) -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: Request) -> Response:
        seen.append(json.loads(request.args["q"]))
        return Response(json.dumps(bundles()), status=200, content_type="application/json")

    httpserver.expect_request(PATH, method="GET", headers=AUTH).respond_with_handler(handler)
    offers = {(o.instance_type, o.region): o for o in fetch(ctx(httpserver))}
    assert seen == [search_query()]
    assert seen[0]["type"] == "on-demand" and seen[0]["verified"] == seen[0]["rentable"] == {"eq": True}
    assert set(offers) == {
        ("1x-H100_SXM", "us-any"), ("1x-H100_SXM", "eu-any"), ("1x-H100_SXM", "ca-any"), ("1x-H100_SXM", "unknown"),
        ("8x-H100_SXM", "us-any"), ("1x-A100_SXM4-40GB", "us-any"), ("1x-A100_SXM4-80GB", "us-any"),
        ("2x-A100_PCIE-80GB", "eu-any"), ("1x-H100_NVL", "asia-any"), ("1x-H100_PCIE", "eu-any"),
        ("1x-H200", "us-any"), ("1x-Q_RTX_6000", "ca-any"),
    }  # RTX 4090 is not a GPU we cost; the listing without dph_total is skipped
    us = offers[("1x-H100_SXM", "us-any")]
    assert us.on_demand_usd_per_hour == 2.5 and us.spot_usd_per_hour == 1.2  # medians of 3 hosts
    assert (us.accelerator, us.gpus_per_node, us.gpu_memory_gb, us.interconnect) == ("H100", 1, 80, "none")
    assert us.source == "live" and "median dph_total of 3" in us.price_ref and (us.vcpus, us.ram_gb) == (None, None)
    eight = offers[("8x-H100_SXM", "us-any")]
    assert eight.on_demand_usd_per_hour == 19.0 and eight.spot_usd_per_hour == 9.0  # a zero bid is not a price
    assert offers[("1x-H100_SXM", "unknown")].spot_usd_per_hour is None
    a40 = offers[("1x-A100_SXM4-40GB", "us-any")]
    assert (a40.accelerator, a40.on_demand_usd_per_hour, a40.spot_usd_per_hour) == ("A100", 0.75, 0.4)
    assert offers[("1x-A100_SXM4-80GB", "us-any")].accelerator == "A100-80GB"
    nvl = offers[("1x-H100_NVL", "asia-any")]
    assert (nvl.accelerator, nvl.gpu_model, nvl.gpu_memory_gb) == ("H100", "H100-NVL", 94)
    assert offers[("1x-H100_PCIE", "eu-any")].gpu_model == "H100-PCIE"
    assert offers[("1x-H200", "us-any")].gpu_memory_gb == 141
    assert offers[("1x-Q_RTX_6000", "ca-any")].accelerator == "RTX6000"


@pytest.mark.parametrize(("geo", "region"), [
    ("Texas, US", "us-any"), ("US", "us-any"), ("Bavaria, DE", "eu-any"), ("Slovenia, SI", "eu-any"),
    ("England, GB", "eu-any"), ("Tokyo, JP", "asia-any"), ("Quebec, CA", "ca-any"),
    ("New South Wales, AU", "oceania-any"),
    ("Sao Paulo, BR", "latam-any"), ("Gauteng, ZA", "africa-any"), (None, "unknown"), ("", "unknown"),
    ("Somewhere", "unknown"),
])
def test_coarse_regions(geo, region: str) -> None:
    assert coarse_region(geo) == region


def test_region_names_match_the_snapshot_source() -> None:
    import csv

    rows = list(csv.DictReader((Path(__file__).parents[1] / "data" / "price-sources" / "vast.csv").open()))
    assert {r["region"] for r in rows} <= {"us-any", "eu-any", "asia-any"}
    assert {coarse_region(g) for g in ("Texas, US", "Bavaria, DE", "Tokyo, JP")} == {"us-any", "eu-any", "asia-any"}


@pytest.mark.parametrize(("name", "memory", "expected"), [
    ("H100 SXM", 79.6, "H100"), ("H100 NVL", 93.6, "H100"), ("A100 SXM4", 40, "A100"), ("A100 SXM4", 80, "A100-80GB"),
    ("A100X", 80, "A100-80GB"), ("A100 PCIE", 80, "A100-80GB"), ("RTX A6000", 48, "A6000"), ("Tesla V100", 16, "V100"),
    ("Tesla T4", 15, "T4"), ("L40S", 45, "L40S"), ("L40", 45, None), ("RTX 6000Ada", 48, None), ("RTX 4090", 24, None),
    ("Q RTX 6000", 24, "RTX6000"), ("GH200 SXM", 96, "GH200"), ("B200", 179, "B200"),
])
def test_gpu_names(name: str, memory: float, expected: str | None) -> None:
    assert gpu_from_name(ctx(), name, memory) == expected


def test_missing_credentials() -> None:
    assert not ADAPTER.has_credentials(ctx(env={})) and ADAPTER.has_credentials(ctx())
    with pytest.raises(MissingCredentials, match="VAST_API_KEY"):
        fetch(ctx(env={}))


def test_429_then_success(httpserver: HTTPServer) -> None:
    calls: list[int] = []

    def handler(request: Request) -> Response:
        calls.append(1)
        if len(calls) == 1:
            return Response("slow down", status=429, headers={"Retry-After": "0"})
        return Response(json.dumps(bundles()), status=200, content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(handler)
    assert len(fetch(ctx(httpserver))) == 12 and len(calls) == 2


def test_a_full_answer_would_bias_the_medians(httpserver: HTTPServer, monkeypatch) -> None:
    import providers.vast as vast

    monkeypatch.setattr(vast, "MAX_OFFERS", 5)
    httpserver.expect_request(PATH).respond_with_json(bundles())
    with pytest.raises(ProviderError, match="5-offer limit"):
        fetch(ctx(httpserver))


@pytest.mark.parametrize(("respond", "needle"), [
    (lambda s: s.expect_request(PATH).respond_with_data("oops", status=500), "HTTP 500"),
    (lambda s: s.expect_request(PATH).respond_with_data("{not json", content_type="application/json"),
     "invalid JSON"),
    (lambda s: s.expect_request(PATH).respond_with_json({"success": False, "error": "auth"}, status=401),
     "check the API key"),
    (lambda s: s.expect_request(PATH).respond_with_json({"success": True}), "no 'offers' list"),
    (lambda s: s.expect_request(PATH).respond_with_json({"offers": {"id": 1}}), "no 'offers' list"),
])
def test_failures_raise_one_line_provider_errors(httpserver: HTTPServer, respond, needle: str) -> None:
    respond(httpserver)
    with pytest.raises(ProviderError) as info:
        fetch(ctx(httpserver))
    message = str(info.value)
    assert needle in message and message.startswith("vast: ") and "\n" not in message and KEY not in message


def test_timeout(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_handler(slow_response())
    with pytest.raises(ProviderError, match="timed out"):
        fetch(ctx(httpserver, timeout_s=0.1, retries=1))

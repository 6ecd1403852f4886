"""Vast.ai adapter against a loopback server answering filtered offer searches as the API does."""

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
from providers.vast import ADAPTER, PATH, VAST_GPU_NAMES, gpu_from_name, host_location, search_query

FIXTURES = Path(__file__).parent / "fixtures" / "vast"
KEY = "vast-test-key-0123"
AUTH = {"Authorization": f"Bearer {KEY}"}


def bundles() -> dict[str, Any]:
    return json.loads((FIXTURES / "bundles.json").read_text())


def ctx(server: HTTPServer | None = None, **kw: Any) -> FetchContext:
    return fetch_ctx("vast", server, **{"env": {"VAST_API_KEY": KEY}, **kw})


def fetch(c: FetchContext):
    return asyncio.run(ADAPTER.fetch(c))


class FakeVast:
    """Answers each offer search as the API does: the listings its gpu_name / num_gpus / rented filters select,
    cheapest dph_base first, at most `limit`."""

    def __init__(self, fail_first: int = 0) -> None:
        self.queries: list[dict[str, Any]] = []
        self.fail_first = fail_first

    def __call__(self, request: Request) -> Response:
        if self.fail_first:
            self.fail_first -= 1
            return Response("slow down", status=429, headers={"Retry-After": "0"})
        q = json.loads(request.args["q"])
        self.queries.append(q)
        names, counts = set(q["gpu_name"]["in"]), set(q["num_gpus"]["in"])
        found = [o for o in bundles()["offers"] if o.get("gpu_name") in names and o.get("num_gpus") in counts
                 and o.get("rented") is False]
        found.sort(key=lambda o: (o.get("dph_base") is None, o.get("dph_base") or 0))
        return Response(json.dumps({"offers": found[:q["limit"]]}), status=200, content_type="application/json")


def test_concrete_offers_per_gpu_count_and_host_location(httpserver: HTTPServer) -> None:
    """Used to be one median per coarse 'us-any' region, on-demand with storage and spot without."""
    fake = FakeVast()
    httpserver.expect_request(PATH, method="GET", headers=AUTH).respond_with_handler(fake)
    offers = fetch(ctx(httpserver))

    # one filtered search per GPU family, each asking for unrented, verified, rentable listings cheapest first
    assert len(fake.queries) == len(VAST_GPU_NAMES)
    assert sorted(tuple(q["gpu_name"]["in"]) for q in fake.queries) == sorted(VAST_GPU_NAMES.values())
    assert all(q == search_query(tuple(q["gpu_name"]["in"])) for q in fake.queries)
    h100_query = next(q for q in fake.queries if "H100 SXM" in q["gpu_name"]["in"])
    assert h100_query["rented"] == {"eq": False} and h100_query["verified"] == h100_query["rentable"] == {"eq": True}
    assert h100_query["num_gpus"] == {"in": [1, 2, 4, 8]} and h100_query["order"] == [["dph_base", "asc"]]

    groups: dict[tuple[str, str], list] = {}
    for o in offers:
        groups.setdefault((o.instance_type, o.region), []).append(o)
    assert set(groups) == {
        ("1x-H100_SXM", "us-texas"), ("1x-H100_SXM", "us-california"), ("1x-H100_SXM", "us-virginia"),
        ("1x-H100_SXM", "de"), ("1x-H100_SXM", "ca-quebec"), ("1x-H100_SXM", "unknown"),
        ("8x-H100_SXM", "us-texas"), ("8x-H100_SXM", "us-oregon"), ("1x-A100_SXM4-40GB", "us-georgia"),
        ("1x-A100_SXM4-40GB", "us-oklahoma"), ("1x-A100_SXM4-80GB", "us-texas"), ("2x-A100_PCIE-80GB", "no"),
        ("1x-H100_NVL", "jp"), ("1x-H100_PCIE", "se"), ("1x-H200", "us-utah"), ("1x-Q_RTX_6000", "ca-ontario"),
        ("1x-L4", "bg"), ("1x-Tesla_T4", "au"), ("8x-L40S", "nl"),
    }  # RTX 4090 is not a GPU we cost; the listing without dph_base is skipped; no made-up 'us-any' regions

    texas = groups[("1x-H100_SXM", "us-texas")]
    # four Texas listings (one says 'Dallas, Texas, US'), the three cheapest kept, each as itself
    assert [o.on_demand_usd_per_hour for o in texas] == [1.95, 2.037, 2.2]
    assert [o.spot_usd_per_hour for o in texas] == [0.95, 1.0, 1.1]
    assert [o.host_reliability for o in texas] == [0.962, 0.995, 0.999]
    assert {o.available for o in texas} == {4}
    assert [o.zone for o in texas] == ["offer-9000019", "offer-9000000", "offer-9000020"]
    first = texas[1]
    assert (first.country, first.continent, first.accelerator, first.gpus_per_node, first.gpu_memory_gb) == (
        "US", "north-america", "H100", 1, 80)
    assert first.interconnect == "none" and first.source == "live" and (first.vcpus, first.ram_gb) == (None, None)
    assert "offer 9000000 on machine 10000 in 'Texas, US'" in first.price_ref
    assert "on-demand = dph_base $2.037/h" in first.price_ref and "both without storage" in first.price_ref
    assert "$0.15/GB-month extra" in first.price_ref
    assert first.on_demand_usd_per_hour != 2.1  # dph_total (with storage) is not comparable with min_bid

    eight = groups[("8x-H100_SXM", "us-oregon")][0]
    assert eight.on_demand_usd_per_hour == 19.4 and eight.spot_usd_per_hour is None  # a zero bid is not a price
    unknown = groups[("1x-H100_SXM", "unknown")][0]
    assert (unknown.country, unknown.continent) == ("", "")  # no geolocation: no place, never guessed
    assert (groups[("1x-H100_SXM", "de")][0].country, groups[("1x-H100_SXM", "de")][0].continent) == (
        "DE", "europe")
    a40 = groups[("1x-A100_SXM4-40GB", "us-georgia")][0]
    assert (a40.accelerator, a40.on_demand_usd_per_hour, a40.spot_usd_per_hour) == ("A100", 0.679, 0.35)
    assert groups[("1x-A100_SXM4-80GB", "us-texas")][0].accelerator == "A100-80GB"
    nvl = groups[("1x-H100_NVL", "jp")][0]
    assert (nvl.accelerator, nvl.gpu_model, nvl.gpu_memory_gb, nvl.country) == ("H100", "H100-NVL", 94, "JP")
    assert groups[("1x-H100_PCIE", "se")][0].gpu_model == "H100-PCIE"
    assert groups[("1x-H200", "us-utah")][0].gpu_memory_gb == 141
    assert groups[("1x-Q_RTX_6000", "ca-ontario")][0].accelerator == "RTX6000"
    small = [groups[k][0] for k in (("1x-L4", "bg"), ("1x-Tesla_T4", "au"), ("8x-L40S", "nl"))]
    assert [(o.accelerator, o.country, o.continent) for o in small] == [
        ("L4", "BG", "europe"), ("T4", "AU", "oceania"), ("L40S", "NL", "europe")]


@pytest.mark.parametrize(("geo", "place"), [
    ("Texas, US", ("us-texas", "US", "north-america")), ("Dallas, Texas, US", ("us-texas", "US", "north-america")),
    ("US", ("us", "US", "north-america")), ("Bavaria, DE", ("de", "DE", "europe")),
    ("Bulgaria, BG", ("bg", "BG", "europe")), ("England, GB", ("gb", "GB", "europe")),
    ("Tokyo, JP", ("jp", "JP", "asia")), ("Yutakacho, Shinagawa District, Tokyo, JP", ("jp", "JP", "asia")),
    ("Quebec, CA", ("ca-quebec", "CA", "north-america")),
    ("New South Wales, AU", ("au", "AU", "oceania")), ("Sao Paulo, BR", ("br", "BR", "south-america")),
    (None, ("unknown", "", "")), ("", ("unknown", "", "")), ("Somewhere", ("unknown", "", "")),
])
def test_host_locations(geo, place: tuple[str, str, str]) -> None:
    assert host_location(geo) == place


def test_every_searched_name_is_a_gpu_gpuarb_costs() -> None:
    for family, names in VAST_GPU_NAMES.items():
        assert all(gpu_from_name(ctx(), n, 80 if family == "A100" else None) for n in names), family


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
    fake = FakeVast(fail_first=1)
    httpserver.expect_request(PATH).respond_with_handler(fake)
    offers = fetch(ctx(httpserver))
    assert len(fake.queries) == len(VAST_GPU_NAMES) and len(offers) == 21  # the throttled search was retried


def test_a_search_at_its_limit_keeps_the_cheapest(httpserver: HTTPServer, monkeypatch, caplog) -> None:
    import providers.vast as vast

    monkeypatch.setattr(vast, "SEARCH_LIMIT", 2)
    httpserver.expect_request(PATH).respond_with_handler(FakeVast())
    with caplog.at_level("INFO", logger="providers.vast"):
        offers = fetch(ctx(httpserver))
    # the two cheapest H100-family listings of all (an H100 PCIE and an H100 SXM host), none dearer
    assert sorted(o.on_demand_usd_per_hour for o in offers if o.accelerator == "H100") == [1.843, 1.95]
    assert "H100 search returned its 2-listing limit" in caplog.text


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

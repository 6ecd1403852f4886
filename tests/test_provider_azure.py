"""Azure Retail Prices adapter against a loopback server serving documented response shapes."""

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

from providers.azure import ADAPTER, PATH, odata_filter
from providers.base import FetchContext, ProviderError

FIXTURES = Path(__file__).parent / "fixtures" / "azure"


def page(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def ctx(server: HTTPServer, **kw: Any) -> FetchContext:
    return fetch_ctx("azure", server, **{"env": {}, **kw})


def fetch(c: FetchContext):
    return asyncio.run(ADAPTER.fetch(c))


def serve_two_pages(server: HTTPServer) -> None:
    server.expect_ordered_request(PATH, query_string={"$skip": "5", "api-version": "2023-01-01-preview",
                                                      "currencyCode": "USD",
                                                      "$filter": "serviceName eq 'Virtual Machines'"}
                                  ).respond_with_json(page("page2.json"))


def test_pages_filters_and_prices(httpserver: HTTPServer) -> None:
    first_query = {"api-version": "2023-01-01-preview", "currencyCode": "USD", "$filter": odata_filter()}
    httpserver.expect_ordered_request(PATH, query_string=first_query).respond_with_json(page("page1.json"))
    serve_two_pages(httpserver)
    offers = {(o.instance_type, o.region): o for o in fetch(ctx(httpserver))}
    assert set(offers) == {("Standard_ND96isr_H100_v5", "eastus"), ("Standard_NC24ads_A100_v4", "westus3"),
                           ("Standard_ND96asr_v4", "southcentralus")}
    nd = offers[("Standard_ND96isr_H100_v5", "eastus")]
    # Linux Consumption only: not the Windows product, not Low Priority, not the Reservation.
    assert nd.on_demand_usd_per_hour == 98.32 and nd.spot_usd_per_hour == 39.33
    assert nd.gpus_per_node == 8 and nd.accelerator == "H100" and nd.interconnect == "infiniband"
    assert nd.source == "live" and nd.as_of.startswith("2026-11-23")
    nc = offers[("Standard_NC24ads_A100_v4", "westus3")]
    assert nc.on_demand_usd_per_hour == 3.673  # the newest effectiveStartDate wins over the 2023 price
    assert nc.accelerator == "A100-80GB" and nc.spot_usd_per_hour == 0.404
    assert offers[("Standard_ND96asr_v4", "southcentralus")].spot_usd_per_hour is None


def test_skip_fallback_when_a_full_page_has_no_next_link(httpserver: HTTPServer, monkeypatch) -> None:
    import providers.azure as azure

    monkeypatch.setattr(azure, "PAGE_SIZE", 5)
    first = page("page1.json")
    first["NextPageLink"] = None
    httpserver.expect_ordered_request(PATH, query_string={"api-version": "2023-01-01-preview", "currencyCode": "USD",
                                                          "$filter": odata_filter()}).respond_with_json(first)
    httpserver.expect_ordered_request(PATH, query_string={"api-version": "2023-01-01-preview", "currencyCode": "USD",
                                                          "$filter": odata_filter(), "$skip": "5"}
                                      ).respond_with_json(page("page2.json"))
    assert len(fetch(ctx(httpserver))) == 3


def test_429_then_success_honours_retry_after(httpserver: HTTPServer) -> None:
    calls: list[float] = []

    def handler(request: Request) -> Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return Response("slow down", status=429, headers={"Retry-After": "0"})
        body = page("page2.json")
        return Response(json.dumps(body), status=200, content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(handler)
    assert len(fetch(ctx(httpserver))) == 2 and len(calls) == 2


@pytest.mark.parametrize(("respond", "needle"), [
    (lambda s: s.expect_request(PATH).respond_with_data("oops", status=500), "HTTP 500"),
    (lambda s: s.expect_request(PATH).respond_with_data("{not json", content_type="application/json"), "invalid JSON"),
    (lambda s: s.expect_request(PATH).respond_with_json({"Count": 0}), "no 'Items'"),
    (lambda s: s.expect_request(PATH).respond_with_json({"BillingCurrency": "EUR", "Items": []}), "EUR"),
    (lambda s: s.expect_request(PATH).respond_with_data("forbidden", status=403), "HTTP 403"),
])
def test_failures_raise_one_line_provider_errors(httpserver: HTTPServer, respond, needle: str) -> None:
    respond(httpserver)
    with pytest.raises(ProviderError) as info:
        fetch(ctx(httpserver))
    assert needle in str(info.value) and str(info.value).startswith("azure: ") and "\n" not in str(info.value)


def test_item_missing_fields_or_wrong_currency(httpserver: HTTPServer) -> None:
    broken = page("page2.json")
    del broken["Items"][0]["retailPrice"]
    httpserver.expect_request(PATH).respond_with_json(broken)
    with pytest.raises(ProviderError, match="lacks retailPrice"):
        fetch(ctx(httpserver))
    httpserver.clear()
    euro = page("page2.json")
    euro["Items"][1]["currencyCode"] = "EUR"
    httpserver.expect_request(PATH).respond_with_json(euro)
    with pytest.raises(ProviderError, match="EUR"):
        fetch(ctx(httpserver))


def test_timeout(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_handler(slow_response())
    with pytest.raises(ProviderError, match="timed out"):
        fetch(ctx(httpserver, timeout_s=0.1, retries=1))


def test_public_api_needs_no_credentials(httpserver: HTTPServer) -> None:
    assert ADAPTER.has_credentials(ctx(httpserver))

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


# ---- the subscription's SKU restrictions (Resource SKUs API, azure-mgmt-compute) -------------------------------

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
SKUS_PATH = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Compute/skus"
ARM_HOST = "https://management.azure.com"


class StaticToken:
    """A TokenCredential handing out one fixed token: replaces Entra ID sign-in, nothing else."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_kw: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken("static-token", int(time.time()) + 3600)


def serve_prices(server: HTTPServer) -> None:
    """Both Retail Prices pages: offers in eastus, westus3 and southcentralus."""
    first_query = {"api-version": "2023-01-01-preview", "currencyCode": "USD", "$filter": odata_filter()}
    server.expect_request(PATH, query_string=first_query).respond_with_json(page("page1.json"))
    server.expect_request(PATH, query_string={"$skip": "5", "api-version": "2023-01-01-preview",
                                              "currencyCode": "USD", "$filter": "serviceName eq 'Virtual Machines'"}
                          ).respond_with_json(page("page2.json"))


def sku_pages(server: HTTPServer) -> dict[tuple[str, bool], dict[str, Any]]:
    """(region, second page?) -> the documented Resource SKUs list body, nextLink pointing at this server."""
    base = server.url_for("").rstrip("/")
    bodies = {("eastus", False): page("skus_eastus.json"), ("westus3", False): page("skus_westus3_page1.json"),
              ("westus3", True): page("skus_westus3_page2.json"),
              ("southcentralus", False): page("skus_southcentralus.json")}
    for body in bodies.values():
        if "nextLink" in body:
            body["nextLink"] = body["nextLink"].replace(ARM_HOST, base)
    return bodies


def serve_skus(server: HTTPServer, seen: list[tuple[str, str]] | None = None) -> None:
    bodies = sku_pages(server)

    def handler(request: Request) -> Response:
        assert request.headers["Authorization"] == "Bearer static-token"
        assert request.args["api-version"] == "2021-07-01"
        region = request.args["$filter"].removeprefix("location eq '").removesuffix("'")
        if seen is not None:
            seen.append((region, request.args.get("$skiptoken", "")))
        return Response(json.dumps(bodies[(region, "$skiptoken" in request.args)]), content_type="application/json")

    server.expect_request(SKUS_PATH, method="GET").respond_with_handler(handler)


def arm_ctx(server: HTTPServer, credential: Any = None, **kw: Any) -> FetchContext:
    base = server.url_for("").rstrip("/")
    return fetch_ctx("azure", server, **{"env": {"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION},
                                         "endpoints": {"azure": base, "azure-arm": base},
                                         "sdk": {"azure_credential": credential or StaticToken()}, **kw})


def test_offers_the_subscription_cannot_deploy_are_dropped(httpserver: HTTPServer) -> None:
    serve_prices(httpserver)
    seen: list[tuple[str, str]] = []
    serve_skus(httpserver, seen)
    credential = StaticToken()
    offers = fetch(arm_ctx(httpserver, credential))
    # eastus: ND96isr_H100_v5 has a Location restriction (NotAvailableForSubscription); southcentralus:
    # ND96asr_v4 a QuotaId one. westus3's NC24ads_A100_v4 is on the second page, with a Zone restriction only.
    assert [(o.instance_type, o.region) for o in offers] == [("Standard_NC24ads_A100_v4", "westus3")]
    assert offers[0].on_demand_usd_per_hour == 3.673 and offers[0].source == "live"
    assert sorted(seen) == [("eastus", ""), ("southcentralus", ""), ("westus3", ""),
                            ("westus3", "eyJuZXh0UGFydGl0aW9uS2V5IjoiMSJ9")]  # one list per region, every page
    assert set(credential.scopes) == {("https://management.azure.com/.default",)}


@pytest.mark.parametrize(("sku", "region", "expected"), [
    ({"name": "Standard_ND96isr_H100_v5", "resourceType": "virtualMachines", "locations": ["eastus"]},
     "eastus", True),
    ({"name": "Standard_ND96isr_H100_v5", "resourceType": "virtualMachines", "locations": ["EastUS"]},
     "eastus", True),
    ({"name": "Standard_ND96isr_H100_v5", "resourceType": "virtualMachines", "locations": ["westus"]},
     "eastus", False),  # absent from the region
    ({"name": "Standard_ND96isr_H100_v5", "resourceType": "virtualMachines", "locations": ["eastus"],
      "restrictions": [{"type": "Location", "values": ["eastus"], "reasonCode": "QuotaId"}]}, "eastus", False),
    ({"name": "Standard_ND96isr_H100_v5", "resourceType": "virtualMachines", "locations": ["eastus"],
      "restrictions": [{"type": "Location", "values": ["westus"], "restrictionInfo": {"locations": ["westus"]},
                        "reasonCode": "NotAvailableForSubscription"}]}, "eastus", True),  # another region's
    ({"name": "Standard_ND96isr_H100_v5", "resourceType": "virtualMachines", "locations": ["eastus"],
      "restrictions": [{"type": "Zone", "values": ["eastus"],
                        "restrictionInfo": {"locations": ["eastus"], "zones": ["1", "2", "3"]},
                        "reasonCode": "NotAvailableForSubscription"}]}, "eastus", True),
    ({"name": "Standard_ND96isr_H100_v5", "resourceType": "disks", "locations": ["eastus"]}, "eastus", False),
    ({"name": "Standard_D2s_v5", "resourceType": "virtualMachines", "locations": ["eastus"]}, "eastus", False),
])
def test_availability_rules(sku: dict[str, Any], region: str, expected: bool) -> None:
    from providers.azure import available_sizes

    assert (sku["name"] in available_sizes([sku], region)) is expected


def test_without_a_subscription_nothing_is_filtered_and_one_info_line_says_so(httpserver: HTTPServer,
                                                                            caplog) -> None:
    import logging

    serve_prices(httpserver)
    with caplog.at_level(logging.INFO, logger="providers.azure"):
        offers = fetch(ctx(httpserver))
    assert len(offers) == 3
    notes = [r for r in caplog.records if r.name == "providers.azure"]
    assert [r.levelname for r in notes] == ["INFO"] and "AZURE_SUBSCRIPTION_ID is not set" in notes[0].getMessage()
    assert not [r for r, _ in httpserver.log if r.path == SKUS_PATH]


def lookup_warning(caplog) -> str:
    (record,) = [r for r in caplog.records if r.name == "providers.azure" and r.levelname == "WARNING"]
    message = record.getMessage()
    assert message.startswith("azure: SKU restrictions not checked (") and "\n" not in message
    return message


def test_forbidden_lookup_keeps_every_priced_offer_with_a_warning(httpserver: HTTPServer, caplog) -> None:
    serve_prices(httpserver)
    httpserver.expect_request(SKUS_PATH).respond_with_json(page("error_authorization_failed.json"), status=403)
    offers = fetch(arm_ctx(httpserver))
    assert len(offers) == 3  # the prices are good; only the narrowing is missing
    message = lookup_warning(caplog)
    assert "HTTP 403 HttpResponseError" in message and "AuthorizationFailed" in message and SUBSCRIPTION in message


def test_500_forever_is_retried_then_the_offers_are_kept_unfiltered(httpserver: HTTPServer, caplog) -> None:
    serve_prices(httpserver)
    httpserver.expect_request(SKUS_PATH).respond_with_data("boom", status=500)
    offers = fetch(arm_ctx(httpserver, retries=1))
    assert len(offers) == 3 and "(HTTP 500 HttpResponseError: " in lookup_warning(caplog)
    sku_calls = [r.args["$filter"] for r, _ in httpserver.log if r.path == SKUS_PATH]
    assert sorted(sku_calls) == sorted(2 * [f"location eq '{r}'" for r in ("eastus", "southcentralus", "westus3")])


def test_a_next_link_that_never_ends_is_stopped(httpserver: HTTPServer, caplog, monkeypatch) -> None:
    import providers.azure as azure

    monkeypatch.setattr(azure, "SKU_MAX_PAGES", 3)
    serve_prices(httpserver)
    loop = page("skus_westus3_page1.json")
    loop["nextLink"] = loop["nextLink"].replace(ARM_HOST, httpserver.url_for("").rstrip("/"))
    httpserver.expect_request(SKUS_PATH).respond_with_json(loop)
    assert len(fetch(arm_ctx(httpserver))) == 3
    assert "more than 3 pages" in lookup_warning(caplog)


def test_a_credential_that_cannot_sign_in_keeps_the_offers_with_a_warning(httpserver: HTTPServer, caplog) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    class NoLogin:
        def get_token(self, *scopes: str, **kw: Any) -> Any:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token.\nTry az login.")

    serve_prices(httpserver)
    assert len(fetch(arm_ctx(httpserver, NoLogin()))) == 3
    assert "ClientAuthenticationError: DefaultAzureCredential failed to retrieve a token. Try az login." \
        in lookup_warning(caplog)


def test_every_offer_restricted_is_an_error_not_an_empty_list(httpserver: HTTPServer) -> None:
    serve_prices(httpserver)
    empty = {"value": []}
    httpserver.expect_request(SKUS_PATH).respond_with_json(empty)
    with pytest.raises(ProviderError, match=rf"none of the 3 priced GPU VM offers can be deployed by subscription "
                                            rf"{SUBSCRIPTION}"):
        fetch(arm_ctx(httpserver))


def test_credential_choice() -> None:
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    from providers.azure import arm_credential

    secret = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s"}
    assert isinstance(arm_credential(fetch_ctx("azure", env=secret)), ClientSecretCredential)
    partial = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"}
    assert isinstance(arm_credential(fetch_ctx("azure", env=partial)), DefaultAzureCredential)
    injected = StaticToken()
    assert arm_credential(fetch_ctx("azure", env=secret, sdk={"azure_credential": injected})) is injected


def test_missing_sdk_is_a_warning_naming_the_extra(httpserver: HTTPServer, caplog, monkeypatch) -> None:
    import providers.azure as azure

    monkeypatch.setattr(azure, "_sdk_missing", lambda: "azure.mgmt.compute")
    serve_prices(httpserver)
    offers = fetch(fetch_ctx("azure", httpserver, env={"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION}))
    assert len(offers) == 3
    (record,) = [r for r in caplog.records if r.name == "providers.azure" and r.levelname == "WARNING"]
    assert "azure.mgmt.compute is not installed (pip install 'gpuarb[azure]')" in record.getMessage()


def test_importing_the_adapter_imports_no_azure_sdk() -> None:
    import subprocess
    import sys

    from conftest import ROOT

    code = "import sys, providers.azure; assert not [m for m in sys.modules if m.startswith('azure')], sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_older_sdk_models_are_read_through_their_rest_form() -> None:
    from providers.azure import as_rest_mapping

    class OldStyleSku:  # an msrest Model: attributes, and serialize() giving the REST JSON
        def serialize(self, keep_readonly: bool = False) -> dict[str, Any]:
            assert keep_readonly, "a Resource SKU's fields are all read-only: without this they vanish"
            return {"resourceType": "virtualMachines", "name": "Standard_ND96isr_H100_v5", "locations": ["eastus"]}

    rest = as_rest_mapping(OldStyleSku())
    assert rest["name"] == "Standard_ND96isr_H100_v5"
    with pytest.raises(ProviderError, match="not a SKU"):
        as_rest_mapping(42)

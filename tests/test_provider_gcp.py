"""GCP adapter: Cloud Billing Catalog SKUs -> machine offers, against a loopback server (pytest-httpserver)."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from providers import gcp
from providers.base import Adapter, FetchContext, MissingCredentials, ProviderError
from providers.skypilot_catalog import GCP_HOST_FOR
from tests.conftest import NOW

FIXTURES = Path(__file__).parent / "fixtures" / "gcp"
PATH = f"/v1/services/{gcp.SERVICE_ID}/skus"
FIRST = {"currencyCode": "USD", "pageSize": "5000"}
SECOND = {**FIRST, "pageToken": "page-2"}
KEY_ENV = {"GPUARB_GCP_API_KEY": "test-key"}

# The fixture's unit prices (USD per hour, or per GiB-hour for RAM), written out for the hand computations.
A2_CORE, A2_RAM, A100 = 0.031611, 0.004237, 2.933908
A2_CORE_SPOT, A2_RAM_SPOT, A100_SPOT = 0.009483, 0.001271, 1.17
A3_CORE, A3_RAM, H100 = 0.03222, 0.002817, 11.06
A3_CORE_SPOT, A3_RAM_SPOT, H100_SPOT = 0.01008, 0.000881, 2.253
A3PLUS_CORE, A3PLUS_RAM, H100_MEGA = 0.026924, 0.002344, 10.344276
B200_SLICE, B200_SLICE_SPOT = 11.277, 4.0758


def page(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def ctx_for(facts, server: HTTPServer | None = None, *, env: dict[str, str] | None = None,
            **overrides: Any) -> FetchContext:
    settings: dict[str, Any] = dict(timeout_s=2.0, retries=2, backoff_s=0.0, max_backoff_s=0.0)
    settings.update(overrides)
    endpoints = {"gcp": server.url_for("").rstrip("/")} if server else {}
    return FetchContext(facts=facts, now=NOW, env=KEY_ENV if env is None else env, endpoints=endpoints,
                        **settings)


def fetch(ctx: FetchContext):
    return asyncio.run(gcp.ADAPTER.fetch(ctx))


def serve_both_pages(server: HTTPServer) -> None:
    server.expect_request(PATH, method="GET", query_string=FIRST).respond_with_json(page("skus_page1.json"))
    server.expect_request(PATH, method="GET", query_string=SECOND).respond_with_json(page("skus_page2.json"))


def calls(server: HTTPServer) -> list[tuple[Request, Response]]:
    """This adapter's requests in the server log (other tests' abandoned requests may arrive late)."""
    return [(request, response) for request, response in server.log if request.path == PATH]


def by_key(offers) -> dict[tuple[str, str], Any]:
    out = {(o.instance_type, o.region): o for o in offers}
    assert len(out) == len(offers), "one offer per instance type and region"
    return out


# ---- the happy path: two pages, parts summed into machines ---------------------------------------------------


def test_two_pages_are_fetched_and_priced_as_whole_machines(facts, httpserver: HTTPServer) -> None:
    serve_both_pages(httpserver)
    offers = by_key(fetch(ctx_for(facts, httpserver)))

    assert len(calls(httpserver)) == 2  # page 1, then page 2 by its pageToken; no third call
    assert set(offers) == {
        *((f"a2-highgpu-{n}g", r) for n in (1, 2, 4, 8) for r in ("us-central1", "us-east1")),
        ("a2-megagpu-16g", "us-central1"), ("a2-megagpu-16g", "us-east1"),
        *((f"a3-highgpu-{n}g", "us-central1") for n in (1, 2, 4, 8)),
        ("a3-megagpu-8g", "us-central1"), ("a4-highgpu-8g", "us-central1"),
    }

    # a2-highgpu-8g = 96 vCPU x core + 680 GiB x RAM + 8 x A100, by hand from the fixture's unit prices.
    a2 = offers[("a2-highgpu-8g", "us-central1")]
    assert a2.on_demand_usd_per_hour == pytest.approx(96 * 0.031611 + 680 * 0.004237 + 8 * 2.933908)
    assert a2.on_demand_usd_per_hour == pytest.approx(29.38708)
    assert (a2.accelerator, a2.gpus_per_node, a2.vcpus, a2.ram_gb) == ("A100", 8, 96.0, 680.0)
    assert (a2.provider, a2.zone, a2.source, a2.as_of) == ("gcp", None, "live", NOW.isoformat(timespec="seconds"))
    assert (a2.interconnect, a2.gpu_memory_gb) == ("ethernet", 40.0)
    assert a2.price_ref.startswith(httpserver.url_for(PATH))
    assert all(s in a2.price_ref for s in ("A2C0-0001-0001", "A2C0-0001-0002", "A100-0001-0001"))
    # A multi-region SKU prices every region it lists.
    assert offers[("a2-highgpu-8g", "us-east1")].on_demand_usd_per_hour == pytest.approx(29.38708)

    mega = offers[("a2-megagpu-16g", "us-central1")]
    assert mega.on_demand_usd_per_hour == pytest.approx(96 * A2_CORE + 1360 * A2_RAM + 16 * A100)

    a3 = offers[("a3-highgpu-8g", "us-central1")]
    assert a3.on_demand_usd_per_hour == pytest.approx(208 * A3_CORE + 1872 * A3_RAM + 8 * H100)
    assert a3.spot_usd_per_hour == pytest.approx(208 * A3_CORE_SPOT + 1872 * A3_RAM_SPOT + 8 * H100_SPOT)

    # A3 Mega bills vCPU/RAM at the A3Plus SKUs, and "H100 80GB Plus" is its GPU; no Spot SKUs -> no spot price.
    a3_mega = offers[("a3-megagpu-8g", "us-central1")]
    assert a3_mega.accelerator == "H100-MEGA"
    assert a3_mega.on_demand_usd_per_hour == pytest.approx(208 * A3PLUS_CORE + 1872 * A3PLUS_RAM + 8 * H100_MEGA)
    assert a3_mega.spot_usd_per_hour is None


def test_spot_prices_come_from_the_preemptible_skus(facts, httpserver: HTTPServer) -> None:
    serve_both_pages(httpserver)
    offers = by_key(fetch(ctx_for(facts, httpserver)))

    a2 = offers[("a2-highgpu-8g", "us-central1")]
    assert a2.spot_usd_per_hour == pytest.approx(96 * 0.009483 + 680 * 0.001271 + 8 * 1.17)
    assert a2.spot_usd_per_hour == pytest.approx(11.134648)
    one = offers[("a2-highgpu-1g", "us-east1")]
    assert one.spot_usd_per_hour == pytest.approx(12 * A2_CORE_SPOT + 85 * A2_RAM_SPOT + A100_SPOT)
    assert one.on_demand_usd_per_hour == pytest.approx(12 * A2_CORE + 85 * A2_RAM + A100)

    # a3-highgpu-1g/2g/4g are sold only as Spot / Flex-start: a spot price, no on-demand one.
    for n in (1, 2, 4):
        small = offers[(f"a3-highgpu-{n}g", "us-central1")]
        assert small.on_demand_usd_per_hour is None
        assert small.spot_usd_per_hour == pytest.approx(
            26 * n * A3_CORE_SPOT + 234 * n * A3_RAM_SPOT + n * H100_SPOT)


def test_a4_is_priced_by_gpu_slices_including_a_spot_sku_tagged_on_demand(facts, httpserver: HTTPServer) -> None:
    serve_both_pages(httpserver)
    a4 = by_key(fetch(ctx_for(facts, httpserver)))[("a4-highgpu-8g", "us-central1")]
    assert a4.on_demand_usd_per_hour == pytest.approx(8 * B200_SLICE)  # 90.216
    assert a4.spot_usd_per_hour == pytest.approx(8 * B200_SLICE_SPOT)  # 32.6064
    assert (a4.accelerator, a4.vcpus, a4.ram_gb, a4.interconnect) == ("B200", 224.0, 3968.0, "roce")


def test_a_sku_without_pricing_info_is_skipped_and_its_machines_are_not_offered(facts, httpserver) -> None:
    # europe-west4 has A2 core/RAM prices but its only GPU SKU (A100 80GB) carries no pricingInfo.
    serve_both_pages(httpserver)
    offers = fetch(ctx_for(facts, httpserver))
    assert not [o for o in offers if o.region == "europe-west4"]
    assert not [o for o in offers if o.instance_type.startswith("a2-ultragpu")]
    # H200 has a GPU price but no A3Ultra core/RAM SKUs: a part missing means no offer, not a partial sum.
    assert not [o for o in offers if o.instance_type == "a3-ultragpu-8g"]


def test_request_carries_usd_page_size_and_the_api_key_header(facts, httpserver: HTTPServer) -> None:
    serve_both_pages(httpserver)
    fetch(ctx_for(facts, httpserver))
    first, _ = calls(httpserver)[0]
    assert first.args.to_dict() == FIRST
    assert first.headers["X-Goog-Api-Key"] == "test-key"
    assert "key" not in first.args  # the key stays out of URLs
    assert first.headers["User-Agent"].startswith("gpuarb/")


def test_oauth_access_token_is_sent_as_bearer(facts, httpserver: HTTPServer) -> None:
    body = page("skus_page2.json")
    httpserver.expect_request(PATH, query_string=FIRST, headers={"Authorization": "Bearer ya29.token"}) \
        .respond_with_json(body)
    offers = fetch(ctx_for(facts, httpserver, env={"GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.token"}))
    assert {o.instance_type for o in offers} >= {"a3-highgpu-8g", "a4-highgpu-8g"}


# ---- failures --------------------------------------------------------------------------------------------


def test_non_usd_currency_is_a_provider_error(facts, httpserver: HTTPServer) -> None:
    body = page("skus_page2.json")
    body["skus"][4]["pricingInfo"][0]["pricingExpression"]["tieredRates"][0]["unitPrice"]["currencyCode"] = "EUR"
    httpserver.expect_request(PATH, query_string=FIRST).respond_with_json(body)
    with pytest.raises(ProviderError, match=r"gcp: SKU H100-0001-0001 is priced in EUR, not USD"):
        fetch(ctx_for(facts, httpserver))


def test_429_then_200_is_retried(facts, httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(PATH, query_string=FIRST).respond_with_data(
        "slow down", status=429, headers={"Retry-After": "0"})
    httpserver.expect_request(PATH, query_string=FIRST).respond_with_json(page("skus_page2.json"))
    offers = fetch(ctx_for(facts, httpserver))
    assert [response.status_code for _, response in calls(httpserver)] == [429, 200]
    assert {o.instance_type for o in offers} >= {"a3-highgpu-8g", "a3-megagpu-8g", "a4-highgpu-8g"}


def test_500_forever_gives_up_after_the_retries(facts, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("boom", status=500)
    with pytest.raises(ProviderError, match=r"HTTP 500 .*gave up after 3 attempts") as err:
        fetch(ctx_for(facts, httpserver, retries=2))
    assert len(calls(httpserver)) == 3
    assert "\n" not in str(err.value)


def test_invalid_json_is_a_provider_error(facts, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("{not json", content_type="application/json")
    with pytest.raises(ProviderError, match="invalid JSON"):
        fetch(ctx_for(facts, httpserver))


def test_a_body_without_a_skus_list_is_a_provider_error(facts, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json({"skus": {"oops": 1}})
    with pytest.raises(ProviderError, match="no 'skus' list"):
        fetch(ctx_for(facts, httpserver))


def test_timeout_is_retried_then_reported(facts, httpserver: HTTPServer) -> None:
    def slow(_request: Request) -> Response:
        time.sleep(0.4)
        return Response(json.dumps(page("skus_page2.json")), content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(slow)
    with pytest.raises(ProviderError, match=r"timed out after 0.1s .*gave up after 2 attempts"):
        fetch(ctx_for(facts, httpserver, timeout_s=0.1, retries=1))
    # The single-threaded server is still answering the abandoned requests; let it finish so that their
    # late responses do not land in the next test's log.
    deadline = time.monotonic() + 5
    while len(calls(httpserver)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)


def test_http_403_names_the_key_and_is_not_retried(facts, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("API key not valid", status=403)
    with pytest.raises(ProviderError, match=r"HTTP 403 .*check the API key"):
        fetch(ctx_for(facts, httpserver))
    assert len(calls(httpserver)) == 1


def test_a_repeated_page_token_stops_the_loop(facts, httpserver: HTTPServer) -> None:
    body = {"skus": [], "nextPageToken": "again"}
    httpserver.expect_request(PATH).respond_with_json(body)
    with pytest.raises(ProviderError, match="pagination loop"):
        fetch(ctx_for(facts, httpserver))
    assert len(calls(httpserver)) == 2


def test_skus_that_price_no_machine_are_an_error_not_an_empty_list(facts, httpserver: HTTPServer) -> None:
    body = page("skus_page1.json")
    body["skus"] = [s for s in body["skus"] if s["category"]["resourceGroup"] != "GPU"]
    body.pop("nextPageToken")
    httpserver.expect_request(PATH).respond_with_json(body)
    with pytest.raises(ProviderError, match=r"no GPU machine could be priced from \d+ SKUs"):
        fetch(ctx_for(facts, httpserver))


def test_missing_credentials(facts, httpserver: HTTPServer, monkeypatch) -> None:
    monkeypatch.setattr(gcp, "_google_auth_available", lambda: True)
    ctx = ctx_for(facts, httpserver, env={"HOME": "/nonexistent-home-for-gpuarb-tests"})
    assert gcp.ADAPTER.has_credentials(ctx) is False
    with pytest.raises(MissingCredentials, match="GPUARB_GCP_API_KEY"):
        fetch(ctx)
    assert calls(httpserver) == []


# ---- credentials discovery -----------------------------------------------------------------------------------


def test_credential_order(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(gcp, "_google_auth_available", lambda: True)
    both = {"GOOGLE_API_KEY": "generic", "GPUARB_GCP_API_KEY": "ours", "GOOGLE_OAUTH_ACCESS_TOKEN": "tok"}
    assert gcp.find_auth(both) == gcp._Auth("api_key", "ours")
    assert gcp.find_auth({"GOOGLE_API_KEY": "generic", "GOOGLE_OAUTH_ACCESS_TOKEN": "tok"}).value == "generic"
    assert gcp.find_auth({"GOOGLE_OAUTH_ACCESS_TOKEN": " tok "}) == gcp._Auth("token", "tok")
    assert gcp.find_auth({"GPUARB_GCP_API_KEY": "  "}) is None


def test_application_default_credentials_file_counts_only_with_google_auth(monkeypatch, tmp_path) -> None:
    adc = tmp_path / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text("{}")
    explicit = tmp_path / "sa.json"
    explicit.write_text("{}")

    monkeypatch.setattr(gcp, "_google_auth_available", lambda: True)
    assert gcp.find_auth({"HOME": str(tmp_path)}) == gcp._Auth("adc", str(adc))
    assert gcp.find_auth({"CLOUDSDK_CONFIG": str(adc.parent)}) == gcp._Auth("adc", str(adc))
    assert gcp.find_auth({"GOOGLE_APPLICATION_CREDENTIALS": str(explicit)}) == gcp._Auth("adc", str(explicit))
    # A named file that does not exist is not silently replaced by gcloud's file.
    assert gcp.find_auth({"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "gone.json"),
                          "HOME": str(tmp_path)}) is None

    monkeypatch.setattr(gcp, "_google_auth_available", lambda: False)
    assert gcp.find_auth({"HOME": str(tmp_path)}) is None


def test_adc_token_is_refreshed_in_a_thread_and_sent_with_the_quota_project(facts, httpserver, monkeypatch,
                                                                             tmp_path) -> None:
    adc = tmp_path / "sa.json"
    adc.write_text("{}")
    calls: list[str] = []

    def fake_adc_token(path: str) -> tuple[str, str | None]:
        calls.append(path)
        return "adc-token", "my-project"

    monkeypatch.setattr(gcp, "_google_auth_available", lambda: True)
    monkeypatch.setattr(gcp, "_adc_token", fake_adc_token)
    httpserver.expect_request(PATH, headers={"Authorization": "Bearer adc-token",
                                             "x-goog-user-project": "my-project"}) \
        .respond_with_json(page("skus_page2.json"))
    offers = fetch(ctx_for(facts, httpserver, env={"GOOGLE_APPLICATION_CREDENTIALS": str(adc)}))
    assert calls == [str(adc)] and offers


def test_adc_failure_is_a_one_line_provider_error(facts, httpserver, monkeypatch, tmp_path) -> None:
    adc = tmp_path / "sa.json"
    adc.write_text("{}")

    def broken(path: str) -> tuple[str, str | None]:
        raise RuntimeError("Reauthentication is needed.\nPlease run gcloud auth application-default login")

    monkeypatch.setattr(gcp, "_google_auth_available", lambda: True)
    monkeypatch.setattr(gcp, "_adc_token", broken)
    with pytest.raises(ProviderError, match=r"Application Default Credentials failed \(RuntimeError: Reauth") as e:
        fetch(ctx_for(facts, httpserver, env={"GOOGLE_APPLICATION_CREDENTIALS": str(adc)}))
    assert "\n" not in str(e.value)


# ---- SKU interpretation, unit by unit ----------------------------------------------------------------------


def sku(description: str, usage: str = "OnDemand", family: str = "Compute", **price: Any) -> dict[str, Any]:
    unit_price = {"currencyCode": "USD", "units": price.get("units", "1"), "nanos": price.get("nanos", 0)}
    return {"skuId": price.get("sku_id", "X"), "description": description,
            "category": {"resourceFamily": family, "resourceGroup": "GPU", "usageType": usage},
            "serviceRegions": price.get("regions", ["us-central1"]),
            "pricingInfo": [{"pricingExpression": {"usageUnit": price.get("unit", "h"),
                                                   "tieredRates": [{"startUsageAmount": 0,
                                                                    "unitPrice": unit_price}]}}]}


@pytest.mark.parametrize(("description", "usage", "expected"), [
    ("Nvidia Tesla A100 GPU running in Americas", "OnDemand", ("gpu", "A100", False)),
    ("Nvidia Tesla A100 GPU attached to Spot Preemptible VMs running in Americas", "Preemptible",
     ("gpu", "A100", True)),
    ("Nvidia Tesla A100 80GB GPU running in Netherlands", "OnDemand", ("gpu", "A100-80GB", False)),
    ("Nvidia H100 80GB GPU running in Americas", "OnDemand", ("gpu", "H100", False)),
    ("Nvidia H100 80GB Mega GPU attached to Spot Preemptible VMs running in Tokyo", "Preemptible",
     ("gpu", "H100-MEGA", True)),
    ("Nvidia H100 Mega 80GB GPU running in Americas", "OnDemand", ("gpu", "H100-MEGA", False)),
    ("Nvidia H100 80GB Plus GPU running in Americas", "OnDemand", ("gpu", "H100-MEGA", False)),
    ("H200 141GB GPU running in Netherlands", "OnDemand", ("gpu", "H200", False)),
    ("A4 Nvidia B200 (1 gpu slice) running in Americas", "OnDemand", ("gpu", "B200", False)),
    ("Spot Preemptible A4 Nvidia B200 (1 gpu slice) running in Americas", "OnDemand", ("gpu", "B200", True)),
    ("A2 Instance Core running in Americas", "OnDemand", ("core", "a2", False)),
    ("Spot Preemptible A2 Instance Ram running in Americas", "Preemptible", ("ram", "a2", True)),
    ("A3 Instance Core running in Americas", "OnDemand", ("core", "a3", False)),
    ("A3Plus Instance Ram running in Americas", "OnDemand", ("ram", "a3plus", False)),
    ("A3Ultra Instance Core running in Netherlands", "OnDemand", ("core", "a3ultra", False)),
    # GCP writes A3 Ultra / A3 Mega with a space (these used to match nothing, so a3-ultragpu-8g was never priced)
    ("A3 Ultra Instance Core running in Americas", "OnDemand", ("core", "a3ultra", False)),
    ("Spot Preemptible A3 Ultra Instance Ram running in Netherlands", "Preemptible", ("ram", "a3ultra", True)),
    ("A3 Mega Instance Core running in Americas", "OnDemand", ("core", "a3plus", False)),
    ("A3 Mega Instance Ram running in Americas", "OnDemand", ("ram", "a3plus", False)),
    # G2 + L4 and N1 + T4/V100 (these used to be unmapped: no L4/T4/V100 offers at all)
    ("Nvidia Tesla T4 GPU running in Americas", "OnDemand", ("gpu", "T4", False)),
    ("Nvidia Tesla T4 GPU attached to Spot Preemptible VMs running in Americas", "Preemptible", ("gpu", "T4", True)),
    ("Nvidia Tesla V100 GPU running in Americas", "OnDemand", ("gpu", "V100", False)),
    ("Nvidia L4 GPU running in Frankfurt", "OnDemand", ("gpu", "L4", False)),
    ("N1 Predefined Instance Core running in Americas", "OnDemand", ("core", "n1", False)),
    ("Spot Preemptible N1 Predefined Instance Ram running in Americas", "Preemptible", ("ram", "n1", True)),
    ("G2 Instance Core running in Americas", "OnDemand", ("core", "g2", False)),
    ("Spot Preemptible G2 Instance Ram running in Americas", "Preemptible", ("ram", "g2", True)),
    ("  a2  instance   core running in Americas ", "OnDemand", ("core", "a2", False)),
    # Not used: commitments, reservations, other provisioning models, other machine families.
    ("Commitment v1: Nvidia Tesla A100 GPU running in Americas for 1 Year", "Commit1Yr", None),
    ("Commitment v1: A2 Cpu in Americas for 3 Years", "Commit3Yr", None),
    ("Reserved Nvidia H100 80GB Mega GPU in Americas in Calendar Mode", "OnDemand", None),
    ("Reserved A2 Ram in Netherlands", "OnDemand", None),
    ("Nvidia H100 Mega 80GB GPU attached to DWS Defined Duration VMs running in Americas", "OnDemand", None),
    ("Nvidia Tesla T4 GPU attached to Sole Tenancy VMs running in Americas", "OnDemand", None),
    ("DWS Defined Duration A3 Ultra Instance Core running in Americas", "OnDemand", None),
    ("Nvidia Tesla P100 GPU running in Americas", "OnDemand", None),
    ("N2 Instance Core running in Americas", "OnDemand", None),
    ("A2 Sole Tenancy Instance Core running in Americas", "OnDemand", None),
])
def test_classify_sku(description: str, usage: str, expected: tuple[str, str, bool] | None) -> None:
    part = gcp.classify_sku(sku(description, usage))
    assert (None if part is None else (part.kind, part.key, part.spot)) == expected


def test_non_compute_skus_are_ignored() -> None:
    assert gcp.classify_sku(sku("A2 Instance Core running in Americas", family="Storage")) is None
    assert gcp.classify_sku({"description": "A2 Instance Core running in Americas"}) is None


def test_unit_price_is_units_plus_nanos_of_the_first_tier_of_the_newest_pricing_info() -> None:
    assert gcp.unit_price_usd(sku("x", units="2", nanos=933908000)) == pytest.approx(2.933908)
    assert gcp.unit_price_usd(sku("x", units=3, nanos=0)) == 3.0  # int units also accepted
    tiered = sku("x")
    tiered["pricingInfo"][0]["pricingExpression"]["tieredRates"] = [
        {"startUsageAmount": 100, "unitPrice": {"currencyCode": "USD", "units": "0", "nanos": 1}},
        {"startUsageAmount": 0, "unitPrice": {"currencyCode": "USD", "nanos": 500000000}},
    ]
    assert gcp.unit_price_usd(tiered) == 0.5
    newer = copy.deepcopy(sku("x", units="7"))
    newer["pricingInfo"].insert(0, sku("x", units="1")["pricingInfo"][0])
    assert gcp.unit_price_usd(newer) == 7.0
    assert gcp.unit_price_usd(sku("x", units="0", nanos=0)) == 0.0  # priced at zero; collect_rates drops it
    assert gcp.unit_price_usd({"skuId": "x"}) is None
    assert gcp.unit_price_usd({"skuId": "x", "pricingInfo": []}) is None
    with pytest.raises(ProviderError, match="malformed price"):
        gcp.unit_price_usd(sku("x", units="two"))


def test_rates_convert_per_gb_ram_to_per_gib_and_skip_unknown_units() -> None:
    rates = gcp.collect_rates([
        sku("A2 Instance Ram running in Americas", units="0", nanos=4000000, unit="GBy.h", sku_id="gb"),
        sku("A3 Instance Ram running in Americas", units="0", nanos=4000000, unit="GiBy.mo", sku_id="month"),
    ])
    assert rates[("ram", "a2", "us-central1", False)].usd == pytest.approx(0.004 * 2**30 / 1e9)
    assert ("ram", "a3", "us-central1", False) not in rates


def test_a_zero_priced_sku_is_not_a_free_part() -> None:
    free = sku("Nvidia Tesla A100 GPU running in Americas", units="0", nanos=0)
    assert gcp.collect_rates([free]) == {}


def test_conflicting_skus_keep_the_higher_price_whatever_the_order() -> None:
    cheap = sku("Nvidia H100 80GB Mega GPU running in Americas", units="4", sku_id="B")
    dear = sku("Nvidia H100 80GB Plus GPU running in Americas", units="10", sku_id="A")
    for order in ([cheap, dear], [dear, cheap]):
        rate = gcp.collect_rates(order)[("gpu", "H100-MEGA", "us-central1", False)]
        assert (rate.usd, rate.sku_id) == (10.0, "A")


# ---- the machine table and the adapter protocol ---------------------------------------------


def test_machine_table_covers_every_shape_skypilot_maps() -> None:
    assert set(gcp.MACHINE_SHAPES) == set(GCP_HOST_FOR.values()) | set(gcp.ATTACHED_HOSTS.values())
    assert set(gcp.HOSTS) == set(GCP_HOST_FOR) | set(gcp.ATTACHED_HOSTS)
    # Spot checks against cloud.google.com/compute/docs/accelerator-optimized-machines.
    shapes = gcp.MACHINE_SHAPES
    assert (shapes["a2-highgpu-1g"].vcpus, shapes["a2-highgpu-1g"].ram_gb) == (12, 85)
    assert (shapes["a3-highgpu-8g"].vcpus, shapes["a3-highgpu-8g"].ram_gb) == (208, 1872)
    assert (shapes["a3-ultragpu-8g"].vcpus, shapes["a3-ultragpu-8g"].ram_gb) == (224, 2952)
    assert (shapes["a4-highgpu-8g"].vcpus, shapes["a4-highgpu-8g"].ram_gb) == (224, 3968)
    assert all(s.cpu_ram_family in (None, *gcp._CPU_RAM_FAMILIES.values()) for s in shapes.values())
    assert set(gcp._GPU_LABELS.values()) == {accel for accel, _count in gcp.HOSTS}


def test_adapter_protocol() -> None:
    assert isinstance(gcp.ADAPTER, Adapter)
    assert (gcp.ADAPTER.name, gcp.ADAPTER.ttl_seconds) == ("gcp", 3600)


# ---- zones from the Compute Engine API (google-cloud-compute, REST transport, against the loopback server) ----

PROJECT = "gpuarb-test"
ACCEL_PATH = f"/compute/v1/projects/{PROJECT}/aggregated/acceleratorTypes"
MACHINE_PATH = f"/compute/v1/projects/{PROJECT}/aggregated/machineTypes"
ACCEL_TOKEN = page("accelerator_types_page1.json")["nextPageToken"]
MACHINE_TOKEN = page("machine_types_page1.json")["nextPageToken"]
A2_HIGH = {f"a2-highgpu-{n}g" for n in (1, 2, 4, 8)}


def ctx_for_endpoints(facts, env: dict[str, str], endpoints: dict[str, str], sdk: dict[str, Any],
                      **overrides: Any) -> FetchContext:
    settings: dict[str, Any] = dict(timeout_s=2.0, retries=2, backoff_s=0.0, max_backoff_s=0.0)
    settings.update(overrides)
    return FetchContext(facts=facts, now=NOW, env=env, endpoints=endpoints, sdk=sdk, **settings)


def serve_zone_pages(server: HTTPServer) -> None:
    first = {"maxResults": "500"}
    server.expect_request(ACCEL_PATH, method="GET", query_string=first) \
        .respond_with_json(page("accelerator_types_page1.json"))
    server.expect_request(ACCEL_PATH, method="GET", query_string={**first, "pageToken": ACCEL_TOKEN}) \
        .respond_with_json(page("accelerator_types_page2.json"))
    machine_first = {"maxResults": "500", "filter": gcp.MACHINE_TYPE_FILTER}
    server.expect_request(MACHINE_PATH, method="GET", query_string=machine_first) \
        .respond_with_json(page("machine_types_page1.json"))
    server.expect_request(MACHINE_PATH, method="GET", query_string={**machine_first, "pageToken": MACHINE_TOKEN}) \
        .respond_with_json(page("machine_types_page2.json"))


def compute_calls(server: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in server.log if request.path == path]


def test_offers_are_per_zone_where_the_gpu_and_the_machine_type_exist(facts, httpserver: HTTPServer,
                                                                     caplog) -> None:
    serve_both_pages(httpserver)
    serve_zone_pages(httpserver)
    offers = gcp_fetch_zoned(facts, httpserver)
    by_zone: dict[str, set[str]] = {}
    for o in offers:
        by_zone.setdefault(o.zone, set()).add(o.instance_type)
    assert by_zone == {
        # us-central1-a: A100, H100 and H100 Mega GPUs and their machines (a2-ultragpu is not priced in the SKUs).
        "us-central1-a": A2_HIGH | {"a2-megagpu-16g"} | {f"a3-highgpu-{n}g" for n in (1, 2, 4, 8)} | {"a3-megagpu-8g"},
        "us-central1-b": A2_HIGH | {"a2-megagpu-16g", "a4-highgpu-8g"},
        # Its H100 is on the second accelerator page; only the 8-GPU A3 machine type is there.
        "us-central1-c": A2_HIGH | {"a2-megagpu-16g", "a3-highgpu-8g"},
        "us-central1-f": A2_HIGH,  # no a2-megagpu-16g machine type in that zone
        "us-east1-b": A2_HIGH | {"a2-megagpu-16g"},
        # us-east1-c: T4 only. us-west1-a: H100 machines, but the SKUs price nothing in us-west1.
    }
    # Per-zone offers carry the region's price: the same sum as the region-level offer.
    a3 = next(o for o in offers if (o.zone, o.instance_type) == ("us-central1-c", "a3-highgpu-8g"))
    assert a3.region == "us-central1" and a3.location == "us-central1/us-central1-c"
    assert a3.on_demand_usd_per_hour == pytest.approx(208 * A3_CORE + 1872 * A3_RAM + 8 * H100)
    assert a3.spot_usd_per_hour == pytest.approx(208 * A3_CORE_SPOT + 1872 * A3_RAM_SPOT + 8 * H100_SPOT)
    assert a3.source == "live" and "H100-0001-0001" in a3.price_ref
    # Both aggregated lists were read to the end, once each page, and nothing was logged at warning level.
    assert [r.args.get("pageToken") for r in compute_calls(httpserver, ACCEL_PATH)] == [None, ACCEL_TOKEN]
    assert [r.args.get("pageToken") for r in compute_calls(httpserver, MACHINE_PATH)] == [None, MACHINE_TOKEN]
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def gcp_fetch_zoned(facts, server: HTTPServer, **overrides: Any) -> list:
    base = server.url_for("").rstrip("/")
    from google.auth.credentials import AnonymousCredentials

    settings: dict[str, Any] = dict(env={**KEY_ENV, "GOOGLE_CLOUD_PROJECT": PROJECT},
                                    endpoints={"gcp": base, "gcp-compute": base},
                                    sdk={"gcp_compute_credentials": AnonymousCredentials()})
    settings.update(overrides)
    return fetch(ctx_for_endpoints(facts, **settings))


def region_level(offers) -> set[tuple[str, str, str | None]]:
    return {(o.instance_type, o.region, o.zone) for o in offers}


def zone_warning(caplog) -> str:
    (record,) = [r for r in caplog.records if r.name == "providers.gcp" and r.levelname == "WARNING"]
    message = record.getMessage()
    assert message.startswith("gcp: zones not checked (") and message.endswith("GCP offers are per region")
    assert "\n" not in message
    return message


REGION_OFFERS = 16  # what the SKU fixtures price per region (see the first test of this file)


def test_compute_api_500_forever_falls_back_to_region_offers_with_a_warning(facts, httpserver: HTTPServer,
                                                                           caplog) -> None:
    serve_both_pages(httpserver)
    httpserver.expect_request(ACCEL_PATH).respond_with_data("backend error", status=500)
    serve_zone_pages(httpserver)  # the machine types answer; the accelerator types never do
    offers = gcp_fetch_zoned(facts, httpserver, retries=1)
    assert len(offers) == REGION_OFFERS and {o.zone for o in offers} == {None}
    assert "InternalServerError" in zone_warning(caplog)
    assert len(compute_calls(httpserver, ACCEL_PATH)) == 2  # first try + ctx.retries


def test_compute_api_403_is_not_retried_and_falls_back(facts, httpserver: HTTPServer, caplog) -> None:
    serve_both_pages(httpserver)
    denied = {"error": {"code": 403, "message": "Required 'compute.acceleratorTypes.list' permission for "
                                                "'projects/gpuarb-test'",
                        "errors": [{"message": "Required 'compute.acceleratorTypes.list' permission",
                                    "domain": "global", "reason": "forbidden"}]}}
    httpserver.expect_request(ACCEL_PATH).respond_with_json(denied, status=403)
    serve_zone_pages(httpserver)
    offers = gcp_fetch_zoned(facts, httpserver)
    assert {o.zone for o in offers} == {None} and len(offers) == REGION_OFFERS
    assert "Forbidden" in zone_warning(caplog) and len(compute_calls(httpserver, ACCEL_PATH)) == 1


def test_429_then_200_from_the_compute_api_is_retried(facts, httpserver: HTTPServer, caplog) -> None:
    serve_both_pages(httpserver)
    httpserver.expect_oneshot_request(ACCEL_PATH, query_string={"maxResults": "500"}).respond_with_json(
        {"error": {"code": 429, "message": "Quota exceeded"}}, status=429)
    serve_zone_pages(httpserver)
    offers = gcp_fetch_zoned(facts, httpserver)
    assert "us-central1-b" in {o.zone for o in offers}
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.args.get("pageToken") for r in compute_calls(httpserver, ACCEL_PATH)] == [None, None, ACCEL_TOKEN]


def test_a_repeated_compute_page_token_falls_back(facts, httpserver: HTTPServer, caplog) -> None:
    serve_both_pages(httpserver)
    looping = page("machine_types_page1.json")
    httpserver.expect_request(MACHINE_PATH).respond_with_json(looping)
    serve_zone_pages(httpserver)
    offers = gcp_fetch_zoned(facts, httpserver)
    assert {o.zone for o in offers} == {None}
    assert "machine types: pagination loop" in zone_warning(caplog)


def test_an_unreadable_compute_answer_falls_back(facts, httpserver: HTTPServer, caplog) -> None:
    serve_both_pages(httpserver)
    httpserver.expect_request(ACCEL_PATH).respond_with_data("<html>proxy error</html>", status=200,
                                                            content_type="text/html")
    serve_zone_pages(httpserver)
    assert {o.zone for o in gcp_fetch_zoned(facts, httpserver)} == {None}
    zone_warning(caplog)


def test_no_zone_with_a_priced_machine_is_an_error(facts, httpserver: HTTPServer) -> None:
    serve_both_pages(httpserver)
    only_west = page("accelerator_types_page2.json")
    only_west["items"] = {"zones/us-west1-a": only_west["items"]["zones/us-west1-a"]}
    httpserver.expect_request(ACCEL_PATH).respond_with_json(only_west)
    serve_zone_pages(httpserver)
    with pytest.raises(ProviderError, match=r"gcp: machines priced in 2 regions \(us-central1, us-east1\) but no "
                                            r"zone of them offers one"):
        gcp_fetch_zoned(facts, httpserver)


def test_without_a_project_offers_stay_per_region_and_compute_is_not_called(facts, httpserver: HTTPServer,
                                                                           caplog) -> None:
    import logging

    serve_both_pages(httpserver)
    serve_zone_pages(httpserver)
    with caplog.at_level(logging.INFO, logger="providers.gcp"):
        offers = gcp_fetch_zoned(facts, httpserver, env=KEY_ENV)
    assert {o.zone for o in offers} == {None} and len(offers) == REGION_OFFERS
    assert not compute_calls(httpserver, ACCEL_PATH) and not compute_calls(httpserver, MACHINE_PATH)
    (note,) = [r for r in caplog.records if r.name == "providers.gcp" and r.levelname == "INFO"]
    assert "no Compute Engine access" in note.getMessage()


def test_an_api_key_alone_gives_no_compute_access(facts, monkeypatch) -> None:
    monkeypatch.setattr(gcp, "adc_file", lambda env: None)
    plain = ctx_for(facts, env={**KEY_ENV, "GOOGLE_CLOUD_PROJECT": PROJECT})
    assert gcp.compute_access(plain) is None


def test_without_google_cloud_compute_offers_stay_per_region(facts, httpserver: HTTPServer, monkeypatch) -> None:
    monkeypatch.setattr(gcp, "_compute_sdk_available", lambda: False)
    serve_both_pages(httpserver)
    offers = gcp_fetch_zoned(facts, httpserver)
    assert {o.zone for o in offers} == {None} and not compute_calls(httpserver, ACCEL_PATH)


def test_compute_access_from_a_token_or_the_adc_file(facts, tmp_path) -> None:
    import google.oauth2.credentials

    token = gcp.compute_access(ctx_for(facts, env={"GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.t",
                                                   "CLOUDSDK_CORE_PROJECT": "from-gcloud"}))
    assert token is not None and token.project == "from-gcloud" and token.credentials.token == "ya29.t"
    adc = tmp_path / "adc.json"
    adc.write_text(json.dumps({"type": "authorized_user", "client_id": "id", "client_secret": "secret",
                               "refresh_token": "refresh", "quota_project_id": "billing-project"}))
    user = gcp.compute_access(ctx_for(facts, env={"GOOGLE_APPLICATION_CREDENTIALS": str(adc)}))
    assert user is not None and user.project == "billing-project"  # no project variable: the quota project
    assert isinstance(user.credentials, google.oauth2.credentials.Credentials)
    assert gcp.COMPUTE_SCOPE in (user.credentials.scopes or ())
    named = gcp.compute_access(ctx_for(facts, env={"GOOGLE_APPLICATION_CREDENTIALS": str(adc),
                                                   "GOOGLE_CLOUD_PROJECT": "mine"}))
    assert named is not None and named.project == "mine"


def test_zone_machines_needs_both_the_gpu_and_the_machine_type() -> None:
    accelerators = {"us-central1-a": {"nvidia-h100-80gb"}, "us-central1-b": {"nvidia-tesla-a100"}}
    machines = {"us-central1-a": {"a3-highgpu-8g", "a2-highgpu-1g"}, "us-central1-b": {"a3-highgpu-8g"}}
    assert gcp.zone_machines(accelerators, machines) == {"us-central1-a": {"a3-highgpu-8g"}}
    assert set(gcp.GCE_ACCELERATORS) == {accel for accel, _count in gcp.HOSTS}


def test_deprecated_accelerator_types_are_absent(facts, httpserver: HTTPServer) -> None:
    from google.auth.credentials import AnonymousCredentials

    body = page("accelerator_types_page2.json")
    body["items"]["zones/us-east1-b"]["acceleratorTypes"][0]["deprecated"] = {"state": "OBSOLETE"}
    body.pop("nextPageToken", None)
    httpserver.expect_request(ACCEL_PATH).respond_with_json(body)
    access = gcp.ComputeAccess(AnonymousCredentials(), PROJECT)
    c = ctx_for_endpoints(facts, env={}, endpoints={"gcp-compute": httpserver.url_for("").rstrip("/")}, sdk={})
    zones = gcp.list_zone_types(c, access, "accelerator")
    assert zones["us-east1-b"] == set() and zones["us-central1-f"] == {"nvidia-tesla-a100"}


def test_importing_the_adapter_imports_no_google_cloud_sdk() -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import sys, providers.gcp; "
            "assert not [m for m in sys.modules if m.startswith(('google.cloud', 'google.auth'))], sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_a_compute_api_that_times_out_is_retried_then_falls_back(facts, httpserver: HTTPServer, caplog) -> None:
    from conftest import slow_response

    serve_both_pages(httpserver)
    slow = HTTPServer(host="127.0.0.1", port=0, threaded=True)  # the SKU server stays quick
    slow.expect_request(ACCEL_PATH).respond_with_handler(slow_response(1.0))
    slow.expect_request(MACHINE_PATH).respond_with_json(page("machine_types_page2.json"))
    slow.start()
    try:
        offers = gcp_fetch_zoned(facts, httpserver, retries=1, timeout_s=0.3,
                                 endpoints={"gcp": httpserver.url_for("").rstrip("/"),
                                            "gcp-compute": slow.url_for("").rstrip("/")})
        assert {o.zone for o in offers} == {None}
        assert "Timeout" in zone_warning(caplog)
        deadline = time.monotonic() + 5  # the server logs a request once its slow handler has answered
        while len(compute_calls(slow, ACCEL_PATH)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(compute_calls(slow, ACCEL_PATH)) == 2  # the first try and one retry
    finally:
        slow.clear()
        slow.stop()


def _priced(description: str, usd: float, usage: str = "OnDemand", group: str = "GPU", unit: str = "h",
            sku_id: str = "X") -> dict[str, Any]:
    units, nanos = divmod(round(usd * 1e9), 10**9)
    body = sku(description, usage, units=str(units), nanos=nanos, unit=unit, sku_id=sku_id)
    body["category"]["resourceGroup"] = group
    return body


def test_a3_ultra_and_mega_written_with_spaces_and_g2_n1_hosts_are_priced(facts, httpserver: HTTPServer) -> None:
    """The SKU wordings GCP uses ('A3 Ultra Instance Core', 'A3 Mega Instance Ram', 'N1 Predefined Instance Core',
    'Nvidia Tesla T4 GPU') used to match nothing: no a3-ultragpu-8g, a3-megagpu-8g (from these SKUs), L4, T4
    or V100 offer. Prices here are composed; the arithmetic is GCP's (vCPUs x core + GiB x RAM + GPUs x GPU)."""
    skus = [
        _priced("A3 Ultra Instance Core running in Americas", 0.0306, group="CPU", sku_id="U-CORE"),
        _priced("A3 Ultra Instance Ram running in Americas", 0.0025, group="RAM", unit="GiBy.h", sku_id="U-RAM"),
        _priced("H200 141GB GPU running in Americas", 10.6, sku_id="U-GPU"),
        _priced("Spot Preemptible A3 Ultra Instance Core running in Americas", 0.0102, "Preemptible", "CPU"),
        _priced("Spot Preemptible A3 Ultra Instance Ram running in Americas", 0.0009, "Preemptible", "RAM",
                unit="GiBy.h"),
        _priced("Nvidia H200 141GB GPU attached to Spot Preemptible VMs running in Americas", 3.7, "Preemptible"),
        _priced("A3 Mega Instance Core running in Americas", 0.026924, group="CPU"),
        _priced("A3 Mega Instance Ram running in Americas", 0.002344, group="RAM", unit="GiBy.h"),
        _priced("Nvidia H100 80GB Mega GPU running in Americas", 10.344276),
        _priced("G2 Instance Core running in Americas", 0.02236, group="CPU"),
        _priced("G2 Instance Ram running in Americas", 0.00262, group="RAM", unit="GiBy.h"),
        _priced("Nvidia L4 GPU running in Americas", 0.56),
        _priced("N1 Predefined Instance Core running in Americas", 0.031611, group="N1Standard"),
        _priced("N1 Predefined Instance Ram running in Americas", 0.004237, group="N1Standard", unit="GiBy.h"),
        _priced("Nvidia Tesla T4 GPU running in Americas", 0.35),
        _priced("Nvidia Tesla V100 GPU running in Americas", 2.48),
        _priced("Nvidia Tesla T4 GPU attached to Spot Preemptible VMs running in Americas", 0.14, "Preemptible"),
    ]
    httpserver.expect_request(PATH, method="GET").respond_with_json({"skus": skus})
    offers = {o.instance_type: o for o in fetch(ctx_for(facts, httpserver))}
    ultra = offers["a3-ultragpu-8g"]
    assert ultra.accelerator == "H200" and ultra.gpus_per_node == 8
    assert ultra.on_demand_usd_per_hour == pytest.approx(224 * 0.0306 + 2952 * 0.0025 + 8 * 10.6)
    assert ultra.spot_usd_per_hour == pytest.approx(224 * 0.0102 + 2952 * 0.0009 + 8 * 3.7)
    assert "U-CORE" in ultra.price_ref and "U-RAM" in ultra.price_ref
    mega = offers["a3-megagpu-8g"]
    assert mega.accelerator == "H100-MEGA" and mega.on_demand_usd_per_hour == pytest.approx(
        208 * 0.026924 + 1872 * 0.002344 + 8 * 10.344276)
    l4 = offers["g2-standard-4"]
    assert (l4.accelerator, l4.gpus_per_node, l4.vcpus, l4.ram_gb) == ("L4", 1, 4.0, 16.0)
    assert l4.on_demand_usd_per_hour == pytest.approx(4 * 0.02236 + 16 * 0.00262 + 0.56)
    assert offers["g2-standard-96"].gpus_per_node == 8 and offers["g2-standard-96"].gpu_model == "L4"
    t4 = offers["n1-highmem-4"]
    assert (t4.accelerator, t4.gpus_per_node) == ("T4", 1)
    assert t4.on_demand_usd_per_hour == pytest.approx(4 * 0.031611 + 26 * 0.004237 + 0.35)
    assert t4.spot_usd_per_hour is None  # no N1 spot core/RAM SKU in this answer: spot is not half-priced
    v100 = offers["n1-highmem-64"]
    assert (v100.accelerator, v100.gpus_per_node) == ("V100", 8)
    assert v100.on_demand_usd_per_hour == pytest.approx(64 * 0.031611 + 416 * 0.004237 + 8 * 2.48)
    assert (offers["n1-highmem-8"].accelerator, offers["n1-highmem-8"].gpus_per_node) == ("T4", 2)
    assert (offers["n1-standard-8"].accelerator, offers["n1-standard-8"].gpus_per_node) == ("V100", 1)
    assert len(set(gcp.HOSTS.values())) == len(gcp.HOSTS)  # an instance type names one GPU configuration
    assert {o.region for o in offers.values()} == {"us-central1"}
    assert all((o.country, o.continent) == ("US", "north-america") for o in offers.values())

"""AWS adapter against botocore Stubbers: real clients, requests checked against the API models.

Responses are the recorded shapes in tests/fixtures/aws (see its README for what is copied and
what is composed). No test reaches AWS: every client is stubbed or a local fake.
"""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, NoCredentialsError, ReadTimeoutError
from botocore.stub import Stubber
from conftest import ROOT

import providers.aws as aws
from arbitrage.facts import load_facts
from providers.base import Adapter, FetchContext, MissingCredentials, ProviderError

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
REGIONS = ["us-east-1", "us-west-2", "eu-west-1"]
TYPES = ["p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge", "p5e.48xlarge"]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def spot_pages(region: str) -> list[dict[str, Any]]:
    """SpotPriceHistory pages with Timestamps as datetimes, as botocore hands them over."""
    pages = fixture("spot_price_history.json")[region]
    for page in pages:
        for item in page["SpotPriceHistory"]:
            item["Timestamp"] = datetime.fromisoformat(item["Timestamp"])
    return pages


def filters(types: list[str] | tuple[str, ...] = TYPES, regions: list[str] | tuple[str, ...] = REGIONS
            ) -> list[dict[str, str]]:
    return [
        {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
        {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
        {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
        {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
        {"Type": "ANY_OF", "Field": "instanceType", "Value": ",".join(types)},
        {"Type": "ANY_OF", "Field": "regionCode", "Value": ",".join(regions)},
    ]


def products_params(types: list[str] | tuple[str, ...] = TYPES, token: str | None = None,
                    regions: list[str] | tuple[str, ...] = REGIONS) -> dict[str, Any]:
    params: dict[str, Any] = {"ServiceCode": "AmazonEC2", "Filters": filters(types, regions),
                              "FormatVersion": "aws_v1", "MaxResults": 100}
    if token:
        params["NextToken"] = token
    return params


def product_pages(types: list[str] | tuple[str, ...], per_page: int) -> list[dict[str, Any]]:
    """One query's GetProducts pages: the recorded products of `types`, in order, `per_page` a page, token-chained."""
    items = [raw for t in types for page in fixture("get_products.json")[t] for raw in page["PriceList"]]
    pages: list[dict[str, Any]] = [{"FormatVersion": "aws_v1", "PriceList": items[i:i + per_page]}
                                   for i in range(0, len(items), per_page)] or [
        {"FormatVersion": "aws_v1", "PriceList": []}]
    for number, page in enumerate(pages[:-1], start=2):
        page["NextToken"] = f"products-page-{number}"
    return pages


def spot_params(token: str | None = None, types: list[str] = TYPES) -> dict[str, Any]:
    params: dict[str, Any] = {"InstanceTypes": types, "ProductDescriptions": ["Linux/UNIX"], "StartTime": NOW}
    if token:
        params["NextToken"] = token
    return params


@functools.cache
def _session() -> boto3.session.Session:
    """One session for every test client: botocore then loads each (large) API model once."""
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name="us-east-1")


class Stubs:
    """One stubbed pricing client and one stubbed EC2 client per region, handed out by a factory."""

    def __init__(self, regions: list[str]) -> None:
        def client(service: str, region: str) -> Any:
            return _session().client(service, region_name=region)

        self.pricing = client("pricing", "us-east-1")
        self.ec2 = {r: client("ec2", r) for r in regions}
        self.pricing_stub = Stubber(self.pricing)
        self.ec2_stub = {r: Stubber(c) for r, c in self.ec2.items()}
        self.created: list[tuple[str, str]] = []

    def factory(self, service: str, region: str) -> Any:
        self.created.append((service, region))
        return self.pricing if service == "pricing" else self.ec2[region]

    def all(self) -> list[Stubber]:
        return [self.pricing_stub, *self.ec2_stub.values()]

    def products(self, types: list[str] | tuple[str, ...] = TYPES, per_page: int = 5,
                 regions: list[str] | tuple[str, ...] = REGIONS) -> None:
        """Queue every page of the one GetProducts query for `types` in `regions`, NextToken chained."""
        token = None
        for page in product_pages(types, per_page):
            self.pricing_stub.add_response("get_products", page, products_params(types, token, regions))
            token = page.get("NextToken")

    def spot(self, region: str, types: list[str] = TYPES) -> None:
        token = None
        for page in spot_pages(region):
            self.ec2_stub[region].add_response("describe_spot_price_history", page, spot_params(token, types))
            token = page.get("NextToken")

    def describe(self, region: str, wanted: list[str]) -> None:
        for page in fixture("describe_instance_types.json")[region]:
            self.ec2_stub[region].add_response(
                "describe_instance_types", page, {"Filters": [{"Name": "instance-type", "Values": wanted}]})


@pytest.fixture
def stubs() -> Iterator[Stubs]:
    s = Stubs(REGIONS)
    for stub in s.all():
        stub.activate()
    yield s
    for stub in s.all():
        stub.deactivate()


def make_ctx(factory: Any = None, **kw: Any) -> FetchContext:
    sdk: dict[str, Any] = {"aws_regions": REGIONS, "aws_instance_types": TYPES}
    if factory is not None:
        sdk["aws_client_factory"] = factory
    base: dict[str, Any] = dict(facts=load_facts(), now=NOW, env={}, retries=2, backoff_s=0.01, max_backoff_s=0.05,
                                timeout_s=1.0, sdk=sdk)
    base.update(kw)
    return FetchContext(**base)


def fetch(ctx: FetchContext) -> list:
    return asyncio.run(aws.ADAPTER.fetch(ctx))


def queue_happy_path(s: Stubs) -> None:
    s.products()  # one query for the four types in the three regions: 8 products, two pages
    for r in REGIONS:
        s.spot(r)
    # us-east-1 sells the first three types; p5e is only seen (spot) in us-west-2, so it is described there.
    s.describe("us-east-1", ["p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge"])
    s.describe("us-west-2", ["p5e.48xlarge"])


# -- End to end -------------------------------------------------------------------------------

def test_fetch_prices_regions_and_zones(stubs: Stubs) -> None:
    queue_happy_path(stubs)
    offers = fetch(make_ctx(stubs.factory))
    for stub in stubs.all():
        stub.assert_no_pending_responses()  # every page of both APIs was requested, to the end

    by_key = {(o.region, o.zone, o.instance_type): o for o in offers}
    assert set(by_key) == {
        ("us-east-1", "use1-az4", "p4d.24xlarge"), ("us-east-1", "use1-az6", "p4d.24xlarge"),
        ("us-east-1", "use1-az4", "p4de.24xlarge"), ("us-east-1", "use1-az6", "p4de.24xlarge"),
        ("us-east-1", "use1-az2", "p5.48xlarge"), ("us-east-1", "use1-atl2-az1", "p5.48xlarge"),
        ("us-west-2", "usw2-az2", "p4d.24xlarge"), ("us-west-2", "usw2-az1", "p5.48xlarge"),
        ("us-west-2", "usw2-az3", "p5e.48xlarge"),
        ("us-west-2", None, "p4de.24xlarge"),  # on-demand, no spot in that region: one region-level offer
        ("eu-west-1", None, "p4d.24xlarge"),
    }

    p4d = by_key[("us-east-1", "use1-az4", "p4d.24xlarge")]
    assert p4d.on_demand_usd_per_hour == 21.957642 and p4d.spot_usd_per_hour == 8.1203  # newest of two
    assert (p4d.accelerator, p4d.gpus_per_node, p4d.gpu_memory_gb) == ("A100", 8, 40.0)
    assert (p4d.vcpus, p4d.ram_gb) == (96.0, 1152.0)
    assert p4d.interconnect == "efa" and p4d.interconnect_gbps == 400
    assert p4d.source == "live" and p4d.as_of == "2026-11-23T12:00:00+00:00"
    assert "sku H7NGEAC6UEHNTKSJ" in p4d.price_ref and "DescribeSpotPriceHistory us-east-1a" in p4d.price_ref

    p4de = by_key[("us-east-1", "use1-az6", "p4de.24xlarge")]
    assert p4de.accelerator == "A100-80GB" and p4de.gpu_model == "A100-80GB" and p4de.gpu_memory_gb == 80.0
    assert p4de.on_demand_usd_per_hour == 27.44705 and p4de.spot_usd_per_hour == 8.6505

    # The $0.00 Capacity Block product is not an on-demand price; the newest spot price wins (page 2).
    p5 = by_key[("us-east-1", "use1-az2", "p5.48xlarge")]
    assert p5.accelerator == "H100" and p5.on_demand_usd_per_hour == 55.04 and p5.spot_usd_per_hour == 19.2531
    assert by_key[("us-east-1", "use1-atl2-az1", "p5.48xlarge")].spot_usd_per_hour == 10.2397

    assert by_key[("us-west-2", "usw2-az2", "p4d.24xlarge")].on_demand_usd_per_hour == 21.95764
    p5e = by_key[("us-west-2", "usw2-az3", "p5e.48xlarge")]
    assert p5e.accelerator == "H200" and p5e.on_demand_usd_per_hour is None and p5e.spot_usd_per_hour == 19.5387
    assert (p5e.vcpus, p5e.ram_gb) == (192.0, 2048.0)  # from DescribeInstanceTypes: no Price List product

    eu = by_key[("eu-west-1", None, "p4d.24xlarge")]
    assert eu.on_demand_usd_per_hour == 23.71569 and eu.spot_usd_per_hour is None
    assert eu.price_ref == "AWS Price List GetProducts sku CQ3RZ8A8BQKVHSKT (effective 2026-09-01)"

    # Clients: one pricing client in us-east-1, one EC2 client per configured region.
    assert sorted(stubs.created) == sorted([("pricing", "us-east-1"), *(("ec2", r) for r in REGIONS)])


def test_adapter_meets_the_protocol() -> None:
    adapter = aws.ADAPTER
    assert isinstance(adapter, Adapter)
    assert adapter.name == "aws" and adapter.ttl_seconds == 3600 and "AWS_PROFILE" in adapter.credentials_hint


def test_importing_the_adapter_does_not_import_boto3() -> None:
    code = "import sys, providers.aws; assert not {'boto3', 'botocore'} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# -- Pagination and spot selection -------------------------------------------------------------

def test_get_products_follows_next_token_to_the_end(stubs: Stubs) -> None:
    stubs.products(["p4d.24xlarge"], per_page=2)  # two pages: us-east-1 + eu-west-1, then us-west-2
    prices = aws.fetch_on_demand(make_ctx(), stubs.pricing, ("p4d.24xlarge",), tuple(REGIONS))
    stubs.pricing_stub.assert_no_pending_responses()
    assert {k: p.usd_per_hour for k, p in prices.items()} == {
        ("us-east-1", "p4d.24xlarge"): 21.957642, ("eu-west-1", "p4d.24xlarge"): 23.71569,
        ("us-west-2", "p4d.24xlarge"): 21.95764,
    }
    # Regions outside the configured list are not priced, even when the answer carries them.
    stubs.products(["p4d.24xlarge"], regions=["us-east-1"])
    only_us = aws.fetch_on_demand(make_ctx(), stubs.pricing, ("p4d.24xlarge",), ("us-east-1",))
    assert set(only_us) == {("us-east-1", "p4d.24xlarge")}


def test_one_get_products_query_covers_every_type_and_region() -> None:
    (query,) = aws.product_queries(TYPES, REGIONS)
    assert query == filters(TYPES, REGIONS)
    assert query[-2]["Value"] == "p4d.24xlarge,p4de.24xlarge,p5.48xlarge,p5e.48xlarge"
    defaults = aws.product_queries(aws.DEFAULT_INSTANCE_TYPES, aws.DEFAULT_REGIONS)
    assert len(defaults) == 1 and all(len(f["Value"]) <= aws.FILTER_VALUE_MAX for f in defaults[0])


def test_lists_longer_than_the_value_limit_are_cut_into_several_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws, "FILTER_VALUE_MAX", 30)
    queries = aws.product_queries(TYPES, ["us-east-1", "us-west-2", "eu-west-1", "ap-south-1"])
    values = [(q[-2]["Value"], q[-1]["Value"]) for q in queries]
    assert values == [
        ("p4d.24xlarge,p4de.24xlarge", "us-east-1,us-west-2,eu-west-1"), ("p4d.24xlarge,p4de.24xlarge", "ap-south-1"),
        ("p5.48xlarge,p5e.48xlarge", "us-east-1,us-west-2,eu-west-1"), ("p5.48xlarge,p5e.48xlarge", "ap-south-1"),
    ]
    assert all(len(v) <= 30 for pair in values for v in pair)
    long_name = "a-very-long-instance-type-name-indeed"
    assert aws._any_of_values([long_name, "p5"], 10) == [long_name, "p5"]  # the API will refuse it, not us


def test_several_queries_run_concurrently_against_a_real_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two GetProducts queries, each two pages, through a real boto3 client to a loopback Price List server."""
    import threading

    from pytest_httpserver import HTTPServer
    from werkzeug import Request, Response

    monkeypatch.setattr(aws, "FILTER_VALUE_MAX", 30)  # -> one query for p4d+p4de, one for p5+p5e
    together = threading.Barrier(2, timeout=10)  # both first pages must be in flight at once, or this breaks
    seen: list[tuple[str, str | None]] = []

    def answer(request: Request) -> Response:
        assert request.headers["X-Amz-Target"] == "AWSPriceListService.GetProducts"
        body = json.loads(request.get_data())
        types = next(f["Value"] for f in body["Filters"] if f["Field"] == "instanceType").split(",")
        token = body.get("NextToken")
        seen.append((types[0], token or ""))
        if token is None:
            together.wait()
        pages = product_pages(types, per_page=2)
        page = pages[int(token.rsplit("-", 1)[1]) - 1] if token else pages[0]
        return Response(json.dumps(page), content_type="application/x-amz-json-1.1")

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.expect_request("/", method="POST").respond_with_handler(answer)
    server.start()
    try:
        client = _session().client("pricing", region_name="us-east-1", endpoint_url=server.url_for("/"))
        prices = aws.fetch_on_demand(make_ctx(), client, tuple(TYPES), tuple(REGIONS))
    finally:
        server.clear()
        server.stop()
    assert sorted(seen) == [("p4d.24xlarge", ""), ("p4d.24xlarge", "products-page-2"),
                            ("p4d.24xlarge", "products-page-3"), ("p5.48xlarge", ""),
                            ("p5.48xlarge", "products-page-2")]
    assert {k: p.usd_per_hour for k, p in prices.items()} == {
        ("us-east-1", "p4d.24xlarge"): 21.957642, ("eu-west-1", "p4d.24xlarge"): 23.71569,
        ("us-west-2", "p4d.24xlarge"): 21.95764, ("us-east-1", "p4de.24xlarge"): 27.44705,
        ("us-west-2", "p4de.24xlarge"): 27.44705, ("us-east-1", "p5.48xlarge"): 55.04,
        ("us-west-2", "p5.48xlarge"): 55.04,
    }


def test_a_failing_query_fails_on_demand_pricing(monkeypatch: pytest.MonkeyPatch) -> None:
    class HalfBroken:
        def get_products(self, **params: Any) -> dict[str, Any]:
            types = params["Filters"][-2]["Value"].split(",")
            if "p5.48xlarge" in types:
                raise aws_client_error("AccessDeniedException")
            return product_pages(types, per_page=100)[0]

    monkeypatch.setattr(aws, "FILTER_VALUE_MAX", 30)
    with pytest.raises(ProviderError, match=r"pricing:GetProducts in us-east-1 failed: AccessDeniedException"):
        aws.fetch_on_demand(make_ctx(), HalfBroken(), tuple(TYPES), tuple(REGIONS))


def aws_client_error(code: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "not allowed"}}, "GetProducts")


def test_spot_history_pages_and_newest_price_per_zone_wins(stubs: Stubs) -> None:
    stubs.spot("us-east-1")
    spot = aws.fetch_spot(make_ctx(), stubs.ec2["us-east-1"], "us-east-1", tuple(TYPES))
    stubs.ec2_stub["us-east-1"].assert_no_pending_responses()
    # p4d in us-east-1a: the newer price is on page 1, an older one on page 2; p5 in us-east-1c the reverse.
    assert spot[("p4d.24xlarge", "us-east-1a")].usd_per_hour == 8.1203
    assert spot[("p5.48xlarge", "us-east-1c")].usd_per_hour == 19.2531
    assert spot[("p5.48xlarge", "us-east-1c")].zone_id == "use1-az2"
    assert len(spot) == 6


def test_newest_spot_uses_zone_names_when_no_zone_id() -> None:
    items = [
        {"AvailabilityZone": "us-east-1a", "InstanceType": "p5.48xlarge", "ProductDescription": "Linux/UNIX",
         "SpotPrice": "20.0", "Timestamp": datetime(2026, 11, 23, 1, tzinfo=timezone.utc)},
        {"AvailabilityZone": "us-east-1a", "InstanceType": "p5.48xlarge", "ProductDescription": "Linux/UNIX",
         "SpotPrice": "18.5", "Timestamp": datetime(2026, 11, 23, 2, tzinfo=timezone.utc)},
        {"AvailabilityZone": "us-east-1a", "InstanceType": "p5.48xlarge", "ProductDescription": "Windows",
         "SpotPrice": "30.0", "Timestamp": datetime(2026, 11, 23, 3, tzinfo=timezone.utc)},
    ]
    spot = aws.newest_spot(items, ["p5.48xlarge"])
    assert list(spot) == [("p5.48xlarge", "us-east-1a")]
    newest = spot[("p5.48xlarge", "us-east-1a")]
    assert newest.usd_per_hour == 18.5 and newest.zone_id is None


def test_non_numeric_spot_price_is_an_error() -> None:
    item = {"AvailabilityZone": "us-east-1a", "InstanceType": "p5.48xlarge", "ProductDescription": "Linux/UNIX",
            "SpotPrice": "n/a", "Timestamp": NOW}
    with pytest.raises(ProviderError, match="not a number"):
        aws.newest_spot([item], ["p5.48xlarge"])


# -- GPU naming -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "mib", "expected"), [
    ("A100", 40960, "A100"),  # p4d
    ("A100", 81920, "A100-80GB"),  # p4de: AWS says 'A100', the memory says 80GB
    ("H100", 81920, "H100"),  # p5 (not H100-MEGA/PCIE, which share the memory)
    ("H200", 144384, "H200"),
    ("B200", 183359, "B200"),
    ("B300", 275040, "B300"),
    ("A100", None, "A100"),
    ("Radeon Pro V520", 8192, None),  # not a GPU gpuarb costs
])
def test_accelerator_decided_by_name_and_memory(name: str, mib: int | None, expected: str | None) -> None:
    assert aws.accelerator_for(make_ctx(), name, mib) == expected


def test_instance_types_are_described_once_in_the_first_region_selling_them(stubs: Stubs) -> None:
    stubs.describe("us-east-1", ["p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge"])
    stubs.describe("us-west-2", ["p5e.48xlarge"])
    seen = {"us-east-1": {"p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge"},
            "us-west-2": {"p4d.24xlarge", "p5e.48xlarge"}, "eu-west-1": {"p4d.24xlarge"}}
    gpus = aws.describe_gpus(make_ctx(), stubs.ec2, tuple(REGIONS), seen)
    for stub in stubs.all():
        stub.assert_no_pending_responses()
    assert gpus["p4de.24xlarge"] == aws.GpuInfo("A100", 8, 81920, 96.0, 1152.0)
    assert gpus["p5e.48xlarge"] is not None and gpus["p5e.48xlarge"].name == "H200"


def test_a_type_the_first_region_does_not_describe_is_asked_in_the_next(stubs: Stubs) -> None:
    stubs.ec2_stub["us-east-1"].add_response(
        "describe_instance_types", {"InstanceTypes": []},
        {"Filters": [{"Name": "instance-type", "Values": ["p5e.48xlarge"]}]})
    stubs.describe("us-west-2", ["p5e.48xlarge"])
    seen = {"us-east-1": {"p5e.48xlarge"}, "us-west-2": {"p5e.48xlarge"}, "eu-west-1": {"p5e.48xlarge"}}
    gpus = aws.describe_gpus(make_ctx(), stubs.ec2, tuple(REGIONS), seen)
    for stub in stubs.all():
        stub.assert_no_pending_responses()  # eu-west-1 is never asked: us-west-2 answered
    assert gpus["p5e.48xlarge"] is not None and gpus["p5e.48xlarge"].name == "H200"


# -- Price List validation -------------------------------------------------------------------------

def _price_item(**changes: Any) -> str:
    """The us-east-1 p4d PriceList entry with its on-demand dimension changed."""
    raw = fixture("get_products.json")["p4d.24xlarge"][0]["PriceList"][0]
    doc = json.loads(raw)
    for term in doc["terms"]["OnDemand"].values():
        for dim in term["priceDimensions"].values():
            dim.update(changes)
    return json.dumps(doc)


def test_non_usd_price_is_an_error(stubs: Stubs) -> None:
    page = {"FormatVersion": "aws_v1", "PriceList": [_price_item(pricePerUnit={"CNY": "150.1200000000"})]}
    stubs.pricing_stub.add_response("get_products", page, products_params(["p4d.24xlarge"]))
    with pytest.raises(ProviderError, match=r"aws: .*H7NGEAC6UEHNTKSJ.*priced in CNY, expected USD"):
        aws.fetch_on_demand(make_ctx(), stubs.pricing, ("p4d.24xlarge",), tuple(REGIONS))


def test_price_per_other_unit_is_an_error() -> None:
    with pytest.raises(ProviderError, match="expected 'Hrs'"):
        aws.parse_price_item(_price_item(unit="Quantity"), ["p4d.24xlarge"], REGIONS)


def test_malformed_price_list_entry_is_an_error() -> None:
    with pytest.raises(ProviderError, match="not a product JSON document"):
        aws.parse_price_item('{"product": ', ["p4d.24xlarge"], REGIONS)
    with pytest.raises(ProviderError, match="non-numeric"):
        aws.parse_price_item(_price_item(pricePerUnit={"USD": "call us"}), ["p4d.24xlarge"], REGIONS)


def test_capacity_blocks_and_local_zones_are_not_on_demand_prices() -> None:
    p5_items = fixture("get_products.json")["p5.48xlarge"][0]["PriceList"]
    capacity_block = next(i for i in p5_items if "CapacityBlock" in i)
    assert aws.parse_price_item(capacity_block, ["p5.48xlarge"], REGIONS) is None
    doc = json.loads(p5_items[0])
    doc["product"]["attributes"].update(locationType="AWS Local Zone", regionCode="us-east-1")
    assert aws.parse_price_item(json.dumps(doc), ["p5.48xlarge"], REGIONS) is None
    # No regionCode: the location name says which region it is.
    del doc["product"]["attributes"]["regionCode"]
    doc["product"]["attributes"]["locationType"] = "AWS Region"
    parsed = aws.parse_price_item(json.dumps(doc), ["p5.48xlarge"], REGIONS)
    assert parsed is not None and parsed.region == "us-east-1" and parsed.usd_per_hour == 55.04


# -- Retries and errors ------------------------------------------------------------------------------

def test_throttling_is_retried_with_backoff_then_succeeds(stubs: Stubs, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(aws, "_sleep", sleeps.append)
    stubs.pricing_stub.add_client_error("get_products", service_error_code="ThrottlingException",
                                        service_message="Rate exceeded", http_status_code=400,
                                        expected_params=products_params(["p5.48xlarge"]))
    stubs.products(["p5.48xlarge"])
    prices = aws.fetch_on_demand(make_ctx(backoff_s=0.5, max_backoff_s=8), stubs.pricing, ("p5.48xlarge",),
                                 tuple(REGIONS))
    stubs.pricing_stub.assert_no_pending_responses()
    assert sleeps == [0.5]
    assert prices[("us-east-1", "p5.48xlarge")].usd_per_hour == 55.04


def test_request_limit_exceeded_forever_gives_up(stubs: Stubs, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(aws, "_sleep", sleeps.append)
    for _ in range(3):
        stubs.ec2_stub["us-east-1"].add_client_error("describe_spot_price_history",
                                                     service_error_code="RequestLimitExceeded",
                                                     service_message="Request limit exceeded.", http_status_code=503)
    with pytest.raises(ProviderError, match=r"DescribeSpotPriceHistory in us-east-1 failed: RequestLimitExceeded.*"
                                            r"gave up after 3 attempts"):
        aws.fetch_spot(make_ctx(backoff_s=1, max_backoff_s=1.5), stubs.ec2["us-east-1"], "us-east-1", tuple(TYPES))
    assert sleeps == [1, 1.5]  # doubled, then capped at max_backoff_s


class _Flaky:
    """Wraps a client so its first calls raise a connection error before reaching the Stubber."""

    def __init__(self, client: Any, errors: list[Exception]) -> None:
        self._client, self._errors = client, errors

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**params: Any) -> Any:
            if self._errors:
                raise self._errors.pop(0)
            return method(**params)

        return call


def test_connection_errors_and_read_timeouts_are_retried(stubs: Stubs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws, "_sleep", lambda _s: None)
    stubs.spot("us-west-2")
    flaky = _Flaky(stubs.ec2["us-west-2"], [
        EndpointConnectionError(endpoint_url="https://ec2.us-west-2.amazonaws.com/"),
        ReadTimeoutError(endpoint_url="https://ec2.us-west-2.amazonaws.com/"),
    ])
    spot = aws.fetch_spot(make_ctx(), flaky, "us-west-2", tuple(TYPES))
    assert spot[("p5.48xlarge", "us-west-2b")].usd_per_hour == 12.6935


@pytest.mark.parametrize(("service", "code", "operation"), [
    ("pricing", "AccessDeniedException", "pricing:GetProducts"),
    ("ec2", "UnauthorizedOperation", "ec2:DescribeSpotPriceHistory"),
    ("ec2", "AccessDenied", "ec2:DescribeSpotPriceHistory"),
])
def test_access_denied_names_aws_and_the_operation(stubs: Stubs, monkeypatch: pytest.MonkeyPatch, service: str,
                                                  code: str, operation: str) -> None:
    monkeypatch.setattr(aws, "_sleep", lambda _s: pytest.fail("access errors are not retried"))
    message = "User: arn:aws:iam::123456789012:user/ci is not authorized to perform this operation"
    if service == "pricing":
        stubs.pricing_stub.add_client_error("get_products", service_error_code=code, service_message=message,
                                            http_status_code=400)
        stub, client, call = stubs.pricing_stub, stubs.pricing, lambda c: aws.fetch_on_demand(
            make_ctx(), c, ("p4d.24xlarge",), tuple(REGIONS))
    else:
        stubs.ec2_stub["us-east-1"].add_client_error("describe_spot_price_history", service_error_code=code,
                                                     service_message=message, http_status_code=403)
        stub, client, call = stubs.ec2_stub["us-east-1"], stubs.ec2["us-east-1"], lambda c: aws.fetch_spot(
            make_ctx(), c, "us-east-1", tuple(TYPES))
    with pytest.raises(ProviderError) as info:
        call(client)
    text = str(info.value)
    assert text.startswith("aws: AWS ") and operation in text and code in text and "\n" not in text
    assert "needs IAM permissions" in text and info.value.provider == "aws"
    stub.assert_no_pending_responses()


def test_no_credentials_at_call_time_is_missing_credentials() -> None:
    class NoCreds:
        def __getattr__(self, name: str) -> Any:
            def call(**_params: Any) -> Any:
                raise NoCredentialsError()
            return call

    with pytest.raises(MissingCredentials, match="Unable to locate credentials"):
        fetch(make_ctx(lambda service, region: NoCreds()))


# -- Credentials and configuration ------------------------------------------------------------------

@pytest.fixture
def no_ec2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws, "_on_ec2", lambda: False)


def cred_ctx(tmp_path: Path, **env: str) -> FetchContext:
    return make_ctx(env={"HOME": str(tmp_path), **env})


def test_missing_credentials(tmp_path: Path, no_ec2: None) -> None:
    assert aws.ADAPTER.has_credentials(cred_ctx(tmp_path)) is False
    assert aws.ADAPTER.has_credentials(cred_ctx(tmp_path, AWS_ACCESS_KEY_ID="AKIAEXAMPLE")) is False  # no secret
    # A credentials file elsewhere is not ~/.aws/credentials; an explicit path that does not exist finds nothing.
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[default]\naws_access_key_id = AKIAEXAMPLE\n"
                                                   "aws_secret_access_key = secret\n")
    assert aws.has_credentials(cred_ctx(tmp_path, AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "nope"))) is False
    # Only a non-default profile, and no AWS_PROFILE: botocore would find nothing either.
    (tmp_path / ".aws" / "credentials").write_text("[ci]\naws_access_key_id = AKIAEXAMPLE\n")
    assert aws.has_credentials(cred_ctx(tmp_path)) is False


@pytest.mark.parametrize("env", [
    {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"},
    {"AWS_PROFILE": "research"},
    {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r"},
    {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc"},
])
def test_credentials_from_the_environment(tmp_path: Path, no_ec2: None, env: dict[str, str]) -> None:
    assert aws.has_credentials(cred_ctx(tmp_path, **env)) is True


def test_credentials_from_files(tmp_path: Path, no_ec2: None) -> None:
    creds = tmp_path / "elsewhere" / "credentials"
    creds.parent.mkdir()
    creds.write_text("[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = secret\n")
    assert aws.has_credentials(cred_ctx(tmp_path, AWS_SHARED_CREDENTIALS_FILE=str(creds))) is True
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(creds.read_text())
    assert aws.has_credentials(cred_ctx(tmp_path)) is True
    (tmp_path / ".aws" / "credentials").unlink()
    (tmp_path / ".aws" / "config").write_text("[default]\nsso_session = corp\nregion = us-east-1\n")
    assert aws.has_credentials(cred_ctx(tmp_path)) is True


def test_instance_role_on_ec2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws, "_on_ec2", lambda: True)
    assert aws.has_credentials(cred_ctx(tmp_path)) is True
    assert aws.has_credentials(cred_ctx(tmp_path, AWS_EC2_METADATA_DISABLED="true")) is False


def test_regions_and_instance_types_are_configurable() -> None:
    ctx = FetchContext(facts=load_facts(), now=NOW,
                       env={"GPUARB_AWS_REGIONS": "us-east-1, eu-west-1", "GPUARB_AWS_INSTANCE_TYPES": "p5.48xlarge"})
    assert aws.regions(ctx) == ("us-east-1", "eu-west-1") and aws.instance_types(ctx) == ("p5.48xlarge",)
    default = FetchContext(facts=load_facts(), now=NOW, env={})
    assert aws.regions(default) == aws.DEFAULT_REGIONS and "p4de.24xlarge" in aws.instance_types(default)
    assert aws.regions(make_ctx()) == tuple(REGIONS)  # ctx.sdk wins


# -- GPU facts AWS states wrongly or not at all; the small-GPU families; one failing region ----------------

QUIRK_TYPES = ["p5en.48xlarge", "p5.4xlarge", "p4de.24xlarge", "g4dn.xlarge", "g5.12xlarge", "g6.xlarge",
               "g6e.12xlarge", "p3.2xlarge"]
# us-east-1 on-demand USD/h (SkyPilot v8 AWS catalog Price column; g5.12xlarge and p3.2xlarge: AWS EC2 on-demand
# pricing page), composed into Price List products from the recorded p4d product (see fixtures/aws/README.md).
QUIRK_PRICES = {"p5en.48xlarge": ("63.2960000000", "8", "1128 GB HBM3e", "192", "2048 GiB"),
                "p5.4xlarge": ("6.8800000000", "1", "80 GB HBM3", "16", "256 GiB"),
                "g4dn.xlarge": ("0.5260000000", "1", "16 GB", "4", "16 GiB"),
                "g5.12xlarge": ("5.6720000000", "4", "96 GB", "48", "192 GiB"),
                "g6.xlarge": ("0.8048000000", "1", "24 GB", "4", "16 GiB"),
                "g6e.12xlarge": ("10.4926400000", "4", "192 GB", "48", "384 GiB"),
                "p3.2xlarge": ("3.0600000000", "1", "16 GB", "8", "61 GiB")}


def composed_product(instance_type: str, usd: str, gpus: str, gpu_memory: str, vcpu: str, memory: str) -> str:
    doc = json.loads(fixture("get_products.json")["p4d.24xlarge"][0]["PriceList"][0])
    sku = "QK" + "".join(ch for ch in instance_type.upper() if ch.isalnum())[:14]
    doc["product"]["sku"] = sku
    doc["product"]["attributes"].update(instanceType=instance_type, gpu=gpus, gpuMemory=gpu_memory, vcpu=vcpu,
                                        memory=memory, usagetype=f"BoxUsage:{instance_type}")
    (term,) = doc["terms"]["OnDemand"].values()
    term["sku"] = sku
    for dim in term["priceDimensions"].values():
        dim["pricePerUnit"] = {"USD": usd}
    doc["terms"].pop("Reserved", None)
    return json.dumps(doc, separators=(",", ":"))


def quirk_stubs(regions: list[str]) -> Stubs:
    s = Stubs(regions)
    p4de_us_east = fixture("get_products.json")["p4de.24xlarge"][0]["PriceList"][:1]
    items = [composed_product(t, *QUIRK_PRICES[t]) for t in QUIRK_TYPES if t in QUIRK_PRICES] + p4de_us_east
    s.pricing_stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": items},
                                products_params(QUIRK_TYPES, regions=regions))
    spot = fixture("spot_price_history_quirks.json")["us-east-1"][0]
    for item in spot["SpotPriceHistory"]:
        item["Timestamp"] = datetime.fromisoformat(item["Timestamp"])
    s.ec2_stub["us-east-1"].add_response("describe_spot_price_history", spot, spot_params(types=QUIRK_TYPES))
    return s


def quirk_ctx(s: Stubs, regions: list[str]) -> FetchContext:
    return make_ctx(s.factory, sdk={"aws_regions": regions, "aws_instance_types": QUIRK_TYPES,
                                    "aws_client_factory": s.factory})


def test_gpu_named_nvidia_count_zero_and_undescribed_types_are_priced_from_family_facts() -> None:
    s = quirk_stubs(["us-east-1"])
    described = sorted(QUIRK_TYPES)
    s.ec2_stub["us-east-1"].add_response(
        "describe_instance_types", fixture("describe_instance_types_quirks.json")["us-east-1"][0],
        {"Filters": [{"Name": "instance-type", "Values": described}]})
    for stub in s.all():
        stub.activate()
    offers = fetch(quirk_ctx(s, ["us-east-1"]))
    for stub in s.all():
        stub.assert_no_pending_responses()
    by = {(o.instance_type, o.zone): o for o in offers}

    # p5en: DescribeInstanceTypes says 'NVIDIA'; the family table says H200 (used to be dropped)
    p5en = by[("p5en.48xlarge", "use1-az2")]
    assert (p5en.accelerator, p5en.gpus_per_node, p5en.gpu_memory_gb) == ("H200", 8, 141.0)
    assert p5en.on_demand_usd_per_hour == 63.296 and p5en.spot_usd_per_hour == 18.2492
    assert "GPU H200 from the family table (DescribeInstanceTypes named it 'NVIDIA')" in p5en.price_ref
    # ... and its Local Zone price is spot only: the region's on-demand price is not the Local Zone's
    atlanta = by[("p5en.48xlarge", "use1-atl2-az1")]
    assert atlanta.spot_usd_per_hour == 17.2074 and atlanta.on_demand_usd_per_hour is None
    assert "Local Zone" in atlanta.price_ref and atlanta.country == "US"
    # p5.4xlarge: 'Count: 0' (used to be dropped) is 1 GPU; no spot price, so one region-level offer
    p5 = by[("p5.4xlarge", None)]
    assert (p5.accelerator, p5.gpus_per_node, p5.on_demand_usd_per_hour) == ("H100", 1, 6.88)
    assert "1 GPU from the family table (DescribeInstanceTypes said Count 0)" in p5.price_ref
    # p4de: not described at all (ordinary accounts); A100 80 GB x8 from the family table
    p4de = by[("p4de.24xlarge", "use1-az4")]
    assert (p4de.accelerator, p4de.gpus_per_node, p4de.gpu_memory_gb) == ("A100-80GB", 8, 80.0)
    assert p4de.on_demand_usd_per_hour == 27.44705 and "did not describe the type" in p4de.price_ref
    # the small GPUs come through, with gpus.csv's memory where AWS reports a little less (22888 MiB = 24 GB)
    expected = {("g4dn.xlarge", "use1-az4"): ("T4", 1, 16.0, 0.526, 0.2039),
                ("g5.12xlarge", None): ("A10G", 4, 24.0, 5.672, None),
                ("g6.xlarge", "use1-az4"): ("L4", 1, 24.0, 0.8048, 0.349),
                ("g6e.12xlarge", "use1-az4"): ("L40S", 4, 48.0, 10.49264, 4.9101),
                ("p3.2xlarge", None): ("V100", 1, 16.0, 3.06, None)}
    for key, (gpu, count, memory, od, spot) in expected.items():
        o = by[key]
        assert (o.accelerator, o.gpus_per_node, o.gpu_memory_gb, o.on_demand_usd_per_hour, o.spot_usd_per_hour) == (
            gpu, count, memory, od, spot), key
        assert "family table" not in o.price_ref  # AWS described these correctly
        assert (o.country, o.continent) == ("US", "north-america")
    assert set(by) == {*expected, ("p5en.48xlarge", "use1-az2"), ("p5en.48xlarge", "use1-atl2-az1"),
                       ("p5.4xlarge", None), ("p4de.24xlarge", "use1-az4")}


def test_family_facts_cover_every_default_type() -> None:
    for instance_type in aws.DEFAULT_INSTANCE_TYPES:
        table, count = aws.family_facts(instance_type)
        assert table is not None and count, instance_type
    assert {"g4dn.xlarge", "g5.48xlarge", "g6.12xlarge", "g6e.xlarge", "p3.16xlarge"} <= set(
        aws.DEFAULT_INSTANCE_TYPES)
    assert aws.family_facts("g4dn.metal")[1] == 8 and aws.family_facts("g6e.24xlarge")[1] == 4


def test_one_failing_region_is_left_out_with_a_warning(stubs: Stubs, caplog: pytest.LogCaptureFixture) -> None:
    """An account that has not enabled a region answers AuthFailure there: the other regions' offers stay."""
    stubs.products()
    stubs.spot("us-east-1")
    stubs.ec2_stub["us-west-2"].add_client_error("describe_spot_price_history", service_error_code="AuthFailure",
                                                 service_message="AWS was not able to validate the provided "
                                                                 "access credentials", http_status_code=401)
    stubs.spot("eu-west-1")
    stubs.describe("us-east-1", ["p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge"])
    with caplog.at_level("WARNING", logger="providers.aws"):
        offers = fetch(make_ctx(stubs.factory))
    for stub in stubs.all():
        stub.assert_no_pending_responses()
    assert {o.region for o in offers} == {"us-east-1", "eu-west-1"}  # us-west-2's Price List rows too are left out
    assert any(o.region == "eu-west-1" and o.instance_type == "p4d.24xlarge" for o in offers)
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.getMessage().startswith("aws: region us-west-2 left out: ")
    assert "DescribeSpotPriceHistory in us-west-2 failed: AuthFailure" in warning.getMessage()


def test_a_region_whose_instance_type_lookup_fails_is_left_out_too(stubs: Stubs,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    stubs.products()
    for r in REGIONS:
        stubs.spot(r)
    stubs.ec2_stub["us-east-1"].add_client_error("describe_instance_types", service_error_code="UnauthorizedOperation",
                                                 service_message="not authorized", http_status_code=403)
    stubs.describe("us-west-2", ["p5e.48xlarge"])  # first round: the type us-east-1 does not sell
    # second round: us-east-1's types are asked in the next region selling them
    for page in fixture("describe_instance_types.json")["us-east-1"]:
        stubs.ec2_stub["us-west-2"].add_response("describe_instance_types", page, {
            "Filters": [{"Name": "instance-type", "Values": ["p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge"]}]})
    with caplog.at_level("WARNING", logger="providers.aws"):
        offers = fetch(make_ctx(stubs.factory))
    for stub in stubs.all():
        stub.assert_no_pending_responses()
    assert {o.region for o in offers} == {"us-west-2", "eu-west-1"}
    assert "region us-east-1 left out" in caplog.text and "DescribeInstanceTypes" in caplog.text


def test_every_region_failing_fails_the_fetch(stubs: Stubs) -> None:
    stubs.products()
    for r in REGIONS:
        stubs.ec2_stub[r].add_client_error("describe_spot_price_history", service_error_code="AuthFailure",
                                           service_message="AWS was not able to validate", http_status_code=401)
    with pytest.raises(ProviderError, match=r"aws: every region failed \(us-east-1, us-west-2, eu-west-1\); first: "
                                            r"AWS ec2:DescribeSpotPriceHistory in us-east-1 failed: AuthFailure"):
        fetch(make_ctx(stubs.factory))

"""Azure GPU VM prices from the public Retail Prices API (no credentials needed).

Docs: https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices
One OData query per run for the GPU VM sizes gpuarb costs; pages are followed by NextPageLink,
with a `$skip` fallback when a full page arrives without one. Linux Consumption meters only:
Windows products and Low Priority meters are dropped, Spot meters become spot prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from arbitrage.offers import Offer
from providers.base import FetchContext, ProviderError, make_live_offer
from providers.http import new_client, request_json

NAME = "azure"
DEFAULT_URL = "https://prices.azure.com"
PATH = "/api/retail/prices"
API_VERSION = "2023-01-01-preview"
PAGE_SIZE = 100  # the API's page size; a full page without NextPageLink triggers the $skip fallback
MAX_PAGES = 200


@dataclass(frozen=True)
class VmSize:
    """GPU content and host size of an Azure VM size (Azure VM size docs, ND/NC series pages)."""

    accelerator: str
    gpus: int
    vcpus: int
    ram_gb: float
    gpu_memory_gb: float


VM_SIZES: dict[str, VmSize] = {
    "Standard_ND96isr_H100_v5": VmSize("H100", 8, 96, 1900, 80),
    "Standard_ND96isr_H200_v5": VmSize("H200", 8, 96, 1850, 141),
    "Standard_ND96asr_v4": VmSize("A100", 8, 96, 900, 40),
    "Standard_ND96amsr_A100_v4": VmSize("A100-80GB", 8, 96, 1900, 80),
    "Standard_NC24ads_A100_v4": VmSize("A100-80GB", 1, 24, 220, 80),
    "Standard_NC48ads_A100_v4": VmSize("A100-80GB", 2, 48, 440, 80),
    "Standard_NC96ads_A100_v4": VmSize("A100-80GB", 4, 96, 880, 80),
    "Standard_NC40ads_H100_v5": VmSize("H100", 1, 40, 320, 94),
    "Standard_NC80adis_H100_v5": VmSize("H100", 2, 80, 640, 94),
}

_REQUIRED = ("armSkuName", "armRegionName", "retailPrice", "currencyCode", "meterName", "productName", "type",
             "unitOfMeasure")


def odata_filter() -> str:
    """The OData $filter selecting Consumption prices of the GPU VM sizes we cost."""
    skus = " or ".join(f"armSkuName eq '{sku}'" for sku in VM_SIZES)
    return f"serviceName eq 'Virtual Machines' and priceType eq 'Consumption' and ({skus})"


class AzureAdapter:
    """Azure Retail Prices API adapter."""

    name = NAME
    ttl_seconds = 6 * 3600
    credentials_hint = "none needed: public Retail Prices API"

    def has_credentials(self, ctx: FetchContext) -> bool:
        """The Retail Prices API is public."""
        return True

    async def fetch(self, ctx: FetchContext) -> list[Offer]:
        """Every priced GPU VM size per region, on-demand and spot."""
        items = await self._items(ctx)
        return build_offers(ctx, items)

    async def _items(self, ctx: FetchContext) -> list[dict[str, Any]]:
        base = ctx.endpoints.get(NAME, DEFAULT_URL).rstrip("/")
        params = {"api-version": API_VERSION, "currencyCode": "USD", "$filter": odata_filter()}
        url = f"{base}{PATH}?{urlencode(params)}"
        items: list[dict[str, Any]] = []
        async with new_client(ctx) as client:
            for _page in range(MAX_PAGES):
                page = await request_json(client, ctx, NAME, "GET", url)
                if not isinstance(page, dict) or not isinstance(page.get("Items"), list):
                    raise ProviderError(NAME, "response has no 'Items' list")
                if page.get("BillingCurrency", "USD") != "USD":
                    raise ProviderError(NAME, f"billing currency is {page.get('BillingCurrency')}, expected USD")
                items.extend(page["Items"])
                next_link = page.get("NextPageLink")
                if next_link:
                    url = _same_host(next_link, base)
                elif len(page["Items"]) >= PAGE_SIZE:
                    url = f"{base}{PATH}?{urlencode({**params, '$skip': len(items)})}"
                else:
                    return items
        raise ProviderError(NAME, f"more than {MAX_PAGES} pages; refusing to continue")


def _same_host(next_link: str, base: str) -> str:
    """Follow NextPageLink's path and query on our configured host (it carries ':443' and the public host)."""
    parts = urlsplit(next_link)
    query = urlencode(parse_qsl(parts.query, keep_blank_values=True))
    return f"{base}{parts.path}?{query}"


def build_offers(ctx: FetchContext, items: list[dict[str, Any]]) -> list[Offer]:
    """Retail price items -> one offer per (VM size, region) with on-demand and spot prices."""
    prices: dict[tuple[str, str], dict[str, tuple[str, float]]] = {}
    for index, item in enumerate(items):
        missing = [k for k in _REQUIRED if k not in item]
        if missing:
            raise ProviderError(NAME, f"price item {index} lacks {', '.join(missing)}")
        if item["currencyCode"] != "USD":
            raise ProviderError(NAME, f"price item {index} is in {item['currencyCode']}, expected USD")
        sku, meter, product = item["armSkuName"], str(item["meterName"]), str(item["productName"])
        if sku not in VM_SIZES or item["type"] != "Consumption" or "Windows" in product:
            continue
        if "Low Priority" in meter:
            continue
        if item["unitOfMeasure"] != "1 Hour":
            raise ProviderError(NAME, f"price item {index} is per {item['unitOfMeasure']!r}, expected '1 Hour'")
        try:
            price = float(item["retailPrice"])
        except (TypeError, ValueError):
            raise ProviderError(NAME, f"price item {index} has a non-numeric retailPrice") from None
        kind = "spot" if meter.endswith("Spot") else "on_demand"
        start = str(item.get("effectiveStartDate", ""))
        slot = prices.setdefault((sku, item["armRegionName"]), {})
        if kind not in slot or start > slot[kind][0]:  # the newest effective price wins
            slot[kind] = (start, price)
    offers = []
    for (sku, region), slot in sorted(prices.items()):
        size = VM_SIZES[sku]
        offers.append(make_live_offer(
            ctx, provider=NAME, region=region, instance_type=sku, accelerator=size.accelerator,
            gpus_per_node=size.gpus, gpu_memory_gb=size.gpu_memory_gb, vcpus=size.vcpus, ram_gb=size.ram_gb,
            on_demand_usd_per_hour=slot["on_demand"][1] if "on_demand" in slot else None,
            spot_usd_per_hour=slot["spot"][1] if "spot" in slot else None,
            price_ref=f"Azure Retail Prices API {PATH} armSkuName={sku}",
        ))
    return [o for o in offers if o.on_demand_usd_per_hour is not None or o.spot_usd_per_hour is not None]


ADAPTER = AzureAdapter()

"""Azure GPU VM prices from the public Retail Prices API, narrowed to what your subscription may deploy.

Prices (no credentials needed): https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices
One OData query per run for the GPU VM sizes gpuarb costs; pages are followed by NextPageLink,
with a `$skip` fallback when a full page arrives without one. Linux Consumption meters only:
Windows products and Low Priority meters are dropped, Spot meters become spot prices.

Restrictions (only with Azure credentials): when ``AZURE_SUBSCRIPTION_ID`` is set, the Resource SKUs
API (``azure-mgmt-compute``: ``ComputeManagementClient.resource_skus.list(filter="location eq '<region>'")``,
https://learn.microsoft.com/rest/api/compute/resource-skus/list) is asked once per priced region, up to
8 regions at a time, each in its own thread, every page (``nextLink``) to the end. An offer is dropped
when its VM size is absent from that region's list, or carries a ``Location`` restriction for the region
(``reasonCode`` ``NotAvailableForSubscription`` or ``QuotaId``): the subscription cannot deploy it there.
``Zone`` restrictions keep the offer (offers are per region and a regional, non-zonal VM can still be
created). Credentials: ``AZURE_TENANT_ID`` + ``AZURE_CLIENT_ID`` + ``AZURE_CLIENT_SECRET`` (a service
principal) when all three are set, otherwise azure-identity's ``DefaultAzureCredential`` chain (its
environment variables, workload identity, managed identity, Azure CLI / azd / PowerShell login).

* Without ``AZURE_SUBSCRIPTION_ID``: no filtering; one info log line says so.
* ``AZURE_SUBSCRIPTION_ID`` set but ``azure-mgmt-compute`` / ``azure-identity`` not installed: no
  filtering; one warning says which extra to install.
* The SKU lookup failing (no token, 403, 5xx after the retries, a page loop): the prices are still
  good, so the offers are returned unfiltered with one warning line giving the reason (chosen over
  failing the whole fetch, which would replace good live prices with older cached or bundled ones).
* Every priced offer restricted or absent: ``ProviderError`` saying so (an empty answer would read as
  a broken API).

Heavy SDKs are imported inside the functions that use them. Tests point the Resource Manager client at
a loopback server with ``ctx.endpoints["azure-arm"]`` (plain HTTP is allowed for loopback hosts only)
and hand in a credential object with ``ctx.sdk["azure_credential"]``.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from arbitrage.offers import Offer
from providers.base import FetchContext, ProviderError, make_live_offer
from providers.http import new_client, request_json

log = logging.getLogger(__name__)

NAME = "azure"
DEFAULT_URL = "https://prices.azure.com"
PATH = "/api/retail/prices"
API_VERSION = "2023-01-01-preview"
PAGE_SIZE = 100  # the API's page size; a full page without NextPageLink triggers the $skip fallback
MAX_PAGES = 200

ARM_ENDPOINT = "azure-arm"  # ctx.endpoints key of the Resource Manager base URL
DEFAULT_ARM_URL = "https://management.azure.com"
SUBSCRIPTION_ENV = "AZURE_SUBSCRIPTION_ID"
SECRET_ENV = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
SKU_MAX_PAGES = 50  # one region's SKU list is a few pages; a guard against a nextLink that never ends
SKU_THREADS = 8
SUBSCRIPTION_ID_HINT = f"{SUBSCRIPTION_ENV} + Azure credentials (service principal variables or az login)"


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
    """Azure Retail Prices API adapter, with the subscription's SKU restrictions when credentials exist."""

    name = NAME
    ttl_seconds = 6 * 3600
    credentials_hint = (f"none needed: public Retail Prices API ({SUBSCRIPTION_ID_HINT} adds your "
                        "subscription's SKU restrictions)")

    def has_credentials(self, ctx: FetchContext) -> bool:
        """The Retail Prices API is public."""
        return True

    async def fetch(self, ctx: FetchContext) -> list[Offer]:
        """Every priced GPU VM size per region, on-demand and spot, less what the subscription cannot deploy."""
        items = await self._items(ctx)
        return await restrict_to_subscription(ctx, build_offers(ctx, items))

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



# ---- the subscription's SKU restrictions (Resource SKUs API) -------------------------------------------------


def is_available(sku: Mapping[str, Any], region: str) -> bool:
    """True when a Resource SKU is listed in `region` and no Location restriction covers that region."""
    here = region.lower()
    if here not in {str(loc).lower() for loc in sku.get("locations") or ()}:
        return False
    for restriction in sku.get("restrictions") or ():
        if restriction.get("type") != "Location":
            continue  # 'Zone' restrictions leave regional (non-zonal) deployment possible
        info = restriction.get("restrictionInfo") or {}
        where = info.get("locations") or restriction.get("values") or ()
        if here in {str(loc).lower() for loc in where}:
            return False
    return True


def available_sizes(skus: Iterable[Mapping[str, Any]], region: str) -> set[str]:
    """The VM_SIZES the subscription may deploy in `region`, from that region's Resource SKUs list."""
    return {str(sku.get("name")) for sku in skus
            if sku.get("resourceType") == "virtualMachines" and sku.get("name") in VM_SIZES
            and is_available(sku, region)}


def as_rest_mapping(sku: Any) -> Mapping[str, Any]:
    """A Resource SKU as its REST JSON mapping: newer SDK models are mappings, older (msrest) ones serialize."""
    if isinstance(sku, Mapping):
        return sku
    serialize = getattr(sku, "serialize", None)
    if callable(serialize):
        return serialize(keep_readonly=True)  # every field of a Resource SKU is read-only
    raise ProviderError(NAME, f"Resource SKUs list returned a {type(sku).__name__}, not a SKU")


def arm_credential(ctx: FetchContext) -> Any:
    """ctx.sdk['azure_credential'], else a service principal from the three variables, else DefaultAzureCredential."""
    injected = ctx.sdk.get("azure_credential")
    if injected is not None:
        return injected
    tenant, client, secret = (ctx.env.get(name, "").strip() for name in SECRET_ENV)
    if tenant and client and secret:
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(tenant, client, secret)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def region_skus(ctx: FetchContext, credential: Any, subscription: str, region: str) -> set[str]:
    """Blocking (run in a thread): the VM_SIZES deployable in one region, every page of its SKU list."""
    from azure.mgmt.compute import ComputeManagementClient

    from arbitrage import __version__

    base = ctx.endpoints.get(ARM_ENDPOINT, DEFAULT_ARM_URL).rstrip("/")
    options: dict[str, Any] = {"enforce_https": False} if _loopback_http(base) else {}
    client = ComputeManagementClient(
        credential, subscription, base_url=base, retry_total=ctx.retries, retry_backoff_factor=ctx.backoff_s,
        retry_backoff_max=ctx.max_backoff_s, connection_timeout=ctx.timeout_s, read_timeout=ctx.timeout_s,
        user_agent=f"gpuarb/{__version__}")
    skus: list[Mapping[str, Any]] = []
    with client:
        pages = client.resource_skus.list(filter=f"location eq '{region}'", **options).by_page()
        for number, page in enumerate(pages, start=1):
            if number > SKU_MAX_PAGES:
                raise ProviderError(NAME, f"Resource SKUs list for {region}: more than {SKU_MAX_PAGES} pages")
            skus.extend(as_rest_mapping(sku) for sku in page)
    return available_sizes(skus, region)


def _sdk_missing() -> str | None:
    for module in ("azure.mgmt.compute", "azure.identity"):
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except (ImportError, ValueError):
            return module
    return None


async def restrict_to_subscription(ctx: FetchContext, offers: list[Offer]) -> list[Offer]:
    """Drop offers the subscription cannot deploy (see the module docstring); unchanged without credentials."""
    import asyncio

    subscription = ctx.env.get(SUBSCRIPTION_ENV, "").strip()
    if not subscription:
        log.info("azure: %s is not set; prices are not narrowed to what a subscription may deploy",
                 SUBSCRIPTION_ENV)
        return offers
    missing = _sdk_missing() if "azure_credential" not in ctx.sdk else None
    if missing:
        log.warning("azure: SKU restrictions not checked: %s is not installed (pip install 'gpuarb[azure]')", missing)
        return offers
    regions = sorted({o.region for o in offers})
    gate = asyncio.Semaphore(SKU_THREADS)

    async def one(credential: Any, region: str) -> tuple[str, set[str]]:
        async with gate:
            return region, await asyncio.to_thread(region_skus, ctx, credential, subscription, region)

    credential = None
    try:
        credential = arm_credential(ctx)
        answers = await asyncio.gather(*(one(credential, r) for r in regions), return_exceptions=True)
        failed = next((a for a in answers if isinstance(a, BaseException)), None)
        if failed is not None:
            raise failed
    except Exception as exc:  # an enrichment failing must not throw away good prices: warn, keep them all
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        status = getattr(exc, "status_code", None)
        log.warning("azure: SKU restrictions not checked (%s%s: %s); Azure offers are not narrowed to "
                    "subscription %s", f"HTTP {status} " if status else "", type(exc).__name__, reason, subscription)
        return offers
    finally:
        close = getattr(credential, "close", None)
        if callable(close) and "azure_credential" not in ctx.sdk:
            close()  # every region's thread has finished: gather waited for all of them
    available: dict[str, set[str]] = dict(a for a in answers if isinstance(a, tuple))
    kept = [o for o in offers if o.instance_type in available.get(o.region, set())]
    if not kept and offers:
        raise ProviderError(NAME, f"none of the {len(offers)} priced GPU VM offers can be deployed by subscription "
                                  f"{subscription} (restricted or absent in every region, Resource SKUs API)")
    if len(kept) < len(offers):
        log.info("azure: %d of %d offers dropped: restricted or absent for subscription %s",
                 len(offers) - len(kept), len(offers), subscription)
    return kept


ADAPTER = AzureAdapter()

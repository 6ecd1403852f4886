"""RunPod Pod prices and stock from RunPod's GraphQL API.

Docs: https://docs.runpod.io/sdks/graphql/configurations (all requests go to
``POST https://api.runpod.io/graphql`` with the API key as the ``api_key`` query parameter; schema at
https://graphql-spec.runpod.io/). The key comes from ``RUNPOD_API_KEY``.

Two kinds of query, all POSTed to the same endpoint:

1. ``countryCodes``, ``dataCenters { id name listed }`` and ``gpuTypes { id displayName memoryInGb secureCloud
   communityCloud securePrice communityPrice secureSpotPrice communitySpotPrice }``: the catalogue.
   Prices are USD **per GPU-hour**, one global figure per GPU type and cloud. ``countryCodes`` lists the
   countries Community Cloud hosts are in (gpuhunt's runpod.py queries Community Cloud by them; nulls skipped).
2. For each GPU count N in 1, 2, 4, 8: one query holding, per listed data centre, an aliased
   ``gpuTypes { id lowestPrice(input: {gpuCount: N, secureCloud: true, dataCenterId: "<DC>"})
   { stockStatus } }`` and, per country code, one Community Cloud alias (``secureCloud: false,
   countryCode: "<CC>"``). ``stockStatus`` null means "not deployable there with N GPUs now".

Offers: Secure Cloud rows are per data centre, region = the data-centre id in lower case ('us-tx-3'),
country/continent from the region table; Community Cloud (third-party hosts, no data centre) is per country
with stock there: region ``community-<cc>`` ('community-se'), country the ISO code. Community Cloud is not a
data centre SkyPilot can pin (it launches Secure Cloud only), but it is a real place, so a data-residency rule
can select or exclude it. instance_type is '<N>x <RunPod GPU type id>' ('8x NVIDIA H100 80GB
HBM3'); the per-instance price is the per-GPU price x N; spot is ``secureSpotPrice`` /
``communitySpotPrice`` x N (RunPod's interruptible pods). vCPU/RAM vary by host and are left
empty, as in the snapshot. A GraphQL ``errors`` array (RunPod answers those with HTTP 200) is a
ProviderError. GPU types the fact tables do not know (RTX 4090, MI300X...) are skipped.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from arbitrage.geo import continent_of
from arbitrage.offers import Offer
from arbitrage.plural import plural
from providers.base import (
    FetchContext,
    ProviderError,
    accelerator_for,
    env_api_key,
    gpu_family,
    has_env_key,
    make_live_offer,
    normalize_gpu_text,
)
from providers.http import new_client, request_json

if TYPE_CHECKING:
    import httpx

NAME = "runpod"
DEFAULT_URL = "https://api.runpod.io"
PATH = "/graphql"
ENV_KEY = "RUNPOD_API_KEY"
GPU_COUNTS = (1, 2, 4, 8)
COMMUNITY_PREFIX = "community-"  # Community Cloud regions: community-<ISO country, lower case>

CATALOG_QUERY = """query GpuarbCatalog {
  countryCodes
  dataCenters { id name listed }
  gpuTypes {
    id displayName memoryInGb secureCloud communityCloud
    securePrice communityPrice secureSpotPrice communitySpotPrice
  }
}"""

def gpu_from_type(ctx: FetchContext, gpu_id: str, display_name: str, memory_gb: float | None) -> str | None:
    """Canonical accelerator for a RunPod GPU type ('NVIDIA A100-SXM4-80GB', 80) -> 'A100-80GB', or None."""
    for text in (gpu_id, display_name):
        family = gpu_family(text)
        if family is not None:
            if re.search(r"\b80 ?GB\b", normalize_gpu_text(text)):  # the name says 80 GB whatever memoryInGb says
                memory_gb = max(memory_gb or 0.0, 80.0)
            return accelerator_for(ctx, family, memory_gb)
    return None


def community_region(country_code: str) -> str:
    """The region of Community Cloud hosts in one country: 'SE' -> 'community-se'."""
    return COMMUNITY_PREFIX + country_code.lower()


def is_community(region: str) -> bool:
    """True for a Community Cloud region ('community-se'; the bare 'community' of older caches too)."""
    return region == "community" or region.startswith(COMMUNITY_PREFIX)


def stock_alias(data_center_id: str, taken: set[str], prefix: str = "dc_") -> str:
    """A GraphQL alias/variable name for a data centre ('US-TX-3' -> 'dc_US_TX_3') or a country ('cc_SE'),
    unique within a query."""
    alias = prefix + re.sub(r"[^0-9A-Za-z_]", "_", data_center_id)
    while alias in taken:
        alias += "_"
    taken.add(alias)
    return alias


def stock_query(aliases: list[str]) -> str:
    """One query asking every alias's gpuTypes for lowestPrice(input: $alias) { stockStatus }."""
    params = ", ".join(f"${a}: GpuLowestPriceInput" for a in aliases)
    fields = "\n".join(f"  {a}: gpuTypes {{ id lowestPrice(input: ${a}) {{ stockStatus }} }}" for a in aliases)
    return f"query GpuarbStock({params}) {{\n{fields}\n}}"


class RunPodAdapter:
    """RunPod GraphQL adapter (Secure Cloud per data centre, Community Cloud per host country)."""

    name = NAME
    ttl_seconds = 1800
    credentials_hint = f"set {ENV_KEY} (RunPod API key with read access)"

    def has_credentials(self, ctx: FetchContext) -> bool:
        """True when RUNPOD_API_KEY is set and non-empty."""
        return has_env_key(ctx, ENV_KEY)

    async def fetch(self, ctx: FetchContext) -> list[Offer]:
        """Secure Cloud offers per data centre and Community Cloud offers per country with stock, 1/2/4/8 GPUs."""
        import asyncio

        key = env_api_key(ctx, NAME, ENV_KEY)
        url = ctx.endpoints.get(NAME, DEFAULT_URL).rstrip("/") + PATH
        async with new_client(ctx) as client:
            catalog = await _graphql(client, ctx, url, key, CATALOG_QUERY, {})
            data_centers, gpu_types = parse_catalog(catalog)
            countries = parse_countries(catalog)
            taken: set[str] = set()
            aliases = {stock_alias(dc, taken): dc for dc in data_centers}
            community = {stock_alias(cc, taken, "cc_"): cc for cc in countries}
            query = stock_query([*aliases, *community])

            async def stock_for(count: int) -> dict[str, Any]:
                variables: dict[str, Any] = {a: {"gpuCount": count, "secureCloud": True, "dataCenterId": dc}
                                             for a, dc in aliases.items()}
                variables.update({a: {"gpuCount": count, "secureCloud": False, "countryCode": cc}
                                  for a, cc in community.items()})
                return await _graphql(client, ctx, url, key, query, variables)

            answers = await asyncio.gather(*(stock_for(n) for n in GPU_COUNTS))
        stock: dict[tuple[int, str], set[str]] = {}
        for count, data in zip(GPU_COUNTS, answers, strict=True):
            for alias, dc in aliases.items():
                stock[(count, dc.lower())] = in_stock(data, alias)
            for alias, cc in community.items():
                stock[(count, community_region(cc))] = in_stock(data, alias)
        return build_offers(ctx, gpu_types, stock)


async def _graphql(client: httpx.AsyncClient, ctx: FetchContext, url: str, key: str, query: str,
                   variables: dict[str, Any]) -> dict[str, Any]:
    """POST one GraphQL query; the `data` object, or ProviderError on `errors` / a missing `data`."""
    body = await request_json(client, ctx, NAME, "POST", url, params={"api_key": key},
                              json={"query": query, "variables": variables})
    if not isinstance(body, dict):
        raise ProviderError(NAME, "GraphQL answer is not a JSON object")
    errors = body.get("errors")
    if errors:
        first = errors[0] if isinstance(errors, list) and errors else errors
        message = first.get("message", first) if isinstance(first, dict) else first
        more = f" (+{len(errors) - 1} more)" if isinstance(errors, list) and len(errors) > 1 else ""
        raise ProviderError(NAME, f"GraphQL error: {' '.join(str(message).split())[:200]}{more}")
    if not isinstance(body.get("data"), dict):
        raise ProviderError(NAME, "GraphQL answer has no 'data' object")
    return body["data"]


def parse_catalog(data: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """(listed data-centre ids, GPU type records) from the catalogue query's data."""
    centers, gpu_types = data.get("dataCenters"), data.get("gpuTypes")
    if not isinstance(centers, list) or not isinstance(gpu_types, list):
        raise ProviderError(NAME, "catalogue answer lacks 'dataCenters' or 'gpuTypes' lists")
    listed = sorted({str(dc["id"]) for dc in centers if isinstance(dc, dict) and dc.get("id") and dc.get("listed")})
    return listed, [t for t in gpu_types if isinstance(t, dict)]


def parse_countries(data: dict[str, Any]) -> list[str]:
    """The ISO country codes of Community Cloud hosts (``countryCodes``; nulls and non-codes skipped)."""
    codes = data.get("countryCodes")
    if codes is None:
        return []
    if not isinstance(codes, list):
        raise ProviderError(NAME, "catalogue answer's 'countryCodes' is not a list")
    return sorted({c.strip().upper() for c in codes if isinstance(c, str) and re.fullmatch(r"[A-Za-z]{2}", c.strip())})


def in_stock(data: dict[str, Any], alias: str) -> set[str]:
    """GPU type ids whose lowestPrice.stockStatus is set under one alias of a stock answer."""
    rows = data.get(alias)
    if not isinstance(rows, list):
        raise ProviderError(NAME, f"stock answer lacks the '{alias}' list")
    return {str(r["id"]) for r in rows if isinstance(r, dict) and r.get("id")
            and isinstance(r.get("lowestPrice"), dict) and r["lowestPrice"].get("stockStatus")}


def _price(gpu_type: dict[str, Any], field: str) -> float | None:
    """A per-GPU price field: None when absent/null/zero, ProviderError when not a number."""
    value = gpu_type.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProviderError(NAME, f"GPU type {gpu_type.get('id')!r} has a non-numeric {field}: {value!r}")
    return float(value) if value > 0 else None


def build_offers(ctx: FetchContext, gpu_types: list[dict[str, Any]],
                 stock: dict[tuple[int, str], set[str]]) -> list[Offer]:
    """Catalogue + stock per (GPU count, region) -> live offers, priced per instance (per-GPU x count)."""
    offers: list[Offer] = []
    for gpu_type in sorted(gpu_types, key=lambda t: str(t.get("id"))):
        gpu_id = str(gpu_type.get("id") or "")
        memory = gpu_type.get("memoryInGb")
        memory_gb = float(memory) if isinstance(memory, (int, float)) and not isinstance(memory, bool) else None
        accelerator = gpu_from_type(ctx, gpu_id, str(gpu_type.get("displayName") or ""), memory_gb)
        if not gpu_id or accelerator is None:
            continue
        clouds = {
            "secure": (bool(gpu_type.get("secureCloud")), _price(gpu_type, "securePrice"),
                       _price(gpu_type, "secureSpotPrice")),
            "community": (bool(gpu_type.get("communityCloud")), _price(gpu_type, "communityPrice"),
                          _price(gpu_type, "communitySpotPrice")),
        }
        for (count, region), ids in sorted(stock.items()):
            if gpu_id not in ids:
                continue
            community = is_community(region)
            sold, on_demand, spot = clouds["community" if community else "secure"]
            if not sold or (on_demand is None and spot is None):
                continue
            cloud = "Community Cloud" if community else "Secure Cloud"
            per_gpu = ", ".join(f"{label} ${p:g}/GPU-h" for label, p in (("on-demand", on_demand), ("spot", spot))
                                if p is not None)
            where = (f"Community Cloud hosts in {region.removeprefix(COMMUNITY_PREFIX).upper()}" if community
                     else region.upper())
            country = region.removeprefix(COMMUNITY_PREFIX).upper() if community else None
            offers.append(make_live_offer(
                ctx, provider=NAME, region=region, instance_type=f"{count}x {gpu_id}", accelerator=accelerator,
                gpus_per_node=count, gpu_memory_gb=memory_gb,
                on_demand_usd_per_hour=None if on_demand is None else round(on_demand * count, 6),
                spot_usd_per_hour=None if spot is None else round(spot * count, 6),
                price_ref=(f"RunPod GraphQL gpuTypes '{gpu_id}' {cloud}: {per_gpu} x {plural(count, 'GPU')}; "
                           f"in stock in {where}"),
                country=country, continent=continent_of(country) if country else None,
            ))
    return offers


ADAPTER = RunPodAdapter()

"""Vast.ai marketplace offers: the cheapest few real listings per GPU, count and host location.

Docs: https://vast.ai/developers/api ("GET /api/v0/bundles/ - search available GPU offers",
``Authorization: Bearer $VAST_API_KEY``); field meanings from the vastai CLI's ``search offers``
help (vast-ai/vast-python). Default host https://console.vast.ai (the SDK's default server).

One search per GPU family gpuarb costs (``VAST_GPU_NAMES``, Vast's own ``gpu_name`` spellings, as gpuhunt's
vastai.py maps them), run concurrently, each a GET with ``q=<JSON>``::

    {"gpu_name": {"in": [...]}, "num_gpus": {"in": [1, 2, 4, 8]}, "verified": {"eq": true},
     "rentable": {"eq": true}, "rented": {"eq": false}, "external": {"eq": false},
     "type": "on-demand", "order": [["dph_base", "asc"]], "limit": SEARCH_LIMIT}

i.e. verified, rentable, not-rented, non-external hosts, cheapest first. Each offer carries ``id`` (what
is rented), ``machine_id``, ``gpu_name`` ('H100 SXM'), ``num_gpus``, ``gpu_ram`` (MB per GPU), ``dph_base``
(USD/h for the GPUs and the host's CPU/RAM share, **without storage**), ``dph_total`` (``dph_base`` plus the
default disk's storage), ``storage_cost`` (USD per GB-month), ``min_bid`` (the current minimum bid in USD/h for
an interruptible rental, which is also without storage), ``reliability2`` (the host's reliability score, 0-1)
and ``geolocation`` ('Texas, US').

Offers are concrete, never a median: per (GPU model, GPU count, location) the ``KEEP_CHEAPEST`` cheapest
listings are returned, each as itself: its own on-demand price, its own bid, its host's reliability
(``host_reliability``), how many listings that group has now (``available``), and its offer id (``zone`` =
``offer-<id>``, also in ``price_ref``). The location is the host's: ``region`` is
``arbitrage.geo.marketplace_region`` of the country (and, for US and Canadian hosts, the state or province:
'us-texas', 'de'), ``country`` / ``continent`` from ``arbitrage.geo.parse_geolocation``. A host reporting no
country gets region ``unknown`` and an empty country, so no data-residency rule can select it.

**On-demand and spot are comparable: both exclude storage.** On-demand is ``dph_base`` (not ``dph_total``,
which adds the default disk's storage while ``min_bid`` does not); storage is billed on top of either at the
listing's ``storage_cost`` per GB-month, stated in ``price_ref``.

instance_type is '<n>x-<gpu_name with spaces as _>' ('8x-H100_SXM'); A100 names carry the memory class as
well ('1x-A100_SXM4-80GB'), because Vast sells 40 GB and 80 GB cards under one name. A listing lacking
gpu_name, num_gpus or a numeric dph_base, or with a GPU gpuarb does not cost, is skipped. vCPU/RAM vary by host:
left empty. A search that fills ``SEARCH_LIMIT`` is logged: it is sorted by price, so the cheapest listings
are all in, but a location whose cheapest listing is dearer than the limit-th may be missing.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from typing import Any

from arbitrage.geo import marketplace_region, parse_geolocation
from arbitrage.offers import Offer
from arbitrage.plural import plural
from providers.base import (
    FetchContext,
    ProviderError,
    accelerator_for,
    env_api_key,
    finite_number,
    gpu_family,
    gpu_patterns,
    has_env_key,
    make_live_offer,
)
from providers.http import new_client, request_json

log = logging.getLogger(__name__)

NAME = "vast"
DEFAULT_URL = "https://console.vast.ai"
PATH = "/api/v0/bundles/"
ENV_KEY = "VAST_API_KEY"
SEARCH_LIMIT = 1000  # listings per GPU-family search, cheapest first
KEEP_CHEAPEST = 3  # listings kept per (GPU model, count, location)
GPU_COUNTS = (1, 2, 4, 8)
UNKNOWN_REGION = "unknown"
# Locations whose hosts name a state or province before the country ('Texas, US'); elsewhere the part before
# the country is usually the country's own name ('France, FR'), so the country alone is the region.
_SUBDIVIDED = frozenset({"US", "CA"})

# Vast's gpu_name spellings per GPU family gpuarb costs (gpuhunt providers/vastai.py mapping rules; the
# vastai CLI's offer listings). One search per family.
VAST_GPU_NAMES: dict[str, tuple[str, ...]] = {
    "H100": ("H100 SXM", "H100 PCIE", "H100 NVL"),
    "H200": ("H200", "H200 NVL"),
    "B200": ("B200",),
    "GH200": ("GH200 SXM",),
    "A100": ("A100 SXM4", "A100 PCIE", "A100X"),
    "L40S": ("L40S",),
    "L4": ("L4",),
    "A10": ("A10",),
    "A6000": ("RTX A6000",),
    "V100": ("Tesla V100",),
    "T4": ("Tesla T4",),
    "RTX6000": ("Q RTX 6000",),
}

# Vast's 'Q RTX 6000' is the 24 GB Quadro RTX 6000; 'RTX 6000Ada' is another card.
_EXTRA_FAMILIES = gpu_patterns((r"\bQ(UADRO)? ?RTX ?6000\b", "RTX6000"))
_MEMORY_SPLIT = frozenset({"A100", "A100-80GB"})  # families Vast sells in two memory sizes under one name


def gpu_from_name(ctx: FetchContext, gpu_name: str, memory_gb: float | None) -> str | None:
    """Canonical accelerator for a Vast gpu_name and per-GPU memory ('A100 SXM4', 80) -> 'A100-80GB'."""
    family = gpu_family(gpu_name, _EXTRA_FAMILIES)
    return None if family is None else accelerator_for(ctx, family, memory_gb)


def host_location(geolocation: Any) -> tuple[str, str, str]:
    """(region, country, continent) of a host: 'Texas, US' -> ('us-texas', 'US', 'north-america'),
    'Bavaria, DE' -> ('de', 'DE', 'europe'); ('unknown', '', '') without an ISO country code."""
    if not isinstance(geolocation, str) or not geolocation.strip():
        return UNKNOWN_REGION, "", ""
    # These searches do not ask for 'georegion', so the country code is the last part, however many come first
    # ('Yutakacho, Shinagawa District, Tokyo, JP').
    parts = [p.strip() for p in geolocation.split(",")]
    country, continent = parse_geolocation(parts[-1])
    if not country:
        return UNKNOWN_REGION, "", ""
    area = parts[-2] if len(parts) >= 2 and country in _SUBDIVIDED else ""
    return marketplace_region(country, area), country, continent


def search_query(gpu_names: tuple[str, ...]) -> dict[str, Any]:
    """The `q` JSON of one search: these gpu_names, 1/2/4/8 GPUs, verified, rentable, not rented, cheapest first."""
    return {"gpu_name": {"in": list(gpu_names)}, "num_gpus": {"in": list(GPU_COUNTS)}, "verified": {"eq": True},
            "rentable": {"eq": True}, "rented": {"eq": False}, "external": {"eq": False}, "type": "on-demand",
            "order": [["dph_base", "asc"]], "limit": SEARCH_LIMIT}


class VastAdapter:
    """Vast.ai offer-search adapter (the cheapest real listings per GPU model, count and host location)."""

    name = NAME
    ttl_seconds = 900
    credentials_hint = f"set {ENV_KEY} (Vast.ai API key, cloud.vast.ai account keys)"

    def has_credentials(self, ctx: FetchContext) -> bool:
        """True when VAST_API_KEY is set and non-empty."""
        return has_env_key(ctx, ENV_KEY)

    async def fetch(self, ctx: FetchContext) -> list[Offer]:
        """One search per GPU family, concurrently; the cheapest listings per GPU, count and location."""
        import asyncio

        key = env_api_key(ctx, NAME, ENV_KEY)
        base = ctx.endpoints.get(NAME, DEFAULT_URL).rstrip("/")
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}

        async def search(client: Any, family: str, names: tuple[str, ...]) -> list[Any]:
            params = {"q": json.dumps(search_query(names), separators=(",", ":"))}
            body = await request_json(client, ctx, NAME, "GET", f"{base}{PATH}", params=params, headers=headers)
            if not isinstance(body, dict) or not isinstance(body.get("offers"), list):
                raise ProviderError(NAME, f"{family} search: response has no 'offers' list")
            if len(body["offers"]) >= SEARCH_LIMIT:
                log.info("vast: the %s search returned its %d-listing limit; the dearest locations may be missing",
                         family, SEARCH_LIMIT)
            return body["offers"]

        async with new_client(ctx) as client:
            answers = await asyncio.gather(*(search(client, f, names) for f, names in VAST_GPU_NAMES.items()))
        return build_offers(ctx, [offer for answer in answers for offer in answer])


def _memory_gb(ctx: FetchContext, accelerator: str, reported: float | None) -> float | None:
    """Per-GPU memory: the fact table's size when the host's figure is within 6 % of it, else the host's."""
    fact = ctx.facts.gpus.get(accelerator)
    if reported is None:
        return fact.memory_gb if fact else None
    if fact and abs(reported - fact.memory_gb) <= 0.06 * fact.memory_gb:
        return fact.memory_gb
    return float(round(reported))


def _reliability(item: dict[str, Any]) -> float | None:
    """The host's reliability score (0-1): ``reliability2``, else ``reliability``; None when absent or off scale."""
    for field in ("reliability2", "reliability"):
        value = finite_number(item.get(field))
        if value is not None and 0 <= value <= 1:
            return value
    return None


def build_offers(ctx: FetchContext, raw: list[Any]) -> list[Offer]:
    """Marketplace listings -> the KEEP_CHEAPEST cheapest live offers per (GPU model, count, location)."""
    groups: dict[tuple[str, str, int, str], list[tuple[float, dict[str, Any], str, str, float | None]]] = \
        defaultdict(list)
    seen: set[Any] = set()
    for item in raw:
        if not isinstance(item, dict) or item.get("id") in seen:
            continue  # one listing may come back from two searches
        seen.add(item.get("id"))
        gpu_name = item.get("gpu_name")
        count, price = finite_number(item.get("num_gpus")), finite_number(item.get("dph_base"))
        if not isinstance(gpu_name, str) or not gpu_name.strip() or count is None or count < 1 \
                or count != int(count) or price is None or price <= 0 or item.get("id") is None:
            continue  # an incomplete host listing
        gpu_ram = finite_number(item.get("gpu_ram"))
        memory = gpu_ram / 1024 if gpu_ram and gpu_ram > 0 else None  # MB (nvidia-smi MiB) per GPU
        accelerator = gpu_from_name(ctx, gpu_name, memory)
        if accelerator is None:
            continue
        region, country, continent = host_location(item.get("geolocation"))
        stub = re.sub(r"\s+", "_", gpu_name.strip())
        groups[(accelerator, stub, int(count), region)].append((price, item, country, continent, memory))
    offers = []
    for (accelerator, stub, count, region), listings in sorted(groups.items()):
        listings.sort(key=lambda entry: (entry[0], str(entry[1].get("id"))))
        instance_type = f"{count}x-{stub}"
        if accelerator in _MEMORY_SPLIT:
            fact = ctx.facts.gpus.get(accelerator)
            instance_type += f"-{fact.memory_gb:g}GB" if fact else ""
        for price, item, country, continent, memory in listings[:KEEP_CHEAPEST]:
            bid = finite_number(item.get("min_bid"))
            storage = finite_number(item.get("storage_cost"))
            notes = [f"offer {item['id']} on machine {item.get('machine_id', '?')} in "
                     f"'{item.get('geolocation') or 'unknown location'}'",
                     f"on-demand = dph_base ${price:g}/h", f"spot = min_bid ${bid:g}/h" if bid and bid > 0
                     else "no bid price", "both without storage"
                     + (f" (storage ${storage:g}/GB-month extra)" if storage is not None else ""),
                     f"{plural(len(listings), 'such listing')} in {region}"]
            offers.append(make_live_offer(
                ctx, provider=NAME, region=region, zone=f"offer-{item['id']}", instance_type=instance_type,
                accelerator=accelerator, gpus_per_node=count, gpu_memory_gb=_memory_gb(ctx, accelerator, memory),
                on_demand_usd_per_hour=round(price, 6),
                spot_usd_per_hour=round(bid, 6) if bid is not None and bid > 0 else None,
                price_ref=f"Vast.ai GET {PATH} (verified, rentable, not rented): " + "; ".join(notes),
                country=country, continent=continent, available=len(listings),
                host_reliability=_reliability(item),
            ))
    return offers


ADAPTER = VastAdapter()

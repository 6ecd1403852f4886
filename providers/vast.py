"""Vast.ai marketplace prices, aggregated from the offer search API.

Docs: https://vast.ai/developers/api ("GET /api/v0/bundles/ - search available GPU offers",
``Authorization: Bearer $VAST_API_KEY``); field meanings from the vastai CLI's ``search offers``
help (vast-ai/vast-python). Default host https://console.vast.ai (the SDK's default server; the
docs' examples also use cloud.vast.ai). One GET with ``q=<JSON>``:

    {"verified": {"eq": true}, "rentable": {"eq": true}, "external": {"eq": false},
     "type": "on-demand", "limit": MAX_OFFERS}

i.e. the CLI's default filter (verified, rentable, non-external hosts), on-demand pricing. Each
offer carries ``gpu_name`` ('H100 SXM'), ``num_gpus``, ``gpu_ram`` (MB per GPU), ``dph_total``
(USD/h for the whole offer: GPUs, CPU share and default disk), ``min_bid`` (current minimum bid
in USD/h for an interruptible rental) and ``geolocation`` ('Texas, US').

A marketplace lists thousands of individual hosts, so offers are aggregated per
(GPU model, GPU count, coarse geography): the on-demand price is the **median** ``dph_total``
of the group and the spot price the **median positive** ``min_bid`` (an interruptible rental
costs at least its bid, and can be outbid). Geography follows data/price-sources/vast.csv:
``us-any``, ``eu-any``, ``asia-any``, plus ``ca-any``, ``oceania-any``, ``latam-any``,
``africa-any`` and ``other-any`` for the rest of the world, ``unknown`` when a host reports no
country. instance_type is '<n>x-<gpu_name with spaces as _>' ('8x-H100_SXM'); A100 names carry
the memory class as well ('1x-A100_SXM4-80GB'), because Vast sells 40 GB and 80 GB cards under one
name. Offers with unknown GPUs are skipped; a single offer lacking gpu_name, num_gpus or a numeric
dph_total is skipped too (hosts' listings, not Vast's schema). vCPU/RAM vary by host: left empty.
The answer is not paginated: one that fills ``MAX_OFFERS`` would give biased medians, so it is
an error rather than a silently skewed price.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from arbitrage.offers import Offer
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

NAME = "vast"
DEFAULT_URL = "https://console.vast.ai"
PATH = "/api/v0/bundles/"
ENV_KEY = "VAST_API_KEY"
MAX_OFFERS = 10_000  # the limit SkyPilot's Vast catalogue fetcher uses for the same search

# Vast's 'Q RTX 6000' is the 24 GB Quadro RTX 6000; 'RTX 6000Ada' is another card.
_EXTRA_FAMILIES = gpu_patterns((r"\bQ(UADRO)? ?RTX ?6000\b", "RTX6000"))
_MEMORY_SPLIT = frozenset({"A100", "A100-80GB"})  # families Vast sells in two memory sizes under one name

_EUROPE = frozenset({
    "AD", "AL", "AT", "BA", "BE", "BG", "BY", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FO", "FR", "GB",
    "GG", "GI", "GR", "HR", "HU", "IE", "IM", "IS", "IT", "JE", "LI", "LT", "LU", "LV", "MC", "MD", "ME", "MK",
    "MT", "NL", "NO", "PL", "PT", "RO", "RS", "RU", "SE", "SI", "SK", "SM", "TR", "UA", "UK", "VA", "XK",
})
_ASIA = frozenset({
    "AE", "AF", "AM", "AZ", "BD", "BH", "BN", "BT", "CN", "GE", "HK", "ID", "IL", "IN", "IQ", "IR", "JO", "JP",
    "KG", "KH", "KP", "KR", "KW", "KZ", "LA", "LB", "LK", "MM", "MN", "MO", "MV", "MY", "NP", "OM", "PH", "PK",
    "PS", "QA", "SA", "SG", "SY", "TH", "TJ", "TL", "TM", "TW", "UZ", "VN", "YE",
})
_OCEANIA = frozenset({
    "AU", "NZ", "FJ", "PG", "NC", "PF", "GU",
})
_LATAM = frozenset({
    "AR", "BO", "BR", "BZ", "CL", "CO", "CR", "CU", "DO", "EC", "GT", "HN", "HT", "JM", "MX", "NI", "PA", "PE",
    "PR", "PY", "SV", "TT", "UY", "VE",
})
_AFRICA = frozenset({
    "AO", "BF", "BJ", "BW", "CD", "CI", "CM", "DZ", "EG", "ET", "GH", "KE", "LY", "MA", "MG", "MU", "MZ", "NA",
    "NG", "RW", "SD", "SN", "TN", "TZ", "UG", "ZA", "ZM", "ZW",
})


def gpu_from_name(ctx: FetchContext, gpu_name: str, memory_gb: float | None) -> str | None:
    """Canonical accelerator for a Vast gpu_name and per-GPU memory ('A100 SXM4', 80) -> 'A100-80GB'."""
    family = gpu_family(gpu_name, _EXTRA_FAMILIES)
    return None if family is None else accelerator_for(ctx, family, memory_gb)


def coarse_region(geolocation: Any) -> str:
    """'Texas, US' -> 'us-any', 'Bavaria, DE' -> 'eu-any'; 'unknown' without a two-letter country code."""
    if not isinstance(geolocation, str) or not geolocation.strip():
        return "unknown"
    code = geolocation.rsplit(",", 1)[-1].strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        return "unknown"
    if code == "US":
        return "us-any"
    if code == "CA":
        return "ca-any"
    for group, region in ((_EUROPE, "eu-any"), (_ASIA, "asia-any"), (_OCEANIA, "oceania-any"),
                          (_LATAM, "latam-any"), (_AFRICA, "africa-any")):
        if code in group:
            return region
    return "other-any"


def search_query() -> dict[str, Any]:
    """The `q` JSON of the offer search: verified, rentable, non-external hosts, on-demand prices."""
    return {"verified": {"eq": True}, "rentable": {"eq": True}, "external": {"eq": False}, "type": "on-demand",
            "limit": MAX_OFFERS}


class VastAdapter:
    """Vast.ai offer-search adapter (median prices per GPU model, count and coarse geography)."""

    name = NAME
    ttl_seconds = 900
    credentials_hint = f"set {ENV_KEY} (Vast.ai API key, cloud.vast.ai account keys)"

    def has_credentials(self, ctx: FetchContext) -> bool:
        """True when VAST_API_KEY is set and non-empty."""
        return has_env_key(ctx, ENV_KEY)

    async def fetch(self, ctx: FetchContext) -> list[Offer]:
        """Median on-demand and bid prices per (GPU model, GPU count, coarse geography)."""
        key = env_api_key(ctx, NAME, ENV_KEY)
        base = ctx.endpoints.get(NAME, DEFAULT_URL).rstrip("/")
        params = {"q": json.dumps(search_query(), separators=(",", ":"))}
        async with new_client(ctx) as client:
            body = await request_json(client, ctx, NAME, "GET", f"{base}{PATH}", params=params,
                                      headers={"Authorization": f"Bearer {key}", "Accept": "application/json"})
        if not isinstance(body, dict) or not isinstance(body.get("offers"), list):
            raise ProviderError(NAME, "response has no 'offers' list")
        if len(body["offers"]) >= MAX_OFFERS:
            raise ProviderError(NAME, f"search returned the {MAX_OFFERS}-offer limit; medians would be biased")
        return build_offers(ctx, body["offers"])


@dataclass
class _Group:
    on_demand: list[float] = field(default_factory=list)
    bids: list[float] = field(default_factory=list)
    memory_gb: list[float] = field(default_factory=list)


def _memory_gb(ctx: FetchContext, accelerator: str, samples: list[float]) -> float | None:
    """Per-GPU memory of a group: the fact table's size when the hosts agree with it within 6 %, else theirs."""
    fact = ctx.facts.gpus.get(accelerator)
    if not samples:
        return fact.memory_gb if fact else None
    seen = statistics.median(samples)
    if fact and abs(seen - fact.memory_gb) <= 0.06 * fact.memory_gb:
        return fact.memory_gb
    return float(round(seen))


def build_offers(ctx: FetchContext, raw: list[Any]) -> list[Offer]:
    """Individual marketplace offers -> one aggregated live offer per (GPU model, count, coarse region)."""
    groups: dict[tuple[str, str, int, str], _Group] = defaultdict(_Group)
    for item in raw:
        if not isinstance(item, dict):
            continue
        gpu_name = item.get("gpu_name")
        count, price = finite_number(item.get("num_gpus")), finite_number(item.get("dph_total"))
        if not isinstance(gpu_name, str) or not gpu_name.strip() or count is None or count < 1 \
                or count != int(count) or price is None or price <= 0:
            continue  # an incomplete host listing
        gpu_ram = finite_number(item.get("gpu_ram"))
        memory = gpu_ram / 1024 if gpu_ram and gpu_ram > 0 else None  # MB (nvidia-smi MiB) per GPU
        accelerator = gpu_from_name(ctx, gpu_name, memory)
        if accelerator is None:
            continue
        group = groups[(accelerator, re.sub(r"\s+", "_", gpu_name.strip()), int(count),
                        coarse_region(item.get("geolocation")))]
        group.on_demand.append(price)
        bid = finite_number(item.get("min_bid"))
        if bid is not None and bid > 0:
            group.bids.append(bid)
        if memory:
            group.memory_gb.append(memory)
    offers = []
    for (accelerator, stub, count, region), group in sorted(groups.items()):
        memory = _memory_gb(ctx, accelerator, group.memory_gb)
        instance_type = f"{count}x-{stub}"
        if accelerator in _MEMORY_SPLIT:
            fact = ctx.facts.gpus.get(accelerator)
            instance_type += f"-{fact.memory_gb:g}GB" if fact else ""
        on_demand = statistics.median(group.on_demand)
        spot = statistics.median(group.bids) if group.bids else None
        spot_note = f"; spot = median min_bid of {len(group.bids)}" if group.bids else "; no bid price seen"
        offers.append(make_live_offer(
            ctx, provider=NAME, region=region, instance_type=instance_type, accelerator=accelerator,
            gpus_per_node=count, gpu_memory_gb=memory, on_demand_usd_per_hour=round(on_demand, 6),
            spot_usd_per_hour=None if spot is None else round(spot, 6),
            price_ref=f"Vast.ai GET {PATH} (verified, rentable, on-demand): median dph_total of "
                      f"{len(group.on_demand)} '{stub.replace('_', ' ')}' x{count} offers in {region}{spot_note}",
        ))
    return offers


ADAPTER = VastAdapter()

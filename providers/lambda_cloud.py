"""Lambda Cloud On-Demand prices and live capacity from the Lambda Cloud API.

Docs: https://docs-api.lambda.ai/api/cloud ("List available instance types"), served from
https://cloud.lambda.ai (the older host cloud.lambdalabs.com still answers; the current docs and
Lambda's own examples use cloud.lambda.ai). Auth: the API key from ``LAMBDA_API_KEY`` sent as
``Authorization: Bearer <key>``, the method the docs recommend (Basic auth with the key as user
name also works). One unpaginated GET returns every instance type:

    {"data": {"<name>": {"instance_type": {"name", "description", "gpu_description",
                                           "price_cents_per_hour", "specs": {"vcpus", "memory_gib",
                                           "storage_gib", "gpus"}},
                         "regions_with_capacity_available": [{"name", "description"}]}}}

What this adapter returns: what can be bought *now* - one offer per (instance type, region listed
in ``regions_with_capacity_available``). An instance type sold out everywhere yields no offer. Prices
are USD per instance-hour (``price_cents_per_hour / 100``); Lambda has no spot product, so spot is empty.

Sold out everywhere: when the answer prices GPU instance types but none has capacity in any region,
``fetch`` raises ``NoCapacity`` (a ``ProviderError``) saying so, rather than returning an empty list
that would read as a broken answer. It does not return the priced types as offers: an Offer means
"launchable in this region", the planner has no notion of "priced but sold out", and a placement on a
sold-out type would fail at launch. providers/fetch.py reports ``NoCapacity`` as a live answer with
zero offers and a warning naming the sell-out: no fallback to older prices, no failure cooldown.
CPU-only types (``specs.gpus == 0``) and GPUs the fact tables do not know are skipped.
The GPU comes from ``gpu_description`` ('H100 (80 GB SXM5)', 'A100 (40 GB SXM4)'), else the
description or the type name; H100 PCIe vs SXM is left to gpu_variants.csv (``gpu_*_h100_pcie``).
"""

from __future__ import annotations

import re
from typing import Any

from arbitrage.offers import Offer
from providers.base import (
    FetchContext,
    NoCapacity,
    ProviderError,
    accelerator_for,
    env_api_key,
    finite_number,
    gpu_family,
    gpu_patterns,
    has_env_key,
    make_live_offer,
    normalize_gpu_text,
)
from providers.http import new_client, request_json

NAME = "lambda"
DEFAULT_URL = "https://cloud.lambda.ai"
PATH = "/api/v1/instance-types"
ENV_KEY = "LAMBDA_API_KEY"

# Lambda's 'RTX 6000' / gpu_1x_rtx6000 is the 24 GB Quadro RTX 6000 (Turing), not the RTX 6000 Ada.
_EXTRA_FAMILIES = gpu_patterns((r"\bRTX ?6000\b(?! ?ADA)", "RTX6000"))
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*GB\b")


def gpu_from_text(ctx: FetchContext, *texts: str) -> tuple[str, float | None] | None:
    """(canonical accelerator, GPU memory in GB or None) from Lambda's GPU wording, first text that parses."""
    for text in texts:
        family = gpu_family(text, _EXTRA_FAMILIES)
        if family is None:
            continue
        found = _MEMORY.search(normalize_gpu_text(text))
        memory = float(found.group(1)) if found else None
        if family == "RTX6000" and memory is not None and memory > 32:
            return None  # a 48 GB 'RTX 6000' would be the Ada part, which the fact tables do not cost
        canonical = accelerator_for(ctx, family, memory)
        return (canonical, memory) if canonical else None
    return None


class LambdaAdapter:
    """Lambda Cloud API adapter (On-Demand instances with capacity now)."""

    name = NAME
    ttl_seconds = 900  # capacity comes and goes within minutes
    credentials_hint = f"set {ENV_KEY} (Lambda Cloud API key, cloud.lambda.ai/api-keys)"

    def has_credentials(self, ctx: FetchContext) -> bool:
        """True when LAMBDA_API_KEY is set and non-empty."""
        return has_env_key(ctx, ENV_KEY)

    async def fetch(self, ctx: FetchContext) -> list[Offer]:
        """One offer per (instance type, region with capacity now)."""
        key = env_api_key(ctx, NAME, ENV_KEY)
        base = ctx.endpoints.get(NAME, DEFAULT_URL).rstrip("/")
        async with new_client(ctx) as client:
            body = await request_json(client, ctx, NAME, "GET", f"{base}{PATH}",
                                      headers={"Authorization": f"Bearer {key}", "Accept": "application/json"})
        return build_offers(ctx, body)


def build_offers(ctx: FetchContext, body: Any) -> list[Offer]:
    """The instance-types response -> live offers; ProviderError on a malformed answer, NoCapacity if sold out."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        raise ProviderError(NAME, f"API error {error.get('code', '?')}: {error.get('message', '')}".strip())
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ProviderError(NAME, "response has no 'data' object")
    offers: list[Offer] = []
    sold_out: list[str] = []
    for key, item in sorted(body["data"].items()):
        if not isinstance(item, dict) or not isinstance(item.get("instance_type"), dict):
            raise ProviderError(NAME, f"instance type {key!r} has no 'instance_type' object")
        itype = item["instance_type"]
        name = str(itype.get("name") or key)
        specs = itype.get("specs")
        if not isinstance(specs, dict):
            raise ProviderError(NAME, f"instance type {name!r} has no 'specs' object")
        gpus = finite_number(specs.get("gpus"))
        if gpus is None or gpus < 0 or gpus != int(gpus):
            raise ProviderError(NAME, f"instance type {name!r} has a non-integer specs.gpus")
        if gpus == 0:
            continue  # CPU-only instance
        cents = finite_number(itype.get("price_cents_per_hour"))
        if cents is None or cents < 0:
            raise ProviderError(NAME, f"instance type {name!r} has a non-numeric price_cents_per_hour")
        regions = item.get("regions_with_capacity_available")
        if not isinstance(regions, list):
            raise ProviderError(NAME, f"instance type {name!r} has no 'regions_with_capacity_available' list")
        gpu = gpu_from_text(ctx, str(itype.get("gpu_description") or ""), str(itype.get("description") or ""),
                            name)
        if gpu is None:
            continue  # a GPU the fact tables cannot cost
        accelerator, memory = gpu
        region_names = sorted({str(r.get("name")) for r in regions if isinstance(r, dict) and r.get("name")})
        if not region_names:
            sold_out.append(name)
        for region in region_names:
            offers.append(make_live_offer(
                ctx, provider=NAME, region=region, instance_type=name, accelerator=accelerator,
                gpus_per_node=int(gpus), gpu_memory_gb=memory, vcpus=finite_number(specs.get("vcpus")),
                ram_gb=finite_number(specs.get("memory_gib")), on_demand_usd_per_hour=cents / 100,
                spot_usd_per_hour=None,
                price_ref=f"Lambda Cloud API GET {PATH}: {name} price_cents_per_hour={cents:g}, capacity in {region}",
            ))
    if not offers and sold_out:
        raise NoCapacity(NAME, f"sold out: none of the {len(sold_out)} GPU instance types it prices has capacity "
                               f"in any region now ({', '.join(sold_out[:3])}{', ...' if len(sold_out) > 3 else ''})")
    return offers


ADAPTER = LambdaAdapter()

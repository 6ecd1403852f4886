"""The provider adapter protocol: every cloud module exposes one `Adapter` with the same shape.

An adapter turns one provider's documented price API into `Offer` records (source ``live``).
It never decides anything: no filtering by job, no fallbacks (those live in providers/fetch.py).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from arbitrage.errors import MissingCredentials, NoCapacity, ProviderError
from arbitrage.facts import Facts
from arbitrage.offers import Offer

# Defined in arbitrage.errors (one tree); adapters import them from here.
__all__ = ["MissingCredentials", "NoCapacity", "ProviderError"]


@dataclass(frozen=True)
class FetchContext:
    """What an adapter needs from the outside world, passed in so tests can replace it."""

    facts: Facts
    now: datetime
    timeout_s: float = 20.0
    retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # Per-provider base-URL overrides (tests point adapters at loopback servers).
    endpoints: Mapping[str, str] = field(default_factory=dict)
    # Extra keyword arguments for SDK clients (tests pass botocore Stubber-ready sessions etc.).
    sdk: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Adapter(Protocol):
    """One provider's live price source."""

    name: str
    # How long a successful fetch stays fresh in the cache (spot-priced providers: shorter).
    ttl_seconds: int
    # Where credentials are looked for, for `gpuarb providers` and the skip message.
    credentials_hint: str

    def has_credentials(self, ctx: FetchContext) -> bool:
        """True when the provider can be called (public APIs always can)."""
        ...

    async def fetch(self, ctx: FetchContext) -> list[Offer]:
        """Every GPU offer the provider sells now, as live Offers; raises ProviderError on failure."""
        ...


def offer_place(ctx: FetchContext, provider: str, region: str, zone: str | None = None) -> tuple[str, str]:
    """(ISO country, continent) of a provider's region/zone from the region table (arbitrage/geo.py); ('', '')
    when the place is unknown or the fact tables carry no region table."""
    if getattr(ctx.facts, "regions", None) is None:
        return "", ""
    from arbitrage.geo import locate

    return locate(ctx.facts, provider, region, zone)


def make_live_offer(ctx: FetchContext, *, provider: str, region: str, instance_type: str, accelerator: str,
                    gpus_per_node: int, on_demand_usd_per_hour: float | None, spot_usd_per_hour: float | None,
                    price_ref: str, zone: str | None = None, gpu_memory_gb: float | None = None,
                    vcpus: float | None = None, ram_gb: float | None = None, country: str | None = None,
                    continent: str | None = None, available: int | None = None,
                    host_reliability: float | None = None) -> Offer:
    """An Offer stamped live/now, with interconnect and GPU variant from the fact tables.

    Prices are USD per hour per instance; non-positive or non-finite prices are treated as absent. ``country`` /
    ``continent`` default to the region table's place of the region/zone (``offer_place``); marketplace adapters
    pass the host's own location, ``available`` and ``host_reliability``.
    """
    fabric, gbps = ctx.facts.interconnect_for(provider, instance_type)
    fact = ctx.facts.gpus.get(accelerator)
    if country is None or continent is None:
        found_country, found_continent = offer_place(ctx, provider, region, zone)
        country = found_country if country is None else country
        continent = found_continent if continent is None else continent

    def clean(price: float | None) -> float | None:
        return price if price is not None and math.isfinite(price) and price > 0 else None

    return Offer(
        provider=provider, region=region, zone=zone, instance_type=instance_type, accelerator=accelerator,
        gpus_per_node=gpus_per_node,
        gpu_memory_gb=gpu_memory_gb if gpu_memory_gb else (fact.memory_gb if fact else 0.0),
        vcpus=vcpus, ram_gb=ram_gb,
        on_demand_usd_per_hour=clean(on_demand_usd_per_hour), spot_usd_per_hour=clean(spot_usd_per_hour),
        interconnect=fabric, interconnect_gbps=gbps, source="live", as_of=ctx.now.isoformat(timespec="seconds"),
        price_ref=price_ref, gpu_model=ctx.facts.gpu_model_for(provider, instance_type, accelerator),
        country=country, continent=continent, available=available, host_reliability=host_reliability,
    )


GpuPatterns = tuple[tuple["re.Pattern[str]", str], ...]


def gpu_patterns(*pairs: tuple[str, str]) -> GpuPatterns:
    """Compile (regex, family) pairs for gpu_family; regexes see upper-cased text with '_'/'-' as spaces."""
    return tuple((re.compile(pattern), family) for pattern, family in pairs)


# GPU families as providers spell them, tried in order (first match wins): longer names before
# their prefixes (A10G before A10, L40S before L4). H100 NVL / PCIe stay 'H100': gpu_variants.csv
# names the exact variant. Provider-specific spellings (the several 'RTX 6000's) go in `extra`.
GPU_FAMILIES: GpuPatterns = gpu_patterns(
    (r"\bGH200\b", "GH200"),
    (r"\bB300\b", "B300"),
    (r"\bB200\b", "B200"),
    (r"\bH200\b", "H200"),
    (r"\bH100\b", "H100"),
    (r"\bA100X?\b", "A100"),
    (r"\bA10G\b", "A10G"),
    (r"\bA10\b", "A10"),
    (r"\bL40S\b", "L40S"),
    (r"\bL4\b", "L4"),
    (r"\bA6000\b", "A6000"),
    (r"\bV100\b", "V100"),
    (r"\bT4\b", "T4"),
)


def normalize_gpu_text(text: str) -> str:
    """Upper-case with '_' and '-' as spaces, the form GPU_FAMILIES patterns are written for."""
    return re.sub(r"[_\-]", " ", (text or "").upper())


def gpu_family(text: str, extra: GpuPatterns = ()) -> str | None:
    """The GPU family a provider's GPU wording names ('NVIDIA A100-SXM4-80GB' -> 'A100'), or None."""
    upper = normalize_gpu_text(text)
    for pattern, family in (*GPU_FAMILIES, *extra):
        if pattern.search(upper):
            return family
    return None


def accelerator_for(ctx: FetchContext, family: str, memory_gb: float | None) -> str | None:
    """Canonical accelerator for a family and per-GPU memory: A100 with >= 60 GB is 'A100-80GB'."""
    if family == "A100" and memory_gb is not None and memory_gb >= 60:
        family = "A100-80GB"
    return ctx.facts.canonical_gpu(family)


def finite_number(value: Any) -> float | None:
    """A finite JSON number as float, else None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)



def has_env_key(ctx: FetchContext, variable: str) -> bool:
    """True when the environment variable holds a non-blank API key."""
    return bool(ctx.env.get(variable, "").strip())


def env_api_key(ctx: FetchContext, provider: str, variable: str) -> str:
    """The API key in ``variable`` (stripped); raises MissingCredentials naming the variable when unset."""
    key = ctx.env.get(variable, "").strip()
    if not key:
        raise MissingCredentials(provider, f"{variable} is not set")
    return key

"""The provider adapter protocol: every cloud module exposes one `Adapter` with the same shape.

An adapter turns one provider's documented price API into `Offer` records (source ``live``).
It never decides anything: no filtering by job, no fallbacks (those live in providers/fetch.py).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from arbitrage.facts import Facts
from arbitrage.offers import Offer


class ProviderError(Exception):
    """A provider's API failed or answered something unusable; the message is one line."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message


class MissingCredentials(ProviderError):
    """No credentials were found where the provider's SDK/docs say to look; the provider is skipped."""


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


def make_live_offer(ctx: FetchContext, *, provider: str, region: str, instance_type: str, accelerator: str,
                    gpus_per_node: int, on_demand_usd_per_hour: float | None, spot_usd_per_hour: float | None,
                    price_ref: str, zone: str | None = None, gpu_memory_gb: float | None = None,
                    vcpus: float | None = None, ram_gb: float | None = None) -> Offer:
    """An Offer stamped live/now, with interconnect and GPU variant from the fact tables.

    Prices are USD per hour per instance; non-positive or non-finite prices are treated as absent.
    """
    fabric, gbps = ctx.facts.interconnect_for(provider, instance_type)
    fact = ctx.facts.gpus.get(accelerator)

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
    )


def canonical_accelerator(ctx: FetchContext, name: str) -> str | None:
    """A provider's GPU name ('NVIDIA H100 80GB HBM3', 'A100-SXM4-80GB') -> canonical, or None if not a GPU we cost."""
    return ctx.facts.canonical_gpu(name)


def env_api_key(ctx: FetchContext, provider: str, variable: str) -> str:
    """The API key in ``variable`` (stripped); raises MissingCredentials naming the variable when unset."""
    key = ctx.env.get(variable, "").strip()
    if not key:
        raise MissingCredentials(provider, f"{variable} is not set")
    return key

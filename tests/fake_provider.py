"""A provider that exists only in tests: one adapter module plus one card, and nothing else in the code knows it.

The adapter serves the price list named by ``$FAKECLOUD_PRICES`` (a JSON list of instances) when
``$FAKECLOUD_API_KEY`` is set, as a live price API would; ``tests/test_fake_provider.py`` registers ``CARD``
and plans and dry-runs a job on it through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

from arbitrage.offers import Offer
from providers.base import FetchContext, ProviderError, env_api_key, has_env_key, make_live_offer
from providers.registry import ProviderInfo, SkyPilotPin

NAME = "fakecloud"
ENV_KEY = "FAKECLOUD_API_KEY"
PRICES_ENV = "FAKECLOUD_PRICES"

CARD = ProviderInfo(
    id=NAME, display_name="Fake Cloud", focus_name="Fake Cloud Inc.", tier="specialised",
    adapter_module="tests.fake_provider",
    skypilot=SkyPilotPin("fakecloud", pin_zone=True), not_skypilot=None,
    multi_node=False, fabrics=(), spot="none", uri_schemes=("fake",),
)


class FakeCloudAdapter:
    """Reads the fake price list; needs the fake API key like a real adapter needs its credentials."""

    name = NAME
    ttl_seconds = 3600
    credentials_hint = f"${ENV_KEY}"

    def has_credentials(self, ctx: FetchContext) -> bool:
        """True when the fake API key is set."""
        return has_env_key(ctx, ENV_KEY)

    async def fetch(self, ctx: FetchContext) -> list[Offer]:
        """One live offer per listed instance whose GPU the fact tables know."""
        env_api_key(ctx, NAME, ENV_KEY)
        path = ctx.env.get(PRICES_ENV, "")
        if not path:
            raise ProviderError(NAME, f"{PRICES_ENV} is not set")
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
        offers = []
        for row in rows:
            accelerator = ctx.facts.canonical_gpu(row["gpu"])
            if accelerator is None:
                continue
            offers.append(make_live_offer(
                ctx, provider=NAME, region=row["region"], zone=row.get("zone"), instance_type=row["instance"],
                accelerator=accelerator, gpus_per_node=int(row["gpus"]),
                on_demand_usd_per_hour=float(row["usd_per_hour"]), spot_usd_per_hour=None,
                price_ref=f"fakecloud price list {Path(path).name}"))
        return offers


ADAPTER = FakeCloudAdapter()

"""Queries over a list of offers: filter by GPU, count, provider, region; sort by price per GPU-hour."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from arbitrage.offers import Offer
from arbitrage.params import matches_any

if TYPE_CHECKING:
    from arbitrage.facts import Facts


@dataclass(frozen=True, slots=True)
class OfferQuery:
    """What `gpuarb prices` asks for; None means no constraint."""

    gpus: tuple[str, ...] = ()
    count: int | None = None
    spot: bool | None = None
    providers: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()


def _glob_any(value: str, patterns: tuple[str, ...]) -> bool:
    return not patterns or matches_any(value, patterns)


def offer_place(offer: Offer, facts: Facts | None = None) -> tuple[str, str]:
    """(ISO country, continent) of an offer: its own, else the region table's (arbitrage.geo); ('', '') unknown."""
    if offer.country or offer.continent or facts is None:
        return offer.country, offer.continent
    from arbitrage.geo import locate

    return locate(facts, offer.provider, offer.region, offer.zone)


def filter_offers(offers: Iterable[Offer], query: OfferQuery, facts: Facts | None = None) -> list[Offer]:
    """Offers matching every constraint of the query (spot=True keeps only offers with a spot price).

    Region globs match only real regions (a place with a known country): 'eu-*' never matches a pseudo-region.
    """
    out = []
    for o in offers:
        if query.gpus and not any(o.provides(g) for g in query.gpus):
            continue
        if query.count is not None and o.gpus_per_node != query.count:
            continue
        if query.spot is not None and o.usd_per_hour(query.spot) is None:
            continue
        if not _glob_any(o.provider, query.providers) or not _glob_any(o.region, query.regions):
            continue
        if query.regions and not offer_place(o, facts)[0]:
            continue
        out.append(o)
    return out


def price_key(spot: bool | None):
    """Sort key: USD per GPU-hour of the chosen option (on-demand first, else spot, when unspecified)."""

    def key(o: Offer) -> tuple:
        if spot is None:
            price = o.usd_per_gpu_hour(False)
            if price is None:
                price = o.usd_per_gpu_hour(True)
        else:
            price = o.usd_per_gpu_hour(spot)
        return (math.inf if price is None else price, o.provider, o.region, o.zone or "", o.instance_type)

    return key


def sort_by_price(offers: Iterable[Offer], spot: bool | None = None) -> list[Offer]:
    """Offers cheapest per GPU-hour first, ties broken by provider, region, zone, instance type."""
    return sorted(offers, key=price_key(spot))


# -- Price age ------------------------------------------------------------------------------------------------------

def as_of_time(as_of: str) -> datetime | None:
    """An offer's as-of as an aware UTC time ('2026-09-25' is that day's midnight UTC); None when undated."""
    text = (as_of or "").strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = datetime.fromisoformat(text[:10])
        except ValueError:
            return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def age_days(offer: Offer, now: datetime) -> float | None:
    """Days from the offer's as-of to ``now`` (0 for a price dated after now); None when the price is undated."""
    when = as_of_time(offer.as_of)
    if when is None:
        return None
    return max(0.0, (now - when).total_seconds() / 86400)


def is_stale(offer: Offer, now: datetime, stale_days: float) -> bool:
    """True when the price is older than ``stale_days`` or carries no date at all."""
    age = age_days(offer, now)
    return age is None or age > stale_days


def age_label(offer: Offer, now: datetime, stale_days: float) -> str:
    """'12d', '~40d' (estimated date), '3h' (under a day), '130d stale' or 'undated stale', for tables."""
    age = age_days(offer, now)
    if age is None:
        return "undated stale"
    text = f"{age * 24:.0f}h" if age < 1 else f"{age:.0f}d"
    if offer.as_of_estimated:
        text = f"~{text}"
    return f"{text} stale" if age > stale_days else text

"""Queries over a list of offers: filter by GPU, count, provider, region; sort by price per GPU-hour."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable
from dataclasses import dataclass

from arbitrage.offers import Offer


@dataclass(frozen=True, slots=True)
class OfferQuery:
    """What `gpuarb prices` asks for; None means no constraint."""

    gpus: tuple[str, ...] = ()
    count: int | None = None
    spot: bool | None = None
    providers: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()


def _glob_any(value: str, patterns: tuple[str, ...]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)


def filter_offers(offers: Iterable[Offer], query: OfferQuery) -> list[Offer]:
    """Offers matching every constraint of the query (spot=True keeps only offers with a spot price)."""
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

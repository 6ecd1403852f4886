"""The egress rule, in one place: which kind of transfer moving data is, and what it costs from the price tiers.

A transfer is billed by the provider the data leaves. Between two providers it goes over the internet. Within one
provider it is, from dearest to cheapest:

* ``inter_continent``: between regions on different continents (GCP and Azure publish their own, higher rates;
  AWS bills every inter-region transfer at the source region's rate, whatever the destination);
* ``inter_region``: between regions on one continent (or where a continent is unknown);
* ``local_zone``: between an AWS Local Zone and its parent region, or two of its Local Zones (billed like
  cross-zone traffic in each direction, AWS Global Network FAQs), not free same-region traffic;
* ``same_region``: within a region.

Each provider's price for each kind is a table of cumulative tiers (``arbitrage/data/egress.csv``, loaded by
``arbitrage.facts``). Rows say their unit: AWS and Azure publish per GB (10^9 bytes), GCP per GiB (2^30 bytes).
The loader converts every row to USD per GB and GB tier bounds (``GIB_IN_GB``), so the rule always prices GB.
A row may be limited to transfers leaving one continent (``from_continent``, e.g. Azure's rates out of Asia).
Pure: the tiers come in as an argument. The cost model prices a placement's data in and outputs out with it; the
FOCUS export names the SKU of the egress the ledger charged with it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from arbitrage.errors import DataError

EgressPath = Literal["internet", "inter_continent", "inter_region", "local_zone", "same_region"]
EGRESS_PATHS: tuple[EgressPath, ...] = ("internet", "inter_continent", "inter_region", "local_zone", "same_region")
# A provider without rows for a path is priced at this other path (no Local Zones: like inter-region traffic).
FALLBACK_PATH: dict[EgressPath, EgressPath] = {"local_zone": "inter_region", "inter_continent": "inter_region"}

EgressUnit = Literal["GB", "GiB"]
EGRESS_UNITS: tuple[EgressUnit, ...] = ("GB", "GiB")
GIB_IN_GB = 2**30 / 1e9  # 1 GiB = 1.073741824 GB

# AWS Local Zone IDs and names (AWS Local Zones user guide 'Available Local Zones': Local Zone ID use1-atl2-az1,
# Local Zone Name us-east-1-atl-2a, Network Border Group us-east-1-atl-2). Availability Zones are use1-az4 /
# us-east-1a and never match.
_LOCAL_ZONE = re.compile(r"^(?:[a-z]+\d+-[a-z]+\d+-az\d+|[a-z]{2}-[a-z]+-\d+-[a-z]+-\d+[a-z]?)$")


@dataclass(frozen=True, slots=True)
class EgressTier:
    """One price tier of a provider's egress along one path, in USD per GB; up_to_gb None means unbounded.

    ``unit`` is the unit the provider publishes the row in (the figures here are already converted to GB);
    ``from_continent`` limits the row to transfers leaving that continent ('' = from anywhere).
    """

    provider: str
    path: EgressPath
    up_to_gb: float | None
    usd_per_gb: float
    source: str
    as_of: str
    unit: EgressUnit = "GB"
    from_continent: str = ""


def tier_in_gb(provider: str, path: EgressPath, up_to: float | None, usd_per_unit: float, unit: EgressUnit,
               source: str, as_of: str, from_continent: str = "") -> EgressTier:
    """A tier from a row in the provider's own unit: per-GiB rates and GiB bounds converted to GB."""
    if unit not in EGRESS_UNITS:
        raise DataError(f"egress.csv: unknown unit {unit!r} for provider '{provider}' (use GB or GiB)")
    if unit == "GiB":
        return EgressTier(provider, path, None if up_to is None else up_to * GIB_IN_GB, usd_per_unit / GIB_IN_GB,
                          source, as_of, unit, from_continent)
    return EgressTier(provider, path, up_to, usd_per_unit, source, as_of, unit, from_continent)


def is_local_zone(zone: str | None) -> bool:
    """True when a zone id or name is an AWS Local Zone (use1-atl2-az1, us-east-1-atl-2a), not an AZ."""
    return bool(zone) and bool(_LOCAL_ZONE.match(zone.strip().lower()))  # type: ignore[union-attr]


def egress_path(src_provider: str, src_region: str, dst_provider: str, dst_region: str, *,
                src_zone: str | None = None, dst_zone: str | None = None,
                src_continent: str = "", dst_continent: str = "") -> EgressPath:
    """Which kind of transfer moving data from src to dst is (and so which egress price applies).

    Continents are ``Offer.continent`` names ('' when unknown: the transfer then counts as within a continent).
    """
    if src_provider != dst_provider:
        return "internet"
    if src_region != dst_region:
        if src_continent and dst_continent and src_continent != dst_continent:
            return "inter_continent"
        return "inter_region"
    src_local, dst_local = is_local_zone(src_zone), is_local_zone(dst_zone)
    if src_local != dst_local or (src_local and dst_local and src_zone != dst_zone):
        return "local_zone"
    return "same_region"


def _rows_for(tiers: Iterable[EgressTier], provider: str, path: EgressPath, from_continent: str) -> list[EgressTier]:
    mine = [t for t in tiers if t.provider == provider and t.path == path]
    specific = [t for t in mine if from_continent and t.from_continent == from_continent]
    return specific or [t for t in mine if not t.from_continent]


def egress_usd(tiers: Iterable[EgressTier], provider: str, path: EgressPath, size_gb: float, *,
               from_continent: str = "") -> float:
    """Cost in USD of moving ``size_gb`` out of ``provider`` along ``path``, its cumulative tiers applied.

    Rows for the continent the data leaves win over rows for anywhere; a provider with no row for the path is
    priced at ``FALLBACK_PATH``'s path; with neither, DataError names the table, path and provider.
    """
    if size_gb <= 0:
        return 0.0
    tiers = tuple(tiers)
    mine = _rows_for(tiers, provider, path, from_continent)
    if not mine and path in FALLBACK_PATH:
        mine = _rows_for(tiers, provider, FALLBACK_PATH[path], from_continent)
    if not mine:
        raise DataError(f"egress.csv: no '{path}' rate for provider '{provider}'")
    mine.sort(key=lambda t: math.inf if t.up_to_gb is None else t.up_to_gb)
    cost, floor = 0.0, 0.0
    for tier in mine:
        ceiling = math.inf if tier.up_to_gb is None else tier.up_to_gb
        if size_gb > floor:
            cost += (min(size_gb, ceiling) - floor) * tier.usd_per_gb
        floor = ceiling
    return cost

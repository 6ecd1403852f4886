"""The egress rule, in one place: which kind of transfer moving data is, and what it costs from the price tiers.

A transfer is billed by the provider the data leaves. Between two providers it goes over the internet; within one
provider it is inter-region or same-region traffic. Each provider's price per GB for each kind is a table of
cumulative tiers (``arbitrage/data/egress.csv``, loaded by ``arbitrage.facts``). Pure: the tiers come in as an
argument. The cost model prices a placement's data in and outputs out with it; the FOCUS export names the SKU of
the egress the ledger charged with it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from arbitrage.errors import DataError

EgressPath = Literal["internet", "inter_region", "same_region"]
EGRESS_PATHS: tuple[EgressPath, ...] = ("internet", "inter_region", "same_region")


@dataclass(frozen=True, slots=True)
class EgressTier:
    """One price tier of a provider's egress along one path; up_to_gb None means unbounded."""

    provider: str
    path: EgressPath
    up_to_gb: float | None
    usd_per_gb: float
    source: str
    as_of: str


def egress_path(src_provider: str, src_region: str, dst_provider: str, dst_region: str) -> EgressPath:
    """Which kind of transfer moving data from src to dst is (and so which egress price applies)."""
    if src_provider != dst_provider:
        return "internet"
    return "same_region" if src_region == dst_region else "inter_region"


def egress_usd(tiers: Iterable[EgressTier], provider: str, path: EgressPath, size_gb: float) -> float:
    """Cost in USD of moving ``size_gb`` out of ``provider`` along ``path``, its cumulative tiers applied."""
    if size_gb <= 0:
        return 0.0
    mine = [t for t in tiers if t.provider == provider and t.path == path]
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


"""Capacity signals: what providers publish about whether a placement can be had now, as plain data. Pure.

A signal scores a placement from 0 (no capacity) to 1 (plenty) and says where the score came from:

* AWS spot placement scores (GetSpotPlacementScores, 1-10 per Availability Zone for a target capacity of the
  job's nodes; providers/aws_capacity.py) -> score / 10, for spot placements;
* a live offer from a provider whose card says its live offers exist only while it has capacity now (Lambda's
  ``regions_with_capacity_available``, RunPod's ``stockStatus``) -> 1.0;
* marketplace availability (``Offer.available``: machines of that kind listed now) -> available / (2 x nodes),
  capped at 1: as many machines as nodes needed is a thin market, none is no capacity.

`verdict` turns a score into ``reject`` (under ``capacity_reject_below``), ``demote`` (under
``capacity_demote_below``: it ranks after every placement with a good signal or none) or ``ok``. A placement with
no signal is left as it is, and the plan says that it had none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from arbitrage.offers import Offer
from arbitrage.plural import plural

Verdict = Literal["ok", "demote", "reject"]


@dataclass(frozen=True, slots=True)
class CapacitySignal:
    """One published capacity figure for an instance type in a region/zone (``spot`` None: both purchase options).

    ``nodes``: the target capacity it was asked for (None: any). ``score`` is 0-1, or derived from ``listed``
    (machines listed now) per placement by `placement_score`; ``label`` is short (tables), ``source`` one line
    with the provider's figure, API and time.
    """

    provider: str
    region: str
    zone: str | None
    instance_type: str
    spot: bool | None
    score: float
    label: str
    source: str
    as_of: str = ""
    nodes: int | None = None
    listed: int | None = None


def verdict(score: float, reject_below: float, demote_below: float) -> Verdict:
    """'reject', 'demote' or 'ok' for a 0-1 capacity score."""
    if score < reject_below:
        return "reject"
    if score < demote_below:
        return "demote"
    return "ok"


@dataclass
class CapacityBook:
    """Capacity signals indexed by placement; the planner asks ``signal(offer, spot, nodes)``.

    A zone-level signal wins over a region-level one; ``asked`` names the sources that were consulted (for the
    plan's note on placements without a signal), ``unavailable`` why others could not be (no credentials...).
    """

    signals: Iterable[CapacitySignal] = ()
    asked: tuple[str, ...] = ()
    unavailable: tuple[str, ...] = ()
    _index: dict[tuple[str, str, str | None, str], list[CapacitySignal]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for s in self.signals:
            self._index.setdefault((s.provider, s.region, s.zone, s.instance_type), []).append(s)

    def __len__(self) -> int:
        return sum(len(v) for v in self._index.values())

    def signal(self, offer: Offer, spot: bool, nodes: int) -> CapacitySignal | None:
        """The most specific signal for this placement (zone before region; its purchase option and nodes)."""
        for zone in ((offer.zone, None) if offer.zone else (None,)):
            for s in self._index.get((offer.provider, offer.region, zone, offer.instance_type), ()):
                if (s.spot is None or s.spot == spot) and (s.nodes is None or s.nodes == nodes):
                    return s
        return None


def offer_signals(offers: Iterable[Offer], in_stock_providers: Mapping[str, str]) -> list[CapacitySignal]:
    """Signals the offers themselves carry: live offers of in-stock-only providers, and marketplace counts.

    ``in_stock_providers`` maps a provider id to what its live offers mean (from its registry card), e.g.
    ``{'lambda': 'Lambda API regions_with_capacity_available'}``.
    """
    out: list[CapacitySignal] = []
    for o in offers:
        if o.available is not None:
            out.append(CapacitySignal(o.provider, o.region, o.zone, o.instance_type, None, 0.0,
                                      f"{o.available} listed",
                                      f"{o.provider} lists {plural(o.available, 'such machine')} now "
                                      f"({o.source}, as of {o.as_of})", o.as_of, listed=o.available))
        elif o.source == "live" and o.provider in in_stock_providers:
            out.append(CapacitySignal(o.provider, o.region, o.zone, o.instance_type, None, 1.0, "in stock",
                                      f"{in_stock_providers[o.provider]}: capacity now (live, {o.as_of})", o.as_of))
    return out


def placement_score(signal: CapacitySignal, nodes: int) -> float:
    """The 0-1 score of a signal for a placement of ``nodes`` nodes (marketplace counts scale with the nodes)."""
    if signal.listed is None:
        return signal.score
    return min(1.0, max(0, signal.listed) / (2 * max(1, nodes)))

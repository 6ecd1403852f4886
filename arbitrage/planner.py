"""Planner: job spec + offers -> ranked feasible placements and counted rejections. Pure, no I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from arbitrage.capacity import placement_score, verdict
from arbitrage.catalog import offer_place as place
from arbitrage.costmodel import CostBreakdown, Placement, deadline_probability, estimate
from arbitrage.egress import is_local_zone
from arbitrage.geo import geo_matches, locate, zone_pin_matches
from arbitrage.offers import Offer
from arbitrage.params import matches_any
from arbitrage.plural import plural
from arbitrage.rightsize import RightSize, right_size
from providers.registry import find as find_card

if TYPE_CHECKING:
    from arbitrage.capacity import CapacityBook
    from arbitrage.facts import Facts
    from arbitrage.jobspec import Candidate, JobSpec
    from arbitrage.spotrisk import RiskBook

Objective = Literal["cost", "time"]

# Rejection reasons, worded for people; the JSON output uses them as keys.
R_GPU_COUNT = "GPUs per node differ from the request"
R_GPU_MEMORY = "GPU memory below minimum"
R_PROVIDER = "provider not allowed"
R_REGION = "region not allowed"
R_ZONE = "zone not allowed"
R_GEO = "location not allowed (arbitrage.geo)"
R_GEO_UNKNOWN = "location unknown (arbitrage.geo needs a known country)"
R_NO_CLUSTER = "cannot form multi-node clusters (provider card and fabric)"
R_HOST = "vCPUs or RAM below minimum"
R_NO_RDMA = "no RDMA interconnect (required for multi-node)"
R_PREFERRED = "no RDMA interconnect (preferred, and an RDMA placement is feasible)"
R_NO_SPOT = "no spot price (spot: always)"
R_NO_ON_DEMAND = "no on-demand price (spot: never)"
R_UNBOUNDED = "spot preemptions would never let it finish"
R_DEADLINE = "misses the deadline"
R_DEADLINE_RISK = "deadline probability below the confidence (arbitrage.deadline_confidence)"
R_NO_CAPACITY = "capacity signal too low (spot placement score, stock, listed machines)"
R_HOURLY = "over the hourly budget"
R_TOTAL = "over the total budget"
BUDGET_REASONS = frozenset({R_HOURLY, R_TOTAL})


@dataclass(frozen=True)
class Choice:
    """One real choice: the ranked placement, plus the placements that differ from it only by region or zone at the
    same expected total (same provider, instance type, purchase option and nodes), nearest to the data first."""

    best: CostBreakdown
    also_in: tuple[CostBreakdown, ...] = ()


@dataclass(frozen=True)
class Plan:
    """Ranked feasible placements, the best over-budget ones, and why the rest were rejected.

    ``placements`` is every feasible placement in rank order (the runner fails over along it); ``choices`` folds
    the ones that differ only by region/zone at the same price into one row each, for people. ``now`` is the time
    the plan was made at; ``stale_days`` the age past which a price is flagged stale (assumptions.toml).
    """

    spec: JobSpec
    objective: Objective
    placements: tuple[CostBreakdown, ...]
    over_budget: tuple[CostBreakdown, ...]
    rejections: dict[str, int] = field(default_factory=dict)
    candidates: int = 0
    deadline_hours: float | None = None
    now: datetime | None = None
    stale_days: float = 90.0
    # The job's deadline confidence (None without a deadline) and one line on the capacity signals consulted.
    confidence: float | None = None
    capacity_note: str = ""
    # Work stated in tokens: what the model needs and a cheaper smaller configuration, if any (arbitrage.rightsize).
    right_size: RightSize | None = None

    @property
    def best(self) -> CostBreakdown | None:
        """The chosen placement, or None when nothing is feasible within budget."""
        return self.placements[0] if self.placements else None

    @cached_property
    def choices(self) -> tuple[Choice, ...]:
        """The feasible placements, one row per real choice, in rank order."""
        return group_choices(self.placements)

    @cached_property
    def over_budget_choices(self) -> tuple[Choice, ...]:
        """The over-budget placements, one row per real choice, in rank order."""
        return group_choices(self.over_budget)


def forms_clusters(offer: Offer) -> bool:
    """True when the offer's nodes can form one multi-node cluster: its provider's card says the provider forms
    multi-node clusters and the offer's node-to-node fabric is one the card lists (a single-host fabric 'none'
    never is). An offer of a provider without a card counts when its fabric is not 'none'."""
    info = find_card(offer.provider)
    if info is None:
        return offer.interconnect != "none"
    return info.multi_node and offer.interconnect in info.fabrics


def offer_rejection(spec: JobSpec, offer: Offer, count: int, facts: Facts | None = None) -> str | None:
    """Why an offer of a requested accelerator cannot host the job at all, or None.

    Region allow globs match only real regions (a place with a known country), so a marketplace pseudo-region such
    as 'eu-any' never satisfies 'eu-*'. With any geo rule, an offer whose country is unknown is rejected: data
    residency must not pass by accident.
    """
    if offer.gpus_per_node != count:
        return R_GPU_COUNT
    if spec.min_gpu_memory_gb is not None and offer.gpu_memory_gb < spec.min_gpu_memory_gb:
        return R_GPU_MEMORY
    if spec.providers_allow is not None and not matches_any(offer.provider, spec.providers_allow):
        return R_PROVIDER
    if matches_any(offer.provider, spec.providers_deny):
        return R_PROVIDER
    if spec.regions_allow is not None and not (matches_any(offer.region, spec.regions_allow)
                                               and place(offer, facts)[0]):
        return R_REGION
    if matches_any(offer.region, spec.regions_deny):
        return R_REGION
    if spec.geo_allow is not None or spec.geo_deny:
        country, continent = place(offer, facts)
        if not country:
            return R_GEO_UNKNOWN
        if spec.geo_allow is not None and not any(geo_matches(country, continent, t) for t in spec.geo_allow):
            return R_GEO
        if any(geo_matches(country, continent, t) for t in spec.geo_deny):
            return R_GEO
    if (spec.min_vcpus is not None and offer.vcpus is not None and offer.vcpus < spec.min_vcpus) or (
            spec.min_ram_gb is not None and offer.ram_gb is not None and offer.ram_gb < spec.min_ram_gb):
        return R_HOST
    if spec.num_nodes > 1 and not forms_clusters(offer):
        return R_NO_CLUSTER
    if spec.num_nodes > 1 and spec.interconnect == "required" and not offer.has_rdma:
        return R_NO_RDMA
    return None


def candidates(spec: JobSpec, offers: Iterable[Offer], rejections: Counter[str],
               facts: Facts | None = None) -> Iterator[Placement]:
    """Every placement allowed by the spec's hard rules; offers ruled out are counted by reason."""
    if spec.candidates:
        yield from _pinned_candidates(spec, offers, rejections, facts)
        return
    for offer in offers:
        rank = next((i for i, a in enumerate(spec.accelerators) if offer.provides(a.name)), None)
        if rank is None:
            continue  # not a requested GPU: not a rejection, just not a candidate
        reason = offer_rejection(spec, offer, spec.accelerators[rank].count, facts)
        if reason is not None:
            rejections[reason] += 1
            continue
        has_od, has_spot = offer.on_demand_usd_per_hour is not None, offer.spot_usd_per_hour is not None
        if spec.spot == "never" and not has_od:
            rejections[R_NO_ON_DEMAND] += 1
        elif spec.spot == "always" and not has_spot:
            rejections[R_NO_SPOT] += 1
        if spec.spot != "always" and has_od:
            yield Placement(offer, spec.num_nodes, spot=False, preference=rank)
        if spec.spot != "never" and has_spot:
            yield Placement(offer, spec.num_nodes, spot=True, preference=rank)


def _pin_rejection(candidate: Candidate, offer: Offer) -> str | None:
    """Why one SkyPilot candidate's own pins (provider, region, zone) rule an offer out, or None."""
    if candidate.accelerator.count != offer.gpus_per_node:
        return R_GPU_COUNT
    if candidate.provider is not None and offer.provider != candidate.provider:
        return R_PROVIDER
    if candidate.region is not None and not matches_any(offer.region, (candidate.region,)):
        return R_REGION
    if candidate.zone is not None and not zone_pin_matches(offer.provider, offer.region, offer.zone, candidate.zone):
        return R_ZONE
    return None


def _pinned_candidates(spec: JobSpec, offers: Iterable[Offer], rejections: Counter[str],
                       facts: Facts | None = None) -> Iterator[Placement]:
    """Placements for a spec whose any_of/ordered entries carry their own pins: an offer is a candidate for each
    entry it matches (accelerator, count, provider, region, zone), in that entry's purchase options (its use_spot,
    else the spec's spot policy); its preference is the first entry it matches."""
    policy = {"never": (False,), "always": (True,), "auto": (False, True)}[spec.spot]
    for offer in offers:
        entries = [(i, c) for i, c in enumerate(spec.candidates) if offer.provides(c.accelerator.name)]
        if not entries:
            continue
        matched = [(i, c) for i, c in entries if _pin_rejection(c, offer) is None]
        if not matched:
            rejections[_pin_rejection(entries[0][1], offer) or R_PROVIDER] += 1
            continue
        reason = offer_rejection(spec, offer, offer.gpus_per_node, facts)
        if reason is not None:
            rejections[reason] += 1
            continue
        options: dict[bool, int] = {}
        for i, c in matched:
            for spot in ((c.spot,) if c.spot is not None else policy):
                options.setdefault(spot, i)
        priced = {spot: rank for spot, rank in options.items()
                  if (offer.spot_usd_per_hour if spot else offer.on_demand_usd_per_hour) is not None}
        if not priced:
            rejections[R_NO_SPOT if True in options else R_NO_ON_DEMAND] += 1
        for spot in (False, True):
            if spot in priced:
                yield Placement(offer, spec.num_nodes, spot=spot, preference=priced[spot])


# Totals equal to this many decimals (of a USD) are the same price: float noise must not decide a tie.
_TIE_DIGITS = 6


def closeness(offer: Offer, spec: JobSpec, data_continent: str, facts: Facts | None = None) -> int:
    """How near an offer is to the job's data: 0 same provider and region, 1 same provider, 2 same continent, 3 not
    (0 for every offer of a job without data)."""
    data = spec.data
    if data is None:
        return 0
    if offer.provider == data.provider:
        return 0 if offer.region == data.region else 1
    return 2 if data_continent and place(offer, facts)[1] == data_continent else 3


def rank_key(spec: JobSpec, objective: Objective, data_continent: str = "", facts: Facts | None = None):
    """Sort key: ordered preference first (if the spec lists one), then a low capacity signal last, then the
    objective; equal prices are ordered by closeness to the data, then a regular zone before an AWS Local Zone (one
    needs the account's opt-in and offers fewer services), then by capacity (marketplace offers listing more
    machines first), never by name."""

    def key(b: CostBreakdown) -> tuple:
        o = b.placement.offer
        pref = b.placement.preference if spec.ordered else 0
        total, hours = round(b.total_usd, _TIE_DIGITS), round(b.expected_hours, _TIE_DIGITS)
        primary = (total, hours) if objective == "cost" else (hours, total)
        return (pref, b.capacity_demoted, *primary, closeness(o, spec, data_continent, facts), is_local_zone(o.zone),
                -(o.available or 0))

    return key


def choice_key(b: CostBreakdown) -> tuple:
    """What makes two placements the same choice: provider, instance type, GPU, option, nodes and expected total."""
    p, o = b.placement, b.placement.offer
    return (o.provider, o.instance_type, o.gpu_model, o.gpus_per_node, p.spot, p.nodes, p.preference,
            round(b.total_usd, _TIE_DIGITS))


def group_choices(ranked: Sequence[CostBreakdown]) -> tuple[Choice, ...]:
    """Fold ranked placements that differ only by region/zone at the same total into one Choice each (rank kept:
    the first of each group is its row, the others are its ``also_in`` in rank order)."""
    groups: dict[tuple, list[CostBreakdown]] = {}
    for b in ranked:
        groups.setdefault(choice_key(b), []).append(b)
    return tuple(Choice(g[0], tuple(g[1:])) for g in groups.values())


def _capacity_note(book: CapacityBook | None, signalled: int, feasible: int) -> str:
    """One line: how many feasible placements had a capacity signal, from what, and why others had none."""
    asked = ", ".join(book.asked) if book is not None and book.asked else "no source asked"
    why = "; ".join(book.unavailable) if book is not None and book.unavailable else ""
    if signalled == 0 and feasible == 1:
        line = f"capacity signals: the 1 feasible placement has none ({asked}); it is ranked on price alone"
    elif signalled == 0:
        line = (f"capacity signals: none of the {feasible} feasible placements has one ({asked}); they are ranked on "
                "price alone")
    else:
        line = (f"capacity signals: {signalled} of {plural(feasible, 'feasible placement')} "
                f"{'has' if signalled == 1 else 'have'} one ({asked})")
        if feasible > signalled:
            other = feasible - signalled
            line += (f"; the other {other} {'has none and is' if other == 1 else 'have none and are'} ranked on price "
                     "alone")
    return f"{line} ({why})" if why else line


def plan(spec: JobSpec, offers: Iterable[Offer], facts: Facts, now: datetime,
         objective: Objective = "cost", *, risk: RiskBook | None = None,
         capacity: CapacityBook | None = None) -> Plan:
    """Cost every candidate placement and rank the feasible ones by the objective.

    ``risk`` rates spot placements (a live Advisor table, the ledger's history; default: the fact tables alone);
    ``capacity`` holds the providers' capacity signals. Both are data: the planner does no I/O. With a deadline a
    placement is feasible only when P(finish by it) >= the spec's ``deadline_confidence``.
    """
    from dataclasses import replace

    if risk is None:
        from arbitrage.spotrisk import RiskBook as Book

        risk = Book(facts)
    rejections: Counter[str] = Counter()
    deadline_hours = spec.deadline.hours_left(now) if spec.deadline is not None else None
    confidence = getattr(spec, "deadline_confidence", None) or facts.assumptions.deadline_confidence
    assume = facts.assumptions
    budget = spec.budget
    feasible: list[CostBreakdown] = []
    over: list[CostBreakdown] = []
    total = 0
    offers = list(offers)  # read twice for work in tokens (right-sizing looks at every offer)
    for placement in candidates(spec, offers, rejections, facts):
        total += 1
        cost = estimate(spec, placement, facts, risk.rate(placement.offer) if placement.spot else None)
        if cost.unfit:  # work in tokens this placement cannot do (model too big, no throughput fact)
            rejections[cost.unfit] += 1
            continue
        probability = None
        if deadline_hours is not None and cost.finite:
            probability = deadline_probability(cost, deadline_hours)
            cost = replace(cost, deadline_probability=probability)
        signal = capacity.signal(placement.offer, placement.spot, placement.nodes) if capacity is not None else None
        judged = "ok"
        if signal is not None:
            score = placement_score(signal, placement.nodes)
            judged = verdict(score, assume.capacity_reject_below, assume.capacity_demote_below)
            cost = replace(cost, capacity=signal.label + (" (ranked last)" if judged == "demote" else ""),
                           capacity_demoted=judged == "demote")
        if not cost.finite:
            rejections[R_UNBOUNDED] += 1
        elif deadline_hours is not None and cost.expected_hours > deadline_hours:
            rejections[R_DEADLINE] += 1
        elif probability is not None and probability < confidence:
            rejections[R_DEADLINE_RISK] += 1
        elif judged == "reject":
            rejections[R_NO_CAPACITY] += 1
        elif budget.max_hourly_usd is not None and cost.hourly_usd > budget.max_hourly_usd:
            rejections[R_HOURLY] += 1
            over.append(cost)
        elif budget.max_total_usd is not None and cost.total_usd > budget.max_total_usd:
            rejections[R_TOTAL] += 1
            over.append(cost)
        else:
            feasible.append(cost)

    if spec.num_nodes > 1 and spec.interconnect == "preferred" and any(c.placement.offer.has_rdma for c in feasible):
        dropped = [c for c in feasible if not c.placement.offer.has_rdma]
        if dropped:
            rejections[R_PREFERRED] += len(dropped)
        feasible = [c for c in feasible if c.placement.offer.has_rdma]

    data_continent = ""
    if spec.data is not None and spec.data.region:
        data_continent = locate(facts, spec.data.provider, spec.data.region)[1]
    key = rank_key(spec, objective, data_continent, facts)
    ranked = tuple(sorted(feasible, key=key))
    hint = None
    if spec.work.tokens is not None and ranked:
        def within(c: CostBreakdown) -> bool:
            return ((deadline_hours is None or c.expected_hours <= deadline_hours)
                    and (budget.max_hourly_usd is None or c.hourly_usd <= budget.max_hourly_usd)
                    and (budget.max_total_usd is None or c.total_usd <= budget.max_total_usd))

        hint = right_size(spec, ranked[0], offers, facts, feasible=within, rate=risk.rate,
                          allowed=lambda o: offer_rejection(spec, o, o.gpus_per_node, facts) is None)
    return Plan(
        spec=spec,
        objective=objective,
        placements=ranked,
        over_budget=tuple(sorted(over, key=key)),
        rejections=dict(rejections.most_common()),
        candidates=total,
        deadline_hours=deadline_hours,
        now=now,
        stale_days=facts.assumptions.stale_price_days,
        confidence=confidence if deadline_hours is not None else None,
        capacity_note=_capacity_note(capacity, sum(1 for c in feasible if c.capacity), len(feasible)),
        right_size=hint,
    )

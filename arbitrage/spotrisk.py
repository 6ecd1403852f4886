"""Spot risk inputs: every spot offer's preemption rate with where it came from, sharpened by the ledger's history.

Pure: no I/O and no clock; the fact tables, a (live or bundled) Spot Instance Advisor table and the ledger's
records come in as arguments. The cost model, the planner, the runner, `gpuarb risk` and bench/ all take their
rates from `RiskBook.rate`, so a plan and a run weigh spot the same way.

Where a rate comes from (preemption.csv ``evidence``, first matching row by provider, instance glob, region
glob and zone kind):

* ``advisor``: the AWS Spot Instance Advisor's interruption band for the exact instance type in the exact Region
  (the live feed via providers/spot_advisor.py, else the bundled dated copy spot_advisor.csv), turned into a
  rate per instance-hour by spot_bands.csv at the instance's GPU count (`band_rate`). Types the Advisor does not
  list get the row's ``band``.
* ``band``: the row's fixed band (AWS Local Zones and Wavelength Zones, which the Advisor does not cover).
* ``docs``: the row's rate, an assumption resting on the provider's guidance (GCP, Azure, RunPod, Vast...).
* ``none``: no spot product.

A marketplace offer that carries its host's reliability (``Offer.host_reliability``, e.g. Vast.ai's uptime
score) adds the host's own outage rate, (1 - r) / (r x host_outage_hours): availability r = up / (up + down)
with outages of ``host_outage_hours`` each. Observed preemptions over observed instance-hours of the same
provider / instance family / region in the run ledger update the prior (Gamma-Poisson, `risk.posterior_rate`,
the prior worth ``preemption_prior_hours`` instance-hours).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from arbitrage.facts import AdvisorTable, Facts, PreemptionRule, SpotBand
from arbitrage.offers import Offer
from arbitrage.plural import plural
from arbitrage.risk import finish_by, posterior_rate
from providers.registry import find as find_card

ZONE_KINDS = ("region", "local-zone", "wavelength")
# What each kind of spot on a provider card (providers/registry.py SpotKind) is, for the rate's source line.
SPOT_KIND_TEXT = {
    "market": "spot is a market price that moves with supply and demand, reclaimed when capacity is needed",
    "preemptible": "spot is a fixed discounted price, reclaimed when capacity is needed",
    "bid": "spot is a bid market: a higher bid or an on-demand rental takes the machine",
    "none": "the provider sells no spot",
}

# AWS Wavelength zone names and ids: us-east-1-wl1-bos-wlz-1, use1-wl1-bos-wlz1.
_WAVELENGTH = re.compile(r"-wl\d+-")
# AWS Local Zones: ids use1-atl2-az1, names us-east-1-atl-2a / us-west-2-lax-1b.
_LOCAL_ZONE_ID = re.compile(r"^[a-z]+\d+-[a-z]+\d+-az\d+$")
_LOCAL_ZONE_NAME = re.compile(r"^[a-z]{2}-[a-z]+-\d+-[a-z]+-\d+[a-z]$")
_GCP_SIZE = re.compile(r"-\d+g$")  # a3-highgpu-8g -> a3-highgpu
_COUNT_PREFIX = re.compile(r"^\d+x\s+")  # RunPod / Vast '8x NVIDIA H100 80GB HBM3'


def zone_kind(facts: Facts, provider: str, region: str, zone: str | None) -> str:
    """'region', 'local-zone' or 'wavelength' for an offer's zone (the region table first, then AWS name shapes)."""
    if not zone:
        return "region"
    name = zone.strip().lower()
    if _WAVELENGTH.search(name):
        return "wavelength"
    from arbitrage.geo import place_of

    place = place_of(facts, provider, region, zone) if facts.regions.exact or facts.regions.globs else None
    if place is not None and place.kind == "local-zone":
        return "local-zone"
    if provider == "aws" and (_LOCAL_ZONE_ID.match(name) or _LOCAL_ZONE_NAME.match(name)):
        return "local-zone"
    return "region"


def family_of(provider: str, instance_type: str) -> str:
    """The instance family a rate is learned for: 'p5' (p5.48xlarge), 'a3-highgpu' (a3-highgpu-8g), 'NVIDIA H100...'."""
    if provider == "aws" and "." in instance_type:
        return instance_type.split(".", 1)[0]
    if provider == "gcp" and _GCP_SIZE.search(instance_type):
        return _GCP_SIZE.sub("", instance_type)
    return _COUNT_PREFIX.sub("", instance_type)


def band_rate(band: SpotBand, gpus: int) -> float:
    """Preemptions per instance-hour of an Advisor band at ``gpus`` GPUs per instance.

    spot_bands.csv gives the rate of 1-GPU and 8-GPU instances; 2 and 4 GPUs lie between them on a geometric
    line (an assumption: the traces measure only the two ends), and more than 8 count as 8.
    """
    low, high = band.preemptions_per_hour_1gpu, band.preemptions_per_hour_8gpu
    g = min(max(gpus, 1), 8)
    if low <= 0 or high <= 0:
        return low + (high - low) * math.log2(g) / 3
    return low * (high / low) ** (math.log2(g) / 3)


def host_outage_rate(reliability: float, outage_hours: float) -> float:
    """Outages per hour of a host up ``reliability`` of the time, each outage lasting ``outage_hours``."""
    if not 0 < reliability < 1 or outage_hours <= 0:
        return 0.0
    return (1 - reliability) / (reliability * outage_hours)


@dataclass(frozen=True, slots=True)
class Observed:
    """A team's own spot history for one provider / instance family / region: preemptions over instance-hours."""

    preemptions: int
    instance_hours: float
    attempts: int = 0


RateKey = tuple[str, str, str]  # (provider, instance family, region)


@dataclass(frozen=True, slots=True)
class SpotRate:
    """An offer's spot preemption rate per instance-hour, its restart time, and where both came from.

    ``label`` is short (for tables); ``source`` is one line naming the evidence and its date. ``prior_per_hour``
    is the rate before the ledger's history, which backs ``observed_hours`` instance-hours.
    """

    preemptions_per_hour: float
    restart_hours: float
    label: str
    source: str
    prior_per_hour: float
    observed_preemptions: int = 0
    observed_hours: float = 0.0
    evidence: str = "docs"


@dataclass
class RiskBook:
    """Everything the spot model needs to rate an offer: facts, a Spot Instance Advisor table, the ledger history.

    ``advisor`` replaces the bundled copy in ``facts.spot_advisor`` when given (a live or cached feed);
    ``observed`` is keyed by (provider, family, region). Lookups are memoized per offer shape.
    """

    facts: Facts
    advisor: AdvisorTable | None = None
    observed: Mapping[RateKey, Observed] = field(default_factory=dict)
    _memo: dict[tuple[object, ...], SpotRate] = field(default_factory=dict, repr=False)
    _kinds: dict[tuple[str, str, str | None], str] = field(default_factory=dict, repr=False)

    @property
    def advisor_table(self) -> AdvisorTable:
        """The Advisor table in use: the given one, else the bundled copy."""
        return self.advisor if self.advisor is not None else self.facts.spot_advisor

    def zone_kind(self, offer: Offer) -> str:
        """The offer's zone kind (memoized)."""
        key = (offer.provider, offer.region, offer.zone)
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._kinds[key] = zone_kind(self.facts, offer.provider, offer.region, offer.zone)
        return kind

    def rate(self, offer: Offer) -> SpotRate:
        """The offer's spot rate per instance-hour: the prior from the evidence, updated by observed history."""
        key = (offer.provider, offer.instance_type, offer.region, offer.zone, offer.gpus_per_node,
               offer.host_reliability)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._posterior(offer, self.prior(offer))
        return found

    def prior(self, offer: Offer) -> SpotRate:
        """The rate from preemption.csv and the Advisor (plus host reliability), before the ledger's history."""
        facts, assume = self.facts, self.facts.assumptions
        kind = self.zone_kind(offer)
        rule = facts.preemption_for(offer.provider, offer.region, offer.instance_type, kind)
        if rule is None:
            rate = assume.default_preemptions_per_hour
            base = SpotRate(rate, assume.default_restart_minutes / 60, "default",
                            f"assumptions.toml default_preemptions_per_hour {rate:g}/h: no preemption.csv row for "
                            f"{offer.provider}", rate)
        else:
            base = self._from_rule(offer, rule, kind)
        card = find_card(offer.provider)
        if card is not None:
            base = dataclasses.replace(base, source=f"{card.display_name}: {SPOT_KIND_TEXT[card.spot]}; {base.source}")
        reliability = offer.host_reliability
        extra = host_outage_rate(reliability, assume.host_outage_hours) if reliability is not None else 0.0
        if extra > 0:
            total = base.preemptions_per_hour + extra
            base = SpotRate(total, base.restart_hours, f"{base.label} + host {reliability:.2f}",
                            f"{base.source}; plus the host's outages: reliability {reliability:.3f} with "
                            f"{assume.host_outage_hours:g} h outages = {extra:.3g}/h", total, evidence=base.evidence)
        return base

    def _from_rule(self, offer: Offer, rule: PreemptionRule, kind: str) -> SpotRate:
        restart = rule.restart_minutes / 60
        where = f"preemption.csv row {rule.provider} {rule.instance_glob} {rule.region_glob} {rule.zone_kind}"
        if rule.evidence in ("advisor", "band") and rule.band is not None:
            band_index = rule.band
            table = self.advisor_table
            listed = table.bands.get((offer.region, offer.instance_type)) if rule.evidence == "advisor" else None
            if listed is not None and 0 <= listed < len(self.facts.spot_bands):
                band_index = listed
            if not 0 <= band_index < len(self.facts.spot_bands):
                rate = self.facts.assumptions.default_preemptions_per_hour
                return SpotRate(rate, restart, "default", f"{where}: band {band_index} not in spot_bands.csv", rate,
                                evidence=rule.evidence)
            band = self.facts.spot_bands[band_index]
            rate = band_rate(band, offer.gpus_per_node)
            scaled = f"{rate:.3g}/h at {plural(offer.gpus_per_node, 'GPU')} per instance (spot_bands.csv)"
            if listed is not None:
                label = f"advisor {band.label}"
                source = (f"AWS Spot Instance Advisor: {offer.instance_type} in {offer.region} interrupted {band.label}"
                          f" ({table.source}, as of {table.as_of or 'undated'}) -> {scaled}")
            elif rule.evidence == "advisor":
                label = f"not in advisor: {band.label}"
                source = (f"{offer.instance_type} is not in the AWS Spot Instance Advisor for {offer.region} "
                          f"({table.source}, as of {table.as_of or 'undated'}): band {band.label} assumed ({where}, "
                          f"as of {rule.as_of}) -> {scaled}")
            else:
                label = f"{kind} {band.label}"
                source = f"{where} (as of {rule.as_of}): band {band.label} assumed for a {kind} -> {scaled}"
            return SpotRate(rate, restart, label, source, rate, evidence=rule.evidence)
        rate = rule.preemptions_per_hour
        label = "no spot" if rule.evidence == "none" else "docs"
        return SpotRate(rate, restart, label, f"{where} (as of {rule.as_of or 'undated'}): {rate:g}/h; {rule.source}",
                        rate, evidence=rule.evidence)

    def _posterior(self, offer: Offer, prior: SpotRate) -> SpotRate:
        seen = self.observed.get((offer.provider, family_of(offer.provider, offer.instance_type), offer.region))
        if seen is None or seen.instance_hours <= 0 or prior.evidence == "none":
            return prior
        weight = self.facts.assumptions.preemption_prior_hours
        post = posterior_rate(prior.preemptions_per_hour, weight, seen.preemptions, seen.instance_hours)
        return SpotRate(
            post.rate_per_hour, prior.restart_hours, f"{prior.label}, {seen.instance_hours:.0f} h observed",
            f"{prior.source}; updated with {plural(seen.preemptions, 'preemption')} in {seen.instance_hours:.1f} "
            f"instance-hours of {plural(seen.attempts, 'spot attempt')} in the run ledger (prior worth {weight:g} h): "
            f"{prior.preemptions_per_hour:.3g} -> {post.rate_per_hour:.3g}/h",
            prior.preemptions_per_hour, seen.preemptions, seen.instance_hours, prior.evidence)


# -- The ledger's history ------------------------------------------------------------------------------------------

def observations(runs: Iterable[tuple[Iterable[Any], Iterable[Any]]], now: datetime) -> dict[RateKey, Observed]:
    """Preemptions and instance-hours of every spot attempt that ran, per (provider, family, region).

    ``runs`` holds (placements, attempts) per run, shaped like the ledger's rows (`arbitrage.ledger.PlacementRow`:
    rank, provider, region, instance_type, nodes, spot; `AttemptRow`: rank, running_at, ended_at, outcome,
    restarts), so the ledger stays storage only.

    An attempt counts a preemption when it ended preempted, plus every recovery its backend reported (a managed
    job restarting in place); its instance-hours are nodes x hours from running to its end (or ``now``).
    """
    totals: dict[RateKey, list[float]] = {}
    for placements, attempts in runs:
        by_rank = {p.rank: p for p in placements}
        for a in attempts:
            p = by_rank.get(a.rank)
            if p is None or not p.spot or a.running_at is None:
                continue
            end = a.ended_at or now
            hours = max(0.0, (end - a.running_at).total_seconds() / 3600) * p.nodes
            key = (p.provider, family_of(p.provider, p.instance_type), p.region)
            entry = totals.setdefault(key, [0, 0.0, 0])
            entry[0] += (a.outcome == "preempted") + max(0, a.restarts)
            entry[1] += hours
            entry[2] += 1
    return {k: Observed(int(v[0]), v[1], int(v[2])) for k, v in totals.items()}


# -- The runner's question at a preemption -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SpotRisk:
    """What the runner needs to ask P(meet the deadline on spot) at a preemption (recorded at submission).

    Per instance ``preemptions_per_hour`` (the plan's, with its ``source``), the work as the cost model counts
    it (compute plus checkpoint writes, per retried segment) and the fixed hours before work starts.
    """

    preemptions_per_hour: float
    restart_hours: float
    segment_hours: float
    work_hours: float
    nodes: int
    provision_hours: float
    source: str = ""
    prior_hours: float = 100.0

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready fields."""
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> SpotRisk:
        """Back from ``as_dict`` (unknown keys ignored)."""
        known = {k: raw[k] for k in cls.__slots__ if k in raw}  # type: ignore[attr-defined]
        return cls(**known)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class SpotVerdict:
    """The answer at a preemption: stay on spot or not, P(meet the deadline on spot) and why, in one line."""

    stay: bool
    probability: float
    rate_per_hour: float
    remaining_work_hours: float
    message: str


def spot_verdict(risk: SpotRisk, *, hours_to_deadline: float, done_work_hours: float, preemptions: int,
                 spot_instance_hours: float, confidence: float) -> SpotVerdict:
    """Whether a preempted spot run should stay on spot: P(finish by the deadline on spot) >= ``confidence``.

    The rate is the plan's, updated with this run's own preemptions over its instance-hours (the same
    Gamma-Poisson rule as the ledger history); the rest of the work restarts after one restart plus provisioning.
    """
    post = posterior_rate(risk.preemptions_per_hour, max(risk.prior_hours, 1e-9), max(0, preemptions),
                          max(0.0, spot_instance_hours))
    remaining = max(0.0, risk.work_hours - done_work_hours)
    cluster = post.rate_per_hour * max(1, risk.nodes)
    if hours_to_deadline <= 0:
        p = 1.0 if remaining <= 0 else 0.0
    else:
        p = finish_by(hours_to_deadline, work_hours=remaining, segment_hours=risk.segment_hours,
                      restart_hours=risk.restart_hours, rate_per_hour=cluster,
                      fixed_hours=risk.restart_hours + risk.provision_hours).probability
    stay = p >= confidence
    verb = "staying on spot" if stay else "deadline at risk: leaving spot for on-demand"
    sign = ">=" if stay else "<"
    message = (f"{verb}: P(meet the deadline on spot) = {p:.3f} {sign} {confidence:g} ({remaining:.1f} h of work "
               f"left, {hours_to_deadline:.1f} h to the deadline, {post.rate_per_hour:.3g}/h per instance x "
               f"{risk.nodes} after {plural(preemptions, 'preemption')} in {spot_instance_hours:.1f} instance-hours)")
    return SpotVerdict(stay, p, post.rate_per_hour, remaining, message)

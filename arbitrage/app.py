"""Use cases: what a user can ask of gpuarb. The CLI, bench/ and (later) the server call these and nothing below.

Each use case takes plain values (paths, choices, times) and returns plain records; it never prints. Notices
that a command shows while it works (a provider that fell back to its snapshot, a placement a backend cannot
launch) go to the ``say`` callback in the order they happen. Failures are raised from the one error tree in
arbitrage/errors.py, outcomes included: `NothingFeasible` (3), `OverBudget` (4), `JobFailed` (5)...

Heavy modules are imported inside the functions, so importing this module costs nothing at start-up.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arbitrage import paths
from arbitrage.errors import (
    Cancelled,
    GpuarbError,
    Interrupted,
    JobFailed,
    NothingFeasible,
    OverBudget,
    SourceUnavailable,
    UsageError,
)
from arbitrage.params import Objective, Source, matches_any, source_or_default
from arbitrage.plural import noun, plural

if TYPE_CHECKING:
    from arbitrage.accounts import Accounts, IssuedToken, Principal
    from arbitrage.costmodel import CostBreakdown
    from arbitrage.facts import Facts
    from arbitrage.jobspec import JobSpec, SpecOverrides
    from arbitrage.launch.backend import Backend, ClusterInfo
    from arbitrage.launch.runner import Runner, RunOptions
    from arbitrage.ledger import AttemptRow, Ledger, RunRow
    from arbitrage.offers import Offer
    from arbitrage.planner import Plan
    from arbitrage.report.focus import DataHome
    from arbitrage.report.spend import RunLedger
    from providers.quality import Quarantined

Say = Callable[[str], None]


def _quiet(_message: str) -> None:
    """The default ``say``: notices are dropped."""


def _hostname() -> str:
    """This machine's name, as the ledger records supervisors (socket is imported only when a run needs it)."""
    import socket

    return socket.gethostname()


def utcnow() -> datetime:
    """The clock every use case reads when no time is given."""
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------------------------------------------------------
# Facts and offers
# ---------------------------------------------------------------------------------------------------------------


def load_facts() -> Facts:
    """The fact tables (bundled, with the user's overrides)."""
    from arbitrage.facts import load_facts as load

    return load()


def load_snapshot(facts: Facts) -> list[Offer]:
    """The bundled offer snapshot, costed with these facts."""
    from providers.snapshot import load_snapshot as load

    return load(facts)


def load_offers(facts: Facts, source: Source | None = None, providers: Sequence[str] = (),
                deny: Sequence[str] = (), *, say: Say = _quiet, env: Mapping[str, str] | None = None,
                now: datetime | None = None, strict: bool = False) -> list[Offer]:
    """Offers from the chosen source, asking only allowed, not denied providers (globs).

    Fallbacks are said as ``warning: ...`` (always) or ``info: ...`` (unless the source is auto); a provider that
    cannot be reached is said in full once, then in one short line while it stays so (providers/fetch.py
    ``notices``). With ``strict`` every line is said in full, and any provider whose asked-for source could not be
    used ends the command with SourceUnavailable naming each (see ``strict_source``). Live and cached offers have
    passed the price quality gate; the bundled snapshot passed it when it was built.
    """
    return gather_offers(facts, source, providers, deny, say=say, env=env, now=now, strict=strict)[0]


def strict_source(source: Source | None, strict: bool, env: Mapping[str, str] | None = None) -> Source:
    """The price source a command uses (``source``, else $GPUARB_SOURCE, else auto); UsageError for --strict on the
    bundled snapshot, which has no live or cached prices to insist on."""
    mode = source_or_default(source, os.environ if env is None else env)
    if strict and mode is Source.snapshot:
        given = "--source snapshot" if source is not None else "GPUARB_SOURCE=snapshot"
        raise UsageError(f"--strict: {given} has no live or cached prices to insist on; give --source live, "
                         "cache or auto")
    return mode


_STRICT_WANTS = {Source.live: "live prices", Source.cache: "cached prices",
                 Source.auto: "fresh cached or live prices"}


def strict_failure(shortfalls: Sequence[tuple[str, str]], mode: Source) -> SourceUnavailable:
    """The one-line --strict failure naming every (provider, why) whose asked-for prices could not be used."""
    named = "; ".join(f"{name}: {' '.join(why.split())}" for name, why in shortfalls)
    count = len(shortfalls)
    return SourceUnavailable(f"--strict --source {mode.value}: no {_STRICT_WANTS[mode]} from "
                             f"{plural(count, 'provider')}: {named}")


def gather_offers(facts: Facts, source: Source | None = None, providers: Sequence[str] = (),
                  deny: Sequence[str] = (), *, say: Say = _quiet, env: Mapping[str, str] | None = None,
                  now: datetime | None = None, quarantined: bool = False,
                  strict: bool = False) -> tuple[list[Offer], list[Quarantined]]:
    """`load_offers`, plus (with ``quarantined``) every price the quality gate set aside from the same sources:
    from live and cached answers now, from the bundled snapshot when it was built."""
    environ = dict(os.environ) if env is None else dict(env)
    mode = strict_source(source, strict, environ)
    snapshot = load_snapshot(facts)
    if mode is Source.snapshot:
        aside = _snapshot_quarantine(facts) if quarantined else []
        if providers or deny:
            aside = [q for q in aside if (not providers or matches_any(q.offer.provider, providers))
                     and not matches_any(q.offer.provider, deny)]
        return snapshot, aside
    from providers.base import FetchContext
    from providers.fetch import collect_offers
    from providers.registry import adapter_ids

    names = None
    if providers or deny:
        known = {o.provider for o in snapshot} | set(adapter_ids())
        names = [n for n in known if (not providers or matches_any(n, providers)) and not matches_any(n, deny)]
    ctx = FetchContext(facts=facts, now=now or utcnow(), env=environ)
    offers, statuses = collect_offers(snapshot, mode.value, ctx, names, pause=not strict)
    _say_sources(statuses, mode, ctx, say, strict)
    aside: list[Quarantined] = []
    from_snapshot = {s.provider for s in statuses if s.used == "snapshot"}
    for status in statuses:
        aside += status.quarantined
    if quarantined and from_snapshot:
        aside += [q for q in _snapshot_quarantine(facts) if q.offer.provider in from_snapshot]
    return offers, aside


def _say_sources(statuses: Sequence[Any], mode: Source, ctx: Any, say: Say, strict: bool, *, full: bool = False,
                 summary: bool = True) -> None:
    """Say where prices came from (providers/fetch.py ``notices``: in full with ``strict`` or ``full``), then, with
    ``strict``, raise SourceUnavailable naming every provider whose asked-for source could not be used."""
    from providers.fetch import notices

    for line in notices(statuses, mode.value, paths.cache_dir(ctx.env), ctx.now, full=strict or full,
                        summary=summary):
        say(line)
    shortfalls = [(s.provider, s.shortfall) for s in statuses if s.shortfall]
    if strict and shortfalls:
        raise strict_failure(shortfalls, mode)


def _say_advisor(status: Any, mode: Source, ctx: Any, say: Say, strict: bool) -> None:
    """The Spot Instance Advisor feed's notice, said as prices' are (once in full while offline; no short line of its
    own: the prices' line covers the pause), and with ``strict`` a feed not used as asked is SourceUnavailable."""
    from providers.fetch import ProviderStatus
    from providers.spot_advisor import NAME

    used = status.used if status.used in ("live", "cache", "snapshot") else "snapshot"
    as_status = ProviderStatus(NAME, used, 0, "", None, status.level, status.message,
                               failure=status.message if status.level == "warning" else "")
    _say_sources([as_status], mode, ctx, say, False, full=strict, summary=False)
    if strict and status.level != "ok":  # every fallback says why; a feed used as asked says nothing
        wants = _STRICT_WANTS[mode].replace("prices", "feed")
        why = " ".join(status.message.removeprefix(f"{NAME}: ").split())
        raise SourceUnavailable(f"--strict --source {mode.value}: no {wants} of the AWS Spot Instance Advisor "
                                f"(spot rates): {why}")


def _snapshot_quarantine(facts: Facts) -> list[Quarantined]:
    """The prices the gate set aside when the bundled snapshot was built."""
    from providers.quality import load_quarantine

    return load_quarantine(facts)


def catalog_provenance(offers: Sequence[Offer]) -> dict[str, Any]:
    """Per provider: where its offers came from (source, as-of dates, references, counts)."""
    out: dict[str, Any] = {}
    for o in offers:
        entry = out.setdefault(o.provider, {"source": set(), "as_of": set(), "price_ref": set(), "offers": 0})
        entry["source"].add(o.source)
        entry["as_of"].add(o.as_of)
        entry["price_ref"].add(o.price_ref if o.source == "snapshot" and o.price_ref.startswith("skypilot")
                               else o.price_ref.split(" ")[0])
        entry["offers"] += 1
    for entry in out.values():
        for key in ("source", "as_of", "price_ref"):
            values = sorted(entry[key])
            entry[key] = values if len(values) > 1 else values[0]
    return dict(sorted(out.items()))


def source_counts(offers: Sequence[Offer]) -> str:
    """'snapshot: 935 offers' or 'live: 120 offers, snapshot: 300 offers'."""
    counts: dict[str, int] = {}
    for o in offers:
        counts[o.source] = counts.get(o.source, 0) + 1
    return ", ".join(f"{s}: {plural(n, 'offer')}" for s, n in sorted(counts.items())) or "no offers"


@dataclass(frozen=True)
class FilterCount:
    """One filter of a price query (the option and its value as given) and the offers left after it."""

    option: str
    value: str
    offers: int

    def record(self) -> dict[str, Any]:
        return {"option": self.option, "value": self.value, "offers": self.offers}


@dataclass(frozen=True)
class EmptyResult:
    """Why a price query found nothing: the offers left after each filter in the order applied, up to the one that
    removed the last of them, and ``reason``, all of it in one line with a hint about that filter."""

    counts: tuple[FilterCount, ...]
    reason: str


@dataclass(frozen=True)
class PriceList:
    """Offers matching a price query, cheapest first (``spot`` chooses which price sorts), the time their ages are
    counted to, the age past which a price is stale, (when asked) the set-aside prices matching the query, and
    (when nothing matched) which filter removed the last offer."""

    offers: list[Offer]
    spot: bool | None
    now: datetime | None = None
    stale_days: float = 90.0
    quarantined: list[Quarantined] | None = None
    empty: EmptyResult | None = None


def find_prices(facts: Facts, *, gpus: Sequence[str] = (), count: int | None = None, spot: bool | None = None,
                providers: Sequence[str] = (), regions: Sequence[str] = (), source: Source | None = None,
                say: Say = _quiet, now: datetime | None = None, quarantined: bool = False,
                strict: bool = False) -> PriceList:
    """`gpuarb prices`: matching offers, cheapest per GPU-hour first. Names must already be canonical.

    With ``quarantined``, also the prices the quality gate set aside from the same sources that match the query
    (``spot`` then picks the set-aside option: spot, on-demand, or both when None). With ``strict``, see
    `load_offers`. An empty answer says which filter emptied it (``PriceList.empty``).
    """
    from arbitrage.catalog import OfferQuery, filter_offers, sort_by_price

    query = OfferQuery(gpus=tuple(gpus), count=count, spot=spot, providers=tuple(providers), regions=tuple(regions))
    moment = now or utcnow()
    offers, aside = gather_offers(facts, source, query.providers, say=say, now=moment, quarantined=quarantined,
                                  strict=strict)
    matching_aside = None
    if quarantined:
        loose = OfferQuery(gpus=query.gpus, count=count, providers=query.providers, regions=query.regions)
        keep = {id(o) for o in filter_offers([q.offer for q in aside], loose, facts)}
        matching_aside = [q for q in aside if id(q.offer) in keep and (spot is None or (q.option == "spot") == spot)]
    matching = sort_by_price(filter_offers(offers, query, facts), spot)
    return PriceList(matching, spot, moment, facts.assumptions.stale_price_days, matching_aside,
                     None if matching else explain_empty(offers, query, facts))


def _names(values: Sequence[str], join: str = " or ", most: int = 4) -> str:
    """'H100', 'aws or gcp', 'H100/H100-MEGA/H100-NVL and 2 more' for one line."""
    shown = list(values[:most]) if len(values) <= most else list(values[: most - 1])
    rest = len(values) - len(shown)
    return join.join(shown) + (f" and {rest} more" if rest else "")


def _most_common(values: Sequence[str], most: int = 6) -> str:
    """The most frequent values first ('us-east-1, us-west-2, ... and 12 more')."""
    from collections import Counter

    ranked = [v for v, _ in sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))]
    return _names(ranked, ", ", most)


def explain_empty(offers: Sequence[Offer], query: Any, facts: Facts) -> EmptyResult:
    """Why ``query`` (an arbitrage.catalog.OfferQuery) matches none of ``offers``: the filters applied one at a time
    (GPU, provider, region, purchase option, GPUs per node), the offers left after each, up to the one that left
    none, with a hint about that filter. A provider filter that removes nothing (the offers were fetched for those
    providers only) is said with the first count ('41 H100 offers at aws')."""
    from arbitrage.catalog import OfferQuery, filter_offers

    left = list(offers)
    at = f" at {_names(query.providers)}" if query.providers else ""
    merged = bool(query.providers) and len(filter_offers(left, OfferQuery(providers=query.providers))) == len(left)
    label = _names(query.gpus, "/") if query.gpus else ""
    counts: list[FilterCount] = []
    items: list[str] = []
    hint = ""
    if not query.gpus:  # start from every offer there is (of the providers asked, when only those were fetched)
        counts.append(FilterCount("--provider", _names(query.providers), len(left)) if merged
                      else FilterCount("", "all offers", len(left)))
        items.append(f"{plural(len(left), 'offer')}{at if merged else ''}")
        if not left:
            hint = f"no price source has any offer{at}"
    steps: list[tuple[str, str, Any]] = []
    if query.gpus:
        steps.append(("--gpu", label, OfferQuery(gpus=query.gpus)))
    if query.providers and not merged:
        steps.append(("--provider", _names(query.providers), OfferQuery(providers=query.providers)))
    if query.regions:
        steps.append(("--region", _names(query.regions), OfferQuery(regions=query.regions)))
    if query.spot is not None:
        steps.append(("--spot" if query.spot else "--on-demand", "", OfferQuery(spot=query.spot)))
    if query.count is not None:
        steps.append(("--count", str(query.count), OfferQuery(count=query.count)))
    for option, value, partial in steps:
        if not left:
            break
        before, left = left, filter_offers(left, partial, facts)
        counts.append(FilterCount(option, value, len(left)))
        items.append(f"{len(left):,} " + {
            "--gpu": f"{label} {noun(len(left), 'offer')}{at if merged else ''}", "--provider": at.strip(),
            "--region": f"in {_names(query.regions)}", "--spot": "with a spot price",
            "--on-demand": "with an on-demand price",
            "--count": f"with {value} {noun(query.count or 0, 'GPU')} per node"}[option])
        if not left:
            hint = _empty_hint(option, before, query, facts, at if option != "--gpu" or merged else "", offers)
    if query.gpus and not offers:
        hint = f"no price source has any offer{at}"
    reason = "no offer matches these filters: " + ", ".join(items) + (f" ({hint})" if hint else "")
    return EmptyResult(tuple(counts), reason)


def _empty_hint(option: str, before: Sequence[Offer], query: Any, facts: Facts, at: str,
                everything: Sequence[Offer]) -> str:
    """What was there just before ``option`` removed the last offer (of ``everything`` loaded), and how to ask for
    it."""
    what = f"{_names(query.gpus, '/')} " if query.gpus else ""
    if option == "--gpu":
        return f"GPU models offered{at}: {_most_common([o.gpu_model for o in before], 8)}"
    if option == "--provider":
        sellers = f"{what}offers come from {_most_common([o.provider for o in before], 8)}"
        if not any(matches_any(o.provider, query.providers) for o in everything):
            return f"no offer from {_names(query.providers)} in these price sources at all; {sellers}"
        return sellers
    if option == "--region":
        from arbitrage.catalog import offer_place

        real = [o.region for o in before if offer_place(o, facts)[0]]
        if not real:
            return (f"--region matches real regions only, and these offers are in places without a known country: "
                    f"{_most_common([o.region for o in before])}")
        return f"{what.strip() or 'the offers'}{at} {'are' if len(real) > 1 else 'is'} in {_most_common(real)}"
    if option in ("--spot", "--on-demand"):
        return f"none of them is sold {'as spot' if query.spot else 'on-demand'}; drop {option}"
    sizes = sorted({o.gpus_per_node for o in before})
    most = sizes[-1]
    if query.count > most:
        text = f"--count is GPUs per node; the most{at} is {most}"
        fits = [n for n in sizes if query.count % n == 0]
        if fits:
            per = fits[-1]
            text += f": plan {query.count} GPUs as num_nodes: {query.count // per}" + (
                f" of {plural(per, 'GPU')}" if per != most else "")
        return text
    shown = ", ".join(map(str, sizes[:-1])) + f" or {most}" if len(sizes) > 1 else str(most)
    return f"--count is GPUs per node; {what}offers{at} come with {shown} {noun(most, 'GPU')} per node"


@dataclass(frozen=True)
class ProviderSources:
    """`gpuarb providers`: where each provider's prices come from, and the cache folder."""

    cache_dir: Path
    rows: list[dict[str, Any]]


def provider_sources(facts: Facts, *, refresh: bool = False, say: Say = _quiet,
                     env: Mapping[str, str] | None = None, strict: bool = False) -> ProviderSources:
    """Each provider's adapter, credentials found, last refresh, cached and snapshot counts, last failure.

    ``refresh`` fetches every provider live first and says every outcome in full; with ``strict`` too, any provider
    whose live prices could not be used ends it with SourceUnavailable naming each (UsageError without ``refresh``).
    """
    from providers import cache
    from providers.base import FetchContext
    from providers.quality import gate, load_rules
    from providers.registry import cards, get_adapter

    if strict and not refresh:
        raise UsageError("--strict goes with --refresh: it fails when the refresh could not reach every provider")
    environ = dict(os.environ) if env is None else dict(env)
    snapshot = load_snapshot(facts)
    ctx = FetchContext(facts=facts, now=utcnow(), env=environ)
    if refresh:
        from providers.fetch import collect_offers

        _say_sources(collect_offers(snapshot, "live", ctx)[1], Source.live, ctx, say, strict, full=True)
    directory = paths.cache_dir(ctx.env)
    rules = load_rules(facts)
    snapshot_aside: dict[str, int] = {}
    for q in _snapshot_quarantine(facts):
        snapshot_aside[q.offer.provider] = snapshot_aside.get(q.offer.provider, 0) + 1
    rows = []
    for card in sorted(cards(), key=lambda c: c.id):
        name = card.id
        entry, problem = cache.inspect(directory, name)
        if problem:
            say(f"warning: {name}: {problem}")
        row: dict[str, Any] = {
            "provider": name, "tier": card.tier,
            "adapter": card.adapter_module is not None, "credentials": None, "credentials_hint": None,
            "last_refresh": entry.fetched_at.isoformat(timespec="seconds") if entry and entry.fetched_at else None,
            "cached_offers": len(entry.offers) if entry else 0,
            "snapshot_offers": sum(1 for o in snapshot if o.provider == name),
            "last_failure": entry.failure if entry and entry.failed_at else None,
            # Prices the quality gate set aside: from the bundled snapshot (at build) and from the cached answer.
            "snapshot_quarantined": snapshot_aside.get(name, 0),
            "cached_quarantined": len(gate(entry.offers, rules).quarantined) if entry and entry.offers else 0,
        }
        if card.adapter_module is not None:
            try:
                adapter = get_adapter(name)
                row["credentials"] = adapter.has_credentials(ctx)
                row["credentials_hint"] = adapter.credentials_hint
                row["ttl_seconds"] = adapter.ttl_seconds
            except ModuleNotFoundError as exc:
                row["credentials_hint"] = f"adapter unavailable: {exc.name} not installed"
        rows.append(row)
    return ProviderSources(directory, rows)


# ---------------------------------------------------------------------------------------------------------------
# Job specs and plans
# ---------------------------------------------------------------------------------------------------------------


def read_spec(path: str, facts: Facts, now: datetime | None = None,
              overrides: SpecOverrides | None = None) -> JobSpec:
    """A job spec file (any SkyPilot task), validated as of ``now`` (default: the clock), with `sky launch`-style
    ``overrides``: SpecError names file, line and field."""
    from arbitrage.specfile import read_jobspec

    return read_jobspec(path, facts, now or utcnow(), overrides)


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of job spec files."""
    from arbitrage.specfile import json_schema

    return json_schema()


@dataclass(frozen=True)
class PlanOutcome:
    """A plan with what it was made from: the spec, the offers' provenance and the time it was made at."""

    spec: JobSpec
    offers: list[Offer]
    plan: Plan
    catalog: dict[str, Any]
    now: datetime


def plan_offers(spec: JobSpec, offers: Sequence[Offer], facts: Facts, now: datetime,
                objective: Objective = Objective.cost, *, risk: RiskInputs | None = None) -> Plan:
    """Plan a job over given offers (bench/ and tests build their own catalogs); ``risk`` from `risk_inputs`
    (default: spot rates from the fact tables alone, no capacity signals)."""
    from arbitrage.planner import plan as make_plan

    return make_plan(spec, list(offers), facts, now, objective.value, risk=risk.book if risk else None,
                     capacity=risk.capacity if risk else None)


def plan_job(path: str, facts: Facts, *, source: Source | None = None, objective: Objective = Objective.cost,
             now: datetime | None = None, say: Say = _quiet, overrides: SpecOverrides | None = None,
             strict: bool = False) -> PlanOutcome:
    """`gpuarb plan`: the ranked placements for a job spec file (no exit on infeasible: see `plan_verdict`);
    ``strict``: see `load_offers` (the Spot Instance Advisor feed counts too)."""
    moment = now or utcnow()
    strict_source(source, strict)
    return plan_spec(read_spec(path, facts, moment, overrides), facts, source=source, objective=objective,
                     now=moment, say=say, strict=strict)


def plan_spec(spec: JobSpec, facts: Facts, *, source: Source | None, objective: Objective, now: datetime,
              say: Say = _quiet, strict: bool = False, backend: str | None = None) -> PlanOutcome:
    """Plan a parsed spec as every use case does: its allowed providers' offers, the spot rates and capacity
    signals (`risk_inputs`), the plan, and each placement's launch note for ``backend`` (`with_launch_notes`)."""
    offers = load_offers(facts, source, spec.providers_allow or (), spec.providers_deny, say=say, now=now,
                         strict=strict)
    risk = risk_inputs(facts, offers, spec=spec, source=source, say=say, now=now, strict=strict)
    planned = with_launch_notes(plan_offers(spec, offers, facts, now, objective, risk=risk), backend)
    return PlanOutcome(spec, offers, planned, catalog_provenance(offers), now)


def with_launch_notes(result: Plan, backend: str | None = None) -> Plan:
    """The plan with each placement's ``launch_note``: why ``backend`` (default: the one `gpuarb run` uses) may
    launch it at another price than shown ('' when the launch pins exactly what was priced)."""
    from dataclasses import replace

    from arbitrage.launch.backends import price_note

    note = price_note(backend or backend_names()[0])

    def noted(items: Sequence[CostBreakdown]) -> tuple[CostBreakdown, ...]:
        return tuple(replace(b, launch_note=note(b.placement)) for b in items)

    return replace(result, placements=noted(result.placements), over_budget=noted(result.over_budget))


# ---------------------------------------------------------------------------------------------------------------
# Spot risk and capacity
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskInputs:
    """What the planner weighs spot and capacity with: rates (Advisor table, ledger history) and capacity signals.

    ``advisor`` says which Spot Instance Advisor table was used (live / cache / snapshot), ``ledger`` the run ledger
    the history was read from (None: none exists yet).
    """

    book: Any  # arbitrage.spotrisk.RiskBook
    capacity: Any  # arbitrage.capacity.CapacityBook
    advisor: str
    ledger: Path | str | None


def ledger_history(now: datetime) -> tuple[dict[Any, Any], Path | str | None]:
    """Observed spot preemptions and instance-hours per (provider, family, region): from the SQLite ledger file
    read directly (planning never imports SQLAlchemy, nor creates a ledger), or from the server database that
    ``$GPUARB_DATABASE_URL`` names; empty when there is no ledger yet."""
    from arbitrage.spotrisk import observations

    if os.environ.get("GPUARB_DATABASE_URL", "").strip():
        ledger = open_ledger()
        return observations(ledger.spot_history(), now), ledger.path
    path = paths.ledger_file()
    if not path.is_file():
        return {}, None
    from arbitrage import spothistory

    return observations(spothistory.read(path), now), path


def risk_inputs(facts: Facts, offers: Sequence[Offer], *, spec: JobSpec | None = None, source: Source | None = None,
                say: Say = _quiet, env: Mapping[str, str] | None = None, now: datetime | None = None,
                strict: bool = False, history: bool = True) -> RiskInputs:
    """Spot rates and capacity signals for planning ``spec`` over ``offers`` (or for `gpuarb risk` without one).

    The Advisor table follows ``source`` like prices do (snapshot: the bundled copy; auto: a fresh cache, else
    the live feed, else a stale cache, else the bundled copy), ``strict`` included: a feed that could not be used
    as asked is SourceUnavailable. Capacity signals come from the offers themselves (live Lambda/RunPod offers,
    marketplace counts) and, for a spec with AWS spot candidates and AWS credentials outside snapshot/cache mode,
    from AWS spot placement scores. Notices go to ``say``.
    """
    from arbitrage.capacity import CapacityBook, offer_signals
    from arbitrage.spotrisk import RiskBook
    from providers.registry import cards

    environ = dict(os.environ) if env is None else dict(env)
    moment = now or utcnow()
    mode = source_or_default(source, environ)
    advisor = None
    used = "snapshot"
    ctx = None
    if mode is not Source.snapshot:
        from providers.base import FetchContext

        ctx = FetchContext(facts=facts, now=moment, env=environ)
    wants_advisor = (spec is None or spec.spot != "never") and any(
        o.provider == "aws" and o.spot_usd_per_hour is not None for o in offers)
    if ctx is not None and wants_advisor:  # the Advisor rates AWS spot only: no fetch for a plan without it
        from providers.spot_advisor import load_advisor

        advisor, status = load_advisor(mode.value, ctx, pause=not strict)
        used = status.used
        _say_advisor(status, mode, ctx, say, strict)
    observed, ledger_path = ledger_history(moment) if history else ({}, None)
    in_stock = {c.id: c.live_offers_in_stock for c in cards() if c.live_offers_in_stock}
    signals = offer_signals(offers, in_stock)
    asked = sorted({f"{s.provider} {'listed machines' if s.listed is not None else 'live stock'}" for s in signals})
    unavailable: list[str] = []
    if spec is not None and mode in (Source.auto, Source.live) and ctx is not None:
        wanted = _aws_spot_candidates(spec, offers, facts)
        if wanted:
            from providers.aws_capacity import placement_scores

            scores, problem = placement_scores(ctx, wanted)
            signals += scores
            if "no AWS credentials" not in problem:
                asked.append("AWS spot placement scores")
            if problem:
                unavailable.append(problem)
                if "no AWS credentials" not in problem:
                    say(f"warning: {problem}")
    elif spec is not None:
        unavailable.append(f"--source {mode.value} asks no provider for capacity now")
    book = RiskBook(facts, advisor=advisor, observed=observed)
    return RiskInputs(book, CapacityBook(signals, tuple(asked), tuple(unavailable)), used, ledger_path)


@dataclass(frozen=True)
class RiskTable:
    """`gpuarb risk`: one row per spot-priced (provider, instance type, region, zone kind) and where each rate came
    from; ``advisor`` is the Spot Instance Advisor table used, ``ledger`` the ledger the history came from."""

    rows: list[dict[str, Any]]
    advisor: dict[str, Any]
    ledger: Path | str | None
    observed_hours: float
    now: datetime


def risk_table(facts: Facts, *, providers: Sequence[str] = (), gpus: Sequence[str] = (), source: Source | None = None,
               say: Say = _quiet, now: datetime | None = None, strict: bool = False) -> RiskTable:
    """Every spot offer's preemption rate per instance-hour, its prior, the observed history behind it, its restart
    time and its source, one row per provider / instance type / region / zone kind (GPU names canonical);
    ``strict``: see `load_offers` (the Spot Instance Advisor feed counts too)."""
    from arbitrage.spotrisk import family_of
    from providers.registry import find

    moment = now or utcnow()
    offers = [o for o in load_offers(facts, source, providers, say=say, now=moment, strict=strict)
              if o.spot_usd_per_hour is not None and (not providers or matches_any(o.provider, providers))
              and (not gpus or any(o.provides(g) for g in gpus))]
    risk = risk_inputs(facts, offers, source=source, say=say, now=moment, strict=strict)
    book = risk.book
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for o in sorted(offers, key=lambda o: (o.provider, o.instance_type, o.region, o.zone or "")):
        kind = book.zone_kind(o)
        key = (o.provider, o.instance_type, o.region, kind)
        if key in rows:
            rows[key]["offers"] += 1
            continue
        rate = book.rate(o)
        card = find(o.provider)
        rows[key] = {
            "provider": o.provider, "instance_type": o.instance_type, "family": family_of(o.provider, o.instance_type),
            "region": o.region, "zone_kind": kind, "zone": o.zone if kind != "region" else None,
            "accelerator": o.accelerator, "gpus_per_node": o.gpus_per_node,
            "spot_kind": card.spot if card else None,
            "preemptions_per_hour": round(rate.preemptions_per_hour, 5),
            "prior_preemptions_per_hour": round(rate.prior_per_hour, 5),
            "observed_preemptions": rate.observed_preemptions, "observed_instance_hours": round(rate.observed_hours, 2),
            "restart_minutes": round(rate.restart_hours * 60, 1), "evidence": rate.evidence, "label": rate.label,
            "source": rate.source, "offers": 1,
        }
    table = book.advisor_table
    observed = sum(o.instance_hours for o in book.observed.values())
    return RiskTable(list(rows.values()), {"used": risk.advisor, "source": table.source, "as_of": table.as_of,
                                           "ref": table.ref, "entries": len(table.bands)},
                     risk.ledger, observed, moment)


def _aws_spot_candidates(spec: JobSpec, offers: Sequence[Offer],
                         facts: Facts) -> list[tuple[str, tuple[str, ...], int]]:
    """(instance type, regions, nodes) of the spec's AWS spot candidates, for spot placement scores."""
    from collections import Counter

    from arbitrage.planner import candidates

    regions: dict[str, set[str]] = {}
    for p in candidates(spec, offers, Counter(), facts):
        if p.spot and p.offer.provider == "aws":
            regions.setdefault(p.offer.instance_type, set()).add(p.offer.region)
    return [(t, tuple(sorted(r)), spec.num_nodes) for t, r in sorted(regions.items())]


def plan_command_verdict(result: Plan) -> GpuarbError | None:
    """The error `gpuarb plan` ends with (locally or through the team server), None when there is a best plan."""
    return plan_verdict(result, over_budget="best plan is over budget: {total} expected, {hourly}/h",
                        infeasible="no feasible placement (see the rejection reasons)")


def plan_verdict(result: Plan, *, over_budget: str, infeasible: str) -> GpuarbError | None:
    """The error a plan without a best placement ends with (None when there is one); messages given by the caller.

    ``over_budget`` may use {total} and {hourly} (the cheapest over-budget placement's USD).
    """
    if result.best is not None:
        return None
    if result.over_budget:
        from arbitrage.render import usd

        cheapest = result.over_budget[0]
        return OverBudget(over_budget.format(total=usd(cheapest.total_usd), hourly=usd(cheapest.hourly_usd),
                                             total_plain=f"${cheapest.total_usd:,.2f}"))
    return NothingFeasible(infeasible)


def plan_record_of(ref: str, facts: Facts, *, source: Source | None = None, objective: Objective = Objective.cost,
                   now: datetime | None = None, say: Say = _quiet, strict: bool = False) -> dict[str, Any]:
    """The plan record (the JSON of `gpuarb plan`) for one side of a diff.

    ``ref`` is a saved plan JSON file, a job spec file, or ``REV:PATH`` (the spec as git has it at that revision,
    read with `git show`, e.g. ``origin/main:jobs/train.yaml``).
    """
    import json

    from arbitrage.errors import UsageError
    from arbitrage.render import plan_record

    path = Path(ref)
    moment = now or utcnow()
    if path.is_file():
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
            try:
                return json.loads(text)  # type: ignore[no-any-return]
            except json.JSONDecodeError as exc:
                raise UsageError(f"{ref}: not a plan JSON file ({exc.msg} at line {exc.lineno})") from None
        outcome = plan_job(ref, facts, source=source, objective=objective, now=moment, say=say, strict=strict)
    else:
        rev, sep, rel = ref.partition(":")
        if not sep or not rev or not rel:
            raise UsageError(f"{ref}: no such file (give a job spec, a saved plan JSON, or REV:PATH)")
        from arbitrage.specfile import parse_jobspec_text

        outcome = plan_spec(parse_jobspec_text(_git_show(rev, rel), facts, ref), facts, source=source,
                            objective=objective, now=moment, say=say, strict=strict)
    return plan_record(outcome.plan, 5, outcome.now, outcome.catalog)


def _git_show(rev: str, path: str) -> str:
    """A file as git has it at a revision (path relative to the current directory, as git takes it)."""
    import subprocess

    from arbitrage.errors import UsageError

    rel = path if path.startswith(("/", "./", "../")) else f"./{path}"
    try:
        done = subprocess.run(["git", "show", f"{rev}:{rel}"], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"{rev}:{path}: cannot run git ({exc})") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["git show failed"])[-1]
        raise UsageError(f"{rev}:{path}: {reason}")
    return done.stdout


@dataclass(frozen=True)
class DiffOutcome:
    """`gpuarb diff`: the change and the policies it breaks (empty: passed)."""

    diff: Any  # arbitrage.costdiff.CostDiff
    violations: list[str]


def diff_plans(base: str, head: str, facts: Facts, *, source: Source | None = None,
               objective: Objective = Objective.cost, fail_above_usd: float | None = None,
               fail_above_percent: float | None = None, now: datetime | None = None,
               say: Say = _quiet, strict: bool = False) -> DiffOutcome:
    """The cost change from BASE to HEAD, both planned at the same time over the same price sources (``strict``:
    see `load_offers`; a side that is a saved plan loads no prices)."""
    from arbitrage.costdiff import CostDiff, plan_side, policy_violations

    moment = now or utcnow()
    strict_source(source, strict)
    sides = [plan_side(plan_record_of(ref, facts, source=source, objective=objective, now=moment, say=say,
                                      strict=strict), ref)
             for ref in (base, head)]
    diff = CostDiff(sides[0], sides[1])
    return DiffOutcome(diff, policy_violations(diff, fail_above_usd=fail_above_usd,
                                               fail_above_percent=fail_above_percent))


# ---------------------------------------------------------------------------------------------------------------
# Runs: start, supervise, stop, read
# ---------------------------------------------------------------------------------------------------------------


def open_ledger() -> Ledger:
    """The run ledger (created on first use)."""
    from arbitrage.ledger import Ledger

    return Ledger.open()


def backend_names() -> tuple[str, ...]:
    """The backends `--backend` accepts, in the registry's order (arbitrage/launch/backends.py)."""
    from arbitrage.launch.backends import BACKENDS

    return tuple(BACKENDS)


def make_backend(name: str, ray_address: str | None = None, *, check: bool = True) -> Backend:
    """A backend by name; ``check`` verifies it can run here (a dry run only renders, and skips that)."""
    from arbitrage.launch.backends import make_backend as make

    backend = make(name, state_dir=paths.data_dir(), ray_address=ray_address)
    if check:
        backend.check()
    return backend


def run_options(*, poll_seconds: float = 10.0, max_failovers: int = 3, max_restarts: int = 10,
                pending_timeout: float = 30.0) -> RunOptions:
    """The runner's knobs, with checkpoints under the data dir."""
    from arbitrage.launch.runner import RunOptions

    return RunOptions(max_failovers=max_failovers, max_restarts=max_restarts, poll_seconds=poll_seconds,
                      pending_timeout_minutes=pending_timeout, checkpoint_root=paths.checkpoints_dir())


@dataclass
class PreparedRun:
    """A planned run and the placements its backend will try, in order; nothing recorded or launched yet."""

    path: str
    spec: JobSpec
    spec_text: str
    plan: Plan
    backend: Backend
    chosen: list[CostBreakdown]
    now: datetime

    @property
    def best(self) -> CostBreakdown:
        return self.chosen[0]


def prepare_run(job: str, facts: Facts, *, backend: str, ray_address: str | None = None,
                source: Source | None = None, objective: Objective = Objective.cost, max_failovers: int = 3,
                check_backend: bool = True, say: Say = _quiet,
                overrides: SpecOverrides | None = None, strict: bool = False,
                spec_text: str | None = None) -> PreparedRun:
    """Plan a job and choose the placements the backend will try (failover list plus the spot fallback).

    ``spec_text``: the job file's text as a client sent it (the server), ``job`` then only names it.

    With ``overrides`` the run keeps the job file as they made it (specfile.overridden_text), so a resumed or
    detached supervisor reads the same job. ``strict``: see `load_offers` (nothing is launched on prices that
    were not the ones asked for)."""
    from arbitrage.launch.runner import launchable
    from arbitrage.specfile import overridden_text, parse_jobspec_text, read_spec_text

    path = job if spec_text is not None else str(Path(job).resolve())
    moment = utcnow()
    strict_source(source, strict)
    if spec_text is None:
        spec_text = read_spec_text(job)
    if overrides:
        parse_jobspec_text(spec_text, facts, where=job, now=moment, overrides=overrides)  # errors name the file
        spec_text = overridden_text(spec_text, overrides, job)
    spec = parse_jobspec_text(spec_text, facts, where=job, now=moment)
    result = plan_spec(spec, facts, source=source, objective=objective, now=moment, say=say, strict=strict,
                       backend=backend).plan
    verdict = plan_verdict(result, over_budget="best plan is over budget: {total_plain} expected; nothing launched",
                           infeasible="no feasible placement (see `gpuarb plan`); nothing launched")
    if verdict is not None:
        raise verdict
    impl = make_backend(backend, ray_address, check=check_backend)
    chosen, skipped = launchable(impl, list(result.placements), max_failovers + 1)
    for line in skipped[:5]:
        say(f"skipped: {line}")
    if not chosen:
        raise NothingFeasible(f"none of the {plural(len(result.placements), 'feasible placement')} can be launched by "
                              f"--backend {backend}; nothing launched")
    note = impl.accounting_note(chosen[0])
    if note:
        say(note)
    if spec.deadline is not None and spec.spot == "auto" and all(c.placement.spot for c in chosen):
        # The spot policy's way out when a preemption puts the deadline at risk: the best on-demand placement.
        fallback, _ = launchable(impl, [c for c in result.placements if not c.placement.spot], 1)
        chosen += fallback
    return PreparedRun(path, spec, spec_text, result, impl, chosen, moment)


@dataclass(frozen=True)
class DryRun:
    """What `run --dry-run` shows: the placement it would launch and the backend's exact task."""

    label: str
    backend: str
    task: str


def dry_run(prepared: PreparedRun) -> DryRun:
    """The exact task the backend would launch for placement #1; nothing is recorded or launched."""
    from arbitrage.launch.backend import LaunchRequest
    from arbitrage.launch.runner import checkpoint_plan, cluster_name

    best, backend, spec = prepared.best, prepared.backend, prepared.spec
    run_id = "dry-run"
    ckpt = checkpoint_plan(spec, run_id, backend=backend, root=paths.checkpoints_dir())
    req = LaunchRequest(run_id=run_id, attempt=1, cluster_name=cluster_name(run_id, 1), spec=spec,
                        placement=best.placement, checkpoint=ckpt)
    task = backend.render(req)
    o = best.placement.offer
    label = (f"#1 {o.provider} {o.zone or o.region} {best.placement.nodes}x {o.instance_type} "
             f"{'spot' if best.placement.spot else 'on-demand'}: ${best.hourly_usd:,.2f}/h, expected "
             f"${best.total_usd:,.2f} ({o.source} price as of {o.as_of})")
    return DryRun(label, backend.name, task)


def submit_run(prepared: PreparedRun, backend: str, ledger: Ledger) -> str:
    """Record the run and its placements in the ledger, supervised by this process for now; the run id."""
    return record_run(prepared, backend, ledger)


def record_run(prepared: PreparedRun, backend: str, ledger: Ledger, *, team: str | None = None,
               submitted_by: str | None = None, idempotency_key: str | None = None,
               supervised_here: bool = True, spec_sealed: str | None = None) -> str:
    """Record a prepared run; ``supervised_here``: this process watches it (the CLI), else a server worker will
    claim it. The ledger keeps the job file with its ``secrets`` and key-like ``envs`` values redacted
    (specfile.redact_secrets)."""
    from arbitrage.launch.runner import placement_row, spot_risk_data
    from arbitrage.specfile import redact_secrets

    spec = prepared.spec
    risk = None
    if spec.deadline is not None and any(c.placement.spot for c in prepared.chosen):
        # The runner asks the plan's own preemption model at every preemption (spotrisk.spot_verdict).
        assume = load_facts().assumptions
        risk = spot_risk_data(prepared.chosen, prepared.plan.confidence or assume.deadline_confidence,
                              assume.preemption_prior_hours)
    return ledger.create_run(
        name=spec.name, spec_path=prepared.path, spec_text=redact_secrets(prepared.spec_text), backend=backend,
        now=prepared.now,
        placements=[prepared.backend.accounted(placement_row(c)) for c in prepared.chosen], tags=spec.tags,
        budget_total_usd=spec.budget.max_total_usd, budget_hourly_usd=spec.budget.max_hourly_usd,
        supervisor_pid=os.getpid() if supervised_here else None,
        supervisor_host=_hostname() if supervised_here else None,
        message=f"planned from {prepared.path}" + (f", submitted by {submitted_by}" if submitted_by else ""),
        planned_data=risk, team=team, submitted_by=submitted_by, idempotency_key=idempotency_key,
        spec_sealed=spec_sealed)


def detach_run(ledger: Ledger, run_id: str, backend: str, ray_address: str | None, options: RunOptions,
               spec_text: str | None = None) -> int:
    """Start a background supervisor for a recorded run (its output: <data dir>/runs/<id>.log, 0600); its pid.

    ``spec_text`` (the job file with its secrets, which the ledger does not keep) goes to the supervisor on its
    standard input, never to a file or its command line.
    """
    import subprocess

    log_dir = paths.private_dir(paths.run_logs_dir(), own=True)
    cmd = [sys.executable, "-m", "arbitrage.cli", "_supervise", run_id, "--backend", backend,
           "--poll-seconds", str(options.poll_seconds), "--max-failovers", str(options.max_failovers),
           "--max-restarts", str(options.max_restarts), "--pending-timeout", str(options.pending_timeout_minutes)]
    if ray_address:
        cmd += ["--ray-address", ray_address]
    if spec_text is not None:
        cmd.append("--spec-stdin")
    with paths.open_private(log_dir / f"{run_id}.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL if spec_text is None else subprocess.PIPE,
                                stdout=log, stderr=log, start_new_session=True, close_fds=True)
    ledger.set_supervisor(run_id, proc.pid, _hostname())
    if spec_text is not None and proc.stdin is not None:
        try:
            proc.stdin.write(spec_text.encode("utf-8"))
            proc.stdin.close()
        except OSError:  # the supervisor died at once: its log says why, and the run shows unsupervised
            pass
    return proc.pid


def make_runner(backend: Backend, ledger: Ledger, options: RunOptions, say: Say = _quiet) -> Runner:
    """The run lifecycle over a backend and the ledger, on the real clock."""
    import time

    from arbitrage.launch.runner import Runner

    return Runner(backend, ledger, clock=utcnow, sleep=time.sleep, options=options, say=say)


class _Terminated(BaseException):
    """SIGTERM (a CI job cancelled, a `kill`): handled like Ctrl-C so the cluster is torn down."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated()


def supervise_here(runner: Runner, run_id: str, spec: JobSpec, *,
                   confirm_teardown: Callable[[str], bool] | None = None, say: Say = _quiet) -> str:
    """Run the lifecycle in this process; Ctrl-C or SIGTERM tears the cluster down; returns the run state.

    On Ctrl-C, ``confirm_teardown(cluster)`` (when given) may answer no: the run is then left running and
    `Interrupted` is raised.
    """
    import signal

    from arbitrage.runstate import RunState

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return runner.supervise(run_id, spec)
    except (KeyboardInterrupt, _Terminated) as exc:
        teardown = True
        if isinstance(exc, KeyboardInterrupt) and confirm_teardown is not None and runner.handle is not None:
            teardown = confirm_teardown(runner.handle.cluster_name)
        runner.interrupt(run_id, teardown=teardown)
        if teardown:
            say(f"run {run_id} interrupted; nothing left running")
            return RunState.INTERRUPTED
        raise Interrupted(f"run {run_id} left running: `gpuarb down {run_id}` stops it") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def resume_supervision(run_id: str, facts: Facts, *, backend: str, ray_address: str | None, options: RunOptions,
                       say: Say = _quiet, spec_text: str | None = None) -> str:
    """`_supervise`: watch a recorded run from this process to its end; returns the run state.

    Refused (UsageError) for a run that has ended or that a live supervisor (fresh heartbeat) already watches:
    a finished run is never run again. ``spec_text`` is the job file with its secrets (from `run --detach`);
    without it the ledger's copy is used, or the spec file when the ledger's copy had secrets redacted.
    """
    from arbitrage.errors import UsageError
    from arbitrage.specfile import parse_jobspec_text

    ledger = open_ledger()
    run = ledger.run(run_id)
    if run.terminal:
        raise UsageError(f"run {run.id} has ended ({run.state}); there is nothing to supervise")
    if run.supervisor_pid not in (None, os.getpid()) and run.heartbeat_at is not None and supervisor_alive(run):
        raise UsageError(f"run {run.id} is already supervised by pid {run.supervisor_pid} on "
                         f"{run.supervisor_host or 'this host'} (heartbeat {run.heartbeat_at.isoformat()})")
    text = _spec_with_secrets(run, spec_text)
    spec = parse_jobspec_text(text, facts, run.spec_path)
    ledger.set_supervisor(run.id, os.getpid(), _hostname())
    runner = make_runner(make_backend(backend, ray_address), ledger, options, say)
    state = supervise_here(runner, run.id, spec, say=say)
    say(f"run {run.id} ended: {state}")
    return state


def run_outcome_error(state: str, message: str = "") -> GpuarbError | None:
    """The error a run in this final state ends the command with (None: succeeded, or still going)."""
    from arbitrage.runstate import RunState

    kinds: dict[str, type[GpuarbError]] = {
        RunState.NO_CAPACITY: NothingFeasible, RunState.BUDGET_STOPPED: OverBudget, RunState.FAILED: JobFailed,
        RunState.INTERRUPTED: Interrupted, RunState.CANCELLED: Cancelled}
    kind = kinds.get(state)
    return None if kind is None else kind(message)


def _spec_with_secrets(run: RunRow, given: str | None) -> str:
    """The job file to supervise ``run`` with: ``given`` (checked against the ledger's redacted copy), the ledger's
    copy when it had nothing redacted, else the spec file if it still redacts to the ledger's copy."""
    from arbitrage.errors import UsageError
    from arbitrage.specfile import REDACTED, read_spec_text, redact_secrets

    if given is not None:
        if redact_secrets(given) != run.spec_text:
            raise UsageError(f"run {run.id}: the job file given is not the one the run was submitted with")
        return given
    if REDACTED not in run.spec_text:
        return run.spec_text
    try:
        text = read_spec_text(run.spec_path)
    except GpuarbError:
        text = ""
    if redact_secrets(text) != run.spec_text:
        raise UsageError(f"run {run.id}: the ledger keeps its job file with secrets redacted, and {run.spec_path} "
                         "has changed since it was submitted; cannot supervise it without them")
    return text


def supervisor_alive(run: RunRow, now: datetime | None = None) -> bool | None:
    """Whether the process watching a run is alive, by its heartbeat in the ledger: alive while the last one is
    under HEARTBEAT_STALE_SECONDS old (any host). A run without a heartbeat (recorded by an older gpuarb, or whose
    supervisor has not beaten yet) falls back to its pid on this host, and None on another host (cannot tell)."""
    from arbitrage.ledger import HEARTBEAT_STALE_SECONDS

    if run.supervisor_pid is None:
        return False
    if run.heartbeat_at is not None:
        return ((now or utcnow()) - run.heartbeat_at).total_seconds() <= HEARTBEAT_STALE_SECONDS
    if run.supervisor_host and run.supervisor_host != _hostname():
        return None
    try:
        os.kill(run.supervisor_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def state_label(run: RunRow) -> str:
    """The run's state, marked `(unsupervised)` when nothing watches a live run, or `(queued)` when it is a team
    server's run that no worker has claimed yet (or whose worker died: another one takes it up)."""
    if run.terminal:
        return run.state
    alive = supervisor_alive(run)
    if alive is not False:
        return run.state
    return f"{run.state} (queued)" if run.team is not None else f"{run.state} (unsupervised)"


def run_summary(ledger: Ledger, run: RunRow, *, detail: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """A run as plain data: state, where, expected vs spent (USD), and with ``detail`` attempts and events."""
    from arbitrage.money import cents

    moment = now or utcnow()
    placements = {p.rank: p for p in ledger.placements(run.id)}
    attempts = ledger.attempts(run.id)
    last = attempts[-1] if attempts else None
    where = placements.get(last.rank) if last else placements.get(0)
    out: dict[str, Any] = {
        "run_id": run.id, "name": run.name, "state": state_label(run), "backend": run.backend,
        "created_at": run.created_at.isoformat(), "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "placement": where.label if where else None,
        "price": (f"${where.usd_per_hour:,.2f}/h ({where.provider}, {where.price_source}, as of "
                  f"{where.price_as_of})") if where else None,
        # spent: the exact amount billing charges (whole micro-USD; people see it rounded once, half up, to the
        # cent: money.format_amount); expected: the plan's estimate to the cent, half up.
        "expected_total_usd": None if run.expected_total_usd is None else float(cents(run.expected_total_usd)),
        "spent_usd": ledger.spent_usd(run.id, run.ended_at or moment), "currency": run.currency,
        "budget_total_usd": run.budget_total_usd, "attempts": len(attempts), "tags": run.tags,
        "message": run.message,
    }
    if detail:
        out["placements"] = [{"rank": p.rank + 1, "placement": p.label, "usd_per_hour": p.usd_per_hour,
                              "expected_total_usd": float(cents(p.expected_total_usd)), "source": p.price_source,
                              "as_of": p.price_as_of} for p in placements.values()]
        out["attempts_detail"] = [{"n": a.n, "placement": placements[a.rank].label, "cluster": a.cluster_name,
                                   "started_at": a.started_at.isoformat(),
                                   "ended_at": a.ended_at.isoformat() if a.ended_at else None,
                                   "outcome": a.outcome, "restarts": a.restarts, "message": a.message}
                                  for a in attempts]
        out["events"] = [{"at": e.at.isoformat(), "attempt": e.attempt, "kind": e.kind, "message": e.message}
                         for e in ledger.events(run.id)]
    return out


def ledger_warnings(ledger: Ledger) -> list[str]:
    """One `warning:` line per ledger row the readers skipped because it does not parse (see Ledger.problems)."""
    return [f"warning: {line}" for line in ledger.problems]


def recent_runs(ledger: Ledger, *, limit: int | None = None, since: datetime | None = None,
                tags: Mapping[str, str] | None = None, team: str | None = None) -> list[dict[str, Any]]:
    """Run summaries, newest first, filtered by creation time, tags and (on the server) team."""
    return [run_summary(ledger, r) for r in ledger.runs(since=since, tags=dict(tags or {}), limit=limit, team=team)]


def find_run(ledger: Ledger, ref: str, *, team: str | None = None) -> RunRow:
    """The run a user names: by id (exact, or a unique prefix of RUN_ID_MIN_PREFIX characters or more) first, else
    by its job name: the live run of that name when exactly one is live, else the newest run of that name.

    UsageError when several runs of that name are still live (the line lists their ids) or ``ref`` is blank;
    LedgerError when no run has that id or name.
    """
    from arbitrage.errors import LedgerError, UsageError

    try:
        found = ledger.run(ref)
        if team is None or found.team == team:
            return found
        by_id: Exception = LedgerError(f"no run {ref[:80]!r} (see `gpuarb history`)")
    except (LedgerError, UsageError) as exc:
        by_id = exc
    name = ref.strip()
    named = ledger.runs_named(name, team=team) if name else []
    if not named:
        if isinstance(by_id, UsageError) and name:  # not shaped like an id: it named neither
            raise LedgerError(f"no run with id or name {ref[:80]!r} in {ledger.path} (see `gpuarb history`)") from None
        if isinstance(by_id, LedgerError):
            raise LedgerError(f"{by_id}; no run is named {name[:80]!r} either") from None
        raise by_id
    live = [r for r in named if not r.terminal]
    if len(live) > 1:
        shown = ", ".join(r.id for r in live[:10]) + (f" and {len(live) - 10} more" if len(live) > 10 else "")
        raise UsageError(f"run name {name!r} matches {len(live)} runs that are still live ({shown}); "
                         "give one of these ids")
    return live[0] if live else named[0]


def _open_attempt_handle(ledger: Ledger, run_id: str) -> tuple[int, Any] | None:
    """The latest launched attempt's number and Handle (None: nothing launched); LedgerError for a handle that does
    not hold what a launch records (its backend and cluster name)."""
    from arbitrage.errors import LedgerError
    from arbitrage.launch.backend import Handle

    for attempt in reversed(ledger.attempts(run_id)):
        if attempt.handle is not None:
            try:
                return attempt.n, Handle.from_dict(attempt.handle)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise LedgerError(f"{ledger.path}: run {run_id} attempt {attempt.n}: its launch handle does not "
                                  f"parse ({type(exc).__name__}: {exc})") from None
    return None


@dataclass(frozen=True)
class RunLogs:
    """`gpuarb logs`: whose output it is (run, attempt, cluster, backend), the log of a detached run's supervisor
    (<data dir>/runs/<id>.log, when there is one) and the job's lines (read as they are iterated; with ``follow``,
    until the job ends)."""

    run_id: str
    name: str
    attempt: int
    cluster: str
    backend: str
    supervisor_log: Path | None
    lines: Iterator[str]

    def record(self, lines: Sequence[str]) -> dict[str, Any]:
        """The JSON document of `logs --format json`, with ``lines`` (read from ``self.lines``)."""
        return {"run_id": self.run_id, "name": self.name, "attempt": self.attempt, "cluster": self.cluster,
                "backend": self.backend,
                "supervisor_log": None if self.supervisor_log is None else str(self.supervisor_log),
                "lines": list(lines)}


def run_logs(run_id: str, *, follow: bool = False, ray_address: str | None = None,
             team: str | None = None) -> RunLogs:
    """`gpuarb logs`: the latest launched attempt's output (``run_id``: an id or a run name; of ``team``, on the
    server)."""
    ledger = open_ledger()
    run = find_run(ledger, run_id, team=team)
    found = _open_attempt_handle(ledger, run.id)
    if found is None:
        raise GpuarbError(f"run {run.id} has not launched anything yet (state {run.state})")
    n, handle = found
    log = paths.run_logs_dir() / f"{run.id}.log"
    lines = iter(make_backend(handle.backend, ray_address).logs(handle, follow=follow))
    return RunLogs(run.id, run.name, n, handle.cluster_name, handle.backend, log if log.exists() else None,
                   (line.rstrip("\n") for line in lines))


@dataclass(frozen=True)
class StopResult:
    """`gpuarb down`: the run's state afterwards and the cluster torn down (None: nothing was launched)."""

    run_id: str
    state: str
    torn_down: str | None


def stop_run(run_id: str, *, ray_address: str | None = None, now: Callable[[], datetime] = utcnow,
             team: str | None = None, by: str = "gpuarb down") -> StopResult:
    """Stop a run and tear its cluster down; a live run is marked cancelled, a finished one keeps its state.
    ``run_id`` is an id or a run name (see ``find_run``; of ``team``, on the server)."""
    from arbitrage.runstate import EventKind, RunState

    ledger = open_ledger()
    run = find_run(ledger, run_id, team=team)
    found = _open_attempt_handle(ledger, run.id)
    message = f"cancelled by {by}"
    if found is not None:
        n, handle = found
        backend = make_backend(handle.backend, ray_address)
        backend.cancel(handle)
        backend.teardown(handle)
    open_attempts = [a for a in ledger.attempts(run.id) if a.ended_at is None]
    for attempt in open_attempts:
        ledger.end_attempt(run.id, attempt.n, "cancelled", now(), message, kind=EventKind.CANCELLED,
                           run_state=None if run.terminal else RunState.CANCELLED)
    if not run.terminal and not open_attempts:
        ledger.record(run.id, EventKind.CANCELLED, now(), message, state=RunState.CANCELLED)
    cluster = None
    if found is not None:
        cluster = handle.cluster_name
        ledger.record(run.id, EventKind.TORN_DOWN, now(), f"{cluster} torn down by {by}", attempt=n)
    return StopResult(run.id, ledger.run(run.id).state, cluster)


@dataclass(frozen=True)
class Zombie:
    """A cluster gpuarb launched that should go, and why."""

    backend: Backend
    cluster: ClusterInfo
    reason: str
    run: RunRow | None
    attempt: AttemptRow | None

    def record(self) -> dict[str, Any]:
        return {"cluster": self.cluster.name, "backend": self.backend.name, "status": self.cluster.status,
                "run_id": self.run.id if self.run else None, "reason": self.reason}


def find_zombies(backends: Sequence[str], *, idle_minutes: float, explicit: bool,
                 say: Say = _quiet) -> list[Zombie]:
    """Clusters whose run is over, unsupervised, unknown to the ledger, or idle longer than ``idle_minutes``.

    Backends that cannot be used here are skipped with an info notice, unless they were asked for by name. A
    backend that is not running (``Backend.not_running``: SkyPilot's local API server is down) is not started
    unless asked for by name; it is skipped with a notice, a warning when the ledger has live runs on it. The
    last notice says which backends were checked.
    """
    from arbitrage.errors import BackendUnavailable

    ledger = open_ledger()
    owners: dict[str, tuple[RunRow, AttemptRow]] = {}
    for run in ledger.runs():
        for attempt in ledger.attempts(run.id):
            owners[attempt.cluster_name] = (run, attempt)
    zombies: list[Zombie] = []
    checked: list[str] = []
    for name in backends:
        try:
            impl = make_backend(name)
            idle = None if explicit else impl.not_running()
        except (BackendUnavailable, ImportError) as exc:
            if explicit:
                raise
            say(f"info: {name}: skipped ({exc})")
            continue
        if idle is not None:
            live = sorted({run.id for run, _ in owners.values() if run.backend == name and not run.terminal})
            level = "warning" if live else "info"
            extra = f"; live runs on it: {', '.join(live[:5])}" if live else ""
            say(f"{level}: {name}: not checked: {idle}{extra}")
            continue
        checked.append(name)
        for cluster in impl.clusters():
            owner = owners.get(cluster.name)
            reason = _zombie_reason(cluster, owner, idle_minutes)
            if reason:
                zombies.append(Zombie(impl, cluster, reason, *(owner or (None, None))))
    say(f"info: checked {', '.join(checked) if checked else 'no backend'}")
    return zombies


def _zombie_reason(cluster: ClusterInfo, owner: tuple[RunRow, AttemptRow] | None, idle_minutes: float) -> str | None:
    """Why a gpuarb cluster should go, or None while its run is alive and it is busy."""
    if owner is None:
        return "no run in the ledger launched it"
    run, attempt = owner
    if run.terminal:
        return f"its run {run.id} is {run.state}"
    if attempt.ended_at is not None:
        return f"its attempt {attempt.n} of run {run.id} ended ({attempt.outcome})"
    if supervisor_alive(run) is False:
        return f"run {run.id} has no live supervisor (gpuarb was killed or detached)"
    if cluster.idle_minutes is not None and cluster.idle_minutes > idle_minutes:
        return f"idle for {cluster.idle_minutes:.0f} min (> {idle_minutes:g})"
    return None


def reap(zombie: Zombie, *, now: Callable[[], datetime] = utcnow) -> None:
    """Tear one zombie down; its run, if still live, ends interrupted, and the ledger says so."""
    from arbitrage.launch.backend import Handle
    from arbitrage.runstate import EventKind, RunState

    impl, cluster = zombie.backend, zombie.cluster
    impl.teardown(Handle(backend=impl.name, cluster_name=cluster.name))
    if zombie.run is None or zombie.attempt is None:
        return
    ledger = open_ledger()
    run, n = zombie.run, zombie.attempt.n
    if not ledger.run(run.id).terminal:
        ledger.end_attempt(run.id, n, "interrupted", now(), f"reaped: {zombie.reason}",
                           kind=EventKind.INTERRUPTED, run_state=RunState.INTERRUPTED)
    ledger.record(run.id, EventKind.TORN_DOWN, now(), f"{cluster.name} torn down by gpuarb reap ({zombie.reason})",
                  attempt=n)


# ---------------------------------------------------------------------------------------------------------------
# Spend and the FOCUS export
# ---------------------------------------------------------------------------------------------------------------


def ledger_records(ledger: Ledger, runs: Sequence[RunRow]) -> list[RunLedger]:
    """Each run with its placements and attempts, read through the ledger's public queries."""
    from arbitrage.report.spend import RunLedger

    return [RunLedger(run=r, placements=tuple(ledger.placements(r.id)), attempts=tuple(ledger.attempts(r.id)))
            for r in runs]


def data_homes(records: Sequence[RunLedger], facts: Facts | None = None,
               say: Say = _quiet) -> dict[str, DataHome]:
    """Where each run with egress keeps its input data, from the job spec the ledger recorded (unreadable: said)."""
    from arbitrage.report.focus import DataHome

    needed = [r.run for r in records if r.run.egress_in_usd > 0 or r.run.egress_out_usd > 0]
    if not needed:
        return {}
    from arbitrage.specfile import parse_jobspec_text

    known = facts or load_facts()
    homes: dict[str, DataHome] = {}
    for run in needed:
        try:
            spec = parse_jobspec_text(run.spec_text, known, run.spec_path)
        except (GpuarbError, ValueError):
            say(f"warning: run {run.id}: its recorded job spec no longer parses; egress rows name the placement's "
                "cloud and no GB")
            continue
        if spec.data is not None:
            homes[run.id] = DataHome(provider=spec.data.provider, region=spec.data.region,
                                     size_gb=spec.data.size_gb, outputs_gb=spec.outputs_gb, uri=spec.data.uri)
    return homes


@dataclass(frozen=True)
class Spend:
    """`report spend`: the grouped report, the ledger it was read from, and whether the ledger has any run."""

    report: Any  # arbitrage.report.spend.SpendReport
    ledger_path: Path | str
    runs: int
    ledger_empty: bool


def spend(by: str, *, since: datetime | None = None, tags: Mapping[str, str] | None = None,
          now: datetime | None = None, say: Say = _quiet, rise_percent: float = 10.0,
          team: str | None = None) -> Spend:
    """Showback from the run ledger: runs grouped by a tag, provider, name or state, actual vs expected USD.

    Ledger rows that do not parse are left out and said as warnings (``ledger_warnings``).
    """
    from arbitrage.errors import UsageError
    from arbitrage.report import spend as S

    try:
        S.parse_group_by(by)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    moment = now or utcnow()
    ledger = open_ledger()
    runs = ledger.runs(since=since, tags=dict(tags or {}), team=team)
    empty = not runs and not ledger.runs(limit=1, team=team)
    report = S.spend_report(ledger_records(ledger, runs), by, moment, since, rise_percent)
    for line in ledger_warnings(ledger):
        say(line)
    return Spend(report, ledger.path, len(runs), empty)


def billing_accounts(values: Sequence[str]) -> dict[str, str]:
    """--billing-account PROVIDER=ID (repeatable) or a bare ID for every provider."""
    out: dict[str, str] = {}
    for value in values:
        provider, sep, account = value.partition("=")
        if not sep:
            provider, account = "*", value
        if not provider.strip() or not account.strip():
            raise UsageError(f"--billing-account: expected PROVIDER=ID or ID, got {value!r}")
        out[provider.strip().lower()] = account.strip()
    return out


@dataclass(frozen=True)
class FocusExport:
    """FOCUS cost-and-usage rows from the ledger at ``ledger_path``."""

    rows: list[dict[str, object]]
    ledger_path: Path | str


def focus_export(*, since: datetime | None = None, tags: Mapping[str, str] | None = None, granularity: str = "day",
                 billing_accounts: Mapping[str, str] | None = None, now: datetime | None = None,
                 say: Say = _quiet, team: str | None = None) -> FocusExport:
    """The run ledger as FOCUS rows: compute per attempt and charge period, plus egress."""
    from arbitrage.report import focus as F

    moment = now or utcnow()
    ledger = open_ledger()
    records = ledger_records(ledger, ledger.runs(tags=dict(tags or {}), team=team))
    rows = F.focus_rows(records, moment, since=since, granularity=granularity,
                        data_homes=data_homes(records, say=say), billing_accounts=dict(billing_accounts or {}))
    for line in ledger_warnings(ledger):
        say(line)
    return FocusExport(list(rows), ledger.path)


# ---------------------------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceReportOutcome:
    """`report prices`: the report and the offers it was built from."""

    report: Any  # arbitrage.report.prices.PriceReport
    offers: list[Offer]


def price_report(facts: Facts, *, gpus: Sequence[str] = (), count: int | None = None,
                 providers: Sequence[str] = (), regions: Sequence[str] = (), reference: str = "H100",
                 workload: str = "training", source: Source | None = None, say: Say = _quiet,
                 now: datetime | None = None, unit_model: Any = None, strict: bool = False) -> PriceReportOutcome:
    """Per GPU model, each provider's cheapest offers and effective price per unit of work, each with its price's
    age at ``now``; names canonical. With ``unit_model`` (an arbitrage.units.ModelSpec) also USD per million tokens
    of that model per GPU model. ``strict``: see `load_offers`. Nothing matching is NothingFeasible saying which
    filter removed the last offer (`explain_empty`)."""
    from arbitrage.catalog import OfferQuery, filter_offers
    from arbitrage.report.prices import build_price_report

    moment = now or utcnow()
    query = OfferQuery(gpus=tuple(gpus), count=count, providers=tuple(providers), regions=tuple(regions))
    offers = load_offers(facts, source, query.providers, say=say, now=moment, strict=strict)
    matching = filter_offers(offers, query, facts)
    if not matching:
        raise NothingFeasible(explain_empty(offers, query, facts).reason)
    report = build_price_report(matching, facts, reference, workload, now=moment, unit_model=unit_model)
    if not report.models:
        raise NothingFeasible(f"no offer matches these filters: {len(matching):,} matched, none with a price")
    return PriceReportOutcome(report, list(matching))


def plan_report(path: str, facts: Facts, *, top: int = 5, source: Source | None = None,
                objective: Objective = Objective.cost, now: datetime | None = None,
                say: Say = _quiet, overrides: SpecOverrides | None = None,
                strict: bool = False) -> tuple[Any, dict[str, Any]]:
    """`report plan`: the plan report (breakdown, rejections, savings vs naive) and the offers' provenance;
    ``strict``: see `load_offers`."""
    from arbitrage.report.plan import build_plan_report

    moment = now or utcnow()
    strict_source(source, strict)
    found = plan_spec(read_spec(path, facts, moment, overrides), facts, source=source, objective=objective,
                      now=moment, say=say, strict=strict)  # planned exactly as `gpuarb plan` plans it
    return build_plan_report(found.spec, found.offers, facts, moment, objective.value, top, found.catalog,
                             found.plan), found.catalog


OWNERSHIP_FLAGS = {"purchase_usd": "--purchase-usd", "power_w": "--power-w", "usd_per_kwh": "--usd-per-kwh",
                   "pue": "--pue", "hosting_usd_per_month": "--hosting-usd-per-month", "years": "--years",
                   "utilization": "--utilization"}


def breakeven(facts: Facts, gpu: str, given: Mapping[str, float | None], *, spot: bool = False,
              rental_usd_per_gpu_hour: float | None = None, providers: Sequence[str] = (),
              source: Source | None = None, say: Say = _quiet, strict: bool = False) -> Any:
    """Rent vs buy one GPU (canonical name): every assumption from ``given`` or ownership.toml, with its source.

    ``given`` holds the OWNERSHIP_FLAGS keys (None: take the default); the rental is the catalog's cheapest
    offer of the GPU (from ``providers`` when given) unless ``rental_usd_per_gpu_hour`` is set; ``strict``: see
    `load_offers`.
    """
    from arbitrage.errors import UsageError
    from arbitrage.report.breakeven import Ownership, Rental, cheapest_rental, compare, validate
    from arbitrage.report.ownership import load_ownership

    strict_source(source, strict)
    defaults = load_ownership()
    values: dict[str, float] = {}
    sources: dict[str, str] = {"gpu": "--gpu"}
    per_gpu = defaults.gpus.get(gpu, {})
    for key, flag in OWNERSHIP_FLAGS.items():
        value = given.get(key)
        if value is not None:
            values[key], sources[key] = value, f"{flag} (command line)"
            continue
        default = per_gpu.get(key) or defaults.defaults.get(key)
        if default is None:
            raise UsageError(f"{flag}: no default for {gpu} in {defaults.label}; pass --purchase-usd and --power-w")
        values[key], sources[key] = default.value, f"{defaults.label}: {default.source}"
    own = Ownership(gpu=gpu, sources=sources, **values)
    validate(own, rental_usd_per_gpu_hour if rental_usd_per_gpu_hour is not None else 1.0,
             "--rental-usd-per-gpu-hour")  # before any fetch
    if rental_usd_per_gpu_hour is not None:
        return compare(own, Rental(rental_usd_per_gpu_hour, spot))
    offers = load_offers(facts, source, providers, say=say, strict=strict)
    offers = [o for o in offers if not providers or matches_any(o.provider, providers)]
    found = cheapest_rental(offers, gpu, spot)
    if found is None:
        option = "spot" if spot else "on-demand"
        raise NothingFeasible(f"no {option} rental offer of {gpu} in the catalog"
                              + (f" from {', '.join(providers)}" if providers else "")
                              + "; pass --rental-usd-per-gpu-hour")
    return compare(own, found)


# ---------------------------------------------------------------------------------------------------------------
# The team server's use cases: the server (arbitrage/server) calls these and nothing else below it
# ---------------------------------------------------------------------------------------------------------------

BUDGET_THRESHOLDS = (50, 80, 100)  # percent of a monthly cap at which a team's webhook hears of it


def open_accounts() -> Accounts:
    """The server's account store, in the ledger's database."""
    from arbitrage.accounts import Accounts

    return Accounts.open()


def authenticate(token: str | None, now: datetime | None = None) -> Principal:
    """Who a request's bearer token is (AuthError, the same message whatever was wrong with it)."""
    with open_accounts() as accounts:
        return accounts.authenticate(token, now or utcnow())


def issue_token(team: str, name: str, role: str, *, expires_days: float | None = None) -> IssuedToken:
    """`gpuarb server token create`: a new token for the team's account (created with the team if new)."""
    from datetime import timedelta

    if expires_days is not None and not 0 < expires_days <= 3650:
        raise UsageError(f"--expires-days: must be more than 0 and at most 3650, got {expires_days:g}")
    with open_accounts() as accounts:
        return accounts.issue_token(team, name, role, utcnow(),
                                    None if expires_days is None else timedelta(days=expires_days))


def month_window(now: datetime) -> tuple[str, datetime, datetime]:
    """The calendar month (UTC) ``now`` falls in: its label YYYY-MM, its first instant and the next month's."""
    start = now.astimezone(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
    return f"{start:%Y-%m}", start, following


@dataclass(frozen=True)
class BudgetBurn:
    """A team's (or a team tag's) monthly cap and what its runs have cost this month so far, by day."""

    team: str
    tag: tuple[str, str] | None
    month: str
    cap_usd: float
    spent_usd: float
    days: tuple[tuple[str, float], ...]  # (YYYY-MM-DD, cumulative USD at the end of that day, or now)
    days_in_month: int
    live_runs: tuple[str, ...]

    @property
    def percent(self) -> float:
        return 100.0 * self.spent_usd / self.cap_usd if self.cap_usd > 0 else 0.0

    @property
    def label(self) -> str:
        return f"team {self.team}" + (f", tag {self.tag[0]}={self.tag[1]}" if self.tag else "")

    def record(self) -> dict[str, Any]:
        return {"team": self.team, "tag": f"{self.tag[0]}={self.tag[1]}" if self.tag else None, "month": self.month,
                "cap_usd": self.cap_usd, "spent_usd": self.spent_usd, "percent": round(self.percent, 2),
                "days": [{"day": d, "spent_usd": v} for d, v in self.days], "days_in_month": self.days_in_month,
                "live_runs": list(self.live_runs)}


def budget_burn(ledger: Ledger, team: str, tag: tuple[str, str] | None, cap_usd: float,
                now: datetime) -> BudgetBurn:
    """What the team's runs (with ``tag``, when given) cost in ``now``'s month so far, day by day (see
    ``_window_spend``)."""
    from datetime import timedelta

    from arbitrage.money import usd

    month, start, following = month_window(now)
    priced = _priced_runs(ledger, team, dict([tag]) if tag else None, start)
    days: list[tuple[str, float]] = []
    day = start
    while day < following and day <= now:
        days.append((f"{day:%Y-%m-%d}", usd(_window_spend(priced, start, min(day + timedelta(days=1), now),
                                                          now)[0])))
        day += timedelta(days=1)
    spent = days[-1][1] if days else 0.0
    live = tuple(run.id for run, _, _ in priced if not run.terminal)
    return BudgetBurn(team, tag, month, cap_usd, spent, tuple(days), (following - start).days, live)


PricedRun = tuple["RunRow", dict[int, Any], list[Any]]  # a run, its placements by rank, its attempts


def _priced_runs(ledger: Ledger, team: str, tags: Mapping[str, str] | None, since: datetime) -> list[PricedRun]:
    """The team's runs (with ``tags``) that may have cost something since ``since`` (live, or ended then or later:
    selected in the database, not among all the team ever ran), with what bills them."""
    return [(r, {p.rank: p for p in ledger.placements(r.id)}, ledger.attempts(r.id))
            for r in ledger.runs(team=team, tags=tags, live_since=since)]


def _window_spend(priced: Sequence[PricedRun], start: datetime, end: datetime, now: datetime) -> tuple[int, int]:
    """What runs cost in [start, end), in micro-USD, and how many cost something or were created then: compute
    clipped to the window (billing.spent_between_micro) plus the egress of the runs created in it."""
    from arbitrage.billing import spent_between_micro
    from arbitrage.money import micro

    total = count = 0
    for run, placements, attempts in priced:
        created_here = start <= run.created_at < end
        part = spent_between_micro(attempts, placements, start, end, now)
        if created_here:
            part += micro(run.egress_in_usd) + micro(run.egress_out_usd)
        count += bool(part or created_here)
        total += part
    return total, count


def team_budgets(team: str | None, now: datetime | None = None) -> list[BudgetBurn]:
    """Every monthly cap (of ``team``, or of all teams) with this month's burn."""
    moment = now or utcnow()
    ledger = open_ledger()
    with open_accounts() as accounts:
        budgets = accounts.budgets(team)
    return [budget_burn(ledger, b.team, b.tag, b.cap_usd, moment) for b in budgets]


def set_team_budget(team: str, monthly_usd: float, tag: str | None = None) -> BudgetBurn:
    """`gpuarb server budget set`: a team's monthly cap, or its cap for runs tagged KEY=VALUE."""
    from arbitrage.params import parse_tags

    pair = None
    if tag:
        [(key, value)] = parse_tags([tag]).items()
        pair = (key, value)
    with open_accounts() as accounts:
        accounts.set_budget(team, monthly_usd, utcnow(), tag=pair)
        accounts.ensure_team(team, utcnow())
    return budget_burn(open_ledger(), team, pair, float(monthly_usd), utcnow())


def check_team_budgets(team: str, tags: Mapping[str, str], expected_usd: float, now: datetime) -> None:
    """At submission: OverBudget when this month's spend plus the plan's expected cost would pass a cap that
    covers the run (the team's own, or one of a tag the run carries)."""
    from arbitrage.money import format_amount

    ledger = open_ledger()
    with open_accounts() as accounts:
        budgets = accounts.budgets(team)
    for b in budgets:
        if b.tag is not None and tags.get(b.tag[0]) != b.tag[1]:
            continue
        burn = budget_burn(ledger, team, b.tag, b.cap_usd, now)
        if burn.spent_usd + expected_usd > b.cap_usd:
            raise OverBudget(f"{burn.label}: {format_amount(burn.spent_usd)} spent in {burn.month} + "
                             f"{format_amount(expected_usd)} expected for this run is over the monthly cap of "
                             f"{format_amount(b.cap_usd)}; nothing launched")


@dataclass(frozen=True)
class BudgetAction:
    """What the budget breaker did for one cap: alerts claimed (and how their delivery went), runs stopped."""

    burn: BudgetBurn
    alerts: tuple[tuple[int, str], ...]  # (threshold, '' delivered or why not)
    stopped: tuple[str, ...]


def enforce_team_budgets(now: datetime | None = None, post: Callable[[str, dict[str, Any]], None] | None = None,
                         say: Say = _quiet) -> list[BudgetAction]:
    """The server's budget breaker: for every cap, alert the team's webhook once per threshold per month
    (claimed in the database, so two replicas send each alert once), and at 100% stop the team's live runs
    under it (their supervisors tear the clusters down)."""
    from arbitrage.money import format_amount, micro
    from arbitrage.runstate import EventKind, RunState

    moment = now or utcnow()
    send = post or post_webhook
    ledger = open_ledger()
    actions: list[BudgetAction] = []
    with open_accounts() as accounts:
        for b in accounts.budgets():
            burn = budget_burn(ledger, b.team, b.tag, b.cap_usd, moment)
            team = accounts.team(b.team)
            alerts: list[tuple[int, str]] = []
            for threshold in BUDGET_THRESHOLDS:
                if burn.percent < threshold or not accounts.claim_alert(
                        b.team, b.tag, burn.month, threshold, micro(burn.spent_usd), moment):
                    continue
                text = (f"gpuarb: {burn.label} has spent {format_amount(burn.spent_usd)} of its "
                        f"{format_amount(burn.cap_usd)} cap for {burn.month} ({burn.percent:.0f}%)"
                        + ("; its live runs are being stopped" if threshold >= 100 and burn.live_runs else ""))
                outcome = ""
                if team is None or not team.webhook_url:
                    outcome = "no webhook configured"
                else:
                    try:
                        send(team.webhook_url, {"text": text})
                    except Exception as exc:  # a webhook that fails must not stop the breaker
                        outcome = f"webhook post failed: {type(exc).__name__}"
                accounts.alert_delivered(b.team, b.tag, burn.month, threshold, outcome)
                alerts.append((threshold, outcome))
                say(text)
            stopped: list[str] = []
            if burn.percent >= 100:
                for run_id in burn.live_runs:
                    message = (f"team budget reached: {burn.label} spent {format_amount(burn.spent_usd)} of "
                               f"{format_amount(burn.cap_usd)} in {burn.month}")
                    if not ledger.run(run_id).terminal:
                        ledger.record(run_id, EventKind.BUDGET_STOPPED, moment, message,
                                      state=RunState.BUDGET_STOPPED)
                        stopped.append(run_id)
            actions.append(BudgetAction(burn, tuple(alerts), tuple(stopped)))
    return actions


def post_webhook(url: str, payload: dict[str, Any]) -> None:
    """POST Slack-compatible JSON to a team's webhook (5 s timeout); raises on a failure or a non-2xx answer."""
    import httpx

    response = httpx.post(url, json=payload, timeout=5.0)
    response.raise_for_status()


@dataclass(frozen=True)
class Submitted:
    """A run submitted to the server: its summary and whether this call made it (False: the key's earlier run)."""

    run: dict[str, Any]
    created: bool


def submit_for_team(principal: Principal, spec_text: str, spec_name: str, facts: Facts, *, backend: str,
                    idempotency_key: str | None = None, objective: Objective = Objective.cost,
                    source: Source | None = None, overrides: SpecOverrides | None = None,
                    max_failovers: int = 3) -> Submitted:
    """The server's `gpuarb run`: plan the job file's text, check the team's caps, record the run for the
    server's workers to supervise; a key the team used before returns that run and launches nothing."""
    from arbitrage.ledger import KeyTaken
    from arbitrage.specfile import redact_secrets

    ledger = open_ledger()
    if idempotency_key is not None:
        _check_key(idempotency_key)
        earlier = ledger.run_by_key(principal.team, idempotency_key)
        if earlier is not None:
            return Submitted(run_summary(ledger, earlier), created=False)
    sealed = None
    if redact_secrets(spec_text) != spec_text:  # kept encrypted with the server's key, for every relaunch
        from arbitrage.store.sealed import seal

        sealed = seal(spec_text)
    prepared = prepare_run(spec_name, facts, backend=backend, source=source, objective=objective,
                           max_failovers=max_failovers, check_backend=False, overrides=overrides,
                           spec_text=spec_text)
    check_team_budgets(principal.team, prepared.spec.tags, prepared.best.total_usd, prepared.now)
    try:
        run_id = record_run(prepared, backend, ledger, team=principal.team, submitted_by=principal.name,
                            idempotency_key=idempotency_key, supervised_here=False, spec_sealed=sealed)
    except KeyTaken as taken:  # the same key submitted at the same moment by a retry
        return Submitted(run_summary(ledger, ledger.run(taken.run_id)), created=False)
    return Submitted(run_summary(ledger, ledger.run(run_id)), created=True)


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= 200 or any(ord(c) < 33 or ord(c) > 126 for c in key):
        raise UsageError("Idempotency-Key: 1-200 printable characters without spaces (e.g. the CI run id)")


def supervise_claimed(run_id: str, token: str, facts: Facts, options: RunOptions, *,
                      backend: Backend | None = None, say: Say = _quiet) -> str:
    """A server worker's supervision of a run it claimed (Ledger.claim_supervision): the run's lifecycle from
    where it is, heartbeating with the claim's token; returns the run's state."""
    from dataclasses import replace

    from arbitrage.runstate import EventKind, RunState
    from arbitrage.specfile import parse_jobspec_text

    ledger = open_ledger()
    run = ledger.run(run_id)
    try:
        text = run.spec_text
        if run.spec_sealed is not None:  # the job file with its secrets
            from arbitrage.store.sealed import unseal

            text = unseal(run.spec_sealed)
        spec = parse_jobspec_text(text, facts, run.spec_path)
        chosen = backend or make_backend(run.backend)
    except GpuarbError as exc:  # it would fail the same way on every replica: end it, saying why
        ledger.record(run_id, EventKind.FAILED, utcnow(), f"the server cannot supervise this run: {exc}",
                      state=RunState.FAILED)
        return RunState.FAILED
    runner = make_runner(chosen, ledger, replace(options, supervisor_token=token), say)
    return runner.supervise(run_id, spec)


def plan_text(spec_text: str, spec_name: str, facts: Facts, *, objective: Objective = Objective.cost,
              source: Source | None = None, top: int = 5, fmt: str = "json", wide: bool = False,
              strict: bool = False) -> tuple[str, GpuarbError | None]:
    """The server's `gpuarb plan` of a job file's text: what the CLI prints (``fmt`` table or json) and the error
    it ends with."""
    from arbitrage import render
    from arbitrage.specfile import parse_jobspec_text

    moment = utcnow()
    strict_source(source, strict)
    spec = parse_jobspec_text(spec_text, facts, where=spec_name, now=moment)
    outcome = plan_spec(spec, facts, source=source, objective=objective, now=moment, strict=strict)
    verdict = plan_command_verdict(outcome.plan)
    if fmt == "json":
        return render.plan_json(outcome.plan, top, outcome.now, outcome.catalog) + "\n", verdict
    return render.plan_text(outcome.plan, top, outcome.catalog, wide) + "\n", verdict


def price_list_record(facts: Facts, *, gpus: Sequence[str] = (), count: int | None = None,
                      spot: bool | None = None, limit: int = 200) -> dict[str, Any]:
    """The document `gpuarb prices --format json` prints, for the server (its price page and API)."""
    import json

    text, _ = price_output(facts, gpus=gpus, count=count, spot=spot, limit=limit, fmt="json")
    document: dict[str, Any] = json.loads(text)
    return document


def price_output(facts: Facts, *, gpus: Sequence[str] = (), count: int | None = None, spot: bool | None = None,
                 providers: Sequence[str] = (), regions: Sequence[str] = (), source: Source | None = None,
                 strict: bool = False, limit: int | None = None, quarantined: bool = False,
                 fmt: str = "table") -> tuple[str, GpuarbError | None]:
    """The server's `gpuarb prices`: what the CLI prints for the query, and the error it ends with."""
    from arbitrage import render
    from arbitrage.params import canonical_gpus, check_providers

    found = find_prices(facts, gpus=canonical_gpus(list(gpus), facts), count=count, spot=spot,
                        providers=check_providers(list(providers)), regions=list(regions), source=source,
                        strict=strict, quarantined=quarantined)
    return render.prices_output(found, fmt, limit)


def team_monthly_spend(team: str, months: int = 6, now: datetime | None = None) -> list[dict[str, Any]]:
    """A team's spend per calendar month (UTC), the last ``months`` months, oldest first (see ``_window_spend``)."""
    from arbitrage.money import usd

    moment = now or utcnow()
    windows = []
    label, start, following = month_window(moment)
    for _ in range(months):
        windows.append((label, start, following))
        previous = start.replace(year=start.year - (start.month == 1), month=(start.month - 2) % 12 + 1)
        label, start, following = f"{previous:%Y-%m}", previous, start
    ledger = open_ledger()
    priced = _priced_runs(ledger, team, None, windows[-1][1])
    out = []
    for label, start, following in reversed(windows):
        total, count = _window_spend(priced, start, following, moment)
        out.append({"team": team, "month": label, "spent_usd": usd(total), "runs": count})
    return out


def record_audit(**entry: Any) -> None:
    """One line of the server's audit log (arbitrage.accounts.Accounts.record_audit)."""
    with open_accounts() as accounts:
        accounts.record_audit(utcnow(), **entry)


def audit_log(team: str, limit: int = 100) -> list[dict[str, Any]]:
    """The team's audit log, newest first, as plain data."""
    from dataclasses import asdict

    with open_accounts() as accounts:
        return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(e).items()}
                for e in accounts.audit(team, limit)]


def team_server() -> Any:
    """The team server the CLI talks to (``GPUARB_SERVER`` and ``GPUARB_TOKEN``: an ``arbitrage.remote.Client``),
    or None when it works on its own ledger."""
    if not os.environ.get("GPUARB_SERVER", "").strip():
        return None
    from arbitrage.remote import Client

    return Client.from_env()


def remote_spec(job: str, overrides: SpecOverrides | None, facts: Facts) -> tuple[str, str]:
    """A job file as `gpuarb run` sends it to the server: its text (with the command line's overrides written in,
    and checked here first, so a bad file fails before any request) and the name it is known by."""
    from arbitrage.specfile import overridden_text, parse_jobspec_text, read_spec_text

    text = read_spec_text(job)
    parse_jobspec_text(text, facts, where=job, overrides=overrides)
    if overrides:
        text = overridden_text(text, overrides, job)
    return text, Path(job).name

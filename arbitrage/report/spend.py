"""Spend from the run ledger: showback/chargeback per team, model, version, provider or any tag, in USD.

Pure: ledger rows and the clock come in as arguments. Actual spend is what ``arbitrage.billing`` bills (each
attempt's hours from launch to end, or to ``now`` while it runs, x the recorded placement's USD per hour, plus the
egress charged to the run), expected spend is the plan's estimate recorded at submission; GPU-hours are attempt
hours x GPUs per node x nodes. Every run lands in exactly one group, so the groups add up to the total.

Unit economics: a run that reported its work through GPUARB_METRICS (the ledger's work_tokens) counts towards USD
per million tokens: the actual USD of the runs that reported tokens / their tokens. ``unit_costs`` lists it per model
and version (tags), versions of a model in the order they were first run, and flags a version whose unit cost rose
by more than ``rise_percent`` against the previous one.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from arbitrage.billing import attempt_cost_micro, attempt_hours
from arbitrage.ledger import AttemptRow, PlacementRow, RunRow
from arbitrage.money import exact_sum, format_amount, micro, usd
from arbitrage.plural import plural
from arbitrage.runstate import RunState

if TYPE_CHECKING:
    from arbitrage.texttable import TextTable

UNTAGGED = "(untagged)"
TOTAL = "(total)"
# Group keys that are not tags; anything else is a tag key (`tag:KEY` forces a tag, e.g. a tag named "provider").
BUILTIN_KEYS = ("provider", "name", "state")


@dataclass(frozen=True)
class RunLedger:
    """One run as the ledger holds it: the run row, its planned placements (best first) and its attempts."""

    run: RunRow
    placements: tuple[PlacementRow, ...]
    attempts: tuple[AttemptRow, ...]

    def placement(self, rank: int) -> PlacementRow:
        """The planned placement an attempt ran on."""
        for p in self.placements:
            if p.rank == rank:
                return p
        raise KeyError(f"run {self.run.id}: no placement of rank {rank}")

    @property
    def last_placement(self) -> PlacementRow | None:
        """Where the run last ran (its latest attempt), else the plan's best; None for a run with no placement."""
        if self.attempts:
            return self.placement(self.attempts[-1].rank)
        return self.placements[0] if self.placements else None


def price_label(p: PlacementRow) -> str:
    """Where a recorded price came from: provider, source and as-of date."""
    return f"{p.provider} {p.price_source} {p.price_as_of}"


@dataclass(frozen=True)
class RunSpend:
    """One run's actual and expected USD, hours and GPU-hours."""

    run_id: str
    name: str
    state: RunState
    provider: str | None
    tags: dict[str, str]
    active: bool
    hours: float
    gpu_hours: float
    compute_usd: float
    egress_usd: float
    expected_usd: float
    price_sources: tuple[str, ...]
    tokens: float | None = None  # work the job reported (GPUARB_METRICS); None: never reported
    tasks: float | None = None
    created_at: datetime | None = None

    @property
    def actual_usd(self) -> float:
        """Compute at the recorded price plus egress charged (added in micro-USD: exact)."""
        return usd(micro(self.compute_usd) + micro(self.egress_usd))


def run_spend(record: RunLedger, now: datetime) -> RunSpend:
    """One run's spend: every attempt's hours x its placement's USD per hour, plus egress; expected from the plan."""
    run = record.run
    hours = gpu_hours = 0.0
    compute_micro = 0
    sources = set()
    for attempt in record.attempts:
        p = record.placement(attempt.rank)
        h = attempt_hours(attempt, now)
        hours += h
        gpu_hours += h * p.gpus_per_node * p.nodes
        compute_micro += attempt_cost_micro(attempt, p, now)
        sources.add(price_label(p))
    where = record.last_placement
    return RunSpend(
        run_id=run.id, name=run.name, state=run.state, provider=where.provider if where else None,
        tags=dict(run.tags), active=not run.state.terminal, hours=hours, gpu_hours=gpu_hours,
        compute_usd=usd(compute_micro), egress_usd=usd(micro(run.egress_in_usd) + micro(run.egress_out_usd)),
        expected_usd=run.expected_total_usd or 0.0, price_sources=tuple(sorted(sources)),
        tokens=getattr(run, "work_tokens", None), tasks=getattr(run, "work_tasks", None), created_at=run.created_at)


def parse_group_by(by: str) -> tuple[str, str]:
    """``--by`` as (kind, key): ('builtin', 'provider'|'name'|'state') or ('tag', KEY); ValueError if empty."""
    text = by.strip()
    if text.startswith("tag:"):
        key = text[4:].strip()
        if not key:
            raise ValueError("--by tag: needs a tag key, e.g. tag:team")
        return "tag", key
    if not text:
        raise ValueError("--by needs provider, name, state or a tag key such as team, model, version")
    return ("builtin", text) if text in BUILTIN_KEYS else ("tag", text)


def group_of(spend: RunSpend, kind: str, key: str) -> str:
    """The group a run falls in; runs without the tag (or never placed) go to '(untagged)'."""
    if kind == "builtin":
        value = {"provider": spend.provider, "name": spend.name, "state": spend.state.value}[key]
    else:
        value = spend.tags.get(key)
    return value if value not in (None, "") else UNTAGGED


@dataclass(frozen=True)
class SpendGroup:
    """Totals of one group of runs, with unit economics (USD per run, per GPU-hour) and expected-vs-actual."""

    key: str
    runs: int
    active_runs: int
    hours: float
    gpu_hours: float
    compute_usd: float
    egress_usd: float
    expected_usd: float
    price_sources: tuple[str, ...]
    tokens: float = 0.0  # reported by the runs that reported any (GPUARB_METRICS)
    unit_usd: float = 0.0  # actual USD of those runs
    unit_runs: int = 0

    @property
    def actual_usd(self) -> float:
        """Compute plus egress, USD (added in micro-USD: exact)."""
        return usd(micro(self.compute_usd) + micro(self.egress_usd))

    @property
    def usd_per_million_tokens(self) -> float | None:
        """Actual USD per million tokens, over the runs that reported tokens; None when none did."""
        return self.unit_usd / self.tokens * 1e6 if self.tokens > 0 else None

    @property
    def variance_usd(self) -> float:
        """Actual minus expected, USD (positive: over the plan)."""
        return self.actual_usd - self.expected_usd

    @property
    def variance_pct(self) -> float | None:
        """Variance as a percentage of expected; None when nothing was expected."""
        return 100 * self.variance_usd / self.expected_usd if self.expected_usd > 0 else None

    @property
    def usd_per_run(self) -> float | None:
        """Actual USD per run."""
        return self.actual_usd / self.runs if self.runs else None

    @property
    def usd_per_gpu_hour(self) -> float | None:
        """All-in actual USD (compute + egress) per GPU-hour used; None before any GPU-hour."""
        return self.actual_usd / self.gpu_hours if self.gpu_hours > 0 else None


def _group(key: str, spends: Sequence[RunSpend]) -> SpendGroup:
    return SpendGroup(
        key=key, runs=len(spends), active_runs=sum(s.active for s in spends),
        hours=sum(s.hours for s in spends), gpu_hours=sum(s.gpu_hours for s in spends),
        compute_usd=exact_sum(s.compute_usd for s in spends), egress_usd=exact_sum(s.egress_usd for s in spends),
        expected_usd=exact_sum(s.expected_usd for s in spends),
        price_sources=tuple(sorted({src for s in spends for src in s.price_sources})),
        tokens=sum(s.tokens for s in spends if s.tokens), unit_usd=exact_sum(s.actual_usd for s in spends if s.tokens),
        unit_runs=sum(1 for s in spends if s.tokens))


# Default for ``unit_costs``: a version whose USD per million tokens rose more than this is flagged.
RISE_PERCENT = 10.0


@dataclass(frozen=True)
class UnitCost:
    """Actual USD per million tokens of one model version (tags model, version), against the version before it."""

    model: str
    version: str
    runs: int
    tokens: float
    actual_usd: float
    first_run: datetime | None
    change_pct: float | None  # vs the previous version of the same model (None for the first)
    previous: str | None
    rose: bool  # change_pct above the report's rise threshold

    @property
    def usd_per_million_tokens(self) -> float:
        """Actual USD / tokens x 1e6."""
        return self.actual_usd / self.tokens * 1e6


def unit_costs(spends: Iterable[RunSpend], rise_percent: float = RISE_PERCENT) -> tuple[UnitCost, ...]:
    """USD per million tokens per (model, version) over runs that reported tokens; versions in first-run order."""
    buckets: dict[tuple[str, str], list[RunSpend]] = {}
    for s in spends:
        if s.tokens:
            key = (s.tags.get("model") or UNTAGGED, s.tags.get("version") or UNTAGGED)
            buckets.setdefault(key, []).append(s)
    earliest = {k: min((s.created_at for s in v if s.created_at is not None), default=None)
                for k, v in buckets.items()}
    order = sorted(buckets, key=lambda k: (k[0], earliest[k] is None, earliest[k] or datetime.min, k[1]))
    out: list[UnitCost] = []
    for model, version in order:
        group = buckets[(model, version)]
        tokens, spent = sum(s.tokens or 0.0 for s in group), exact_sum(s.actual_usd for s in group)
        before = out[-1] if out and out[-1].model == model else None
        change = None
        if before is not None and before.usd_per_million_tokens > 0:
            change = 100 * (spent / tokens * 1e6 / before.usd_per_million_tokens - 1)
        out.append(UnitCost(model, version, len(group), tokens, spent, earliest[(model, version)], change,
                            before.version if before else None, change is not None and change > rise_percent))
    return tuple(out)


@dataclass(frozen=True)
class SpendReport:
    """Spend grouped by one key, biggest actual spend first (untagged last), plus the total over all groups."""

    by: str
    groups: tuple[SpendGroup, ...]
    total: SpendGroup
    runs: tuple[RunSpend, ...]
    as_of: datetime
    since: datetime | None
    currency: str = "USD"
    unit_costs: tuple[UnitCost, ...] = ()
    rise_percent: float = RISE_PERCENT


def spend_report(records: Iterable[RunLedger], by: str, now: datetime, since: datetime | None = None,
                 rise_percent: float = RISE_PERCENT) -> SpendReport:
    """Group runs by ``by`` (provider, name, state, a tag key, or tag:KEY) and total their spend at ``now``; with
    the unit cost per model version of the runs that reported tokens."""
    kind, key = parse_group_by(by)
    spends = [run_spend(r, now) for r in records]
    buckets: dict[str, list[RunSpend]] = {}
    for s in spends:
        buckets.setdefault(group_of(s, kind, key), []).append(s)
    groups = sorted((_group(k, v) for k, v in buckets.items()),
                    key=lambda g: (g.key == UNTAGGED, -g.actual_usd, g.key))
    label = f"tag:{key}" if kind == "tag" and key in BUILTIN_KEYS else key
    return SpendReport(by=label, groups=tuple(groups), total=_group(TOTAL, spends), runs=tuple(spends), as_of=now,
                       since=since, unit_costs=unit_costs(spends, rise_percent), rise_percent=rise_percent)


# -- renderers (formatting only) --------------------------------------------------------------------------------

BASIS = ("actual USD = each attempt's hours (launch to end, or to now while running) x the recorded placement's "
         "USD per hour, plus egress charged; expected USD = the plan's estimate recorded at submission; "
         "GPU-hours = attempt hours x GPUs per node x nodes; USD per GPU-hour is all-in (compute + egress); "
         "USD per million tokens = actual USD of the runs that reported tokens (GPUARB_METRICS) / their tokens")
FIELDS = ("group", "runs", "active_runs", "hours", "gpu_hours", "compute_usd", "egress_usd", "actual_usd",
          "expected_usd", "variance_usd", "variance_pct", "usd_per_run", "usd_per_gpu_hour", "tokens",
          "usd_per_million_tokens", "price_sources")


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def group_record(g: SpendGroup) -> dict[str, object]:
    """One group as a flat dict; money in USD (4 decimals), hours and GPU-hours, and where the prices came from."""
    return {
        "group": g.key, "runs": g.runs, "active_runs": g.active_runs, "hours": _r(g.hours),
        "gpu_hours": _r(g.gpu_hours), "compute_usd": _r(g.compute_usd), "egress_usd": _r(g.egress_usd),
        "actual_usd": _r(g.actual_usd), "expected_usd": _r(g.expected_usd), "variance_usd": _r(g.variance_usd),
        "variance_pct": _r(g.variance_pct, 2), "usd_per_run": _r(g.usd_per_run),
        "usd_per_gpu_hour": _r(g.usd_per_gpu_hour), "tokens": g.tokens if g.unit_runs else None,
        "usd_per_million_tokens": _r(g.usd_per_million_tokens, 6), "price_sources": list(g.price_sources),
    }


def unit_cost_record(u: UnitCost) -> dict[str, object]:
    """One model version's unit cost as a flat dict."""
    return {"model": u.model, "version": u.version, "runs": u.runs, "tokens": u.tokens,
            "actual_usd": _r(u.actual_usd), "usd_per_million_tokens": _r(u.usd_per_million_tokens, 6),
            "previous_version": u.previous, "change_pct": _r(u.change_pct, 2), "rose": u.rose,
            "first_run": u.first_run.isoformat(timespec="seconds") if u.first_run else None}


def spend_record(report: SpendReport, ledger: str) -> dict[str, object]:
    """The whole report as a JSON-ready dict, with its basis, currency and provenance."""
    return {
        "by": report.by, "currency": report.currency, "as_of": report.as_of.isoformat(timespec="seconds"),
        "since": report.since.isoformat(timespec="seconds") if report.since else None, "ledger": ledger,
        "basis": BASIS, "groups": [group_record(g) for g in report.groups], "total": group_record(report.total),
        "unit_costs": [unit_cost_record(u) for u in report.unit_costs], "flag_rise_percent": report.rise_percent,
    }


def spend_json(report: SpendReport, ledger: str) -> str:
    """JSON document of the report."""
    return json.dumps(spend_record(report, ledger), indent=2)


def spend_csv(report: SpendReport) -> str:
    """CSV: one line per group, then the total line; money in USD, price sources joined by '; '."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for g in (*report.groups, report.total):
        rec = group_record(g)
        rec["price_sources"] = "; ".join(g.price_sources)
        writer.writerow({k: "" if v is None else v for k, v in rec.items()})
    return buf.getvalue()


def money(value: float | None) -> str:
    """'$1,234.56', '-$12.00', or '-' when undefined (arbitrage.money.format_amount: rounded half up, once)."""
    return format_amount(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


HEAD = ("Runs", "Active", "GPU-hours", "Actual USD", "Expected USD", "Variance USD", "Variance", "USD/run",
        "USD/GPU-hour", "USD/1M tok")


def per_million(value: float | None) -> str:
    """'$0.1234' (4 decimals below $10), '$12.50', or '-' when no run reported tokens."""
    if value is None:
        return "-"
    return f"${value:,.4f}" if value < 10 else money(value)


def group_cells(g: SpendGroup) -> list[str]:
    """A group's cells as the table and Markdown show them."""
    return [g.key, str(g.runs), str(g.active_runs), f"{g.gpu_hours:,.1f}", money(g.actual_usd),
            money(g.expected_usd), money(g.variance_usd), _pct(g.variance_pct), money(g.usd_per_run),
            money(g.usd_per_gpu_hour), per_million(g.usd_per_million_tokens)]


UNIT_HEAD = ("Model", "Version", "Runs", "Tokens", "Actual USD", "USD/1M tok", "vs previous", "Flag")


def unit_cells(u: UnitCost, rise_percent: float) -> list[str]:
    """One model version's cells: unit cost and its change against the previous version."""
    change = "-" if u.change_pct is None else f"{u.change_pct:+.1f}% vs {u.previous}"
    flag = f"ROSE >{rise_percent:g}%" if u.rose else ""
    return [u.model, u.version, str(u.runs), f"{u.tokens:,.0f}", money(u.actual_usd),
            per_million(u.usd_per_million_tokens), change, flag]


def unit_cost_table(report: SpendReport) -> TextTable:
    """A table of actual USD per million tokens by model and version (runs that reported tokens)."""
    from arbitrage.texttable import TextTable

    table = TextTable(title="Unit cost by model and version (runs that reported tokens)")
    for i, head in enumerate(UNIT_HEAD):
        table.add_column(head, justify="right" if 2 <= i <= 5 else "left", no_wrap=i < 2)
    for u in report.unit_costs:
        table.add_row(*unit_cells(u, report.rise_percent))
    return table


def unit_cost_lines(report: SpendReport) -> list[str]:
    """One line per version whose unit cost rose past the threshold."""
    return [f"FLAG: {u.model} {u.version}: USD per million tokens rose {u.change_pct:+.1f}% vs {u.previous} "
            f"({per_million(u.usd_per_million_tokens)} over {u.tokens:,.0f} tokens)"
            for u in report.unit_costs if u.rose and u.change_pct is not None]


def notes(report: SpendReport, ledger: str) -> list[str]:
    """Footnotes: basis, active runs, price provenance, and which ledger at what time."""
    lines = [f"All money in {report.currency}. {BASIS[0].upper()}{BASIS[1:]}."]
    active = report.total.active_runs
    if active:
        lines.append(f"{plural(active, 'run')} still active: {'its' if active == 1 else 'their'} actual is spend "
                     f"so far, {'its' if active == 1 else 'their'} expected is the whole plan.")
    if report.total.price_sources:
        lines.append("Prices (provider, source, as of): " + "; ".join(report.total.price_sources) + ".")
    since = f", runs created since {report.since.isoformat(timespec='seconds')}" if report.since else ""
    lines.append(f"From the run ledger {ledger}, as of {report.as_of.isoformat(timespec='seconds')}{since}.")
    if report.total.unit_runs < report.total.runs and report.total.unit_runs:
        lines.append(f"USD per million tokens covers the {plural(report.total.unit_runs, 'run')} that reported "
                     "tokens through GPUARB_METRICS.")
    return lines + unit_cost_lines(report)


def spend_markdown(report: SpendReport, ledger: str) -> str:
    """A GitHub-flavoured Markdown table with a bold total line and the footnotes."""
    head = (report.by, *HEAD)
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(HEAD)]
    for g in report.groups:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in group_cells(g)) + " |")
    total = group_cells(report.total)
    lines.append("| " + " | ".join(f"**{c}**" for c in ["Total", *total[1:]]) + " |")
    if report.unit_costs:
        lines += ["", "Unit cost by model and version (runs that reported tokens):", "",
                  "| " + " | ".join(UNIT_HEAD) + " |", "|---|---|" + "---:|" * 4 + "---|---|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in unit_cells(u, report.rise_percent)) + " |"
                  for u in report.unit_costs]
    return "\n".join([*lines, "", *notes(report, ledger)]) + "\n"


def spend_table(report: SpendReport) -> TextTable:
    """A table of the groups with the total as its footer line."""
    from arbitrage.texttable import TextTable

    table = TextTable(title=f"Spend by {report.by} (USD)")
    total = ["Total", *group_cells(report.total)[1:]]
    for i, head in enumerate((report.by, *HEAD)):
        table.add_column(head, footer=total[i], justify="left" if i == 0 else "right", no_wrap=i == 0)
    for g in report.groups:
        table.add_row(*group_cells(g))
    return table


def spend_output(report: SpendReport, fmt: str, where: str) -> str:
    """What `gpuarb report spend --format FMT` prints for a report, exactly (the CLI and the team server both
    send this)."""
    if fmt == "json":
        return spend_json(report, where) + "\n"
    if fmt == "csv":
        return spend_csv(report)
    if fmt == "markdown":
        return spend_markdown(report, where)
    parts = [str(spend_table(report))]
    if report.unit_costs:
        parts.append(str(unit_cost_table(report)))
    parts += notes(report, where)
    return "\n".join(parts) + "\n"

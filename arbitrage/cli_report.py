"""`gpuarb report prices|plan` and `gpuarb breakeven`: argument parsing and output only; the numbers come from
arbitrage.report. Registered on the main app by arbitrage.cli; nothing heavy is imported at module level, and
nothing from arbitrage.cli either (it imports this module), so the shared helpers are imported inside commands.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from arbitrage.cli_options import SOURCE_HELP, ObjectiveChoice, SourceChoice

if TYPE_CHECKING:
    from arbitrage.facts import Facts
    from arbitrage.offers import Offer

F = TypeVar("F", bound=Callable[..., Any])

report_app = typer.Typer(
    name="report",
    help="Reports a finance partner and an engineer can both read: price comparison and plan with savings, "
         "as a terminal table, Markdown, CSV, JSON or one self-contained HTML file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class ReportFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"
    html = "html"


class BreakevenFormat(str, Enum):
    text = "text"
    markdown = "markdown"
    json = "json"


class WorkloadChoice(str, Enum):
    training = "training"
    inference = "inference"


class RentOption(str, Enum):
    on_demand = "on-demand"
    spot = "spot"


REPORT_FORMATS = ("table", "markdown", "csv", "json", "html")
BREAKEVEN_FORMATS = ("text", "markdown", "json")
_OUT_HELP = "Write the report to this file; the format follows the extension ({}). Default: stdout."


def _guarded(func: F) -> F:
    """arbitrage.cli.guarded, looked up when the command runs (arbitrage.cli imports this module)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from arbitrage.cli import guarded

        return guarded(func)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _offers_with_progress(facts: Facts, source: SourceChoice | None, providers: tuple[str, ...], deny: tuple[str, ...],
                          step: Callable[..., None]) -> list[Offer]:
    from arbitrage.cli import _offers

    offers = _offers(facts, source, providers, deny)
    step(description="Building the report")
    return offers


def _source_note(offers: list[Offer]) -> str:
    """'snapshot: 935 offers' or 'live: 120 offers, snapshot: 300 offers'."""
    counts: dict[str, int] = {}
    for o in offers:
        counts[o.source] = counts.get(o.source, 0) + 1
    return ", ".join(f"{s}: {n} offers" for s, n in sorted(counts.items())) or "no offers"


def _plain(renderables: list[Any]) -> str:
    """Rich renderables as plain text (for --out report.txt)."""
    import io

    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=200, color_system=None, force_terminal=False, soft_wrap=True)
    for r in renderables:
        console.print(r, markup=False, highlight=False)
    return buf.getvalue()


def _emit(text: str | None, renderables: list[Any] | None, out: str | None) -> None:
    """Print to stdout, or write the file and print one line saying where."""
    from arbitrage.report.output import write_report

    if out is None or out == "-":
        if text is not None:
            typer.echo(text, nl=False)
        else:
            from arbitrage.cli import _console

            console = _console()
            for r in renderables or []:
                console.print(r, markup=False, highlight=False)
        return
    typer.echo(write_report(out, text if text is not None else _plain(renderables or [])))


def _now(now: str | None) -> datetime:
    from arbitrage.cli import _parse_now

    return _parse_now(now)


_OUT = Annotated[str | None, typer.Option("--out", "-o", help=_OUT_HELP.format(".html, .md, .csv, .json, .txt"))]
_SRC = Annotated[SourceChoice | None, typer.Option("--source", "-s", case_sensitive=False, help=SOURCE_HELP)]
_NOW = Annotated[str | None, typer.Option("--now", help="Report as of this ISO-8601 time (default: now).", hidden=True)]


@report_app.command("prices")
@_guarded
def report_prices(
    gpu: Annotated[list[str], typer.Option("--gpu", "-g",
                                           help="GPU model(s), e.g. H100, A100-80GB (default: all).")] = [],  # noqa: B006
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="GPUs per instance.")] = None,
    provider: Annotated[list[str], typer.Option("--provider", "-p", help="Provider id or glob (repeatable).")] = [],  # noqa: B006
    region: Annotated[list[str], typer.Option("--region", "-r", help="Region glob, e.g. 'us-*' (repeatable).")] = [],  # noqa: B006
    workload: Annotated[WorkloadChoice, typer.Option("--workload", "-w", case_sensitive=False,
                                                     help="Throughput column used for the effective price.")]
    = WorkloadChoice.training,
    reference: Annotated[str, typer.Option("--reference", help="Effective prices are per hour of this GPU's work.")]
    = "H100",
    out: _OUT = None,
    fmt: Annotated[ReportFormat | None, typer.Option("--format", "-f", case_sensitive=False,
                                                     help="Format on stdout; must match --out's extension if both "
                                                          "are given. Default: table.")] = None,
    source: _SRC = None,
    now: _NOW = None,
) -> None:
    """Per GPU model: each provider's cheapest on-demand and spot offer, per GPU-hour and per instance, the
    effective price per unit of work, spot discounts and the spread between market tiers."""
    from arbitrage.catalog import OfferQuery, filter_offers
    from arbitrage.cli import _canonical_gpus, _check_providers, _facts
    from arbitrage.errors import EXIT_NOTHING_FEASIBLE, SpecError
    from arbitrage.report.output import choose_format
    from arbitrage.report.prices import build_price_report
    from arbitrage.report.progress import progress

    chosen = choose_format(out, fmt.value if fmt else None, REPORT_FORMATS, "table")
    facts = _facts()
    ref = facts.canonical_gpu(reference)
    if ref is None:
        hint = facts.suggest_gpu(reference)
        raise SpecError(f"--reference: unknown GPU '{reference}'" + (f" (did you mean {hint}?)" if hint else ""))
    query = OfferQuery(gpus=_canonical_gpus(gpu, facts), count=count, providers=_check_providers(provider),
                       regions=tuple(region))
    moment = _now(now)
    with progress("Fetching prices", total=3) as step:
        offers = _offers_with_progress(facts, source, query.providers, (), step)
        matching = filter_offers(offers, query)
        report = build_price_report(matching, facts, ref, workload.value)
        step(description=f"Rendering {chosen}")
        if not report.models:
            typer.echo("gpuarb: no offer matches these filters", err=True)
            raise typer.Exit(EXIT_NOTHING_FEASIBLE)
        stamp, note = moment.isoformat(timespec="seconds"), _source_note(matching)
        text, renderables = _render_prices(report, chosen, stamp, note)
        step()
    _emit(text, renderables, out)


def _render_prices(report: Any, fmt: str, stamp: str, note: str) -> tuple[str | None, list[Any] | None]:
    from arbitrage.report import html, markdown, tables

    if fmt == "html":
        return html.prices_html(report, stamp, note), None
    if fmt == "markdown":
        return markdown.prices_markdown(report, stamp, note), None
    if fmt == "csv":
        return tables.prices_csv(report), None
    if fmt == "json":
        return tables.prices_json(report, {"report": "prices", "generated_at": stamp, "sources": note}), None
    from arbitrage.report.terminal import prices_renderables

    return None, prices_renderables(report, stamp, note)


@report_app.command("plan")
@_guarded
def report_plan(
    job: Annotated[str, typer.Argument(help="Job spec YAML (a SkyPilot task with an `arbitrage:` block).")],
    top: Annotated[int, typer.Option("--top", "-t", min=0, help="Placements to show (0 = all).")] = 5,
    objective: Annotated[ObjectiveChoice, typer.Option("--objective", case_sensitive=False,
                                                 help="cost: cheapest expected total; time: earliest finish "
                                                      "within budget.")] = ObjectiveChoice.cost,
    out: _OUT = None,
    fmt: Annotated[ReportFormat | None, typer.Option("--format", "-f", case_sensitive=False,
                                                     help="Format on stdout; must match --out's extension if both "
                                                          "are given. Default: table.")] = None,
    source: _SRC = None,
    now: _NOW = None,
) -> None:
    """The plan with the cost breakdown per placement (compute, preemption, egress), what was rejected and why,
    and the savings against the naive choice (same GPUs, on-demand, on the hyperscaler where the data lives)."""
    from arbitrage.cli import _catalog_provenance, _facts
    from arbitrage.errors import EXIT_NOTHING_FEASIBLE, EXIT_OVER_BUDGET
    from arbitrage.jobspec import read_jobspec
    from arbitrage.render import provenance_line
    from arbitrage.report.output import choose_format
    from arbitrage.report.plan import build_plan_report
    from arbitrage.report.progress import progress

    chosen = choose_format(out, fmt.value if fmt else None, REPORT_FORMATS, "table")
    facts = _facts()
    spec = read_jobspec(job, facts)
    moment = _now(now)
    with progress("Fetching prices", total=3) as step:
        offers = _offers_with_progress(facts, source, spec.providers_allow or (), spec.providers_deny, step)
        catalog = _catalog_provenance(offers)
        report = build_plan_report(spec, offers, facts, moment, objective.value, top, catalog)
        step(description=f"Rendering {chosen}")
        text, renderables = _render_plan(report, chosen, provenance_line(catalog))
        step()
    _emit(text, renderables, out)
    if report.best is None:
        if report.over_budget_only:
            raise typer.Exit(EXIT_OVER_BUDGET)
        raise typer.Exit(EXIT_NOTHING_FEASIBLE)


def _render_plan(report: Any, fmt: str, catalog_line: str) -> tuple[str | None, list[Any] | None]:
    from arbitrage.report import html, markdown, tables

    if fmt == "html":
        return html.plan_html(report), None
    if fmt == "markdown":
        return markdown.plan_markdown(report), None
    if fmt == "csv":
        return tables.plan_csv(report), None
    if fmt == "json":
        return tables.plan_json(report), None
    from arbitrage.report.terminal import plan_renderables

    return None, plan_renderables(report, catalog_line)


@_guarded
def breakeven(
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU model to buy or rent, e.g. H100.")],
    purchase_usd: Annotated[float | None, typer.Option("--purchase-usd", help="Purchase price per GPU, its share "
                                                       "of the server included (default: ownership.toml).")] = None,
    power_w: Annotated[float | None, typer.Option("--power-w", help="Watts per GPU while busy "
                                                  "(default: ownership.toml).")] = None,
    usd_per_kwh: Annotated[float | None, typer.Option("--usd-per-kwh", help="Electricity price.")] = None,
    pue: Annotated[float | None, typer.Option("--pue", help="Power usage effectiveness of the facility (>= 1).")]
    = None,
    hosting_usd_per_month: Annotated[float | None, typer.Option("--hosting-usd-per-month",
                                                                help="Colocation/hosting per GPU-month.")] = None,
    years: Annotated[float | None, typer.Option("--years", help="Comparison period (default 3).")] = None,
    utilization: Annotated[float | None, typer.Option("--utilization", help="Share of hours the GPU is busy, "
                                                      "0-1 (default: ownership.toml).")] = None,
    rent: Annotated[RentOption, typer.Option("--rent", case_sensitive=False,
                                             help="Rental price compared against.")] = RentOption.on_demand,
    rental_usd: Annotated[float | None, typer.Option("--rental-usd-per-gpu-hour",
                                                     help="Use this rental price instead of the catalog's "
                                                          "cheapest.")] = None,
    provider: Annotated[list[str], typer.Option("--provider", "-p", help="Rent only from these providers "
                                                "(id or glob, repeatable).")] = [],  # noqa: B006
    out: Annotated[str | None, typer.Option("--out", "-o", help=_OUT_HELP.format(".md, .json, .txt"))] = None,
    fmt: Annotated[BreakevenFormat | None, typer.Option("--format", "-f", case_sensitive=False,
                                                        help="Format on stdout. Default: text.")] = None,
    source: _SRC = None,
) -> None:
    """Rent vs buy one GPU from the current catalog: break-even months, the utilization above which owning wins,
    and the cost over the period both ways, with every assumption and its source printed."""
    import fnmatch

    from arbitrage.cli import _check_providers, _facts, _offers
    from arbitrage.errors import EXIT_NOTHING_FEASIBLE, SpecError
    from arbitrage.report import markdown, tables
    from arbitrage.report.breakeven import Ownership, Rental, cheapest_rental, compare, validate
    from arbitrage.report.output import choose_format
    from arbitrage.report.ownership import load_ownership
    from arbitrage.report.progress import progress

    chosen = choose_format(out, fmt.value if fmt else None, BREAKEVEN_FORMATS, "text")
    facts = _facts()
    name = facts.canonical_gpu(gpu)
    if name is None:
        hint = facts.suggest_gpu(gpu)
        raise SpecError(f"--gpu: unknown GPU '{gpu}'" + (f" (did you mean {hint}?)" if hint else ""))
    defaults = load_ownership()
    given = {"purchase_usd": purchase_usd, "power_w": power_w, "usd_per_kwh": usd_per_kwh, "pue": pue,
             "hosting_usd_per_month": hosting_usd_per_month, "years": years, "utilization": utilization}
    flags = {k: "--" + k.replace("_", "-") for k in given}
    values: dict[str, float] = {}
    sources: dict[str, str] = {"gpu": "--gpu"}
    per_gpu = defaults.gpus.get(name, {})
    for key, value in given.items():
        if value is not None:
            values[key], sources[key] = value, f"{flags[key]} (command line)"
            continue
        default = per_gpu.get(key) or defaults.defaults.get(key)
        if default is None:
            raise SpecError(f"{flags[key]}: no default for {name} in {defaults.label}; pass --purchase-usd and "
                            "--power-w")
        values[key], sources[key] = default.value, f"{defaults.label}: {default.source}"
    own = Ownership(gpu=name, sources=sources, **values)
    validate(own, rental_usd if rental_usd is not None else 1.0, "--rental-usd-per-gpu-hour")  # before any fetch
    spot = rent is RentOption.spot
    if rental_usd is not None:
        rental = Rental(rental_usd, spot)
    else:
        patterns = _check_providers(provider)
        with progress("Fetching prices"):
            offers = _offers(facts, source, patterns)
        offers = [o for o in offers if not patterns or any(fnmatch.fnmatchcase(o.provider, p.lower())
                                                            for p in patterns)]
        found = cheapest_rental(offers, name, spot)
        if found is None:
            typer.echo(f"gpuarb: no {rent.value} rental offer of {name} in the catalog"
                       + (f" from {', '.join(patterns)}" if patterns else "")
                       + "; pass --rental-usd-per-gpu-hour", err=True)
            raise typer.Exit(EXIT_NOTHING_FEASIBLE)
        rental = found
    result = compare(own, rental)
    if chosen == "json":
        text = tables.breakeven_json(result)
    elif chosen == "markdown":
        text = markdown.breakeven_markdown(result)
    else:
        text = markdown.breakeven_text(result)
    _emit(text, None, out)


def register(app: typer.Typer) -> None:
    """Add `report prices`, `report plan` and `breakeven` to the main `gpuarb` app."""
    app.add_typer(report_app, name="report")
    app.command("breakeven")(breakeven)

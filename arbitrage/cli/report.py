"""`gpuarb report prices|plan` and `gpuarb breakeven`: reports as a terminal table, Markdown, CSV, JSON or HTML.

Argument parsing and output only; the numbers come from the use cases in arbitrage/app.py.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import typer

from arbitrage import app as usecases
from arbitrage.cli.common import (
    GPU_FILTER_HELP,
    GpuHoursOption,
    GpusOption,
    HoursOption,
    InfraOption,
    NumNodesOption,
    Objective,
    ObjectiveHelp,
    ReferenceOption,
    RegionOption,
    SourceOption,
    StrictOption,
    UseSpotOption,
    ZoneOption,
    bounded,
    guarded,
    overrides_of,
    say,
)
from arbitrage.params import MAX_GPUS_PER_NODE, MAX_ROWS


class ReportFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"
    html = "html"


class BreakevenFormat(str, Enum):
    """`breakeven` is a short document: its plain form is `table` like every command's (a .txt file gets it)."""

    table = "table"
    markdown = "markdown"
    json = "json"


class WorkloadChoice(str, Enum):
    training = "training"
    inference = "inference"


class RentOption(str, Enum):
    on_demand = "on-demand"
    spot = "spot"


REPORT_FORMATS = tuple(f.value for f in ReportFormat)
BREAKEVEN_FORMATS = tuple(f.value for f in BreakevenFormat)
_OUT_HELP = "Write the report to this file; the format follows the extension ({}). Default: stdout."
_FORMAT_HELP = "Format on stdout; must match --out's extension if both are given. Default: table."

_OUT = Annotated[str | None, typer.Option("--out", "-o", help=_OUT_HELP.format(".html, .md, .csv, .json, .txt"))]
_NOW = Annotated[str | None, typer.Option("--now", help="Report as of this ISO-8601 time (default: now).", hidden=True)]
_FORMAT = Annotated[ReportFormat | None, typer.Option("--format", "-f", case_sensitive=False, help=_FORMAT_HELP)]
_FINITE = bounded(-1e9, 1e9)  # breakeven's numbers: finite here; their physical ranges are checked by its validate


def _plain(renderables: list[Any]) -> str:
    """Report parts (text tables and lines) as plain text at 200 columns (for --out report.txt)."""
    from arbitrage.texttable import TextTable

    return "".join(f"{r.render(200) if isinstance(r, TextTable) else r}\n" for r in renderables)


def _emit(text: str | None, renderables: list[Any] | None, out: str | None) -> None:
    """Print to stdout, or write the file and print one line saying where."""
    from arbitrage.report.output import write_report

    if out is None or out == "-":
        if text is not None:
            typer.echo(text, nl=False)
        else:
            for r in renderables or []:
                typer.echo(r)
        return
    typer.echo(write_report(out, text if text is not None else _plain(renderables or [])))


@guarded
def report_prices(
    gpu: Annotated[list[str], typer.Option("--gpu", "-g", help=GPU_FILTER_HELP + " Default: all.")] = [],  # noqa: B006
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, max=MAX_GPUS_PER_NODE,
                                              help="GPUs per instance (per node, not in total).")] = None,
    provider: Annotated[list[str], typer.Option("--provider", "-p", help="Provider id or glob (repeatable).")] = [],  # noqa: B006
    region: Annotated[list[str], typer.Option("--region", "-r", help="Region glob, e.g. 'us-*' (repeatable).")] = [],  # noqa: B006
    workload: Annotated[WorkloadChoice | None, typer.Option(
        "--workload", "-w", case_sensitive=False,
        help="Throughput column used for the effective price (default training; inference with --model-params-b).")]
    = None,
    reference: Annotated[str, typer.Option("--reference", help="Effective prices are per hour of this GPU's work.")]
    = "H100",
    params_b: Annotated[float | None, typer.Option(
        "--model-params-b", callback=bounded(0.001, 100_000.0),
        help="Also price a million tokens of a model of this many billion parameters per GPU "
             "(arbitrage/units.py: inference tokens/s or training FLOPs x MFU).")] = None,
    precision: Annotated[str | None, typer.Option("--precision", help="Weight precision of that model: bf16 "
                                                  "(default), fp8, int4, fp4.")] = None,
    out: _OUT = None,
    fmt: _FORMAT = None,
    source: SourceOption = None,
    strict: StrictOption = False,
    now: _NOW = None,
) -> None:
    """Per GPU model: each provider's cheapest on-demand and spot offer, per GPU-hour and per instance, the
    effective price per unit of work, spot discounts and the spread between market tiers; with --model-params-b,
    USD per million tokens of that model per GPU."""
    from arbitrage.params import canonical_gpu, canonical_gpus, check_providers, parse_now
    from arbitrage.report.output import choose_format
    from arbitrage.report.progress import progress

    chosen = choose_format(out, fmt.value if fmt else None, REPORT_FORMATS, "table")
    facts = usecases.load_facts()
    ref = canonical_gpu(reference, facts, "--reference")
    gpus, providers = canonical_gpus(gpu, facts), check_providers(provider)
    unit_model = _unit_model(params_b, precision, facts)
    chosen_workload = workload.value if workload else ("inference" if unit_model else "training")
    moment = parse_now(now, usecases.utcnow())
    with progress("Fetching prices", total=3) as step:
        found = usecases.price_report(facts, gpus=gpus, count=count, providers=providers, regions=region,
                                      reference=ref, workload=chosen_workload, source=source, say=say,
                                      now=moment, unit_model=unit_model, strict=strict)
        step(description=f"Rendering {chosen}")
        stamp, note = moment.isoformat(timespec="seconds"), usecases.source_counts(found.offers)
        text, renderables = _render_prices(found.report, chosen, stamp, note)
        step()
    _emit(text, renderables, out)


def _unit_model(params_b: float | None, precision: str | None, facts: Any) -> Any:
    """--model-params-b / --precision as an arbitrage.units.ModelSpec (None without a size); UsageError if bad."""
    import math

    from arbitrage.errors import UsageError
    from arbitrage.units import ModelSpec

    if params_b is None:
        if precision is not None:
            raise UsageError("--precision needs --model-params-b (the model's size in billions of parameters)")
        return None
    if not math.isfinite(params_b) or not 0 < params_b <= 100_000:
        raise UsageError(f"--model-params-b: must be a number of billions of parameters in (0, 100000], got "
                         f"{params_b:g}")
    name = facts.units.canonical_precision(precision or "bf16")
    if name is None:
        raise UsageError(f"--precision: unknown precision {precision!r} (one of {', '.join(facts.units.precisions)})")
    return ModelSpec(params_b, name)


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


@guarded
def report_plan(
    job: Annotated[str, typer.Argument(help="Job spec YAML: any SkyPilot task, with or without an `arbitrage:` "
                                            "block.")],
    top: Annotated[int, typer.Option("--top", "-t", min=0, max=MAX_ROWS, help="Placements to show (0 = all).")] = 5,
    objective: Annotated[Objective, typer.Option("--objective", case_sensitive=False,
                                                 help=ObjectiveHelp)] = Objective.cost,
    out: _OUT = None,
    fmt: _FORMAT = None,
    source: SourceOption = None,
    strict: StrictOption = False,
    gpus: GpusOption = None,
    num_nodes: NumNodesOption = None,
    use_spot: UseSpotOption = None,
    infra: InfraOption = None,
    region: RegionOption = None,
    zone: ZoneOption = None,
    hours: HoursOption = None,
    gpu_hours: GpuHoursOption = None,
    reference: ReferenceOption = None,
    now: _NOW = None,
) -> None:
    """The plan with the cost breakdown per placement (compute, preemption, egress), what was rejected and why,
    and the savings against the naive choice (same GPUs, on-demand, on the hyperscaler where the data lives)."""
    from arbitrage.errors import NothingFeasible, OverBudget
    from arbitrage.params import parse_now
    from arbitrage.render import provenance_line
    from arbitrage.report.output import choose_format
    from arbitrage.report.progress import progress

    chosen = choose_format(out, fmt.value if fmt else None, REPORT_FORMATS, "table")
    facts = usecases.load_facts()
    moment = parse_now(now, usecases.utcnow())
    with progress("Fetching prices", total=3) as step:
        overrides = overrides_of(gpus, num_nodes, use_spot, infra, region, zone, hours, gpu_hours, reference)
        report, catalog = usecases.plan_report(job, facts, top=top, source=source, objective=objective, now=moment,
                                               say=say, overrides=overrides, strict=strict)
        step(description=f"Rendering {chosen}")
        text, renderables = _render_plan(report, chosen, provenance_line(catalog))
        step()
    _emit(text, renderables, out)
    if report.best is None:
        raise OverBudget("") if report.over_budget_only else NothingFeasible("")


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


@guarded
def breakeven(
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU model to buy or rent, e.g. H100.")],
    purchase_usd: Annotated[float | None, typer.Option("--purchase-usd", callback=_FINITE, help="Purchase price per "
                                                       "GPU, its share of the server included (default: "
                                                       "ownership.toml).")] = None,
    power_w: Annotated[float | None, typer.Option("--power-w", callback=_FINITE, help="Watts per GPU while busy "
                                                  "(default: ownership.toml).")] = None,
    usd_per_kwh: Annotated[float | None, typer.Option("--usd-per-kwh", callback=_FINITE,
                                                      help="Electricity price.")] = None,
    pue: Annotated[float | None, typer.Option("--pue", callback=_FINITE,
                                              help="Power usage effectiveness of the facility (>= 1).")] = None,
    hosting_usd_per_month: Annotated[float | None, typer.Option("--hosting-usd-per-month", callback=_FINITE,
                                                                help="Colocation/hosting per GPU-month.")] = None,
    years: Annotated[float | None, typer.Option("--years", callback=_FINITE,
                                                help="Comparison period (default 3).")] = None,
    utilization: Annotated[float | None, typer.Option("--utilization", callback=_FINITE, help="Share of hours the "
                                                      "GPU is busy, 0-1 (default: ownership.toml).")] = None,
    rent: Annotated[RentOption, typer.Option("--rent", case_sensitive=False,
                                             help="Rental price compared against.")] = RentOption.on_demand,
    rental_usd: Annotated[float | None, typer.Option("--rental-usd-per-gpu-hour", callback=_FINITE,
                                                     help="Use this rental price instead of the catalog's "
                                                          "cheapest.")] = None,
    provider: Annotated[list[str], typer.Option("--provider", "-p", help="Rent only from these providers "
                                                "(id or glob, repeatable).")] = [],  # noqa: B006
    out: Annotated[str | None, typer.Option("--out", "-o", help=_OUT_HELP.format(".md, .json, .txt"))] = None,
    fmt: Annotated[BreakevenFormat | None, typer.Option("--format", "-f", case_sensitive=False,
                                                        help="Format on stdout. Default: text.")] = None,
    source: SourceOption = None,
    strict: StrictOption = False,
) -> None:
    """Rent vs buy one GPU from the current catalog: break-even months, the utilization above which owning wins,
    and the cost over the period both ways, with every assumption and its source printed."""
    from contextlib import nullcontext

    from arbitrage.params import canonical_gpu, check_providers
    from arbitrage.report import markdown, tables
    from arbitrage.report.output import choose_format
    from arbitrage.report.progress import progress

    chosen = choose_format(out, fmt.value if fmt else None, BREAKEVEN_FORMATS, "table")
    facts = usecases.load_facts()
    name = canonical_gpu(gpu, facts, "--gpu")
    given = {"purchase_usd": purchase_usd, "power_w": power_w, "usd_per_kwh": usd_per_kwh, "pue": pue,
             "hosting_usd_per_month": hosting_usd_per_month, "years": years, "utilization": utilization}
    patterns = check_providers(provider) if rental_usd is None else ()
    with progress("Fetching prices") if rental_usd is None else nullcontext():
        result = usecases.breakeven(facts, name, given, spot=rent is RentOption.spot,
                                    rental_usd_per_gpu_hour=rental_usd, providers=patterns, source=source, say=say,
                                    strict=strict)
    if chosen == "json":
        text = tables.breakeven_json(result)
    elif chosen == "markdown":
        text = markdown.breakeven_markdown(result)
    else:
        text = markdown.breakeven_text(result)
    _emit(text, None, out)


def register(app: typer.Typer, report: typer.Typer) -> None:
    """Add `report prices`, `report plan` and `breakeven`."""
    report.command("prices")(report_prices)
    report.command("plan")(report_plan)
    app.command("breakeven")(breakeven)

"""The `gpuarb` command line: argument parsing and printing only; decisions live in the core modules.

Exit codes: 0 ok, 1 other error, 2 invalid spec or usage, 3 nothing feasible, 4 best plan over budget.
Heavy modules (pydantic, the planner, cloud SDKs) are imported inside commands so `--help` starts fast.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

# pydantic scans every installed package's entry points for plugins on first use (~25 ms);
# a CLI that must start fast has none to load.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "1")

import typer

from arbitrage import __version__
from arbitrage.cli_options import SOURCE_HELP, ObjectiveChoice, SourceChoice
from arbitrage.errors import EXIT_NOTHING_FEASIBLE, EXIT_OVER_BUDGET, GpuarbError, SpecError

if TYPE_CHECKING:
    from arbitrage.facts import Facts
    from arbitrage.offers import Offer

app = typer.Typer(
    name="gpuarb",
    help="Multi-cloud GPU arbitrage: price comparison and cheapest-feasible placement for GPU jobs.\n\n"
    "Exit codes: 0 ok, 1 error, 2 invalid spec or usage, 3 nothing feasible (or no capacity), 4 over budget\n"
    "(plan, or stopped by the budget breaker), 5 job failed, 130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rich.markdown alone costs ~60 ms of start-up
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])


class PriceFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class PlanFormat(str, Enum):
    table = "table"
    json = "json"


_SOURCE_HELP = SOURCE_HELP


def _default_source() -> SourceChoice:
    value = os.environ.get("GPUARB_SOURCE", "auto").lower()
    try:
        return SourceChoice(value)
    except ValueError:
        raise SpecError(f"GPUARB_SOURCE: unknown source {value!r} (auto, live, cache, snapshot)") from None


def _fail(message: str, code: int) -> None:
    typer.echo(f"gpuarb: error: {message}", err=True)
    raise typer.Exit(code)


def guarded(func: F) -> F:
    """Turn GpuarbError (and any unexpected exception) into one stderr line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except GpuarbError as exc:
            lines = str(exc).splitlines() or [type(exc).__name__]
            for line in lines:
                typer.echo(f"gpuarb: error: {line}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("gpuarb: interrupted", err=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:  # `gpuarb ... | head`: stop quietly (recipe from the Python docs)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except Exception as exc:  # a bug: still one line, traceback only on request
            if os.environ.get("GPUARB_DEBUG"):
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (set GPUARB_DEBUG=1 for a traceback)", 1)

    return wrapper  # type: ignore[return-value]


def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200, soft_wrap=not sys.stdout.isatty())


def _facts() -> Facts:
    from arbitrage.facts import load_facts

    return load_facts()


def _offers(facts: Facts, source: SourceChoice | None, providers: tuple[str, ...] = (),
            deny: tuple[str, ...] = ()) -> list[Offer]:
    """Offers from the chosen source, asking only allowed, not denied providers (globs); fallbacks go to stderr."""
    import fnmatch

    from providers.snapshot import load_snapshot

    snapshot = load_snapshot(facts)
    mode = source or _default_source()
    if mode is SourceChoice.snapshot:
        return snapshot
    from providers.base import FetchContext
    from providers.fetch import collect_offers

    names = None
    if providers or deny:
        from providers.registry import ADAPTER_MODULES

        def matches(name: str, patterns: tuple[str, ...]) -> bool:
            return any(fnmatch.fnmatchcase(name, p.lower()) for p in patterns)

        known = {o.provider for o in snapshot} | set(ADAPTER_MODULES)
        names = [n for n in known if (not providers or matches(n, providers)) and not matches(n, deny)]
    ctx = FetchContext(facts=facts, now=datetime.now(timezone.utc), env=dict(os.environ))
    offers, statuses = collect_offers(snapshot, mode.value, ctx, names)
    for status in statuses:
        if status.level != "ok" and (status.level == "warning" or mode is not SourceChoice.auto):
            typer.echo(f"gpuarb: {status.level}: {status.message}", err=True)
    return offers


def _catalog_provenance(offers: list[Offer]) -> dict[str, Any]:
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


def _parse_now(now: str | None) -> datetime:
    if not now:
        return datetime.now(timezone.utc)
    try:
        stamp = datetime.fromisoformat(now.replace("Z", "+00:00"))
    except ValueError:
        raise SpecError(f"--now: cannot read {now!r} as an ISO-8601 timestamp") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _canonical_gpus(names: list[str], facts: Facts) -> tuple[str, ...]:
    out = []
    for name in names:
        for part in name.split(","):
            canonical = facts.canonical_gpu(part)
            if canonical is None:
                hint = facts.suggest_gpu(part)
                raise SpecError(f"--gpu: unknown GPU '{part}'" + (f" (did you mean {hint}?)" if hint else ""))
            out.append(canonical)
    return tuple(out)


def _check_providers(patterns: list[str]) -> tuple[str, ...]:
    import difflib
    import fnmatch

    from arbitrage.offers import PROVIDERS

    for p in patterns:
        if not fnmatch.filter(PROVIDERS, p.lower()):
            match = difflib.get_close_matches(p.lower(), PROVIDERS, n=1)
            raise SpecError(f"--provider: unknown provider '{p}'" + (f" (did you mean {match[0]}?)" if match else "")
                            + f"; known: {', '.join(PROVIDERS)}")
    return tuple(patterns)


@app.command()
@guarded
def prices(
    gpu: Annotated[list[str], typer.Option("--gpu", "-g", help="GPU model(s), e.g. H100, A100-80GB.")] = [],  # noqa: B006
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="GPUs per instance.")] = None,
    spot: Annotated[bool | None, typer.Option("--spot/--on-demand",
                                              help="Only offers with that price, sorted by it.")] = None,
    provider: Annotated[list[str], typer.Option("--provider", "-p", help="Provider id or glob (repeatable).")] = [],  # noqa: B006
    region: Annotated[list[str], typer.Option("--region", "-r", help="Region glob, e.g. 'us-*' (repeatable).")] = [],  # noqa: B006
    fmt: Annotated[PriceFormat, typer.Option("--format", "-f", case_sensitive=False)] = PriceFormat.table,
    source: Annotated[SourceChoice | None, typer.Option("--source", "-s", case_sensitive=False,
                                                        help=_SOURCE_HELP)] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=0,
                                              help="Rows to show (0 = all). Default: 30 for table/markdown, "
                                                   "all for json/csv.")] = None,
) -> None:
    """Compare GPU prices per GPU-hour and per instance, cheapest first, with source and as-of."""
    from arbitrage import render
    from arbitrage.catalog import OfferQuery, filter_offers, sort_by_price

    facts = _facts()
    query = OfferQuery(gpus=_canonical_gpus(gpu, facts), count=count, spot=spot,
                       providers=_check_providers(provider), regions=tuple(region))
    matching = sort_by_price(filter_offers(_offers(facts, source, query.providers), query), spot)
    if limit is None:
        limit = 30 if fmt in (PriceFormat.table, PriceFormat.markdown) else 0
    shown = matching[:limit] if limit else matching
    if fmt is PriceFormat.json:
        typer.echo(render.prices_json(shown, len(matching)))
    elif fmt is PriceFormat.csv:
        typer.echo(render.prices_csv(shown), nl=False)
    elif fmt is PriceFormat.markdown:
        typer.echo(render.prices_markdown(shown, len(matching)), nl=False)
    else:
        option = "spot" if spot else "on-demand" if spot is False else "on-demand (spot where no on-demand)"
        title = f"{len(matching)} offers, cheapest {option} $/GPU-hour first (USD, per hour)"
        _console().print(render.prices_table(shown, len(matching), title))
    if not matching:
        typer.echo("gpuarb: no offer matches these filters", err=True)
        raise typer.Exit(EXIT_NOTHING_FEASIBLE)


@app.command()
@guarded
def plan(
    job: Annotated[str, typer.Argument(help="Job spec YAML (a SkyPilot task with an `arbitrage:` block).")],
    top: Annotated[int, typer.Option("--top", "-t", min=0, help="Placements to show (0 = all).")] = 5,
    fmt: Annotated[PlanFormat, typer.Option("--format", "-f", case_sensitive=False)] = PlanFormat.table,
    objective: Annotated[ObjectiveChoice, typer.Option("--objective", "-o", case_sensitive=False,
                                                       help="cost: cheapest expected total; time: "
                                                            "earliest finish within budget.")] = ObjectiveChoice.cost,
    source: Annotated[SourceChoice | None, typer.Option("--source", "-s", case_sensitive=False,
                                                        help=_SOURCE_HELP)] = None,
    now: Annotated[str | None, typer.Option("--now", help="Plan as of this ISO-8601 time (default: now).",
                                            hidden=True)] = None,
) -> None:
    """Rank feasible placements for a job by expected total cost (or finish time), with the breakdown."""
    from arbitrage import render
    from arbitrage.jobspec import read_jobspec
    from arbitrage.planner import plan as make_plan

    facts = _facts()
    spec = read_jobspec(job, facts)
    moment = _parse_now(now)
    offers = _offers(facts, source, spec.providers_allow or (), spec.providers_deny)
    result = make_plan(spec, offers, facts, moment, objective.value)
    catalog = _catalog_provenance(offers)

    if fmt is PlanFormat.json:
        typer.echo(render.plan_json(result, top, moment, catalog))
    else:
        _print_plan_table(result, top, catalog)

    if result.best is None:
        if result.over_budget:
            typer.echo(f"gpuarb: best plan is over budget: {render.usd(result.over_budget[0].total_usd)} expected, "
                       f"{render.usd(result.over_budget[0].hourly_usd)}/h", err=True)
            raise typer.Exit(EXIT_OVER_BUDGET)
        typer.echo("gpuarb: no feasible placement (see the rejection reasons)", err=True)
        raise typer.Exit(EXIT_NOTHING_FEASIBLE)


def _print_plan_table(result: Any, top: int, catalog: dict[str, Any]) -> None:
    """The ranked table (rich), then the explanation, rejections and provenance as plain lines."""
    from arbitrage import render

    spec = result.spec
    shown = result.placements[:top] if top else result.placements
    head = (f"{spec.name}: {' | '.join(map(str, spec.accelerators))} x {spec.num_nodes} node(s), "
            f"{spec.work.gpu_hours:g} {spec.work.reference} GPU-hours, spot {spec.spot}, objective {result.objective}")
    lines: list[str] = []
    if shown:
        _console().print(render.plan_table(shown, result.deadline_hours,
                                           f"{head}\n{len(result.placements)} feasible of {result.candidates} "
                                           f"candidates (USD; hours are expected wall time)"))
        lines += ["Why #1:", *(f"  {line}" for line in render.explain(shown[0], result))]
    elif result.over_budget:
        _console().print(render.plan_table(result.over_budget[: top or None], result.deadline_hours,
                                           f"{head}\nNOTHING within budget; cheapest over-budget placements:"))
    else:
        lines += [head, f"No feasible placement among {result.candidates} candidates."]
    if result.rejections:
        lines += ["Rejected:", *render.rejection_lines(result)]
    lines.append(f"Prices: {render.provenance_line(catalog)}")
    typer.echo("\n".join(lines))


@app.command()
@guarded
def providers(
    refresh: Annotated[bool, typer.Option("--refresh", help="Fetch live prices now from every provider "
                                                             "with credentials (updates the cache).")] = False,
    fmt: Annotated[PlanFormat, typer.Option("--format", "-f", case_sensitive=False)] = PlanFormat.table,
) -> None:
    """List price sources: adapter, credentials found, last refresh, offer counts, last failure."""
    import json

    from arbitrage.offers import PROVIDER_TIERS
    from providers import cache
    from providers.base import FetchContext
    from providers.registry import ADAPTER_MODULES, get_adapter
    from providers.snapshot import load_snapshot

    facts = _facts()
    snapshot = load_snapshot(facts)
    ctx = FetchContext(facts=facts, now=datetime.now(timezone.utc), env=dict(os.environ))
    if refresh:
        from providers.fetch import collect_offers

        for status in collect_offers(snapshot, "live", ctx)[1]:
            if status.message:
                typer.echo(f"gpuarb: {status.level}: {status.message}", err=True)
    directory = cache.cache_dir(ctx.env)
    rows = []
    for name in sorted(set(PROVIDER_TIERS) | set(ADAPTER_MODULES)):
        entry = cache.read(directory, name)
        row: dict[str, Any] = {
            "provider": name, "tier": PROVIDER_TIERS.get(name, "owned"),
            "adapter": name in ADAPTER_MODULES, "credentials": None, "credentials_hint": None,
            "last_refresh": entry.fetched_at.isoformat(timespec="seconds") if entry and entry.fetched_at else None,
            "cached_offers": len(entry.offers) if entry else 0,
            "snapshot_offers": sum(1 for o in snapshot if o.provider == name),
            "last_failure": entry.failure if entry and entry.failed_at else None,
        }
        if name in ADAPTER_MODULES:
            try:
                adapter = get_adapter(name)
                row["credentials"] = adapter.has_credentials(ctx)
                row["credentials_hint"] = adapter.credentials_hint
                row["ttl_seconds"] = adapter.ttl_seconds
            except ModuleNotFoundError as exc:
                row["credentials_hint"] = f"adapter unavailable: {exc.name} not installed"
        rows.append(row)
    if fmt is PlanFormat.json:
        typer.echo(json.dumps({"cache_dir": str(directory), "providers": rows}, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"Price sources (cache: {directory})", title_justify="left", header_style="bold")
    for head in ("Provider", "Tier", "Live adapter", "Credentials", "Last refresh", "Cached", "Snapshot",
                 "Last failure"):
        table.add_column(head)
    for r in rows:
        hint = r["credentials_hint"] or ""
        if r["credentials"] is None:
            creds = hint or "-"
        elif not r["credentials"]:
            creds = f"missing: {hint}"
        else:
            creds = "not needed" if hint.startswith("none needed") else "found"
        table.add_row(r["provider"], r["tier"], "yes" if r["adapter"] else "no (snapshot only)", creds,
                      r["last_refresh"] or "never", str(r["cached_offers"]), str(r["snapshot_offers"]),
                      r["last_failure"] or "")
    _console().print(table)


@app.command()
@guarded
def schema() -> None:
    """Print the JSON Schema of job spec files (for editors and CI linting)."""
    import json

    from arbitrage.jobspec import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@app.command()
@guarded
def validate(
    jobs: Annotated[list[str], typer.Argument(help="Job spec YAML files.")],
) -> None:
    """Check job specs and report every problem as file:line: field: message."""
    from arbitrage.jobspec import read_jobspec

    facts = _facts()
    failed = False
    for path in jobs:
        try:
            spec = read_jobspec(path, facts)
        except SpecError as exc:
            failed = True
            for line in str(exc).splitlines():
                typer.echo(line, err=True)
            continue
        typer.echo(f"{path}: ok ({spec.name}: {', '.join(map(str, spec.accelerators))} x {spec.num_nodes})")
    if failed:
        raise typer.Exit(SpecError.exit_code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gpuarb {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """gpuarb: cheapest feasible GPU placement across clouds."""


# Run-lifecycle commands (run, status, logs, down, history, reap) live in their own module.
from arbitrage import cli_run  # noqa: E402

cli_run.register(app, guarded)

# Reports (report prices, report plan) and breakeven live in their own module too.
from arbitrage import cli_report  # noqa: E402

cli_report.register(app)

# Ledger spend (report spend) and the FOCUS export (export focus).
from arbitrage import cli_spend  # noqa: E402

cli_spend.register(cli_report.report_app, app, guarded)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()

"""`gpuarb prices` and `gpuarb providers`: the offer catalog and where its prices come from."""

from __future__ import annotations

from typing import Annotated

import typer

from arbitrage import app as usecases
from arbitrage.cli.common import (
    GPU_FILTER_HELP,
    DataFormat,
    SourceOption,
    StrictOption,
    TableOrJson,
    TableOrJsonOption,
    guarded,
    say,
)
from arbitrage.errors import NothingFeasible
from arbitrage.params import MAX_GPUS_PER_NODE, MAX_ROWS
from arbitrage.plural import noun, plural


@guarded
def prices(
    gpu: Annotated[list[str], typer.Option("--gpu", "-g", help=GPU_FILTER_HELP)] = [],  # noqa: B006
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, max=MAX_GPUS_PER_NODE,
                                              help="GPUs per instance (per node, not in total).")] = None,
    spot: Annotated[bool | None, typer.Option("--spot/--on-demand",
                                              help="Only offers with that price, sorted by it.")] = None,
    provider: Annotated[list[str], typer.Option("--provider", "-p", help="Provider id or glob (repeatable).")] = [],  # noqa: B006
    region: Annotated[list[str], typer.Option("--region", "-r", help="Region glob, e.g. 'us-*' (repeatable).")] = [],  # noqa: B006
    fmt: Annotated[DataFormat, typer.Option("--format", "-f", case_sensitive=False)] = DataFormat.table,
    source: SourceOption = None,
    strict: StrictOption = False,
    limit: Annotated[int | None, typer.Option("--limit", min=0, max=MAX_ROWS,
                                              help="Rows to show (0 = all). Default: 30 for table/markdown, "
                                                   "all for json/csv.")] = None,
    quarantined: Annotated[bool, typer.Option("--quarantined",
                                              help="List the prices the quality gate set aside, and why, "
                                                   "instead of the offers.")] = False,
    now: Annotated[str | None, typer.Option("--now", help="Count price ages to this ISO-8601 time (default: now).",
                                            hidden=True)] = None,
) -> None:
    """Compare GPU prices per GPU-hour and per instance, cheapest first, with source, as-of and age.

    Nothing matching exits 3 and says which filter removed the last offer, with the offers left after each filter
    (JSON: empty_reason and filter_counts)."""
    from arbitrage import render
    from arbitrage.params import canonical_gpus, check_providers, parse_now

    facts = usecases.load_facts()
    found = usecases.find_prices(facts, gpus=canonical_gpus(gpu, facts), count=count, spot=spot,
                                 providers=check_providers(provider), regions=region, source=source, say=say,
                                 now=parse_now(now, usecases.utcnow()), quarantined=quarantined, strict=strict)
    if found.quarantined is not None:
        _print_quarantined(found, fmt)
        return
    matching = found.offers
    if limit is None:
        limit = 30 if fmt in (DataFormat.table, DataFormat.markdown) else 0
    shown = matching[:limit] if limit else matching
    when, stale = found.now, found.stale_days
    empty = found.empty
    if fmt is DataFormat.json:
        import json

        doc = json.loads(render.prices_json(shown, len(matching), when, stale))
        doc["empty_reason"] = empty.reason if empty else None
        doc["filter_counts"] = [c.record() for c in empty.counts] if empty else None
        typer.echo(json.dumps(doc, indent=2))
    elif fmt is DataFormat.csv:
        typer.echo(render.prices_csv(shown, when, stale), nl=False)
    elif fmt is DataFormat.markdown:
        typer.echo(render.prices_markdown(shown, len(matching), when, stale), nl=False)
        if empty:  # a pull-request comment says why it is empty, too
            typer.echo(f"\n{empty.reason[0].upper()}{empty.reason[1:]}.")
    else:
        option = "spot" if spot else "on-demand" if spot is False else "on-demand (spot where no on-demand)"
        title = (f"{plural(len(matching), 'offer')}, cheapest {option} $/GPU-hour first (USD, per hour; age of each "
                 f"price, stale after {stale:g} {noun(stale, 'day')})")
        typer.echo(render.prices_table(shown, len(matching), title, when, stale))
    if empty is not None:
        raise NothingFeasible(empty.reason)


def _print_quarantined(found: usecases.PriceList, fmt: DataFormat) -> None:
    """The set-aside prices (an empty list is a good answer, not a failure)."""
    from arbitrage import render

    items = found.quarantined or []
    if fmt is DataFormat.json:
        typer.echo(render.quarantine_json(items, found.now, found.stale_days))
    elif fmt is DataFormat.csv:
        typer.echo(render.quarantine_csv(items, found.now, found.stale_days), nl=False)
    elif fmt is DataFormat.markdown:
        typer.echo(render.quarantine_markdown(items), nl=False)
    else:
        title = (f"{plural(len(items), 'price')} set aside by the quality gate (providers/quality.py), USD"
                 if items else "No price matching these filters was set aside by the quality gate")
        typer.echo(render.quarantine_table(items, title))


@guarded
def providers(
    refresh: Annotated[bool, typer.Option("--refresh", help="Fetch live prices now from every provider "
                                                             "with credentials (updates the cache).")] = False,
    fmt: TableOrJsonOption = TableOrJson.table,
    strict: StrictOption = False,
) -> None:
    """List price sources: adapter, credentials found, last refresh, offer counts, last failure."""
    import json

    found = usecases.provider_sources(usecases.load_facts(), refresh=refresh, say=say, strict=strict)
    if fmt is TableOrJson.json:
        typer.echo(json.dumps({"cache_dir": str(found.cache_dir), "providers": found.rows}, indent=2))
        return
    from arbitrage.texttable import TextTable

    table = TextTable(title=f"Price sources (cache: {found.cache_dir})")
    for head in ("Provider", "Tier", "Live adapter", "Credentials", "Last refresh", "Cached", "Snapshot",
                 "Set aside", "Last failure"):
        table.add_column(head)
    for r in found.rows:
        hint = r["credentials_hint"] or ""
        if r["credentials"] is None:
            creds = hint or "-"
        elif not r["credentials"]:
            creds = f"missing: {hint}"
        else:
            creds = "not needed" if hint.startswith("none needed") else "found"
        table.add_row(r["provider"], r["tier"], "yes" if r["adapter"] else "no (snapshot only)", creds,
                      r["last_refresh"] or "never", str(r["cached_offers"]), str(r["snapshot_offers"]),
                      _set_aside_cell(r), r["last_failure"] or "")
    typer.echo(table)


def _set_aside_cell(row: dict) -> str:
    """Prices the quality gate set aside: 'snapshot 12, cache 3', '-' when none."""
    parts = [f"{label} {row[key]}" for label, key in (("snapshot", "snapshot_quarantined"),
                                                      ("cache", "cached_quarantined")) if row.get(key)]
    return ", ".join(parts) or "-"


def register(app: typer.Typer) -> None:
    """Add `prices` and `providers`."""
    app.command("prices")(prices)
    app.command("providers")(providers)

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
from arbitrage.params import MAX_GPUS_PER_NODE, MAX_ROWS


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
    server = usecases.team_server() if now is None else None
    if server is not None:  # the server's prices (its live sources and credentials)
        text, error = server.prices(gpus=gpu, count=count, spot=spot, providers=check_providers(provider),
                                    regions=region, fmt=fmt.value, source=None if source is None else source.value,
                                    strict=strict, limit=limit, quarantined=quarantined)
    else:
        found = usecases.find_prices(facts, gpus=canonical_gpus(gpu, facts), count=count, spot=spot,
                                     providers=check_providers(provider), regions=region, source=source, say=say,
                                     now=parse_now(now, usecases.utcnow()), quarantined=quarantined, strict=strict)
        text, error = render.prices_output(found, fmt.value, limit)
    typer.echo(text, nl=False)
    if error is not None:
        raise error


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

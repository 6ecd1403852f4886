"""`gpuarb prices` and `gpuarb providers`: the offer catalog and where its prices come from."""

from __future__ import annotations

from typing import Annotated

import typer

from arbitrage import app as usecases
from arbitrage.cli.common import DataFormat, SourceOption, TableOrJson, TableOrJsonOption, console, guarded, say
from arbitrage.errors import NothingFeasible


@guarded
def prices(
    gpu: Annotated[list[str], typer.Option("--gpu", "-g", help="GPU model(s), e.g. H100, A100-80GB.")] = [],  # noqa: B006
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="GPUs per instance.")] = None,
    spot: Annotated[bool | None, typer.Option("--spot/--on-demand",
                                              help="Only offers with that price, sorted by it.")] = None,
    provider: Annotated[list[str], typer.Option("--provider", "-p", help="Provider id or glob (repeatable).")] = [],  # noqa: B006
    region: Annotated[list[str], typer.Option("--region", "-r", help="Region glob, e.g. 'us-*' (repeatable).")] = [],  # noqa: B006
    fmt: Annotated[DataFormat, typer.Option("--format", "-f", case_sensitive=False)] = DataFormat.table,
    source: SourceOption = None,
    limit: Annotated[int | None, typer.Option("--limit", min=0,
                                              help="Rows to show (0 = all). Default: 30 for table/markdown, "
                                                   "all for json/csv.")] = None,
) -> None:
    """Compare GPU prices per GPU-hour and per instance, cheapest first, with source and as-of."""
    from arbitrage import render
    from arbitrage.params import canonical_gpus, check_providers

    facts = usecases.load_facts()
    found = usecases.find_prices(facts, gpus=canonical_gpus(gpu, facts), count=count, spot=spot,
                                 providers=check_providers(provider), regions=region, source=source, say=say)
    matching = found.offers
    if limit is None:
        limit = 30 if fmt in (DataFormat.table, DataFormat.markdown) else 0
    shown = matching[:limit] if limit else matching
    if fmt is DataFormat.json:
        typer.echo(render.prices_json(shown, len(matching)))
    elif fmt is DataFormat.csv:
        typer.echo(render.prices_csv(shown), nl=False)
    elif fmt is DataFormat.markdown:
        typer.echo(render.prices_markdown(shown, len(matching)), nl=False)
    else:
        option = "spot" if spot else "on-demand" if spot is False else "on-demand (spot where no on-demand)"
        title = f"{len(matching)} offers, cheapest {option} $/GPU-hour first (USD, per hour)"
        console().print(render.prices_table(shown, len(matching), title))
    if not matching:
        raise NothingFeasible("no offer matches these filters")


@guarded
def providers(
    refresh: Annotated[bool, typer.Option("--refresh", help="Fetch live prices now from every provider "
                                                             "with credentials (updates the cache).")] = False,
    fmt: TableOrJsonOption = TableOrJson.table,
) -> None:
    """List price sources: adapter, credentials found, last refresh, offer counts, last failure."""
    import json

    found = usecases.provider_sources(usecases.load_facts(), refresh=refresh, say=say)
    if fmt is TableOrJson.json:
        typer.echo(json.dumps({"cache_dir": str(found.cache_dir), "providers": found.rows}, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"Price sources (cache: {found.cache_dir})", title_justify="left", header_style="bold")
    for head in ("Provider", "Tier", "Live adapter", "Credentials", "Last refresh", "Cached", "Snapshot",
                 "Last failure"):
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
                      r["last_failure"] or "")
    console().print(table)


def register(app: typer.Typer) -> None:
    """Add `prices` and `providers`."""
    app.command("prices")(prices)
    app.command("providers")(providers)

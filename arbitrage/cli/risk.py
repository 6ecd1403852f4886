"""`gpuarb risk`: the spot preemption rate of every spot offer, the history behind it, and where it came from."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from arbitrage import app as usecases
from arbitrage.cli.common import (
    GPU_FILTER_HELP,
    SourceOption,
    StrictOption,
    TableOrJson,
    TableOrJsonOption,
    guarded,
    say,
)
from arbitrage.errors import NothingFeasible
from arbitrage.plural import plural


@guarded
def risk(
    provider: Annotated[list[str], typer.Option("--provider", "-p", help="Provider id or glob (repeatable).")] = [],  # noqa: B006
    gpu: Annotated[list[str], typer.Option("--gpu", "-g", help=GPU_FILTER_HELP)] = [],  # noqa: B006
    fmt: TableOrJsonOption = TableOrJson.table,
    source: SourceOption = None,
    strict: StrictOption = False,
    now: Annotated[str | None, typer.Option("--now", help="Count history to this ISO-8601 time (default: now).",
                                            hidden=True)] = None,
) -> None:
    """Spot risk: preemptions per instance-hour by provider, instance type, region and zone kind, with sources.

    Rates come from the AWS Spot Instance Advisor's band (live, cached or the bundled dated copy) mapped by
    spot_bands.csv, from preemption.csv's cited rows, from host reliability, and from your own runs in the ledger.
    """
    import json

    from arbitrage.params import canonical_gpus, check_providers, parse_now

    facts = usecases.load_facts()
    table = usecases.risk_table(facts, providers=check_providers(provider), gpus=canonical_gpus(gpu, facts),
                                source=source, say=say, now=parse_now(now, usecases.utcnow()), strict=strict)
    if fmt is TableOrJson.json:
        typer.echo(json.dumps({
            "as_of": table.now.isoformat(), "advisor": table.advisor,
            "ledger": str(table.ledger) if table.ledger else None,
            "observed_instance_hours": round(table.observed_hours, 2), "rows": table.rows}, indent=2))
    else:
        _print_table(table)
    if not table.rows:
        raise NothingFeasible("no spot offer matches these filters")


def _print_table(table: Any) -> None:
    """The rates (a table), then every distinct source as a numbered note."""
    from arbitrage.texttable import TextTable

    notes: dict[str, int] = {}
    out = TextTable(title=f"Spot risk: {plural(len(table.rows), 'spot offer')} (preemptions per instance-hour; "
                          "restart minutes)")
    for i, head in enumerate(("Provider", "Instance", "Region", "Zone", "GPUs", "Rate/h", "Prior/h", "Observed",
                              "Restart", "From")):
        out.add_column(head, justify="right" if 4 <= i <= 8 else "left", no_wrap=i < 3)
    for r in table.rows:
        n = notes.setdefault(_note(r, table.advisor), len(notes) + 1)
        observed = (f"{r['observed_preemptions']} in {r['observed_instance_hours']:g} h"
                    if r["observed_instance_hours"] else "-")
        where = f"{r['region']}/{r['zone']}" if r["zone"] else r["region"]
        out.add_row(r["provider"], r["instance_type"], where, r["zone_kind"], str(r["gpus_per_node"]),
                    f"{r['preemptions_per_hour']:.3g}", f"{r['prior_preemptions_per_hour']:.3g}", observed,
                    f"{r['restart_minutes']:g}", f"{r['label']} [{n}]")
    typer.echo(out)
    advisor = table.advisor
    lines = [f"AWS Spot Instance Advisor: {advisor['used']} ({plural(advisor['entries'], 'GPU row')}, as of "
             f"{advisor['as_of'] or 'undated'}; {advisor['ref']})",
             f"Run ledger: {table.ledger} ({table.observed_hours:.1f} spot instance-hours observed)" if table.ledger
             else "Run ledger: none yet (rates are priors until your own spot runs are recorded)",
             "Sources:"]
    lines += [f"  [{n}] {text}" for text, n in notes.items()]
    typer.echo("\n".join(lines))


def _note(row: dict[str, Any], advisor: dict[str, Any]) -> str:
    """The source note a row points at: the Advisor's provenance for Advisor-rated rows (their band is in the
    From column), else the row's own source line; rows sharing a note share its number."""
    text = row["source"]
    if row["evidence"] == "advisor" and row["label"].startswith("advisor "):
        text = (f"AWS Spot Instance Advisor: the band of this instance type in this Region ({advisor['used']}, as of "
                f"{advisor['as_of'] or 'undated'}), as a rate by spot_bands.csv at the instance's GPU count")
    elif row["evidence"] == "advisor":
        text = (f"not listed by the AWS Spot Instance Advisor for this Region ({advisor['used']}, as of "
                f"{advisor['as_of'] or 'undated'}): preemption.csv's fallback band, as a rate by spot_bands.csv at "
                "the instance's GPU count")
    if row["observed_instance_hours"]:
        text += "; updated with the run ledger's observed preemptions over observed instance-hours (Gamma-Poisson)"
    return text


def register(app: typer.Typer) -> None:
    """Add `risk`."""
    app.command("risk")(risk)

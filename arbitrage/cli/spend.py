"""`gpuarb report spend` and `gpuarb export focus`: spend from the run ledger, as a showback table or FOCUS rows."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from arbitrage import app as usecases
from arbitrage.cli.common import TAG_HELP, DataFormat, bounded, guarded, say
from arbitrage.errors import UsageError
from arbitrage.params import SINCE_FORMS
from arbitrage.plural import noun


class GranularityChoice(str, Enum):
    day = "day"
    hour = "hour"


class FocusFormat(str, Enum):
    """`export focus --format`: FOCUS rows as CSV (the FOCUS file format) or a JSON array of the same rows."""

    csv = "csv"
    json = "json"


_BY_HELP = ("Group runs by team, model, version (tags from the job spec's arbitrage.tags), provider (where the run "
            "last ran), name, state, or any other tag key (tag:KEY for a tag named like a built-in key).")


@guarded
def spend(
    by: Annotated[str, typer.Option("--by", help=_BY_HELP)] = "team",
    since: Annotated[str | None, typer.Option("--since", help="Only runs created since then: " + SINCE_FORMS + ".")]
    = None,
    tag: Annotated[list[str], typer.Option("--tag", help=TAG_HELP)] = [],  # noqa: B006
    fmt: Annotated[DataFormat, typer.Option("--format", "-f", case_sensitive=False)] = DataFormat.table,
    rise: Annotated[float, typer.Option("--flag-rise-percent", callback=bounded(0.0, 1e6),
                                        help="Flag a model version whose USD per million tokens rose more than "
                                             "this against the previous version.")]
    = 10.0,
) -> None:
    """Showback/chargeback from the run ledger: actual vs expected USD, GPU-hours, USD per run, per GPU-hour and
    per million tokens (runs that reported tokens through GPUARB_METRICS), by model version."""
    from arbitrage.params import parse_since, parse_tags
    from arbitrage.report import spend as S

    now = usecases.utcnow()
    since_at, tags = parse_since(since, now), parse_tags(tag)
    server = usecases.team_server()
    if server is not None:
        shown = server.spend(by, since=since, tags=tag, fmt=fmt.value, rise_percent=rise)
        for line in shown["warnings"]:
            say(line)
        runs, empty, where, text = shown["runs"], shown["ledger_empty"], shown["ledger"], shown["text"]
    else:
        found = usecases.spend(by, since=since_at, tags=tags, now=now, say=say, rise_percent=rise)
        runs, empty, where = found.runs, found.ledger_empty, str(found.ledger_path)
        text = S.spend_output(found.report, fmt.value, where)
    if not runs and fmt in (DataFormat.table, DataFormat.markdown):
        filtered = bool(since or tag) and not empty
        typer.echo("no runs match these filters" if filtered
                   else f"no runs in the ledger yet ({where}); `gpuarb run` records them")
        return
    typer.echo(text, nl=False)


@guarded
def focus(
    since: Annotated[str | None, typer.Option("--since", help="Only charges incurred since then (attempts that "
                                                              "straddle it are clipped): " + SINCE_FORMS + ".")] = None,
    tag: Annotated[list[str], typer.Option("--tag", help=TAG_HELP)] = [],  # noqa: B006
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the rows here instead of stdout (a .json "
                                                                "name without --format writes JSON).",
                                             dir_okay=False)] = None,
    fmt: Annotated[FocusFormat | None, typer.Option(
        "--format", "-f", case_sensitive=False, show_default=False,
        help="csv (default): the FOCUS file; json: an array of objects with the same columns and values (numbers "
             "with the CSV's digits).")] = None,
    granularity: Annotated[GranularityChoice, typer.Option(
        "--granularity", case_sensitive=False,
        help="Charge period: attempts are split at UTC day or hour boundaries.")] = GranularityChoice.day,
    billing_account: Annotated[list[str], typer.Option(
        "--billing-account", help="BillingAccountId per provider, PROVIDER=ID (repeatable) or one ID for all; "
                                  "default gpuarb-PROVIDER (gpuarb does not know your cloud account ids).")] = [],  # noqa: B006
) -> None:
    """The run ledger as FinOps FOCUS 1.2 cost-and-usage rows (CSV or JSON): compute per attempt and charge period,
    egress."""
    from arbitrage.params import parse_since, parse_tags
    from arbitrage.report import focus as F

    accounts = usecases.billing_accounts(billing_account)
    now = usecases.utcnow()
    since_at, tags = parse_since(since, now), parse_tags(tag)
    if fmt is None:
        fmt = FocusFormat.json if out is not None and out.suffix.lower() == ".json" else FocusFormat.csv
    server = usecases.team_server()
    if server is not None:
        shown = server.focus(since=since, granularity=granularity.value, tags=tag, fmt=fmt.value,
                             billing_accounts=billing_account)
        for line in shown["warnings"]:
            say(line)
        text, n, where = shown["text"], shown["count"], shown["ledger"]
    else:
        export = usecases.focus_export(since=since_at, tags=tags, granularity=granularity.value,
                                       billing_accounts=accounts, now=now, say=say)
        text, n = F.focus_text(export.rows, fmt.value)
        where = str(export.ledger_path)
    if out is None:
        typer.echo(text, nl=False)
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise UsageError(f"--out: cannot write {str(out)[:80]}: {getattr(exc, 'strerror', None) or exc}") from None
    header = "header only" if fmt is FocusFormat.csv else "an empty array"
    what = (f"{n:,} FOCUS {F.FOCUS_VERSION} {noun(n, 'row')}" if n
            else f"no charges ({header}, FOCUS {F.FOCUS_VERSION})")
    say(f"{what} from {where}{' to ' + str(out) if out else ''}; all money in USD")


def register(report: typer.Typer, export: typer.Typer) -> None:
    """Add `report spend` and `export focus`."""
    report.command("spend")(spend)
    export.command("focus")(focus)

"""`gpuarb report spend` and `gpuarb export focus`: spend from the run ledger, as a showback table or FOCUS rows."""

from __future__ import annotations

import io
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
    found = usecases.spend(by, since=parse_since(since, now), tags=parse_tags(tag), now=now, say=say,
                           rise_percent=rise)
    if not found.runs and fmt in (DataFormat.table, DataFormat.markdown):
        filtered = bool(since or tag) and not found.ledger_empty
        typer.echo("no runs match these filters" if filtered
                   else f"no runs in the ledger yet ({found.ledger_path}); `gpuarb run` records them")
        return
    where = str(found.ledger_path)
    if fmt is DataFormat.json:
        typer.echo(S.spend_json(found.report, where))
    elif fmt is DataFormat.csv:
        typer.echo(S.spend_csv(found.report), nl=False)
    elif fmt is DataFormat.markdown:
        typer.echo(S.spend_markdown(found.report, where), nl=False)
    else:
        typer.echo(S.spend_table(found.report))
        if found.report.unit_costs:
            typer.echo(S.unit_cost_table(found.report))
        for line in S.notes(found.report, where):
            typer.echo(line)


def _parse_accounts(values: list[str]) -> dict[str, str]:
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

    accounts = _parse_accounts(billing_account)
    now = usecases.utcnow()
    export = usecases.focus_export(since=parse_since(since, now), tags=parse_tags(tag), granularity=granularity.value,
                                   billing_accounts=accounts, now=now, say=say)
    if fmt is None:
        fmt = FocusFormat.json if out is not None and out.suffix.lower() == ".json" else FocusFormat.csv
    if fmt is FocusFormat.json:
        text, n = F.focus_json(export.rows)
    else:
        buf = io.StringIO()
        n = F.write_focus_csv(export.rows, buf)
        text = buf.getvalue()
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
    say(f"{what} from {export.ledger_path}{' to ' + str(out) if out else ''}; all money in USD")


def register(report: typer.Typer, export: typer.Typer) -> None:
    """Add `report spend` and `export focus`."""
    report.command("spend")(spend)
    export.command("focus")(focus)

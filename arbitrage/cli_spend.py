"""`gpuarb report spend` and `gpuarb export focus`: spend from the run ledger, as a showback table or FOCUS rows.

Arguments, ledger reads and output only; the numbers come from arbitrage.report.spend and arbitrage.report.focus.
Nothing heavy at module level: the ledger, the report modules and rich are imported inside the commands.
"""

from __future__ import annotations

import io
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from arbitrage.errors import SpecError

if TYPE_CHECKING:
    from arbitrage.ledger import Ledger, RunRow
    from arbitrage.report.focus import DataHome
    from arbitrage.report.spend import RunLedger


class SpendFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class GranularityChoice(str, Enum):
    day = "day"
    hour = "hour"


_BY_HELP = ("Group runs by team, model, version (tags from the job spec's arbitrage.tags), provider (where the run "
            "last ran), name, state, or any other tag key (tag:KEY for a tag named like a built-in key).")
_SINCE_HELP = "ISO date/time or 7d, 12h, 30m back from now."


def _records(ledger: Ledger, runs: list[RunRow]) -> list[RunLedger]:
    """Each run with its placements and attempts, read through the ledger's public queries."""
    from arbitrage.report.spend import RunLedger

    return [RunLedger(run=r, placements=tuple(ledger.placements(r.id)), attempts=tuple(ledger.attempts(r.id)))
            for r in runs]


def _data_homes(records: list[RunLedger]) -> dict[str, DataHome]:
    """Where each run with egress keeps its input data, from the job spec the ledger recorded (unreadable: skipped)."""
    from arbitrage.errors import GpuarbError
    from arbitrage.report.focus import DataHome

    needed = [r.run for r in records if r.run.egress_in_usd > 0 or r.run.egress_out_usd > 0]
    if not needed:
        return {}
    from arbitrage.facts import load_facts
    from arbitrage.jobspec import parse_jobspec_text

    facts = load_facts()
    homes: dict[str, DataHome] = {}
    for run in needed:
        try:
            spec = parse_jobspec_text(run.spec_text, facts, run.spec_path)
        except (GpuarbError, ValueError):
            typer.echo(f"gpuarb: warning: run {run.id}: its recorded job spec no longer parses; egress rows name "
                       "the placement's cloud and no GB", err=True)
            continue
        if spec.data is not None:
            homes[run.id] = DataHome(provider=spec.data.provider, region=spec.data.region,
                                     size_gb=spec.data.size_gb, outputs_gb=spec.outputs_gb, uri=spec.data.uri)
    return homes


def spend(
    by: Annotated[str, typer.Option("--by", "-b", help=_BY_HELP)] = "team",
    since: Annotated[str | None, typer.Option("--since", help="Only runs created since then: " + _SINCE_HELP)] = None,
    tag: Annotated[list[str], typer.Option("--tag", help="Only runs with this tag, key=value (repeatable).")] = [],  # noqa: B006
    fmt: Annotated[SpendFormat, typer.Option("--format", "-f", case_sensitive=False)] = SpendFormat.table,
) -> None:
    """Showback/chargeback from the run ledger: actual vs expected USD, GPU-hours, USD per run and per GPU-hour."""
    from arbitrage.cli_run import _ledger, _now, _parse_tags, parse_since
    from arbitrage.report import spend as S

    try:
        S.parse_group_by(by)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    now = _now()
    since_ts = parse_since(since, now)
    ledger = _ledger()
    runs = ledger.runs(since=since_ts, tags=_parse_tags(tag))
    if not runs and fmt in (SpendFormat.table, SpendFormat.markdown):
        filtered = bool(since or tag) and bool(ledger.runs(limit=1))
        typer.echo("no runs match these filters" if filtered
                   else f"no runs in the ledger yet ({ledger.path}); `gpuarb run` records them")
        return
    report = S.spend_report(_records(ledger, runs), by, now, since_ts)
    where = str(ledger.path)
    if fmt is SpendFormat.json:
        typer.echo(S.spend_json(report, where))
    elif fmt is SpendFormat.csv:
        typer.echo(S.spend_csv(report), nl=False)
    elif fmt is SpendFormat.markdown:
        typer.echo(S.spend_markdown(report, where), nl=False)
    else:
        from rich.console import Console

        console = Console(width=None if sys.stdout.isatty() else 200, soft_wrap=not sys.stdout.isatty())
        console.print(S.spend_table(report))
        for line in S.notes(report, where):
            console.print(line, highlight=False, markup=False)


def _parse_accounts(values: list[str]) -> dict[str, str]:
    """--billing-account PROVIDER=ID (repeatable) or a bare ID for every provider."""
    out: dict[str, str] = {}
    for value in values:
        provider, sep, account = value.partition("=")
        if not sep:
            provider, account = "*", value
        if not provider.strip() or not account.strip():
            raise SpecError(f"--billing-account: expected PROVIDER=ID or ID, got {value!r}")
        out[provider.strip().lower()] = account.strip()
    return out


def focus(
    since: Annotated[str | None, typer.Option("--since", help="Only charges incurred since then (attempts that "
                                                              "straddle it are clipped): " + _SINCE_HELP)] = None,
    tag: Annotated[list[str], typer.Option("--tag", help="Only runs with this tag, key=value (repeatable).")] = [],  # noqa: B006
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the CSV here instead of stdout.",
                                             dir_okay=False)] = None,
    granularity: Annotated[GranularityChoice, typer.Option(
        "--granularity", case_sensitive=False,
        help="Charge period: attempts are split at UTC day or hour boundaries.")] = GranularityChoice.day,
    billing_account: Annotated[list[str], typer.Option(
        "--billing-account", help="BillingAccountId per provider, PROVIDER=ID (repeatable) or one ID for all; "
                                  "default gpuarb-PROVIDER (gpuarb does not know your cloud account ids).")] = [],  # noqa: B006
) -> None:
    """The run ledger as FinOps FOCUS 1.2 cost-and-usage rows (CSV): compute per attempt and charge period, egress."""
    from arbitrage.cli_run import _ledger, _now, _parse_tags, parse_since
    from arbitrage.report import focus as F

    accounts = _parse_accounts(billing_account)
    now = _now()
    since_ts = parse_since(since, now)
    ledger = _ledger()
    records = _records(ledger, ledger.runs(tags=_parse_tags(tag)))
    rows = F.focus_rows(records, now, since=since_ts, granularity=granularity.value,
                        data_homes=_data_homes(records), billing_accounts=accounts)
    buf = io.StringIO()
    n = F.write_focus_csv(rows, buf)
    if out is None:
        typer.echo(buf.getvalue(), nl=False)
    else:
        try:
            out.write_text(buf.getvalue(), encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"--out: cannot write {out}: {exc.strerror or exc}") from None
    what = f"{n} FOCUS {F.FOCUS_VERSION} rows" if n else f"no charges (header only, FOCUS {F.FOCUS_VERSION})"
    typer.echo(f"gpuarb: {what} from {ledger.path}{' to ' + str(out) if out else ''}; all money in USD", err=True)


def register(report_app: typer.Typer, app: typer.Typer, guarded: Any) -> None:
    """Add `report spend` to the report group and an `export` group with `focus` to the main app."""
    report_app.command(name="spend")(guarded(spend))
    export_app = typer.Typer(
        name="export",
        help="Export the run ledger for other tools: `export focus` writes FinOps FOCUS 1.2 cost-and-usage CSV.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    export_app.command(name="focus")(guarded(focus))
    app.add_typer(export_app, name="export")

"""`gpuarb status`, `logs`, `down`, `history`, `reap`: reading and stopping recorded runs."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from arbitrage import app as usecases
from arbitrage.cli.common import (
    TAG_HELP,
    BackendChoice,
    DataFormat,
    TableOrJson,
    TableOrJsonOption,
    bounded,
    guarded,
    say,
)
from arbitrage.errors import Cancelled
from arbitrage.params import MAX_IDLE_MINUTES, MAX_ROWS, SINCE_FORMS

_RUN_HELP = "A run id (or a unique prefix of one) or a run's name (its newest run, or its one live run)."
_FORMAT_HELP = "table (default), json, csv or markdown."


def _print_runs(summaries: list[dict[str, Any]], fmt: DataFormat, *, with_tags: bool, caption: str = "") -> None:
    """Runs in the chosen format: a table (money as $1,234.56), JSON (the summaries), CSV or Markdown."""
    from arbitrage.report import runs as R

    if fmt is DataFormat.json:
        typer.echo(json.dumps(summaries, indent=2))
    elif fmt is DataFormat.csv:
        typer.echo(R.runs_csv(summaries), nl=False)
    elif fmt is DataFormat.markdown:
        typer.echo(R.runs_markdown(summaries, with_tags=with_tags, caption=caption), nl=False)
    else:
        typer.echo(R.runs_table(summaries, with_tags=with_tags, caption=caption))


@guarded
def status(
    run_id: Annotated[str | None, typer.Argument(help=_RUN_HELP + " Default: recent runs.", show_default=False)]
    = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_ROWS, help="Runs to list.")] = 20,
    fmt: Annotated[DataFormat, typer.Option("--format", "-f", case_sensitive=False, help=_FORMAT_HELP + " With RUN, "
                                            "json has its placements, attempts and events; csv and markdown its one "
                                            "row.")] = DataFormat.table,
) -> None:
    """Show recent runs, or one run's placements, attempts and events, with spend so far."""
    from arbitrage.report.spend import money

    server = usecases.team_server()
    if run_id is None:
        if server is not None:
            found = server.runs(limit=limit)
            summaries, warnings, where = found["runs"], found["warnings"], f"{found['ledger']} on {server.url}"
        else:
            ledger = usecases.open_ledger()
            summaries = usecases.recent_runs(ledger, limit=limit)
            warnings, where = usecases.ledger_warnings(ledger), str(ledger.path)
        for line in warnings:
            say(line)
        if not summaries and fmt in (DataFormat.table, DataFormat.markdown):
            typer.echo(f"no runs yet (ledger: {where})")
        else:
            _print_runs(summaries, fmt, with_tags=False)
        return
    if server is not None:
        summary = server.run(run_id)
    else:
        ledger = usecases.open_ledger()
        summary = usecases.run_summary(ledger, usecases.find_run(ledger, run_id), detail=True)
        for line in usecases.ledger_warnings(ledger):
            say(line)
    if fmt is DataFormat.json:
        typer.echo(json.dumps(summary, indent=2))
        return
    if fmt is not DataFormat.table:
        _print_runs([summary], fmt, with_tags=True)
        return
    labels = (("run_id", "Run"), ("name", "Name"), ("state", "State"), ("backend", "Backend"),
              ("placement", "Placement"), ("price", "Price"), ("created_at", "Created"), ("ended_at", "Ended"),
              ("message", "Message"))
    width = max(len(label) for _, label in labels)
    for key, label in labels:
        typer.echo(f"{label:>{width}}: {summary[key] if summary[key] not in (None, '') else '-'}")
    budget = money(summary["budget_total_usd"]) if summary["budget_total_usd"] else "none"
    typer.echo(f"{'Spent':>{width}}: {money(summary['spent_usd'])} of expected "
               f"{money(summary['expected_total_usd'])} (USD; budget {budget})")
    typer.echo("Attempts:" if summary["attempts_detail"] else "Attempts: none yet")
    for a in summary["attempts_detail"]:
        typer.echo(f"  {a['n']}. {a['placement']} [{a['cluster']}] {a['outcome'] or 'running'}"
                   f"{' (' + a['message'] + ')' if a['message'] else ''}")
    typer.echo("Events:")
    for e in summary["events"]:
        typer.echo(f"  {e['at']}  {e['kind']:<14} {e['message']}")


@guarded
def logs(
    run_id: Annotated[str, typer.Argument(help=_RUN_HELP, show_default=False)],
    follow: Annotated[bool, typer.Option("--follow", "-F", help="Keep printing until the job ends.")] = False,
    ray_address: Annotated[str | None, typer.Option("--ray-address", hidden=True)] = None,
    fmt: Annotated[TableOrJson, typer.Option(
        "--format", "-f", case_sensitive=False,
        help="table (default): the lines as the job wrote them; json: one document with the run id, attempt, "
             "cluster and the lines (with --follow, printed when the job ends).")] = TableOrJson.table,
) -> None:
    """Print a run's job output (latest attempt); for a detached run, also where its supervisor log is."""
    server = usecases.team_server()
    if server is not None:
        if follow:
            say("note: --follow is not available through the team server; printing the output so far")
        record = server.logs(run_id)
        if fmt is TableOrJson.json:
            typer.echo(json.dumps(record, indent=2))
        else:
            for line in record["lines"]:
                typer.echo(line)
        return
    found = usecases.run_logs(run_id, follow=follow, ray_address=ray_address)
    if fmt is TableOrJson.json:
        typer.echo(json.dumps(found.record(list(found.lines)), indent=2))
        return
    if found.supervisor_log is not None:
        say(f"supervisor log: {found.supervisor_log}")
    for line in found.lines:
        typer.echo(line)


@guarded
def down(
    run_id: Annotated[str, typer.Argument(help=_RUN_HELP, show_default=False)],
    ray_address: Annotated[str | None, typer.Option("--ray-address", hidden=True)] = None,
    fmt: TableOrJsonOption = TableOrJson.table,
) -> None:
    """Stop a run and tear down its cluster; the ledger marks it cancelled (a finished run keeps its state)."""
    server = usecases.team_server()
    if server is not None:
        record = server.stop(run_id)
    else:
        stopped = usecases.stop_run(run_id, ray_address=ray_address)
        record = {"run_id": stopped.run_id, "state": stopped.state, "torn_down": stopped.torn_down}
    if fmt is TableOrJson.json:
        typer.echo(json.dumps(record))
    elif record["torn_down"] is None:
        typer.echo(f"run {record['run_id']}: nothing was launched; {record['state']}")
    else:
        typer.echo(f"run {record['run_id']}: {record['state']}; {record['torn_down']} torn down")


@guarded
def history(
    tag: Annotated[list[str], typer.Option("--tag", help=TAG_HELP)] = [],  # noqa: B006
    since: Annotated[str | None, typer.Option("--since", help="Only runs created since then: " + SINCE_FORMS + ".")]
    = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_ROWS)] = 100,
    fmt: Annotated[DataFormat, typer.Option("--format", "-f", case_sensitive=False, help=_FORMAT_HELP)]
    = DataFormat.table,
) -> None:
    """Past runs with expected vs actual cost (USD), newest first, filtered by tag and time."""
    from arbitrage.params import parse_since, parse_tags
    from arbitrage.report.runs import spent_line

    server = usecases.team_server()
    if server is not None:
        parse_since(since, usecases.utcnow()), parse_tags(tag)  # the same usage errors, before any request
        found = server.runs(limit=limit, since=since, tags=tag)
        summaries, warnings = found["runs"], found["warnings"]
    else:
        ledger = usecases.open_ledger()
        summaries = usecases.recent_runs(ledger, since=parse_since(since, usecases.utcnow()), tags=parse_tags(tag),
                                         limit=limit)
        warnings = usecases.ledger_warnings(ledger)
    for line in warnings:
        say(line)
    if not summaries and fmt in (DataFormat.table, DataFormat.markdown):
        typer.echo("no runs match")
        return
    _print_runs(summaries, fmt, with_tags=True, caption=spent_line(summaries))


@guarded
def reap(
    idle_minutes: Annotated[float, typer.Option("--idle-minutes", callback=bounded(0.0, MAX_IDLE_MINUTES),
                                                help="Tear down clusters idle longer than this.")] = 60,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List zombies; tear nothing down.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    backend: Annotated[list[BackendChoice], typer.Option("--backend", "-b", case_sensitive=False,
                                                       help="Backends to search (default: all usable).")] = [],  # noqa: B006
    fmt: Annotated[TableOrJson, typer.Option(
        "--format", "-f", case_sensitive=False,
        help="table (default): one line per cluster; json: an array of the clusters (cluster, backend, status, "
             "run_id, reason, torn_down).")] = TableOrJson.table,
) -> None:
    """Find clusters gpuarb launched whose run is over, unsupervised, unknown or idle, and tear them down."""
    from arbitrage.plural import plural

    names = [b.value for b in backend] or [b.value for b in BackendChoice]
    zombies = usecases.find_zombies(names, idle_minutes=idle_minutes, explicit=bool(backend), say=say)
    report = [{**z.record(), "torn_down": False} for z in zombies]
    as_json = fmt is TableOrJson.json
    if not zombies or dry_run:
        if as_json:
            typer.echo(json.dumps(report, indent=2))
        elif not zombies:
            typer.echo("no zombie clusters")
        for z in [] if as_json else report:
            typer.echo(f"{z['cluster']} ({z['backend']}, {z['status']}): {z['reason']}")
        return
    for z in [] if as_json else report:
        typer.echo(f"{z['cluster']} ({z['backend']}, {z['status']}): {z['reason']}")
    if not yes and sys.stdin.isatty() and not typer.confirm(f"tear down {plural(len(zombies), 'cluster')}?",
                                                            default=False, err=True):
        raise Cancelled("")
    for zombie, z in zip(zombies, report, strict=True):
        usecases.reap(zombie)
        z["torn_down"] = True
        if not as_json:
            typer.echo(f"torn down {zombie.cluster.name}")
    if as_json:
        typer.echo(json.dumps(report, indent=2))


def register(app: typer.Typer) -> None:
    """Add `status`, `logs`, `down`, `history` and `reap`."""
    for command in (status, logs, down, history, reap):
        app.command(command.__name__)(command)

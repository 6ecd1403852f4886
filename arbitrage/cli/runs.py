"""`gpuarb status`, `logs`, `down`, `history`, `reap`: reading and stopping recorded runs."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from arbitrage import app as usecases
from arbitrage.cli.common import TAG_HELP, BackendChoice, TableOrJson, TableOrJsonOption, bounded, guarded, say
from arbitrage.errors import Cancelled
from arbitrage.params import MAX_IDLE_MINUTES, MAX_ROWS


@guarded
def status(
    run_id: Annotated[str | None, typer.Argument(help="A run id (or unique prefix); default: recent runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_ROWS, help="Runs to list.")] = 20,
    fmt: TableOrJsonOption = TableOrJson.table,
) -> None:
    """Show recent runs, or one run's placements, attempts and events, with spend so far."""
    ledger = usecases.open_ledger()
    if run_id is None:
        summaries = usecases.recent_runs(ledger, limit=limit)
        for line in usecases.ledger_warnings(ledger):
            say(line)
        if fmt is TableOrJson.json:
            typer.echo(json.dumps(summaries, indent=2))
        elif not summaries:
            typer.echo(f"no runs yet (ledger: {ledger.path})")
        else:
            _table(summaries, ["run_id", "name", "state", "placement", "spent_usd", "expected_total_usd"])
        return
    summary = usecases.run_summary(ledger, ledger.run(run_id), detail=True)
    for line in usecases.ledger_warnings(ledger):
        say(line)
    if fmt is TableOrJson.json:
        typer.echo(json.dumps(summary, indent=2))
        return
    for key in ("run_id", "name", "state", "backend", "placement", "price", "created_at", "ended_at", "message"):
        typer.echo(f"{key:>18}: {summary[key] if summary[key] is not None else '-'}")
    typer.echo(f"{'spent':>18}: ${summary['spent_usd']:,.2f} of expected "
               f"${summary['expected_total_usd'] or 0:,.2f} (USD; budget "
               f"{'$' + format(summary['budget_total_usd'], ',.2f') if summary['budget_total_usd'] else 'none'})")
    typer.echo("attempts:")
    for a in summary["attempts_detail"]:
        typer.echo(f"  {a['n']}. {a['placement']} [{a['cluster']}] {a['outcome'] or 'running'}"
                   f"{' (' + a['message'] + ')' if a['message'] else ''}")
    typer.echo("events:")
    for e in summary["events"]:
        typer.echo(f"  {e['at']}  {e['kind']:<14} {e['message']}")


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    from arbitrage.texttable import TextTable

    table = TextTable()
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*("-" if r[c] is None else (f"{r[c]:,.2f}" if isinstance(r[c], float) else str(r[c]))
                        for c in columns))
    typer.echo(table)


@guarded
def logs(
    run_id: Annotated[str, typer.Argument(help="A run id (or unique prefix).")],
    follow: Annotated[bool, typer.Option("--follow", "-F", help="Keep printing until the job ends.")] = False,
    ray_address: Annotated[str | None, typer.Option("--ray-address", hidden=True)] = None,
) -> None:
    """Print a run's job output (latest attempt); for a detached run, also where its supervisor log is."""
    supervisor_log = usecases.supervisor_log(run_id)
    if supervisor_log is not None:
        say(f"supervisor log: {supervisor_log}")
    for line in usecases.run_logs(run_id, follow=follow, ray_address=ray_address):
        typer.echo(line.rstrip("\n"))


@guarded
def down(
    run_id: Annotated[str, typer.Argument(help="A run id (or unique prefix).")],
    ray_address: Annotated[str | None, typer.Option("--ray-address", hidden=True)] = None,
    fmt: TableOrJsonOption = TableOrJson.table,
) -> None:
    """Stop a run and tear down its cluster; the ledger marks it cancelled (a finished run keeps its state)."""
    stopped = usecases.stop_run(run_id, ray_address=ray_address)
    if fmt is TableOrJson.json:
        typer.echo(json.dumps({"run_id": stopped.run_id, "state": stopped.state, "torn_down": stopped.torn_down}))
    elif stopped.torn_down is None:
        typer.echo(f"run {stopped.run_id}: nothing was launched; {stopped.state}")
    else:
        typer.echo(f"run {stopped.run_id}: {stopped.state}; {stopped.torn_down} torn down")


@guarded
def history(
    tag: Annotated[list[str], typer.Option("--tag", help=TAG_HELP)] = [],  # noqa: B006
    since: Annotated[str | None, typer.Option("--since", help="ISO date/time or 7d, 12h, 30m.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_ROWS)] = 100,
    fmt: TableOrJsonOption = TableOrJson.table,
) -> None:
    """Past runs with expected vs actual cost (USD), newest first, filtered by tag and time."""
    from arbitrage.params import parse_since, parse_tags

    ledger = usecases.open_ledger()
    summaries = usecases.recent_runs(ledger, since=parse_since(since, usecases.utcnow()), tags=parse_tags(tag),
                                     limit=limit)
    for line in usecases.ledger_warnings(ledger):
        say(line)
    if fmt is TableOrJson.json:
        typer.echo(json.dumps(summaries, indent=2))
        return
    if not summaries:
        typer.echo("no runs match")
        return
    for s in summaries:
        s["tags"] = ",".join(f"{k}={v}" for k, v in s["tags"].items())
    _table(summaries, ["run_id", "name", "state", "placement", "expected_total_usd", "spent_usd", "tags"])
    total = sum(s["spent_usd"] for s in summaries)
    typer.echo(f"{len(summaries)} runs, ${total:,.2f} spent (USD, compute at the recorded price + egress)")


@guarded
def reap(
    idle_minutes: Annotated[float, typer.Option("--idle-minutes", callback=bounded(0.0, MAX_IDLE_MINUTES),
                                                help="Tear down clusters idle longer than this.")] = 60,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List zombies; tear nothing down.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    backend: Annotated[list[BackendChoice], typer.Option("--backend", "-b", case_sensitive=False,
                                                       help="Backends to search (default: all usable).")] = [],  # noqa: B006
    fmt: TableOrJsonOption = TableOrJson.table,
) -> None:
    """Find clusters gpuarb launched whose run is over, unsupervised, unknown or idle, and tear them down."""
    names = [b.value for b in backend] or [b.value for b in BackendChoice]
    zombies = usecases.find_zombies(names, idle_minutes=idle_minutes, explicit=bool(backend), say=say)
    report = [z.record() for z in zombies]
    if fmt is TableOrJson.json and dry_run:
        typer.echo(json.dumps(report, indent=2))
        return
    if not zombies:
        typer.echo("no zombie clusters")
        return
    for z in report:
        typer.echo(f"{z['cluster']} ({z['backend']}, {z['status']}): {z['reason']}")
    if dry_run:
        return
    if not yes and sys.stdin.isatty() and not typer.confirm(f"tear down {len(zombies)} cluster(s)?", default=False):
        raise Cancelled("")
    for zombie in zombies:
        usecases.reap(zombie)
        typer.echo(f"torn down {zombie.cluster.name}")
    if fmt is TableOrJson.json:
        typer.echo(json.dumps(report, indent=2))


def register(app: typer.Typer) -> None:
    """Add `status`, `logs`, `down`, `history` and `reap`."""
    for command in (status, logs, down, history, reap):
        app.command(command.__name__)(command)

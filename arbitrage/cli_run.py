"""`gpuarb run`, `status`, `logs`, `down`, `history`, `reap`: launching runs and reading the ledger.

Arguments and printing only; the lifecycle lives in arbitrage/launch/runner.py, records in arbitrage/ledger.py.
Run exit codes: 0 succeeded (or detached/dry-run), 1 error, 2 invalid spec, 3 nothing feasible or no capacity,
4 over budget (plan) or stopped by the budget breaker, 5 the job failed, 130 interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from arbitrage.cli_options import SOURCE_HELP, ObjectiveChoice, SourceChoice
from arbitrage.errors import (
    EXIT_INTERRUPTED,
    EXIT_JOB_FAILED,
    EXIT_NOTHING_FEASIBLE,
    EXIT_OVER_BUDGET,
    GpuarbError,
    SpecError,
)

if TYPE_CHECKING:
    from arbitrage.launch.backend import Backend
    from arbitrage.ledger import Ledger, RunRow


class BackendChoice(str, Enum):
    skypilot = "skypilot"
    local = "local"


class OutFormat(str, Enum):
    table = "table"
    json = "json"


_BACKEND_HELP = ("skypilot: launch on the planned cloud through SkyPilot; local: run under Ray on this machine "
                 "(or on the Ray cluster at --ray-address), accounted at the planned placement's price.")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _ledger() -> Ledger:
    from arbitrage.ledger import Ledger

    return Ledger.open()


def _data_dir() -> Path:
    from arbitrage.ledger import default_path

    return default_path().parent


def _say(message: str) -> None:
    typer.echo(f"gpuarb: {message}", err=True)


def _exit_for(state: str) -> int:
    from arbitrage import ledger as L

    return {L.RUN_SUCCEEDED: 0, L.RUN_NO_CAPACITY: EXIT_NOTHING_FEASIBLE, L.RUN_BUDGET_STOPPED: EXIT_OVER_BUDGET,
            L.RUN_FAILED: EXIT_JOB_FAILED, L.RUN_INTERRUPTED: EXIT_INTERRUPTED, L.RUN_CANCELLED: 1}.get(state, 0)


def supervisor_alive(run: RunRow) -> bool | None:
    """Whether the process watching a run is alive: None when it runs on another host (cannot tell)."""
    if run.supervisor_pid is None:
        return False
    if run.supervisor_host and run.supervisor_host != socket.gethostname():
        return None
    try:
        os.kill(run.supervisor_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _state_label(run: RunRow) -> str:
    if run.terminal:
        return run.state
    alive = supervisor_alive(run)
    return run.state if alive is not False else f"{run.state} (unsupervised)"


def _backend(name: str, ray_address: str | None = None, *, check: bool = True) -> Backend:
    from arbitrage.launch.backends import make_backend

    backend = make_backend(name, state_dir=_data_dir(), ray_address=ray_address)
    if check:  # a real launch needs it; --dry-run only renders (and SkyPilot's import alone takes seconds)
        backend.check()
    return backend


def launchable(backend: Backend, placements: list[Any], limit: int) -> tuple[list[Any], list[str]]:
    """Up to ``limit`` placements the backend can launch, one per distinct launch; and why others were skipped.

    The local backend runs one placement: owned (onprem) capacity when the plan has it, else a rehearsal of #1.
    """
    if backend.name == "local":
        owned = [c for c in placements if c.placement.offer.provider == "onprem"]
        return (owned or placements)[:1], []
    key_of = getattr(backend, "launch_key", None)
    chosen: list[Any] = []
    seen: set[Any] = set()
    skipped: list[str] = []
    for cost in placements:
        if len(chosen) >= limit:
            break
        key = key_of(cost.placement) if key_of else id(cost)
        if key is None:
            o = cost.placement.offer
            skipped.append(f"{o.provider} {o.instance_type}: {backend.name} cannot launch it")
            continue
        if key in seen:
            continue  # e.g. AWS zones of one region: the same SkyPilot launch
        seen.add(key)
        chosen.append(cost)
    return chosen, skipped


def _options(poll_seconds: float, max_failovers: int, max_restarts: int, pending_timeout: float) -> Any:
    from arbitrage.launch.runner import RunOptions

    return RunOptions(max_failovers=max_failovers, max_restarts=max_restarts, poll_seconds=poll_seconds,
                      pending_timeout_minutes=pending_timeout, checkpoint_root=_data_dir() / "checkpoints")


def _runner(backend: Backend, ledger: Ledger, options: Any):
    import time

    from arbitrage.launch.runner import Runner

    return Runner(backend, ledger, clock=_now, sleep=time.sleep, options=options, say=_say)


class _Terminated(BaseException):
    """SIGTERM (a CI job cancelled, a `kill`): handled like Ctrl-C so the cluster is torn down."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated()


def _supervise_foreground(runner: Any, run_id: str, spec: Any, *, yes: bool) -> str:
    """Run the lifecycle here; Ctrl-C or SIGTERM tears the cluster down (asking first on a terminal)."""
    from arbitrage.ledger import RUN_INTERRUPTED

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return runner.supervise(run_id, spec)
    except (KeyboardInterrupt, _Terminated) as exc:
        teardown = True
        if isinstance(exc, KeyboardInterrupt) and sys.stdin.isatty() and not yes and runner.handle is not None:
            try:
                teardown = typer.confirm(f"\ngpuarb: tear down {runner.handle.cluster_name} now?", default=True)
            except (KeyboardInterrupt, typer.Abort):
                teardown = True
        runner.interrupt(run_id, teardown=teardown)
        if teardown:
            _say(f"run {run_id} interrupted; nothing left running")
            return RUN_INTERRUPTED
        _say(f"run {run_id} left running: `gpuarb down {run_id}` stops it")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(
    job: Annotated[str, typer.Argument(help="Job spec YAML (a SkyPilot task with an `arbitrage:` block).")],
    backend: Annotated[BackendChoice, typer.Option("--backend", "-b", case_sensitive=False,
                                                   help=_BACKEND_HELP)] = BackendChoice.skypilot,
    ray_address: Annotated[str | None, typer.Option("--ray-address",
                                                    help="Existing Ray cluster for --backend local "
                                                         "(e.g. http://head:8265).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the exact task that would launch; "
                                                           "launch nothing.")] = False,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Print the run id and return at once; a "
                                                               "background supervisor watches the run.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Never ask (Ctrl-C tears down without asking).")] = False,
    max_failovers: Annotated[int, typer.Option("--max-failovers", min=0,
                                               help="Further placements to try when one has no capacity.")] = 3,
    max_restarts: Annotated[int, typer.Option("--max-restarts", min=0,
                                              help="Preemption restarts before the run is failed.")] = 10,
    pending_timeout: Annotated[float, typer.Option("--pending-timeout", min=0.0,
                                                   help="Minutes a launch may stay pending (no capacity) "
                                                        "before failing over.")] = 30.0,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", min=0.05, hidden=True)] = 10.0,
    objective: Annotated[ObjectiveChoice, typer.Option("--objective", "-o", case_sensitive=False,
                                                       help="cost or time (as in `plan`).")] = ObjectiveChoice.cost,
    source: Annotated[SourceChoice | None, typer.Option("--source", "-s", case_sensitive=False,
                                                        help=SOURCE_HELP)] = None,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", case_sensitive=False)] = OutFormat.table,
) -> None:
    """Plan a job and run it on the cheapest feasible placement, with failover, budget breaker and teardown."""
    from arbitrage.cli import _facts, _offers
    from arbitrage.jobspec import read_jobspec
    from arbitrage.launch.runner import placement_row
    from arbitrage.planner import plan as make_plan

    facts = _facts()
    path = str(Path(job).resolve())
    spec = read_jobspec(job, facts)
    spec_text = Path(job).read_text(encoding="utf-8")
    moment = _now()
    offers = _offers(facts, source, spec.providers_allow or (), spec.providers_deny)
    result = make_plan(spec, offers, facts, moment, objective.value)
    if result.best is None:
        if result.over_budget:
            _say(f"best plan is over budget: ${result.over_budget[0].total_usd:,.2f} expected; nothing launched")
            raise typer.Exit(EXIT_OVER_BUDGET)
        _say("no feasible placement (see `gpuarb plan`); nothing launched")
        raise typer.Exit(EXIT_NOTHING_FEASIBLE)
    runner_backend = _backend(backend.value, ray_address, check=not dry_run)
    chosen, skipped = launchable(runner_backend, list(result.placements), max_failovers + 1)
    for line in skipped[:5]:
        _say(f"skipped: {line}")
    if not chosen:
        _say(f"none of the {len(result.placements)} feasible placements can be launched by --backend "
             f"{backend.value}; nothing launched")
        raise typer.Exit(EXIT_NOTHING_FEASIBLE)
    if backend is BackendChoice.local:
        c = chosen[0]
        kind = "owned capacity" if c.placement.offer.provider == "onprem" else "a local rehearsal"
        _say(f"local backend: {kind} of {c.placement.offer.provider} {c.placement.offer.instance_type}, "
             f"accounted at ${c.hourly_usd:,.2f}/h ({c.placement.offer.source} price)")
    if spec.deadline is not None and spec.spot == "auto" and all(c.placement.spot for c in chosen):
        # The spot policy's way out when a preemption puts the deadline at risk: the best on-demand placement.
        fallback, _ = launchable(runner_backend, [c for c in result.placements if not c.placement.spot], 1)
        chosen += fallback
    rows = [placement_row(c) for c in chosen]

    if dry_run:
        _dry_run(runner_backend, spec, chosen, fmt)
        return

    options = _options(poll_seconds, max_failovers, max_restarts, pending_timeout)
    ledger = _ledger()
    run_id = ledger.create_run(
        name=spec.name, spec_path=path, spec_text=spec_text, backend=backend.value, now=moment, placements=rows,
        tags=spec.tags, budget_total_usd=spec.budget.max_total_usd, budget_hourly_usd=spec.budget.max_hourly_usd,
        supervisor_pid=os.getpid(), supervisor_host=socket.gethostname(),
        message=f"planned from {path}")
    best = chosen[0]
    if detach:
        pid = _spawn_supervisor(run_id, backend.value, ray_address, options)
        ledger.set_supervisor(run_id, pid, socket.gethostname())
        if fmt is OutFormat.json:
            typer.echo(json.dumps({"run_id": run_id, "state": "launching", "detached": True,
                                   "expected_total_usd": round(best.total_usd, 2), "currency": "USD"}))
        else:
            typer.echo(run_id)
        return
    _say(f"run {run_id}: {spec.name}, expected ${best.total_usd:,.2f} over {best.expected_hours:.1f} h")
    runner = _runner(runner_backend, ledger, options)
    state = _supervise_foreground(runner, run_id, spec, yes=yes or not sys.stdin.isatty())
    _print_outcome(ledger, run_id, fmt)
    raise typer.Exit(_exit_for(state))


def _dry_run(backend: Backend, spec: Any, chosen: list[Any], fmt: OutFormat) -> None:
    from arbitrage.launch.backend import LaunchRequest
    from arbitrage.launch.runner import checkpoint_plan, cluster_name

    best = chosen[0]
    run_id = "dry-run"
    ckpt = checkpoint_plan(spec, run_id, local=backend.name == "local", root=_data_dir() / "checkpoints")
    req = LaunchRequest(run_id=run_id, attempt=1, cluster_name=cluster_name(run_id, 1), spec=spec,
                        placement=best.placement, checkpoint=ckpt)
    task = backend.render(req)
    o = best.placement.offer
    label = (f"#1 {o.provider} {o.zone or o.region} {best.placement.nodes}x {o.instance_type} "
             f"{'spot' if best.placement.spot else 'on-demand'}: ${best.hourly_usd:,.2f}/h, expected "
             f"${best.total_usd:,.2f} ({o.source} price as of {o.as_of})")
    if fmt is OutFormat.json:
        typer.echo(json.dumps({"placement": label, "backend": backend.name, "task": task}, indent=2))
    else:
        typer.echo(f"# {label}\n# backend: {backend.name}; nothing launched (--dry-run)")
        typer.echo(task, nl=not task.endswith("\n"))


def _spawn_supervisor(run_id: str, backend: str, ray_address: str | None, options: Any) -> int:
    """Start a background supervisor for a detached run; its output goes to <data dir>/runs/<id>.log."""
    log_dir = _data_dir() / "runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "arbitrage.cli", "_supervise", run_id, "--backend", backend,
           "--poll-seconds", str(options.poll_seconds), "--max-failovers", str(options.max_failovers),
           "--max-restarts", str(options.max_restarts), "--pending-timeout", str(options.pending_timeout_minutes)]
    if ray_address:
        cmd += ["--ray-address", ray_address]
    with open(log_dir / f"{run_id}.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                close_fds=True)
    return proc.pid


def supervise(
    run_id: Annotated[str, typer.Argument()],
    backend: Annotated[BackendChoice, typer.Option("--backend")] = BackendChoice.skypilot,
    ray_address: Annotated[str | None, typer.Option("--ray-address")] = None,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds")] = 10.0,
    max_failovers: Annotated[int, typer.Option("--max-failovers")] = 3,
    max_restarts: Annotated[int, typer.Option("--max-restarts")] = 10,
    pending_timeout: Annotated[float, typer.Option("--pending-timeout")] = 30.0,
) -> None:
    """Watch a detached run (started by `gpuarb run --detach`)."""
    from arbitrage.cli import _facts
    from arbitrage.jobspec import parse_jobspec_text

    ledger = _ledger()
    run = ledger.run(run_id)
    ledger.set_supervisor(run.id, os.getpid(), socket.gethostname())
    spec = parse_jobspec_text(run.spec_text, _facts(), run.spec_path)
    options = _options(poll_seconds, max_failovers, max_restarts, pending_timeout)
    runner = _runner(_backend(backend.value, ray_address), ledger, options)
    state = _supervise_foreground(runner, run.id, spec, yes=True)
    _say(f"run {run.id} ended: {state}")
    raise typer.Exit(_exit_for(state))


def _print_outcome(ledger: Ledger, run_id: str, fmt: OutFormat) -> None:
    summary = _run_summary(ledger, ledger.run(run_id))
    if fmt is OutFormat.json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        typer.echo(f"run {summary['run_id']}: {summary['state']}; spent ${summary['spent_usd']:,.2f} "
                   f"(expected ${summary['expected_total_usd'] or 0:,.2f}); {summary['message']}")


def _run_summary(ledger: Ledger, run: RunRow, *, detail: bool = False) -> dict[str, Any]:
    """A run as plain data: state, where, expected vs spent (USD), and with ``detail`` attempts and events."""
    now = _now()
    placements = {p.rank: p for p in ledger.placements(run.id)}
    attempts = ledger.attempts(run.id)
    last = attempts[-1] if attempts else None
    where = placements[last.rank] if last else placements.get(0)
    out: dict[str, Any] = {
        "run_id": run.id, "name": run.name, "state": _state_label(run), "backend": run.backend,
        "created_at": run.created_at.isoformat(), "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "placement": where.label if where else None,
        "price": (f"${where.usd_per_hour:,.2f}/h ({where.provider}, {where.price_source}, as of "
                  f"{where.price_as_of})") if where else None,
        "expected_total_usd": None if run.expected_total_usd is None else round(run.expected_total_usd, 2),
        "spent_usd": round(ledger.spent_usd(run.id, run.ended_at or now), 2), "currency": run.currency,
        "budget_total_usd": run.budget_total_usd, "attempts": len(attempts), "tags": run.tags,
        "message": run.message,
    }
    if detail:
        out["placements"] = [{"rank": p.rank + 1, "placement": p.label, "usd_per_hour": p.usd_per_hour,
                              "expected_total_usd": round(p.expected_total_usd, 2), "source": p.price_source,
                              "as_of": p.price_as_of} for p in placements.values()]
        out["attempts_detail"] = [{"n": a.n, "placement": placements[a.rank].label, "cluster": a.cluster_name,
                                   "started_at": a.started_at.isoformat(),
                                   "ended_at": a.ended_at.isoformat() if a.ended_at else None,
                                   "outcome": a.outcome, "restarts": a.restarts, "message": a.message}
                                  for a in attempts]
        out["events"] = [{"at": e.at.isoformat(), "attempt": e.attempt, "kind": e.kind, "message": e.message}
                         for e in ledger.events(run.id)]
    return out


def status(
    run_id: Annotated[str | None, typer.Argument(help="A run id (or unique prefix); default: recent runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Runs to list.")] = 20,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", case_sensitive=False)] = OutFormat.table,
) -> None:
    """Show recent runs, or one run's placements, attempts and events, with spend so far."""
    ledger = _ledger()
    if run_id is None:
        summaries = [_run_summary(ledger, r) for r in ledger.runs(limit=limit)]
        if fmt is OutFormat.json:
            typer.echo(json.dumps(summaries, indent=2))
        elif not summaries:
            typer.echo(f"no runs yet (ledger: {ledger.path})")
        else:
            _table(summaries, ["run_id", "name", "state", "placement", "spent_usd", "expected_total_usd"])
        return
    summary = _run_summary(ledger, ledger.run(run_id), detail=True)
    if fmt is OutFormat.json:
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
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for r in rows:
        table.add_row(*("-" if r[c] is None else (f"{r[c]:,.2f}" if isinstance(r[c], float) else str(r[c]))
                        for c in columns))
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def _open_attempt_handle(ledger: Ledger, run_id: str) -> tuple[int, Any] | None:
    from arbitrage.launch.runner import handle_from_attempt

    for attempt in reversed(ledger.attempts(run_id)):
        if attempt.handle is not None:
            return attempt.n, handle_from_attempt(attempt.handle)
    return None


def logs(
    run_id: Annotated[str, typer.Argument(help="A run id (or unique prefix).")],
    follow: Annotated[bool, typer.Option("--follow", "-F", help="Keep printing until the job ends.")] = False,
    ray_address: Annotated[str | None, typer.Option("--ray-address", hidden=True)] = None,
) -> None:
    """Print a run's job output (latest attempt); for a detached run, also where its supervisor log is."""
    ledger = _ledger()
    run = ledger.run(run_id)
    found = _open_attempt_handle(ledger, run.id)
    supervisor_log = _data_dir() / "runs" / f"{run.id}.log"
    if supervisor_log.exists():
        _say(f"supervisor log: {supervisor_log}")
    if found is None:
        raise GpuarbError(f"run {run.id} has not launched anything yet (state {run.state})")
    _, handle = found
    backend = _backend(handle.backend, ray_address)
    for line in backend.logs(handle, follow=follow):
        typer.echo(line.rstrip("\n"))


def down(
    run_id: Annotated[str, typer.Argument(help="A run id (or unique prefix).")],
    ray_address: Annotated[str | None, typer.Option("--ray-address", hidden=True)] = None,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", case_sensitive=False)] = OutFormat.table,
) -> None:
    """Stop a run and tear down its cluster; the ledger marks it cancelled (a finished run keeps its state)."""
    from arbitrage.ledger import EV_CANCELLED, EV_TORN_DOWN, RUN_CANCELLED

    ledger = _ledger()
    run = ledger.run(run_id)
    found = _open_attempt_handle(ledger, run.id)
    message = "cancelled by gpuarb down"
    if found is not None:
        n, handle = found
        backend = _backend(handle.backend, ray_address)
        backend.cancel(handle)
        backend.teardown(handle)
    open_attempts = [a for a in ledger.attempts(run.id) if a.ended_at is None]
    for attempt in open_attempts:
        ledger.end_attempt(run.id, attempt.n, "cancelled", _now(), message, kind=EV_CANCELLED,
                           run_state=None if run.terminal else RUN_CANCELLED)
    if not run.terminal and not open_attempts:
        ledger.record(run.id, EV_CANCELLED, _now(), message, state=RUN_CANCELLED)
    cluster = None
    if found is not None:
        cluster = handle.cluster_name
        ledger.record(run.id, EV_TORN_DOWN, _now(), f"{cluster} torn down by gpuarb down", attempt=n)
    state = ledger.run(run.id).state
    if fmt is OutFormat.json:
        typer.echo(json.dumps({"run_id": run.id, "state": state, "torn_down": cluster}))
    elif cluster is None:
        typer.echo(f"run {run.id}: nothing was launched; {state}")
    else:
        typer.echo(f"run {run.id}: {state}; {cluster} torn down")


def _parse_tags(tags: list[str]) -> dict[str, str]:
    out = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise SpecError(f"--tag: expected key=value, got {tag!r}")
        out[key] = value
    return out


def parse_since(text: str | None, now: datetime) -> datetime | None:
    """--since: an ISO date/time, or a duration back from now such as 7d, 12h, 30m."""
    if not text:
        return None
    import re

    match = re.fullmatch(r"(\d+(?:\.\d+)?)([dhm])", text.strip())
    if match:
        from datetime import timedelta

        amount, unit = float(match.group(1)), match.group(2)
        return now - timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SpecError(f"--since: cannot read {text!r} (use 2026-11-01, 2026-11-01T12:00Z or 7d/12h/30m)") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def history(
    tag: Annotated[list[str], typer.Option("--tag", help="Only runs with this tag, key=value (repeatable).")] = [],  # noqa: B006
    since: Annotated[str | None, typer.Option("--since", help="ISO date/time or 7d, 12h, 30m.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", case_sensitive=False)] = OutFormat.table,
) -> None:
    """Past runs with expected vs actual cost (USD), newest first, filtered by tag and time."""
    ledger = _ledger()
    runs = ledger.runs(since=parse_since(since, _now()), tags=_parse_tags(tag), limit=limit)
    summaries = [_run_summary(ledger, r) for r in runs]
    if fmt is OutFormat.json:
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


def reap(
    idle_minutes: Annotated[float, typer.Option("--idle-minutes", min=0,
                                                help="Tear down clusters idle longer than this.")] = 60,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List zombies; tear nothing down.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    backend: Annotated[list[BackendChoice], typer.Option("--backend", "-b", case_sensitive=False,
                                                         help="Backends to search (default: all usable).")] = [],  # noqa: B006
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", case_sensitive=False)] = OutFormat.table,
) -> None:
    """Find clusters gpuarb launched whose run is over, unsupervised, unknown or idle, and tear them down."""
    from arbitrage.launch.backend import BackendUnavailable, Handle
    from arbitrage.ledger import EV_INTERRUPTED, EV_TORN_DOWN, RUN_INTERRUPTED

    ledger = _ledger()
    owners: dict[str, tuple[RunRow, Any]] = {}
    for run in ledger.runs():
        for attempt in ledger.attempts(run.id):
            owners[attempt.cluster_name] = (run, attempt)
    zombies: list[tuple[Backend, Any, str, RunRow | None]] = []
    for name in [b.value for b in backend] or [b.value for b in BackendChoice]:
        try:
            impl = _backend(name)
        except (BackendUnavailable, ImportError) as exc:
            if backend:
                raise
            _say(f"info: {name}: skipped ({exc})")
            continue
        for cluster in impl.clusters():
            owner = owners.get(cluster.name)
            reason = _zombie_reason(cluster, owner, idle_minutes)
            if reason:
                zombies.append((impl, cluster, reason, owner[0] if owner else None))
    report = [{"cluster": c.name, "backend": b.name, "status": c.status, "run_id": r.id if r else None,
               "reason": why} for b, c, why, r in zombies]
    if fmt is OutFormat.json and dry_run:
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
        raise typer.Exit(1)
    for impl, cluster, why, run in zombies:
        impl.teardown(Handle(backend=impl.name, cluster_name=cluster.name))
        if run is not None:
            n = owners[cluster.name][1].n
            if not ledger.run(run.id).terminal:
                ledger.end_attempt(run.id, n, "interrupted", _now(), f"reaped: {why}", kind=EV_INTERRUPTED,
                                   run_state=RUN_INTERRUPTED)
            ledger.record(run.id, EV_TORN_DOWN, _now(), f"{cluster.name} torn down by gpuarb reap ({why})",
                          attempt=n)
        typer.echo(f"torn down {cluster.name}")
    if fmt is OutFormat.json:
        typer.echo(json.dumps(report, indent=2))


def _zombie_reason(cluster: Any, owner: tuple[RunRow, Any] | None, idle_minutes: float) -> str | None:
    """Why a gpuarb cluster should go, or None while its run is alive and it is busy."""
    if owner is None:
        return "no run in the ledger launched it"
    run, attempt = owner
    if run.terminal:
        return f"its run {run.id} is {run.state}"
    if attempt.ended_at is not None:
        return f"its attempt {attempt.n} of run {run.id} ended ({attempt.outcome})"
    if supervisor_alive(run) is False:
        return f"run {run.id} has no live supervisor (gpuarb was killed or detached)"
    if cluster.idle_minutes is not None and cluster.idle_minutes > idle_minutes:
        return f"idle for {cluster.idle_minutes:.0f} min (> {idle_minutes:g})"
    return None


def register(app: typer.Typer, guarded: Any) -> None:
    """Add the run-lifecycle commands to the main app, each wrapped by the CLI's error guard."""
    app.command(name="run")(guarded(run))
    app.command(name="status")(guarded(status))
    app.command(name="logs")(guarded(logs))
    app.command(name="down")(guarded(down))
    app.command(name="history")(guarded(history))
    app.command(name="reap")(guarded(reap))
    app.command(name="_supervise", hidden=True)(guarded(supervise))

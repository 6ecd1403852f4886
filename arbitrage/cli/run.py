"""`gpuarb run` (and the hidden `_supervise` a detached run starts): plan a job, launch it, watch it to the end.

Run exit codes: 0 succeeded (or detached/dry-run), 1 error, 2 invalid spec, 3 nothing feasible or no capacity,
4 over budget (plan) or stopped by the budget breaker, 5 the job failed, 7 --strict and a price source could not be
used (nothing launched), 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from arbitrage import app as usecases
from arbitrage.cli.common import (
    DEFAULT_BACKEND,
    BackendChoice,
    GpuHoursOption,
    GpusOption,
    HoursOption,
    InfraOption,
    NumNodesOption,
    Objective,
    ReferenceOption,
    RegionOption,
    SourceOption,
    StrictOption,
    TableOrJson,
    TableOrJsonOption,
    UseSpotOption,
    ZoneOption,
    bounded,
    guarded,
    overrides_of,
    say,
)
from arbitrage.errors import Interrupted
from arbitrage.money import format_amount
from arbitrage.params import MAX_FAILOVERS, MAX_PENDING_MINUTES, MAX_RESTARTS, POLL_SECONDS

_POLL = bounded(*POLL_SECONDS)
_PENDING = bounded(0.0, MAX_PENDING_MINUTES)

BACKEND_HELP = ("skypilot: launch on the planned cloud through SkyPilot; local: run under Ray on this machine "
                "(or on the Ray cluster at --ray-address), accounted at the planned placement's price.")


def _confirm_teardown(cluster: str) -> bool:
    try:
        return typer.confirm(f"\ngpuarb: tear down {cluster} now?", default=True)
    except (KeyboardInterrupt, typer.Abort):
        return True


def _run_on_server(server: Any, job: str, overrides: Any, backend: str, *, detach: bool, fmt: TableOrJson,
                   key: str | None, poll_seconds: float) -> None:
    """`gpuarb run` through the team server: submit, then (without --detach) follow its events to the end."""
    import time

    text, name = usecases.remote_spec(job, overrides, usecases.load_facts())
    summary, created = server.submit(text, name, backend=backend, idempotency_key=key)
    run_id = summary["run_id"]
    if not created:
        say(f"run {run_id}: already submitted with this idempotency key; nothing launched again")
    if detach:
        if fmt is TableOrJson.json:
            typer.echo(json.dumps({"run_id": run_id, "state": summary["state"], "detached": True,
                                   "expected_total_usd": summary["expected_total_usd"], "currency": "USD",
                                   "server": server.url}))
        else:
            typer.echo(run_id)
        return
    say(f"run {run_id}: {summary['name']}, expected {format_amount(summary['expected_total_usd'] or 0.0)}; "
        f"supervised by {server.url} (Ctrl-C leaves it running there)")
    seen = 0
    try:
        while True:
            detail = server.run(run_id)
            for event in detail["events"][seen:]:
                say(f"{event['kind']}: {event['message']}")
            seen = len(detail["events"])
            if detail["ended_at"] is not None:
                break
            time.sleep(min(poll_seconds, 5.0))
    except KeyboardInterrupt:
        raise Interrupted(f"run {run_id} goes on on the server: `gpuarb down {run_id}` stops it") from None
    _print_outcome({k: v for k, v in detail.items() if k not in ("placements", "attempts_detail", "events")},
                   str(detail["state"]).split(" ")[0], fmt)


def _print_outcome(summary: dict[str, Any], state: str, fmt: TableOrJson) -> None:
    """How a watched run ended (its summary, or one line), then the error its final state exits with."""
    if fmt is TableOrJson.json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        typer.echo(f"run {summary['run_id']}: {summary['state']}; spent {format_amount(summary['spent_usd'])} "
                   f"(expected {format_amount(summary['expected_total_usd'] or 0.0)}); {summary['message']}")
    outcome = usecases.run_outcome_error(state)
    if outcome is not None:
        raise outcome


@guarded
def run(
    job: Annotated[str, typer.Argument(help="Job spec YAML: any SkyPilot task, with or without an `arbitrage:` "
                                            "block.")],
    backend: Annotated[BackendChoice, typer.Option("--backend", "-b", case_sensitive=False,
                                                   help=BACKEND_HELP)] = DEFAULT_BACKEND,
    ray_address: Annotated[str | None, typer.Option("--ray-address",
                                                    help="Existing Ray cluster for --backend local "
                                                         "(e.g. http://head:8265).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the exact task that would launch; "
                                                           "launch nothing.")] = False,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Print the run id and return at once; a "
                                                               "background supervisor watches the run.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Never ask (Ctrl-C tears down without asking).")] = False,
    max_failovers: Annotated[int, typer.Option("--max-failovers", min=0, max=MAX_FAILOVERS,
                                               help="Further placements to try when one has no capacity.")] = 3,
    max_restarts: Annotated[int, typer.Option("--max-restarts", min=0, max=MAX_RESTARTS,
                                              help="Preemption restarts before the run is failed.")] = 10,
    pending_timeout: Annotated[float, typer.Option("--pending-timeout", callback=_PENDING,
                                                   help="Minutes a launch may stay pending (no capacity) "
                                                        "before failing over.")] = 30.0,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", callback=_POLL, hidden=True)] = 10.0,
    objective: Annotated[Objective, typer.Option("--objective", case_sensitive=False,
                                                 help="cost or time (as in `plan`).")] = Objective.cost,
    source: SourceOption = None,
    strict: StrictOption = False,
    fmt: TableOrJsonOption = TableOrJson.table,
    gpus: GpusOption = None,
    num_nodes: NumNodesOption = None,
    use_spot: UseSpotOption = None,
    infra: InfraOption = None,
    region: RegionOption = None,
    zone: ZoneOption = None,
    hours: HoursOption = None,
    gpu_hours: GpuHoursOption = None,
    reference: ReferenceOption = None,
    idempotency_key: Annotated[str | None, typer.Option(
        "--idempotency-key", envvar="GPUARB_IDEMPOTENCY_KEY",
        help="With GPUARB_SERVER: a key for this submission (e.g. the CI run id); the same key again returns that "
             "run and launches nothing.")] = None,
) -> None:
    """Plan a job and run it on the cheapest feasible placement, with failover, budget breaker and teardown.

    With GPUARB_SERVER and GPUARB_TOKEN set, the job is submitted to the team server, which supervises it to the
    end whether or not this command stays (--detach returns at once)."""
    overrides = overrides_of(gpus, num_nodes, use_spot, infra, region, zone, hours, gpu_hours, reference)
    server = None if dry_run else usecases.team_server()
    if server is not None:
        _run_on_server(server, job, overrides, backend.value, detach=detach, fmt=fmt, key=idempotency_key,
                       poll_seconds=poll_seconds)
        return
    prepared = usecases.prepare_run(job, usecases.load_facts(), backend=backend.value, ray_address=ray_address,
                                    source=source, objective=objective, max_failovers=max_failovers,
                                    check_backend=not dry_run, say=say, overrides=overrides, strict=strict)
    for note in prepared.spec.notes:
        say(f"note: {note}")
    if dry_run:
        shown = usecases.dry_run(prepared)
        if fmt is TableOrJson.json:
            typer.echo(json.dumps({"placement": shown.label, "backend": shown.backend, "task": shown.task}, indent=2))
        else:
            typer.echo(f"# {shown.label}\n# backend: {shown.backend}; nothing launched (--dry-run)")
            typer.echo(shown.task, nl=not shown.task.endswith("\n"))
        return
    options = usecases.run_options(poll_seconds=poll_seconds, max_failovers=max_failovers,
                                   max_restarts=max_restarts, pending_timeout=pending_timeout)
    ledger = usecases.open_ledger()
    run_id = usecases.submit_run(prepared, backend.value, ledger)
    best = prepared.best
    if detach:
        usecases.detach_run(ledger, run_id, backend.value, ray_address, options, spec_text=prepared.spec_text)
        if fmt is TableOrJson.json:
            typer.echo(json.dumps({"run_id": run_id, "state": "launching", "detached": True,
                                   "expected_total_usd": round(best.total_usd, 2), "currency": "USD"}))
        else:
            typer.echo(run_id)
        return
    say(f"run {run_id}: {prepared.spec.name}, expected ${best.total_usd:,.2f} over {best.expected_hours:.1f} h")
    runner = usecases.make_runner(prepared.backend, ledger, options, say)
    ask = not (yes or not sys.stdin.isatty())
    state = usecases.supervise_here(runner, run_id, prepared.spec, confirm_teardown=_confirm_teardown if ask else None,
                                    say=say)
    _print_outcome(usecases.run_summary(ledger, ledger.run(run_id)), state, fmt)


@guarded
def supervise(
    run_id: Annotated[str, typer.Argument()],
    backend: Annotated[BackendChoice, typer.Option("--backend")] = DEFAULT_BACKEND,
    ray_address: Annotated[str | None, typer.Option("--ray-address")] = None,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", callback=_POLL)] = 10.0,
    max_failovers: Annotated[int, typer.Option("--max-failovers", min=0, max=MAX_FAILOVERS)] = 3,
    max_restarts: Annotated[int, typer.Option("--max-restarts", min=0, max=MAX_RESTARTS)] = 10,
    pending_timeout: Annotated[float, typer.Option("--pending-timeout", callback=_PENDING)] = 30.0,
    spec_stdin: Annotated[bool, typer.Option("--spec-stdin", help="Read the job file (with its secrets) from "
                                                                  "standard input.")] = False,
) -> None:
    """Watch a detached run (started by `gpuarb run --detach`); refuses a run that has ended."""
    options = usecases.run_options(poll_seconds=poll_seconds, max_failovers=max_failovers,
                                   max_restarts=max_restarts, pending_timeout=pending_timeout)
    spec_text = sys.stdin.buffer.read(1 << 20).decode("utf-8", "replace") if spec_stdin else None
    state = usecases.resume_supervision(run_id, usecases.load_facts(), backend=backend.value,
                                        ray_address=ray_address, options=options, say=say, spec_text=spec_text)
    outcome = usecases.run_outcome_error(state)
    if outcome is not None:
        raise outcome


def register(app: typer.Typer) -> None:
    """Add `run` and the hidden `_supervise`."""
    app.command("run")(run)
    app.command("_supervise", hidden=True)(supervise)

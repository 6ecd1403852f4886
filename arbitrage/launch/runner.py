"""The runner: launch a planned run with failover, watch it (budget breaker, preemptions, restart guard),
tear it down, and record every step in the ledger.

It reads the run's placements back from the ledger, so a detached supervisor in another process and the
foreground CLI follow one code path. Time and sleep are injected: the lifecycle is testable without waiting.
While it supervises, a daemon thread writes the supervisor's heartbeat to the ledger (``Heartbeat``), so other
processes tell a live supervisor from a killed one by the ledger alone. Anything that goes wrong before the backend
has the job (a read-only checkpoint folder, a backend that cannot start) closes the attempt and fails the run with
its reason.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arbitrage import paths
from arbitrage.billing import LAUNCHED_WHERE, launched_usd_per_hour
from arbitrage.costmodel import CostBreakdown, Placement
from arbitrage.errors import GpuarbError
from arbitrage.launch.backend import (
    CLUSTER_CHECKPOINT_PATH,
    CLUSTER_PREFIX,
    Backend,
    CapacityError,
    CheckpointPlan,
    Handle,
    JobState,
    LaunchError,
    LaunchRequest,
    metrics_path,
    owned_capacity,
)
from arbitrage.ledger import HEARTBEAT_SECONDS, AttemptRow, Ledger, PlacementRow
from arbitrage.money import format_amount
from arbitrage.offers import Offer
from arbitrage.plural import plural
from arbitrage.runstate import EventKind, RunState
from arbitrage.units import parse_metrics

if TYPE_CHECKING:
    from arbitrage.jobspec import JobSpec

# Test hook: exit abruptly right after the named event is committed, to prove the ledger survives a crash.
CRASH_HOOK_ENV = "GPUARB_CRASH_AFTER"


@dataclass(frozen=True)
class RunOptions:
    """Limits and cadence of one supervised run."""

    max_failovers: int = 3  # further placements tried after the first one has no capacity
    max_restarts: int = 10  # preemption restarts before the run is failed (runaway guard)
    poll_seconds: float = 10.0
    idle_minutes_to_autostop: int = 30
    pending_timeout_minutes: float = 30.0  # still not running after this long: no capacity, fail over
    changeover_hours: float = 0.25  # launch + setup + restore before a new instance makes progress (spot policy)
    checkpoint_root: Path | None = None  # local checkpoint directories (local backend) live under it
    heartbeat_seconds: float = HEARTBEAT_SECONDS  # how often the supervisor's heartbeat is written (0: never)
    supervisor_token: str | None = None  # a server worker's claim (Ledger.claim_supervision); None: by pid


class Heartbeat:
    """While open, a daemon thread stamps the run's heartbeat (wall clock) in the ledger every ``every`` seconds.

    It writes through a connection of its own, so a backend call that blocks for minutes (a launch) does not stop
    it, and it dies with the process: a killed supervisor's heartbeat goes stale.
    """

    def __init__(self, ledger_url: Path | str, run_id: str, every: float, token: str | None = None) -> None:
        self.ledger_url, self.run_id, self.every, self.token = ledger_url, run_id, every, token
        self.pid = os.getpid()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self, ledger: Ledger) -> bool:
        """Write one heartbeat now; False when another supervisor has taken the run over."""
        return ledger.heartbeat(self.run_id, self.pid, datetime.now(timezone.utc), token=self.token)

    def __enter__(self) -> Heartbeat:
        with Ledger.open(self.ledger_url) as ledger:
            self.beat(ledger)
        self._thread = threading.Thread(target=self._loop, name=f"gpuarb-heartbeat-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        try:
            with Ledger.open(self.ledger_url) as ledger:
                while not self._stop.wait(self.every):
                    if not self.beat(ledger):
                        return
        except Exception:  # a ledger this thread cannot write: the main thread's writes will say why
            return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def placement_row(cost: CostBreakdown) -> dict[str, object]:
    """A planner CostBreakdown as the ledger's placement columns (prices per whole cluster, with provenance)."""
    p, o = cost.placement, cost.placement.offer
    return {
        "provider": o.provider, "region": o.region, "zone": o.zone, "instance_type": o.instance_type,
        "accelerator": o.accelerator, "gpus_per_node": o.gpus_per_node, "nodes": p.nodes, "spot": p.spot,
        "usd_per_hour": cost.hourly_usd, "expected_hours": cost.expected_hours,
        "expected_total_usd": cost.total_usd, "compute_usd": cost.compute_usd,
        "preemption_usd": cost.preemption_usd, "egress_in_usd": cost.egress_in_usd,
        "egress_out_usd": cost.egress_out_usd, "price_source": o.source, "price_as_of": o.as_of,
        "price_ref": o.price_ref,
    }


def placement_from_row(row: PlacementRow) -> Placement:
    """Rebuild the launchable part of a recorded placement (what SkyPilot or Ray needs to pin it)."""
    per_instance = row.usd_per_hour / row.nodes
    offer = Offer(
        provider=row.provider, region=row.region, zone=row.zone, instance_type=row.instance_type,
        accelerator=row.accelerator, gpus_per_node=row.gpus_per_node, gpu_memory_gb=0.0, vcpus=None, ram_gb=None,
        on_demand_usd_per_hour=None if row.spot else per_instance,
        spot_usd_per_hour=per_instance if row.spot else None,
        interconnect="none", interconnect_gbps=0.0, source=row.price_source,  # type: ignore[arg-type]
        as_of=row.price_as_of, price_ref=row.price_ref)
    return Placement(offer, row.nodes, spot=row.spot, preference=row.rank)


SPOT_RISK_KEY = "spot_risk"


def spot_risk_data(placements: Sequence[CostBreakdown], confidence: float | None,
                   prior_hours: float) -> dict[str, Any]:
    """Event data recorded at submission so any supervisor can ask P(meet the deadline on spot) at a preemption:
    per spot placement rank, the plan's rate and its source, the work as the cost model counts it, the segment,
    restart and provisioning hours (`spotrisk.SpotRisk`), and the job's deadline confidence."""
    from arbitrage.spotrisk import SpotRisk

    rows = {}
    for rank, c in enumerate(placements):
        if c.placement.spot:
            rows[str(rank)] = SpotRisk(
                preemptions_per_hour=c.preemptions_per_hour, restart_hours=c.restart_hours,
                segment_hours=c.segment_hours, work_hours=c.work_hours + c.checkpoint_hours, nodes=c.placement.nodes,
                provision_hours=c.provision_hours, source=c.preemption_source, prior_hours=prior_hours).as_dict()
    return {SPOT_RISK_KEY: {"deadline_confidence": confidence, "placements": rows}}


def recorded_spot_risk(ledger: Ledger, run_id: str) -> dict[str, Any] | None:
    """The spot risk recorded for a run at submission (`spot_risk_data`, in the `planned` event's data), or None
    for a run recorded without it."""
    for event in ledger.events(run_id):
        found = event.data.get(SPOT_RISK_KEY)
        if isinstance(found, dict) and isinstance(found.get("placements"), dict):
            return found
    return None


def cluster_name(run_id: str, attempt: int) -> str:
    """The cluster of one attempt: prefixed so `gpuarb reap` knows it, short and lowercase for every cloud."""
    return f"{CLUSTER_PREFIX}{run_id}-a{attempt}".lower()


def _is_bucket(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def checkpoint_plan(spec: JobSpec, run_id: str, *, backend: Backend, root: Path | None) -> CheckpointPlan | None:
    """Where the job's checkpoints persist and where it sees them, on ``backend``.

    Cloud backends mount the spec's bucket URI at a fixed path. A backend with ``local_checkpoints`` uses a local
    directory: the spec's own (file:// or a path, relative to the spec file) or one per run under ``root``.
    """
    interval = spec.checkpoint.interval_minutes if spec.checkpoint else 10.0
    if not backend.local_checkpoints:
        if spec.checkpoint is None:
            return None
        return CheckpointPlan(uri=spec.checkpoint.uri, mount_path=CLUSTER_CHECKPOINT_PATH, interval_minutes=interval)
    if spec.checkpoint is not None and not _is_bucket(spec.checkpoint.uri):
        raw = spec.checkpoint.uri.removeprefix("file://")
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = (Path(spec.path).resolve().parent / path).resolve()
    else:
        if root is None:
            raise ValueError("a local checkpoint root is required for the local backend")
        path = root / run_id
    return CheckpointPlan(uri=path.as_uri(), mount_path=str(path), interval_minutes=interval)


def launched_price_note(handle: Handle, row: PlacementRow) -> str:
    """'; launched at $X/h in WHERE (planned $Y/h)' when the backend recorded a launched price that differs from
    the plan's by more than half a percent (billing uses it: arbitrage/billing.py), else ''."""
    launched = launched_usd_per_hour(handle.to_dict())
    if launched is None or abs(launched - row.usd_per_hour) <= 0.005 * row.usd_per_hour:
        return ""
    where = handle.detail.get(LAUNCHED_WHERE, "")
    return (f"; launched at ${launched:,.2f}/h{' in ' + where if where else ''} (planned ${row.usd_per_hour:,.2f}/h;"
            " billed at the launched price)")


class Runner:
    """Supervises one run at a time: launch with failover, watch, tear down; the ledger records it all."""

    def __init__(self, backend: Backend, ledger: Ledger, *, clock: Callable[[], datetime],
                 sleep: Callable[[float], None], options: RunOptions, say: Callable[[str], None]) -> None:
        self.backend = backend
        self.ledger = ledger
        self.clock = clock
        self.sleep = sleep
        self.options = options
        self.say = say
        self.handle: Handle | None = None  # the live attempt, for interrupt handling
        self._attempt_checkpoint: CheckpointPlan | None = None  # where the live attempt's metrics file is
        self.attempt: int | None = None
        self._last_verdict = ""  # the last spot verdict's message (spotrisk.spot_verdict), for the attempt's end

    # -- recording ---------------------------------------------------------------------------------

    def _crash_hook(self, kind: str) -> None:
        if os.environ.get(CRASH_HOOK_ENV) == kind:
            os._exit(70)

    def _record(self, run_id: str, kind: str, message: str, *, attempt: int | None = None,
                state: str | None = None) -> None:
        self.ledger.record(run_id, kind, self.clock(), message, attempt=attempt, state=state)
        self._crash_hook(kind)

    def _end(self, run_id: str, n: int, outcome: str, message: str, *, kind: str, state: str | None = None,
             restarts: int | None = None) -> None:
        self._collect_work(run_id, n, self._attempt_checkpoint)  # the work it reported, before its end event
        self._attempt_checkpoint = None
        self.ledger.end_attempt(run_id, n, outcome, self.clock(), message, kind=kind, run_state=state,
                                restarts=restarts)
        self._crash_hook(kind)

    def _teardown(self, run_id: str, handle: Handle, n: int) -> None:
        try:
            self.backend.teardown(handle)
        except Exception as exc:  # a failed teardown must be loud, never lost
            message = f"teardown of {handle.cluster_name} failed: {_one_line(exc)}; run `gpuarb down {run_id}`"
            self._record(run_id, EventKind.NOTE, message, attempt=n)
            self.say(f"warning: {message}")
            return
        self._record(run_id, EventKind.TORN_DOWN, f"{handle.cluster_name} torn down", attempt=n)

    # -- the lifecycle -----------------------------------------------------------------------------

    def supervise(self, run_id: str, spec: JobSpec) -> str:
        """Launch the run's placements in rank order until one runs, watch it to the end; returns the run state.

        The run's heartbeat is written all along (RunOptions.heartbeat_seconds).
        """
        if self.options.heartbeat_seconds <= 0:
            return self._supervise(run_id, spec)
        with Heartbeat(self.ledger.url, run_id, self.options.heartbeat_seconds, self.options.supervisor_token):
            return self._supervise(run_id, spec)

    def _supervise(self, run_id: str, spec: JobSpec) -> str:
        rows = self.ledger.placements(run_id)
        ranks = [r.rank for r in rows][: self.options.max_failovers + 1]
        restarts = 0
        position = 0
        launched_before = False
        # A supervisor that died (a server killed -9, a host lost) left the run mid-way: take it up where it was.
        earlier = self.ledger.attempts(run_id)
        adopt = next((a for a in reversed(earlier) if a.ended_at is None), None)
        if earlier:
            launched_before = any(a.running_at is not None for a in earlier)
            restarts = sum(a.outcome in ("preempted", "switch") for a in earlier)
            last = adopt or earlier[-1]
            if last.rank not in ranks and any(r.rank == last.rank for r in rows):
                ranks.append(last.rank)
            position = ranks.index(last.rank) if last.rank in ranks else len(ranks)
            if adopt is None and last.outcome == "no-capacity":
                position += 1
        while True:
            if position >= len(ranks):
                tried = ", ".join(rows[r].label for r in ranks) or "no placement"
                message = f"no capacity on any of {plural(len(ranks), 'placement')} tried ({tried})"
                self._record(run_id, EventKind.FAILED, message, state=RunState.NO_CAPACITY)
                return RunState.NO_CAPACITY
            row = rows[ranks[position]]
            if adopt is not None:
                outcome = self._adopt(run_id, spec, row, adopt, resume=launched_before)
                adopt = None
            else:
                outcome = self._attempt(run_id, spec, row, resume=launched_before)
            if outcome == "capacity":
                position += 1
                if position < len(ranks):
                    self._record(run_id, EventKind.FAILED_OVER,
                                 f"trying #{position + 1}: {rows[ranks[position]].label}")
                continue
            launched_before = True
            if outcome in ("preempted", "switch"):
                restarts += 1
                if restarts > self.options.max_restarts:
                    message = f"gave up after {plural(self.options.max_restarts, 'restart')} (max_restarts)"
                    self._record(run_id, EventKind.FAILED, message, state=RunState.FAILED)
                    return RunState.FAILED
                if outcome == "switch" or (row.spot and self._spot_decision(run_id, spec, row) == "on_demand"):
                    on_demand = next((r.rank for r in rows if not r.spot), None)
                    if on_demand is not None and on_demand not in ranks:
                        ranks.append(on_demand)  # the spot fallback recorded beyond the failover list
                    fallback = None if on_demand is None else ranks.index(on_demand)
                    if fallback is not None and fallback != position:
                        position = fallback
                        self._record(run_id, EventKind.NOTE, f"deadline at risk: resuming on-demand on "
                                                             f"#{fallback + 1}: {rows[ranks[fallback]].label}")
                continue
            return outcome

    def _spot_decision(self, run_id: str, spec: JobSpec, row: PlacementRow) -> str:
        """At a preemption: may the spot run stay on spot? Asks the plan's own preemption model, and records why.

        With the spot risk recorded at submission (`spot_risk_data`): stay while P(meet the deadline on spot) >=
        the job's deadline confidence (`spotrisk.spot_verdict`, the plan's rate updated with this run's own
        preemptions) and the deadline-aware spot policy's safety margin holds (`spotpolicy.decide`: on the public
        traces the probability alone missed a deadline, see BENCHMARKS.md); the ledger says why either way. A run
        recorded without the risk asks the spot policy alone. No deadline: spot is always fine.
        """
        if spec.deadline is None:
            return "spot"
        run = self.ledger.run(run_id)
        now = self.clock()
        total_hours = spec.deadline.hours_left(run.created_at)
        from arbitrage.spotpolicy import SpotState, decide, start_spot_margin_hours

        interval = (spec.checkpoint.interval_minutes if spec.checkpoint else 60.0) / 60
        attempts = [a for a in self.ledger.attempts(run_id) if a.running_at is not None]
        ran = sum(((a.ended_at or now) - a.running_at).total_seconds() / 3600 for a in attempts  # type: ignore[operator]
                  if a.running_at is not None)
        lost = interval * sum((a.outcome == "preempted") + a.restarts for a in attempts)
        state = SpotState(
            remaining_work_hours=max(0.0, row.expected_hours - ran + lost),
            hours_to_deadline=total_hours - (now - run.created_at).total_seconds() / 3600,
            total_work_hours=row.expected_hours, total_hours=total_hours,
            changeover_hours=self.options.changeover_hours, spot_available=True, mode="wait",
            checkpoint_interval_hours=interval, decision_interval_hours=self.options.poll_seconds / 3600)
        margin = decide(state)
        recorded = recorded_spot_risk(self.ledger, run_id)
        if recorded is None or str(row.rank) not in recorded["placements"]:
            return margin
        verdict = self._spot_verdict(run_id, row, recorded, state.hours_to_deadline, now)
        if verdict == "spot" and margin == "on_demand":  # the probability alone is not the only guard
            message = (f"deadline at risk: leaving spot for on-demand: the spot policy's safety margin is gone "
                       f"({state.slack_hours:.2f} h of slack < {start_spot_margin_hours(state):.2f} h, "
                       "arbitrage/spotpolicy.py)")
            self._last_verdict = message
            self._record(run_id, EventKind.NOTE, message)
            self.say(message)
        return "spot" if verdict == "spot" and margin != "on_demand" else "on_demand"

    def _spot_verdict(self, run_id: str, row: PlacementRow, recorded: dict[str, Any], hours_to_deadline: float,
                      now: datetime) -> str:
        """P(meet the deadline on spot) from the recorded model and this run's attempts; the verdict is a NOTE."""
        from arbitrage.spotrisk import SpotRisk, spot_verdict

        risk = SpotRisk.from_dict(recorded["placements"][str(row.rank)])
        rows = {r.rank: r for r in self.ledger.placements(run_id)}
        attempts = [a for a in self.ledger.attempts(run_id) if a.running_at is not None]
        ran = preemptions = 0.0
        spot_hours = 0.0
        for a in attempts:
            hours = max(0.0, ((a.ended_at or now) - a.running_at).total_seconds() / 3600)  # type: ignore[operator]
            ran += hours
            hit = (a.outcome == "preempted") + max(0, a.restarts)
            preemptions += hit
            placed = rows.get(a.rank)
            if placed is not None and placed.spot:
                spot_hours += hours * placed.nodes
        # Work done: hours run, less each attempt's provisioning and, per preemption, a retried segment + restart.
        done = max(0.0, ran - len(attempts) * risk.provision_hours
                   - preemptions * (risk.segment_hours + risk.restart_hours))
        confidence = float(recorded.get("deadline_confidence") or 0.95)
        verdict = spot_verdict(risk, hours_to_deadline=hours_to_deadline, done_work_hours=done,
                               preemptions=int(preemptions), spot_instance_hours=spot_hours, confidence=confidence)
        self._last_verdict = verdict.message
        self._record(run_id, EventKind.NOTE, verdict.message)
        self.say(verdict.message)
        return "spot" if verdict.stay else "on_demand"

    def _attempt(self, run_id: str, spec: JobSpec, row: PlacementRow, *, resume: bool) -> str:
        """One launch and watch; returns 'capacity', 'preempted' or the run's final state."""
        now = self.clock()
        n = self.ledger.start_attempt(run_id, row.rank, lambda k: cluster_name(run_id, k), now)
        name = cluster_name(run_id, n)
        local = self.backend.local_checkpoints
        self.attempt = n
        try:
            ckpt = checkpoint_plan(spec, run_id, backend=self.backend, root=self.options.checkpoint_root)
            if ckpt is not None and local:
                paths.private_dir(Path(ckpt.mount_path))
            req = LaunchRequest(run_id=run_id, attempt=n, cluster_name=name, spec=spec,
                                placement=placement_from_row(row), checkpoint=ckpt, resume=resume,
                                idle_minutes_to_autostop=self.options.idle_minutes_to_autostop)
            self.say(f"launching attempt {n} on #{row.rank + 1}: {row.label} (${row.usd_per_hour:,.2f}/h, "
                     f"{row.price_source} price as of {row.price_as_of})")
            handle = self.backend.launch(req)
        except CapacityError as exc:
            self._end(run_id, n, "no-capacity", _one_line(exc), kind=EventKind.LAUNCH_FAILED)
            self.say(f"no capacity: {_one_line(exc)}")
            self._teardown_by_name(run_id, name, n)
            return "capacity"
        except LaunchError as exc:
            self._end(run_id, n, "launch-error", _one_line(exc), kind=EventKind.FAILED, state=RunState.FAILED)
            self.say(f"launch failed: {_one_line(exc)}")
            self._teardown_by_name(run_id, name, n)
            return RunState.FAILED
        except (GpuarbError, OSError, ValueError, RuntimeError) as exc:
            # Before the backend had the job (a read-only checkpoint folder, a backend that cannot start here):
            # the attempt is closed and the run fails with the reason, never left launching with spend growing.
            message = f"launch failed before the job started: {_one_line(exc)}"
            self._end(run_id, n, "launch-error", message, kind=EventKind.FAILED, state=RunState.FAILED)
            self.say(message)
            self._teardown_by_name(run_id, name, n)
            return RunState.FAILED
        self.handle = handle
        where = "" if ckpt is None else f"; checkpoints in {ckpt.mount_path if local else ckpt.uri}"
        self.ledger.attempt_launched(run_id, n, handle.to_dict(), self.clock(),
                                     f"{row.label} as {handle.cluster_name}{where}{launched_price_note(handle, row)}")
        self._crash_hook("launched")
        if resume:
            self._record(run_id, EventKind.RESUMED, "resumed from the last checkpoint", attempt=n)
        else:
            self.ledger.charge_egress(run_id, egress_in_usd=row.egress_in_usd)
        self._attempt_checkpoint = ckpt  # the job's metrics file is read back before its cluster goes
        result = self._watch(run_id, spec, n, handle, row)
        self.handle = None
        return result

    def _adopt(self, run_id: str, spec: JobSpec, row: PlacementRow, attempt: AttemptRow, *, resume: bool) -> str:
        """Take up an attempt a dead supervisor left open: watch its job when the backend had it (its handle is in
        the ledger), else close it, make sure nothing half-launched bills, and launch again."""
        host = socket.gethostname()
        self.attempt = attempt.n
        if attempt.handle is None:
            message = f"supervision resumed on {host}: attempt {attempt.n} never reached the backend; launching again"
            self._end(run_id, attempt.n, "abandoned", message, kind=EventKind.NOTE)
            self._teardown_by_name(run_id, attempt.cluster_name, attempt.n)
            return self._attempt(run_id, spec, row, resume=resume)
        handle = Handle.from_dict(attempt.handle)
        self.handle = handle
        self._attempt_checkpoint = checkpoint_plan(spec, run_id, backend=self.backend,
                                                   root=self.options.checkpoint_root)
        self._record(run_id, EventKind.NOTE, f"supervision resumed on {host}: watching attempt {attempt.n} "
                                             f"({handle.cluster_name})", attempt=attempt.n)
        result = self._watch(run_id, spec, attempt.n, handle, row)
        self.handle = None
        return result

    def _collect_work(self, run_id: str, n: int, ckpt: CheckpointPlan | None) -> None:
        """Read the job's GPUARB_METRICS file back after an attempt and record the work it reports (its lines are
        increments; the running totals replace earlier ones). Only where checkpoints are on this machine: a
        cloud job's file is in its bucket."""
        if ckpt is None or not self.backend.local_checkpoints:
            return
        path = Path(metrics_path(ckpt))
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                done = parse_metrics(fh)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.say(f"warning: cannot read the job's metrics file {path}: {exc.strerror or exc}")
            return
        if done.bad_lines:
            what = "is not a JSON count and was" if done.bad_lines == 1 else "are not JSON counts and were"
            self.say(f"warning: {path}: {plural(done.bad_lines, 'line')} {what} skipped "
                     f"(first: {done.first_bad!r}; expected e.g. {{\"tokens\": 123456}})")
        if done.reported:
            self.ledger.set_work(run_id, tokens=done.tokens, tasks=done.tasks)
            tasks = f", {plural(round(done.tasks), 'task')}" if done.tasks else ""
            self._record(run_id, EventKind.NOTE, f"work reported so far: {plural(round(done.tokens), 'token')}{tasks} "
                                                 f"({plural(done.lines, 'metrics line')} in {path.name})", attempt=n)

    def _teardown_by_name(self, run_id: str, name: str, n: int) -> None:
        """After a failed launch, make sure nothing half-provisioned is left billing."""
        self._teardown(run_id, Handle(backend=self.backend.name, cluster_name=name), n)

    def _watch(self, run_id: str, spec: JobSpec, n: int, handle: Handle, row: PlacementRow) -> str:
        budget = spec.budget.max_total_usd
        seen_restarts = 0
        recovering = False
        launched_at = self.clock()
        while True:
            status = self.backend.status(handle)
            now = self.clock()
            waited_minutes = (now - launched_at).total_seconds() / 60
            if status.state == JobState.PENDING and seen_restarts == 0 and \
                    waited_minutes > self.options.pending_timeout_minutes:
                # A pinned spot request can wait for capacity forever: give up on this placement, fail over.
                message = (f"{row.label}: still not running after {waited_minutes:.0f} min "
                           f"(pending timeout {self.options.pending_timeout_minutes:g} min); treated as no capacity")
                self.say(message)
                self._stop(handle)
                self._end(run_id, n, "no-capacity", message, kind=EventKind.LAUNCH_FAILED, state=RunState.LAUNCHING)
                self._teardown(run_id, handle, n)
                return "capacity"
            recorded = self.ledger.run(run_id)
            if recorded.state == RunState.CANCELLED:  # `gpuarb down` from another process
                self._end(run_id, n, "cancelled", recorded.message or "cancelled by gpuarb down",
                          kind=EventKind.CANCELLED)
                self._teardown(run_id, handle, n)
                return RunState.CANCELLED
            if recorded.state == RunState.BUDGET_STOPPED:  # the team server's breaker: a team cap was reached
                self.say(recorded.message)
                self._stop(handle)
                self._end(run_id, n, "budget-stopped", recorded.message, kind=EventKind.BUDGET_STOPPED,
                          restarts=seen_restarts)
                self._teardown(run_id, handle, n)
                return RunState.BUDGET_STOPPED
            if status.restarts > seen_restarts:  # a managed job recovered on its own
                for _ in range(status.restarts - seen_restarts):
                    self._record(run_id, EventKind.PREEMPTED, status.message or "preempted; the backend is recovering",
                                 attempt=n, state=RunState.RECOVERING)
                seen_restarts = status.restarts
                self.ledger.set_restarts(run_id, n, seen_restarts)
                recovering = True
                has_on_demand = any(not r.spot for r in self.ledger.placements(run_id))
                if row.spot and has_on_demand and self._spot_decision(run_id, spec, row) == "on_demand":
                    message = self._last_verdict or "deadline at risk after a preemption: leaving spot for on-demand"
                    self.say(message)
                    self._stop(handle)
                    self._end(run_id, n, "switched", message, kind=EventKind.NOTE, state=RunState.RECOVERING,
                              restarts=seen_restarts)
                    self._teardown(run_id, handle, n)
                    return "switch"
                if seen_restarts > self.options.max_restarts:
                    message = f"gave up after {plural(self.options.max_restarts, 'restart')} (max_restarts)"
                    self._stop(handle)
                    self._end(run_id, n, "restarts-exceeded", message, kind=EventKind.FAILED, state=RunState.FAILED,
                              restarts=seen_restarts)
                    self._teardown(run_id, handle, n)
                    return RunState.FAILED
            if recovering and status.state == JobState.RUNNING:
                self._record(run_id, EventKind.RESUMED, "running again after recovery", attempt=n,
                             state=RunState.RUNNING)
                recovering = False
            if status.state == JobState.SUCCEEDED:
                self.ledger.charge_egress(run_id, egress_out_usd=row.egress_out_usd)
                self._end(run_id, n, "succeeded", status.message or "job finished", kind=EventKind.FINISHED,
                          state=RunState.SUCCEEDED, restarts=seen_restarts)
                self._teardown(run_id, handle, n)
                return RunState.SUCCEEDED
            if status.state == JobState.PREEMPTED:
                self._end(run_id, n, "preempted", status.message or "job stopped from outside",
                          kind=EventKind.PREEMPTED, state=RunState.RECOVERING, restarts=seen_restarts)
                self.say(f"preempted: {status.message or 'job stopped from outside'}; resuming")
                self._teardown(run_id, handle, n)
                return "preempted"
            if status.state in (JobState.FAILED, JobState.CANCELLED):
                outcome = "failed" if status.state == JobState.FAILED else "cancelled"
                state = RunState.FAILED if status.state == JobState.FAILED else RunState.CANCELLED
                self._end(run_id, n, outcome, status.message or f"job {outcome}",
                          kind=EventKind.FAILED if state == RunState.FAILED else EventKind.CANCELLED, state=state,
                          restarts=seen_restarts)
                self._teardown(run_id, handle, n)
                return state
            spent = self.ledger.spent_usd(run_id, now)
            if budget is not None and spent >= budget:
                message = (f"budget reached: {format_amount(spent)} spent of {format_amount(budget)} "
                           "(max_total_usd)")
                self.say(message)
                self._stop(handle)
                self._end(run_id, n, "budget-stopped", message, kind=EventKind.BUDGET_STOPPED,
                          state=RunState.BUDGET_STOPPED, restarts=seen_restarts)
                self._teardown(run_id, handle, n)
                return RunState.BUDGET_STOPPED
            self.sleep(self.options.poll_seconds)

    def _stop(self, handle: Handle) -> None:
        try:
            self.backend.cancel(handle)
        except Exception as exc:  # teardown follows and deletes the cluster anyway
            self.say(f"warning: cancel of {handle.cluster_name} failed: {_one_line(exc)}")

    def interrupt(self, run_id: str, *, teardown: bool) -> None:
        """The supervisor is stopping (Ctrl-C, SIGTERM): tear the cluster down, or say loudly that it is left up."""
        handle, n = self.handle, self.attempt
        if handle is None or n is None:
            self._record(run_id, EventKind.INTERRUPTED, "interrupted before launch", attempt=n,
                         state=RunState.INTERRUPTED)
            if n is not None:
                self._teardown_by_name(run_id, cluster_name(run_id, n), n)
            return
        if teardown:
            self._stop(handle)
            self._end(run_id, n, "interrupted", "interrupted; cluster torn down", kind=EventKind.INTERRUPTED,
                      state=RunState.INTERRUPTED)
            self._teardown(run_id, handle, n)
        else:
            message = (f"supervisor stopped; {handle.cluster_name} left running: "
                       f"`gpuarb down {run_id}` stops it, `gpuarb reap` finds it")
            self._record(run_id, EventKind.NOTE, message, attempt=n, state=RunState.RUNNING)
            self.ledger.set_supervisor(run_id, None, None)


def launchable(backend: Backend, placements: Sequence[CostBreakdown],
               limit: int) -> tuple[list[CostBreakdown], list[str]]:
    """Up to ``limit`` planned placements the backend can launch, one per distinct launch; and why others were
    skipped.

    A backend that does not pin placements runs one: owned capacity when the plan has it, else a rehearsal of #1.
    Otherwise placements with equal ``launch_key`` are one launch (the first is kept), and a None key is skipped.
    """
    if not backend.pins_placement:
        owned = [c for c in placements if owned_capacity(c.placement)]
        return list(owned or placements)[:1], []
    chosen: list[CostBreakdown] = []
    seen: set[object] = set()
    skipped: list[str] = []
    for cost in placements:
        if len(chosen) >= limit:
            break
        key = backend.launch_key(cost.placement)
        if key is None:
            o = cost.placement.offer
            skipped.append(f"{o.provider} {o.instance_type}: {backend.name} cannot launch it")
            continue
        if key in seen:
            continue  # e.g. AWS zones of one region: the same SkyPilot launch
        seen.add(key)
        chosen.append(cost)
    return chosen, skipped


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

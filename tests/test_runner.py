"""The run lifecycle against the scripted FakeBackend: failover, preemption restarts, budget breaker, teardown.

The backend is the only stand-in (it replaces the clouds); runner and ledger logic are real.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import NOW, make_offer, make_spec

from arbitrage import ledger as L
from arbitrage.costmodel import Placement, estimate
from arbitrage.jobspec import Budget, Checkpoint
from arbitrage.launch.backend import JobState, JobStatus, gpuarb_envs
from arbitrage.launch.fake import FakeBackend
from arbitrage.launch.runner import Runner, RunOptions, checkpoint_plan, placement_row
from arbitrage.runstate import EventKind, RunState
from arbitrage.spotrisk import SpotRate


class FakeClock:
    """Time that moves only when the runner sleeps."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


RUNNING = JobStatus(JobState.RUNNING)
DONE = JobStatus(JobState.SUCCEEDED, message="exit 0")


def _setup(tmp_path: Path, facts, backend: FakeBackend, *, budget: float | None = None, itypes=("a", "b", "c"),
           spec_overrides=None, max_restarts: int = 10, poll_seconds: float = 600.0):
    spec = make_spec(budget=Budget(max_total_usd=budget), checkpoint=Checkpoint("s3://b/ck", 10.0),
                     **(spec_overrides or {}))
    costs = [estimate(spec, Placement(make_offer(instance_type=t, on_demand_usd_per_hour=40.0 + i), 1, spot=False),
                      facts) for i, t in enumerate(itypes)]
    ledger = L.Ledger.open(tmp_path / "ledger.sqlite3")
    run_id = ledger.create_run(name=spec.name, spec_path="job.yaml", spec_text="name: t", backend=backend.name,
                               now=NOW, placements=[placement_row(c) for c in costs], tags={"team": "r"},
                               budget_total_usd=budget, budget_hourly_usd=None)
    clock = FakeClock()
    runner = Runner(backend, ledger, clock=clock, sleep=clock.sleep,
                    options=RunOptions(poll_seconds=poll_seconds, max_restarts=max_restarts,
                                       checkpoint_root=tmp_path / "ck"), say=lambda m: None)
    return spec, ledger, run_id, runner, clock


def _kinds(ledger: L.Ledger, run_id: str) -> list[str]:
    return [e.kind for e in ledger.events(run_id)]


def test_success_tears_down_and_records_cost(tmp_path, facts):
    backend = FakeBackend(scripts=[[RUNNING, RUNNING, DONE]])
    spec, ledger, run_id, runner, clock = _setup(tmp_path, facts, backend)
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    assert backend.torn_down == [backend.launched[0].cluster_name]
    assert _kinds(ledger, run_id) == ["planned", "launched", "finished", "torn-down"]
    # two polls of 600 s each at $40/h = $13.33 of compute
    assert ledger.spent_usd(run_id, clock.now) == pytest.approx(40.0 * 1200 / 3600)
    assert ledger.run(run_id).ended_at == clock.now
    assert ledger.check() == []


def test_a_launch_that_landed_at_another_price_is_billed_and_logged_at_it(tmp_path, facts):
    # SkyPilot chose another zone than the one priced ($40/h planned): the backend records $44/h there
    backend = FakeBackend(scripts=[[RUNNING, RUNNING, DONE]],
                          launched_detail={"launched_usd_per_hour": "44.0", "launched_where": "aws/us-east-1/b a"})
    spec, ledger, run_id, runner, clock = _setup(tmp_path, facts, backend)
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    assert ledger.spent_usd(run_id, clock.now) == pytest.approx(44.0 * 1200 / 3600)
    launched = next(e for e in ledger.events(run_id) if e.kind == "launched")
    assert "launched at $44.00/h in aws/us-east-1/b a (planned $40.00/h" in launched.message


def test_a_launch_at_the_planned_price_says_nothing_more(tmp_path, facts):
    backend = FakeBackend(scripts=[[DONE]], launched_detail={"launched_usd_per_hour": "40.1"})  # within 0.5%
    spec, ledger, run_id, runner, _clock = _setup(tmp_path, facts, backend)
    runner.supervise(run_id, spec)
    assert all("launched at" not in e.message for e in ledger.events(run_id))


def test_launch_request_pins_placement_and_checkpoint_env(tmp_path, facts):
    backend = FakeBackend(scripts=[[DONE]])
    spec, _ledger, run_id, runner, _ = _setup(tmp_path, facts, backend)
    runner.supervise(run_id, spec)
    req = backend.launched[0]
    assert req.placement.offer.instance_type == "a" and not req.placement.spot
    assert req.cluster_name == f"gpuarb-{run_id}-a1"
    envs = gpuarb_envs(req)
    assert envs["GPUARB_CHECKPOINT_DIR"] == "/gpuarb/checkpoints"
    assert envs["GPUARB_CHECKPOINT_INTERVAL_SECONDS"] == "600"
    assert envs["GPUARB_RESUME"] == "0" and envs["GPUARB_RUN_ID"] == run_id


def test_capacity_errors_fail_over_in_rank_order(tmp_path, facts):
    backend = FakeBackend(no_capacity={"a", "b"}, scripts=[[DONE]])
    spec, ledger, run_id, runner, _ = _setup(tmp_path, facts, backend)
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    assert [r.placement.offer.instance_type for r in backend.launched] == ["c"]
    attempts = ledger.attempts(run_id)
    assert [(a.rank, a.outcome) for a in attempts] == [(0, "no-capacity"), (1, "no-capacity"), (2, "succeeded")]
    assert _kinds(ledger, run_id).count("failed-over") == 2


def test_no_capacity_anywhere_ends_no_capacity(tmp_path, facts):
    backend = FakeBackend(no_capacity={"a", "b", "c"})
    spec, ledger, run_id, runner, _ = _setup(tmp_path, facts, backend)
    assert runner.supervise(run_id, spec) == RunState.NO_CAPACITY
    assert "no capacity on any of 3 placements" in ledger.run(run_id).message


def test_other_launch_errors_do_not_fail_over(tmp_path, facts):
    backend = FakeBackend(broken={"a"})
    spec, ledger, run_id, runner, _ = _setup(tmp_path, facts, backend)
    assert runner.supervise(run_id, spec) == RunState.FAILED
    assert "invalid credentials" in ledger.run(run_id).message
    assert backend.launched == []


def test_preemption_relaunches_with_resume_on_same_placement(tmp_path, facts):
    backend = FakeBackend(scripts=[[RUNNING, JobStatus(JobState.PREEMPTED, message="spot reclaimed")],
                                       [RUNNING, DONE]])
    spec, ledger, run_id, runner, _ = _setup(tmp_path, facts, backend)
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    first, second = backend.launched
    assert first.placement.offer.instance_type == second.placement.offer.instance_type == "a"
    assert second.resume and gpuarb_envs(second)["GPUARB_RESUME"] == "1" and second.attempt == 2
    assert _kinds(ledger, run_id) == ["planned", "launched", "preempted", "torn-down", "launched", "resumed",
                                      "finished", "torn-down"]


def test_runaway_restarts_are_capped(tmp_path, facts):
    preempt = [JobStatus(JobState.PREEMPTED)]
    backend = FakeBackend(scripts=[list(preempt) for _ in range(5)])
    spec, ledger, run_id, runner, _ = _setup(tmp_path, facts, backend, max_restarts=2)
    assert runner.supervise(run_id, spec) == RunState.FAILED
    assert len(backend.launched) == 3
    assert "max_restarts" in ledger.run(run_id).message


def test_run_messages_read_right_at_a_count_of_one(tmp_path, facts):
    backend = FakeBackend(scripts=[[JobStatus(JobState.PREEMPTED)] for _ in range(3)])
    spec, ledger, run_id, runner, _ = _setup(tmp_path / "restarts", facts, backend, max_restarts=1)
    assert runner.supervise(run_id, spec) == RunState.FAILED
    assert "gave up after 1 restart (max_restarts)" in ledger.run(run_id).message
    backend = FakeBackend(no_capacity={"a"})
    spec, ledger, run_id, runner, _ = _setup(tmp_path / "capacity", facts, backend, itypes=("a",))
    assert runner.supervise(run_id, spec) == RunState.NO_CAPACITY
    assert "no capacity on any of 1 placement tried (" in ledger.run(run_id).message


def test_managed_job_recoveries_are_recorded_once_each(tmp_path, facts):
    script = [RUNNING, JobStatus(JobState.RECOVERING, restarts=1), JobStatus(JobState.RUNNING, restarts=1),
              JobStatus(JobState.SUCCEEDED, restarts=1)]
    backend = FakeBackend(scripts=[script])
    spec, ledger, run_id, runner, _ = _setup(tmp_path, facts, backend)
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    kinds = _kinds(ledger, run_id)
    assert kinds.count("preempted") == 1 and kinds.count("resumed") == 1
    assert ledger.attempts(run_id)[0].restarts == 1


def test_budget_breaker_stops_and_tears_down_at_the_cap(tmp_path, facts):
    backend = FakeBackend(scripts=[[RUNNING]])  # never finishes on its own
    # $40/h, polled every 10 min: at $20 the breaker must fire after 30 minutes.
    spec, ledger, run_id, runner, clock = _setup(tmp_path, facts, backend, budget=20.0)
    assert runner.supervise(run_id, spec) == RunState.BUDGET_STOPPED
    assert backend.cancelled == backend.torn_down == [backend.launched[0].cluster_name]
    spent = ledger.spent_usd(run_id, clock.now)
    assert 20.0 <= spent < 20.0 + 40.0 * 600 / 3600 + 1e-9
    assert ledger.run(run_id).state == RunState.BUDGET_STOPPED
    assert "budget reached" in ledger.run(run_id).message


def test_job_failure_is_failed_and_torn_down(tmp_path, facts):
    backend = FakeBackend(scripts=[[RUNNING, JobStatus(JobState.FAILED, message="exit code 3")]])
    spec, ledger, run_id, runner, _ = _setup(tmp_path, facts, backend)
    assert runner.supervise(run_id, spec) == RunState.FAILED
    assert ledger.run(run_id).message == "exit code 3"
    assert backend.torn_down


def test_down_from_another_process_stops_the_supervisor(tmp_path, facts):
    backend = FakeBackend(scripts=[[RUNNING]])
    spec, ledger, run_id, runner, clock = _setup(tmp_path, facts, backend)

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        ledger.record(run_id, EventKind.CANCELLED, clock.now, "cancelled by gpuarb down", state=RunState.CANCELLED)

    runner.sleep = sleep
    assert runner.supervise(run_id, spec) == RunState.CANCELLED
    assert backend.torn_down


def test_interrupt_tears_down_or_leaves_running_loudly(tmp_path, facts):
    backend = FakeBackend(scripts=[[RUNNING]])
    spec, ledger, run_id, runner, _clock = _setup(tmp_path, facts, backend)

    def sleep(seconds: float) -> None:
        raise KeyboardInterrupt

    runner.sleep = sleep
    with pytest.raises(KeyboardInterrupt):
        runner.supervise(run_id, spec)
    runner.interrupt(run_id, teardown=True)
    assert ledger.run(run_id).state == RunState.INTERRUPTED
    assert backend.torn_down == [backend.launched[0].cluster_name]
    assert ledger.check() == []


def test_local_checkpoint_plans(tmp_path):
    local = FakeBackend(name="local", pins_placement=False, local_checkpoints=True)
    spec = make_spec(checkpoint=Checkpoint("file://./ckpt", 5.0), path=str(tmp_path / "job.yaml"))
    plan = checkpoint_plan(spec, "r1", backend=local, root=tmp_path / "root")
    assert plan is not None and plan.mount_path == str(tmp_path / "ckpt") and plan.interval_minutes == 5.0
    bucket = make_spec(checkpoint=Checkpoint("s3://b/x", 5.0))
    assert checkpoint_plan(bucket, "r1", backend=local, root=tmp_path).mount_path == str(tmp_path / "r1")
    assert checkpoint_plan(bucket, "r1", backend=FakeBackend(), root=None).uri == "s3://b/x"
    assert checkpoint_plan(make_spec(), "r1", backend=FakeBackend(), root=None) is None


def test_a_launch_pending_past_the_timeout_fails_over(tmp_path, facts):
    pending = JobStatus(JobState.PENDING, message="waiting for spot capacity")
    backend = FakeBackend(scripts=[[pending], [RUNNING, DONE]])
    spec, ledger, run_id, runner, _ = _setup(tmp_path, facts, backend)
    runner.options = RunOptions(poll_seconds=600.0, pending_timeout_minutes=25.0, checkpoint_root=tmp_path)
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    assert [r.placement.offer.instance_type for r in backend.launched] == ["a", "b"]
    first = ledger.attempts(run_id)[0]
    assert first.outcome == "no-capacity" and "pending timeout 25 min" in first.message
    assert backend.cancelled == [backend.launched[0].cluster_name]


PLACEMENT_ROW = dict(provider="aws", region="us-east-1", zone=None, instance_type="p5.48xlarge", accelerator="H100",
                     gpus_per_node=8, nodes=1, spot=False, usd_per_hour=98.32, expected_hours=10.0,
                     expected_total_usd=983.2, compute_usd=983.2, preemption_usd=0.0, egress_in_usd=0.0,
                     egress_out_usd=0.0, price_source="snapshot", price_as_of="2026-11-01", price_ref="test")


def _spot_then_on_demand(tmp_path, facts, backend, deadline_hours: float):
    from arbitrage.jobspec import Deadline

    spec = make_spec(spot="auto", deadline=Deadline(hours=deadline_hours), checkpoint=Checkpoint("s3://b/ck", 30.0))
    # The runner's decision is under test, not the rate: a quiet spot market (0.04/h), stated explicitly.
    quiet = SpotRate(0.04, 0.2, "test", "a quiet spot market for the runner test", 0.04)
    costs = [estimate(spec, Placement(make_offer(instance_type="a"), 1, spot=True), facts, quiet),
             estimate(spec, Placement(make_offer(instance_type="b"), 1, spot=False), facts)]
    ledger = L.Ledger.open(tmp_path / "ledger.sqlite3")
    run_id = ledger.create_run(name="t", spec_path="job.yaml", spec_text="", backend=backend.name, now=NOW,
                               placements=[placement_row(c) for c in costs], tags={}, budget_total_usd=None,
                               budget_hourly_usd=None)
    clock = FakeClock()
    runner = Runner(backend, ledger, clock=clock, sleep=clock.sleep,
                    options=RunOptions(poll_seconds=600.0, checkpoint_root=tmp_path), say=lambda m: None)
    return spec, ledger, run_id, runner, costs


@pytest.mark.parametrize(("deadline_hours", "second"), [(9.0, "b"), (40.0, "a")])
def test_a_preempted_spot_run_moves_to_on_demand_only_when_the_deadline_needs_it(tmp_path, facts, deadline_hours,
                                                                                 second):
    preempted = [RUNNING] * 6 + [JobStatus(JobState.PREEMPTED)]
    backend = FakeBackend(scripts=[preempted, [RUNNING, DONE]])
    spec, ledger, run_id, runner, costs = _spot_then_on_demand(tmp_path, facts, backend, deadline_hours)
    assert costs[0].expected_hours < 9.0  # feasible on spot at the start, even with the tight deadline
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    assert [r.placement.offer.instance_type for r in backend.launched] == ["a", second]
    notes = [e.message for e in ledger.events(run_id) if e.kind == "note"]
    assert bool(notes) == (second == "b")


def test_a_managed_spot_job_is_moved_to_on_demand_when_recovery_would_miss_the_deadline(tmp_path, facts):
    recovering = [RUNNING] * 6 + [JobStatus(JobState.RECOVERING, restarts=1)]
    backend = FakeBackend(scripts=[recovering, [RUNNING, DONE]])
    spec, ledger, run_id, runner, _ = _spot_then_on_demand(tmp_path, facts, backend, 9.0)
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    assert [r.placement.offer.instance_type for r in backend.launched] == ["a", "b"]
    assert backend.cancelled == [backend.launched[0].cluster_name]
    assert ledger.attempts(run_id)[0].outcome == "switched"


def test_the_on_demand_fallback_may_sit_beyond_the_failover_list(tmp_path, facts):
    preempted = [RUNNING] * 6 + [JobStatus(JobState.PREEMPTED)]
    backend = FakeBackend(scripts=[preempted, [RUNNING, DONE]])
    spec, _ledger, run_id, runner, _ = _spot_then_on_demand(tmp_path, facts, backend, 9.0)
    runner.options = RunOptions(poll_seconds=600.0, max_failovers=0, checkpoint_root=tmp_path)
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    assert [r.placement.offer.instance_type for r in backend.launched] == ["a", "b"]


def _cost(**kw):
    from arbitrage.costmodel import CostBreakdown

    placement = Placement(make_offer(**kw), 1, spot=False)
    return CostBreakdown(placement, 40.0, 1.0, 1.0, 1, 0, 0, 0, 0, 0, 1, 40.0, 0, 0, 0)


def test_failover_list_skips_repeats_and_placements_the_backend_cannot_launch():
    from arbitrage.launch.runner import launchable

    class Keyed(FakeBackend):
        def launch_key(self, placement):
            o = placement.offer
            return None if o.provider == "coreweave" else (o.provider, o.region, o.instance_type)

    placements = [_cost(zone="use1-az1"), _cost(zone="use1-az2"), _cost(provider="coreweave", instance_type="x"),
                  _cost(instance_type="p4d.24xlarge"), _cost(instance_type="p4de.24xlarge")]
    chosen, skipped = launchable(Keyed(), placements, 2)
    assert [(c.placement.offer.zone, c.placement.offer.instance_type) for c in chosen] == [
        ("use1-az1", "p5.48xlarge"), (None, "p4d.24xlarge")]
    assert skipped == ["coreweave x: skypilot cannot launch it"]
    # A backend running jobs on its own machines takes one placement: owned capacity first, else #1.
    own = FakeBackend(name="anything", pins_placement=False)
    local, why = launchable(own, placements, 4)
    assert local == placements[:1] and why == []
    owned = _cost(provider="onprem", instance_type="lab")
    local, _ = launchable(own, [*placements, owned], 4)
    assert local == [owned]
    # The name decides nothing: a pinning backend called "local" still fails over across placements.
    assert len(launchable(FakeBackend(name="local"), placements, 4)[0]) == 4


def test_the_fake_backends_default_launch_key_and_unlaunchable_types():
    from arbitrage.launch.runner import launchable

    placements = [_cost(instance_type="a"), _cost(instance_type="a"), _cost(instance_type="b"),
                  _cost(instance_type="c")]
    chosen, skipped = launchable(FakeBackend(unlaunchable={"b"}), placements, 5)
    assert [c.placement.offer.instance_type for c in chosen] == ["a", "c"]  # equal placements: one launch
    assert skipped == ["aws b: skypilot cannot launch it"]


def test_a_local_checkpoint_backend_gets_its_directory_made_and_named(tmp_path, facts):
    backend = FakeBackend(name="local", pins_placement=False, local_checkpoints=True, scripts=[[DONE]])
    spec, ledger, run_id, runner, _ = _setup(tmp_path, facts, backend)
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    ckpt = backend.launched[0].checkpoint
    assert ckpt is not None and ckpt.mount_path == str(tmp_path / "ck" / run_id)
    assert (tmp_path / "ck" / run_id).is_dir()
    assert gpuarb_envs(backend.launched[0])["GPUARB_CHECKPOINT_DIR"] == str(tmp_path / "ck" / run_id)
    launched = next(e for e in ledger.events(run_id) if e.kind == "launched")
    assert launched.message.endswith(f"checkpoints in {tmp_path / 'ck' / run_id}")


def test_the_stored_handle_reads_back_as_the_launched_one(tmp_path, facts):
    from arbitrage.launch.backend import Handle

    backend = FakeBackend(scripts=[[DONE]])
    spec, ledger, run_id, runner, _ = _setup(tmp_path, facts, backend)
    runner.supervise(run_id, spec)
    stored = ledger.attempts(run_id)[0].handle
    name = backend.launched[0].cluster_name
    assert stored == {"backend": "skypilot", "cluster_name": name, "job_id": "1", "managed": False, "detail": {}}
    assert Handle.from_dict(stored) == Handle(backend="skypilot", cluster_name=name, job_id="1")


# -- a supervisor that died: the next one takes the run up where it was -------------------------------------------

def test_a_new_supervisor_watches_the_attempt_a_dead_one_left_running_without_launching_again(tmp_path, facts):
    backend = FakeBackend(scripts=[[RUNNING, DONE]])
    spec, ledger, run_id, runner, _ = _setup(tmp_path, facts, backend)
    n = ledger.start_attempt(run_id, 0, lambda k: f"gpuarb-{run_id}-a{k}", NOW)  # the dead supervisor's launch
    ledger.attempt_launched(run_id, n, {"backend": "skypilot", "cluster_name": f"gpuarb-{run_id}-a1",
                                        "job_id": "1"}, NOW, "up")
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    assert backend.launched == []  # nothing launched twice
    assert backend.torn_down == [f"gpuarb-{run_id}-a1"]
    events = ledger.events(run_id)
    assert [e.kind for e in events] == ["planned", "launched", "note", "finished", "torn-down"]
    assert "supervision resumed" in events[2].message and "watching attempt 1" in events[2].message
    assert [a.n for a in ledger.attempts(run_id)] == [1] and ledger.check() == []


def test_an_attempt_that_never_reached_the_backend_is_closed_torn_down_and_launched_again(tmp_path, facts):
    backend = FakeBackend(scripts=[[RUNNING, DONE]])
    spec, ledger, run_id, runner, _ = _setup(tmp_path, facts, backend)
    ledger.start_attempt(run_id, 0, lambda k: f"gpuarb-{run_id}-a{k}", NOW)  # died inside backend.launch
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    attempts = ledger.attempts(run_id)
    assert [(a.n, a.outcome) for a in attempts] == [(1, "abandoned"), (2, "succeeded")]
    assert backend.torn_down[0] == f"gpuarb-{run_id}-a1"  # whatever half-launched is gone
    assert [r.cluster_name for r in backend.launched] == [f"gpuarb-{run_id}-a2"]


def test_after_a_placement_had_no_capacity_the_next_supervisor_goes_on_to_the_next_one(tmp_path, facts):
    backend = FakeBackend(scripts=[[RUNNING, DONE]])
    spec, ledger, run_id, runner, _ = _setup(tmp_path, facts, backend)
    n = ledger.start_attempt(run_id, 0, lambda k: f"gpuarb-{run_id}-a{k}", NOW)
    ledger.end_attempt(run_id, n, "no-capacity", NOW, "none", kind=EventKind.LAUNCH_FAILED)
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    assert [r.placement.offer.instance_type for r in backend.launched] == ["b"]

"""The runner asks the plan's own preemption model at each preemption, and records why it stays or leaves spot."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from conftest import NOW, make_offer, make_spec

from arbitrage import ledger as L
from arbitrage.costmodel import Placement, estimate
from arbitrage.jobspec import Checkpoint, Deadline, Work
from arbitrage.launch.backend import JobState, JobStatus
from arbitrage.launch.fake import FakeBackend
from arbitrage.launch.runner import Runner, RunOptions, placement_row, recorded_spot_risk, spot_risk_data
from arbitrage.runstate import EventKind, RunState

RUNNING = JobStatus(JobState.RUNNING)
DONE = JobStatus(JobState.SUCCEEDED, message="exit 0")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _run(tmp_path, facts, backend, deadline_hours: float, *, record: bool = True):
    spec = make_spec(spot="auto", deadline=Deadline(hours=deadline_hours), work=Work(8 * 10, "H100"),
                     checkpoint=Checkpoint("s3://b/ck", 10.0))
    # p5en.48xlarge in us-east-1: the Advisor's '<5%' band (0.074/h at 8 GPUs, spot_bands.csv)
    spot = estimate(spec, Placement(make_offer(instance_type="p5en.48xlarge", zone="use1-az2"), 1, spot=True), facts)
    od = estimate(spec, Placement(make_offer(instance_type="b"), 1, spot=False), facts)
    ledger = L.Ledger.open(tmp_path / "ledger.sqlite3")
    run_id = ledger.create_run(name="t", spec_path="job.yaml", spec_text="", backend=backend.name, now=NOW,
                               placements=[placement_row(spot), placement_row(od)], tags={}, budget_total_usd=None,
                               budget_hourly_usd=None,
                               planned_data=spot_risk_data([spot, od], 0.95, 100.0) if record else None)
    clock = Clock()
    said: list[str] = []
    runner = Runner(backend, ledger, clock=clock, sleep=clock.sleep,
                    options=RunOptions(poll_seconds=1800.0, checkpoint_root=tmp_path), say=said.append)
    return spec, ledger, run_id, runner, spot, said


def _notes(ledger, run_id) -> list[str]:
    return [e.message for e in ledger.events(run_id) if e.kind == EventKind.NOTE]


def test_the_risk_is_recorded_with_the_plans_rate_and_terms(tmp_path, facts) -> None:
    backend = FakeBackend(scripts=[[RUNNING, DONE]])
    _, ledger, run_id, _, spot, _ = _run(tmp_path, facts, backend, 30.0)
    found = recorded_spot_risk(ledger, run_id)
    assert found is not None and found["deadline_confidence"] == 0.95 and set(found["placements"]) == {"0"}
    risk = found["placements"]["0"]
    assert risk["preemptions_per_hour"] == pytest.approx(facts.spot_bands[0].preemptions_per_hour_8gpu)
    assert risk["work_hours"] == pytest.approx(spot.work_hours + spot.checkpoint_hours)
    assert "Spot Instance Advisor" in risk["source"]


@pytest.mark.parametrize(("deadline_hours", "second", "word"), [(12.0, "b", "leaving spot"),
                                                                  (30.0, "p5en.48xlarge", "staying on spot")])
def test_at_a_preemption_it_leaves_spot_only_when_the_probability_falls_below_the_confidence(
        tmp_path, facts, deadline_hours, second, word) -> None:
    preempted = [RUNNING] * 4 + [JobStatus(JobState.PREEMPTED)]  # 2 h in, then preempted
    backend = FakeBackend(scripts=[preempted, [RUNNING, DONE]])
    spec, ledger, run_id, runner, spot, said = _run(tmp_path, facts, backend, deadline_hours)
    from arbitrage.costmodel import deadline_probability

    assert deadline_probability(spot, deadline_hours) >= 0.95  # feasible on spot when planned
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    assert [r.placement.offer.instance_type for r in backend.launched] == ["p5en.48xlarge", second]
    verdicts = [m for m in _notes(ledger, run_id) if "P(meet the deadline on spot)" in m]
    assert len(verdicts) == 1 and word in verdicts[0] and verdicts[0] in said
    p = float(verdicts[0].split("= ", 1)[1].split(" ", 1)[0])
    assert (p < 0.95) == (second == "b")
    assert "after 1 preemption in" in verdicts[0]


def test_a_managed_job_recovering_in_place_is_moved_with_the_verdict_as_its_reason(tmp_path, facts) -> None:
    recovering = [RUNNING] * 4 + [JobStatus(JobState.RECOVERING, restarts=1)]
    backend = FakeBackend(scripts=[recovering, [RUNNING, DONE]])
    spec, ledger, run_id, runner, _, _ = _run(tmp_path, facts, backend, 12.0)
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    assert [r.placement.offer.instance_type for r in backend.launched] == ["p5en.48xlarge", "b"]
    first = ledger.attempts(run_id)[0]
    assert first.outcome == "switched" and "P(meet the deadline on spot)" in first.message


def test_a_run_recorded_without_the_risk_still_asks_the_spot_policy(tmp_path, facts) -> None:
    preempted = [RUNNING] * 4 + [JobStatus(JobState.PREEMPTED)]
    backend = FakeBackend(scripts=[preempted, [RUNNING, DONE]])
    spec, ledger, run_id, runner, _, _ = _run(tmp_path, facts, backend, 30.0, record=False)
    assert recorded_spot_risk(ledger, run_id) is None
    assert runner.supervise(run_id, spec) == RunState.SUCCEEDED
    assert not any("P(meet the deadline" in m for m in _notes(ledger, run_id))

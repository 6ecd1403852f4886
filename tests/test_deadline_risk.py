"""Deadlines as probabilities in the plan, `gpuarb risk`, and ledger history moving a plan's spot rate."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import make_offer, make_spec
from typer.testing import CliRunner

from arbitrage.capacity import CapacityBook, CapacitySignal
from arbitrage.costmodel import Placement, deadline_probability, estimate
from arbitrage.jobspec import Checkpoint, Deadline, Work
from arbitrage.planner import R_DEADLINE, R_DEADLINE_RISK, R_NO_CAPACITY, plan
from arbitrage.risk import finish_by

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
GCP = dict(provider="gcp", region="us-central1", zone="us-central1-a", instance_type="a3-highgpu-8g",
           interconnect="gpudirect-tcpx", interconnect_gbps=800.0)


def test_probability_uses_the_cost_models_own_terms(facts) -> None:
    spec = make_spec(work=Work(8 * 30, "H100"), checkpoint=Checkpoint("s3://c", 10), spot="always")
    cost = estimate(spec, Placement(make_offer(region="us-east-1"), 2, spot=True), facts)
    assert cost.preemptions_per_hour == pytest.approx(facts.spot_bands[4].preemptions_per_hour_8gpu)
    mean = finish_by(1e9, work_hours=cost.work_hours + cost.checkpoint_hours, segment_hours=cost.segment_hours,
                     restart_hours=cost.restart_hours, rate_per_hour=2 * cost.preemptions_per_hour,
                     fixed_hours=cost.provision_hours + cost.staging_hours).mean_hours
    assert mean == pytest.approx(cost.expected_hours, rel=1e-9)  # the probability's model is the cost model's
    p_tight, p_roomy = (deadline_probability(cost, cost.expected_hours + d) for d in (0.0, 10.0))
    assert 0.3 < p_tight < 0.7 < 0.99 < p_roomy
    on_demand = estimate(spec, Placement(make_offer(), 2, spot=False), facts)
    assert deadline_probability(on_demand, on_demand.expected_hours) == 1.0
    assert deadline_probability(on_demand, on_demand.expected_hours - 0.01) == 0.0


def test_a_spot_pick_that_meets_the_deadline_on_average_but_not_with_confidence_is_rejected(facts) -> None:
    # 4 h of work on spot without checkpoints, 5 h to the deadline: the mean fits, P(finish) ~0.8.
    spec = make_spec(work=Work(32, "H100"), spot="auto", deadline=Deadline(hours=5.0))
    result = plan(spec, [make_offer(**GCP, spot_usd_per_hour=10.0, on_demand_usd_per_hour=30.0)], facts, NOW)
    assert result.rejections == {R_DEADLINE_RISK: 1} and result.confidence == 0.95
    assert [c.placement.spot for c in result.placements] == [False]
    assert result.placements[0].deadline_probability == 1.0
    lenient = plan(make_spec(work=Work(32, "H100"), spot="auto", deadline=Deadline(hours=5.0),
                             deadline_confidence=0.7),
                   [make_offer(**GCP, spot_usd_per_hour=10.0, on_demand_usd_per_hour=30.0)], facts, NOW)
    spot = [c for c in lenient.placements if c.placement.spot]
    assert spot and 0.7 <= spot[0].deadline_probability < 0.95 and lenient.best is spot[0]
    late = plan(make_spec(work=Work(32, "H100"), spot="always", deadline=Deadline(hours=4.0)),
                [make_offer(**GCP, spot_usd_per_hour=10.0)], facts, NOW)
    assert late.rejections == {R_DEADLINE: 1}


def test_no_recommended_spot_placement_is_under_the_confidence(facts) -> None:
    from arbitrage import app

    offers = app.load_snapshot(facts)
    for hours, ckpt in ((16.0, None), (30.0, Checkpoint("s3://c", 10)), (80.0, Checkpoint("s3://c", 30))):
        spec = make_spec(work=Work(8 * 14, "H100"), spot="always", deadline=Deadline(hours=hours), checkpoint=ckpt,
                         workload="inference")
        result = plan(spec, offers, facts, NOW)
        assert all(c.deadline_probability is not None and c.deadline_probability >= 0.95 for c in result.placements)


def test_capacity_signals_reject_demote_and_say_so(facts) -> None:
    spec = make_spec(spot="always")
    good, thin, empty = (make_offer(zone=z, spot_usd_per_hour=price) for z, price in
                         (("use1-az1", 20.0), ("use1-az2", 10.0), ("use1-az4", 5.0)))
    signals = [CapacitySignal("aws", "us-east-1", "use1-az2", "p5.48xlarge", True, 0.5, "AWS score 5/10", "x"),
               CapacitySignal("aws", "us-east-1", "use1-az4", "p5.48xlarge", True, 0.2, "AWS score 2/10", "x")]
    result = plan(spec, [good, thin, empty], facts, NOW,
                  capacity=CapacityBook(signals, ("AWS spot placement scores",)))
    assert result.rejections == {R_NO_CAPACITY: 1}
    assert [c.placement.offer.zone for c in result.placements] == ["use1-az1", "use1-az2"]  # the cheap thin one last
    assert result.placements[1].capacity == "AWS score 5/10 (ranked last)" and result.placements[1].capacity_demoted
    assert "1 of 2 feasible placements has one (AWS spot placement scores); the other 1 has none and is ranked" \
        in result.capacity_note
    bare = plan(spec, [good], facts, NOW)
    assert "the 1 feasible placement has none (no source asked); it is ranked on price alone" in bare.capacity_note


def _cli(*args: str):
    from arbitrage.cli import app

    return CliRunner().invoke(app, list(args))


def test_plan_json_and_table_show_probability_and_rate_source(tmp_path) -> None:
    job = Path(__file__).resolve().parent.parent / "jobspecs" / "llama3-8b-finetune.yaml"
    result = _cli("plan", str(job), "--format", "json", "--top", "0")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["request"]["deadline_confidence"] == 0.95 and "capacity_note" in doc
    spot = [p for p in doc["placements"] if p["spot"]]
    assert spot and all(p["deadline_probability"] >= 0.95 for p in spot)
    aws = [p for p in spot if p["provider"] == "aws"]
    assert len({p["preemptions_per_hour"] for p in aws}) > 1  # families/regions differ
    assert all("Spot Instance Advisor" in p["preemption_source"] or "not in the AWS" in p["preemption_source"]
               or "local-zone" in p["preemption_source"] for p in aws)
    table = _cli("plan", str(job))
    assert "Risk" in table.output and ("p>0.999" in table.output or "p=0." in table.output)
    assert "spot rate:" in table.output and "deadline: P(finish within" in table.output


def _record_spot_history(data_dir: Path, preemptions: int, hours: float) -> None:
    from arbitrage.ledger import Ledger
    from arbitrage.runstate import EventKind

    start = NOW - timedelta(days=3)
    row = {"provider": "aws", "region": "us-east-1", "zone": "use1-az4", "instance_type": "p5.48xlarge",
           "accelerator": "H100", "gpus_per_node": 8, "nodes": 2, "spot": True, "usd_per_hour": 40.0,
           "expected_hours": 10.0, "expected_total_usd": 400.0, "compute_usd": 400.0, "preemption_usd": 0.0,
           "egress_in_usd": 0.0, "egress_out_usd": 0.0, "price_source": "snapshot", "price_as_of": "x",
           "price_ref": "x"}
    with Ledger.open(data_dir / "ledger.sqlite3") as ledger:
        run = ledger.create_run(name="hist", spec_path="x.yaml", spec_text="", backend="fake", now=start,
                                placements=[row], tags={}, budget_total_usd=None, budget_hourly_usd=None)
        n = ledger.start_attempt(run, 0, lambda k: f"c{k}", start)
        ledger.attempt_launched(run, n, {"backend": "fake"}, start, "launched")
        ledger.end_attempt(run, n, "succeeded", start + timedelta(hours=hours), "done", kind=EventKind.FINISHED,
                           restarts=preemptions)


def test_ledger_history_moves_the_rate_in_risk_and_plan(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path))
    args = ("risk", "--provider", "aws", "--gpu", "H100", "--format", "json", "--now", NOW.isoformat())
    before = json.loads(_cli(*args).stdout)
    assert before["ledger"] is None
    row = next(r for r in before["rows"] if (r["instance_type"], r["region"], r["zone_kind"])
               == ("p5.48xlarge", "us-east-1", "region"))
    assert row["evidence"] == "advisor" and row["observed_instance_hours"] == 0
    _record_spot_history(tmp_path, preemptions=2, hours=100.0)  # 2 nodes x 100 h, 2 preemptions: 0.01/h
    after = json.loads(_cli(*args).stdout)
    moved = next(r for r in after["rows"] if (r["instance_type"], r["region"], r["zone_kind"])
                 == ("p5.48xlarge", "us-east-1", "region"))
    assert after["ledger"].endswith("ledger.sqlite3") and after["observed_instance_hours"] == 200.0
    assert moved["observed_preemptions"] == 2 and moved["observed_instance_hours"] == 200.0
    assert moved["prior_preemptions_per_hour"] == row["preemptions_per_hour"]
    assert moved["preemptions_per_hour"] == pytest.approx((row["preemptions_per_hour"] * 100 + 2) / 300, rel=1e-3)
    assert "run ledger" in moved["source"]
    other = next(r for r in after["rows"] if r["region"] == "us-west-2" and r["instance_type"] == "p5.48xlarge")
    assert other["observed_instance_hours"] == 0
    table = _cli(*args[:-4], "--now", NOW.isoformat())
    assert table.exit_code == 0 and "200 h observed" in table.output and "200.0 spot instance-hours" in table.output

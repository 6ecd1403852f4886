"""Unit economics end to end: job specs stated in tokens or tasks, plans with USD per million tokens across H100,
H200, A100, L4 and L40S offers, training hours from FLOPs, right-sizing, the `report prices` unit view (HTML
chart included), GPUARB_METRICS read back by the runner, the ledger's v3 migration and `report spend` by version.

Offers are built by hand so the expected unit costs can be worked out from the fact tables (see each test)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import NOW, ROOT, make_offer
from test_report_html import check_figures, check_self_contained, parse
from typer.testing import CliRunner

from arbitrage import app as usecases
from arbitrage import ledger as L
from arbitrage.cli import app as gpuarb_app
from arbitrage.costmodel import Placement, estimate
from arbitrage.errors import SpecError
from arbitrage.launch.backend import JobState, JobStatus
from arbitrage.launch.fake import FakeBackend
from arbitrage.launch.runner import Runner, RunOptions, placement_row
from arbitrage.planner import plan
from arbitrage.render import plan_record, plan_table
from arbitrage.report.html import prices_html
from arbitrage.report.prices import build_price_report
from arbitrage.report.spend import spend_markdown, spend_report
from arbitrage.specfile import parse_jobspec_text
from arbitrage.store import legacy
from arbitrage.units import R_MODEL_MEMORY, R_NO_THROUGHPUT, ModelSpec, resolve_throughput

cli = CliRunner()

INFERENCE = """name: llama-8b-batch
resources:
  accelerators: {H100: 1, H200: 1, A100-80GB: 1, L4: 1, L40S: 1}
arbitrage:
  workload: inference
  work:
    tokens: 2e9
    model: {name: llama-3.1-8b, params_b: 8, precision: fp8}
"""


def one_gpu(gpu: str, memory: float, usd: float, itype: str | None = None, **kw) -> object:
    return make_offer(provider="runpod", region="US-TX-3", instance_type=itype or f"1x-{gpu}", accelerator=gpu,
                      gpus_per_node=1, gpu_memory_gb=memory, on_demand_usd_per_hour=usd, spot_usd_per_hour=None,
                      interconnect="none", interconnect_gbps=0.0, **kw)


OFFERS = [one_gpu("H100", 80, 2.0), one_gpu("H200", 141, 3.0), one_gpu("A100-80GB", 80, 1.2),
          one_gpu("L4", 24, 0.4), one_gpu("L40S", 48, 0.9)]


def spec_of(facts, text: str = INFERENCE):
    return parse_jobspec_text(text, facts, "job.yaml")


# -- the job spec ------------------------------------------------------------------------------------------------


def test_token_work_forms_parse_into_the_work_record(facts) -> None:
    spec = spec_of(facts)
    w = spec.work.tokens
    assert spec.work.gpu_hours == 0 and w is not None and w.tokens == 2e9 and w.model == ModelSpec(8, "fp8",
                                                                                                 "llama-3.1-8b")
    split = spec_of(facts, INFERENCE.replace("tokens: 2e9", "input_tokens: 6e9\n    output_tokens: 2e9"))
    assert split.work.tokens is not None and split.work.tokens.total_tokens == 8e9
    tasks = spec_of(facts, INFERENCE.replace("tokens: 2e9", "tasks: 10000\n    tokens_per_task: 500"))
    assert tasks.work.tokens is not None and (tasks.work.tokens.tokens, tasks.work.tokens.tasks) == (5e6, 10000)
    fp16 = spec_of(facts, INFERENCE.replace("precision: fp8", "precision: FP16"))
    assert fp16.work.tokens is not None and fp16.work.tokens.model.precision == "bf16"
    training = spec_of(facts, INFERENCE.replace("workload: inference", "workload: training"))
    assert training.workload == "training" and training.work.describe("training").startswith("2e+09 training")


@pytest.mark.parametrize(("old", "new", "needle"), [
    ("    model: {name: llama-3.1-8b, params_b: 8, precision: fp8}\n", "",
     "job.yaml:6: arbitrage.work: work in tokens needs model"),
    ("precision: fp8", "precision: fp7", "job.yaml:8: arbitrage.work.model.precision: unknown precision 'fp7'"),
    ("tokens: 2e9", "input_tokens: 6e9", "arbitrage.work: give both input_tokens and output_tokens"),
    ("tokens: 2e9", "tasks: 10", "arbitrage.work: give both tasks and tokens_per_task"),
    ("tokens: 2e9", "tokens: 2e9\n    gpu_hours: 10", "give exactly one of gpu_hours or hours"),
    ("tokens: 2e9", "gpu_hours: 10", "model goes with tokens"),
    ("tokens: 2e9", "tokens: -5", "arbitrage.work.tokens"),
    ("params_b: 8", "params_b: 0", "arbitrage.work.model.params_b"),
    ("tokens: 2e9", "tokens: 1e30", "arbitrage.work.tokens"),
])
def test_bad_token_work_is_one_line_naming_file_line_and_field(facts, old: str, new: str, needle: str) -> None:
    with pytest.raises(SpecError) as err:
        spec_of(facts, INFERENCE.replace(old, new))
    assert needle in str(err.value) and "Traceback" not in str(err.value)


def test_training_rejects_an_inference_split(facts) -> None:
    text = INFERENCE.replace("workload: inference", "workload: training").replace(
        "tokens: 2e9", "input_tokens: 1e9\n    output_tokens: 1e9")
    with pytest.raises(SpecError, match=r"job\.yaml:6: arbitrage\.work: training work is tokens"):
        spec_of(facts, text)


# -- plans ---------------------------------------------------------------------------------------------------------


def test_an_inference_job_in_tokens_plans_every_gpu_and_picks_the_cheapest_unit_cost(facts) -> None:
    spec = spec_of(facts)
    result = plan(spec, OFFERS, facts, NOW)
    assert {b.placement.offer.gpu_model for b in result.placements} == {"H100", "H200", "A100-80GB", "L4", "L40S"}
    per_million = {b.placement.offer.gpu_model: b.usd_per_million_tokens for b in result.placements}
    # each: (2e9 / tok/s / 3600 + 10 min provisioning) x $/h / 2e9 x 1e6, at the resolved per-GPU rate
    for b in result.placements:
        rate = resolve_throughput(facts.units, b.placement.offer.gpu_model, "8b", "fp8")
        assert rate is not None
        hours = 2e9 / rate.tokens_per_s / 3600 + facts.assumptions.provision_minutes / 60
        assert b.expected_hours == pytest.approx(hours)
        assert per_million[b.placement.offer.gpu_model] == pytest.approx(hours * b.hourly_usd / 2e9 * 1e6)
    assert result.best is not None
    assert result.best.usd_per_million_tokens == min(per_million.values())  # cheapest unit cost chosen
    # making the winner dearer hands #1 to the next cheapest unit cost
    winner = result.best.placement.offer.gpu_model
    runner_up = sorted(per_million, key=lambda g: per_million[g])[1]
    dearer = [replace(o, on_demand_usd_per_hour=o.on_demand_usd_per_hour * 10) if o.accelerator == winner else o
              for o in OFFERS]
    assert plan(spec, dearer, facts, NOW).best.placement.offer.gpu_model == runner_up  # type: ignore[union-attr]


def test_plan_json_and_table_show_unit_cost_for_every_placement(facts) -> None:
    text = INFERENCE.replace("tokens: 2e9", "tasks: 1000000\n    tokens_per_task: 2000")
    result = plan(spec_of(facts, text), OFFERS, facts, NOW)
    doc = plan_record(result, 0, NOW, {})
    assert doc["request"]["work"]["tasks"] == 1e6 and doc["request"]["work"]["model"]["precision"] == "fp8"
    for p in doc["placements"]:
        assert p["usd_per_million_tokens"] == pytest.approx(p["total_usd"] / 2e9 * 1e6, rel=1e-3)
        assert p["usd_per_task"] == pytest.approx(p["total_usd"] / 1e6, rel=1e-3)
        assert p["unit"]["basis"] and p["unit"]["sources"][0].startswith("https://")
    assert doc["placements"][0]["unit"]["tensor_parallel"] == 1
    table = plan_table(result.placements, None, "t")
    assert table.columns[-1].header == "$/1M tok"


def test_placements_that_cannot_do_the_work_are_rejected_with_the_reason(facts) -> None:
    text = INFERENCE.replace("params_b: 8, precision: fp8", "params_b: 70, precision: fp8")
    result = plan(spec_of(facts, text), OFFERS, facts, NOW)
    # 70B fp8 = 84 GB: one 80 GB H100/A100 or a 24 GB L4 or a 48 GB L40S cannot hold it; the 141 GB H200 can
    assert [b.placement.offer.gpu_model for b in result.placements] == ["H200"]
    assert result.rejections[R_MODEL_MEMORY] == 4
    eight = [make_offer(instance_type="p4de", accelerator="A100-80GB", gpu_memory_gb=80.0)]
    text8 = text.replace("{H100: 1, H200: 1, A100-80GB: 1, L4: 1, L40S: 1}", "A100-80GB:8")
    assert plan(spec_of(facts, text8), eight, facts, NOW).rejections == {R_NO_THROUGHPUT: 1}  # spot: never


def test_a_training_job_in_tokens_gets_hours_from_its_flops(facts) -> None:
    text = """name: pretrain
resources: {accelerators: {H100: 8, A100-80GB: 8}}
num_nodes: 2
arbitrage:
  workload: training
  work: {tokens: 1e11, model: {params_b: 8}}
"""
    offers = [make_offer(spot_usd_per_hour=None),
              make_offer(instance_type="p4de.24xlarge", accelerator="A100-80GB", on_demand_usd_per_hour=32.77,
                         spot_usd_per_hour=None, interconnect_gbps=400.0)]
    result = plan(spec_of(facts, text), offers, facts, NOW)
    assert len(result.placements) == 2
    for b in result.placements:
        gpu = b.placement.offer.gpu_model
        peak = next(f.dense_tflops for f in facts.units.peak_flops if gpu in f.gpus and f.precision == "bf16")
        mfu = next(m.mfu for m in facts.units.mfu if gpu in m.gpus and m.precision == "bf16" and m.model_class == "8b")
        delivered = b.work_hours * 3600 * 16 * peak * 1e12 * mfu * b.scaling_efficiency
        assert delivered == pytest.approx(6 * 8e9 * 1e11)  # the hours do exactly 6*N*D FLOPs
        assert b.usd_per_million_tokens == pytest.approx(b.total_usd / 1e11 * 1e6)


def test_right_sizing_names_a_cheaper_smaller_configuration(facts) -> None:
    text = INFERENCE.replace("{H100: 1, H200: 1, A100-80GB: 1, L4: 1, L40S: 1}", "H100:8")
    offers = [make_offer(spot_usd_per_hour=None), one_gpu("L40S", 48, 0.5), one_gpu("L4", 24, 100.0)]
    result = plan(spec_of(facts, text), offers, facts, NOW)
    hint = result.right_size
    assert hint is not None and hint.cheaper is not None
    assert hint.cheaper.placement.offer.gpu_model == "L40S"  # the dear L4 fits but is not cheaper
    assert hint.cheaper.total_usd < result.placements[0].total_usd
    assert {f.gpu_model: f.gpus for f in hint.fits} == {"H100": 1, "L40S": 1, "L4": 1}
    assert hint.advice == "add L40S: 1 to resources.accelerators"
    doc = plan_record(result, 0, NOW, {})
    assert doc["right_sizing"]["cheaper"]["gpu_model"] == "L40S" and doc["right_sizing"]["need_gb"] == 9.6
    from arbitrage.render import explain

    lines = explain(result.placements[0], result)
    assert any(line.startswith("right-sizing: a smaller configuration would also do it for less: 1x L40S")
               for line in lines)
    # a GPU-hour job gets no hint and no unit cost
    from conftest import make_spec

    plain = plan(make_spec(), offers, facts, NOW)
    assert plain.right_size is None and plain.placements[0].usd_per_million_tokens is None


def test_cli_plan_json_on_the_snapshot_has_unit_costs() -> None:
    job = ROOT / "examples" / "batch-inference-tokens.yaml"
    result = cli.invoke(gpuarb_app, ["plan", str(job), "--format", "json", "--top", "0"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[result.output.index("{"):])
    models = {p["gpu_model"] for p in doc["placements"]}
    assert {"H100", "H200", "A100-80GB", "L4", "L40S"} <= models
    costs = [p["usd_per_million_tokens"] for p in doc["placements"]]
    assert all(c is not None for c in costs) and costs[0] == min(costs)


def test_the_bundled_training_example_plans_with_hours_from_flops() -> None:
    job = ROOT / "examples" / "pretrain-tokens.yaml"
    result = cli.invoke(gpuarb_app, ["plan", str(job), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[result.output.index("{"):])
    best = doc["placements"][0]
    assert best["nodes"] == 2 and best["unit"]["basis"].startswith("6 x 8e9 params x 1e+11 tokens")
    assert doc["right_sizing"]["need_gb"] == pytest.approx(8 * 16 * 1.2)


# -- report prices -------------------------------------------------------------------------------------------------


def test_report_prices_prices_a_million_tokens_per_gpu(facts) -> None:
    report = build_price_report(OFFERS, facts, "H100", "inference", now=NOW, unit_model=ModelSpec(8, "fp8"))
    units = [m.best_unit for m in report.models]
    assert all(u is not None for u in units) and units == sorted(units)  # cheapest unit cost first
    for m in report.models:
        q = m.unit_on_demand
        assert q is not None and q.usd_per_million_tokens is not None
        rate = resolve_throughput(facts.units, m.gpu_model, "8b", "fp8")
        assert rate is not None
        assert q.usd_per_million_tokens == pytest.approx(q.usd_per_hour * 1e6 / rate.tokens_per_s / 3600)
        assert m.unit_basis
    big = build_price_report(OFFERS, facts, "H100", "inference", unit_model=ModelSpec(70, "fp8"))
    assert [m.gpu_model for m in big.models if m.best_unit is not None] == ["H200"]
    assert next(m for m in big.models if m.gpu_model == "L4").unit_missing == R_MODEL_MEMORY


def test_report_prices_html_charts_the_unit_cost_with_provenance(facts) -> None:
    report = build_price_report(OFFERS, facts, "H100", "inference", now=NOW, unit_model=ModelSpec(8, "fp8"))
    html = prices_html(report, "2026-11-23T12:00:00+00:00", "test offers")
    page = parse(html)
    check_self_contained(page, html)
    check_figures(page)
    unit = [f for f in page.figures if f["attrs"]["data-kind"] == "unit-cost"]
    assert len(unit) == 1 and len(unit[0]["bars"]) == 5
    values = [float(b["attrs"]["data-value"]) for b in unit[0]["bars"]]
    assert values == sorted(values)


def test_cli_report_prices_unit_view_and_bad_input() -> None:
    result = cli.invoke(gpuarb_app, ["report", "prices", "--model-params-b", "70", "--precision", "fp8",
                                     "--gpu", "H100", "--gpu", "H200", "-f", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[result.output.index("{"):])
    assert doc["unit_model"] == {"params_b": 70.0, "precision": "fp8", "workload": "inference",
                                 "unit": "USD per million output tokens"}
    assert all(m["unit_cost"]["usd_per_million_tokens"] for m in doc["models"])
    result = cli.invoke(gpuarb_app, ["report", "prices", "--model-params-b", "70", "--precision", "fp7"])
    assert result.exit_code == 2 and "--precision: unknown precision 'fp7'" in result.output
    result = cli.invoke(gpuarb_app, ["report", "prices", "--precision", "fp8"])
    assert result.exit_code == 2 and "--precision needs --model-params-b" in result.output


# -- runs: GPUARB_METRICS, the ledger, report spend ---------------------------------------------------------------


def test_an_older_ledger_is_upgraded_in_place_with_empty_work(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    conn = sqlite3.connect(path)
    for script in legacy.STEPS[:2]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO runs (id, name, spec_path, spec_text, backend, state, created_at, updated_at) "
                 "VALUES ('20261101-000000-abcdef', 'old', 'j.yaml', 'name: old', 'local', 'succeeded', "
                 "'2026-11-01T00:00:00+00:00', '2026-11-01T00:00:00+00:00')")
    conn.commit()
    conn.close()
    with L.Ledger.open(path) as ledger:
        with ledger.database.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA user_version").scalar() == legacy.MIGRATED_USER_VERSION
        old = ledger.run("20261101-000000-abcdef")
        assert old.work_tokens is None and old.work_tasks is None
        ledger.set_work(old.id, tokens=5e6, tasks=10)
        assert ledger.run(old.id).work_tokens == 5e6 and ledger.run(old.id).work_tasks == 10
        with pytest.raises(ValueError):
            ledger.set_work(old.id, tokens=float("nan"), tasks=0)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        return self.now

    def sleep(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


def _run(tmp_path: Path, facts, ledger: L.Ledger, *, version: str, metrics: str, usd: float, polls: int) -> str:
    """One run on a 'local' fake backend whose job appends ``metrics`` to GPUARB_METRICS; ``polls`` x 1 h."""
    spec = spec_of(facts)
    cost = estimate(spec, Placement(one_gpu("L40S", 48, usd), 1, spot=False), facts)
    run_id = ledger.create_run(name="batch", spec_path="job.yaml", spec_text=INFERENCE, backend="local",
                               now=NOW, placements=[placement_row(cost)],
                               tags={"team": "ml", "model": "llama-3.1-8b", "version": version},
                               budget_total_usd=None, budget_hourly_usd=None)
    running = JobStatus(JobState.RUNNING)
    backend = FakeBackend(name="local", pins_placement=False, local_checkpoints=True, metrics=metrics,
                          scripts=[[*([running] * polls), JobStatus(JobState.SUCCEEDED)]])
    clock = Clock()
    runner = Runner(backend, ledger, clock=clock, sleep=clock.sleep,
                    options=RunOptions(poll_seconds=3600.0, checkpoint_root=tmp_path / "ck"), say=lambda m: None)
    assert runner.supervise(run_id, spec) == "succeeded"
    return run_id


def test_a_run_that_reports_tokens_shows_actual_usd_per_million_in_report_spend(tmp_path: Path, facts,
                                                                                monkeypatch) -> None:
    monkeypatch.setenv("GPUARB_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(usecases, "utcnow", lambda: NOW)
    with L.Ledger.open(tmp_path / "ledger.sqlite3") as ledger:
        # v1: 2 h at $1/h, 4e6 tokens -> $0.50 per million; v2: 3 h at $1/h, 4e6 tokens -> $0.75 (+50%)
        a = _run(tmp_path, facts, ledger, version="v1", metrics='{"tokens": 3000000}\n{"tokens": 1000000}\n',
                 usd=1.0, polls=2)
        b = _run(tmp_path, facts, ledger, version="v2", metrics='{"tokens": 4000000}\nnot json\n', usd=1.0, polls=3)
        assert ledger.run(a).work_tokens == 4e6 and ledger.run(b).work_tokens == 4e6
        assert (tmp_path / "ck" / a / "gpuarb-metrics.jsonl").is_file()
        notes = [e.message for e in ledger.events(a) if e.kind == "note"]
        assert any(m.startswith("work reported so far: 4,000,000 tokens") for m in notes)
        report = spend_report(usecases.ledger_records(ledger, ledger.runs()), "version", NOW)
    by = {g.key: g for g in report.groups}
    assert by["v1"].usd_per_million_tokens == pytest.approx(0.5)
    assert by["v2"].usd_per_million_tokens == pytest.approx(0.75)
    (v1, v2) = report.unit_costs
    assert (v1.version, v2.version, v2.previous) == ("v1", "v2", "v1")
    assert v2.change_pct == pytest.approx(50.0) and v2.rose and not v1.rose
    md = spend_markdown(report, "ledger.sqlite3")
    assert "USD/1M tok" in md and "| llama-3.1-8b | v2 | 1 | 4,000,000 | $3.00 | $0.7500 | +50.0% vs v1 |" in md
    assert "FLAG: llama-3.1-8b v2: USD per million tokens rose +50.0% vs v1" in md
    # the command
    result = cli.invoke(gpuarb_app, ["report", "spend", "--by", "version"])
    assert result.exit_code == 0, result.output
    assert "Unit cost by model and version" in result.output and "FLAG: llama-3.1-8b v2" in result.output
    result = cli.invoke(gpuarb_app, ["report", "spend", "--by", "model", "-f", "json", "--flag-rise-percent", "60"])
    doc = json.loads(result.output)
    assert doc["groups"][0]["usd_per_million_tokens"] == pytest.approx(5.0 / 8.0)
    assert [u["rose"] for u in doc["unit_costs"]] == [False, False]  # +50% is under a 60% threshold


def test_a_cloud_run_without_local_checkpoints_reads_no_metrics(tmp_path: Path, facts) -> None:
    with L.Ledger.open(tmp_path / "ledger.sqlite3") as ledger:
        spec = replace(spec_of(facts), checkpoint=None)
        cost = estimate(spec, Placement(one_gpu("L40S", 48, 1.0), 1, spot=False), facts)
        run_id = ledger.create_run(name="b", spec_path="j.yaml", spec_text=INFERENCE, backend="skypilot", now=NOW,
                                   placements=[placement_row(cost)], tags={}, budget_total_usd=None,
                                   budget_hourly_usd=None)
        backend = FakeBackend(metrics='{"tokens": 5}\n', scripts=[[JobStatus(JobState.SUCCEEDED)]])
        clock = Clock()
        Runner(backend, ledger, clock=clock, sleep=clock.sleep, options=RunOptions(checkpoint_root=tmp_path / "ck"),
               say=lambda m: None).supervise(run_id, spec)
        assert ledger.run(run_id).work_tokens is None


def test_baselines_never_pick_a_placement_that_cannot_hold_the_model(facts) -> None:
    from arbitrage.baselines import cheapest_listed, naive

    text = INFERENCE.replace("params_b: 8, precision: fp8", "params_b: 70, precision: fp8")
    spec = spec_of(facts, text)
    listed = cheapest_listed(spec, OFFERS, facts)
    # the L4 is the cheapest GPU-hour, but only the 141 GB H200 holds 84 GB
    assert listed is not None and listed.placement.offer.gpu_model == "H200" and not listed.unfit
    assert naive(spec, [replace(o, provider="aws") for o in OFFERS], facts) is None  # first choice H100 cannot

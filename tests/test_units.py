"""arbitrage.units: work in tokens -> hours, memory fit, throughput resolution (direct, bridged, wider precision),
the fact tables' citations, and GPUARB_METRICS lines. Expected figures are worked out by hand in the comments."""

from __future__ import annotations

import math

import pytest

from arbitrage import units as U
from arbitrage.errors import DataError
from arbitrage.facts import table_text

HEAD = ("gpu,model_class,precision,tokens_per_s,low,high,benchmark,model,input_tokens,output_tokens,source,url,"
        "as_of,notes\n")


def row(gpu: str, precision: str, value: float, bench: str, isl: str = "", osl: str = "", cls: str = "8b",
        low: str = "", high: str = "") -> str:
    return f"{gpu},{cls},{precision},{value},{low},{high},{bench},m,{isl},{osl},src,https://x,2026-01-01,\n"


def table(*rows: str) -> U.UnitFacts:
    precisions = U.UnitFacts().precisions
    return U.UnitFacts(throughput=U.parse_throughput("t.csv", HEAD + "".join(rows), precisions))


SYNTH = table(
    row("H100", "fp8", 2000, "A", low="1900", high="2100"),
    row("H200", "fp8", 2500, "A"),
    row("L40S", "fp8", 700, "A"),
    row("H100", "fp8", 500, "B-old"),  # the same H100 in an older benchmark
    row("L4", "fp8", 50, "B-old"),  # L4 only there: bridged through H100 -> 50 x 2000 / 500 = 200
    row("H100", "fp8", 8000, "C 128/2048", "128", "2048"),
    row("A100-80GB", "bf16", 2000, "C 128/2048", "128", "2048"),  # A100 at bf16: 2000 x 2000 / 8000 = 500
    row("H100", "fp8", 1000, "D 2048/128", "2048", "128"),
    row("A100-80GB", "bf16", 300, "D 2048/128", "2048", "128"),  # 300 x 2000 / 1000 = 600
    row("T4", "bf16", 10, "E"),  # no GPU in common with any other benchmark
)


def test_model_classes_and_bounds() -> None:
    assert [U.model_class(p) for p in (0.5, 8, 10, 10.1, 34, 70, 120, 405, 500, 501)] == [
        "8b", "8b", "8b", "13-34b", "13-34b", "70b", "70b", "405b", "405b", None]
    assert U.class_label("70b") == "70B" and U.class_label(None) == "none"


def test_memory_rule_and_tensor_parallel_fit_the_node() -> None:
    uf = U.UnitFacts()
    assert U.inference_memory_gb(U.ModelSpec(70, "fp8"), uf) == pytest.approx(84.0)  # 70 x 1 x 1.2
    assert U.inference_memory_gb(U.ModelSpec(70, "bf16"), uf) == pytest.approx(168.0)  # 70 x 2 x 1.2
    assert U.tensor_parallel(168.0, 80.0, 8) == 4  # 2 x 80 = 160 < 168: the next power of two
    assert U.tensor_parallel(84.0, 80.0, 8) == 2
    assert U.tensor_parallel(84.0, 141.0, 8) == 1
    assert U.tensor_parallel(486.0, 80.0, 8) == 8  # 405B fp8
    assert U.tensor_parallel(972.0, 80.0, 8) is None  # 405B bf16 needs 16 x 80 GB: not in one node
    assert U.tensor_parallel(84.0, 80.0, 1) is None  # one 80 GB GPU cannot hold it
    # training: 8B x 16 bytes / 8 GPUs x 1.2 = 19.2 GB per GPU
    assert U.training_memory_gb_per_gpu(U.ModelSpec(8), 8, uf) == pytest.approx(19.2)


def test_precision_chain_and_aliases() -> None:
    uf = U.UnitFacts()
    assert uf.precision_chain("fp8") == ("fp8", "bf16")
    assert uf.precision_chain("int4") == ("int4", "fp8", "bf16")
    assert uf.canonical_precision("FP16") == "bf16" and uf.canonical_precision("nvfp4") == "fp4"
    assert uf.canonical_precision("fp7") is None


def test_reference_benchmark_covers_most_gpus_and_direct_rows_win() -> None:
    h100 = U.resolve_throughput(SYNTH, "H100", "8b", "fp8")
    assert h100 is not None and h100.reference == "A"
    assert (h100.tokens_per_s, h100.low, h100.high, h100.precision) == (2000, 1900, 2100, "fp8")
    assert "range 1,900-2,100" in h100.basis


def test_a_gpu_outside_the_reference_is_bridged_through_a_shared_gpu() -> None:
    l4 = U.resolve_throughput(SYNTH, "L4", "8b", "fp8")
    assert l4 is not None and l4.tokens_per_s == pytest.approx(200.0)  # 50 x 2000 / 500
    assert "bridged to A through H100" in l4.basis and "0.10x H100 in B-old" in l4.basis


def test_a_gpu_without_the_precision_uses_its_wider_figure_bridged_median() -> None:
    a100 = U.resolve_throughput(SYNTH, "A100-80GB", "8b", "fp8")
    assert a100 is not None and a100.precision == "bf16" and "no fp8 figure: bf16" in a100.basis
    # two shared benchmarks: 2000 x 2000/8000 = 500 and 300 x 2000/1000 = 600 -> median 550, range 500..600
    assert a100.tokens_per_s == pytest.approx(550.0)
    assert (a100.low, a100.high) == (pytest.approx(500.0), pytest.approx(600.0))


def test_a_gpu_with_no_common_gpu_is_marked_not_comparable() -> None:
    t4 = U.resolve_throughput(SYNTH, "T4", "8b", "fp8")
    assert t4 is not None and not t4.comparable and t4.tokens_per_s == 10 and "not comparable" in t4.basis


def test_no_fact_for_a_missing_gpu_class_or_narrower_precision() -> None:
    assert U.resolve_throughput(SYNTH, "B200", "8b", "fp8") is None
    assert U.resolve_throughput(SYNTH, "H100", "70b", "fp8") is None
    assert U.resolve_throughput(SYNTH, "H100", "8b", "bf16") is None  # fp8 figures never stand in for bf16


def test_the_jobs_input_output_ratio_picks_the_nearest_benchmark() -> None:
    decode = U.resolve_throughput(SYNTH, "H100", "8b", "fp8", ratio=128 / 2048)
    prefill = U.resolve_throughput(SYNTH, "H100", "8b", "fp8", ratio=16.0)
    assert decode is not None and decode.reference == "C 128/2048" and decode.tokens_per_s == 8000
    assert prefill is not None and prefill.reference == "D 2048/128" and prefill.tokens_per_s == 1000


def test_inference_rate_from_replicas_on_the_node() -> None:
    work = U.TokenWork(U.ModelSpec(8, "fp8"), 7.2e9)
    rate = U.unit_rate(work, "inference", "H100", 80.0, 8, 2, 0.5, SYNTH)
    assert isinstance(rate, U.UnitRate)
    # 8B fp8 = 9.6 GB: TP1, 8 replicas per node; 2 nodes x 8 GPUs x 2000 = 32,000 tok/s (no scaling loss)
    assert (rate.tensor_parallel, rate.replicas_per_node, rate.gpus_used_per_node) == (1, 8, 8)
    assert rate.tokens_per_second == pytest.approx(32_000)
    assert rate.work_hours == pytest.approx(7.2e9 / 32_000 / 3600)  # 62.5 h
    assert rate.work_hours_low == pytest.approx(7.2e9 / (16 * 2100) / 3600)
    assert rate.work_hours_high == pytest.approx(7.2e9 / (16 * 1900) / 3600)


def test_leftover_gpus_idle_when_replicas_do_not_divide_the_node() -> None:
    facts = table(row("H100", "fp8", 1000, "A", cls="70b"))
    work = U.TokenWork(U.ModelSpec(100, "fp8"), 1e9)  # 120 GB: TP2 on 80 GB GPUs; 5 GPUs hold 2 replicas
    rate = U.unit_rate(work, "inference", "H100", 80.0, 5, 1, 1.0, facts)
    assert isinstance(rate, U.UnitRate) and (rate.tensor_parallel, rate.replicas_per_node) == (2, 2)
    assert rate.gpus_used_per_node == 4 and rate.tokens_per_second == pytest.approx(4000)


def test_rejections_name_the_reason() -> None:
    big = U.TokenWork(U.ModelSpec(70, "bf16"), 1e9)
    assert U.unit_rate(big, "inference", "L4", 24.0, 1, 1, 1.0, SYNTH) == U.R_MODEL_MEMORY
    small = U.TokenWork(U.ModelSpec(8, "fp8"), 1e9)
    assert U.unit_rate(small, "inference", "B200", 180.0, 8, 1, 1.0, SYNTH) == U.R_NO_THROUGHPUT
    huge = U.TokenWork(U.ModelSpec(600, "fp4"), 1e9)
    assert U.unit_rate(huge, "inference", "B200", 400.0, 8, 1, 1.0, SYNTH) == U.R_NO_THROUGHPUT  # no class


def test_training_hours_are_six_n_d_over_peak_times_mfu(facts) -> None:
    work = U.TokenWork(U.ModelSpec(8, "bf16"), 1e12)
    rate = U.unit_rate(work, "training", "H100", 80.0, 8, 2, 0.9, facts.units)
    assert isinstance(rate, U.UnitRate)
    peak = next(f for f in facts.units.peak_flops if "H100" in f.gpus and f.precision == "bf16")
    mfu = next(m for m in facts.units.mfu if "H100" in m.gpus and m.precision == "bf16" and m.model_class == "8b")
    flops = 6 * 8e9 * 1e12  # 4.8e22
    cluster = 16 * peak.dense_tflops * 1e12 * mfu.mfu * 0.9
    assert rate.work_hours == pytest.approx(flops / cluster / 3600)
    # consistency: the hours at the cluster's rate do exactly 6*N*D FLOPs
    assert rate.work_hours * 3600 * cluster == pytest.approx(flops)
    assert rate.work_hours_low <= rate.work_hours <= rate.work_hours_high
    assert "6 x 8e9 params" in rate.basis and mfu.source in rate.basis


def test_training_rejects_unsharded_state_and_gpus_without_mfu(facts) -> None:
    work = U.TokenWork(U.ModelSpec(70, "bf16"), 1e12)
    # 70B x 16 B x 1.2 = 1,344 GB over 8 x 80 GB = 640 GB: does not fit one node
    assert U.unit_rate(work, "training", "H100", 80.0, 8, 1, 1.0, facts.units) == U.R_MODEL_MEMORY
    assert isinstance(U.unit_rate(work, "training", "H100", 80.0, 8, 4, 1.0, facts.units), U.UnitRate)
    small = U.TokenWork(U.ModelSpec(1, "bf16"), 1e9)
    assert U.unit_rate(small, "training", "L4", 24.0, 8, 1, 1.0, facts.units) == U.R_NO_MFU


def test_training_uses_the_nearest_class_when_its_own_has_no_mfu(facts) -> None:
    work = U.TokenWork(U.ModelSpec(8, "fp8"), 1e11)  # B200 fp8 has 8b and 405b MFU rows
    rate = U.unit_rate(work, "training", "B200", 180.0, 8, 1, 1.0, facts.units)
    assert isinstance(rate, U.UnitRate) and "MFU" in rate.basis
    mid = U.unit_rate(U.TokenWork(U.ModelSpec(30, "fp8"), 1e11), "training", "B200", 180.0, 8, 1, 1.0, facts.units)
    assert isinstance(mid, U.UnitRate) and "MFU of the <=8B class" in mid.basis


@pytest.mark.parametrize(("line", "needle"), [
    ("gpu,model_class,precision\n", "missing column"),
    (HEAD + "H100,8b,fp8,100,,,A,m,,,,https://x,2026-01-01,\n", "'source' is empty"),
    (HEAD + "H100,8b,fp8,100,,,A,m,,,src,,2026-01-01,\n", "'url' is empty"),
    (HEAD + "H100,8b,fp8,100,,,A,m,,,src,https://x,,\n", "'as_of' is empty"),
    (HEAD + "H100,9b,fp8,100,,,A,m,,,src,https://x,2026-01-01,\n", "unknown model_class"),
    (HEAD + "H100,8b,fp9,100,,,A,m,,,src,https://x,2026-01-01,\n", "unknown precision"),
    (HEAD + "H100,8b,fp8,-1,,,A,m,,,src,https://x,2026-01-01,\n", "positive number"),
    (HEAD + "H100,8b,fp8,100,150,200,A,m,,,src,https://x,2026-01-01,\n", "outside its range"),
    (HEAD + "H999,8b,fp8,100,,,A,m,,,src,https://x,2026-01-01,\n", "not in gpus.csv"),
])
def test_bad_fact_rows_name_file_line_and_column(facts, line: str, needle: str) -> None:
    with pytest.raises(DataError, match=needle) as err:
        U.parse_throughput("inference_throughput.csv", line, facts.units.precisions, facts.gpus)
    assert str(err.value).startswith("inference_throughput.csv")


def test_every_bundled_fact_row_cites_a_source_url_and_date(facts) -> None:
    uf = facts.units
    rows = [*uf.throughput, *uf.peak_flops, *uf.mfu]
    assert len(uf.throughput) >= 40 and uf.peak_flops and uf.mfu
    for r in rows:
        assert r.source and r.url.startswith("https://") and r.as_of[:4].isdigit(), r.where
        assert all(g in facts.gpus for g in r.gpus), r.where
    for r in uf.mfu:
        assert 0 < r.low <= r.mfu <= r.high <= 1, r.where
    label, text = table_text("units.toml")
    assert text.count("source = ") == 4, label


def test_bundled_figures_match_their_published_totals(facts) -> None:
    """Anchor rows against the raw figures their notes quote: per-GPU = system total / GPUs."""
    rows = {(r.benchmark, r.gpus[0], r.model_class): r for r in facts.units.throughput}
    nvidia_h100 = rows[("MLPerf Inference v4.1 Llama 2 70B Offline", "H100", "70b")]
    assert nvidia_h100.low <= 24_524.9 / 8 <= nvidia_h100.high  # NVIDIA DGX-H100 x8 in the range
    l4 = rows[("MLPerf Inference v3.1 GPT-J 6B Offline", "L4", "8b")]
    assert l4.tokens_per_s == pytest.approx(1.30094 * 69, abs=0.05)  # samples/s x 69 tokens
    assert rows[("TensorRT-LLM 1.0 Llama 3.3 70B ISL1000/OSL1000", "H100", "70b")].tokens_per_s == 4205 / 2
    peak = {(g, p.precision): p.dense_tflops for p in facts.units.peak_flops for g in p.gpus}
    assert peak[("H100", "fp8")] == pytest.approx(2 * peak[("H100", "bf16")], rel=1e-3)
    assert peak[("L40S", "bf16")] == pytest.approx(362.05)


def test_parse_metrics_sums_increments_and_counts_bad_lines() -> None:
    text = '{"tokens": 1000}\n\n{"input_tokens": 900, "output_tokens": 100, "tasks": 2}\nnot json\n' \
           '{"tokens": -5}\n{"tokens": true}\n[1, 2]\n{"tasks": 1}\n'
    done = U.parse_metrics(text)
    assert (done.tokens, done.tasks, done.lines, done.bad_lines) == (2000.0, 3.0, 3, 4)
    assert done.first_bad == "not json" and done.reported
    assert U.parse_metrics(iter(['{"tokens": 5}\n'])).tokens == 5.0
    assert not U.parse_metrics("").reported


def test_usd_per_million_and_descriptions() -> None:
    assert U.usd_per_million(50.0, 2e8) == pytest.approx(0.25)
    assert U.usd_per_million(math.inf, 1e6) is None and U.usd_per_million(1.0, 0) is None
    work = U.TokenWork(U.ModelSpec(70, "fp8", "llama-3.1-70b"), 2e9, input_tokens=6e9)
    assert work.total_tokens == 8e9 and work.input_output_ratio == 3.0
    assert work.describe("inference") == "6e+09 input + 2e+09 output tokens of llama-3.1-70b, 70B fp8 (70B class)"
    tasks = U.TokenWork(U.ModelSpec(8), 1e6, tasks=1000, tokens_per_task=1000)
    assert tasks.describe("inference").startswith("1000 tasks x 1000 output tokens of 8B bf16")

"""Bad job specs never pass: every malformed value is exit 2 with one `file:line: field: message` line.

Each case here was accepted (exit 0, sometimes with a nonsense plan) or crashed (an internal error) before the
bounded validation layer (arbitrage/specfile.py, arbitrage/safeyaml.py).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arbitrage.cli import app
from arbitrage.errors import SpecError
from arbitrage.specfile import parse_jobspec_text

BASE = """\
name: t
resources:
  accelerators: {H100: 8}
  cpus: 8
  memory: 64
num_nodes: 1
arbitrage:
  work: {gpu_hours: 64}
  data: {uri: s3://b/x, region: us-east-1, size_gb: 10}
  checkpoint: {uri: s3://c/x, interval_minutes: 10}
  budget: {max_total_usd: 5000, max_hourly_usd: 200}
  deadline: 48h
  min_gpu_memory_gb: 40
  outputs_gb: 1
"""

cli = CliRunner()


def _error(text: str, facts, **kwargs) -> str:
    with pytest.raises(SpecError) as info:
        parse_jobspec_text(text, facts, where="job.yaml", **kwargs)
    return str(info.value)


def test_the_base_spec_is_valid(facts) -> None:
    spec = parse_jobspec_text(BASE, facts, where="job.yaml")
    assert spec.num_nodes == 1 and spec.min_vcpus == 8 and spec.data is not None


# (old text, new text, line, field): each replacement makes the base spec invalid in exactly one field.
CASES = [
    ("num_nodes: 1", "num_nodes: 1000000000", 6, "num_nodes"),
    ("num_nodes: 1", "num_nodes: 1025", 6, "num_nodes"),
    ("num_nodes: 1", "num_nodes: true", 6, "num_nodes"),
    ("num_nodes: 1", "num_nodes: 0", 6, "num_nodes"),
    ("num_nodes: 1", "num_nodes: " + "9" * 5000, 6, "num_nodes"),
    ("cpus: 8", "cpus: -5", 4, "resources.cpus"),
    ("cpus: 8", "cpus: .nan", 4, "resources.cpus"),
    ("cpus: 8", "cpus: '.inf+'", 4, "resources.cpus"),
    ("memory: 64", "memory: .nan", 5, "resources.memory"),
    ("memory: 64", "memory: 0", 5, "resources.memory"),
    ("gpu_hours: 64", "gpu_hours: .inf", 8, "arbitrage.work.gpu_hours"),
    ("gpu_hours: 64", "gpu_hours: 1e400", 8, "arbitrage.work.gpu_hours"),
    ("gpu_hours: 64", "gpu_hours: true", 8, "arbitrage.work.gpu_hours"),
    ("gpu_hours: 64", "gpu_hours: 1e12", 8, "arbitrage.work.gpu_hours"),
    ("size_gb: 10", "size_gb: .inf", 9, "arbitrage.data.size_gb"),
    ("size_gb: 10", "size_gb: 1e30", 9, "arbitrage.data.size_gb"),
    ("interval_minutes: 10", "interval_minutes: .nan", 10, "arbitrage.checkpoint.interval_minutes"),
    ("max_total_usd: 5000", "max_total_usd: .inf", 11, "arbitrage.budget.max_total_usd"),
    ("max_hourly_usd: 200", "max_hourly_usd: 1e300", 11, "arbitrage.budget.max_hourly_usd"),
    ("deadline: 48h", "deadline: " + "9" * 400 + "h", 12, "arbitrage.deadline"),
    ("deadline: 48h", "deadline: 100000d", 12, "arbitrage.deadline"),
    ("deadline: 48h", "deadline: 2020-02-30", 12, "arbitrage.deadline"),
    ("deadline: 48h", "deadline: 2026-13-01T00:00:00Z", 12, "arbitrage.deadline"),
    ("deadline: 48h", "deadline: '2026-02-30T00:00:00Z'", 12, "arbitrage.deadline"),
    ("min_gpu_memory_gb: 40", "min_gpu_memory_gb: .inf", 13, "arbitrage.min_gpu_memory_gb"),
    ("outputs_gb: 1", "outputs_gb: .nan", 14, "arbitrage.outputs_gb"),
    ("{H100: 8}", "{H100: .inf}", 3, "resources.accelerators"),
    ("{H100: 8}", "{H100: 1e400}", 3, "resources.accelerators"),
    ("{H100: 8}", "'H100:1e400'", 3, "resources.accelerators"),
    ("{H100: 8}", "'H100:nan'", 3, "resources.accelerators"),
    ("{H100: 8}", "{H100: true}", 3, "resources.accelerators"),
    ("{H100: 8}", "{H100: 100000}", 3, "resources.accelerators"),
    ("name: t", "name: !!binary aGVsbG8=", 1, "name"),
    ("name: t", "name: !!python/name:os.system", 1, "name"),
    ("name: t", "name: !!set {a, b}", 1, "name"),
]


@pytest.mark.parametrize(("old", "new", "line", "field"), CASES, ids=[c[1][:40] for c in CASES])
def test_out_of_bounds_values_name_file_line_and_field(old: str, new: str, line: int, field: str, facts) -> None:
    text = BASE.replace(old, new, 1)
    assert text != BASE
    message = _error(text, facts)
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"job.yaml:{line}: {field}: "), message


@pytest.mark.parametrize("key", ["ordered", "any_of"])
def test_empty_candidate_lists_are_errors(key: str, facts) -> None:
    text = BASE.replace("accelerators: {H100: 8}", f"{key}: []")
    message = _error(text, facts)
    assert message.startswith(f"job.yaml:3: resources.{key}: ") and "at least one" in message, message


def test_a_candidate_without_accelerators_is_an_error(facts) -> None:
    text = BASE.replace("accelerators: {H100: 8}", "any_of: [{cpus: 4}]")
    assert _error(text, facts).startswith("job.yaml:3: resources.any_of.0.accelerators: ")


def test_recursive_alias_is_an_error_not_a_recursion_error(facts) -> None:
    message = _error(BASE + "  tags: &t [*t]\n", facts)
    assert message.startswith("job.yaml:15: arbitrage.tags: ") and "recursive" in message, message


def test_deep_nesting_is_refused_before_building_objects(facts) -> None:
    message = _error(BASE + "setup: " + "[" * 600 + "]" * 600 + "\n", facts)
    assert message.startswith("job.yaml:15: setup.") and "nested deeper" in message, message


def test_billion_laughs_fails_fast_even_under_an_unknown_key(facts) -> None:
    bomb = ['  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    bomb += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 10)]
    text = BASE + "unknown_key:\n" + "\n".join(bomb) + "\n"
    started = time.perf_counter()
    message = _error(text, facts)
    assert time.perf_counter() - started < 1.0
    assert "once aliases are expanded" in message and message.startswith("job.yaml:"), message


def test_a_huge_file_is_refused_by_size(tmp_path: Path, facts) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(BASE + "setup: |\n" + ("  echo hello\n" * 200_000))
    result = cli.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "KiB" in result.output and "Traceback" not in result.output


def test_integer_over_python_digit_limit_is_an_error(facts) -> None:
    message = _error(BASE.replace("cpus: 8", "cpus: " + "1" * 4400), facts)
    assert message.startswith("job.yaml:4: resources.cpus: "), message


def test_validate_rejects_a_deadline_in_the_past(tmp_path: Path) -> None:
    path = tmp_path / "past.yaml"
    path.write_text(BASE.replace("deadline: 48h", "deadline: '2020-01-01T00:00:00Z'"))
    result = cli.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert re.search(rf"{re.escape(str(path))}:12: arbitrage\.deadline: .*past", result.output), result.output


def test_plan_rejects_a_deadline_in_the_past_as_of_now(tmp_path: Path) -> None:
    path = tmp_path / "past.yaml"
    path.write_text(BASE.replace("deadline: 48h", "deadline: '2026-11-01T00:00:00Z'"))
    result = cli.invoke(app, ["plan", str(path), "--now", "2026-11-23T12:00:00Z"])
    assert result.exit_code == 2 and ":12: arbitrage.deadline:" in result.output, result.output
    ok = cli.invoke(app, ["plan", str(path), "--now", "2026-10-30T12:00:00Z", "--format", "json"])
    assert ok.exit_code in (0, 3, 4) and "arbitrage.deadline" not in ok.output, ok.output


def test_infinite_data_no_longer_bypasses_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "inf.yaml"
    path.write_text(BASE.replace("size_gb: 10", "size_gb: .inf"))
    result = cli.invoke(app, ["plan", str(path), "--format", "json"])
    assert result.exit_code == 2 and "arbitrage.data.size_gb" in result.output


def test_yaml_1_2_exponents_are_numbers(facts) -> None:
    spec = parse_jobspec_text(BASE.replace("gpu_hours: 64", "gpu_hours: 1e3"), facts, where="job.yaml")
    assert spec.work.gpu_hours == 1000.0

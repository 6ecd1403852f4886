"""Job spec parsing: SkyPilot compatibility, normalisation, and line-numbered errors."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from arbitrage.errors import SpecError
from arbitrage.jobspec import AcceleratorChoice
from arbitrage.specfile import json_schema, parse_deadline, parse_jobspec_text, read_jobspec

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """\
name: t
resources:
  accelerators: H100:8
arbitrage:
  work: {gpu_hours: 64}
"""


def parse(text: str, facts):
    return parse_jobspec_text(text, facts, where="job.yaml")


def error_of(text: str, facts) -> str:
    with pytest.raises(SpecError) as info:
        parse(text, facts)
    return str(info.value)


@pytest.mark.parametrize("path", sorted((ROOT / "jobspecs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_bundled_jobspec_is_valid(path: Path, facts) -> None:
    spec = read_jobspec(str(path), facts)
    assert spec.accelerators and spec.work.gpu_hours > 0
    assert spec.task["run"], "bundled specs are runnable SkyPilot tasks"


def test_at_least_five_bundled_jobspecs() -> None:
    assert len(list((ROOT / "jobspecs").glob("*.yaml"))) >= 5


def test_minimal_spec_defaults(facts) -> None:
    spec = parse(MINIMAL, facts)
    assert spec.accelerators == (AcceleratorChoice("H100", 8),)
    assert spec.num_nodes == 1 and spec.spot == "never" and spec.interconnect == "any"
    assert spec.work.reference == "H100" and spec.work.gpu_hours == 64
    assert spec.task == {"name": "t", "resources": {"accelerators": "H100:8"}}


def test_accelerator_forms(facts) -> None:
    anyof = parse(MINIMAL.replace("H100:8", "{H100: 8, a100-80gb: 8}"), facts)
    assert [str(a) for a in anyof.accelerators] == ["H100:8", "A100-80GB:8"] and not anyof.ordered
    ordered = parse(MINIMAL.replace("H100:8", '["A100:8", "H100:8"]'), facts)
    assert [str(a) for a in ordered.accelerators] == ["A100:8", "H100:8"] and ordered.ordered
    flow = parse(MINIMAL.replace("H100:8", "{H100:8, A100:8}"), facts)  # SkyPilot set notation
    assert [str(a) for a in flow.accelerators] == ["H100:8", "A100:8"]
    single = parse(MINIMAL.replace("H100:8", "H100"), facts)
    assert single.accelerators == (AcceleratorChoice("H100", 1),)


def test_skypilot_ordered_resources(facts) -> None:
    text = MINIMAL.replace("  accelerators: H100:8\n",
                           "  ordered:\n    - accelerators: H100:8\n    - accelerators: A100-80GB:8\n")
    spec = parse(text, facts)
    assert spec.ordered and [a.name for a in spec.accelerators] == ["H100", "A100-80GB"]


def test_unknown_gpu_names_line_and_suggestion(facts) -> None:
    msg = error_of(MINIMAL.replace("H100:8", "H10:8"), facts)
    assert msg == "job.yaml:3: resources.accelerators: unknown GPU 'H10' (did you mean H100?)"


def test_fractional_gpu_rejected(facts) -> None:
    assert "whole number" in error_of(MINIMAL.replace("H100:8", "H100:0.5"), facts)


def test_negative_budget_names_field_and_line(facts) -> None:
    msg = error_of(MINIMAL + "  budget: {max_total_usd: -5}\n", facts)
    assert msg.startswith("job.yaml:6: arbitrage.budget.max_total_usd:")
    assert "greater than 0" in msg


def test_unknown_field_suggests(facts) -> None:
    msg = error_of(MINIMAL + "  deadlin: 4h\n", facts)
    assert msg == "job.yaml:6: arbitrage.deadlin: unknown field 'deadlin' (did you mean 'deadline'?)"


def test_missing_work_and_several_errors_reported_together(facts) -> None:
    text = "name: t\nresources: {accelerators: H100:8}\nnum_nodes: 0\narbitrage:\n  spot: sometimes\n"
    msg = error_of(text, facts)
    lines = msg.splitlines()
    assert any(line.startswith("job.yaml:3: num_nodes:") for line in lines)
    assert any(line.startswith("job.yaml:5: arbitrage.spot:") and "sometimes" in line for line in lines)
    # issue 14: a task without arbitrage.work plans (ranked by cluster $/h), so no "required field" line for it.
    assert not any("arbitrage.work" in line for line in lines)


def test_work_needs_exactly_one_measure(facts) -> None:
    msg = error_of(MINIMAL.replace("{gpu_hours: 64}", "{gpu_hours: 64, hours: 3}"), facts)
    assert "exactly one of gpu_hours or hours" in msg


def test_work_in_hours_converts_to_gpu_hours(facts) -> None:
    spec = parse(MINIMAL.replace("{gpu_hours: 64}", "{hours: 6}").replace("name: t\n", "name: t\nnum_nodes: 2\n"),
                 facts)
    assert spec.work.gpu_hours == 6 * 8 * 2 and spec.work.reference == "H100"


def test_malformed_yaml_names_line(facts) -> None:
    msg = error_of("name: t\nresources:\n  accelerators: [H100:8\narbitrage: {}\n", facts)
    assert msg.startswith("job.yaml:") and "YAML syntax error" in msg


def test_duplicate_keys_are_errors(facts) -> None:
    msg = error_of(MINIMAL + "  spot: auto\n  spot: never\n", facts)
    assert msg == "job.yaml:7: arbitrage.spot: duplicate key"


def test_not_a_mapping_and_empty(facts) -> None:
    assert "expected a mapping" in error_of("- a\n- b\n", facts)
    assert "empty" in error_of("", facts)


def test_unknown_provider_and_cloud(facts) -> None:
    assert "unknown provider 'vastai' (did you mean 'vast'?)" in error_of(
        MINIMAL + "  providers: {deny: [vastai]}\n", facts)
    assert "unknown cloud 'awz'" in error_of(MINIMAL.replace("H100:8", "H100:8\n  cloud: awz"), facts)


def test_skypilot_cloud_region_and_use_spot(facts) -> None:
    text = MINIMAL.replace("H100:8", "H100:8\n  infra: aws/us-west-2\n  use_spot: true")
    spec = parse(text, facts)
    assert spec.providers_allow == ("aws",) and spec.regions_allow == ("us-west-2",) and spec.spot == "always"
    conflict = error_of(text + "  spot: never\n", facts)
    assert "arbitrage.spot: conflicts with resources.use_spot" in conflict


def test_data_provider_inferred_and_region_required(facts) -> None:
    spec = parse(MINIMAL + "  data: {uri: gs://b/x, region: us-central1, size_gb: 10}\n", facts)
    assert spec.data is not None and spec.data.provider == "gcp"
    assert "arbitrage.data.region: required" in error_of(MINIMAL + "  data: {uri: s3://b/x, size_gb: 10}\n", facts)
    assert "outputs_gb needs arbitrage.data" in error_of(MINIMAL + "  outputs_gb: 5\n", facts)


@pytest.mark.parametrize(("text", "hours"), [("48h", 48), ("2d", 48), ("1d12h", 36), ("90m", 1.5), ("1.5h", 1.5)])
def test_deadline_durations(text: str, hours: float) -> None:
    assert parse_deadline(text).hours == pytest.approx(hours)


def test_deadline_timestamps() -> None:
    stamp = parse_deadline("2026-11-25T12:00:00Z")
    assert stamp.hours_left(datetime(2026, 11, 23, 12, tzinfo=timezone.utc)) == pytest.approx(48)
    with pytest.raises(ValueError, match="needs a timezone"):
        parse_deadline("2026-11-25T12:00:00")
    with pytest.raises(ValueError, match="cannot read"):
        parse_deadline("soon")


def test_read_jobspec_file_errors(tmp_path: Path, facts) -> None:
    with pytest.raises(SpecError, match="no such file"):
        read_jobspec(str(tmp_path / "missing.yaml"), facts)
    with pytest.raises(SpecError, match="is a directory"):
        read_jobspec(str(tmp_path), facts)
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match="not a UTF-8"):
        read_jobspec(str(binary), facts)


def test_json_schema_describes_the_format() -> None:
    schema = json_schema()
    json.dumps(schema)
    assert schema["title"] == "gpuarb job spec"
    # issue 14: a plain SkyPilot task is a job spec, so name, resources and arbitrage are optional now.
    assert not schema.get("required")
    assert {"name", "resources", "arbitrage"} <= set(schema["properties"])
    arbitrage = schema["$defs"]["ArbitrageModel"]["properties"]
    assert {"work", "spot", "checkpoint", "interconnect", "data", "deadline", "budget", "tags"} <= set(arbitrage)

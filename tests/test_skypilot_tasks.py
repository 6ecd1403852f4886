"""Real SkyPilot task files (tests/fixtures/skypilot_tasks, from skypilot-org/skypilot) plan and dry-run as they are,
with SkyPilot's meaning: the accelerators, spot choices, cloud/region pins and node counts gpuarb reads are the ones
SkyPilot's own parser (sky.Resources.from_yaml_config) reads from the same file."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from arbitrage import app
from arbitrage.errors import LaunchError, SpecError
from arbitrage.jobspec import SpecOverrides
from arbitrage.params import Source
from arbitrage.specfile import parse_infra, parse_jobspec_text, read_jobspec

sky = pytest.importorskip("sky")

TASKS = Path(__file__).parent / "fixtures" / "skypilot_tasks"
FILES = sorted(TASKS.glob("*.yaml"))
NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
# Files that are infeasible over the bundled snapshot for a reason the plan names.
INFEASIBLE = {"aws-efa-nccl-eks.yaml": "owned"}


@pytest.fixture(scope="module")
def facts():
    return app.load_facts()


@pytest.fixture(scope="module")
def offers(facts):
    return app.load_snapshot(facts)


def _sky_candidates(path: Path, facts) -> set[tuple[str | None, str | None, bool, str, int]]:
    """(cloud, region, use_spot, accelerator, count) of every candidate SkyPilot's own parser reads (accelerator
    names canonical, as SkyPilot's catalog lookup makes them: A10g is A10G)."""
    resources = copy.deepcopy(yaml.safe_load(path.read_text())["resources"])
    if "spot_recovery" in resources:  # SkyPilot 0.14's schema wants the newer name; the meaning is the same
        resources["job_recovery"] = resources.pop("spot_recovery")
    out = set()
    for r in sky.Resources.from_yaml_config(resources):
        (name, count), = r.accelerators.items()
        cloud = str(r.cloud).lower() if r.cloud is not None else None
        out.add((cloud, r.region, bool(r.use_spot), facts.canonical_gpu(name) or name, int(count)))
    return out


def _ours(spec) -> set[tuple[str | None, str | None, bool, str, int]]:
    """The same tuples as gpuarb reads them (the spec-wide rules, or each candidate's own pins)."""
    if spec.candidates:
        policy = {"never": (False,), "always": (True,), "auto": (False, True)}[spec.spot]
        return {(c.provider, c.region, s, c.accelerator.name, c.accelerator.count)
                for c in spec.candidates for s in ((c.spot,) if c.spot is not None else policy)}
    cloud = spec.providers_allow[0] if spec.providers_allow else None
    region = spec.regions_allow[0] if spec.regions_allow else None
    spots = {"never": (False,), "always": (True,), "auto": (False, True)}[spec.spot]
    return {(cloud, region, s, a.name, a.count) for a in spec.accelerators for s in spots}


def test_at_least_fifteen_real_files_with_a_source_readme() -> None:
    assert len(FILES) >= 15
    readme = (TASKS / "README.md").read_text()
    assert "skypilot-org/skypilot" in readme and all(f.name in readme for f in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_gpuarb_reads_what_skypilot_reads(path: Path, facts) -> None:
    spec = read_jobspec(str(path), facts, NOW)
    theirs = _sky_candidates(path, facts)
    raw = yaml.safe_load(path.read_text())
    assert spec.num_nodes == raw.get("num_nodes", 1)
    left_out = {n.split("left out ", 1)[1].split(":")[0] for n in spec.notes if "left out" in n}
    known = {t for t in theirs if t[3] in {a.name for a in spec.accelerators}}
    if left_out:  # a GPU gpuarb has no facts for (L40) is the only thing dropped, and the note says so
        assert {t[3] for t in theirs - known} == {"L40"}
    theirs = known
    if any(t[0] == "kubernetes" for t in theirs):  # owned capacity: priced as onprem, with a note
        assert spec.providers_allow == ("onprem",) and any("Kubernetes infra" in n for n in spec.notes)
        theirs = {("onprem", None, *t[2:]) for t in theirs}
    assert _ours(spec) == theirs
    assert not spec.work.known and "no duration known" in spec.notes[0]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_file_plans_over_the_snapshot(path: Path, facts, offers) -> None:
    spec = read_jobspec(str(path), facts, NOW)
    result = app.plan_offers(spec, offers, facts, NOW)
    if path.name in INFEASIBLE:
        assert not result.placements
        assert INFEASIBLE[path.name] == "owned" or result.rejections.get(INFEASIBLE[path.name])
        return
    assert result.placements
    hourly = [b.hourly_usd for b in result.placements]
    assert hourly == sorted(hourly) or spec.ordered or spec.spot != "never"  # cluster $/h, as SkyPilot ranks
    for b in result.placements:
        assert b.work_hours == 1.0


@pytest.mark.parametrize("path", [f for f in FILES if f.name not in INFEASIBLE], ids=lambda p: p.name)
def test_every_feasible_file_dry_runs_into_a_task_skypilot_loads(path: Path, facts, monkeypatch) -> None:
    monkeypatch.setenv("GPUARB_SOURCE", "snapshot")
    prepared = app.prepare_run(str(path), facts, backend="skypilot", check_backend=False,
                                source=Source.snapshot)
    envs = yaml.safe_load(path.read_text()).get("envs") or {}
    if any(v is None for v in envs.values()):  # SkyPilot too refuses an env without a value (sky launch --env NAME)
        with pytest.raises(LaunchError, match=r"envs\.HF_TOKEN has no value"):
            app.dry_run(prepared)
        return
    shown = app.dry_run(prepared)
    task = yaml.safe_load(shown.task)
    res = task["resources"]
    raw = yaml.safe_load(path.read_text())["resources"]
    assert "spot_recovery" not in res
    if raw.get("spot_recovery") and res.get("use_spot"):
        assert res["job_recovery"]["strategy"] == raw["spot_recovery"]
    for kept in ("disk_size", "disk_tier", "ports", "image_id"):
        if kept in raw:
            assert res[kept] == raw[kept]
    resources = sky.Resources.from_yaml_config(copy.deepcopy(res))
    assert len(resources) == 1


def test_any_of_entries_keep_their_own_infra_and_spot(facts, offers) -> None:
    text = ("name: t\nresources:\n  any_of:\n    - {infra: aws, accelerators: 'A100:8'}\n"
            "    - {infra: gcp/us-central1, accelerators: 'H100:8', use_spot: true}\n")
    spec = parse_jobspec_text(text, facts, "job.yaml", NOW)
    result = app.plan_offers(spec, offers, facts, NOW)
    seen = {(b.placement.offer.provider, b.placement.offer.gpu_model, b.placement.spot) for b in result.placements}
    assert seen and {p for p, _, _ in seen} <= {"aws", "gcp"}
    assert ("aws", "A100", False) in {(p, g, s) for p, g, s in seen}
    assert all(s for p, g, s in seen if p == "gcp") and all(g == "H100" for p, g, _ in seen if p == "gcp")
    assert all(b.placement.offer.region == "us-central1" for b in result.placements
               if b.placement.offer.provider == "gcp")


def test_infra_strings_are_read_as_skypilot_reads_them() -> None:
    from sky.utils.infra_utils import InfraInfo

    for text in ("aws", "aws/us-east-1", "aws/us-east-1/us-east-1a", "gcp/*/us-central1-a", "k8s", "kubernetes/ctx/a",
                 "ssh/pool"):
        info = InfraInfo.from_str(text)
        cloud, region, zone = parse_infra(text)
        assert cloud == info.cloud.lower() and zone == info.zone, text
        assert region == (info.region.removeprefix("ssh-") if info.region and cloud == "ssh" else info.region), text
    with pytest.raises(ValueError):
        parse_infra("aws//x")


def test_overrides_in_sky_launch_words(facts) -> None:
    path = str(TASKS / "qwen-serve-72b.yaml")
    spec = read_jobspec(path, facts, NOW, SpecOverrides(gpus="H100:8", num_nodes=2, use_spot=True,
                                                        infra="aws/us-east-1", hours=3))
    assert [str(a) for a in spec.accelerators] == ["H100:8"] and spec.num_nodes == 2 and spec.spot == "always"
    assert spec.providers_allow == ("aws",) and spec.regions_allow == ("us-east-1",)
    assert spec.work.known and spec.work.gpu_hours == 3 * 8 * 2
    ref = read_jobspec(path, facts, NOW, SpecOverrides(gpu_hours=100, reference="A100"))
    assert ref.work.gpu_hours == 100 and ref.work.reference == "A100"


def test_buckets_set_the_datas_home(facts) -> None:
    base = "name: t\nresources: {accelerators: 'H100:8'}\n"
    s3 = parse_jobspec_text(base + "file_mounts:\n  /data: s3://my-bucket/train\n", facts, "job.yaml", NOW)
    assert s3.data.provider == "aws" and s3.data.uri == "s3://my-bucket/train" and s3.data.size_gb == 0
    assert any("egress is not counted without arbitrage.data.size_gb" in n for n in s3.notes)
    gs = parse_jobspec_text(base + "file_mounts:\n  /d: {source: 'gs://b/x', mode: MOUNT}\narbitrage:\n"
                            "  data: {size_gb: 500, region: us-central1}\n", facts, "job.yaml", NOW)
    assert (gs.data.provider, gs.data.region, gs.data.size_gb) == ("gcp", "us-central1", 500)
    blob = parse_jobspec_text(base + "file_mounts:\n  /d: https://acct.blob.core.windows.net/c/p\n", facts, "j.yaml",
                              NOW)
    assert blob.data.provider == "azure"
    store = parse_jobspec_text(base + "envs: {B: bkt}\nfile_mounts:\n  /d: {name: $B, store: gcs}\n", facts,
                               "j.yaml", NOW)
    assert store.data.provider == "gcp" and store.data.uri == "gs://bkt"
    r2 = read_jobspec(str(TASKS / "batch-inference-worker.yaml"), facts, NOW)
    assert r2.data is None and any("Cloudflare R2 bills no egress" in n for n in r2.notes)


def test_validate_reports_schema_and_gpu_problems_at_once_sorted(facts) -> None:
    text = "name: t\nnum_nodes: 0\nresources:\n  accelerators: H10:8\narbitrage:\n  spot: sometimes\n"
    with pytest.raises(SpecError) as err:
        parse_jobspec_text(text, facts, "job.yaml", NOW)
    lines = str(err.value).splitlines()
    assert [int(line.split(":")[1]) for line in lines] == sorted(int(line.split(":")[1]) for line in lines)
    assert any("resources.accelerators: unknown GPU 'H10'" in line for line in lines)
    assert any("num_nodes" in line for line in lines) and any("arbitrage.spot" in line for line in lines)

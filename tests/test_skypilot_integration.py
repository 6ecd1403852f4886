"""SkyPilot itself accepts every task gpuarb generates and prices it as gpuarb does, offline.

For every bundled job spec, under its own spot policy and forced on-demand / spot, the planner ranks
the snapshot's SkyPilot-catalog offers (AWS, GCP, Lambda, Nebius, Hyperbolic); the top placements and
the best one of each provider become SkyPilot tasks. One child process (HOME in a scratch folder whose
~/.sky/catalogs/v8 holds ../shared/catalog-snapshot, every socket refused) loads each task with
SkyPilot's schema-validating loader and runs SkyPilot's optimizer on it. SkyPilot must choose exactly
the pinned cloud, region, zone (see AWS below), instance type and spot, and its hourly price times the
node count must equal ours wherever our price is SkyPilot's own catalog row (``price_ref`` names the catalog).
GCP and Nebius rows are priced from the providers' list prices instead (the SkyPilot GCP catalog carries
Flex-start prices at about half of list: data/price-sources/gcp-gpu-list.csv), so for them the test checks the
pin and that SkyPilot's catalog price is the lower one.

AWS: the task pins the region, not the zone: SkyPilot's catalog zone ids (use1-az4) become zone names
per AWS account, so a pinned id would not launch. SkyPilot prices a region-pinned spot instance at its
cheapest zone; the test checks exactly that, which equals our price for the cheapest zone of a region.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, SHARED_CATALOG

from arbitrage.costmodel import Placement
from arbitrage.jobspec import JobSpec
from arbitrage.launch import skytask
from arbitrage.launch.backend import CLUSTER_CHECKPOINT_PATH, CheckpointPlan, LaunchRequest
from arbitrage.planner import plan
from arbitrage.specfile import read_jobspec
from providers.registry import skypilot_catalog_ids
from providers.snapshot import load_snapshot

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("sky") is None, reason="skypilot is not installed"),
    pytest.mark.skipif(not (SHARED_CATALOG / "common" / "accelerators.csv").is_file(),
                       reason="../shared/catalog-snapshot is not here"),
]

CHILD = ROOT / "tests" / "fixtures" / "skypilot" / "sky_offline_check.py"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
CLOUDS = skypilot_catalog_ids()  # providers whose snapshot rows are SkyPilot's own catalog rows
# Snapshot prices are written with 6 significant digits (scripts/build_snapshot.py); SkyPilot adds GCP's
# host and GPU rows unrounded, so a sum can differ in the 6th digit: at most half a unit there.
REL_TOL = 5e-6


@dataclasses.dataclass(frozen=True)
class Case:
    """One generated task and the placement it pins."""

    id: str
    req: LaunchRequest
    yaml: str


def _checkpoint(spec: JobSpec) -> CheckpointPlan | None:
    if spec.checkpoint is None or "://" not in spec.checkpoint.uri:
        return None  # a local checkpoint folder is the local backend's business
    return CheckpointPlan(spec.checkpoint.uri, CLUSTER_CHECKPOINT_PATH, spec.checkpoint.interval_minutes)


def _case(spec: JobSpec, placement: Placement, tag: str) -> Case:
    req = LaunchRequest(run_id="it", attempt=1, cluster_name="gpuarb-it-a1", spec=spec, placement=placement,
                        checkpoint=_checkpoint(spec))
    return Case(f"{tag}: {skytask.placement_label(placement)}", req, skytask.task_yaml(req))


def build_cases(facts: Any) -> list[Case]:
    """Top placements and the best per provider, for each spec under three spot policies, plus GCP examples."""
    offers = [o for o in load_snapshot(facts) if o.provider in CLOUDS]
    cases: dict[str, Case] = {}
    for path in sorted((ROOT / "jobspecs").glob("*.yaml")):
        spec = read_jobspec(str(path), facts)
        for policy in dict.fromkeys((spec.spot, "never", "always")):
            ranked = plan(dataclasses.replace(spec, spot=policy), offers, facts, NOW).placements
            chosen = [c.placement for c in ranked[:2]]
            best: dict[str, Placement] = {}
            for cost in ranked:
                best.setdefault(cost.placement.offer.provider, cost.placement)
            for placement in [*chosen, *best.values()]:
                case = _case(spec, placement, f"{path.name}/{policy}")
                cases.setdefault(case.id.split(": ", 1)[1], case)
    # The README's GCP examples (host VM + GPUs of the same zone).
    spec = read_jobspec(str(ROOT / "jobspecs" / "llama3-8b-finetune.yaml"), facts)
    for zone, instance in [("europe-west4-a", "a2-highgpu-8g"), ("us-central1-a", "a3-highgpu-8g")]:
        offer = next(o for o in offers if o.provider == "gcp" and o.instance_type == instance
                     and (zone is None or o.zone == zone) and o.on_demand_usd_per_hour)
        case = _case(spec, Placement(offer, 1, spot=False), "gcp example")
        cases.setdefault(case.id.split(": ", 1)[1], case)
    return list(cases.values())


@pytest.fixture(scope="module")
def cases(facts: Any) -> list[Case]:
    return build_cases(facts)


@pytest.fixture(scope="module")
def sky_answer(cases: list[Case], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run SkyPilot once over every case in a child process with a private HOME and no network."""
    home = tmp_path_factory.mktemp("sky-home")
    catalogs = home / ".sky" / "catalogs" / "v8"
    for cloud in (*CLOUDS, "common"):
        shutil.copytree(SHARED_CATALOG / cloud, catalogs / cloud)
        for copied in (catalogs / cloud).iterdir():
            copied.chmod(0o644)  # the shared copy is read-only; SkyPilot may touch mtimes
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "GOOGLE_", "CLOUDSDK_", "SKYPILOT_", "SKY_", "KUBECONFIG", "AZURE_"))}
    env.update(HOME=str(home), AWS_EC2_METADATA_DISABLED="true", SKYPILOT_DISABLE_USAGE_COLLECTION="1",
               NO_PROXY="*")
    request = {"clouds": list(CLOUDS), "tasks": [{"id": c.id, "yaml": c.yaml} for c in cases]}
    done = subprocess.run([sys.executable, str(CHILD)], input=json.dumps(request), capture_output=True, text=True,
                          env=env, cwd=home, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    answer = json.loads(done.stdout)
    answer["by_id"] = {r["id"]: r for r in answer["results"]}
    answer["home"] = home
    return answer


def test_skypilot_needed_no_network(sky_answer):
    assert sky_answer["network_attempts"] == []
    # SkyPilot read our catalog files: it writes a .meta/<file>.md5 only after downloading one.
    assert list((Path(sky_answer["home"]) / ".sky" / "catalogs").rglob("*.md5")) == []


def test_cases_cover_every_catalog_cloud_spot_on_demand_and_multi_node(cases):
    providers = {c.req.placement.offer.provider for c in cases}
    assert {"aws", "gcp", "lambda"} <= providers <= set(CLOUDS)
    assert {c.req.placement.spot for c in cases} == {True, False}
    assert any(c.req.placement.nodes > 1 for c in cases)
    assert any(c.req.checkpoint is not None for c in cases)


def test_skypilot_loads_every_task_and_keeps_the_pin(cases, sky_answer):
    problems = []
    for case in cases:
        got = sky_answer["by_id"][case.id]
        if "error" in got:
            problems.append(f"{case.id}: {got['error']}")
            continue
        p, o = case.req.placement, case.req.placement.offer
        expected = {"cloud": o.provider, "region": o.region, "instance_type": o.instance_type, "use_spot": p.spot,
                    "num_nodes": p.nodes, "accelerators": {o.accelerator: o.gpus_per_node}}
        if o.provider == "gcp":
            expected["zone"] = o.zone
        actual = {k: got[k] for k in expected}
        if actual != expected:
            problems.append(f"{case.id}: SkyPilot chose {actual}, expected {expected}")
        if not set(skytask.job_envs(case.req).items()) <= set(got["envs"].items()):
            problems.append(f"{case.id}: envs {got['envs']}")
        if case.req.checkpoint is not None:
            mount = got["storage"].get(CLUSTER_CHECKPOINT_PATH)
            want = skytask.checkpoint_mount(case.req.checkpoint.uri)
            if mount is None or mount["mode"] != "MOUNT" or mount["sub_path"] != want.get("_bucket_sub_path") \
                    or mount["source"] != want.get("source"):
                problems.append(f"{case.id}: checkpoint mount {mount}, expected {want}")
        if p.spot and got["job_recovery"] != skytask.DEFAULT_JOB_RECOVERY:
            problems.append(f"{case.id}: job_recovery {got['job_recovery']}")
        if not p.spot and got["autostop"] != {"enabled": True, "idle_minutes": 30, "down": True}:
            problems.append(f"{case.id}: autostop {got['autostop']}")
    assert not problems, "\n".join(problems)


def test_skypilot_prices_every_task_as_gpuarb_does(cases, sky_answer, facts):
    snapshot = load_snapshot(facts)
    problems = []
    for case in cases:
        got = sky_answer["by_id"][case.id]
        if "error" in got:
            continue  # reported by the test above
        p, o = case.req.placement, case.req.placement.offer
        ours = p.hourly_usd
        if not _catalog_priced(o):
            # Priced from the provider's list, not SkyPilot's catalog: on-demand, SkyPilot's catalog must not be
            # the dearer one (it carries Flex-start prices). Spot prices move monthly and are dated differently.
            if not p.spot and got["hourly_usd"] > ours * (1 + REL_TOL):
                problems.append(f"{case.id}: SkyPilot's catalog ${got['hourly_usd']:.4f}/h above our list price "
                                f"${ours:.4f}/h")
            continue
        if o.provider == "aws":
            # Region-pinned: SkyPilot's price is the cheapest zone of the region for this instance and market.
            prices = {z.zone: z.usd_per_hour(p.spot) for z in snapshot if z.provider == "aws"
                      and z.region == o.region and z.instance_type == o.instance_type and z.usd_per_hour(p.spot)}
            expected = min(prices.values()) * p.nodes
            # On-demand prices are the same in every zone and SkyPilot leaves the zone open; spot names one.
            zone_price = prices.get(got["zone"]) if got["zone"] else max(prices.values())
            if zone_price is None or abs(zone_price * p.nodes - expected) > REL_TOL * expected:
                problems.append(f"{case.id}: SkyPilot zone {got['zone']} is not the cheapest of {prices}")
            if expected > ours * (1 + REL_TOL):
                problems.append(f"{case.id}: region minimum {expected} above our zone's {ours}")
        else:
            expected = ours
        if abs(got["hourly_usd"] - expected) > REL_TOL * expected:
            problems.append(f"{case.id}: SkyPilot ${got['hourly_usd']:.6f}/h, gpuarb ${expected:.6f}/h")
    assert not problems, "\n".join(problems)


def _catalog_priced(offer: Any) -> bool:
    """True when the offer's price is SkyPilot's own catalog row (so SkyPilot must price it exactly as we do)."""
    return offer.price_ref.startswith(("skypilot-catalog", "skypilot-org/skypilot-catalog"))


def test_gcp_catalog_is_half_of_list_and_we_price_list(cases, sky_answer):
    """SkyPilot's catalog: 8xA100 in europe-west4-a = 6.51251 (a2-highgpu-8g) + 12.90919 (A100 x8), about 0.65x
    GCP's list price; gpuarb prices the list (data/price-sources/gcp-gpu-list.csv)."""
    (case,) = [c for c in cases if c.id == "gcp example: gcp europe-west4/europe-west4-a a2-highgpu-8g on-demand"]
    assert sky_answer["by_id"][case.id]["hourly_usd"] == pytest.approx(6.51251 + 12.90919, rel=1e-9)
    assert not _catalog_priced(case.req.placement.offer)
    assert case.req.placement.hourly_usd == pytest.approx(29.9838, rel=1e-6)

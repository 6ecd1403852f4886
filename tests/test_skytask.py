"""Placement -> SkyPilot task translation (pure): pins, spot vs on-demand, envs, checkpoint mounts, pass-through."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml
from conftest import ROOT, make_offer

from arbitrage.costmodel import Placement
from arbitrage.geo import local_zone_name
from arbitrage.jobspec import JobSpec
from arbitrage.launch import skytask
from arbitrage.launch.backend import CLUSTER_CHECKPOINT_PATH, CheckpointPlan, LaunchError, LaunchRequest
from arbitrage.specfile import parse_jobspec_text

SPEC = """\
name: llama-ft
resources:
  accelerators: {H100: 8, A100-80GB: 8}
  cloud: aws
  cpus: 8+
  memory: 64+
  disk_size: 512
  ports: [8080]
  labels: {team: research}
num_nodes: 1
workdir: .
envs:
  MODEL: meta-llama/Meta-Llama-3-8B
  STEPS: 1000
file_mounts:
  /data: s3://datasets/pile
secrets:
  HF_TOKEN: hf_abc123
setup: pip install -r requirements.txt
run: |
  torchrun --nproc_per_node 8 train.py \\
    --model $MODEL
config:
  docker:
    run_options: ["--shm-size=16g"]
arbitrage:
  work: {gpu_hours: 64}
  spot: auto
  checkpoint: {uri: s3://ckpt-bucket/llama3/run-a, interval_minutes: 10}
  tags: {team: research}
"""


def spec_of(facts, text: str = SPEC) -> JobSpec:
    return parse_jobspec_text(text, facts, where="job.yaml")


def request(spec: JobSpec, *, spot: bool = True, nodes: int = 1, checkpoint: bool = True,
            **offer: Any) -> LaunchRequest:
    plan = (CheckpointPlan(spec.checkpoint.uri, CLUSTER_CHECKPOINT_PATH, spec.checkpoint.interval_minutes)
            if checkpoint and spec.checkpoint else None)
    return LaunchRequest(run_id="r7", attempt=2, cluster_name="gpuarb-r7-a2", spec=spec,
                         placement=Placement(make_offer(**{"zone": "use1-az4", **offer}), nodes, spot=spot),
                         checkpoint=plan, resume=True, idle_minutes_to_autostop=25)


def test_spot_placement_is_a_pinned_managed_job(facts):
    req = request(spec_of(facts), spot=True)
    config = skytask.task_config(req)
    assert skytask.launch_mode(req) == "managed"
    assert config["resources"] == {
        "infra": "aws/us-east-1", "instance_type": "p5.48xlarge", "accelerators": {"H100": 8}, "use_spot": True,
        "disk_size": 512, "ports": [8080], "labels": {"team": "research"},
        "job_recovery": {"strategy": "FAILOVER", "max_restarts_on_errors": 0},
    }
    assert config["num_nodes"] == 1 and config["name"] == "llama-ft"


def test_on_demand_placement_is_a_cluster_with_autodown(facts):
    req = request(spec_of(facts), spot=False, nodes=3, provider="gcp", region="europe-west4",
                  zone="europe-west4-a", instance_type="a3-highgpu-8g")
    config = skytask.task_config(req)
    assert skytask.launch_mode(req) == "cluster"
    res = config["resources"]
    assert res["infra"] == "gcp/europe-west4/europe-west4-a"
    assert res["autostop"] == {"idle_minutes": 25, "down": True}
    assert "job_recovery" not in res and res["use_spot"] is False
    assert config["num_nodes"] == 3
    assert skytask.launch_command(req) == "sky launch -c gpuarb-r7-a2 --down -i 25 task.yaml"


def test_gpuarb_fields_never_reach_skypilot(facts):
    config = skytask.task_config(request(spec_of(facts)))
    assert "arbitrage" not in config
    res = config["resources"]
    for owned in ("cloud", "region", "zone", "cpus", "memory", "any_of", "ordered", "autostop"):
        assert owned not in res
    assert res["accelerators"] == {"H100": 8}  # one pinned accelerator, not the any-of mapping


def test_ordered_entry_extra_fields_follow_the_chosen_accelerator(facts):
    text = SPEC.replace("  accelerators: {H100: 8, A100-80GB: 8}\n", """\
  ordered:
    - {accelerators: 'A100-80GB:8', disk_size: 1024}
    - {accelerators: 'H100:8', disk_size: 2048, image_id: 'docker:nvcr.io/nvidia/pytorch:24.08-py3'}
""").replace("  disk_size: 512\n", "")
    res = skytask.task_config(request(spec_of(facts, text)))["resources"]
    assert res["disk_size"] == 2048 and res["image_id"] == "docker:nvcr.io/nvidia/pytorch:24.08-py3"
    assert "ordered" not in res and res["accelerators"] == {"H100": 8}


def test_task_fields_pass_through(facts):
    config = skytask.task_config(request(spec_of(facts)))
    assert config["setup"] == "pip install -r requirements.txt"
    assert config["run"].startswith("torchrun --nproc_per_node 8 train.py")
    assert config["workdir"] == "."
    assert config["secrets"] == {"HF_TOKEN": "hf_abc123"}
    assert config["config"] == {"docker": {"run_options": ["--shm-size=16g"]}}
    assert config["file_mounts"]["/data"] == "s3://datasets/pile"


def test_envs_merge_spec_then_gpuarb_then_runner(facts):
    spec = spec_of(facts)
    req = request(spec)
    req = LaunchRequest(**{**req.__dict__, "envs": {"GPUARB_ATTEMPT": "9", "EXTRA": "x"}})
    envs = skytask.task_config(req)["envs"]
    assert envs == {
        "MODEL": "meta-llama/Meta-Llama-3-8B", "STEPS": "1000", "GPUARB_RUN_ID": "r7", "GPUARB_ATTEMPT": "9",
        "GPUARB_RESUME": "1", "GPUARB_CHECKPOINT_DIR": CLUSTER_CHECKPOINT_PATH,
        "GPUARB_CHECKPOINT_INTERVAL_SECONDS": "600", "EXTRA": "x",
        "GPUARB_METRICS": f"{CLUSTER_CHECKPOINT_PATH}/gpuarb-metrics.jsonl",
    }


def test_env_without_value_is_an_error_naming_the_field(facts):
    spec = spec_of(facts, SPEC.replace("  STEPS: 1000\n", "  STEPS:\n"))
    with pytest.raises(LaunchError, match=r"job\.yaml: envs\.STEPS has no value"):
        skytask.task_config(request(spec))


def test_checkpoint_bucket_is_mounted_at_the_checkpoint_dir(facts):
    mounts = skytask.task_config(request(spec_of(facts)))["file_mounts"]
    assert mounts[CLUSTER_CHECKPOINT_PATH] == {
        "source": "s3://ckpt-bucket", "mode": "MOUNT", "persistent": True, "_bucket_sub_path": "llama3/run-a"}


def test_no_checkpoint_no_mount_and_no_dir_env(facts):
    config = skytask.task_config(request(spec_of(facts), checkpoint=False))
    assert CLUSTER_CHECKPOINT_PATH not in config["file_mounts"]
    assert "GPUARB_CHECKPOINT_DIR" not in config["envs"] and config["envs"]["GPUARB_RESUME"] == "1"


def test_users_own_mount_at_the_checkpoint_path_wins(facts):
    text = SPEC.replace("  /data: s3://datasets/pile\n",
                        f"  {CLUSTER_CHECKPOINT_PATH}: {{source: s3://mine, mode: MOUNT_CACHED}}\n")
    mounts = skytask.task_config(request(spec_of(facts, text)))["file_mounts"]
    assert mounts == {CLUSTER_CHECKPOINT_PATH: {"source": "s3://mine", "mode": "MOUNT_CACHED"}}


@pytest.mark.parametrize(("uri", "expected"), [
    ("s3://b", {"source": "s3://b"}),
    ("gs://b/x/y/", {"source": "gs://b", "_bucket_sub_path": "x/y"}),
    ("gcs://b/x", {"source": "gs://b", "_bucket_sub_path": "x"}),
    ("r2://b/x", {"source": "r2://b", "_bucket_sub_path": "x"}),
    ("az://container/ckpt", {"name": "container", "store": "azure", "_bucket_sub_path": "ckpt"}),
    ("https://acct.blob.core.windows.net/c/p/q", {"source": "https://acct.blob.core.windows.net/c",
                                                  "_bucket_sub_path": "p/q"}),
    ("abfss://c@acct.dfs.core.windows.net/p", {"source": "https://acct.blob.core.windows.net/c",
                                              "_bucket_sub_path": "p"}),
])
def test_checkpoint_uris(uri, expected):
    assert skytask.checkpoint_mount(uri) == {**expected, "mode": "MOUNT", "persistent": True}


@pytest.mark.parametrize(("uri", "message"), [
    ("/abs/ckpt", "local path a cloud cluster cannot reach"),
    ("file:///abs/ckpt", "local path a cloud cluster cannot reach"),
    ("hdfs://nn/ckpt", "SkyPilot cannot mount 'hdfs://'"),
    ("s3:///nobucket", "names no bucket"),
])
def test_unmountable_checkpoint_uris(uri, message):
    with pytest.raises(LaunchError, match=message):
        skytask.checkpoint_mount(uri)


def test_local_checkpoint_fails_the_launch_naming_the_placement(facts):
    spec = spec_of(facts, SPEC.replace("s3://ckpt-bucket/llama3/run-a", "file:///tmp/ckpt"))
    with pytest.raises(LaunchError, match=r"^aws us-east-1/use1-az4 p5\.48xlarge spot: checkpoint uri"):
        skytask.task_config(request(spec))


def test_user_job_recovery_overrides_defaults_for_spot(facts):
    text = SPEC.replace("  disk_size: 512\n", "  disk_size: 512\n  job_recovery: {max_restarts_on_errors: 2}\n")
    res = skytask.task_config(request(spec_of(facts, text)))["resources"]
    assert res["job_recovery"] == {"strategy": "FAILOVER", "max_restarts_on_errors": 2}
    res = skytask.task_config(request(spec_of(facts, text), spot=False))["resources"]
    assert "job_recovery" not in res


def test_service_is_dropped_and_experimental_rejected(facts):
    req = request(spec_of(facts, SPEC + "service: {readiness_probe: /health, replicas: 2}\n"))
    assert "service" not in skytask.task_config(req)
    assert "# not passed to SkyPilot: service (a SkyServe service section is ignored" in skytask.task_yaml(req)
    with pytest.raises(LaunchError, match=r"job\.yaml: experimental: not a SkyPilot 0\.14 task field"):
        skytask.task_config(request(spec_of(facts, SPEC + "experimental: {config_overrides: {}}\n")))


def test_a_spec_without_run_cannot_launch(facts):
    without_run = SPEC[:SPEC.index("run: |")] + SPEC[SPEC.index("config:"):]
    with pytest.raises(LaunchError, match=r"job\.yaml: run: required"):
        skytask.task_config(request(spec_of(facts, without_run)))


def test_yaml_is_the_config_with_a_provenance_header_and_secrets_redacted(facts):
    req = request(spec_of(facts))
    text = skytask.task_yaml(req)
    lines = text.splitlines()
    assert lines[0] == "# SkyPilot task generated by gpuarb: run r7, attempt 2"
    assert lines[1] == ("# placement: aws us-east-1/use1-az4 p5.48xlarge spot, $16.0000/h for the cluster "
                        "(snapshot, as of 2026-11-01, test)")
    assert "sky jobs launch -n gpuarb-r7-a2 task.yaml" in lines[2]
    assert "# note: zone left to SkyPilot" in text and "hf_abc123" not in text
    assert "run: |\n  torchrun" in text  # scripts stay readable literal blocks
    loaded = yaml.safe_load(text)
    expected = skytask.task_config(req)
    expected["secrets"] = {"HF_TOKEN": "<redacted>"}
    assert loaded == expected


@pytest.mark.parametrize(("offer", "infra", "instance", "accelerators"), [
    ({"provider": "lambda", "region": "us-east-1", "zone": None, "instance_type": "gpu_8x_h100_sxm5"},
     "lambda/us-east-1", "gpu_8x_h100_sxm5", {"H100": 8}),
    ({"provider": "nebius", "region": "eu-north1", "zone": None, "instance_type": "gpu-h100-sxm_8gpu-128vcpu-1600gb"},
     "nebius/eu-north1", "gpu-h100-sxm_8gpu-128vcpu-1600gb", {"H100": 8}),
    ({"provider": "hyperbolic", "region": "default", "zone": None, "instance_type": "8x-H100"},
     "hyperbolic/default", "8x-H100", {"H100": 8}),
    ({"provider": "azure", "region": "eastus", "zone": None, "instance_type": "Standard_ND96isr_H100_v5"},
     "azure/eastus", "Standard_ND96isr_H100_v5", None),
    ({"provider": "runpod", "region": "us-tx-3", "zone": None, "instance_type": "8x NVIDIA H100 80GB HBM3"},
     "runpod/US/US-TX-3", None, {"H100-SXM": 8}),
    ({"provider": "runpod", "region": "eu-ro-1", "zone": None, "instance_type": "8x NVIDIA A100-SXM4-80GB",
      "accelerator": "A100-80GB"}, "runpod/RO/EU-RO-1", None, {"A100-80GB-SXM": 8}),
    ({"provider": "vast", "region": "us-texas", "zone": "offer-9000019", "instance_type": "8x-H100_NVL"},
     "vast", None, {"H100": 8}),
    ({"provider": "vast", "region": "de", "zone": None, "instance_type": "8x-A100_SXM4-80GB",
      "accelerator": "A100-80GB"}, "vast", None, {"A100": 8}),
])
def test_provider_pins(facts, offer, infra, instance, accelerators):
    placement = Placement(make_offer(**offer), 1, spot=False)
    sky_pin = skytask.pin(placement)
    assert sky_pin.infra == infra and sky_pin.instance_type == instance
    assert ({sky_pin.accelerator: sky_pin.count} if sky_pin.accelerator else None) == accelerators
    assert skytask.unsupported_reason(placement) is None


@pytest.mark.parametrize(("offer", "message"), [
    ({"provider": "onprem", "region": "lab", "instance_type": "lab-h100"}, "--backend local"),
    ({"provider": "coreweave", "region": "us-east-04", "instance_type": "gd-8xh100ib-i128"}, "k8s/<context>"),
    ({"provider": "runpod", "region": "community", "instance_type": "1x NVIDIA H100 PCIe"}, "Secure Cloud only"),
    ({"provider": "runpod", "region": "community-se", "instance_type": "1x NVIDIA H100 PCIe"}, "Secure Cloud only"),
    ({"provider": "runpod", "region": "us-ks-2", "instance_type": "1x NVIDIA RTX 4090"}, "no SkyPilot RunPod"),
])
def test_placements_skypilot_cannot_launch(offer, message):
    placement = Placement(make_offer(zone=None, **offer), 1, spot=False)
    reason = skytask.unsupported_reason(placement)
    assert reason is not None and message in reason
    assert reason.startswith(f"{offer['provider']} {offer['region']} {offer['instance_type']} on-demand: ")
    assert "\n" not in reason


@pytest.mark.parametrize("path", sorted((ROOT / "jobspecs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_bundled_spec_renders_for_each_launchable_provider(path, facts):
    from datetime import datetime, timezone

    from arbitrage.planner import plan
    from arbitrage.specfile import read_jobspec
    from providers.snapshot import load_snapshot

    spec = read_jobspec(str(path), facts)
    result = plan(spec, load_snapshot(facts), facts, datetime(2026, 11, 23, tzinfo=timezone.utc))
    best_per_provider = {}
    for cost in result.placements:
        best_per_provider.setdefault(cost.placement.offer.provider, cost.placement)
    rendered = 0
    for placement in best_per_provider.values():
        if skytask.unsupported_reason(placement) is not None:
            continue
        ckpt = (CheckpointPlan(spec.checkpoint.uri, CLUSTER_CHECKPOINT_PATH, spec.checkpoint.interval_minutes)
                if spec.checkpoint else None)
        req = LaunchRequest(run_id="r", attempt=1, cluster_name="gpuarb-r-a1", spec=spec, placement=placement,
                            checkpoint=ckpt)
        if ckpt is not None and "://" not in ckpt.uri:  # a local checkpoint folder: the local backend's job
            with pytest.raises(LaunchError, match="local path a cloud cluster cannot reach"):
                skytask.task_yaml(req)
            continue
        config = yaml.safe_load(skytask.task_yaml(req))
        assert config["resources"]["use_spot"] is placement.spot
        assert config["num_nodes"] == spec.num_nodes and config["run"] == spec.task["run"]
        rendered += 1
    assert rendered > 0 or "local" in path.name


def test_relative_local_paths_are_relative_to_the_spec_file(facts):
    extra = "  /cfg: ./configs\n  /up: {name: upload-bkt, source: [a, /abs/b]}\n"
    text = SPEC.replace("  /data: s3://datasets/pile\n", "  /data: s3://datasets/pile\n" + extra)
    spec = parse_jobspec_text(text, facts, where="jobs/ft/job.yaml")
    config = skytask.task_config(request(spec))
    assert config["workdir"] == "jobs/ft"
    assert config["file_mounts"]["/cfg"] == "jobs/ft/configs"
    assert config["file_mounts"]["/up"] == {"name": "upload-bkt", "source": ["jobs/ft/a", "/abs/b"]}
    assert config["file_mounts"]["/data"] == "s3://datasets/pile"


def test_translation_imports_no_skypilot():
    code = ("import sys, arbitrage.launch.skytask, arbitrage.launch.skypilot_backend; "
            "print(sorted(m for m in sys.modules if m == 'sky' or m.startswith('sky.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# -- What the pin launches vs what was priced -------------------------------------------------------------

def test_aws_zones_are_not_pinned_so_zone_prices_are_estimates(facts):
    spot = Placement(make_offer(zone="use1-az4"), 1, spot=True)
    sky_pin = skytask.pin(spot)
    assert sky_pin.zone is None and sky_pin.infra == "aws/us-east-1" and not sky_pin.price_exact
    assert "zone use1-az4 is not pinned" in sky_pin.estimate and "spot price" in sky_pin.estimate
    # on-demand is one price per AWS region: the region pin launches at the price
    assert skytask.price_estimate(Placement(make_offer(zone="use1-az4"), 1, spot=False)) == ""
    assert skytask.price_estimate(Placement(make_offer(zone=None), 1, spot=True)) == ""
    # a Local Zone's on-demand price is not the region's
    atlanta = skytask.price_estimate(Placement(make_offer(zone="use1-atl2-az1"), 1, spot=False))
    assert atlanta.startswith("Local Zone use1-atl2-az1 is not pinned")
    # GCP zones are pinned: exact
    gcp = Placement(make_offer(provider="gcp", region="us-central1", zone="us-central1-a",
                               instance_type="a3-highgpu-8g"), 1, spot=True)
    assert skytask.pin(gcp).zone == "us-central1-a" and skytask.price_estimate(gcp) == ""


def test_aws_zones_are_pinned_by_the_accounts_zone_names_when_known(facts):
    """SkyPilot validates a task's zone against this account's zone names (aws_catalog maps catalog zone ids to
    them), so a zone id can be pinned only through that mapping; Local Zone names are the same for every account."""
    placement = Placement(make_offer(zone="use1-az4"), 1, spot=True)
    names = {"use1-az4": "us-east-1c", "use1-atl2-az1": local_zone_name("use1-atl2-az1", "us-east-1")}
    sky_pin = skytask.pin(placement, names)
    assert (sky_pin.infra, sky_pin.estimate) == ("aws/us-east-1/us-east-1c", "")
    config = skytask.task_config(request(spec_of(facts)), names)
    assert config["resources"]["infra"] == "aws/us-east-1/us-east-1c"
    local = skytask.pin(Placement(make_offer(zone="use1-atl2-az1"), 1, spot=True), names)
    assert local.infra == "aws/us-east-1/us-east-1-atl-2a" and local.price_exact
    assert local_zone_name("usw2-lax1-az2", "us-west-2") == "us-west-2-lax-1b"
    assert local_zone_name("use1-az4", "us-east-1") is None


def test_marketplace_pins_say_the_price_is_an_estimate(facts):
    vast = Placement(make_offer(provider="vast", region="us-texas", zone="offer-9000019", instance_type="1x-H100_SXM",
                                gpus_per_node=1, country="US"), 1, spot=False)
    estimate = skytask.price_estimate(vast)
    assert "SkyPilot rents the first Vast.ai offer" in estimate and "offer 9000019 in us-texas (US)" in estimate
    runpod = make_offer(provider="runpod", region="us-tx-3", zone=None, instance_type="1x NVIDIA H100 80GB HBM3",
                        gpus_per_node=1)
    assert skytask.price_estimate(Placement(runpod, 1, spot=False)) == ""  # Secure Cloud: one price per GPU type
    assert "bid" in skytask.price_estimate(Placement(runpod, 1, spot=True))
    # not launchable at all: no SkyPilot price to be an estimate of
    community = make_offer(provider="runpod", region="community-se", zone=None, instance_type="1x NVIDIA H100 PCIe")
    assert skytask.price_estimate(Placement(community, 1, spot=False)) == ""


def test_dry_run_yaml_says_when_the_price_is_an_estimate(facts):
    text = skytask.task_yaml(request(spec_of(facts), spot=True))
    (line,) = [x for x in text.splitlines() if x.startswith("# price: ")]
    assert line.startswith("# price: estimate, $16.0000/h as priced; zone use1-az4 is not pinned")
    # spot runs as a managed job, on-demand as a cluster (launch_mode): each says how it is billed
    vast = {"provider": "vast", "region": "us-texas", "zone": "offer-9000019", "instance_type": "1x-H100_SXM",
            "gpus_per_node": 1, "country": "US"}
    for req, mode, billed in ((request(spec_of(facts), spot=True), "managed", "managed job is billed at this price"),
                              (request(spec_of(facts), spot=False, **vast), "cluster", "bills SkyPilot's price there")):
        assert skytask.launch_mode(req) == mode
        (line,) = [x for x in skytask.task_yaml(req).splitlines() if x.startswith("# price: ")]
        assert billed in line
    exact = skytask.task_yaml(request(spec_of(facts), spot=False))
    assert "# price: estimate" not in exact


def test_a_task_pinning_an_aws_zone_by_name_launches_there_and_says_the_price_is_an_estimate(facts):
    text = ("name: z\nresources: {infra: aws/us-east-1/us-east-1a, accelerators: 'H100:8'}\nrun: x\n"
            "arbitrage: {work: {gpu_hours: 64}}\n")
    spec = parse_jobspec_text(text, facts, where="z.yaml")
    assert any("AWS maps zone names such as us-east-1a to zone IDs per account" in n for n in spec.notes)
    for spot, estimate in ((True, True), (False, False)):
        req = LaunchRequest(run_id="r", attempt=1, cluster_name="c", spec=spec,
                            placement=Placement(make_offer(zone="use1-az4"), 1, spot=spot), checkpoint=None)
        sky_pin = skytask.request_pin(req)
        assert sky_pin.infra == "aws/us-east-1/us-east-1a"  # the user's pin, not a zone ID SkyPilot would refuse
        assert bool(sky_pin.estimate) == estimate and skytask.task_config(req)["resources"]["infra"] == sky_pin.infra
    # a placement in another region (an any_of entry) is not touched by this entry's zone
    other = LaunchRequest(run_id="r", attempt=1, cluster_name="c", spec=spec,
                          placement=Placement(make_offer(region="us-west-2", zone="usw2-az1"), 1, spot=True),
                          checkpoint=None)
    assert skytask.request_pin(other).zone is None

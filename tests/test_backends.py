"""The Backend protocol and its registry: every backend implements it, is made by name from one registry line,
and is asked about capabilities rather than its name; Handles serialise as the ledger stores them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, make_offer, make_spec

from arbitrage.costmodel import CostBreakdown, Placement
from arbitrage.errors import EXIT_USAGE, UsageError
from arbitrage.launch import backends
from arbitrage.launch.backend import (
    Backend,
    CapacityError,
    ClusterInfo,
    Handle,
    JobState,
    JobStatus,
    LaunchError,
    LaunchRequest,
)
from arbitrage.launch.fake import FakeBackend
from arbitrage.launch.ray.backend import RayBackend
from arbitrage.launch.skypilot_backend import SkyPilotBackend


def _cost(**kw) -> CostBreakdown:
    return CostBreakdown(Placement(make_offer(**kw), 1, spot=False), 40.0, 1.0, 1.0, 1, 0, 0, 0, 0, 0, 1, 40.0, 0, 0,
                         0)


@pytest.mark.parametrize("backend", [SkyPilotBackend(), RayBackend(state_dir=Path("/nonexistent")), FakeBackend()])
def test_every_backend_implements_the_whole_protocol(backend):
    assert isinstance(backend, Backend)
    for member in ("pins_placement", "local_checkpoints"):
        assert isinstance(getattr(type(backend), member), bool)


def test_capabilities_not_names_tell_the_backends_apart():
    assert (SkyPilotBackend.pins_placement, SkyPilotBackend.local_checkpoints) == (True, False)
    assert (RayBackend.pins_placement, RayBackend.local_checkpoints) == (False, True)
    ray = RayBackend(state_dir=Path("/nonexistent"))
    # Every placement is one launch on the backend's own machines.
    assert ray.launch_key(Placement(make_offer(provider="gcp"), 2, spot=True)) == ray.launch_key(_cost().placement)
    assert ray.launch_key(_cost().placement) is not None


def test_the_accounting_note_says_when_a_run_is_not_what_the_plan_priced():
    ray = RayBackend(state_dir=Path("/nonexistent"))
    # a rehearsal rents nothing: it is booked under provider local at $0, never as the cloud's spend
    assert ray.accounting_note(_cost()) == ("local backend: a local rehearsal of aws p5.48xlarge (planned at "
                                            "$40.00/h), recorded as provider local at $0: nothing is rented")
    owned = _cost(provider="onprem", instance_type="lab")
    assert ray.accounting_note(owned) == ("local backend: owned capacity of onprem lab, accounted at $40.00/h "
                                          "(snapshot price)")
    assert SkyPilotBackend().accounting_note(_cost()) is None


def test_make_backend_builds_each_registered_backend_from_the_options(tmp_path):
    ray = backends.make_backend("local", state_dir=tmp_path, ray_address="http://10.0.0.5:8265")
    assert isinstance(ray, RayBackend) and ray.address == "http://10.0.0.5:8265" and ray.state_dir == tmp_path / "ray"
    assert backends.make_backend("local", state_dir=tmp_path).address is None
    sky = backends.make_backend("skypilot", state_dir=tmp_path)
    assert isinstance(sky, SkyPilotBackend) and sky._progress is sys.stderr


def test_a_ray_address_with_skypilot_and_an_unknown_name_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match=r"^--ray-address only applies to --backend local$") as err:
        backends.make_backend("skypilot", state_dir=tmp_path, ray_address="auto")
    assert err.value.exit_code == EXIT_USAGE == 2
    with pytest.raises(UsageError, match=r"--backend: unknown backend 'nope' \(skypilot, local\)") as err:
        backends.make_backend("nope", state_dir=tmp_path)
    assert err.value.exit_code == 2


def test_a_new_backend_is_one_registry_line(tmp_path, monkeypatch):
    monkeypatch.setitem(backends.BACKENDS, "scripted", ("arbitrage.launch.fake", "FakeBackend"))
    made = backends.make_backend("scripted", state_dir=tmp_path)
    assert isinstance(made, FakeBackend) and made.launched == []


def test_the_fake_is_not_a_user_visible_backend():
    assert all(module != "arbitrage.launch.fake" for module, _ in backends.BACKENDS.values())


def test_handles_round_trip_through_the_ledgers_json():
    handle = Handle(backend="local", cluster_name="gpuarb-r-a1", job_id="gpuarb-r-a1-attempt1",
                    detail={"mode": "head", "dashboard_url": "http://127.0.0.1:1"})
    data = handle.to_dict()
    assert data == {"backend": "local", "cluster_name": "gpuarb-r-a1", "job_id": "gpuarb-r-a1-attempt1",
                    "managed": False, "detail": {"mode": "head", "dashboard_url": "http://127.0.0.1:1"}}
    assert Handle.from_dict(data) == handle
    # What older ledgers hold: a managed SkyPilot job with an integer id, or a handle without optional keys.
    assert Handle.from_dict({"backend": "skypilot", "cluster_name": "c", "job_id": 7, "managed": True,
                             "detail": None}) == Handle(backend="skypilot", cluster_name="c", job_id="7", managed=True)
    assert Handle.from_dict({"backend": "skypilot", "cluster_name": "c"}) == Handle(backend="skypilot",
                                                                                    cluster_name="c")


def test_the_fake_records_calls_and_lists_what_it_left_up():
    fake = FakeBackend(no_capacity={"full"}, broken={"bad"}, scripts=[[JobStatus(JobState.RUNNING)],
                                                                       [JobStatus(JobState.PENDING)]])

    def request(itype: str, n: int) -> LaunchRequest:
        return LaunchRequest(run_id="r", attempt=n, cluster_name=f"gpuarb-r-a{n}", spec=make_spec(),
                             placement=Placement(make_offer(instance_type=itype), 1, spot=False), checkpoint=None)

    with pytest.raises(CapacityError):
        fake.launch(request("full", 1))
    with pytest.raises(LaunchError):
        fake.launch(request("bad", 1))
    first, second = fake.launch(request("ok", 1)), fake.launch(request("ok", 2))
    assert [c.job_state for c in fake.clusters()] == [JobState.RUNNING, JobState.PENDING]
    fake.cancel(first)
    fake.teardown(first)
    assert fake.cancelled == fake.torn_down == ["gpuarb-r-a1"]
    assert fake.clusters() == [ClusterInfo(name="gpuarb-r-a2", backend="skypilot", status="UP",
                                           job_state=JobState.PENDING)]
    assert fake.status(second).state is JobState.PENDING and list(fake.logs(second)) == ["log line"]


def test_the_registry_and_protocol_import_no_backend_sdk():
    code = ("import sys, arbitrage.launch.backends, arbitrage.launch.ray.backend, arbitrage.launch.fake; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'sky', 'psutil', 'httpx')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_a_local_rehearsal_is_booked_under_provider_local_at_zero_and_owned_capacity_at_its_price():
    from arbitrage.launch.runner import placement_row

    ray = RayBackend(state_dir=Path("/nonexistent"))
    cloud = placement_row(_cost())
    booked = ray.accounted(cloud)
    assert (booked["provider"], booked["region"], booked["zone"], booked["price_source"]) == (
        "local", "this-machine", None, "local")
    assert all(booked[k] == 0.0 for k in ("usd_per_hour", "expected_total_usd", "compute_usd", "preemption_usd",
                                          "egress_in_usd", "egress_out_usd"))
    # what it rehearses is kept, and the cloud placement it stands for is named with its planned price
    assert (booked["gpus_per_node"], booked["nodes"], booked["spot"]) == (cloud["gpus_per_node"], cloud["nodes"],
                                                                         cloud["spot"])
    assert booked["price_ref"].startswith("rehearsal of aws us-east-1 p5.48xlarge on-demand, planned at "
                                          "$40.00/h")
    owned = placement_row(_cost(provider="onprem", instance_type="lab"))
    assert ray.accounted(owned) == owned and ray.accounted(booked) == booked
    assert SkyPilotBackend().accounted(cloud) == cloud

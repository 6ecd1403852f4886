"""SkyPilotBackend against SkyPilot's real SDK module with its API server replaced by a fake.

The SDK request functions (sky.launch, sky.jobs.launch, sky.status...) are monkeypatched to queue a
result or a SkyPilot exception; sky.get returns or raises it as the real client would. Tasks are built
with SkyPilot's own Task loader, exceptions and status enums are SkyPilot's: the mapping logic is real.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from conftest import make_offer

from arbitrage.costmodel import Placement
from arbitrage.errors import GpuarbError
from arbitrage.launch import skytask
from arbitrage.launch.backend import (
    CLUSTER_CHECKPOINT_PATH,
    Backend,
    BackendUnavailable,
    CapacityError,
    CheckpointPlan,
    Handle,
    JobState,
    LaunchError,
    LaunchRequest,
)
from arbitrage.launch.skypilot_backend import (
    CLUSTER_JOB_STATES,
    INSTALL_HINT,
    MANAGED_JOB_STATES,
    SkyPilotBackend,
)
from arbitrage.specfile import parse_jobspec_text

sky = pytest.importorskip("sky")  # SkyPilot is an optional extra
pytest.importorskip("sky.jobs")
sky_exc = sky.exceptions

SPEC = """\
name: ft
resources: {accelerators: 'H100:8'}
setup: pip install -r requirements.txt
run: python train.py
arbitrage:
  work: {gpu_hours: 64}
  spot: auto
  checkpoint: {uri: s3://ckpt/ft, interval_minutes: 10}
"""
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


class FakeServer:
    """Stands in for the SkyPilot API server: each SDK request queues a callable that sky.get runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.answers: dict[str, Callable[..., Any]] = {}
        self._requests: dict[str, Callable[[], Any]] = {}
        self.streamed_to: list[Any] = []
        for name, target in [
            ("launch", sky), ("status", sky), ("job_status", sky), ("down", sky), ("cancel", sky),
            ("queue", sky), ("tail_logs", sky), ("api_cancel", sky),
            ("jobs.launch", sky.jobs), ("jobs.queue_v2", sky.jobs), ("jobs.cancel", sky.jobs),
            ("jobs.tail_logs", sky.jobs),
        ]:
            monkeypatch.setattr(target, name.split(".")[-1], self._endpoint(name))
        monkeypatch.setattr(sky, "get", self.get)
        monkeypatch.setattr(sky, "stream_and_get", self.stream_and_get)

    def answer(self, name: str, value: Any = None, *, error: BaseException | None = None) -> None:
        """What the next requests to ``name`` return (or raise, through sky.get)."""
        def respond(*_args: Any, **_kwargs: Any) -> Any:
            if error is not None:
                raise error
            return value
        self.answers[name] = respond

    def _endpoint(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            respond = self.answers.get(name, lambda *a, **k: None)
            if name.endswith("tail_logs"):  # streamed directly, not through a request id
                return respond(*args, **kwargs)
            request_id = f"req-{len(self._requests)}"
            self._requests[request_id] = lambda: respond(*args, **kwargs)
            return request_id
        return call

    def get(self, request_id: str) -> Any:
        return self._requests.pop(request_id)()

    def stream_and_get(self, request_id: str, output_stream: Any = None, **_: Any) -> Any:
        self.streamed_to.append(output_stream)
        return self.get(request_id)

    def called(self, name: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(a, k) for n, a, k in self.calls if n == name]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    return FakeServer(monkeypatch)


def request(facts, *, spot: bool, **offer: Any) -> LaunchRequest:
    spec = parse_jobspec_text(SPEC, facts, where="job.yaml")
    return LaunchRequest(run_id="r1", attempt=1, cluster_name="gpuarb-r1-a1", spec=spec,
                         placement=Placement(make_offer(**{"zone": "use1-az4", **offer}), 1, spot=spot),
                         checkpoint=CheckpointPlan("s3://ckpt/ft", CLUSTER_CHECKPOINT_PATH, 10.0),
                         idle_minutes_to_autostop=20)


class _LaunchedHandle:
    """The shape of the handle `sky.launch` returns (CloudVmRayResourceHandle): what was launched, on how many."""

    def __init__(self, resources: Any, nodes: int) -> None:
        self.launched_resources, self.launched_nodes = resources, nodes


def test_a_cluster_launch_records_where_it_landed_and_skypilot_s_price_there(facts, server, monkeypatch):
    landed = sky.Resources(infra="aws/us-east-1/us-east-1b", instance_type="p5.48xlarge", accelerators="H100:8")
    # Resources.get_cost reads SkyPilot's catalog (fetched from the network on first use): its answer is given
    monkeypatch.setattr(type(landed), "get_cost", lambda self, seconds: 33.5 * seconds / 3600)
    server.answer("launch", (3, _LaunchedHandle(landed, 2)))
    handle = SkyPilotBackend().launch(request(facts, spot=False))
    assert handle.detail["launched_where"] == "aws/us-east-1/us-east-1b p5.48xlarge"
    assert float(handle.detail["launched_usd_per_hour"]) == pytest.approx(67.0)  # two nodes
    assert handle.detail["launched_price_from"] == "SkyPilot catalog, 2 nodes"


def test_a_launch_whose_price_cannot_be_read_keeps_the_planned_price(facts, server, monkeypatch):
    landed = sky.Resources(infra="aws/us-east-1", instance_type="p5.48xlarge", accelerators="H100:8")

    def no_catalog(self: Any, seconds: float) -> float:
        raise ValueError("catalog not found")

    monkeypatch.setattr(type(landed), "get_cost", no_catalog)
    server.answer("launch", (3, _LaunchedHandle(landed, 1)))
    detail = SkyPilotBackend().launch(request(facts, spot=False)).detail
    assert detail["launched_where"] == "aws/us-east-1 p5.48xlarge" and "launched_usd_per_hour" not in detail
    server.answer("launch", (3, None))  # an older server without the handle: nothing is guessed
    assert "launched_where" not in SkyPilotBackend().launch(request(facts, spot=False)).detail
    # a managed job returns the jobs controller's handle, not the job's cluster: nothing is read from it
    server.answer("jobs.launch", (7, _LaunchedHandle(landed, 1)))
    assert "launched_where" not in SkyPilotBackend().launch(request(facts, spot=True)).detail


def test_it_is_a_backend():
    assert isinstance(SkyPilotBackend(), Backend) and SkyPilotBackend.name == "skypilot"


def test_on_demand_launches_a_cluster_with_autodown(facts, server):
    server.answer("launch", (3, object()))
    handle = SkyPilotBackend().launch(request(facts, spot=False))
    ((task,), kwargs), = server.called("launch")
    assert kwargs == {"cluster_name": "gpuarb-r1-a1", "down": True, "idle_minutes_to_autostop": 20}
    (res,) = task.resources
    assert (str(res.cloud), res.region, res.instance_type, res.use_spot) == ("AWS", "us-east-1", "p5.48xlarge", False)
    assert res.accelerators == {"H100": 8}
    assert task.envs["GPUARB_CHECKPOINT_DIR"] == CLUSTER_CHECKPOINT_PATH
    mount = task.storage_mounts[CLUSTER_CHECKPOINT_PATH]
    assert (mount.source, mount.mode.value, mount._bucket_sub_path) == ("s3://ckpt", "MOUNT", "ft")
    assert handle == Handle(backend="skypilot", cluster_name="gpuarb-r1-a1", job_id="3", managed=False,
                            detail={"infra": "aws/us-east-1", "instance_type": "p5.48xlarge", "mode": "cluster"})


def test_spot_launches_a_managed_job_with_recovery(facts, server):
    server.answer("jobs.launch", ([17], None))
    progress = io.StringIO()
    handle = SkyPilotBackend(progress=progress).launch(request(facts, spot=True))
    ((task,), kwargs), = server.called("jobs.launch")
    assert kwargs == {"name": "gpuarb-r1-a1"}
    (res,) = task.resources
    assert res.use_spot and res.job_recovery == {"strategy": "FAILOVER", "max_restarts_on_errors": 0}
    assert handle.managed and handle.job_id == "17"
    assert server.streamed_to == [progress]  # launch progress goes where the caller asked


def _launch_error(facts, server, exc: BaseException, *, spot: bool = True) -> LaunchError:
    server.answer("jobs.launch" if spot else "launch", error=exc)
    with pytest.raises(LaunchError) as info:
        SkyPilotBackend().launch(request(facts, spot=spot))
    return info.value


LABEL = "aws us-east-1/use1-az4 p5.48xlarge spot"


@pytest.mark.parametrize(("exc", "capacity", "message"), [
    (sky_exc.ResourcesUnavailableError("Catalog does not contain any instances satisfying the request"), True,
     "Catalog does not contain any instances satisfying the request"),
    (sky_exc.ResourcesUnavailableError(
        "Failed to provision all possible launchable resources.\nRelax the task's resource requirements",
        failover_history=[sky_exc.ResourcesUnavailableError("Failed to acquire resources in us-east-1")]), True,
     "Failed to provision all possible launchable resources. (last failure: Failed to acquire resources in "
     "us-east-1)"),
    (sky_exc.ResourcesUnavailableError("\x1b[33mFound no quota for p5.48xlarge spot\x1b[0m instances"), True,
     "Found no quota for p5.48xlarge spot instances"),
    (sky_exc.ResourcesUnavailableError(
        "InvalidCloudCredentials: bad key", no_failover=True,
        failover_history=[sky_exc.InvalidCloudCredentials("bad key")]), False,
     "InvalidCloudCredentials: bad key (last failure: bad key)"),
    (sky_exc.ResourcesUnavailableError("Failed to launch cluster 'x' (previous status: STOPPED).", no_failover=True),
     False, "Failed to launch cluster 'x' (previous status: STOPPED)."),
    (sky_exc.ResourcesUnavailableError("Task 'ft' requires AWS which is not enabled. To enable access, change "
                                       "the task cloud requirement or run: sky check aws"), True,
     "Task 'ft' requires AWS which is not enabled. To enable access, change the task cloud requirement or run: "
     "sky check aws"),
    (sky_exc.ResourcesUnavailableError('Storage "store: s3" specified, but AWS access is disabled. To fix, enable '
                                       "AWS by running `sky check`."), False,
     'Storage "store: s3" specified, but AWS access is disabled. To fix, enable AWS by running `sky check`.'),
    (sky_exc.ManagedJobReachedMaxRetriesError("Resources unavailable: failed to launch clusters after 3 retries."),
     True, "Resources unavailable: failed to launch clusters after 3 retries."),
    (RuntimeError("An error occurred (InsufficientInstanceCapacity) when calling RunInstances\nmore"), True,
     "An error occurred (InsufficientInstanceCapacity) when calling RunInstances"),
    (ValueError("Invalid task YAML: 'foo' is not valid"), False, "Invalid task YAML: 'foo' is not valid"),
    (sky_exc.NoCloudAccessError("Cloud access is not set up. Run: sky check"), False,
     "Cloud access is not set up. Run: sky check"),
    (sky_exc.CloudUserIdentityError("Failed to get AWS user identity"), False,
     "Failed to get AWS user identity (check credentials with `sky check`)"),
])
def test_launch_errors_are_one_line_naming_the_placement(facts, server, exc, capacity, message):
    error = _launch_error(facts, server, exc)
    assert isinstance(error, CapacityError) is capacity
    assert str(error) == f"{LABEL}: {message}"


def test_server_unreachable_is_backend_unavailable(facts, server):
    server.answer("jobs.launch", error=sky_exc.ApiServerConnectionError("http://sky:46580"))
    with pytest.raises(BackendUnavailable, match=r"^skypilot: Could not connect to SkyPilot API server"):
        SkyPilotBackend().launch(request(facts, spot=True))


def test_failed_cluster_launch_tears_the_cluster_down(facts, server):
    error = _launch_error(facts, server, sky_exc.ClusterSetUpError("setup failed: exit 1"), spot=False)
    assert str(error) == ("aws us-east-1/use1-az4 p5.48xlarge on-demand: setup failed: exit 1 "
                          "(its cluster was torn down)")
    assert [a for a, _ in server.called("down")] == [("gpuarb-r1-a1",)]


def test_failed_cluster_launch_without_a_cluster_says_nothing_more(facts, server):
    server.answer("down", error=sky_exc.ClusterDoesNotExist("Cluster 'gpuarb-r1-a1' does not exist."))
    error = _launch_error(facts, server, sky_exc.ResourcesUnavailableError("no capacity"), spot=False)
    assert isinstance(error, CapacityError)
    assert str(error) == "aws us-east-1/use1-az4 p5.48xlarge on-demand: no capacity"


def test_interrupted_launch_cancels_its_request(facts, server):
    server.answer("launch", error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        SkyPilotBackend().launch(request(facts, spot=False))
    assert server.called("api_cancel") == [(("req-0",), {"silent": True})]


def test_unsupported_placement_fails_before_any_skypilot_call(facts, server):
    with pytest.raises(LaunchError, match="--backend local"):
        SkyPilotBackend().launch(request(facts, spot=False, provider="onprem", region="lab", zone=None))
    assert server.calls == []


def test_every_skypilot_state_has_a_mapping():
    assert {s.value for s in sky.jobs.ManagedJobStatus} <= set(MANAGED_JOB_STATES)
    assert {s.value for s in sky.JobStatus} <= set(CLUSTER_JOB_STATES)
    for status in sky.jobs.ManagedJobStatus:
        assert MANAGED_JOB_STATES[status.value].terminal == status.is_terminal() or status.value == "CANCELLING"


def managed_handle(job_id: str = "17") -> Handle:
    return Handle(backend="skypilot", cluster_name="gpuarb-r1-a1", job_id=job_id, managed=True)


def cluster_handle(job_id: str | None = "3") -> Handle:
    return Handle(backend="skypilot", cluster_name="gpuarb-r1-a1", job_id=job_id)


def job_record(status: str, **fields: Any) -> Any:
    from sky.schemas.api.responses import ManagedJobRecord

    return ManagedJobRecord(job_id=17, job_name="gpuarb-r1-a1", status=sky.jobs.ManagedJobStatus(status), **fields)


@pytest.mark.parametrize(("record", "state", "restarts", "message"), [
    (job_record("STARTING"), JobState.PENDING, 0, "STARTING"),
    (job_record("RUNNING", recovery_count=1), JobState.RUNNING, 1, "RUNNING"),
    (job_record("RECOVERING", recovery_count=2, details="Preempted; recovering"), JobState.RECOVERING, 2,
     "RECOVERING: Preempted; recovering"),
    (job_record("SUCCEEDED", recovery_count=2), JobState.SUCCEEDED, 2, "SUCCEEDED"),
    (job_record("FAILED_NO_RESOURCE", failure_reason="Resources unavailable\nmore"), JobState.FAILED, 0,
     "FAILED_NO_RESOURCE: Resources unavailable"),
    (job_record("CANCELLED"), JobState.CANCELLED, 0, "CANCELLED"),
])
def test_managed_job_status(server, record, state, restarts, message):
    server.answer("jobs.queue_v2", ([record], 1, {}, 1))
    status = SkyPilotBackend().status(managed_handle())
    assert (status.state, status.restarts, status.message) == (state, restarts, message)
    ((), kwargs), = server.called("jobs.queue_v2")
    assert kwargs["job_ids"] == [17] and kwargs["refresh"] is False


def test_managed_status_restarts_a_stopped_jobs_controller(server, monkeypatch):
    answers = iter([sky_exc.ClusterNotUpError("Jobs controller is STOPPED."), ([job_record("SUCCEEDED")], 1, {}, 1)])

    def queue_v2(**kwargs: Any) -> Any:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    server.answers["jobs.queue_v2"] = queue_v2
    assert SkyPilotBackend().status(managed_handle()).state is JobState.SUCCEEDED
    assert [k["refresh"] for _, k in server.called("jobs.queue_v2")] == [False, True]


def test_managed_status_without_a_jobs_controller(server):
    server.answer("jobs.queue_v2", error=sky_exc.ClusterDoesNotExist(
        "Cluster 'sky-jobs-controller-fcd1e5cf' does not exist."))
    status = SkyPilotBackend().status(managed_handle())
    assert status.state is JobState.FAILED
    assert status.message == "managed job 17: Cluster 'sky-jobs-controller-fcd1e5cf' does not exist."


def test_vanished_managed_job_is_failed(server):
    server.answer("jobs.queue_v2", [])  # an old server's plain list
    status = SkyPilotBackend().status(managed_handle())
    assert status.state is JobState.FAILED and "not found" in status.message


def cluster_record(status: str, name: str = "gpuarb-r1-a1", **fields: Any) -> dict[str, Any]:
    return {"name": name, "status": sky.ClusterStatus(status), "launched_at": 1_795_000_000, **fields}


@pytest.mark.parametrize(("job", "state"), [
    ("PENDING", JobState.PENDING), ("SETTING_UP", JobState.RUNNING), ("RUNNING", JobState.RUNNING),
    ("SUCCEEDED", JobState.SUCCEEDED), ("FAILED_SETUP", JobState.FAILED), ("CANCELLED", JobState.CANCELLED),
])
def test_cluster_job_status(server, job, state):
    server.answer("status", [cluster_record("UP")])
    server.answer("job_status", {3: sky.JobStatus(job)})
    status = SkyPilotBackend().status(cluster_handle())
    assert status.state is state and status.message == job
    (args, kwargs), = server.called("status")
    assert args == (["gpuarb-r1-a1"],) and kwargs["refresh"] == sky.StatusRefreshMode.AUTO


def test_cluster_gone_stopped_or_down(server):
    backend = SkyPilotBackend()
    server.answer("status", [])
    assert backend.status(cluster_handle()).state is JobState.FAILED
    server.answer("status", [cluster_record("STOPPED")])
    assert backend.status(cluster_handle()).state is JobState.PREEMPTED
    server.answer("status", [cluster_record("INIT")])
    server.answer("job_status", error=sky_exc.ClusterNotUpError("Cluster 'gpuarb-r1-a1' is not up."))
    status = backend.status(cluster_handle())
    assert status.state is JobState.PREEMPTED and status.message == "cluster INIT: Cluster 'gpuarb-r1-a1' is not up."


def test_logs_are_whole_lines(server):
    server.answer("jobs.tail_logs", iter(["step 1\nstep", " 2\r", "\n", None, "done"]))
    assert list(SkyPilotBackend().logs(managed_handle(), follow=True)) == ["step 1", "step 2", "done"]
    ((), kwargs), = server.called("jobs.tail_logs")
    assert kwargs == {"job_id": 17, "follow": True, "preload_content": False}
    server.answer("tail_logs", iter(["a\nb\n"]))
    assert list(SkyPilotBackend().logs(cluster_handle())) == ["a", "b"]
    (args, kwargs), = server.called("tail_logs")
    assert args == ("gpuarb-r1-a1", 3, False) and kwargs == {"preload_content": False}


def test_logs_of_a_vanished_cluster_is_one_line(server):
    server.answer("tail_logs", error=sky_exc.ClusterDoesNotExist("Cluster 'gpuarb-r1-a1' does not exist."))
    with pytest.raises(GpuarbError, match=r"^skypilot: logs of gpuarb-r1-a1 job 3: Cluster 'gpuarb-r1-a1' does not"):
        list(SkyPilotBackend().logs(cluster_handle()))


def test_cancel_is_idempotent(server):
    backend = SkyPilotBackend()
    backend.cancel(managed_handle())
    assert server.called("jobs.cancel") == [((), {"job_ids": [17]})]
    server.answer("cancel", error=sky_exc.ClusterDoesNotExist("gone"))
    backend.cancel(cluster_handle())  # no error
    assert server.called("cancel") == [(("gpuarb-r1-a1",), {"job_ids": [3]})]


def test_teardown(server):
    backend = SkyPilotBackend()
    backend.teardown(managed_handle())
    assert server.called("jobs.cancel") == [((), {"job_ids": [17]})] and server.called("down") == []
    backend.teardown(cluster_handle())
    assert server.called("down") == [(("gpuarb-r1-a1",), {})]


def test_teardown_by_name_covers_a_cluster_and_a_managed_job_and_is_idempotent(server):
    server.answer("down", error=sky_exc.ClusterDoesNotExist("gone"))
    server.answer("jobs.cancel", error=sky_exc.ClusterNotUpError("no jobs controller"))
    SkyPilotBackend().teardown(cluster_handle(job_id=None))
    assert server.called("down") == [(("gpuarb-r1-a1",), {})]
    assert server.called("jobs.cancel") == [((), {"name": "gpuarb-r1-a1"})]


def test_failed_teardown_is_loud_and_says_what_to_run(server):
    server.answer("down", error=RuntimeError("Failed to terminate instances\ntrace"))
    with pytest.raises(GpuarbError, match=r"^skypilot: teardown of gpuarb-r1-a1 failed, run `sky down "
                                          r"gpuarb-r1-a1`: Failed to terminate instances$"):
        SkyPilotBackend().teardown(cluster_handle())


def test_clusters_lists_gpuarbs_own_with_idle_minutes(server):
    server.answer("status", [cluster_record("UP"), cluster_record("UP", name="someone-else"),
                             cluster_record("INIT", name="gpuarb-r2-a1")])
    finished = NOW.timestamp() - 45 * 60
    server.answer("queue", [{"job_id": 3, "status": sky.JobStatus.SUCCEEDED, "submitted_at": finished - 600,
                             "end_at": finished}])
    server.answer("jobs.queue_v2", ([job_record("RUNNING", submitted_at=NOW.timestamp() - 60),
                                     job_record("RUNNING").model_copy(update={"job_name": "other"})], 2, {}, 2))
    found = SkyPilotBackend(clock=lambda: NOW).clusters()
    assert [(c.name, c.status, c.job_state) for c in found] == [
        ("gpuarb-r1-a1", "UP", None), ("gpuarb-r2-a1", "INIT", None), ("gpuarb-r1-a1", "RUNNING", JobState.RUNNING)]
    assert found[0].idle_minutes == pytest.approx(45.0) and found[1].idle_minutes is None
    assert found[0].launched_at == datetime.fromtimestamp(1_795_000_000, tz=timezone.utc)
    assert server.called("queue") == [(("gpuarb-r1-a1",), {"skip_finished": False})]


def test_clusters_without_a_jobs_controller(server):
    server.answer("status", [])
    server.answer("jobs.queue_v2", error=sky_exc.ClusterNotUpError("The jobs controller is not up."))
    assert SkyPilotBackend().clusters() == []


def test_render_is_the_task_yaml(facts):
    req = request(facts, spot=True)
    assert SkyPilotBackend().render(req) == skytask.task_yaml(req)


def test_check_without_skypilot(monkeypatch):
    monkeypatch.setitem(sys.modules, "sky", None)
    with pytest.raises(BackendUnavailable, match=r"^skypilot is not installed: pip install 'gpuarb\[launch\]'$"):
        SkyPilotBackend().check()
    assert INSTALL_HINT.startswith("skypilot is not installed")


def test_check_remote_api_server(monkeypatch):
    from sky.server import common as server_common

    monkeypatch.setattr(server_common, "get_server_url", lambda host=None: "http://sky.example:46580")
    monkeypatch.setattr(server_common, "is_api_server_local", lambda endpoint=None: False)
    monkeypatch.setattr(server_common, "get_api_server_status", lambda endpoint=None: server_common.ApiServerInfo(
        status=server_common.ApiServerStatus.UNHEALTHY, error="connection refused\nretry"))
    with pytest.raises(BackendUnavailable, match=r"^SkyPilot API server http://sky\.example:46580 is unhealthy: "
                                                 r"connection refused$"):
        SkyPilotBackend().check()
    monkeypatch.setattr(server_common, "get_api_server_status", lambda endpoint=None: server_common.ApiServerInfo(
        status=server_common.ApiServerStatus.HEALTHY))
    SkyPilotBackend().check()


def test_check_local_server_starts_on_first_use(monkeypatch):
    from sky.server import common as server_common

    monkeypatch.setattr(server_common, "is_api_server_local", lambda endpoint=None: True)
    monkeypatch.setattr(server_common, "get_api_server_status", lambda endpoint=None: pytest.fail("no probe"))
    SkyPilotBackend().check()

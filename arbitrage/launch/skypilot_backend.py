"""SkyPilot backend: launch a pinned task, report its state, stream logs, cancel and tear down (the edge).

Spot placements run as SkyPilot managed jobs (`sky.jobs.launch`): the jobs controller recovers them after
a preemption from the mounted checkpoint. On-demand placements run as a cluster (`sky.launch`) with
autodown after ``idle_minutes_to_autostop`` idle minutes. Every SkyPilot call goes through its API
server (a local one is started on first use; SKYPILOT_API_SERVER_ENDPOINT selects a team's server).
``sky`` is imported inside the methods: importing it costs seconds.
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TextIO

from arbitrage import billing
from arbitrage.errors import GpuarbError, UsageError
from arbitrage.launch import skytask
from arbitrage.launch.backend import (
    CLUSTER_PREFIX,
    BackendOptions,
    BackendUnavailable,
    CapacityError,
    ClusterInfo,
    Handle,
    JobState,
    JobStatus,
    LaunchError,
    LaunchRequest,
)
from arbitrage.plural import plural

if TYPE_CHECKING:
    from collections.abc import Hashable
    from types import ModuleType

    from arbitrage.costmodel import CostBreakdown, Placement

NAME = "skypilot"
INSTALL_HINT = "skypilot is not installed: pip install 'gpuarb[launch]'"

# SkyPilot's cluster job states (sky.JobStatus) -> ours. SETTING_UP runs the user's setup: billed work.
CLUSTER_JOB_STATES: dict[str, JobState] = {
    "INIT": JobState.PENDING,
    "PENDING": JobState.PENDING,
    "SETTING_UP": JobState.RUNNING,
    "RUNNING": JobState.RUNNING,
    "FAILED_DRIVER": JobState.FAILED,
    "SUCCEEDED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
    "FAILED_SETUP": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
}

# SkyPilot's managed job states (sky.jobs.ManagedJobStatus) -> ours. STARTING covers the controller
# provisioning the cluster, which for a pinned spot task retries until capacity appears.
MANAGED_JOB_STATES: dict[str, JobState] = {
    "PENDING": JobState.PENDING,
    "SUBMITTED": JobState.PENDING,
    "STARTING": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "WINDING_DOWN": JobState.RUNNING,
    "RECOVERING": JobState.RECOVERING,
    "CANCELLING": JobState.CANCELLED,
    "SUCCEEDED": JobState.SUCCEEDED,
    "CANCELLED": JobState.CANCELLED,
    "FAILED": JobState.FAILED,
    "FAILED_SETUP": JobState.FAILED,
    "FAILED_PRECHECKS": JobState.FAILED,
    "FAILED_NO_RESOURCE": JobState.FAILED,
    "FAILED_CONTROLLER": JobState.FAILED,
}

# Words cloud APIs use for "no capacity / no quota" when SkyPilot passes their error through unwrapped.
_CAPACITY_WORDS = re.compile(
    r"insufficient\s*(instance)?\s*capacity|InsufficientInstanceCapacity|ZONE_RESOURCE_POOL_EXHAUSTED|"
    r"out of capacity|no capacity|not enough capacity|capacity not available|quota|"
    r"resources? (are |is )?(currently )?unavailable|stockout|SkuNotAvailable|AllocationFailed",
    re.IGNORECASE,
)
# SkyPilot raises ResourcesUnavailableError when the task's storage needs a cloud the user has no access
# to; that fails every placement alike, so it is not a reason to fail over.
_STORAGE_ACCESS = re.compile(r"Storage ['\"]store: [\w-]+['\"] specified, but", re.IGNORECASE)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MAX_MESSAGE = 300


def _now_utc() -> datetime:
    return datetime.now(timezone.utc)


def one_line(exc: BaseException) -> str:
    """The first meaningful line of an exception's message, without colour codes."""
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def is_capacity_failure(exc: BaseException, exceptions: ModuleType) -> bool:
    """True when SkyPilot failed for capacity, quota or resources that are unavailable for this placement.

    A ResourcesUnavailableError is a capacity failure when its failover history holds one (SkyPilot
    records non-capacity causes there as other exception types), or, without history, when the
    optimizer found nothing launchable there (a cloud not enabled for this user counts: the next
    placement may be on one that is); ``no_failover`` and missing storage access are not capacity.
    """
    if isinstance(exc, exceptions.ResourcesUnavailableError):
        history = list(getattr(exc, "failover_history", None) or [])
        if history:
            return any(is_capacity_failure(h, exceptions) for h in history)
        if _STORAGE_ACCESS.search(str(exc)):
            return False
        return not getattr(exc, "no_failover", False) or bool(_CAPACITY_WORDS.search(str(exc)))
    if isinstance(exc, exceptions.ManagedJobReachedMaxRetriesError):
        return True
    return bool(_CAPACITY_WORDS.search(str(exc)))


def launch_error(label: str, exc: BaseException, exceptions: ModuleType) -> LaunchError:
    """One-line LaunchError (CapacityError for capacity/quota/unavailable) naming the placement."""
    message = one_line(exc)
    history = list(getattr(exc, "failover_history", None) or [])
    if history:
        last = one_line(history[-1])
        if last != message:
            message = f"{message} (last failure: {last})"
    if isinstance(exc, exceptions.NoCloudAccessError | exceptions.CloudUserIdentityError
                  | exceptions.InvalidCloudCredentials) and "sky check" not in message:
        message += " (check credentials with `sky check`)"
    cls = CapacityError if is_capacity_failure(exc, exceptions) else LaunchError
    return cls(f"{label}: {message}")


def _server_error(exc: BaseException, exceptions: ModuleType) -> BackendUnavailable | None:
    """BackendUnavailable when the API server cannot be reached or used, else None."""
    server_errors = (exceptions.ApiServerConnectionError, exceptions.ApiServerAuthenticationError,
                     exceptions.APIVersionMismatchError)
    if isinstance(exc, server_errors):
        return BackendUnavailable(f"skypilot: {one_line(exc)}")
    return None


def _int_id(handle: Handle) -> int | None:
    try:
        return int(handle.job_id) if handle.job_id is not None else None
    except ValueError:
        return None


def launched_detail(resource_handle: Any) -> dict[str, str]:
    """Where SkyPilot really launched a cluster and the cluster's USD per hour there, from the handle `sky.launch`
    returns (``launched_resources``, ``launched_nodes``), as Handle.detail strings (keys in arbitrage.billing).

    The price is SkyPilot's catalog price for the launched cloud/region/zone/instance (``Resources.get_cost``), so
    a run whose pin left SkyPilot a choice (a zone, a marketplace offer) is billed where it landed. Anything missing
    or unreadable leaves the price out (billing then uses the planned price) but keeps what could be read.
    """
    res = getattr(resource_handle, "launched_resources", None)
    if res is None or getattr(res, "cloud", None) is None:
        return {}
    parts = [str(res.cloud).lower(), getattr(res, "region", None), getattr(res, "zone", None)]
    where = "/".join(str(p) for p in parts if p)
    instance = getattr(res, "instance_type", None)
    detail = {billing.LAUNCHED_WHERE: f"{where} {instance or '?'}{' spot' if getattr(res, 'use_spot', False) else ''}"}
    try:
        nodes = int(getattr(resource_handle, "launched_nodes", 1) or 1)
        hourly = float(res.get_cost(3600)) * nodes
    except Exception:
        return detail
    if math.isfinite(hourly) and hourly > 0:
        detail[billing.LAUNCHED_USD_PER_HOUR] = f"{hourly:.6f}"
        detail[billing.LAUNCHED_PRICE_FROM] = f"SkyPilot catalog, {plural(nodes, 'node')}"
    return detail


def _first(value: Any) -> Any:
    """A launch returns one job id, a managed launch a list of them."""
    if isinstance(value, list | tuple):
        return value[0] if value else None
    return value


def _records(value: Any) -> list[Any]:
    """Managed job records from jobs.queue_v2 (a tuple on new servers, a list on old ones)."""
    if isinstance(value, tuple):
        return list(value[0])
    return list(value or [])


def _name(status: Any) -> str:
    """An enum member's value ('RUNNING'), or the text itself."""
    return str(getattr(status, "value", status))


def managed_state(status: Any) -> JobState:
    """Our state for a SkyPilot ManagedJobStatus (unknown failures are FAILED, other unknowns PENDING)."""
    name = _name(status)
    return MANAGED_JOB_STATES.get(name, JobState.FAILED if name.startswith("FAILED") else JobState.PENDING)


def cluster_job_state(status: Any) -> JobState:
    """Our state for a SkyPilot cluster JobStatus."""
    name = _name(status)
    return CLUSTER_JOB_STATES.get(name, JobState.FAILED if name.startswith("FAILED") else JobState.PENDING)


def _split_lines(chunks: Iterable[str | None]) -> Iterator[str]:
    """Whole lines (without line ends) from streamed text pieces; None pieces are SkyPilot's control marks."""
    pending = ""
    for chunk in chunks:
        if chunk is None:
            continue
        pending += chunk
        *lines, pending = pending.split("\n")
        yield from (line.rstrip("\r") for line in lines)
    if pending:
        yield pending.rstrip("\r")


class SkyPilotBackend:
    """The Backend protocol over SkyPilot's Python SDK (0.14): clusters for on-demand, managed jobs for spot."""

    name = NAME
    pins_placement = True  # each placement is pinned: cloud, region/zone, instance type
    local_checkpoints = False  # the spec's bucket, mounted on the cluster

    def __init__(self, progress: TextIO | None = None, clock: Callable[[], datetime] = _now_utc) -> None:
        """``progress``: where SkyPilot's launch progress is streamed (None: wait silently); ``clock`` for idle."""
        self._progress = progress
        self._clock = clock

    @classmethod
    def from_options(cls, options: BackendOptions) -> SkyPilotBackend:
        """SkyPilot picks its own API server; a Ray cluster address means nothing to it."""
        if options.address:
            raise UsageError("--ray-address only applies to --backend local")
        return cls(progress=options.progress)

    # -- plumbing ---------------------------------------------------------------------------------------
    def _sky(self) -> ModuleType:
        try:
            import sky
            import sky.jobs  # the managed-jobs SDK lives in a subpackage
        except ImportError:
            raise BackendUnavailable(INSTALL_HINT) from None
        return sky

    def _result(self, sky: ModuleType, request_id: Any) -> Any:
        """Wait for an API request and return its result (raises the server-side exception)."""
        if self._progress is None:
            return sky.get(request_id)
        return sky.stream_and_get(request_id, output_stream=self._progress)

    def _call(self, sky: ModuleType, request: Callable[[], Any]) -> Any:
        """Run one SDK request to completion; server trouble becomes BackendUnavailable."""
        try:
            return sky.get(request())
        except Exception as exc:
            unavailable = _server_error(exc, sky.exceptions)
            if unavailable is not None:
                raise unavailable from exc
            raise

    # -- Backend ----------------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise BackendUnavailable when SkyPilot is missing or its remote API server is not healthy."""
        self._sky()
        from sky.server import common as server_common

        url = server_common.get_server_url()
        if server_common.is_api_server_local(url):
            return  # SkyPilot starts its local API server on first use
        info = server_common.get_api_server_status(url)
        if info.status != server_common.ApiServerStatus.HEALTHY:
            detail = f": {one_line(Exception(info.error))}" if info.error else ""
            raise BackendUnavailable(f"SkyPilot API server {url} is {info.status.value}{detail}")

    def launch_key(self, placement: Placement) -> Hashable | None:
        """What a launch of ``placement`` really pins (placements equal here are one launch); None: cannot launch."""
        try:
            sky_pin = skytask.pin(placement)
        except LaunchError:
            return None
        return (sky_pin.infra, sky_pin.instance_type, sky_pin.accelerator, sky_pin.count, placement.spot,
                placement.nodes)

    def accounting_note(self, cost: CostBreakdown) -> str | None:
        """Nothing to add: the run is launched on the placement the plan priced."""
        return None

    def accounted(self, row: dict[str, Any]) -> dict[str, Any]:
        """The cloud's placement as priced (a cluster launch then records its launched price: `launch`)."""
        return row

    def render(self, req: LaunchRequest) -> str:
        """The task YAML this backend launches for ``req``."""
        return skytask.task_yaml(req)

    def launch(self, req: LaunchRequest) -> Handle:
        """Launch ``req`` pinned to its placement; blocks through provisioning and setup (minutes)."""
        config = skytask.task_config(req)
        sky = self._sky()
        label = skytask.placement_label(req.placement)
        managed = skytask.launch_mode(req) == "managed"
        request_id = None
        try:
            task = sky.Task.from_yaml_config(copy.deepcopy(config))
            if managed:
                request_id = sky.jobs.launch(task, name=req.cluster_name)
            else:
                request_id = sky.launch(task, cluster_name=req.cluster_name, down=True,
                                        idle_minutes_to_autostop=req.idle_minutes_to_autostop)
            result = self._result(sky, request_id)
        except KeyboardInterrupt:
            if request_id is not None:  # the server would go on launching without us
                with contextlib.suppress(Exception):
                    sky.api_cancel(request_id, silent=True)
            raise
        except Exception as exc:
            unavailable = _server_error(exc, sky.exceptions)
            if unavailable is not None:
                raise unavailable from exc
            error = launch_error(label, exc, sky.exceptions)
            if not managed and request_id is not None:
                # SkyPilot keeps a cluster whose setup failed "for debugging": it would bill until reaped.
                error = type(error)(f"{error}{self._cleanup_failed_cluster(sky, req.cluster_name)}")
            raise error from exc
        job_id = _first(result[0]) if isinstance(result, tuple | list) and result else None
        sky_pin = skytask.request_pin(req)
        detail = {"infra": sky_pin.infra, "instance_type": sky_pin.instance_type or "",
                  "mode": "managed" if managed else "cluster"}
        if not managed and isinstance(result, tuple | list) and len(result) > 1:
            detail.update(launched_detail(result[1]))  # a managed launch returns the jobs controller's handle
        return Handle(backend=NAME, cluster_name=req.cluster_name, job_id=None if job_id is None else str(job_id),
                      managed=managed, detail=detail)

    def _cleanup_failed_cluster(self, sky: ModuleType, cluster_name: str) -> str:
        try:
            sky.get(sky.down(cluster_name))
        except sky.exceptions.ClusterDoesNotExist:
            return ""
        except Exception as exc:
            return f" (its cluster may still be up: run `sky down {cluster_name}`: {one_line(exc)})"
        return " (its cluster was torn down)"

    def status(self, handle: Handle) -> JobStatus:
        """The job's state now; a vanished job or cluster reads FAILED with the reason."""
        sky = self._sky()
        job_id = _int_id(handle)
        if handle.managed:
            if job_id is None:
                return JobStatus(JobState.FAILED, message=f"managed job id {handle.job_id!r} is not a number")
            try:
                try:
                    records = _records(self._call(sky, lambda: sky.jobs.queue_v2(
                        refresh=False, job_ids=[job_id], fields=None)))
                except sky.exceptions.ClusterNotUpError:  # the jobs controller autostopped: start it to read
                    records = _records(self._call(sky, lambda: sky.jobs.queue_v2(
                        refresh=True, job_ids=[job_id], fields=None)))
            except (sky.exceptions.ClusterNotUpError, sky.exceptions.ClusterDoesNotExist) as exc:
                return JobStatus(JobState.FAILED, message=f"managed job {job_id}: {one_line(exc)}")
            record = next((r for r in records if r.get("job_id") == job_id), None)
            if record is None:
                return JobStatus(JobState.FAILED, message=f"managed job {job_id} not found on the jobs controller")
            status = record.get("status")
            why = record.get("failure_reason") or record.get("details") or ""
            message = f"{_name(status)}: {why}" if why else _name(status)
            return JobStatus(managed_state(status), restarts=int(record.get("recovery_count") or 0),
                             message=_ANSI.sub("", message).splitlines()[0] if message else "")
        clusters = self._call(sky, lambda: sky.status(
            [handle.cluster_name], refresh=sky.StatusRefreshMode.AUTO))
        record = next((c for c in clusters if c.get("name") == handle.cluster_name), None)
        if record is None:
            return JobStatus(JobState.FAILED, message=f"cluster {handle.cluster_name} no longer exists")
        cluster_status = _name(record.get("status"))
        if cluster_status == "STOPPED":
            return JobStatus(JobState.PREEMPTED, message=f"cluster {handle.cluster_name} is STOPPED")
        if job_id is None:
            return JobStatus(JobState.PENDING if cluster_status == "INIT" else JobState.FAILED,
                             message=f"cluster {cluster_status}, no job submitted")
        try:
            statuses = self._call(sky, lambda: sky.job_status(handle.cluster_name, [job_id]))
        except (sky.exceptions.ClusterNotUpError, sky.exceptions.ClusterDoesNotExist) as exc:
            return JobStatus(JobState.PREEMPTED, message=f"cluster {cluster_status}: {one_line(exc)}")
        job = statuses.get(job_id, statuses.get(str(job_id))) if isinstance(statuses, dict) else None
        if job is None:
            return JobStatus(JobState.FAILED, message=f"job {job_id} not found on cluster {handle.cluster_name}")
        return JobStatus(cluster_job_state(job), message=_name(job))

    def logs(self, handle: Handle, follow: bool = False) -> Iterator[str]:
        """The job's output lines (managed job or cluster job); with ``follow`` until the job ends."""
        sky = self._sky()
        job_id = _int_id(handle)
        try:
            if handle.managed:
                chunks = sky.jobs.tail_logs(job_id=job_id, follow=follow, preload_content=False)
            else:
                chunks = sky.tail_logs(handle.cluster_name, job_id, follow, preload_content=False)
            yield from _split_lines(chunks)
        except Exception as exc:
            unavailable = _server_error(exc, sky.exceptions)
            if unavailable is not None:
                raise unavailable from exc
            raise GpuarbError(f"skypilot: logs of {handle.cluster_name} job {handle.job_id}: {one_line(exc)}") from exc

    def cancel(self, handle: Handle) -> None:
        """Stop the job (idempotent); a managed job's cluster goes with it, a cluster stays until teardown."""
        sky = self._sky()
        job_id = _int_id(handle)
        try:
            if handle.managed:
                if job_id is not None:
                    self._call(sky, lambda: sky.jobs.cancel(job_ids=[job_id]))
            elif job_id is not None:
                self._call(sky, lambda: sky.cancel(handle.cluster_name, job_ids=[job_id]))
        except (sky.exceptions.ClusterDoesNotExist, sky.exceptions.ClusterNotUpError):
            return  # nothing left running there
        except BackendUnavailable:
            raise
        except Exception as exc:
            raise GpuarbError(f"skypilot: cancel {handle.cluster_name} job {handle.job_id}: {one_line(exc)}") from exc

    def teardown(self, handle: Handle) -> None:
        """Delete what the job billed (idempotent): `sky down` the cluster, or cancel the managed job.

        A handle with only a cluster name (a launch that failed or was interrupted) gets both: the
        cluster of that name goes down and any managed job of that name is cancelled.
        """
        sky = self._sky()
        job_id = _int_id(handle)
        name = handle.cluster_name
        try:
            if handle.managed and job_id is not None:  # the jobs controller tears the job's cluster down
                self._call(sky, lambda: sky.jobs.cancel(job_ids=[job_id]))
                return
            with contextlib.suppress(sky.exceptions.ClusterDoesNotExist):
                self._call(sky, lambda: sky.down(name))
            if job_id is None:
                # No jobs controller: no managed job of that name.
                with contextlib.suppress(sky.exceptions.ClusterNotUpError, sky.exceptions.ClusterDoesNotExist):
                    self._call(sky, lambda: sky.jobs.cancel(name=name))
        except BackendUnavailable:
            raise
        except Exception as exc:
            what = f"`sky jobs cancel {job_id}`" if handle.managed else f"`sky down {name}`"
            raise GpuarbError(f"skypilot: teardown of {name} failed, run {what}: {one_line(exc)}") from exc

    def not_running(self) -> str | None:
        """Why listing would start SkyPilot's local API server (about 35 s, left running): it is not up now.

        A remote (team) API server is asked as usual (None); ``check`` reports one that is unhealthy.
        """
        self._sky()
        from sky.server import common as server_common

        url = server_common.get_server_url()
        if not server_common.is_api_server_local(url):
            return None
        if server_common.get_api_server_status(url).status == server_common.ApiServerStatus.HEALTHY:
            return None
        return (f"SkyPilot's local API server ({url}) is not running; `sky api start`, or `gpuarb reap --backend "
                "skypilot`, to look at SkyPilot's clusters")

    def clusters(self) -> list[ClusterInfo]:
        """gpuarb's clusters and unfinished managed jobs, with launch time and idle minutes where known."""
        sky = self._sky()
        found: list[ClusterInfo] = []
        for record in self._call(sky, lambda: sky.status(refresh=sky.StatusRefreshMode.NONE)):
            name = record.get("name") or ""
            if not name.startswith(CLUSTER_PREFIX):
                continue
            status = _name(record.get("status"))
            launched = record.get("launched_at")
            found.append(ClusterInfo(
                name=name, backend=NAME, status=status,
                launched_at=datetime.fromtimestamp(launched, tz=timezone.utc) if launched else None,
                idle_minutes=self._idle_minutes(sky, name) if status == "UP" else None,
            ))
        try:
            jobs = _records(self._call(sky, lambda: sky.jobs.queue_v2(refresh=False, skip_finished=True)))
        except (sky.exceptions.ClusterNotUpError, sky.exceptions.ClusterDoesNotExist):
            jobs = []  # no jobs controller: no managed jobs
        for job in jobs:
            name = job.get("job_name") or ""
            if not name.startswith(CLUSTER_PREFIX):
                continue
            submitted = job.get("submitted_at")
            found.append(ClusterInfo(
                name=name, backend=NAME, status=_name(job.get("status")),
                launched_at=datetime.fromtimestamp(submitted, tz=timezone.utc) if submitted else None,
                job_state=managed_state(job.get("status")),
            ))
        return found

    def _idle_minutes(self, sky: ModuleType, cluster_name: str) -> float | None:
        """Minutes since the cluster's last job ended (0 while one runs); None when its queue is unreadable."""
        try:
            jobs = self._call(sky, lambda: sky.queue(cluster_name, skip_finished=False))
        except BackendUnavailable:
            raise
        except Exception:
            return None
        if any(not cluster_job_state(j.get("status")).terminal for j in jobs):
            return 0.0
        ended = [j.get("end_at") or j.get("submitted_at") for j in jobs]
        ended = [t for t in ended if t]
        if not ended:
            return None
        return max(0.0, (self._clock().timestamp() - max(ended)) / 60)

"""A Backend whose jobs are files, for the server load bench: a job "runs" for a fixed number of seconds from its
launch, whatever process watches it, so it survives the kill -9 of the server that launched it (as a SkyPilot
cluster does). Every launch and teardown is appended to a log, so the bench can count launches per run.
Not in the backend registry: `bench/server_replica.py` hands it to the server.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

from arbitrage.launch.backend import ClusterInfo, Handle, JobState, JobStatus, LaunchRequest


class FileBackend:
    """Jobs as ``<state>/clusters/<name>.json``, each done ``seconds`` after its launch."""

    name = "skypilot"  # it stands in for SkyPilot: runs submitted for skypilot are launched here
    pins_placement = True
    local_checkpoints = False

    def __init__(self, state: Path, seconds: float) -> None:
        self.state, self.seconds = state, seconds
        (state / "clusters").mkdir(parents=True, exist_ok=True)

    def _log(self, name: str, line: str) -> None:
        fd = os.open(self.state / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def launch_key(self, placement: Any) -> Hashable | None:
        return placement

    def accounting_note(self, cost: Any) -> str | None:
        return None

    def accounted(self, row: dict[str, Any]) -> dict[str, Any]:
        return row

    def check(self) -> None:
        return None

    def render(self, req: LaunchRequest) -> str:
        return req.cluster_name

    def launch(self, req: LaunchRequest) -> Handle:
        path = self.state / "clusters" / f"{req.cluster_name}.json"
        path.write_text(json.dumps({"run_id": req.run_id, "attempt": req.attempt, "started": time.time()}))
        self._log("launches.log", f"{req.run_id} {req.cluster_name}")
        return Handle(backend=self.name, cluster_name=req.cluster_name, job_id="1")

    def status(self, handle: Handle) -> JobStatus:
        try:
            job = json.loads((self.state / "clusters" / f"{handle.cluster_name}.json").read_text())
        except (OSError, ValueError):
            return JobStatus(JobState.CANCELLED, message=f"{handle.cluster_name} is gone")
        if time.time() - job["started"] >= self.seconds:
            return JobStatus(JobState.SUCCEEDED, message="exit 0")
        return JobStatus(JobState.RUNNING)

    def logs(self, handle: Handle, follow: bool = False) -> Iterator[str]:
        yield f"{handle.cluster_name}: bench job"

    def cancel(self, handle: Handle) -> None:
        self._log("cancels.log", handle.cluster_name)

    def teardown(self, handle: Handle) -> None:
        (self.state / "clusters" / f"{handle.cluster_name}.json").unlink(missing_ok=True)
        self._log("teardowns.log", handle.cluster_name)

    def clusters(self) -> list[ClusterInfo]:
        return [ClusterInfo(name=p.stem, backend=self.name, status="UP", job_state=None)
                for p in (self.state / "clusters").glob("*.json")]

    def not_running(self) -> str | None:
        return None

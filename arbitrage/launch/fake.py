"""FakeBackend: the whole Backend protocol with scripted outcomes, for tests of the runner, the ledger and the CLI.

Nothing runs: a launch fails for the instance types listed in ``no_capacity`` (CapacityError, so the runner fails
over) or ``broken`` (LaunchError), and otherwise returns a handle whose job walks through its status script. Every
launch, cancel and teardown is recorded. It is not in the backend registry: users cannot pick it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from arbitrage.launch.backend import (
    ENV_METRICS,
    BackendOptions,
    CapacityError,
    ClusterInfo,
    Handle,
    JobStatus,
    LaunchError,
    LaunchRequest,
    gpuarb_envs,
)

if TYPE_CHECKING:
    from arbitrage.costmodel import CostBreakdown, Placement


@dataclass
class FakeBackend:
    """Launch outcomes per instance type and a status script per launch; records every call.

    ``scripts[k]`` is the status sequence of the (k+1)-th successful launch: each ``status`` call takes the next
    one, and the last one repeats. By default it stands in for a cloud: it is named ``skypilot``, pins
    placements and mounts the spec's bucket for checkpoints.
    """

    name: str = "skypilot"
    pins_placement: bool = True
    local_checkpoints: bool = False
    no_capacity: set[str] = field(default_factory=set)  # instance types whose launch raises CapacityError
    broken: set[str] = field(default_factory=set)  # instance types whose launch raises LaunchError
    unlaunchable: set[str] = field(default_factory=set)  # instance types whose launch_key is None
    scripts: list[list[JobStatus]] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=lambda: ["log line"])
    note: str | None = None  # what accounting_note says
    # What each launched job appends to its GPUARB_METRICS file (local checkpoints only), e.g. '{"tokens": 1000}\n'
    metrics: str = ""
    # Handle.detail each launch returns: e.g. where it really launched and the price there (arbitrage/billing.py)
    launched_detail: dict[str, str] = field(default_factory=dict)
    launched: list[LaunchRequest] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    torn_down: list[str] = field(default_factory=list)

    @classmethod
    def from_options(cls, options: BackendOptions) -> FakeBackend:
        """A fake with nothing scripted (the options change nothing)."""
        return cls()

    def launch_key(self, placement: Placement) -> Hashable | None:
        """Equal placements are one launch; an ``unlaunchable`` instance type cannot be launched."""
        if placement.offer.instance_type in self.unlaunchable:
            return None
        return placement

    def accounting_note(self, cost: CostBreakdown) -> str | None:
        return self.note

    def accounted(self, row: dict[str, Any]) -> dict[str, Any]:
        return row

    def check(self) -> None:
        return None

    def render(self, req: LaunchRequest) -> str:
        return req.cluster_name

    def launch(self, req: LaunchRequest) -> Handle:
        itype = req.placement.offer.instance_type
        if itype in self.no_capacity:
            raise CapacityError(f"{itype}: insufficient capacity")
        if itype in self.broken:
            raise LaunchError(f"{itype}: invalid credentials")
        self.launched.append(req)
        if self.metrics and self.local_checkpoints and req.checkpoint is not None:  # the job reports its work
            with open(gpuarb_envs(req)[ENV_METRICS], "a", encoding="utf-8") as fh:
                fh.write(self.metrics)
        return Handle(backend=self.name, cluster_name=req.cluster_name, job_id=str(len(self.launched)),
                      detail=dict(self.launched_detail))

    def status(self, handle: Handle) -> JobStatus:
        script = self._script(handle)
        return script.pop(0) if len(script) > 1 else script[0]

    def logs(self, handle: Handle, follow: bool = False) -> Iterator[str]:
        yield from self.log_lines

    def cancel(self, handle: Handle) -> None:
        self.cancelled.append(handle.cluster_name)

    def teardown(self, handle: Handle) -> None:
        self.torn_down.append(handle.cluster_name)

    def clusters(self) -> list[ClusterInfo]:
        """The clusters it launched and has not torn down, UP, with their job's current state (not consumed)."""
        found: list[ClusterInfo] = []
        for n, req in enumerate(self.launched, start=1):
            if req.cluster_name in self.torn_down or any(c.name == req.cluster_name for c in found):
                continue
            script = self.scripts[n - 1] if n <= len(self.scripts) else []
            found.append(ClusterInfo(name=req.cluster_name, backend=self.name, status="UP",
                                     job_state=script[0].state if script else None))
        return found

    def not_running(self) -> str | None:
        """Always answers: nothing to start."""
        return None

    def _script(self, handle: Handle) -> list[JobStatus]:
        return self.scripts[int(handle.job_id or 1) - 1]

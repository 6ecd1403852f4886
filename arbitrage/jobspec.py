"""The job records the planner consumes: a frozen JobSpec and its parts. Plain data, no parsing.

The job file (a SkyPilot task YAML plus an ``arbitrage:`` block) is read and validated by
``arbitrage.specfile``, which builds these records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from arbitrage.facts import Workload
from arbitrage.units import ModelSpec, TokenWork

SpotPolicy = Literal["never", "always", "auto"]
InterconnectNeed = Literal["required", "preferred", "any"]


@dataclass(frozen=True, slots=True)
class AcceleratorChoice:
    """One acceptable accelerator: canonical name and GPUs per node."""

    name: str
    count: int

    def __str__(self) -> str:
        return f"{self.name}:{self.count}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One SkyPilot resource candidate: an accelerator with the pins of its any_of/ordered entry merged with the
    shared resource fields as SkyPilot merges them (entry fields win). None: not pinned."""

    accelerator: AcceleratorChoice
    provider: str | None = None
    region: str | None = None
    zone: str | None = None
    spot: bool | None = None


@dataclass(frozen=True, slots=True)
class SpecOverrides:
    """`sky launch`-style command-line overrides of a task (None: keep the file's value), plus the work when the
    file states none: ``hours`` (wall hours on the first choice) or ``gpu_hours`` on ``reference``."""

    gpus: str | None = None
    num_nodes: int | None = None
    use_spot: bool | None = None
    infra: str | None = None
    region: str | None = None
    zone: str | None = None
    hours: float | None = None
    gpu_hours: float | None = None
    reference: str | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, name) is not None for name in self.__slots__)

    def describe(self) -> str:
        """The overrides in command-line words, e.g. '--gpus H100:8 --use-spot'."""
        words = []
        for name in self.__slots__:
            value = getattr(self, name)
            if value is None:
                continue
            if name == "use_spot":
                words.append("--use-spot" if value else "--no-use-spot")
            else:
                words.append(f"--{name.replace('_', '-')} {value:g}" if isinstance(value, float)
                             else f"--{name.replace('_', '-')} {value}")
        return " ".join(words)


@dataclass(frozen=True, slots=True)
class Work:
    """How much work the job is: reference GPU-hours on ``reference`` (an H100 by default), or tokens of a model.

    With ``tokens`` set (work stated as tokens or tasks, see arbitrage.units) ``gpu_hours`` is 0: the cost model
    takes each offer's hours from arbitrage.units instead.
    """

    gpu_hours: float
    reference: str
    tokens: TokenWork | None = None
    # No work stated (a plain SkyPilot task): every placement is costed for this many wall hours, so the plan ranks
    # by cluster $/h as SkyPilot's optimizer does. None when the work is known.
    wall_hours: float | None = None

    @property
    def known(self) -> bool:
        """False for a task without arbitrage.work (ranked by cluster $/h for ``wall_hours``)."""
        return self.wall_hours is None

    def describe(self, workload: str = "training") -> str:
        """'64 H100 GPU-hours' or '2e+09 output tokens of 70B fp8 (70B class)', for plan headers."""
        if self.wall_hours is not None:
            return f"no duration known (ranked by cluster $/h for {self.wall_hours:g} h)"
        if self.tokens is not None:
            return self.tokens.describe(workload)
        return f"{self.gpu_hours:g} {self.reference} GPU-hours"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where and how often the job checkpoints; bounds the work lost to a preemption."""

    uri: str
    interval_minutes: float
    write_minutes: float | None = None


@dataclass(frozen=True, slots=True)
class DataLocation:
    """The input data set's home: egress is billed by this provider when it leaves."""

    provider: str
    region: str
    size_gb: float
    uri: str | None = None


@dataclass(frozen=True, slots=True)
class Deadline:
    """Either a duration from plan time or an absolute UTC-aware timestamp."""

    hours: float | None = None
    at: datetime | None = None

    def hours_left(self, now: datetime) -> float:
        """Hours between ``now`` and the deadline (negative when already past)."""
        if self.at is not None:
            return (self.at - now).total_seconds() / 3600
        assert self.hours is not None
        return self.hours

    def __str__(self) -> str:
        return self.at.isoformat() if self.at is not None else f"{self.hours:g}h"


@dataclass(frozen=True, slots=True)
class Budget:
    """Spend caps in USD for the whole job and per cluster-hour."""

    max_total_usd: float | None = None
    max_hourly_usd: float | None = None


@dataclass(frozen=True)
class JobSpec:
    """A validated job: what to run, on which GPUs, how much work, and the constraints."""

    name: str
    accelerators: tuple[AcceleratorChoice, ...]
    num_nodes: int
    work: Work
    ordered: bool = False
    workload: Workload = "training"
    spot: SpotPolicy = "never"
    checkpoint: Checkpoint | None = None
    interconnect: InterconnectNeed = "any"
    data: DataLocation | None = None
    outputs_gb: float = 0.0
    deadline: Deadline | None = None
    # P(finish by the deadline) a placement needs (0 < c < 1); None: facts.assumptions.deadline_confidence (0.95).
    deadline_confidence: float | None = None
    budget: Budget = field(default_factory=Budget)
    providers_allow: tuple[str, ...] | None = None
    providers_deny: tuple[str, ...] = ()
    regions_allow: tuple[str, ...] | None = None
    regions_deny: tuple[str, ...] = ()
    # Data residency (arbitrage.geo): ISO country codes, continent names or groups (EU, EEA); an offer must be in a
    # place an allow token names and in none a deny token names. None = no allow rule.
    geo_allow: tuple[str, ...] | None = None
    geo_deny: tuple[str, ...] = ()
    min_gpu_memory_gb: float | None = None
    min_vcpus: float | None = None
    min_ram_gb: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)
    path: str = "<spec>"
    # Per-candidate pins (any_of/ordered entries with their own infra, region, zone or use_spot); empty when every
    # candidate shares the spec-wide rules above.
    candidates: tuple[Candidate, ...] = ()
    # One-line notes for people: what was assumed or left out (no duration known, egress not counted, k8s infra).
    notes: tuple[str, ...] = ()


__all__ = [
    "AcceleratorChoice", "Budget", "Candidate", "Checkpoint", "DataLocation", "Deadline", "InterconnectNeed",
    "JobSpec", "ModelSpec", "SpecOverrides", "SpotPolicy", "TokenWork", "Work",
]

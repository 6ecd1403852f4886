"""The job file: a SkyPilot task YAML plus an ``arbitrage:`` block, validated and turned into a JobSpec.

``parse_jobspec_text`` validates with pydantic and reports every problem as
``file:line: field: message``; the records it builds live in ``arbitrage.jobspec``.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import datetime
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from arbitrage.errors import SpecError
from arbitrage.facts import Facts
from arbitrage.jobspec import (
    AcceleratorChoice,
    Budget,
    Checkpoint,
    DataLocation,
    Deadline,
    InterconnectNeed,
    JobSpec,
    SpotPolicy,
    Work,
)
from providers.registry import provider_for_scheme, provider_ids

# ---------------------------------------------------------------------------------------------
# The file format (pydantic): what `gpuarb schema` prints and what validation checks.
# ---------------------------------------------------------------------------------------------

_ACCEL_SCHEMA = {
    "description": "SkyPilot accelerators: 'H100:8', a mapping {H100: 8, A100-80GB: 8} (any of), "
    "or a list ['H100:8', 'A100:8'] (ordered preference).",
    "anyOf": [
        {"type": "string"},
        {"type": "object", "additionalProperties": {"type": ["integer", "null"], "minimum": 1}},
        {"type": "array", "items": {"type": "string"}},
    ],
}
_DEADLINE_SCHEMA = {
    "description": "A duration such as '48h', '2d', '1d12h', '90m', or an ISO-8601 timestamp with timezone.",
    "type": "string",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkModel(_Strict):
    """Amount of work: reference GPU-hours on a named GPU, or wall hours on the requested configuration."""

    gpu_hours: float | None = Field(None, gt=0, description="GPU-hours of work on the reference GPU.")
    reference: str | None = Field(None, description="GPU the gpu_hours were measured on (default: first choice).")
    hours: float | None = Field(None, gt=0, description="Wall hours on the first accelerator choice x num_nodes.")

    @model_validator(mode="after")
    def _one_of(self) -> WorkModel:
        if (self.gpu_hours is None) == (self.hours is None):
            raise ValueError("give exactly one of gpu_hours or hours")
        if self.reference is not None and self.hours is not None:
            raise ValueError("reference goes with gpu_hours, not hours")
        return self


class CheckpointModel(_Strict):
    """Checkpoint location and cadence."""

    uri: str = Field(..., min_length=1)
    interval_minutes: float = Field(..., gt=0)
    write_minutes: float | None = Field(None, ge=0, description="Minutes to write one checkpoint.")


class DataModel(_Strict):
    """Input data set: where it lives and how big it is."""

    uri: str | None = None
    provider: str | None = Field(None, description="Cloud holding the data; inferred from s3://, gs://, az://.")
    region: str | None = None
    size_gb: float = Field(0, ge=0)


class BudgetModel(_Strict):
    """Spend caps in USD."""

    max_total_usd: float | None = Field(None, gt=0)
    max_hourly_usd: float | None = Field(None, gt=0)


class AllowDenyModel(_Strict):
    """Glob allow/deny lists."""

    allow: list[str] | None = None
    deny: list[str] = Field(default_factory=list)


class ArbitrageModel(_Strict):
    """The gpuarb block: work, spot policy, data, deadline, budget and placement rules."""

    work: WorkModel
    workload: Literal["training", "inference"] = "training"
    spot: SpotPolicy | None = None
    checkpoint: CheckpointModel | None = None
    interconnect: InterconnectNeed = "any"
    data: DataModel | None = None
    outputs_gb: float = Field(0, ge=0)
    deadline: Annotated[Any, WithJsonSchema(_DEADLINE_SCHEMA)] = None
    budget: BudgetModel = Field(default_factory=BudgetModel)
    providers: AllowDenyModel = Field(default_factory=AllowDenyModel)
    regions: AllowDenyModel = Field(default_factory=AllowDenyModel)
    min_gpu_memory_gb: float | None = Field(None, gt=0)
    tags: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("deadline", mode="before")
    @classmethod
    def _deadline(cls, value: Any) -> Deadline | None:
        return None if value is None else parse_deadline(value)

    @field_validator("providers")
    @classmethod
    def _providers(cls, value: AllowDenyModel) -> AllowDenyModel:
        known = provider_ids()
        for pattern in [*(value.allow or []), *value.deny]:
            if not fnmatch.filter(known, pattern):
                raise ValueError(f"unknown provider '{pattern}'{_did_you_mean(pattern, known)}")
        return value

    @model_validator(mode="after")
    def _cross_fields(self) -> ArbitrageModel:
        if self.outputs_gb > 0 and self.data is None:
            raise ValueError("outputs_gb needs arbitrage.data (outputs are written back to the data's home)")
        return self


class ResourcesModel(BaseModel):
    """SkyPilot resources; gpuarb reads accelerators, cloud/infra, region, use_spot, cpus, memory."""

    model_config = ConfigDict(extra="allow", frozen=True)

    accelerators: Annotated[Any, WithJsonSchema(_ACCEL_SCHEMA)] = None
    cloud: str | None = None
    infra: str | None = None
    region: str | None = None
    zone: str | None = None
    use_spot: bool | None = None
    cpus: str | int | float | None = None
    memory: str | int | float | None = None
    ordered: list[dict[str, Any]] | None = None
    any_of: list[dict[str, Any]] | None = None


class JobSpecFile(BaseModel):
    """A gpuarb job file: a SkyPilot task YAML plus the `arbitrage:` block."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="gpuarb job spec")

    name: str = Field(..., min_length=1)
    resources: ResourcesModel
    num_nodes: int = Field(1, ge=1)
    setup: str | None = None
    run: str | None = None
    workdir: Any = None
    envs: dict[str, Any] | None = None
    secrets: dict[str, Any] | None = None
    file_mounts: dict[str, Any] | None = None
    event_callback: Any = None
    service: Any = None
    config: Any = None
    volumes: Any = None
    inputs: Any = None
    outputs: Any = None
    experimental: Any = None
    pool: Any = None
    job: Any = None
    arbitrage: ArbitrageModel


def json_schema() -> dict[str, Any]:
    """JSON Schema of the job file, for editors and CI linting."""
    schema = JobSpecFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


# ---------------------------------------------------------------------------------------------
# Value parsers (pure).
# ---------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*$")


def parse_deadline(value: Any) -> Deadline:
    """'48h', '2d', '1d12h', '90m' or an ISO-8601 timestamp with a timezone."""
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groups()):
            days, hours, minutes = (float(g) if g else 0.0 for g in match.groups())
            total = days * 24 + hours + minutes / 60
            if total <= 0:
                raise ValueError(f"deadline must be in the future, got {value!r}")
            return Deadline(hours=total)
        try:
            stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"cannot read {value!r}: use a duration like '48h' or an ISO-8601 timestamp") from None
    else:
        raise ValueError(f"cannot read {value!r}: use a duration like '48h' or an ISO-8601 timestamp")
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        raise ValueError(f"timestamp {value!s} needs a timezone, e.g. 2026-12-01T18:00:00Z")
    return Deadline(at=stamp)


def parse_accelerators(value: Any, facts: Facts) -> tuple[tuple[AcceleratorChoice, ...], bool]:
    """SkyPilot accelerators (str, any-of mapping, ordered list) -> (choices, ordered)."""
    if value is None:
        raise ValueError("required: e.g. 'H100:8' or {H100: 8, A100-80GB: 8}")
    if isinstance(value, str):
        return (_one_accelerator(value, None, facts),), False
    if isinstance(value, dict):
        if not value:
            raise ValueError("empty mapping: name at least one GPU")
        return tuple(_one_accelerator(str(k), v, facts) for k, v in value.items()), False
    if isinstance(value, list):
        if not value:
            raise ValueError("empty list: name at least one GPU")
        return tuple(_one_accelerator(str(v), None, facts) for v in value), True
    raise ValueError(f"expected 'NAME:COUNT', a mapping or a list, got {type(value).__name__}")


def _one_accelerator(text: str, count: Any, facts: Facts) -> AcceleratorChoice:
    name, _, suffix = text.partition(":")
    if suffix and count is not None:
        raise ValueError(f"'{text}': give the count once, either in the key or as the value")
    raw_count: Any = suffix or (1 if count is None else count)
    try:
        number = float(raw_count)
    except (TypeError, ValueError):
        raise ValueError(f"'{text}': count {raw_count!r} is not a number") from None
    if number < 1 or number != int(number):
        raise ValueError(f"'{text}': count must be a whole number >= 1 (fractional GPUs are not supported)")
    canonical = facts.canonical_gpu(name)
    if canonical is None:
        hint = facts.suggest_gpu(name)
        raise ValueError(f"unknown GPU '{name.strip()}'" + (f" (did you mean {hint}?)" if hint else ""))
    return AcceleratorChoice(canonical, int(number))


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    import difflib  # only on the error path

    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _min_number(value: str | int | float | None) -> float | None:
    """SkyPilot '8+' / '8' / 8 minimums (cpus, memory) -> 8.0."""
    if value is None:
        return None
    text = str(value).strip().rstrip("+")
    return float(text)


# ---------------------------------------------------------------------------------------------
# YAML with line numbers.
# ---------------------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def _index_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int], where: str) -> None:
    """Record the 1-based line of every mapping key / list item; reject duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                dotted = ".".join(str(p) for p in (*path, key))
                raise SpecError(f"{where}:{key_node.start_mark.line + 1}: {dotted}: duplicate key")
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _index_lines(value_node, (*path, key), lines, where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _index_lines(item, (*path, i), lines, where)


def _line_for(loc: Path_, lines: dict[Path_, int]) -> int:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def load_yaml(text: str, where: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML once into Python data plus a path -> line index; syntax errors name the line."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise SpecError(f"{where}:1: the file is empty")
            lines: dict[Path_, int] = {}
            _index_lines(node, (), lines, where)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise SpecError(f"{where}:{line}: YAML syntax error: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: YAML error: {exc}") from None
    return data, lines


def _format_error(err: dict[str, Any], where: str, lines: dict[Path_, int]) -> str:
    loc: Path_ = tuple(p for p in err["loc"] if isinstance(p, int | str))
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    line = _line_for(loc, lines)
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        parent_loc, field_name = loc[:-1], str(loc[-1])
        allowed = _allowed_fields(parent_loc)
        msg = f"unknown field '{field_name}'{_did_you_mean(field_name, allowed)}"
        dotted = ".".join(str(p) for p in loc)
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif err["type"] == "literal_error":
        msg = f"{msg}, got {err.get('input')!r}"
    return f"{where}:{line}: {dotted}: {msg}"


def _allowed_fields(loc: Path_) -> list[str]:
    model: type[BaseModel] = JobSpecFile
    for part in loc:
        info = model.model_fields.get(str(part))
        annotation = getattr(info, "annotation", None) if info else None
        candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
        nested = [a for a in candidates if issubclass(a, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


# ---------------------------------------------------------------------------------------------
# File -> JobSpec.
# ---------------------------------------------------------------------------------------------

def parse_jobspec_text(text: str, facts: Facts, where: str = "<spec>") -> JobSpec:
    """Validate a job file's text and build the JobSpec; raises SpecError with file:line: field: msg."""
    data, lines = load_yaml(text, where)
    if not isinstance(data, dict):
        raise SpecError(f"{where}:1: expected a mapping of SkyPilot task fields, got {type(data).__name__}")
    try:
        model = JobSpecFile.model_validate(data, context={"facts": facts})
    except ValidationError as exc:
        errors = [_format_error(e, where, lines) for e in exc.errors()]
        raise SpecError("\n".join(errors)) from None
    try:
        return _to_jobspec(model, data, facts, where)
    except _FieldError as exc:
        line = _line_for(exc.loc, lines)
        raise SpecError(f"{where}:{line}: {'.'.join(map(str, exc.loc))}: {exc.msg}") from None


class _FieldError(Exception):
    def __init__(self, loc: Path_, msg: str) -> None:
        super().__init__(msg)
        self.loc, self.msg = loc, msg


def _accelerator_sources(res: ResourcesModel) -> list[tuple[Path_, Any]]:
    if res.ordered is not None or res.any_of is not None:
        key = "ordered" if res.ordered is not None else "any_of"
        entries = res.ordered if res.ordered is not None else res.any_of
        assert entries is not None
        return [(("resources", key, i, "accelerators"), e.get("accelerators")) for i, e in enumerate(entries)]
    return [(("resources", "accelerators"), res.accelerators)]


def _to_jobspec(model: JobSpecFile, raw: dict[str, Any], facts: Facts, where: str) -> JobSpec:
    res, arb = model.resources, model.arbitrage

    choices: list[AcceleratorChoice] = []
    ordered = res.ordered is not None
    for loc, value in _accelerator_sources(res):
        try:
            parsed, is_list = parse_accelerators(value, facts)
        except ValueError as exc:
            raise _FieldError(loc, str(exc)) from None
        ordered = ordered or is_list
        choices.extend(c for c in parsed if c not in choices)

    work = arb.work
    if work.gpu_hours is not None:
        reference = choices[0].name
        if work.reference is not None:
            ref = facts.canonical_gpu(work.reference)
            if ref is None:
                hint = facts.suggest_gpu(work.reference)
                raise _FieldError(("arbitrage", "work", "reference"),
                                  f"unknown GPU '{work.reference}'" + (f" (did you mean {hint}?)" if hint else ""))
            reference = ref
        work_record = Work(gpu_hours=work.gpu_hours, reference=reference)
    else:
        assert work.hours is not None
        first = choices[0]
        work_record = Work(gpu_hours=work.hours * first.count * model.num_nodes, reference=first.name)

    # Providers/regions: the arbitrage block wins; SkyPilot's cloud/infra/region narrow further.
    providers_allow = list(arb.providers.allow) if arb.providers.allow is not None else None
    regions_allow = list(arb.regions.allow) if arb.regions.allow is not None else None
    sky_cloud, sky_region = res.cloud, res.region
    if res.infra:
        parts = res.infra.split("/")
        sky_cloud = parts[0] or sky_cloud
        sky_region = parts[1] if len(parts) > 1 and parts[1] else sky_region
    if sky_cloud:
        cloud = sky_cloud.lower()
        if cloud not in provider_ids():
            raise _FieldError(("resources", "infra" if res.infra else "cloud"),
                              f"unknown cloud '{sky_cloud}'{_did_you_mean(cloud, provider_ids())}")
        if providers_allow is not None and not any(fnmatch.fnmatchcase(cloud, p) for p in providers_allow):
            raise _FieldError(("resources", "infra" if res.infra else "cloud"),
                              f"cloud '{cloud}' is not in arbitrage.providers.allow")
        providers_allow = [cloud]
    if sky_region:
        regions_allow = [sky_region]

    spot: SpotPolicy
    if arb.spot is not None:
        if res.use_spot is not None and (res.use_spot != (arb.spot != "never")) and arb.spot != "auto":
            raise _FieldError(("arbitrage", "spot"),
                              f"conflicts with resources.use_spot: {str(res.use_spot).lower()}")
        spot = arb.spot
    else:
        spot = "always" if res.use_spot else "never"

    data = None
    if arb.data is not None:
        d = arb.data
        provider = d.provider
        if provider is None and d.uri and "://" in d.uri:
            provider = provider_for_scheme(d.uri.split("://", 1)[0])
        if provider is None:
            raise _FieldError(("arbitrage", "data", "provider"), "required (could not infer it from the uri)")
        provider = provider.lower()
        if provider not in provider_ids():
            raise _FieldError(("arbitrage", "data", "provider"),
                              f"unknown provider '{provider}'{_did_you_mean(provider, provider_ids())}")
        if d.region is None and (d.size_gb > 0 or arb.outputs_gb > 0):
            raise _FieldError(("arbitrage", "data", "region"), "required when data or outputs are moved")
        data = DataLocation(provider=provider, region=d.region or "", size_gb=d.size_gb, uri=d.uri)

    try:
        min_vcpus = _min_number(res.cpus)
        min_ram = _min_number(res.memory)
    except ValueError:
        field_name = "cpus" if res.cpus is not None else "memory"
        raise _FieldError(("resources", field_name), "expected a number like 8 or '8+'") from None

    ckpt = arb.checkpoint
    return JobSpec(
        name=model.name,
        accelerators=tuple(choices),
        ordered=ordered,
        num_nodes=model.num_nodes,
        work=work_record,
        workload=arb.workload,
        spot=spot,
        checkpoint=Checkpoint(ckpt.uri, ckpt.interval_minutes, ckpt.write_minutes) if ckpt else None,
        interconnect=arb.interconnect,
        data=data,
        outputs_gb=arb.outputs_gb,
        deadline=arb.deadline,
        budget=Budget(arb.budget.max_total_usd, arb.budget.max_hourly_usd),
        providers_allow=tuple(providers_allow) if providers_allow is not None else None,
        providers_deny=tuple(arb.providers.deny),
        regions_allow=tuple(regions_allow) if regions_allow is not None else None,
        regions_deny=tuple(arb.regions.deny),
        min_gpu_memory_gb=arb.min_gpu_memory_gb,
        min_vcpus=min_vcpus,
        min_ram_gb=min_ram,
        tags={k: str(v) for k, v in arb.tags.items()},
        task={k: v for k, v in raw.items() if k != "arbitrage"},
        path=where,
    )


def read_jobspec(path: str, facts: Facts) -> JobSpec:
    """Read and validate a job file from disk; unreadable files raise SpecError naming the path."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, expected a job YAML file") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_jobspec_text(text, facts, where=path)


__all__ = [
    "JobSpecFile", "json_schema", "load_yaml", "parse_accelerators", "parse_deadline", "parse_jobspec_text",
    "read_jobspec",
]

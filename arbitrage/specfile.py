"""The job file: a SkyPilot task YAML plus an ``arbitrage:`` block, validated and turned into a JobSpec.

``parse_jobspec_text`` validates with pydantic and reports every problem as
``file:line: field: message``; the records it builds live in ``arbitrage.jobspec``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from arbitrage import safeyaml
from arbitrage.errors import SpecError
from arbitrage.facts import Facts
from arbitrage.geo import is_aws_az_name
from arbitrage.globs import glob_filter, glob_match
from arbitrage.jobspec import (
    AcceleratorChoice,
    Budget,
    Candidate,
    Checkpoint,
    DataLocation,
    Deadline,
    InterconnectNeed,
    JobSpec,
    ModelSpec,
    SpecOverrides,
    SpotPolicy,
    TokenWork,
    Work,
)
from arbitrage.params import MAX_GPUS_PER_NODE
from providers.registry import provider_for_scheme, provider_ids

# ---------------------------------------------------------------------------------------------
# Bounds (README "Limits"): a value outside them is a mistake, not a job. The YAML caps (size, nesting, aliases)
# are in arbitrage/safeyaml.py.
# ---------------------------------------------------------------------------------------------

MAX_NODES = 1024
# MAX_GPUS_PER_NODE (64) is arbitrage.params' (also `--count`'s bound).
# 100 M reference GPU-hours: above any published run (Llama 3.1's model card: 39.3 M H100 GPU-hours in total).
MAX_GPU_HOURS = 1e8
MAX_HOURS = 87_600.0  # ten years: work in wall hours, deadlines
MAX_DATA_GB = 1e8  # 100 PB
MAX_TOTAL_USD = 1e9
MAX_HOURLY_USD = 1e6
MAX_INTERVAL_MINUTES = 525_600.0  # a year between checkpoints
MAX_WRITE_MINUTES = 1440.0
MAX_CPUS = 100_000.0
MAX_MEMORY_GB = 1e6
MAX_GPU_MEMORY_GB = 10_000.0
MAX_TEXT = 4096  # characters in a name, tag or similar one-line value
# Work in tokens (arbitrage/units.py): Llama 3 was pre-trained on 15.6 T tokens (arXiv:2407.21783), far below 1e16.
MAX_TOKENS = 1e16
MAX_PARAMS_B = 100_000.0  # 100 T parameters
MAX_TASKS = 1e12


def _number(value: Any) -> Any:
    """Before pydantic's own checks: booleans are not numbers, and every number must be finite."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {_short(value)}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    return value


_Num = BeforeValidator(_number)


def _short(value: Any, limit: int = 60) -> str:
    """A value's repr cut to ``limit`` characters, for one-line messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cut(text: str, limit: int = 60) -> str:
    """Text cut to ``limit`` characters, for one-line messages."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


class ModelModel(_Strict):
    """The model token work runs: billions of parameters and the weight precision (arbitrage/units.py)."""

    params_b: Annotated[float, _Num] = Field(..., gt=0, le=MAX_PARAMS_B, description="Parameters in billions, e.g. 70.")
    precision: str = Field("bf16", min_length=1, max_length=32,
                           description="Weight precision: bf16 (or fp16), fp8, int4, fp4 (precisions.csv).")
    name: str | None = Field(None, max_length=MAX_TEXT, description="A label for the model, e.g. llama-3.1-70b.")


class WorkModel(_Strict):
    """Amount of work: reference GPU-hours on a named GPU, wall hours on the requested configuration, or tokens of a
    model (inference: generated tokens, an input/output split, or tasks x tokens per task; training: tokens)."""

    gpu_hours: Annotated[float | None, _Num] = Field(None, gt=0, le=MAX_GPU_HOURS,
                                                     description="GPU-hours of work on the reference GPU.")
    reference: str | None = Field(None, description="GPU the gpu_hours were measured on (default: first choice).")
    hours: Annotated[float | None, _Num] = Field(None, gt=0, le=MAX_HOURS,
                                                 description="Wall hours on the first accelerator choice x num_nodes.")
    tokens: Annotated[float | None, _Num] = Field(
        None, gt=0, le=MAX_TOKENS, description="Inference: generated (output) tokens; training: training tokens.")
    input_tokens: Annotated[float | None, _Num] = Field(None, ge=0, le=MAX_TOKENS,
                                                        description="Inference: prompt tokens (with output_tokens).")
    output_tokens: Annotated[float | None, _Num] = Field(None, gt=0, le=MAX_TOKENS,
                                                         description="Inference: generated tokens (with input_tokens).")
    tasks: Annotated[float | None, _Num] = Field(None, gt=0, le=MAX_TASKS,
                                                 description="Inference: number of tasks (with tokens_per_task).")
    tokens_per_task: Annotated[float | None, _Num] = Field(None, gt=0, le=MAX_TOKENS,
                                                           description="Inference: generated tokens per task.")
    model: ModelModel | None = Field(None, description="The model of token work: {params_b: 70, precision: fp8}.")

    @model_validator(mode="after")
    def _one_of(self) -> WorkModel:
        split = self.input_tokens is not None or self.output_tokens is not None
        per_task = self.tasks is not None or self.tokens_per_task is not None
        forms = [self.gpu_hours is not None, self.hours is not None, self.tokens is not None, split, per_task]
        if sum(forms) != 1:
            raise ValueError("give exactly one of gpu_hours or hours, or work in tokens: tokens, input_tokens + "
                             "output_tokens, or tasks + tokens_per_task (with model)")
        if self.reference is not None and self.gpu_hours is None:
            raise ValueError("reference goes with gpu_hours only")
        if split and (self.input_tokens is None or self.output_tokens is None):
            raise ValueError("give both input_tokens and output_tokens")
        if per_task and (self.tasks is None or self.tokens_per_task is None):
            raise ValueError("give both tasks and tokens_per_task")
        in_tokens = self.tokens is not None or split or per_task
        if in_tokens and self.model is None:
            raise ValueError("work in tokens needs model, e.g. model: {params_b: 70, precision: fp8}")
        if not in_tokens and self.model is not None:
            raise ValueError("model goes with tokens, input_tokens/output_tokens or tasks, not gpu_hours or hours")
        return self


class CheckpointModel(_Strict):
    """Checkpoint location and cadence."""

    uri: str = Field(..., min_length=1, max_length=MAX_TEXT)
    interval_minutes: Annotated[float, _Num] = Field(..., gt=0, le=MAX_INTERVAL_MINUTES)
    write_minutes: Annotated[float | None, _Num] = Field(None, ge=0, le=MAX_WRITE_MINUTES,
                                                         description="Minutes to write one checkpoint.")


class DataModel(_Strict):
    """Input data set: where it lives and how big it is."""

    uri: str | None = None
    provider: str | None = Field(None, description="Cloud holding the data; inferred from s3://, gs://, az://.")
    region: str | None = None
    size_gb: Annotated[float, _Num] = Field(0, ge=0, le=MAX_DATA_GB)


class BudgetModel(_Strict):
    """Spend caps in USD."""

    max_total_usd: Annotated[float | None, _Num] = Field(None, gt=0, le=MAX_TOTAL_USD)
    max_hourly_usd: Annotated[float | None, _Num] = Field(None, gt=0, le=MAX_HOURLY_USD)


class AllowDenyModel(_Strict):
    """Glob allow/deny lists."""

    allow: list[str] | None = None
    deny: list[str] = Field(default_factory=list)


class GeoModel(_Strict):
    """Data residency: where offers may (allow) and may not (deny) be. Tokens are ISO 3166-1 alpha-2 country codes
    (DE, US; UK for GB), continent names (europe, north-america) or groups (EU, EEA)."""

    allow: list[str] | None = Field(None, description="Only offers in a place one of these tokens names.")
    deny: list[str] = Field(default_factory=list, description="No offer in a place one of these tokens names.")

    @field_validator("allow", "deny")
    @classmethod
    def _tokens(cls, value: list[str] | None) -> list[str] | None:
        from arbitrage.geo import CONTINENTS, GROUPS, is_geo_token

        for token in value or []:
            if not is_geo_token(token):
                raise ValueError(f"unknown place '{token}': use an ISO country code (DE, US), a continent "
                                 f"({', '.join(CONTINENTS)}) or a group ({', '.join(GROUPS)})")
        return value


class ArbitrageModel(_Strict):
    """The gpuarb block: work, spot policy, data, deadline, budget and placement rules."""

    work: WorkModel | None = Field(None, description="The work; without it the plan ranks by cluster $/h for one "
                                   "hour, as SkyPilot does, and says that no duration is known.")
    workload: Literal["training", "inference"] = "training"
    spot: SpotPolicy | None = None
    checkpoint: CheckpointModel | None = None
    interconnect: InterconnectNeed = "any"
    data: DataModel | None = None
    outputs_gb: Annotated[float, _Num] = Field(0, ge=0, le=MAX_DATA_GB)
    deadline: Annotated[Any, WithJsonSchema(_DEADLINE_SCHEMA)] = None
    # P(finish by the deadline) a placement needs to count as meeting it (default: assumptions.toml, 0.95).
    deadline_confidence: Annotated[float | None, _Num] = Field(None, gt=0, lt=1)
    budget: BudgetModel = Field(default_factory=BudgetModel)
    providers: AllowDenyModel = Field(default_factory=AllowDenyModel)
    regions: AllowDenyModel = Field(default_factory=AllowDenyModel)
    geo: GeoModel = Field(default_factory=GeoModel)
    min_gpu_memory_gb: Annotated[float | None, _Num] = Field(None, gt=0, le=MAX_GPU_MEMORY_GB)
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
            if not glob_filter(known, pattern):
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

    @field_validator("cpus", "memory", mode="before")
    @classmethod
    def _not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected a number like 8 or '8+', got {str(value).lower()}")
        return value

    @field_validator("ordered", "any_of")
    @classmethod
    def _candidates(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value is not None and not value:
            raise ValueError("empty list: give at least one candidate with its accelerators")
        return value


class JobSpecFile(BaseModel):
    """A gpuarb job file: a SkyPilot task YAML plus the `arbitrage:` block."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="gpuarb job spec")

    name: str | None = Field(None, min_length=1, max_length=MAX_TEXT, description="Default: the file's name.")
    resources: ResourcesModel = Field(default_factory=ResourcesModel)
    num_nodes: int = Field(1, ge=1, le=MAX_NODES, strict=True)
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
    arbitrage: ArbitrageModel = Field(default_factory=ArbitrageModel)  # type: ignore[arg-type]


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
        match = _DURATION.match(value) if len(value) <= 64 else None
        if match and any(match.groups()):
            days, hours, minutes = (float(g) if g else 0.0 for g in match.groups())
            total = days * 24 + hours + minutes / 60
            if total <= 0:
                raise ValueError(f"deadline must be in the future, got {_short(value)}")
            if not total <= MAX_HOURS:
                raise ValueError(f"deadline {_short(value)} is more than {MAX_HOURS:,.0f} hours (10 years) away")
            return Deadline(hours=total)
        try:
            stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"cannot read {_short(value)}: use a duration like '48h' or an ISO-8601 timestamp "
                             "(a real date)") from None
    else:
        raise ValueError(f"cannot read {_short(value)}: use a duration like '48h' or an ISO-8601 timestamp")
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


def parse_accelerator_choices(value: Any, facts: Facts) -> tuple[tuple[AcceleratorChoice, ...], bool, list[str]]:
    """Like parse_accelerators, but a GPU gpuarb has no facts for, in a mapping or list that names others too, is
    left out and returned by name (SkyPilot would try it; gpuarb cannot price it) instead of failing the file."""
    if value is None:
        raise ValueError("required: gpuarb plans GPU tasks, e.g. 'H100:8' or {H100: 8, A100-80GB: 8} (or give "
                         "--gpus H100:8)")
    if (isinstance(value, dict) and len(value) > 1) or (isinstance(value, list) and len(value) > 1):
        items = list(value.items()) if isinstance(value, dict) else [(v, None) for v in value]
        kept: list[AcceleratorChoice] = []
        unknown: list[str] = []
        for key, count in items:
            name = str(key).partition(":")[0].strip()
            if facts.canonical_gpu(name) is None:
                hint = facts.suggest_gpu(name)
                unknown.append(_cut(str(key)) + (f" (not {hint})" if hint else ""))
                continue
            choice = _one_accelerator(str(key), count, facts)
            if choice not in kept:
                kept.append(choice)
        if not kept:
            raise ValueError(f"no GPU gpuarb knows among {', '.join(unknown)}")
        return tuple(kept), isinstance(value, list), unknown
    choices, ordered = parse_accelerators(value, facts)
    return choices, ordered, []


def _one_accelerator(text: str, count: Any, facts: Facts) -> AcceleratorChoice:
    name, _, suffix = text.partition(":")
    if suffix and count is not None:
        raise ValueError(f"'{_cut(text)}': give the count once, either in the key or as the value")
    raw_count: Any = suffix or (1 if count is None else count)
    if isinstance(raw_count, bool):
        raise ValueError(f"'{_cut(text)}': count {str(raw_count).lower()} is not a number")
    try:
        number = float(raw_count)
    except (TypeError, ValueError):
        raise ValueError(f"'{_cut(text)}': count {_short(raw_count)} is not a number") from None
    if not math.isfinite(number) or number < 1 or number != int(number):
        raise ValueError(f"'{_cut(text)}': count must be a whole number from 1 to "
                         f"{MAX_GPUS_PER_NODE} (fractional GPUs are not supported)")
    if number > MAX_GPUS_PER_NODE:
        raise ValueError(f"'{_cut(text)}': {number:g} GPUs per node is more than {MAX_GPUS_PER_NODE}")
    canonical = facts.canonical_gpu(name)
    if canonical is None:
        hint = facts.suggest_gpu(name)
        raise ValueError(f"unknown GPU '{_cut(name.strip())}'" + (f" (did you mean {hint}?)" if hint else ""))
    return AcceleratorChoice(canonical, int(number))


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    import difflib  # only on the error path

    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _min_number(value: str | int | float | None, maximum: float) -> float | None:
    """SkyPilot '8+' / '8' / 8 minimums (cpus, memory) -> 8.0; ValueError unless finite, > 0 and <= maximum."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(str(value))
    text = str(value).strip()
    text = text[:-1] if text.endswith("+") else text
    number = float(text) if len(text) <= 64 else math.inf
    if not (math.isfinite(number) and 0 < number <= maximum):
        raise ValueError(text)
    return number


# ---------------------------------------------------------------------------------------------
# YAML with line numbers.
# ---------------------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def _index_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int], where: str) -> None:
    """Record the 1-based line of every mapping key / list item; reject duplicate keys.

    The tree is bounded (depth and expanded size) by safeyaml before this walks it.
    """
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                dotted = _one_line(".".join(str(p) for p in (*path, key)))
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


def _one_line(text: str) -> str:
    """Control characters shown escaped, so one problem is one line."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _path_at(line: int, lines: dict[Path_, int]) -> str:
    """The dotted path of the deepest value that starts on ``line`` ('(top level)' when none does)."""
    found = [p for p, n in lines.items() if n == line]
    return ".".join(map(str, max(found, key=len))) if found else "(top level)"


def load_yaml(text: str, where: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML once into Python data plus a path -> line index; errors name the line (and field when known).

    The caps of arbitrage.safeyaml (size, nesting, alias expansion, plain tags) are checked before any object is
    built.
    """
    try:
        loader, node = safeyaml.compose(text)
    except safeyaml.LimitError as exc:
        raise SpecError(_one_line(f"{where}:{exc.line}: {exc.path}: {exc.message}")) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise SpecError(_one_line(f"{where}:{line}: YAML syntax error: {exc.problem or exc}")) from None
    except yaml.YAMLError as exc:
        raise SpecError(_one_line(f"{where}: YAML error: {exc}")) from None
    try:
        if node is None:
            raise SpecError(f"{where}:1: the file is empty")
        lines: dict[Path_, int] = {}
        _index_lines(node, (), lines, where)
        try:
            data = loader.construct_document(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            raise SpecError(_one_line(f"{where}:{line}: {_path_at(line, lines)}: {exc.problem or exc}")) from None
        except yaml.YAMLError as exc:
            raise SpecError(_one_line(f"{where}: YAML error: {exc}")) from None
    finally:
        loader.dispose()
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
        msg = f"{msg}, got {_short(err.get('input'))}"
    return _one_line(f"{where}:{line}: {dotted}: {msg}")


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

def parse_jobspec_text(text: str, facts: Facts, where: str = "<spec>", now: datetime | None = None,
                       overrides: SpecOverrides | None = None) -> JobSpec:
    """Validate a job file's text and build the JobSpec; raises SpecError with file:line: field: msg.

    With ``now`` (plan time), an absolute deadline must lie after it and within MAX_HOURS of it; without (a run
    re-read from the ledger), it is not compared with the clock. ``overrides`` (`sky launch`-style options) are
    applied to the file's fields before validation.
    """
    data, lines = load_yaml(text, where)
    if not isinstance(data, dict):
        raise SpecError(f"{where}:1: expected a mapping of SkyPilot task fields, got {type(data).__name__}")
    if overrides:
        data = apply_overrides(data, overrides)
    try:
        model = JobSpecFile.model_validate(data, context={"facts": facts})
    except ValidationError as exc:
        found = [(_line_for(tuple(p for p in e["loc"] if isinstance(p, int | str)), lines),
                  _format_error(e, where, lines)) for e in exc.errors()]
        resources = data.get("resources")
        resource_errors = any(e["loc"][:1] == ("resources",) for e in exc.errors())
        if isinstance(resources, dict) and not resource_errors:  # the GPU and cloud problems too, in the same pass
            try:
                _candidates(resources, facts)
            except _FieldError as err:
                line = _line_for(err.loc, lines)
                found.append((line, _one_line(f"{where}:{line}: {'.'.join(map(str, err.loc))}: {err.msg}")))
            except (TypeError, AttributeError):
                pass  # a malformed resources block: pydantic's message above says what is wrong
        found.sort(key=lambda item: item[0])
        raise SpecError("\n".join(dict.fromkeys(text for _, text in found))) from None
    try:
        spec = _to_jobspec(model, data, facts, where)
        if now is not None and spec.deadline is not None and spec.deadline.at is not None:
            _check_deadline_time(spec.deadline, now)
        return spec
    except _FieldError as exc:
        line = _line_for(exc.loc, lines)
        raise SpecError(_one_line(f"{where}:{line}: {'.'.join(map(str, exc.loc))}: {exc.msg}")) from None


def _check_deadline_time(deadline: Deadline, now: datetime) -> None:
    """An absolute deadline must be after plan time, and no more than MAX_HOURS after it."""
    left = deadline.hours_left(now)
    if left <= 0:
        raise _FieldError(("arbitrage", "deadline"), f"{deadline} is in the past (plan time "
                                                     f"{now.isoformat(timespec='seconds')})")
    if left > MAX_HOURS:
        raise _FieldError(("arbitrage", "deadline"), f"{deadline} is more than {MAX_HOURS:,.0f} hours (10 years) "
                                                     "after plan time")


class _FieldError(Exception):
    def __init__(self, loc: Path_, msg: str) -> None:
        super().__init__(msg)
        self.loc, self.msg = loc, msg


_INFRA_OWNED = {"k8s": "Kubernetes", "kubernetes": "Kubernetes", "ssh": "SSH node pool"}
_RESOURCE_ALIASES = {"gpus": "accelerators"}  # SkyPilot's RESOURCE_CONFIG_ALIASES


def _resource_entries(resources: dict[str, Any]) -> list[tuple[Path_, dict[str, Any]]]:
    """SkyPilot's resource candidates: each any_of/ordered entry merged over the shared fields (the entry's own
    fields win, as sky.Resources.from_yaml_config merges them), or the shared fields alone; with the path of each."""
    shared = {_RESOURCE_ALIASES.get(k, k): v for k, v in resources.items() if k not in ("any_of", "ordered")}
    key = "ordered" if resources.get("ordered") is not None else "any_of"
    entries = resources.get(key)
    if not isinstance(entries, list) or not entries:
        return [(("resources",), shared)]
    merged = []
    for i, entry in enumerate(entries):
        own = {_RESOURCE_ALIASES.get(k, k): v for k, v in entry.items()} if isinstance(entry, dict) else {}
        merged.append((("resources", key, i), {**shared, **own}))
    return merged


def parse_infra(value: str) -> tuple[str, str | None, str | None]:
    """A SkyPilot infra string -> (cloud, region, zone), as sky.utils.infra_utils.InfraInfo.from_str reads it:
    'aws', 'aws/us-east-1', 'aws/us-east-1/us-east-1a', '*' for any part; 'k8s'/'kubernetes[/context]' (the
    context may hold slashes) and 'ssh[/pool]' name owned capacity. ValueError when malformed."""
    text = value.strip().strip("/")
    parts = [p.strip() for p in text.split("/")]
    if not text or "" in parts:
        raise ValueError(f"infra '{_cut(value)}': expected 'cloud', 'cloud/region' or 'cloud/region/zone'")
    cloud = parts[0].lower()
    if cloud in ("k8s", "kubernetes"):
        return "kubernetes", "/".join(parts[1:]) or None, None
    if cloud == "ssh":
        return "ssh", "/".join(parts[1:]) or None, None
    if len(parts) > 3:
        raise ValueError(f"infra '{_cut(value)}': expected 'cloud', 'cloud/region' or 'cloud/region/zone'")
    region = parts[1] if len(parts) > 1 else None
    zone = parts[2] if len(parts) > 2 else None
    return cloud, (None if region == "*" else region), (None if zone == "*" else zone)


def _pins(loc: Path_, entry: dict[str, Any]) -> tuple[str | None, str | None, str | None, list[str]]:
    """(provider, region, zone, notes) of one merged resource entry: infra wins over cloud/region/zone."""
    cloud, region, zone = entry.get("cloud"), entry.get("region"), entry.get("zone")
    where = (*loc, "cloud")
    if entry.get("infra") is not None:
        where = (*loc, "infra")
        if not isinstance(entry["infra"], str):
            raise _FieldError(where, f"expected a string like 'aws/us-east-1', got {_short(entry['infra'])}")
        try:
            cloud, region, zone = parse_infra(entry["infra"])
        except ValueError as exc:
            raise _FieldError(where, str(exc)) from None
    notes: list[str] = []
    if zone is not None and is_aws_az_name(str(zone)) and str(cloud or "aws").lower() in ("aws", "*"):
        zone_at = where if entry.get("infra") is not None else (*loc, "zone")
        notes.append(f"{'.'.join(map(str, zone_at))}: AWS maps zone names such as {zone} to zone IDs per account, and "
                     f"the catalogs list IDs: every zone of {str(zone)[:-1]} is priced, the launch pins {zone}, and "
                     "its spot price is an estimate")
    if cloud is None or str(cloud) == "*":
        return None, region, zone, notes
    name = str(cloud).lower()
    if name in _INFRA_OWNED or name == "kubernetes":
        kind = _INFRA_OWNED.get(name, "Kubernetes")
        notes.append(f"{'.'.join(map(str, where))}: {kind} infra is capacity you own: gpuarb prices it only as owned "
                     "capacity (onprem.yaml, provider onprem); without that file nothing is feasible")
        return "onprem", None, None, notes
    if name not in provider_ids():
        raise _FieldError(where, f"unknown cloud '{cloud}'{_did_you_mean(name, provider_ids())}")
    return name, (str(region) if region is not None else None), (str(zone) if zone is not None else None), notes


def _candidates(raw_resources: dict[str, Any], facts: Facts) -> tuple[list[Candidate], bool, list[str]]:
    """Every SkyPilot resource candidate (accelerator x entry) with its pins, whether the order is a preference
    (ordered, or an accelerator list), and notes (accelerators gpuarb has no facts for, owned infra)."""
    out: list[Candidate] = []
    notes: list[str] = []
    ordered = raw_resources.get("ordered") is not None
    for loc, entry in _resource_entries(raw_resources):
        provider, region, zone, pin_notes = _pins(loc, entry)
        notes += [n for n in pin_notes if n not in notes]
        value = entry.get("accelerators")
        if isinstance(value, set | frozenset | tuple):
            value = sorted(map(str, value))
        try:
            parsed, is_list, unknown = parse_accelerator_choices(value, facts)
        except ValueError as exc:
            raise _FieldError((*loc, "accelerators"), str(exc)) from None
        if unknown:
            notes.append(f"{'.'.join(map(str, (*loc, 'accelerators')))}: left out {', '.join(unknown)}: gpuarb has no "
                         "facts or prices for it")
        ordered = ordered or is_list
        spot = entry.get("use_spot")
        for choice in parsed:
            candidate = Candidate(choice, provider, region, zone, bool(spot) if spot is not None else None)
            if candidate not in out:
                out.append(candidate)
    return out, ordered, notes


def _to_jobspec(model: JobSpecFile, raw: dict[str, Any], facts: Facts, where: str) -> JobSpec:
    res, arb = model.resources, model.arbitrage
    raw_resources = raw.get("resources") if isinstance(raw.get("resources"), dict) else {}
    if raw_resources.get("any_of") is not None and raw_resources.get("ordered") is not None:
        raise _FieldError(("resources", "ordered"), "give any_of or ordered, not both (SkyPilot refuses both)")
    found, ordered, notes = _candidates(raw_resources, facts)
    choices: list[AcceleratorChoice] = []
    for c in found:
        if c.accelerator not in choices:
            choices.append(c.accelerator)
    pinned = {(c.provider, c.region, c.zone, c.spot) for c in found}

    work = arb.work
    if work is None:
        work_record = Work(gpu_hours=0.0, reference=choices[0].name, wall_hours=1.0)
        notes.insert(0, "no duration known (no arbitrage.work): placements are ranked by cluster $/h for one hour, "
                        "as SkyPilot does; give --hours N or --gpu-hours N for a total")
    elif work.gpu_hours is not None:
        reference = choices[0].name
        if work.reference is not None:
            ref = facts.canonical_gpu(work.reference)
            if ref is None:
                hint = facts.suggest_gpu(work.reference)
                raise _FieldError(("arbitrage", "work", "reference"),
                                  f"unknown GPU '{work.reference}'" + (f" (did you mean {hint}?)" if hint else ""))
            reference = ref
        work_record = Work(gpu_hours=work.gpu_hours, reference=reference)
    elif work.hours is not None:
        first = choices[0]
        work_record = Work(gpu_hours=work.hours * first.count * model.num_nodes, reference=first.name)
    else:
        work_record = Work(gpu_hours=0.0, reference=choices[0].name, tokens=_token_work(work, arb.workload, facts))

    # Providers/regions: the arbitrage block wins; SkyPilot's cloud/infra/region narrow further.
    providers_allow = list(arb.providers.allow) if arb.providers.allow is not None else None
    regions_allow = list(arb.regions.allow) if arb.regions.allow is not None else None
    candidates: tuple[Candidate, ...] = ()
    pin_loc: Path_ = ("resources", "infra" if res.infra else "cloud")
    if len(pinned) == 1:  # one set of pins for every candidate: spec-wide rules, as before
        cloud, sky_region, sky_zone, _ = next(iter(pinned))
        if cloud:
            if providers_allow is not None and not any(glob_match(cloud, p) for p in providers_allow):
                raise _FieldError(pin_loc, f"cloud '{cloud}' is not in arbitrage.providers.allow")
            providers_allow = [cloud]
        if sky_region:
            regions_allow = [sky_region]
        if sky_zone:
            candidates = tuple(found)
    else:
        candidates = tuple(found)
        clouds = {c.provider for c in found}
        if None not in clouds:
            allowed = sorted(c for c in clouds if c is not None)
            if providers_allow is not None:
                allowed = [c for c in allowed if any(glob_match(c, p) for p in providers_allow)]
                if not allowed:
                    raise _FieldError(("resources",), "no candidate's cloud is in arbitrage.providers.allow")
            providers_allow = allowed

    spot: SpotPolicy
    spots = {c.spot for c in found}
    if arb.spot is not None:
        if res.use_spot is not None and (res.use_spot != (arb.spot != "never")) and arb.spot != "auto":
            raise _FieldError(("arbitrage", "spot"),
                              f"conflicts with resources.use_spot: {str(res.use_spot).lower()}")
        spot = arb.spot
        if candidates and arb.spot != "auto":  # the block's policy wins over the entries' use_spot
            candidates = tuple(Candidate(c.accelerator, c.provider, c.region, c.zone, None) for c in candidates)
    elif len(spots) > 1:
        spot = "auto"  # entries differ (any_of: [{use_spot: true}, {use_spot: false}]): each keeps its own
    else:
        spot = "always" if spots == {True} else "never"

    minimums: dict[str, float | None] = {}
    for field_name, value, maximum in (("cpus", res.cpus, MAX_CPUS), ("memory", res.memory, MAX_MEMORY_GB)):
        try:
            minimums[field_name] = _min_number(value, maximum)
        except ValueError:
            raise _FieldError(("resources", field_name), f"expected a number like 8 or '8+' (finite, > 0, at "
                                                         f"most {maximum:,.0f}), got {_short(value)}") from None
    min_vcpus, min_ram = minimums["cpus"], minimums["memory"]

    ckpt = arb.checkpoint
    data, data_notes = _data_home(arb, raw, where)
    notes += data_notes
    return JobSpec(
        name=model.name or _stem(where),
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
        deadline_confidence=arb.deadline_confidence,
        budget=Budget(arb.budget.max_total_usd, arb.budget.max_hourly_usd),
        providers_allow=tuple(providers_allow) if providers_allow is not None else None,
        providers_deny=tuple(arb.providers.deny),
        regions_allow=tuple(regions_allow) if regions_allow is not None else None,
        regions_deny=tuple(arb.regions.deny),
        geo_allow=tuple(arb.geo.allow) if arb.geo.allow is not None else None,
        geo_deny=tuple(arb.geo.deny),
        min_gpu_memory_gb=arb.min_gpu_memory_gb,
        min_vcpus=min_vcpus,
        min_ram_gb=min_ram,
        tags={k: str(v) for k, v in arb.tags.items()},
        task={k: v for k, v in raw.items() if k != "arbitrage"},
        path=where,
        candidates=candidates,
        notes=tuple(notes),
    )


# SkyPilot storage `store:` names -> the URI scheme of that object store (sky/data/storage.py StoreType).
_STORE_SCHEMES = {"s3": "s3", "gcs": "gs", "azure": "az", "r2": "r2", "nebius": "nebius", "oci": "oci", "ibm": "cos"}
_AZURE_BLOB_URL = re.compile(r"^https://([a-z0-9]{3,24})\.blob\.core\.windows\.net/", re.I)
_ENV_REF = re.compile(r"\$\{(\w+)\}|\$(\w+)")
# Cloudflare R2 bills no egress (developers.cloudflare.com/r2/pricing/, "Egress (data transfer to Internet): Free",
# read 2026-05): data there costs nothing to move out.
_FREE_EGRESS = {"r2": "Cloudflare R2 bills no egress"}


def _bucket_uris(raw: dict[str, Any]) -> list[str]:
    """Object-store URIs the task mounts or copies (file_mounts strings, storage `source`s, then `store` + `name`
    buckets), with $VAR / ${VAR} filled in from envs as SkyPilot fills them; local paths are not buckets."""
    envs = {str(k): "" if v is None else str(v) for k, v in (raw.get("envs") or {}).items()} \
        if isinstance(raw.get("envs"), dict) else {}

    def fill(text: Any) -> str | None:
        if not isinstance(text, str):
            return None
        filled = _ENV_REF.sub(lambda m: envs.get(m.group(1) or m.group(2), m.group(0)), text.strip())
        return None if "$" in filled or not filled else filled

    def is_bucket(uri: str) -> bool:
        return bool(_AZURE_BLOB_URL.match(uri)) or ("://" in uri and not uri.startswith(("http://", "https://",
                                                                                         "file://")))

    sources: list[str] = []
    named: list[str] = []
    mounts = raw.get("file_mounts")
    for value in (mounts.values() if isinstance(mounts, dict) else ()):
        if isinstance(value, str):
            uri = fill(value)
            if uri and is_bucket(uri):
                sources.append(uri)
        elif isinstance(value, dict):
            given = value.get("source")
            found = [u for u in map(fill, given if isinstance(given, list) else [given]) if u and is_bucket(u)]
            sources += found
            store, name = fill(value.get("store")), fill(value.get("name"))
            if not found and store and name and store.lower() in _STORE_SCHEMES:
                named.append(f"{_STORE_SCHEMES[store.lower()]}://{name}")
    return sources + named


def _uri_provider(uri: str) -> tuple[str | None, str]:
    """(provider id or None, scheme) of an object-store URI; Azure blob URLs are Azure's."""
    if _AZURE_BLOB_URL.match(uri):
        return "azure", "https"
    scheme = uri.split("://", 1)[0].lower()
    return provider_for_scheme(scheme), scheme


def _data_home(arb: ArbitrageModel, raw: dict[str, Any], where: str) -> tuple[DataLocation | None, list[str]]:
    """The data's home: arbitrage.data when it names the provider (or a uri that does), else the first bucket the
    task mounts (file_mounts / storage), with arbitrage.data's size and region when given; and notes."""
    d = arb.data
    provider = d.provider if d is not None else None
    if d is not None and provider is None and d.uri and "://" in d.uri:
        provider = _uri_provider(d.uri)[0]
    notes: list[str] = []
    uri = d.uri if d is not None else None
    from_bucket = False
    if provider is None:
        buckets = _bucket_uris(raw)
        for bucket in buckets:
            found, scheme = _uri_provider(bucket)
            if found is not None:
                provider, uri, from_bucket = found, bucket, True
                break
            if scheme in _FREE_EGRESS:
                notes.append(f"data in {_cut(bucket)}: {_FREE_EGRESS[scheme]}, so moving it costs nothing")
                return None, notes
        if provider is None:
            if d is not None and (d.size_gb > 0 or d.region or d.uri):
                raise _FieldError(("arbitrage", "data", "provider"), "required (could not infer it from the uri "
                                                                     "or a bucket in file_mounts)")
            return None, notes
    provider = provider.lower()
    if provider not in provider_ids():
        raise _FieldError(("arbitrage", "data", "provider"),
                          f"unknown provider '{provider}'{_did_you_mean(provider, provider_ids())}")
    size = d.size_gb if d is not None else 0.0
    region = d.region if d is not None else None
    if region is None and (size > 0 or arb.outputs_gb > 0):
        if not from_bucket:
            raise _FieldError(("arbitrage", "data", "region"), "required when data or outputs are moved")
        notes.append(f"data in {_cut(uri or provider)} ({provider}): region unknown (set arbitrage.data.region); "
                     f"every {provider} placement is charged as another region's")
    if from_bucket and size <= 0:
        notes.append(f"data in {_cut(uri or provider)} ({provider}): egress is not counted without "
                     "arbitrage.data.size_gb")
    return DataLocation(provider=provider, region=region or "", size_gb=size, uri=uri), notes


def _stem(where: str) -> str:
    """A task's name when it gives none: its file name without the extension (SkyPilot leaves it unnamed)."""
    name = where.replace("\\", "/").rsplit("/", 1)[-1]
    for ext in (".sky.yaml", ".yaml", ".yml"):
        name = name.removesuffix(ext)
    return name or "task"


def _token_work(work: WorkModel, workload: str, facts: Facts) -> TokenWork:
    """The TokenWork record of a work block stated in tokens or tasks (validated: one form, with a model)."""
    assert work.model is not None
    precision = facts.units.canonical_precision(work.model.precision)
    if precision is None:
        known = ", ".join(facts.units.precisions) or "bf16"
        raise _FieldError(("arbitrage", "work", "model", "precision"),
                          f"unknown precision '{_cut(work.model.precision)}' (one of {known})")
    spec = ModelSpec(params_b=work.model.params_b, precision=precision, name=work.model.name)
    if workload == "training" and work.tokens is None:
        raise _FieldError(("arbitrage", "work"), "training work is tokens: training tokens; input_tokens/"
                                                 "output_tokens and tasks are for arbitrage.workload: inference")
    if work.tokens is not None:
        return TokenWork(spec, work.tokens)
    if work.output_tokens is not None:
        return TokenWork(spec, work.output_tokens, input_tokens=work.input_tokens)
    assert work.tasks is not None and work.tokens_per_task is not None
    return TokenWork(spec, work.tasks * work.tokens_per_task, tasks=work.tasks, tokens_per_task=work.tokens_per_task)


def read_spec_text(path: str) -> str:
    """A job file's text, read with the size cap; unreadable files raise SpecError naming the path."""
    try:
        return safeyaml.read_capped(path)
    except safeyaml.LimitError as exc:
        raise SpecError(f"{path}:1: (top level): {exc.message}") from None
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, expected a job YAML file") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_jobspec(path: str, facts: Facts, now: datetime | None = None,
                 overrides: SpecOverrides | None = None) -> JobSpec:
    """Read (size-capped) and validate a job file from disk; ``now`` and ``overrides`` as in parse_jobspec_text."""
    return parse_jobspec_text(read_spec_text(path), facts, where=path, now=now, overrides=overrides)


_PIN_FIELDS = ("infra", "cloud", "region", "zone")


def apply_overrides(data: dict[str, Any], ov: SpecOverrides) -> dict[str, Any]:
    """The task's fields with `sky launch`-style overrides applied as SkyPilot applies them: each one replaces the
    field in the shared resources and in every any_of/ordered entry (entries left identical are merged); --infra
    replaces cloud/region/zone; --hours / --gpu-hours set arbitrage.work."""
    import copy

    out = copy.deepcopy(data)
    res = out.get("resources")
    res = dict(res) if isinstance(res, dict) else {}
    entry_key = "ordered" if res.get("ordered") is not None else "any_of"
    entries = [dict(e) if isinstance(e, dict) else e for e in (res.get(entry_key) or [])] \
        if isinstance(res.get(entry_key), list) else None

    def put(field_name: str, value: Any, clears: tuple[str, ...] = ()) -> None:
        for target in [res, *(e for e in entries or [] if isinstance(e, dict))]:
            for name in (field_name, *clears):
                target.pop(name, None)
        res[field_name] = value

    if ov.gpus is not None:
        put("accelerators", ov.gpus, ("gpus",))
    if ov.infra is not None:
        put("infra", ov.infra, _PIN_FIELDS)
    if ov.region is not None or ov.zone is not None:
        cloud, region, zone = None, None, None
        infra = res.pop("infra", None)
        if isinstance(infra, str):
            try:
                cloud, region, zone = parse_infra(infra)
            except ValueError:
                cloud = None
        region = ov.region if ov.region is not None else region
        zone = ov.zone if ov.zone is not None else zone
        if cloud is not None:
            res["cloud"] = cloud
        if region is not None:
            put("region", region)
        if zone is not None:
            put("zone", zone)
    if ov.use_spot is not None:
        put("use_spot", ov.use_spot)
        arb = out.get("arbitrage")
        if isinstance(arb, dict) and arb.get("spot") is not None:
            out["arbitrage"] = {**arb, "spot": "always" if ov.use_spot else "never"}
    if entries is not None:
        unique: list[Any] = []
        for e in entries:
            if e not in unique:
                unique.append(e)
        if unique == [{}] or not unique:
            res.pop(entry_key, None)
        else:
            res[entry_key] = unique
    out["resources"] = res
    if ov.num_nodes is not None:
        out["num_nodes"] = ov.num_nodes
    if ov.hours is not None or ov.gpu_hours is not None:
        arb = dict(out.get("arbitrage") or {}) if isinstance(out.get("arbitrage") or {}, dict) else {}
        if ov.gpu_hours is not None:
            arb["work"] = {"gpu_hours": ov.gpu_hours, **({"reference": ov.reference} if ov.reference else {})}
        else:
            arb["work"] = {"hours": ov.hours}
        out["arbitrage"] = arb
    return out


def overridden_text(text: str, ov: SpecOverrides, where: str = "<spec>") -> str:
    """The job file with ``ov`` applied, as YAML (what a run records and re-reads); ``text`` itself when there are
    no overrides. Comments are not kept; the first line says which overrides made it."""
    if not ov:
        return text
    data, _ = load_yaml(text, where)
    if not isinstance(data, dict):
        raise SpecError(f"{where}:1: expected a mapping of SkyPilot task fields, got {type(data).__name__}")
    body = yaml.safe_dump(apply_overrides(data, ov), sort_keys=False, allow_unicode=True)
    return f"# {where} with {_one_line(ov.describe())}\n{body}"


__all__ = [
    "JobSpecFile",
    "apply_overrides",
    "json_schema",
    "load_yaml",
    "overridden_text",
    "parse_accelerator_choices",
    "parse_accelerators",
    "parse_deadline",
    "parse_infra",
    "parse_jobspec_text",
    "read_jobspec",
    "read_spec_text",
]


# ---------------------------------------------------------------------------------------------
# Secrets: what the ledger may keep of a job file.
# ---------------------------------------------------------------------------------------------

REDACTED = "<redacted>"
_KEY_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|PRIVATE|SESSION|COOKIE|SIGNATURE|PAT\b", re.I)
_KEY_VALUE = re.compile(
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bsk-[A-Za-z0-9_-]{16,}|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_\w{20,}"
    r"|\bxox[abposr]-[\w-]{10,}|\bhf_[A-Za-z0-9]{20,}|\bglpat-[\w-]{20,}|\bAIza[\w-]{30,}"
    r"|\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}|-----BEGIN [A-Z ]*PRIVATE KEY-----")
_OPAQUE = re.compile(r"[A-Za-z0-9+=_-]{32,}")


def looks_like_key(name: str, value: str) -> bool:
    """Whether an env var holds a credential: a name saying so (…_KEY, …TOKEN, PASSWORD…), a known token format
    (AKIA…, sk-…, ghp_…, hf_…, xox…-, JWTs, PEM keys), or a long opaque string of letters and digits."""
    if _KEY_NAME.search(name) or _KEY_VALUE.search(value):
        return True
    return bool(_OPAQUE.fullmatch(value)) and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def redact_secrets(text: str) -> str:
    """The job file's text with every ``secrets`` value and every key-like ``envs`` value replaced by
    '<redacted>' (comments, layout and every other field kept), for storing in the run ledger.

    Text that does not parse is returned as it is (it was never a valid job file, so it never reaches the ledger).
    """
    try:
        loader, root = safeyaml.compose(text)
        loader.dispose()
    except yaml.YAMLError:
        return text
    if not isinstance(root, yaml.MappingNode):
        return text
    spans: dict[int, tuple[int, int]] = {}
    for key_node, value_node in root.value:
        section = str(key_node.value)
        if section not in ("secrets", "envs") or not isinstance(value_node, yaml.MappingNode):
            continue
        for name_node, node in value_node.value:
            if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null"):
                continue
            if section == "secrets" or looks_like_key(str(name_node.value), str(node.value)):
                spans[id(node)] = (node.start_mark.index, node.end_mark.index)
    out = text
    for start, end in sorted(spans.values(), reverse=True):
        segment = out[start:end]
        trailing = segment[len(segment.rstrip("\r\n")):]
        keep = ""
        while segment[:1] in ("&", "!"):  # an anchor (aliases elsewhere still resolve) or a tag stays
            token, _, segment = segment.partition(" ")
            keep += token + " "
            segment = segment.lstrip(" ")
        out = out[:start] + keep + f"'{REDACTED}'" + trailing + out[end:]
    return out

"""Work in the user's units: tokens of a model -> hours on an offer, memory fit, and the facts behind them. Pure.

A job may state its work as tokens of a model instead of reference GPU-hours:

- inference: ``tokens`` generated (output) tokens, or ``input_tokens`` + ``output_tokens``, or ``tasks`` x
  ``tokens_per_task`` output tokens. Hours = output tokens / (nodes x GPUs used x output tokens/s per GPU), where
  the per-GPU rate comes from ``inference_throughput.csv`` (GPU x model size class x precision, each row from a
  named benchmark) and the GPUs used are the tensor-parallel replicas of the model that fit one node.
- training: ``tokens`` training tokens. Hours = 6 x N x D FLOPs / (GPUs x dense peak FLOPs at the precision
  (``peak_flops.csv``) x model-FLOPs utilisation (``mfu.csv``) x multi-node scaling efficiency).

Throughput figures from different benchmarks are not comparable (prompt lengths, engines, software versions), so
one benchmark is the *reference* of a model class and precision (the one covering the most GPUs, or the one whose
input:output ratio is nearest the job's); a GPU without a figure in it is *bridged* through a GPU measured in both
benchmarks (its figure x the bridge GPU's reference figure / the bridge GPU's figure in the shared benchmark), and
the plan says so. A GPU without a figure at the job's precision uses its figure at the next wider precision
(fp8 -> bf16, int4/fp4 -> fp8 -> bf16), which is conservative.

Also here: parsing the fact tables from text (``facts.py`` reads the files), and the ``GPUARB_METRICS`` lines a
run reports its work in. No I/O, no clock.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from arbitrage.errors import DataError
from arbitrage.plural import noun

# Model size classes: (id, upper bound in billions of parameters, label). A model is in the first class whose
# bound it does not exceed; the figures of a class come from benchmarks of the model the label names.
MODEL_CLASSES: tuple[tuple[str, float, str], ...] = (
    ("8b", 10.0, "<=8B"),
    ("13-34b", 40.0, "13-34B"),
    ("70b", 120.0, "70B"),
    ("405b", 500.0, "405B"),
)
CLASS_IDS = tuple(c[0] for c in MODEL_CLASSES)

# Rejection reasons (planner counts them; the JSON output uses them as keys).
R_MODEL_MEMORY = "model does not fit the node's GPU memory"
R_NO_THROUGHPUT = "no throughput fact for this GPU, model size and precision"
R_NO_MFU = "no MFU or peak-FLOPs fact for this GPU and precision"

_SECONDS_PER_HOUR = 3600.0


def model_class(params_b: float) -> str | None:
    """The size class id of a model of ``params_b`` billion parameters, or None above the largest class."""
    for cid, bound, _ in MODEL_CLASSES:
        if params_b <= bound:
            return cid
    return None


def class_label(cid: str | None) -> str:
    """'<=8B', '70B'... for a class id ('none' outside every class)."""
    return next((label for c, _, label in MODEL_CLASSES if c == cid), "none")


# ---------------------------------------------------------------------------------------------------------------
# Work records (built by arbitrage.specfile, carried by arbitrage.jobspec.Work)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """The model the work is in: billions of parameters and the weight precision (canonical name)."""

    params_b: float
    precision: str = "bf16"
    name: str | None = None

    def __str__(self) -> str:
        size = f"{self.params_b:g}B {self.precision}"
        return f"{self.name} ({size})" if self.name else size


@dataclass(frozen=True, slots=True)
class TokenWork:
    """Work stated in tokens of a model.

    Inference: ``tokens`` is generated (output) tokens; ``input_tokens`` the prompt tokens when a split was given;
    ``tasks`` x ``tokens_per_task`` = ``tokens`` for task work. Training: ``tokens`` training tokens.
    """

    model: ModelSpec
    tokens: float
    input_tokens: float | None = None
    tasks: float | None = None
    tokens_per_task: float | None = None

    @property
    def total_tokens(self) -> float:
        """All tokens of the work (prompt + output for a split): the denominator of USD per million tokens."""
        return self.tokens + (self.input_tokens or 0.0)

    @property
    def input_output_ratio(self) -> float | None:
        """Prompt tokens per output token, when the work gives both."""
        if self.input_tokens is None or self.tokens <= 0:
            return None
        return self.input_tokens / self.tokens

    def describe(self, workload: str) -> str:
        """'2e+09 output tokens of a 70B fp8 model (inference)' and the like, for plan headers."""
        if workload == "training":
            what = f"{self.tokens:.3g} {noun(self.tokens, 'training token')}"
        elif self.tasks is not None:
            what = (f"{self.tasks:g} {noun(self.tasks, 'task')} x {self.tokens_per_task:g} "
                    f"{noun(self.tokens_per_task, 'output token')}")
        elif self.input_tokens is not None:
            what = f"{self.input_tokens:.3g} input + {self.tokens:.3g} {noun(self.tokens, 'output token')}"
        else:
            what = f"{self.tokens:.3g} {noun(self.tokens, 'output token')}"
        m = self.model
        named = f"{m.name}, " if m.name else ""
        return (f"{what} of {named}{m.params_b:g}B {m.precision} "
                f"({class_label(model_class(m.params_b))} class)")


# ---------------------------------------------------------------------------------------------------------------
# Fact records and their parsing (text in; arbitrage.facts reads the files)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThroughputFact:
    """Output tokens/s per GPU of one benchmark for GPUs of one model class at one precision, with its range."""

    gpus: tuple[str, ...]
    model_class: str
    precision: str
    tokens_per_s: float
    low: float
    high: float
    benchmark: str
    model: str
    input_tokens: float | None
    output_tokens: float | None
    source: str
    url: str
    as_of: str
    notes: str
    where: str = ""

    @property
    def ratio(self) -> float | None:
        """Prompt tokens per output token of the benchmark, when it fixes both."""
        if self.input_tokens is None or not self.output_tokens:
            return None
        return self.input_tokens / self.output_tokens


@dataclass(frozen=True, slots=True)
class PeakFlopsFact:
    """Dense (no sparsity) tensor TFLOPS of GPUs at one precision, from a datasheet."""

    gpus: tuple[str, ...]
    precision: str
    dense_tflops: float
    source: str
    url: str
    as_of: str
    notes: str
    where: str = ""


@dataclass(frozen=True, slots=True)
class MfuFact:
    """Model-FLOPs utilisation measured training a model class on GPUs at a precision, with its range."""

    gpus: tuple[str, ...]
    model_class: str
    precision: str
    mfu: float
    low: float
    high: float
    scope: str
    source: str
    url: str
    as_of: str
    notes: str
    where: str = ""


@dataclass(frozen=True, slots=True)
class PrecisionFact:
    """A weight precision: bytes per parameter and the wider precision to fall back on."""

    name: str
    aliases: tuple[str, ...]
    bytes_per_param: float
    wider: str | None
    source: str


@dataclass(frozen=True, slots=True)
class UnitConstants:
    """Constants of the memory and FLOPs rules (units.toml); defaults equal the bundled file."""

    inference_memory_overhead: float = 0.2
    training_bytes_per_param: float = 16.0
    training_memory_overhead: float = 0.2
    training_flops_per_param_token: float = 6.0


_DEFAULT_PRECISIONS = {
    "bf16": PrecisionFact("bf16", ("fp16", "bfloat16", "float16", "half"), 2.0, None, "default"),
    "fp8": PrecisionFact("fp8", ("float8", "e4m3"), 1.0, "bf16", "default"),
    "int4": PrecisionFact("int4", ("awq", "gptq"), 0.5, "fp8", "default"),
    "fp4": PrecisionFact("fp4", ("nvfp4",), 0.5, "fp8", "default"),
}


@dataclass(frozen=True)
class UnitFacts:
    """The unit-economics tables; ``memo`` caches resolved throughputs (facts are immutable, lookups are not cheap)."""

    throughput: tuple[ThroughputFact, ...] = ()
    peak_flops: tuple[PeakFlopsFact, ...] = ()
    mfu: tuple[MfuFact, ...] = ()
    precisions: Mapping[str, PrecisionFact] = field(default_factory=lambda: dict(_DEFAULT_PRECISIONS))
    constants: UnitConstants = field(default_factory=UnitConstants)
    memo: dict[tuple, object] = field(default_factory=dict, compare=False, repr=False)

    def canonical_precision(self, name: str) -> str | None:
        """The canonical precision for a user-typed name or alias (case-insensitive), or None."""
        wanted = name.strip().lower()
        for p in self.precisions.values():
            if wanted == p.name or wanted in p.aliases:
                return p.name
        return None

    def precision_chain(self, name: str) -> tuple[str, ...]:
        """The precision and the wider ones it falls back on, e.g. ('fp8', 'bf16')."""
        chain: list[str] = []
        current: str | None = name
        while current is not None and current not in chain and current in self.precisions:
            chain.append(current)
            current = self.precisions[current].wider
        return tuple(chain)

    def bytes_per_param(self, precision: str) -> float:
        """Bytes per weight at a precision (2.0 when the precision is unknown: the 16-bit default)."""
        fact = self.precisions.get(precision)
        return fact.bytes_per_param if fact is not None else 2.0


def _csv_rows(label: str, text: str, required: tuple[str, ...]) -> Iterable[tuple[str, dict[str, str]]]:
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{label}: missing {noun(len(missing), 'column')} {', '.join(missing)}")
    for lineno, row in enumerate(reader, start=2):
        yield f"{label}:{lineno}", {k: (v or "").strip() for k, v in row.items() if k}


def cell_number(where: str, row: dict[str, str], key: str, *, optional: bool = False) -> float | None:
    """A fact table's number cell as a float (None for an empty optional cell); DataError naming the file, line and
    column when it is empty or not a number. Bounds are the caller's (``_number`` here, ``facts._num``)."""
    raw = row.get(key, "")
    if raw == "":
        if optional:
            return None
        raise DataError(f"{where}: column '{key}' is empty")
    try:
        return float(raw)
    except ValueError:
        raise DataError(f"{where}: column '{key}' is not a number: {raw[:40]!r}") from None


def _number(where: str, row: dict[str, str], key: str, *, optional: bool = False, positive: bool = True
            ) -> float | None:
    value = cell_number(where, row, key, optional=optional)
    if value is None:
        return None
    raw = row.get(key, "")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise DataError(f"{where}: column '{key}' must be a {'positive' if positive else 'non-negative'} number, "
                        f"got {raw!r}")
    return value


def _gpus(where: str, row: dict[str, str], known_gpus: Iterable[str] | None) -> tuple[str, ...]:
    names = tuple(g.strip() for g in row["gpu"].split(";") if g.strip())
    if not names:
        raise DataError(f"{where}: column 'gpu' is empty")
    if known_gpus is not None:
        known = set(known_gpus)
        for name in names:
            if name not in known:
                raise DataError(f"{where}: GPU {name!r} is not in gpus.csv")
    return names


def _cited(where: str, row: dict[str, str]) -> None:
    for key in ("source", "url", "as_of"):
        if not row.get(key):
            raise DataError(f"{where}: column '{key}' is empty (every fact row cites its source, URL and date)")


def _precision(where: str, row: dict[str, str], precisions: Mapping[str, PrecisionFact]) -> str:
    name = row["precision"]
    if name not in precisions:
        raise DataError(f"{where}: unknown precision {name!r} (one of {', '.join(precisions)})")
    return name


def _class(where: str, row: dict[str, str]) -> str:
    cid = row["model_class"]
    if cid not in CLASS_IDS:
        raise DataError(f"{where}: unknown model_class {cid!r} (one of {', '.join(CLASS_IDS)})")
    return cid


def _range(where: str, row: dict[str, str], value: float, key: str) -> tuple[float, float]:
    low = _number(where, row, "low", optional=True)
    high = _number(where, row, "high", optional=True)
    low = value if low is None else low
    high = value if high is None else high
    if not low <= value <= high:
        raise DataError(f"{where}: {key} {value:g} is outside its range low..high {low:g}..{high:g}")
    return low, high


def parse_precisions(label: str, text: str) -> dict[str, PrecisionFact]:
    """precisions.csv: canonical name, aliases, bytes per parameter, wider fallback, source."""
    out: dict[str, PrecisionFact] = {}
    for where, row in _csv_rows(label, text, ("precision", "aliases", "bytes_per_param", "wider", "source")):
        if not row["precision"] or not row["source"]:
            raise DataError(f"{where}: precision and source are required")
        out[row["precision"]] = PrecisionFact(
            row["precision"], tuple(a.strip().lower() for a in row["aliases"].split(";") if a.strip()),
            _number(where, row, "bytes_per_param") or 0.0, row["wider"] or None, row["source"])
    for name, fact in out.items():
        if fact.wider is not None and fact.wider not in out:
            raise DataError(f"{label}: precision {name!r} falls back on unknown precision {fact.wider!r}")
    return out


def parse_constants(label: str, text: str) -> UnitConstants:
    """units.toml: [name] value = ..., source = "..." for every UnitConstants field."""
    try:
        raw = tomllib.loads(text)
        values = {k: float(v["value"]) for k, v in raw.items()}
        for k, v in raw.items():
            if not str(v.get("source", "")).strip():
                raise DataError(f"{label}: [{k}] has no source")
        return UnitConstants(**values)
    except (tomllib.TOMLDecodeError, TypeError, KeyError, ValueError) as exc:
        raise DataError(f"{label}: {exc}") from None


def parse_throughput(label: str, text: str, precisions: Mapping[str, PrecisionFact],
                     known_gpus: Iterable[str] | None = None) -> tuple[ThroughputFact, ...]:
    """inference_throughput.csv rows; every row must cite source, URL and date."""
    cols = ("gpu", "model_class", "precision", "tokens_per_s", "low", "high", "benchmark", "model", "input_tokens",
            "output_tokens", "source", "url", "as_of", "notes")
    known = tuple(known_gpus) if known_gpus is not None else None
    out = []
    for where, row in _csv_rows(label, text, cols):
        _cited(where, row)
        if not row["benchmark"]:
            raise DataError(f"{where}: column 'benchmark' is empty")
        value = _number(where, row, "tokens_per_s") or 0.0
        low, high = _range(where, row, value, "tokens_per_s")
        out.append(ThroughputFact(
            gpus=_gpus(where, row, known), model_class=_class(where, row), precision=_precision(where, row, precisions),
            tokens_per_s=value, low=low, high=high, benchmark=row["benchmark"], model=row["model"],
            input_tokens=_number(where, row, "input_tokens", optional=True),
            output_tokens=_number(where, row, "output_tokens", optional=True),
            source=row["source"], url=row["url"], as_of=row["as_of"], notes=row["notes"], where=where))
    return tuple(out)


def parse_peak_flops(label: str, text: str, precisions: Mapping[str, PrecisionFact],
                     known_gpus: Iterable[str] | None = None) -> tuple[PeakFlopsFact, ...]:
    """peak_flops.csv rows."""
    known = tuple(known_gpus) if known_gpus is not None else None
    out = []
    for where, row in _csv_rows(label, text, ("gpu", "precision", "dense_tflops", "source", "url", "as_of", "notes")):
        _cited(where, row)
        out.append(PeakFlopsFact(_gpus(where, row, known), _precision(where, row, precisions),
                                 _number(where, row, "dense_tflops") or 0.0, row["source"], row["url"], row["as_of"],
                                 row["notes"], where))
    return tuple(out)


def parse_mfu(label: str, text: str, precisions: Mapping[str, PrecisionFact],
              known_gpus: Iterable[str] | None = None) -> tuple[MfuFact, ...]:
    """mfu.csv rows; MFU is a fraction in (0, 1]."""
    cols = ("gpu", "model_class", "precision", "mfu", "low", "high", "scope", "source", "url", "as_of", "notes")
    known = tuple(known_gpus) if known_gpus is not None else None
    out = []
    for where, row in _csv_rows(label, text, cols):
        _cited(where, row)
        value = _number(where, row, "mfu") or 0.0
        if value > 1:
            raise DataError(f"{where}: mfu must be a fraction in (0, 1], got {value:g}")
        low, high = _range(where, row, value, "mfu")
        out.append(MfuFact(_gpus(where, row, known), _class(where, row), _precision(where, row, precisions), value,
                           low, high, row["scope"], row["source"], row["url"], row["as_of"], row["notes"], where))
    return tuple(out)


def build_unit_facts(read: Callable[[str], tuple[str, str]], known_gpus: Iterable[str] | None = None) -> UnitFacts:
    """All unit tables from ``read(name) -> (label, text)`` (arbitrage.facts.table_text: overrides first)."""
    known = tuple(known_gpus) if known_gpus is not None else None
    precisions = parse_precisions(*read("precisions.csv"))
    return UnitFacts(
        throughput=parse_throughput(*read("inference_throughput.csv"), precisions, known),
        peak_flops=parse_peak_flops(*read("peak_flops.csv"), precisions, known),
        mfu=parse_mfu(*read("mfu.csv"), precisions, known),
        precisions=precisions,
        constants=parse_constants(*read("units.toml")),
    )


# ---------------------------------------------------------------------------------------------------------------
# Resolving a GPU's throughput in the reference benchmark
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Throughput:
    """One GPU's output tokens/s per GPU for a model class and precision, in the reference benchmark's terms."""

    gpu: str
    tokens_per_s: float
    low: float
    high: float
    precision: str  # precision of the figure (wider than the job's when the GPU has none at it)
    reference: str  # the reference benchmark
    basis: str  # one line saying where the figure comes from
    urls: tuple[str, ...]
    comparable: bool = True  # False when no bridge to the reference benchmark exists


def _reference(rows: list[ThroughputFact], ratio: float | None) -> str:
    """The reference benchmark: nearest input:output ratio to the job's when known, else most GPUs covered."""
    order: list[str] = []
    cover: dict[str, set[str]] = {}
    ratios: dict[str, float | None] = {}
    for r in rows:
        if r.benchmark not in cover:
            order.append(r.benchmark)
            cover[r.benchmark] = set()
            ratios[r.benchmark] = r.ratio
        cover[r.benchmark].update(r.gpus)
    if ratio is not None and ratio > 0:
        known = [b for b in order if ratios[b]]
        if known:
            return min(known, key=lambda b: (abs(math.log(ratios[b] / ratio)), -len(cover[b]),  # type: ignore[operator]
                                             order.index(b)))
    return min(order, key=lambda b: (-len(cover[b]), order.index(b)))


def _row(rows: Iterable[ThroughputFact], benchmark: str, gpu: str, precision: str) -> ThroughputFact | None:
    return next((r for r in rows if r.benchmark == benchmark and gpu in r.gpus and r.precision == precision), None)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def resolve_throughput(facts: UnitFacts, gpu: str, cid: str, precision: str,
                       ratio: float | None = None) -> Throughput | None:
    """``gpu``'s output tokens/s per GPU for class ``cid`` at ``precision`` (or wider), or None without a fact.

    Direct when the GPU has a figure in the reference benchmark; otherwise bridged through the GPU that shares the
    most benchmarks with it and has a reference figure, at the same precision on both sides (median over the
    shared benchmarks, range min..max); otherwise its own figure, marked not comparable.
    """
    key = (gpu, cid, precision, None if ratio is None else round(math.log(ratio), 2) if ratio > 0 else 0.0)
    if key in facts.memo:
        return facts.memo[key]  # type: ignore[return-value]
    found = _resolve(facts, gpu, cid, precision, ratio)
    facts.memo[key] = found
    return found


def _resolve(facts: UnitFacts, gpu: str, cid: str, precision: str, ratio: float | None) -> Throughput | None:
    rows = [r for r in facts.throughput if r.model_class == cid]
    chain = facts.precision_chain(precision)
    ref_precision = next((p for p in chain if any(r.precision == p for r in rows)), None)
    own_precision = next((p for p in chain if any(gpu in r.gpus and r.precision == p for r in rows)), None)
    if ref_precision is None or own_precision is None:
        return None
    reference = _reference([r for r in rows if r.precision == ref_precision], ratio)
    fell_back = "" if own_precision == precision else f" (no {precision} figure: {own_precision})"
    direct = _row(rows, reference, gpu, own_precision)
    if direct is not None:
        rng = "" if direct.low == direct.high else f", range {direct.low:,.0f}-{direct.high:,.0f}"
        return Throughput(gpu, direct.tokens_per_s, direct.low, direct.high, own_precision, reference,
                          f"{reference}: {direct.tokens_per_s:,.0f} output tok/s per {gpu}{rng}{fell_back}",
                          (direct.url,))
    own = [r for r in rows if gpu in r.gpus and r.precision == own_precision]
    # Bridge GPUs: those with a reference figure, ranked by how many of ``gpu``'s benchmarks they share.
    shared: dict[str, list[tuple[ThroughputFact, ThroughputFact, ThroughputFact]]] = {}
    for r in own:
        for other in rows:
            if other.benchmark != r.benchmark or other is r:
                continue
            for bridge in other.gpus:
                if bridge == gpu:
                    continue
                ref_row = _row(rows, reference, bridge, other.precision)
                if ref_row is not None:
                    shared.setdefault(bridge, []).append((r, other, ref_row))
    if shared:
        bridge = min(shared, key=lambda b: (-len({t[0].benchmark for t in shared[b]}),
                                            -shared[b][0][2].tokens_per_s, b))
        seen: dict[str, tuple[ThroughputFact, ThroughputFact, ThroughputFact]] = {}
        for triple in shared[bridge]:
            seen.setdefault(triple[0].benchmark, triple)
        estimates = [(t.tokens_per_s * ref.tokens_per_s / b.tokens_per_s, t.low * ref.tokens_per_s / b.tokens_per_s,
                      t.high * ref.tokens_per_s / b.tokens_per_s) for t, b, ref in seen.values()]
        value = _median([e[0] for e in estimates])
        low, high = min(e[1] for e in estimates), max(e[2] for e in estimates)
        ratios = ", ".join(f"{t.tokens_per_s / b.tokens_per_s:.2f}x {bridge} in {t.benchmark}"
                           for t, b, _ in seen.values())
        return Throughput(
            gpu, value, min(low, value), max(high, value), own_precision, reference,
            f"{value:,.0f} output tok/s per {gpu}, bridged to {reference} through {bridge} ({ratios}){fell_back}",
            tuple(dict.fromkeys([*(t.url for t, _, _ in seen.values()), *(ref.url for _, _, ref in seen.values())])))
    best = min(own, key=lambda r: (-len({g for x in rows if x.benchmark == r.benchmark for g in x.gpus}),
                                   rows.index(r)))
    return Throughput(gpu, best.tokens_per_s, best.low, best.high, own_precision, reference,
                      f"{best.benchmark}: {best.tokens_per_s:,.0f} output tok/s per {gpu}{fell_back}; not comparable "
                      f"with {reference} (no GPU measured in both)", (best.url,), comparable=False)


# ---------------------------------------------------------------------------------------------------------------
# Memory fit and the rate of one placement
# ---------------------------------------------------------------------------------------------------------------


def inference_memory_gb(model: ModelSpec, facts: UnitFacts) -> float:
    """GB one serving replica needs: parameters x bytes per parameter x (1 + KV-cache/activation overhead)."""
    return model.params_b * facts.bytes_per_param(model.precision) * (1 + facts.constants.inference_memory_overhead)


def tensor_parallel(need_gb: float, gpu_memory_gb: float, gpus_per_node: int) -> int | None:
    """GPUs one replica spans: the smallest power of two whose memory holds it, within one node; None if none.

    Powers of two because the attention heads must divide evenly across tensor-parallel ranks (vLLM and
    TensorRT-LLM require it; Llama models have 32, 64 or 128 heads); within a node because tensor parallelism
    runs over NVLink.
    """
    if gpu_memory_gb <= 0:
        return None
    tp = 1
    while tp * gpu_memory_gb < need_gb:
        tp *= 2
        if tp > gpus_per_node:
            return None
    return tp if tp <= gpus_per_node else None


def training_memory_gb_per_gpu(model: ModelSpec, total_gpus: int, facts: UnitFacts) -> float:
    """GB per GPU for fully sharded mixed-precision training: params x 16 bytes / GPUs x (1 + activations)."""
    c = facts.constants
    return model.params_b * c.training_bytes_per_param / max(total_gpus, 1) * (1 + c.training_memory_overhead)


@dataclass(frozen=True, slots=True)
class UnitRate:
    """How fast one placement does token work, how the model is laid out on it, and where the figures come from."""

    workload: str
    tokens: float  # all tokens of the work (the USD-per-million denominator)
    tasks: float | None
    work_hours: float
    work_hours_low: float  # at the fact's high end
    work_hours_high: float  # at the fact's low end
    tokens_per_second: float  # the cluster's rate in the work's own tokens (output tokens, or training tokens)
    gpus_used_per_node: int
    tensor_parallel: int | None  # inference: GPUs per replica
    replicas_per_node: int | None  # inference
    memory_need_gb: float  # inference: per replica; training: per GPU
    precision: str  # precision of the throughput figure used
    basis: str
    urls: tuple[str, ...]
    comparable: bool = True

    @property
    def layout(self) -> str:
        """'2 replicas x TP4' (inference) or 'sharded over 16 GPUs' (training), for tables and explanations."""
        if self.tensor_parallel is not None:
            return f"{self.replicas_per_node} x TP{self.tensor_parallel}"
        return f"{self.gpus_used_per_node} {noun(self.gpus_used_per_node, 'GPU')}/node"


def unit_rate(work: TokenWork, workload: str, gpu: str, gpu_memory_gb: float, gpus_per_node: int, nodes: int,
              scaling_efficiency: float, facts: UnitFacts) -> UnitRate | str:
    """The rate of token work on ``nodes`` x ``gpus_per_node`` ``gpu``; a rejection reason (R_*) when it cannot run."""
    cid = model_class(work.model.params_b)
    if workload == "training":
        return _training_rate(work, cid, gpu, gpu_memory_gb, gpus_per_node, nodes, scaling_efficiency, facts)
    need = inference_memory_gb(work.model, facts)
    tp = tensor_parallel(need, gpu_memory_gb, gpus_per_node)
    if tp is None:
        return R_MODEL_MEMORY
    if cid is None:
        return R_NO_THROUGHPUT
    found = resolve_throughput(facts, gpu, cid, work.model.precision, work.input_output_ratio)
    if found is None:
        return R_NO_THROUGHPUT
    replicas = gpus_per_node // tp
    used = replicas * tp
    per_gpu = found.tokens_per_s
    cluster = nodes * used * per_gpu
    hours = work.tokens / cluster / _SECONDS_PER_HOUR if work.tokens > 0 else 0.0
    return UnitRate(
        workload=workload, tokens=work.total_tokens, tasks=work.tasks, work_hours=hours,
        work_hours_low=work.tokens / (nodes * used * found.high) / _SECONDS_PER_HOUR if work.tokens > 0 else 0.0,
        work_hours_high=work.tokens / (nodes * used * found.low) / _SECONDS_PER_HOUR if work.tokens > 0 else 0.0,
        tokens_per_second=cluster, gpus_used_per_node=used, tensor_parallel=tp, replicas_per_node=replicas,
        memory_need_gb=need, precision=found.precision, basis=found.basis, urls=found.urls,
        comparable=found.comparable)


def _training_facts(facts: UnitFacts, gpu: str, cid: str | None,
                    precision: str) -> tuple[MfuFact, PeakFlopsFact, str] | None:
    """(MFU row, peak row, note) at the first precision of the chain that has both for ``gpu``; nearest class."""
    order = {c: i for i, c in enumerate(CLASS_IDS)}
    for p in facts.precision_chain(precision):
        peak = next((f for f in facts.peak_flops if gpu in f.gpus and f.precision == p), None)
        mfus = [m for m in facts.mfu if gpu in m.gpus and m.precision == p]
        if peak is None or not mfus:
            continue
        target = order.get(cid or "", len(order))
        mfu = min(mfus, key=lambda m: (abs(order[m.model_class] - target), order[m.model_class]))
        notes = []
        if p != precision:
            notes.append(f"no {precision} figure: {p}")
        if mfu.model_class != cid:
            notes.append(f"MFU of the {class_label(mfu.model_class)} class")
        return mfu, peak, "; ".join(notes)
    return None


def _training_rate(work: TokenWork, cid: str | None, gpu: str, gpu_memory_gb: float, gpus_per_node: int,
                   nodes: int, efficiency: float, facts: UnitFacts) -> UnitRate | str:
    total = gpus_per_node * nodes
    need = training_memory_gb_per_gpu(work.model, total, facts)
    if need > gpu_memory_gb:
        return R_MODEL_MEMORY
    found = _training_facts(facts, gpu, cid, work.model.precision)
    if found is None:
        return R_NO_MFU
    mfu, peak, note = found
    flops = facts.constants.training_flops_per_param_token * work.model.params_b * 1e9 * work.tokens

    def hours(utilisation: float) -> float:
        rate = total * peak.dense_tflops * 1e12 * utilisation * efficiency
        return flops / rate / _SECONDS_PER_HOUR if flops > 0 else 0.0

    work_hours = hours(mfu.mfu)
    rng = "" if mfu.low == mfu.high else f" (range {mfu.low:.0%}-{mfu.high:.0%})"
    basis = (f"{facts.constants.training_flops_per_param_token:g} x {work.model.params_b:g}e9 params x "
             f"{work.tokens:.3g} tokens = {flops:.3g} FLOPs at {peak.dense_tflops:g} dense TFLOPS ({peak.precision}) "
             f"x MFU {mfu.mfu:.1%}{rng} [{mfu.source}; {mfu.scope}]" + (f"; {note}" if note else ""))
    return UnitRate(
        workload="training", tokens=work.total_tokens, tasks=work.tasks, work_hours=work_hours,
        work_hours_low=hours(mfu.high), work_hours_high=hours(mfu.low),
        tokens_per_second=work.tokens / (work_hours * _SECONDS_PER_HOUR) if work_hours > 0 else 0.0,
        gpus_used_per_node=gpus_per_node, tensor_parallel=None, replicas_per_node=None, memory_need_gb=need,
        precision=peak.precision, basis=basis, urls=(mfu.url, peak.url))


def usd_per_million(total_usd: float, tokens: float) -> float | None:
    """USD per million tokens (None for no tokens or an infinite total)."""
    if tokens <= 0 or not math.isfinite(total_usd):
        return None
    return total_usd / tokens * 1e6


# ---------------------------------------------------------------------------------------------------------------
# GPUARB_METRICS: the work a run reports
# ---------------------------------------------------------------------------------------------------------------

METRICS_KEYS = ("tokens", "input_tokens", "output_tokens", "tasks")


@dataclass(frozen=True, slots=True)
class WorkDone:
    """What a run's metrics file says it did: tokens (all kinds summed) and tasks; lines that could not be read."""

    tokens: float = 0.0
    tasks: float = 0.0
    lines: int = 0
    bad_lines: int = 0
    first_bad: str = ""

    @property
    def reported(self) -> bool:
        """True when at least one line carried a count."""
        return self.lines > 0


def parse_metrics(text: str | Iterable[str]) -> WorkDone:
    """Sum JSON lines like {"tokens": 123456} or {"input_tokens": 900, "output_tokens": 100, "tasks": 1}.

    ``text`` is the file's text or an iterable of its lines (an open file: read lazily). Each line is an increment.
    Blank lines are skipped; a line that is not a JSON object with at least one non-negative finite count among
    METRICS_KEYS is counted in ``bad_lines`` (the first one is kept for a message).
    """
    tokens = tasks = 0.0
    lines = bad = 0
    first_bad = ""
    for raw in (text.splitlines() if isinstance(text, str) else text):
        line = raw.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        counts: dict[str, float] = {}
        if isinstance(record, dict):
            for key in METRICS_KEYS:
                value = record.get(key)
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                if math.isfinite(value) and value >= 0:
                    counts[key] = float(value)
        if not counts:
            bad += 1
            first_bad = first_bad or line[:80]
            continue
        lines += 1
        tokens += sum(counts.get(k, 0.0) for k in ("tokens", "input_tokens", "output_tokens"))
        tasks += counts.get("tasks", 0.0)
    return WorkDone(tokens, tasks, lines, bad, first_bad)


__all__ = [
    "CLASS_IDS", "METRICS_KEYS", "MODEL_CLASSES", "R_MODEL_MEMORY", "R_NO_MFU", "R_NO_THROUGHPUT", "MfuFact",
    "ModelSpec", "PeakFlopsFact", "PrecisionFact", "Throughput", "ThroughputFact", "TokenWork", "UnitConstants",
    "UnitFacts", "UnitRate", "WorkDone", "build_unit_facts", "class_label", "inference_memory_gb", "model_class",
    "parse_metrics", "resolve_throughput", "tensor_parallel", "training_memory_gb_per_gpu", "unit_rate",
    "usd_per_million",
]

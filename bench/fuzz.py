"""Fuzzing gpuarb's inputs as an attacker and a careless user would: job specs, command lines and state files.

`python -m bench --only fuzz` → this module. Every case ends in one of four ways:

- **clean**: a valid input accepted with sane values, or an invalid one refused the documented way (a spec:
  `SpecError`, exit 2, every line `file:line: field: message`; a command line: exit 2; a state file: ignored or
  refused with one line);
- **internal error**: any other exception, a traceback, or a refusal that does not name file, line and field;
- **hang**: the case ran past CASE_SECONDS (SIGALRM interrupts it);
- **wrongly accepted**: an input known to be invalid was accepted, or an accepted one produced a value outside the
  documented limits (README "Limits": a non-finite or non-positive number, a count over its bound).

The same oracles back the hypothesis suite in tests/test_fuzz.py (a few hundred cases, CI-sized); this module runs
thousands, seeded, and writes the counts to BENCHMARKS.md. Nothing here touches the network: prices come from the
bundled snapshot, backends are the scripted FakeBackend, files live in a temporary folder.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
import signal
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
CASE_SECONDS = 5.0
WHERE = "fuzz.yaml"

CLEAN, INTERNAL, HANG, ACCEPTED = "clean", "internal error", "hang", "wrongly accepted"
OUTCOMES = (CLEAN, INTERNAL, HANG, ACCEPTED)


class _Hang(BaseException):
    """Raised by SIGALRM when a case runs too long."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (main thread, POSIX); elsewhere, no limit."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum: int, frame: object) -> None:
        raise _Hang()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Tally:
    """Counts per outcome for one family of inputs, with the first few failing cases for the report."""

    family: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    examples: list[str] = field(default_factory=list)

    @property
    def tried(self) -> int:
        return sum(self.counts.values())

    def add(self, outcome: str, label: str) -> None:
        self.counts[outcome] += 1
        if outcome != CLEAN and len(self.examples) < 5:
            self.examples.append(f"{outcome}: {label[:160]}")


def _classify(case: Callable[[], str]) -> tuple[str, str]:
    """(outcome, detail) of running one case under the deadline; exceptions out of ``case`` are internal errors."""
    try:
        with _deadline(CASE_SECONDS):
            detail = case()
    except _Hang:
        return HANG, f"ran past {CASE_SECONDS:g} s"
    except Exception as exc:  # the oracle's own verdict is returned, never raised: this is gpuarb failing
        return INTERNAL, f"{type(exc).__name__}: {str(exc)[:120]}"
    return (CLEAN, "") if not detail else (ACCEPTED if detail.startswith("accepted") else INTERNAL, detail)


# ---------------------------------------------------------------------------------------------------------------
# Job specs
# ---------------------------------------------------------------------------------------------------------------

def base_specs() -> list[tuple[str, dict[str, Any]]]:
    """The bundled job specs as data (each valid at NOW), to mutate."""
    out = []
    for path in sorted((ROOT / "jobspecs").glob("*.yaml")):
        out.append((path.name, yaml.safe_load(path.read_text(encoding="utf-8"))))
    return out


_BIG = "9" * 5000
# (dotted path, raw YAML): each makes any bundled spec invalid. "~del" deletes the key.
SPEC_MUTATIONS: list[tuple[str, str]] = [
    *[("num_nodes", v) for v in ("0", "-3", "1025", "1000000000", "true", "2.5", ".inf", ".nan", "'four'", "[1]",
                                 _BIG, "!!binary AAAA", "{}")],
    *[("resources.accelerators", v) for v in ("'H100:0'", "'H100:-1'", "'H100:1e400'", "{H100: .inf}",
                                              "{H100: true}", "{H100: 100000}", "{H900: 8}", "[]", "{}", "42",
                                              "'H100:nan'", "'H100:2.5'", "{H100: 1e400}", "null")],
    *[("resources.cpus", v) for v in ("-5", "0", ".nan", ".inf", "'lots'", "true", "1e400", "'8++'", _BIG)],
    *[("resources.memory", v) for v in ("-5", "0", ".nan", ".inf", "'64GBish'", "false", "1e7")],
    ("resources.ordered", "[]"), ("resources.any_of", "[]"), ("resources.any_of", "[{cpus: 4}]"),
    ("resources.ordered", "[7]"),
    *[("arbitrage.work.gpu_hours", v) for v in ("0", "-1", ".inf", ".nan", "1e12", "true", "'x'", "1e400")],
    ("arbitrage.work", "{}"), ("arbitrage.work", "{gpu_hours: 1, hours: 1}"), ("arbitrage.work", "5"),
    *[("arbitrage.deadline", v) for v in ("2020-02-30", "2026-13-01", "'2020-01-01T00:00:00Z'", "'" + "9" * 400 + "h'",
                                         "100000d", "'0h'", "'soon'", "2026-12-01T00:00:00", "-5",
                                         "'2026-02-30T10:00:00Z'", "'2126-01-01T00:00:00Z'", "[48h]")],
    *[("arbitrage.budget.max_total_usd", v) for v in ("0", "-1", ".inf", ".nan", "1e300", "true", "'free'")],
    *[("arbitrage.budget.max_hourly_usd", v) for v in ("0", "-1", ".inf", ".nan", "1e300")],
    *[("arbitrage.data.size_gb", v) for v in ("-1", ".inf", ".nan", "1e30", "true")],
    *[("arbitrage.outputs_gb", v) for v in ("-1", ".nan", ".inf", "1e30")],
    *[("arbitrage.checkpoint.interval_minutes", v) for v in ("0", "-1", ".nan", ".inf", "1e9")],
    ("arbitrage.checkpoint.write_minutes", "-1"), ("arbitrage.checkpoint.write_minutes", ".inf"),
    ("arbitrage.spot", "sometimes"), ("arbitrage.spot", "3"), ("arbitrage.interconnect", "fast"),
    *[("arbitrage.min_gpu_memory_gb", v) for v in ("0", "-1", ".inf", "1e9", ".nan")],
    ("arbitrage.providers.allow", "[nowhere]"), ("arbitrage.providers.deny", "[nowhere*]"),
    ("arbitrage.workload", "gaming"), ("arbitrage.tags", "[a, b]"),
    *[("name", v) for v in ("!!binary aGk=", "''", "[a]", "!!python/name:os.system", "!!set {a}", "!custom x",
                            "'" + "n" * 5000 + "'")],
    # Deleting arbitrage, name or arbitrage.work is valid since issue 14: any SkyPilot task plans (by cluster $/h).
    ("arbitrage.unknown_field", "1"), ("resources", "7"), ("arbitrage", "'yes'"), ("resources", "~del"),
]


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with the dotted path set to ``value`` ("~del" deletes it), creating mappings on the way."""
    out = copy.deepcopy(data)
    node = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    if value == "~del":
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    if dotted in ("resources.ordered", "resources.any_of"):
        out["resources"].pop("accelerators", None)
    return out


_SENTINEL = "__gpuarb_fuzz_value__"


def mutated_spec(data: dict[str, Any], dotted: str, raw: str) -> str:
    """The spec as YAML text with ``raw`` (YAML source, tags and all) at ``dotted``."""
    if raw == "~del":
        return yaml.safe_dump(_set(data, dotted, "~del"), sort_keys=False, width=1_000_000)
    text = yaml.safe_dump(_set(data, dotted, _SENTINEL), sort_keys=False, width=1_000_000)
    return text.replace(_SENTINEL, raw, 1)


def structural_specs(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Whole-file attacks on a valid spec: alias bombs, deep nesting, recursion, duplicates, tags, sizes."""
    good = yaml.safe_dump(data, sort_keys=False)
    bomb = "".join(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 10))
    return [
        ("billion laughs under an unknown key", good + 'junk:\n  l0: &l0 ["lol", "lol", "lol", "lol"]\n' + bomb),
        ("billion laughs in setup", good.replace("arbitrage:", "x0: &x0 [a, a, a, a, a, a, a, a, a, a]\n"
                                                + "".join(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]\n"
                                                          for i in range(1, 9)) + "arbitrage:", 1)),
        ("nesting 600 deep", good + "setup: " + "[" * 600 + "]" * 600 + "\n"),
        ("mapping nesting 200 deep", good + "config:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(200))
         + "  " * 201 + "v: 1\n"),
        ("recursive alias", good + "envs: &e {A: *e}\n"),
        ("recursive list alias", good + "file_mounts: &m [*m]\n"),
        ("duplicate key", good + "name: again\n"),
        ("binary tag", good + "run: !!binary aGVsbG8=\n"),
        ("python tag", good + "run: !!python/object/apply:os.system [ls]\n"),
        ("5000-digit integer", good.replace("num_nodes:", "num_nodes: " + _BIG + "\nx_num_nodes:", 1)
         if "num_nodes:" in good else good + "num_nodes: " + _BIG + "\n"),
        ("over 1 MiB", good + "setup: |\n" + "  echo hello world\n" * 80_000),
        ("a list", "- " + good.replace("\n", "\n  ")),
        ("empty", ""),
        ("only a comment", "# nothing\n"),
        ("two documents", good + "---\n" + good),
        ("syntax error", good + "resources: {accelerators: [H100\n"),
        ("NUL byte", good + "run: \x00\n"),
        ("undefined alias", good + "run: *nope\n"),
    ]


def spec_problem(spec: Any) -> str | None:
    """Why an accepted JobSpec breaks the documented limits, or None."""
    from arbitrage import specfile as S

    def bad(value: float | None, low: float, high: float, *, strict: bool = True) -> bool:
        if value is None:
            return False
        return not (math.isfinite(value) and (value > low if strict else value >= low) and value <= high)

    checks = [
        ("num_nodes", not (isinstance(spec.num_nodes, int) and 1 <= spec.num_nodes <= S.MAX_NODES)),
        ("accelerators", not spec.accelerators or any(not 1 <= a.count <= S.MAX_GPUS_PER_NODE
                                                      for a in spec.accelerators)),
        ("gpu_hours", spec.work.known and spec.work.tokens is None
         and bad(spec.work.gpu_hours, 0, S.MAX_GPU_HOURS * S.MAX_GPUS_PER_NODE * S.MAX_NODES)),
        ("min_vcpus", bad(spec.min_vcpus, 0, S.MAX_CPUS)),
        ("min_ram_gb", bad(spec.min_ram_gb, 0, S.MAX_MEMORY_GB)),
        ("data.size_gb", spec.data is not None and bad(spec.data.size_gb, 0, S.MAX_DATA_GB, strict=False)),
        ("outputs_gb", bad(spec.outputs_gb, 0, S.MAX_DATA_GB, strict=False)),
        ("budget", bad(spec.budget.max_total_usd, 0, S.MAX_TOTAL_USD)
         or bad(spec.budget.max_hourly_usd, 0, S.MAX_HOURLY_USD)),
        ("checkpoint", spec.checkpoint is not None and bad(spec.checkpoint.interval_minutes, 0,
                                                           S.MAX_INTERVAL_MINUTES)),
        ("deadline", spec.deadline is not None and not 0 < spec.deadline.hours_left(NOW) <= S.MAX_HOURS),
        ("min_gpu_memory_gb", bad(spec.min_gpu_memory_gb, 0, S.MAX_GPU_MEMORY_GB)),
        ("name", not isinstance(spec.name, str) or not spec.name),
    ]
    failed = [name for name, broken in checks if broken]
    return f"accepted with {', '.join(failed)} out of bounds" if failed else None


def _refusal_problem(message: str) -> str | None:
    """Why a SpecError's text is not the documented refusal: every line `fuzz.yaml:LINE: FIELD: message`."""
    import re

    lines = message.splitlines()
    if not lines:
        return "refused without a message"
    for line in lines:
        if not re.match(rf"^{re.escape(WHERE)}(:\d+)?: \S", line) or len(line) > 600:
            return f"refusal not naming file and line: {line[:120]!r}"
    return None


def check_spec(text: str, invalid: bool, facts: Any = None) -> str:
    """'' when the spec is handled cleanly, else why not (``invalid``: the spec is known to be invalid)."""
    from arbitrage.errors import SpecError
    from arbitrage.specfile import parse_jobspec_text

    if facts is None:
        from arbitrage.facts import load_facts

        facts = load_facts()
    try:
        spec = parse_jobspec_text(text, facts, where=WHERE, now=NOW)
    except SpecError as exc:
        return _refusal_problem(str(exc)) or ""
    if invalid:
        return "accepted: a known-invalid spec"
    return spec_problem(spec) or ""


def random_yaml_value(rng: random.Random, depth: int = 0) -> str:
    """A random YAML value as source text: numbers at every edge, strings, dates, tags, lists and mappings."""
    pick = rng.random()
    if pick < 0.25:  # plausible numbers: the accepted side of the oracle needs cases too
        return rng.choice([str(rng.randint(1, 2000)), f"{rng.uniform(0.01, 5000):.3f}", f"{rng.uniform(0, 1):.4f}",
                           str(rng.choice([1, 2, 4, 8, 16, 64, 1024])), f"{rng.uniform(1, 1e8):.6g}"])
    if pick < 0.6 or depth > 2:
        return rng.choice([
            str(rng.randint(-10, 10)), str(rng.randint(-(10 ** 30), 10 ** 30)),
            str(rng.choice([0, 1, 2, 8, 1024, 1025])),
            repr(rng.uniform(-1e6, 1e6)), rng.choice([".inf", "-.inf", ".nan", "1e400", "-1e400", "1e-400", "0.0"]),
            "9" * rng.choice([20, 400, 4400]), rng.choice(["true", "false", "null", "~", "yes", "no", "on"]),
            rng.choice(["H100", "h100:8", "'H100:8'", "A100-80GB", "B200:1e3", "tpu-v5:4"]),
            rng.choice(["48h", "2d", "'1d12h'", "90m", "0m", "'-1h'", "2026-11-24T00:00:00Z", "2026-02-29",
                        "2026-11-23", "1999-01-01T00:00:00+14:00"]),
            rng.choice(["!!binary aGk=", "!!str 5", "!!int '7'", "!!float '1e5'", "!!bool 'maybe'", "!!timestamp x",
                        "!!null ''", "!!map {}", "!!seq []", "!foo bar"]),
            json.dumps("".join(rng.choice("ab:/ *&!%@`{}[]\\\t\n\"'#|>-?,") for _ in range(rng.randint(0, 12)))),
        ])
    if pick < 0.7:
        return "[" + ", ".join(random_yaml_value(rng, depth + 1) for _ in range(rng.randint(0, 3))) + "]"
    keys = ["H100", "gpu_hours", "hours", "uri", "size_gb", "allow", "deny", "x", "accelerators", "max_total_usd"]
    return "{" + ", ".join(f"{rng.choice(keys)}: {random_yaml_value(rng, depth + 1)}"
                           for _ in range(rng.randint(0, 3))) + "}"


SPEC_PATHS = sorted({p for p, _ in SPEC_MUTATIONS if not p.endswith("unknown_field")}
                    | {"arbitrage.regions.allow", "arbitrage.tags.team", "envs.HF_TOKEN", "setup", "workdir"})


def random_spec(rng: random.Random, bases: list[tuple[str, dict[str, Any]]]) -> str:
    """A bundled spec with one to three random values at random paths (valid or not: the oracle decides)."""
    from arbitrage import safeyaml

    data = rng.choice(bases)[1]
    text = ""
    for _ in range(rng.randint(1, 3)):
        text = mutated_spec(data, rng.choice(SPEC_PATHS), random_yaml_value(rng))
        try:
            parsed = safeyaml.safe_load(text)  # the harness reads YAML as untrusted too (4,400-digit integers)
        except yaml.YAMLError:
            break
        if not isinstance(parsed, dict):
            break
        data = parsed
    return text


def random_text(rng: random.Random) -> str:
    """YAML-ish noise: fragments of a spec, indentation and punctuation."""
    pieces = ["name: t\n", "resources:\n", "  accelerators: ", "arbitrage:\n", "  work: {gpu_hours: 1}\n", "- ",
              "  ", ": ", "&a ", "*a ", "!!", "{", "}", "[", "]", "'", '"', "|\n", ">-\n", "#", "\t", "\n", "---\n",
              "? ", ", ", "%YAML 1.2\n", "H100", "8", ".inf", "2020-02-30"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))


# ---------------------------------------------------------------------------------------------------------------
# Command lines
# ---------------------------------------------------------------------------------------------------------------

SPEC = str(ROOT / "jobspecs" / "llama3-8b-finetune.yaml")
_BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "1e400", "-1e400", "", "abc", "0x10", "1,5", " ", "--", "1e29",
                "100000000000000000000000000000", "-1", "-0.0001", "1e308", "99999999999"]
# (arguments with {} for the value, kind, low, high): the option's documented range (params.py, cli modules).
CLI_OPTIONS: list[tuple[list[str], str, float, float]] = [
    (["prices", "--limit", "{}", "-f", "json"], "int", 0, 1_000_000),
    (["prices", "--count", "{}", "-f", "json"], "int", 1, 64),
    (["plan", SPEC, "--top", "{}", "-f", "json"], "int", 0, 1_000_000),
    (["status", "--limit", "{}"], "int", 1, 1_000_000),
    (["history", "--limit", "{}"], "int", 1, 1_000_000),
    (["run", SPEC, "--dry-run", "--poll-seconds", "{}"], "float", 0.05, 3600),
    (["run", SPEC, "--dry-run", "--pending-timeout", "{}"], "float", 0, 10_080),
    (["run", SPEC, "--dry-run", "--max-failovers", "{}"], "int", 0, 100),
    (["run", SPEC, "--dry-run", "--max-restarts", "{}"], "int", 0, 1000),
    (["reap", "--dry-run", "--idle-minutes", "{}"], "float", 0, 525_600),
    (["breakeven", "--gpu", "H100", "--rental-usd-per-gpu-hour", "{}"], "float", 0, 1e9),
    (["breakeven", "--gpu", "H100", "--rental-usd-per-gpu-hour", "2", "--purchase-usd", "{}"], "float", 0, 1e9),
    (["report", "spend", "--flag-rise-percent", "{}", "-f", "json"], "float", 0, 1e6),
    (["diff", SPEC, SPEC, "--fail-above-usd", "{}", "-f", "json"], "float", 0, 1e12),
]
_SINCE = [["history", "--since", "{}"], ["report", "spend", "--since", "{}", "-f", "json"],
          ["export", "focus", "--since", "{}"]]
_BAD_SINCE = ["99999999999d", "1e9d", "-5d", "yesterday", "", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
              "7x", "d", "1.5.5h", "99999999999999999999h"]
_BAD_RUN_IDS = ["", "_", "%", "%%", "_%", "*", " ", "2", "20", "2026", "'", "a;b", "../x"]


def _number_in(text: str, kind: str, low: float, high: float) -> bool:
    """Whether click would read ``text`` as a number of ``kind`` inside [low, high]."""
    try:
        value = int(text) if kind == "int" else float(text)
    except ValueError:
        return False
    return math.isfinite(value) and low <= value <= high


class CliHarness:
    """The CLI in-process over a private data, cache and config folder, the bundled snapshot and a FakeBackend."""

    def __init__(self) -> None:
        from typer.testing import CliRunner

        self.dir = Path(tempfile.mkdtemp(prefix="gpuarb-fuzz-"))
        self.env = {"GPUARB_DATA_DIR": str(self.dir / "data"), "GPUARB_CACHE_DIR": str(self.dir / "cache"),
                    "GPUARB_CONFIG_DIR": str(self.dir / "config"), "GPUARB_SOURCE": "snapshot"}
        self.runner = CliRunner()
        self.run_id = self._record_run()

    def _record_run(self) -> str:
        from arbitrage import ledger as L

        with self._environment(), L.Ledger.open() as ledger:
            row = dict(provider="aws", region="us-east-1", zone=None, instance_type="p5.48xlarge",
                       accelerator="H100", gpus_per_node=8, nodes=1, spot=False, usd_per_hour=98.32,
                       expected_hours=10.0, expected_total_usd=983.2, compute_usd=983.2, preemption_usd=0.0,
                       egress_in_usd=0.0, egress_out_usd=0.0, price_source="snapshot", price_as_of="2026-11-01",
                       price_ref="fuzz")
            run_id = ledger.create_run(name="fuzz", spec_path=SPEC, spec_text="name: fuzz", backend="skypilot",
                                       now=NOW, placements=[row], tags={}, budget_total_usd=None,
                                       budget_hourly_usd=None)
            ledger.start_attempt(run_id, 0, lambda k: f"gpuarb-{run_id}-a{k}", NOW)
        return run_id

    @contextlib.contextmanager
    def _environment(self) -> Iterator[Any]:
        from arbitrage import app as usecases
        from arbitrage.launch.fake import FakeBackend

        saved = {k: os.environ.get(k) for k in self.env}
        backend = FakeBackend(scripts=[])
        make = usecases.make_backend
        os.environ.update(self.env)
        usecases.make_backend = lambda name, ray_address=None, check=True: backend  # type: ignore[assignment]
        try:
            yield backend
        finally:
            usecases.make_backend = make  # type: ignore[assignment]
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def invoke(self, args: list[str]) -> tuple[int, str, Any]:
        """(exit code, output, the backend) of one command."""
        from arbitrage.cli import app

        with self._environment() as backend:
            result = self.runner.invoke(app, args)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output, backend


def check_cli(harness: CliHarness, args: list[str], invalid: bool, codes: tuple[int, ...] = (2,)) -> str:
    """'' when a command line is handled cleanly, else why not. Known-invalid (``invalid``): refused with one of
    ``codes`` (2, a usage error; a run id that names no run: 1 too) and nothing launched, cancelled or torn down.
    Otherwise any documented outcome (0 ok, 2 usage, 3 nothing feasible, 4 over budget)."""
    code, output, backend = harness.invoke(args)
    if "internal error" in output or "Traceback" in output:
        return f"internal error in output: {output.strip().splitlines()[-1][:120]!r}"
    if invalid:
        if code == 0:
            return "accepted: a known-invalid command line exited 0"
        if code not in codes:
            return f"exit {code}, not {codes}, for a refused command line"
        if backend.launched or backend.cancelled or backend.torn_down:
            return "accepted: a refused command line still launched, cancelled or tore something down"
        return ""
    return "" if code in (0, 2, 3, 4) else f"unexpected exit {code}"


CliCase = tuple[list[str], bool, tuple[int, ...]]


def cli_cases(rng: random.Random, count: int) -> list[CliCase]:
    """(arguments, known invalid, refusal exit codes): bad numbers and out-of-range values for every numeric
    option, bad --since values, run ids that are empty, wildcards or too short, over-long --out names; then random
    values (in range or not: the range decides) up to ``count`` cases."""
    cases: list[CliCase] = []
    for template, kind, low, high in CLI_OPTIONS:
        for bad in _BAD_NUMBERS:
            if not _number_in(bad, kind, low, high):
                cases.append(([a.replace("{}", bad) for a in template], True, (2,)))
    for template in _SINCE:
        cases += [([a.replace("{}", bad) for a in template], True, (2,)) for bad in _BAD_SINCE if bad != "-5d"]
    for bad in _BAD_RUN_IDS:
        cases += [([command, bad], True, (1, 2)) for command in ("down", "status", "logs")]
    cases += [(["report", "prices", "--gpu", "H100", "--out", "a" * n + ".html"], True, (2,)) for n in (256, 306)]
    cases.append((["report", "prices", "--gpu", "H100", "--out", "x\x00.html"], True, (2,)))
    while len(cases) < count:
        template, kind, low, high = rng.choice(CLI_OPTIONS)
        value = rng.choice([str(rng.randint(-5, 10)), str(rng.randint(-(10 ** 12), 10 ** 12)),
                            repr(rng.uniform(-10, 4000)), repr(rng.uniform(-1e7, 1e7)), rng.choice(_BAD_NUMBERS),
                            str(rng.choice([0, 1, 64, 65, 100, 101, 1000, 1001]))])
        cases.append(([a.replace("{}", value) for a in template], not _number_in(value, kind, low, high), (2,)))
    return cases


# ---------------------------------------------------------------------------------------------------------------
# State files: the offer cache, the run ledger, fact tables, the on-prem file
# ---------------------------------------------------------------------------------------------------------------

GOOD_OFFER: dict[str, Any] = {
    "provider": "lambda", "region": "us-east-1", "zone": None, "instance_type": "gpu_1x_h100_pcie",
    "accelerator": "H100", "gpus_per_node": 1, "gpu_memory_gb": 80.0, "vcpus": 26.0, "ram_gb": 200.0,
    "on_demand_usd_per_hour": 2.49, "spot_usd_per_hour": None, "interconnect": "none", "interconnect_gbps": 0.0,
    "source": "live", "as_of": "2026-11-23T11:00:00+00:00", "price_ref": "fuzz", "gpu_model": "H100-PCIE",
}
_OFFER_BAD: dict[str, list[Any]] = {
    "on_demand_usd_per_hour": [-5, 0, "2.49", float("nan"), float("inf"), True, [], {}],
    "spot_usd_per_hour": [-1, "cheap", float("inf"), False],
    "gpus_per_node": [0, -8, 1.5, "8", True, None, 10 ** 9],
    "gpu_memory_gb": [-80, float("nan"), "80", None],
    "provider": ["aws", None, 7],
    "region": [None, 5, []],
    "interconnect_gbps": [-1, float("inf")],
}


def cache_docs(rng: random.Random, count: int) -> list[tuple[Any, bool]]:
    """(cache file content, known invalid): known-corrupt entries first, then random mutations."""
    def doc(offers: Any, **top: Any) -> dict[str, Any]:
        return {"schema": 1, "provider": "lambda", "fetched_at": "2026-11-23T11:00:00+00:00", "offers": offers,
                "failed_at": None, "failure": None, **top}

    cases: list[tuple[Any, bool]] = [(None, True), ([], True), ({}, True), ("text", True), (7, True),
                                     (doc([None]), True), (doc("offers"), True), (doc([GOOD_OFFER], schema=2), True),
                                     (doc([GOOD_OFFER], provider="aws"), True),
                                     (doc([GOOD_OFFER], fetched_at="yesterday"), True),
                                     (doc([GOOD_OFFER], fetched_at=17), True)]
    for key, values in _OFFER_BAD.items():
        for value in values:
            cases.append((doc([{**GOOD_OFFER, key: value}]), True))
    for key in ("provider", "region", "instance_type", "gpus_per_node", "as_of"):
        cases.append((doc([{k: v for k, v in GOOD_OFFER.items() if k != key}]), True))
    leaves = [None, True, -1, 0, 1.5, 1e308, float("nan"), float("-inf"), "", "x" * 300, [], {}, [None], {"a": 1},
              "2026-11-23T11:00:00+00:00", "2100-01-01T00:00:00+00:00"]
    while len(cases) < count:
        offer = dict(GOOD_OFFER)
        for _ in range(rng.randint(1, 3)):
            offer[rng.choice([*GOOD_OFFER, "extra", "country", "available", "host_reliability"])] = rng.choice(leaves)
        top = {rng.choice(["fetched_at", "failed_at", "failure", "schema"]): rng.choice(leaves)} \
            if rng.random() < 0.3 else {}
        cases.append((doc([GOOD_OFFER, offer], **top), False))
    return cases


def offer_problem(offer: Any) -> str | None:
    """Why a cached offer that was accepted could not be priced, or None."""
    for name in ("on_demand_usd_per_hour", "spot_usd_per_hour"):
        value = getattr(offer, name)
        if value is not None and not (isinstance(value, float | int) and math.isfinite(value) and value > 0):
            return f"accepted {name}={value!r}"
    if not (isinstance(offer.gpus_per_node, int) and offer.gpus_per_node >= 1):
        return f"accepted gpus_per_node={offer.gpus_per_node!r}"
    if not all(isinstance(getattr(offer, n), str) for n in ("provider", "region", "instance_type", "accelerator")):
        return "accepted a non-text name"
    return None


def check_cache(directory: Path, content: Any, invalid: bool) -> str:
    """'' when a cache file is handled cleanly: ignored with a reason, or read with sane offers; and kept as is."""
    from providers import cache

    path = directory / "offers-lambda.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    before = path.read_bytes()
    entry, problem = cache.inspect(directory, "lambda")
    if path.read_bytes() != before:
        return "the cache file was rewritten by a read"
    if entry is not None and entry.offers:
        if invalid:
            return "accepted: a known-corrupt cache entry was used"
        for offer in entry.offers:
            found = offer_problem(offer)
            if found:
                return found
        return ""
    if entry is None and problem is None:
        return "a corrupt file ignored without a reason"
    return "" if problem is None or (problem.startswith("cache file ") and "\n" not in problem) else "bad reason text"


_LEDGER_COLUMNS = [("runs", "created_at"), ("runs", "updated_at"), ("runs", "ended_at"), ("runs", "state"),
                   ("runs", "expected_total_micro_usd"), ("runs", "egress_in_micro_usd"), ("runs", "supervisor_pid"),
                   ("runs", "heartbeat_at"), ("runs", "name"), ("placements", "micro_usd_per_hour"),
                   ("placements", "nodes"), ("placements", "gpus_per_node"), ("placements", "spot"),
                   ("attempts", "started_at"), ("attempts", "ended_at"), ("attempts", "handle"),
                   ("attempts", "rank"), ("attempts", "restarts"), ("events", "at"), ("events", "kind"),
                   ("events", "data")]
_LEDGER_VALUES: list[Any] = ["garbage", "", None, -1, 0, 1e308, "nan", "2026-13-45T00:00:00+00:00",
                             "2026-11-23T12:00:00", "{not json", "[]", '"string"', "null", 2 ** 62, 3.5, b"\x00\xff",
                             "2026-11-23T12:00:00+00:00"]


def check_ledger(path: Path, table: str, column: str, value: Any) -> str:
    """'' when every reader survives one mutated ledger cell (skipping and reporting what does not parse)."""
    from arbitrage import app as usecases
    from arbitrage import ledger as L
    from arbitrage.errors import LedgerError

    key = "id" if table == "runs" else "run_id"
    conn = sqlite3.connect(path)
    try:
        target = conn.execute(f"SELECT {key} FROM {table} LIMIT 1").fetchone()[0]
        conn.execute(f"UPDATE {table} SET {column}=? WHERE {key}=?", (value, target))
        conn.commit()
    except sqlite3.IntegrityError:
        return ""  # the schema itself refuses it (NOT NULL): nothing for a reader to survive
    finally:
        conn.close()
    with L.Ledger.open(path) as ledger:
        runs = ledger.runs()
        for run in runs:
            ledger.placements(run.id), ledger.events(run.id)
            usecases.run_summary(ledger, run, detail=True, now=NOW)
            ledger.spent_usd(run.id, NOW)
        with contextlib.suppress(LedgerError):
            ledger.run(str(target))
        ledger.check(NOW)
        from arbitrage.report.spend import spend_report

        spend_report(usecases.ledger_records(ledger, runs), "team", NOW, None)
    return ""


def fresh_ledger(path: Path) -> None:
    """A ledger with two finished runs and one running."""
    from arbitrage import ledger as L

    path.unlink(missing_ok=True)
    row = dict(provider="aws", region="us-east-1", zone=None, instance_type="p5.48xlarge", accelerator="H100",
               gpus_per_node=8, nodes=1, spot=False, usd_per_hour=98.32, expected_hours=10.0,
               expected_total_usd=983.2, compute_usd=983.2, preemption_usd=0.0, egress_in_usd=0.0,
               egress_out_usd=0.0, price_source="snapshot", price_as_of="2026-11-01", price_ref="fuzz")
    with L.Ledger.open(path) as ledger:
        for i in range(3):
            now = NOW + timedelta(hours=i)
            run_id = ledger.create_run(name=f"j{i}", spec_path="/j.yaml", spec_text="name: j", backend="skypilot",
                                       now=now, placements=[row], tags={"team": "t"}, budget_total_usd=None,
                                       budget_hourly_usd=None)
            n = ledger.start_attempt(run_id, 0, lambda k, r=run_id: f"gpuarb-{r}-a{k}", now)
            if i < 2:
                ledger.end_attempt(run_id, n, "succeeded", now + timedelta(hours=1), "done", kind="finished",
                                   run_state="succeeded")


_FACT_COLUMNS = [("gpus.csv", "train_throughput_vs_h100"), ("gpus.csv", "infer_throughput_vs_h100"),
                 ("gpus.csv", "memory_gb"), ("interconnect.csv", "gbps"), ("preemption.csv", "restart_minutes"),
                 ("egress.csv", "usd_per_unit"), ("scaling.csv", "efficiency_per_doubling")]
_ASSUMPTIONS = ["provision_minutes", "transfer_gbps_cross_cloud", "transfer_gbps_inter_region",
                "checkpoint_write_minutes", "default_restart_minutes"]
_FACT_VALUES = ["0", "-1", "-1000", "nan", "inf", "-inf", "1e309", "abc", "", "0.0", "1e-300", "5", "0.5", "1e6"]


def check_fact(config: Path, table: str, column: str, raw: str) -> str:
    """'' when a fact-table override with one cell set to ``raw`` loads with sane values or is refused with one
    line naming file, row and column (DataError), else why not."""
    import csv
    import io

    from arbitrage import facts as F
    from arbitrage.errors import DataError

    facts_dir = config / "facts"
    facts_dir.mkdir(parents=True, exist_ok=True)
    for old in facts_dir.iterdir():
        old.unlink()
    source = (ROOT / "arbitrage" / "data" / table).read_text(encoding="utf-8")
    if table == "assumptions.toml":
        start = source.index(f"[{column}]")
        end = source.index("\n", source.index("value =", start))
        value_text = raw if raw not in ("", "abc") else json.dumps(raw)
        (facts_dir / table).write_text(source[:start] + f"[{column}]\nvalue = {value_text}" + source[end:])
    else:
        rows = list(csv.reader(io.StringIO(source)))
        if column not in rows[0]:
            return ""
        rows[1][rows[0].index(column)] = raw
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        (facts_dir / table).write_text(buf.getvalue())
    saved = os.environ.get("GPUARB_CONFIG_DIR")
    os.environ["GPUARB_CONFIG_DIR"] = str(config)
    F.load_facts.cache_clear()
    try:
        try:
            facts = F.load_facts()
        except DataError as exc:
            text = str(exc)
            return "" if table in text and "\n" not in text else f"refusal not naming the table: {text[:100]!r}"
        value = _loaded_value(facts, table, column)
        if value is not None and not (math.isfinite(value) and (value > 0 or _zero_ok(table, column))
                                      and value >= 0):
            return f"accepted {table} {column} = {raw!r} (loaded as {value!r})"
        return ""
    finally:
        F.load_facts.cache_clear()
        if saved is None:
            os.environ.pop("GPUARB_CONFIG_DIR", None)
        else:
            os.environ["GPUARB_CONFIG_DIR"] = saved


def _zero_ok(table: str, column: str) -> bool:
    return (table, column) in {("interconnect.csv", "gbps"), ("preemption.csv", "restart_minutes"),
                               ("egress.csv", "usd_per_unit"), ("assumptions.toml", "checkpoint_write_minutes"),
                               ("assumptions.toml", "provision_minutes"),
                               ("assumptions.toml", "default_restart_minutes")}


def _loaded_value(facts: Any, table: str, column: str) -> float | None:
    if table == "assumptions.toml":
        return float(getattr(facts.assumptions, column))
    if table == "gpus.csv":
        first = next(iter(facts.gpus.values()))
        return float(getattr(first, column))
    if table == "interconnect.csv":
        return facts.interconnect_rules[0].gbps
    if table == "preemption.csv":
        return facts.preemption_rules[0].restart_minutes
    if table == "scaling.csv":
        return min(r.efficiency_per_doubling for r in facts.scaling_rules)
    return None


ONPREM = {"name": "lab-h100", "region": "onprem-us-west", "accelerator": "h100", "gpus_per_node": 8,
          "purchase_usd_per_node": 250000, "amortization_years": 3, "utilization": 0.5, "power_kw_per_node": 10,
          "usd_per_kwh": 0.10, "pue": 1.4, "hosting_usd_per_node_month": 2000, "interconnect": "infiniband",
          "interconnect_gbps": 3200}
_ONPREM_VALUES: list[Any] = [0, -1, 1e308, float("inf"), float("nan"), True, "x", None, [], 1.5, 10 ** 6, 1e-9, 64,
                             65, "!!binary", "infiniband"]


def check_onprem(config: Path, field_name: str, value: Any) -> str:
    """'' when an on-prem file with one field set to ``value`` gives sane offers or one ProviderError naming file,
    cluster and field, else why not."""
    import asyncio

    from arbitrage.facts import load_facts
    from providers.base import FetchContext, ProviderError
    from providers.onprem import ADAPTER, MAX_USD_PER_NODE_HOUR, MIN_USD_PER_NODE_HOUR

    cluster = {**ONPREM, field_name: value}
    text = yaml.safe_dump({"clusters": [cluster]}, allow_unicode=True)
    if value == "!!binary":
        text = text.replace("'!!binary'", "!!binary aGk=")
    (config / "onprem.yaml").write_text(text, encoding="utf-8")
    ctx = FetchContext(facts=load_facts(), now=NOW, env={"GPUARB_CONFIG_DIR": str(config)})
    try:
        offers = asyncio.run(ADAPTER.fetch(ctx))
    except ProviderError as exc:
        text = str(exc)
        return "" if "onprem.yaml" in text and "\n" not in text else f"refusal not naming the file: {text[:100]!r}"
    for offer in offers:
        price = offer.on_demand_usd_per_hour
        if price is None or not MIN_USD_PER_NODE_HOUR <= price <= MAX_USD_PER_NODE_HOUR:
            return f"accepted {field_name}={value!r}: ${price}/node-hour"
        if not 1 <= offer.gpus_per_node <= 64:
            return f"accepted {field_name}={value!r}: {offer.gpus_per_node} GPUs per node"
    return ""


# ---------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------

def fuzz(spec_cases: int, cli_count: int, state_cases: int, seed: int) -> list[Tally]:
    """Run every family; returns one tally per family."""
    from arbitrage.facts import load_facts

    rng = random.Random(seed)
    facts = load_facts()
    bases = base_specs()
    tallies: list[Tally] = []

    known = Tally("specs: known-invalid values (every field, every bundled spec)")
    for name, data in bases:
        for path, raw in SPEC_MUTATIONS:
            text = mutated_spec(data, path, raw)
            outcome, detail = _classify(lambda t=text: check_spec(t, True, facts))
            known.add(outcome, f"{name} {path}={raw[:40]} {detail}")
    tallies.append(known)

    structural = Tally("specs: whole-file attacks (alias bombs, nesting, recursion, tags, size)")
    for name, data in bases:
        for label, text in structural_specs(data):
            invalid = label not in ("two documents",)
            outcome, detail = _classify(lambda t=text, i=invalid: check_spec(t, i, facts))
            structural.add(outcome, f"{name} {label} {detail}")
    tallies.append(structural)

    randomized = Tally("specs: random values at random fields (valid or not)")
    for _ in range(spec_cases):
        text = random_spec(rng, bases)
        outcome, detail = _classify(lambda t=text: check_spec(t, False, facts))
        randomized.add(outcome, f"{text[-200:]!r} {detail}")
    noise = Tally("specs: YAML noise")
    for _ in range(max(spec_cases // 4, 1)):
        text = random_text(rng)
        outcome, detail = _classify(lambda t=text: check_spec(t, False, facts))
        noise.add(outcome, f"{text[:120]!r} {detail}")
    tallies += [randomized, noise]

    harness = CliHarness()
    cli = Tally("command lines: numeric options, --since, run ids, --out")
    for args, invalid, codes in cli_cases(rng, cli_count):
        outcome, detail = _classify(lambda a=args, i=invalid, c=codes: check_cli(harness, a, i, c))
        cli.add(outcome, f"{' '.join(args)[:120]} {detail}")
    tallies.append(cli)

    work = Path(tempfile.mkdtemp(prefix="gpuarb-fuzz-state-"))
    caches = Tally("state: offer cache files")
    for content, invalid in cache_docs(rng, state_cases):
        outcome, detail = _classify(lambda c=content, i=invalid: check_cache(work, c, i))
        caches.add(outcome, f"{json.dumps(content)[:120]} {detail}")
    tallies.append(caches)

    ledgers = Tally("state: run ledger cells")
    ledger_path = work / "ledger.sqlite3"
    for _ in range(max(state_cases // 2, 1)):
        table, column = rng.choice(_LEDGER_COLUMNS)
        value = rng.choice(_LEDGER_VALUES)
        fresh_ledger(ledger_path)
        outcome, detail = _classify(lambda t=table, c=column, v=value: check_ledger(ledger_path, t, c, v))
        ledgers.add(outcome, f"{table}.{column}={value!r} {detail}")
    tallies.append(ledgers)

    facts_tally = Tally("state: fact-table overrides and assumptions")
    cells = [*_FACT_COLUMNS, *(("assumptions.toml", a) for a in _ASSUMPTIONS)]
    for table, column in cells:
        for raw in _FACT_VALUES:
            outcome, detail = _classify(lambda t=table, c=column, r=raw: check_fact(work / "config", t, c, r))
            facts_tally.add(outcome, f"{table} {column}={raw!r} {detail}")
    tallies.append(facts_tally)

    onprem = Tally("state: on-prem cluster files")
    (work / "onprem").mkdir(exist_ok=True)
    for field_name in ONPREM:
        for value in _ONPREM_VALUES:
            outcome, detail = _classify(lambda f=field_name, v=value: check_onprem(work / "onprem", f, v))
            onprem.add(outcome, f"{field_name}={value!r} {detail}")
    tallies.append(onprem)
    return tallies


def run(spec_cases: int = 4000, cli_count: int = 600, state_cases: int = 1200, seed: int = 6) -> str:
    """The BENCHMARKS.md section: counts per family and in total, with the command and the cases behind them."""
    started = time.perf_counter()
    tallies = fuzz(spec_cases, cli_count, state_cases, seed)
    elapsed = time.perf_counter() - started
    lines = [
        "## Bad input (fuzzing)",
        "",
        f"`python -m bench --only fuzz` → `bench/fuzz.py` (seed {seed}; the hypothesis suite `tests/test_fuzz.py` "
        "runs the same oracles on a few hundred cases in CI). Each case is one job spec, command line or state file, "
        "run in-process against the bundled snapshot and a scripted backend; **clean** = a valid input accepted "
        "with sane values, or an invalid one refused the documented way (exit 2 / one line naming file, line and "
        f"field, or ignored with one warning); **hang** = past {CASE_SECONDS:g} s; **wrongly accepted** = a "
        "known-invalid input accepted, or an accepted one with a value outside the documented limits "
        f"(README \"Limits\"). {sum(t.tried for t in tallies):,} cases in {elapsed:.0f} s.",
        "",
        "| inputs | tried | clean | internal error | hang | wrongly accepted |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    total = dict.fromkeys(OUTCOMES, 0)
    for t in tallies:
        lines.append(f"| {t.family} | {t.tried:,} | {t.counts[CLEAN]:,} | {t.counts[INTERNAL]:,} | "
                     f"{t.counts[HANG]:,} | {t.counts[ACCEPTED]:,} |")
        for key in OUTCOMES:
            total[key] += t.counts[key]
    lines.append(f"| **all** | **{sum(total.values()):,}** | **{total[CLEAN]:,}** | **{total[INTERNAL]:,}** | "
                 f"**{total[HANG]:,}** | **{total[ACCEPTED]:,}** |")
    failing = [e for t in tallies for e in t.examples]
    if failing:
        lines += ["", "First failing cases:", "", *(f"- {e}" for e in failing[:15])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    print(run(*(int(a) for a in sys.argv[1:4])))

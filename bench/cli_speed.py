"""CLI start-up and planning speed: median wall time of fresh `gpuarb` processes, plus in-process planning."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = "jobspecs/llama3-8b-finetune.yaml"

COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("gpuarb --help", ["--help"], 0.3),
    ("gpuarb prices --gpu H100", ["prices", "--gpu", "H100"], None),
    (f"gpuarb plan {SPEC}", ["plan", SPEC], 0.5),
    (f"gpuarb plan {SPEC} --format json", ["plan", SPEC, "--format", "json"], 0.5),
]


def _gpuarb() -> list[str]:
    exe = shutil.which("gpuarb")
    return [exe] if exe else [sys.executable, "-m", "arbitrage.cli"]


def time_process(args: list[str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` fresh processes (after one warm-up run for the OS file cache)."""
    cmd = _gpuarb() + args
    with tempfile.TemporaryDirectory(prefix="gpuarb-bench-cache-") as cache, \
            tempfile.TemporaryDirectory(prefix="gpuarb-bench-data-") as data:
        # The bundled snapshot, an empty private cache and no run ledger (a new user's machine): no live fetch,
        # the same work on every machine.
        env = {**os.environ, "COLUMNS": "200", "GPUARB_SOURCE": "snapshot", "GPUARB_CACHE_DIR": cache,
               "GPUARB_DATA_DIR": data}
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False, env=env)
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False, env=env)
            samples.append(time.perf_counter() - start)
    return samples


def time_side_by_side(executables: dict[str, str], args: list[str], runs: int) -> dict[str, list[float]]:
    """Wall seconds of ``runs`` fresh processes of each labelled `gpuarb` executable, interleaved run by run, so a
    machine that slows down or speeds up meanwhile moves every column alike (this VM's speed drifts by ~30%)."""
    samples: dict[str, list[float]] = {label: [] for label in executables}
    with tempfile.TemporaryDirectory(prefix="gpuarb-bench-cache-") as cache, \
            tempfile.TemporaryDirectory(prefix="gpuarb-bench-data-") as data:
        env = {**os.environ, "COLUMNS": "200", "GPUARB_SOURCE": "snapshot", "GPUARB_CACHE_DIR": cache,
               "GPUARB_DATA_DIR": data}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # each install's own bytecode cache, as a user's
        for exe in executables.values():
            subprocess.run([exe, *args], cwd=ROOT, capture_output=True, check=False, env=env)
        for _ in range(runs):
            for label, exe in executables.items():
                start = time.perf_counter()
                subprocess.run([exe, *args], cwd=ROOT, capture_output=True, check=False, env=env)
                samples[label].append(time.perf_counter() - start)
    return samples


def side_by_side_lines(runs: int) -> list[str]:
    """With GPUARB_BENCH_REFERENCES="label=/path/to/gpuarb,..." (other installs, e.g. fresh venvs of older
    commits) and this tree's `gpuarb` on PATH: `gpuarb plan` of each, interleaved; nothing without it."""
    given = os.environ.get("GPUARB_BENCH_REFERENCES", "")
    executables = dict(item.split("=", 1) for item in given.split(",") if "=" in item)
    here = shutil.which("gpuarb")
    if not executables or here is None:
        return []
    executables["this tree"] = here
    samples = time_side_by_side(executables, ["plan", SPEC], runs)
    lines = ["", f"Side by side (`GPUARB_BENCH_REFERENCES`: regular installs in fresh venvs, {runs} runs each, "
             f"interleaved): `gpuarb plan {SPEC}`.", "", "| install | median s | min s | max s |", "|---|---|---|---|"]
    for label, values in samples.items():
        lines.append(f"| {label} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} |")
    return lines


def time_in_process(runs: int) -> tuple[float, float, int]:
    """(median seconds to load the snapshot, median seconds to plan, offers) inside one process."""
    from arbitrage import app

    facts = app.load_facts()
    spec = app.read_spec(str(ROOT / SPEC), facts)
    loads, plans, offers = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        offers = app.load_snapshot(facts)
        t1 = time.perf_counter()
        app.plan_offers(spec, offers, facts, datetime.now(timezone.utc))
        t2 = time.perf_counter()
        loads.append(t1 - t0)
        plans.append(t2 - t1)
    return statistics.median(loads), statistics.median(plans), len(offers)


def run(runs: int = 7) -> str:
    """Markdown section with the results."""
    lines = [
        "## CLI speed",
        "",
        f"`python -m bench --only cli` → `bench/cli_speed.py`. Median wall time of {runs} fresh `gpuarb` processes "
        "each (one warm-up run first), prices and plans over the whole bundled snapshot (`GPUARB_SOURCE=snapshot`, "
        "an empty cache and no run ledger, as on a new machine: no live fetch).",
        "",
        "| command | median s | min s | max s | target s | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for label, args, target in COMMANDS:
        samples = time_process(args, runs)
        median = statistics.median(samples)
        verdict = "-" if target is None else ("ok" if median < target else "MISSED")
        lines.append(f"| `{label}` | {median:.3f} | {min(samples):.3f} | {max(samples):.3f} | "
                     f"{'-' if target is None else target} | {verdict} |")
    load_s, plan_s, offers = time_in_process(runs)
    lines += [
        "",
        f"In-process (median of {runs}): loading the snapshot ({offers} offers) takes {load_s * 1000:.1f} ms, "
        f"planning `{SPEC}` over it takes {plan_s * 1000:.1f} ms. The rest of a `plan` process is Python start-up "
        "and imports (typer, pydantic, PyYAML, and ~75 dataclasses of our own).",
    ]
    lines += side_by_side_lines(runs)
    return "\n".join(lines) + "\n"

"""Run the benchmarks and rewrite BENCHMARKS.md: `python -m bench [--runs N] [--only quality,spot,...]`.

Sections: quality (plan quality vs baselines and the brute-force optimum), spot (spot with deadlines, simulated),
cli (gpuarb start-up and planning speed), sky (SkyPilot offline, for comparison), scaling (planner on 10k-1M
offers), refresh (concurrent live refresh), realistic (expert checks on bench/jobs/), fuzz (malformed specs,
command lines and state files), server (the team server: 200 submissions, a replica killed, two replicas).
With --only, the named sections are replaced in the existing file and the others kept.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from arbitrage.plural import noun

ROOT = Path(__file__).resolve().parent.parent


def _sections(args: argparse.Namespace) -> dict[str, tuple[str, Callable[[], str]]]:
    """Section key -> (its heading, how to produce it); imports stay lazy so --only runs only what it names."""

    def quality() -> str:
        from bench import quality
        return quality.run(args.jobs, args.seed)

    def spot() -> str:
        from bench import spot
        return spot.run(args.samples, args.seed)

    def cli() -> str:
        from bench import cli_speed
        return cli_speed.run(args.runs)

    def sky() -> str:
        from bench import sky_speed
        return sky_speed.run(args.sky_cold_runs, args.sky_warm_runs)

    def scaling() -> str:
        from bench import scaling
        return scaling.run(seed=args.seed)

    def refresh() -> str:
        from bench import refresh
        return refresh.run(3)

    def realistic() -> str:
        from bench import realistic
        return realistic.run()

    def fuzz() -> str:
        from bench import fuzz
        return fuzz.run(seed=args.seed)

    def server() -> str:
        from bench import server
        return server.run()

    return {
        "quality": ("## Plan quality", quality),
        "spot": ("## Spot with deadlines", spot),
        "cli": ("## CLI speed", cli),
        "sky": ("## SkyPilot, offline, for comparison", sky),
        "scaling": ("## Planner scaling", scaling),
        "refresh": ("## Live refresh: six providers, concurrently", refresh),
        "realistic": ("## Realistic jobs", realistic),
        "fuzz": ("## Bad input (fuzzing)", fuzz),
        "server": ("## Team server under load and faults", server),
    }


def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"`{commit}`" + (" with uncommitted changes" if dirty else "")


def machine() -> str:
    """CPU model, cores, memory, OS and Python of this machine, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
                  .split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpu}, {cores} CPUs{memory}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def _split(text: str) -> tuple[str, dict[str, str]]:
    """(preamble, heading -> section text) of an existing BENCHMARKS.md."""
    preamble, sections, current = [], {}, None
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            current = line.strip()
            sections[current] = ""
        if current is None:
            preamble.append(line)
        else:
            sections[current] += line
    return "".join(preamble), sections


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="",
                        help="comma-separated sections: quality,spot,cli,sky,scaling,refresh,realistic,fuzz,server")
    parser.add_argument("--runs", type=int, default=7, help="process runs per timed gpuarb command")
    parser.add_argument("--jobs", type=int, default=40, help="jobs in the plan-quality suite")
    parser.add_argument("--samples", type=int, default=8, help="trace windows per trace and job in the spot sim")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--sky-cold-runs", type=int, default=3)
    parser.add_argument("--sky-warm-runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    sections = _sections(args)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or list(sections)
    unknown = [s for s in wanted if s not in sections]
    if unknown:
        parser.error(f"unknown {noun(len(unknown), 'section')} {', '.join(unknown)}; choose from {', '.join(sections)}")

    started = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    produced: dict[str, str] = {}
    timings: list[str] = []
    for key in wanted:
        t0 = time.perf_counter()
        produced[sections[key][0]] = sections[key][1]().rstrip("\n") + "\n"
        timings.append(f"{key} {time.perf_counter() - t0:.0f} s")
        print(produced[sections[key][0]], flush=True)
    elapsed = time.perf_counter() - started

    full = set(wanted) == set(sections)
    old: dict[str, str] = {}
    if not full and args.out.exists():
        _, old = _split(args.out.read_text(encoding="utf-8"))
    command = "python -m bench" + ("" if full else f" --only {','.join(wanted)}")
    header = (
        "# Benchmarks\n\n"
        "Regenerate everything with `python -m bench` from the repository root (after `pip install -e '.[test]'`; "
        "the duration of the last run is below, most of it SkyPilot's start-up), or one section with "
        "`python -m bench --only <section>` (quality, spot, cli, sky, scaling, refresh, realistic, fuzz, server). Each "
        "section names the command and the code behind its tables.\n\n"
        f"Last run: `{command}` on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, commit "
        f"{_git_commit()}; {machine()}; load average {load:.1f} at the start; took {elapsed:.0f} s "
        f"({', '.join(timings)})" + ("." if full else "; the other sections are from an earlier run.") + "\n\n"
    )
    body = []
    for heading, _ in sections.values():
        if heading in produced:
            body.append(produced[heading])
        elif heading in old:
            body.append(old[heading].rstrip("\n") + "\n")
    args.out.write_text(header + "\n".join(body), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

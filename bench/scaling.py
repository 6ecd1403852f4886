"""Planner scaling: plan() over synthetic catalogs of 10k, 100k and 1M offers, time and peak memory.

Each size runs in a fresh subprocess (`python -m bench.scaling --child N`) so peak RSS is that size's alone.
The catalog repeats the bundled snapshot's offers under new region names with prices jittered +-20% (seeded),
so the GPU mix and the share of offers a job can use stay realistic.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPEC = "jobspecs/llama3-8b-finetune.yaml"
SIZES = (10_000, 100_000, 1_000_000)


def _rss_mib() -> float:
    """Peak resident memory of this process so far, MiB.

    VmHWM from /proc (reset by exec); ru_maxrss elsewhere, which on Linux keeps the parent's peak across exec.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_offers(count: int, seed: int) -> list[Any]:
    """``count`` offers built from the snapshot's, each copy in its own region, prices jittered."""
    from arbitrage import app
    from arbitrage.offers import Offer

    base = app.load_snapshot(app.load_facts())
    rng = random.Random(seed)
    offers = []
    for i in range(count):
        o = base[i % len(base)]
        copy = i // len(base)
        factor = rng.uniform(0.8, 1.2)
        offers.append(Offer(
            o.provider, f"{o.region}-s{copy}" if copy else o.region, o.zone, o.instance_type, o.accelerator,
            o.gpus_per_node, o.gpu_memory_gb, o.vcpus, o.ram_gb,
            None if o.on_demand_usd_per_hour is None else o.on_demand_usd_per_hour * factor,
            None if o.spot_usd_per_hour is None else o.spot_usd_per_hour * factor,
            o.interconnect, o.interconnect_gbps, o.source, o.as_of, o.price_ref, o.gpu_model))
    return offers


def child(count: int, seed: int, profile: bool) -> dict[str, Any]:
    """Build a catalog of ``count`` offers and plan the example job over it; numbers for the parent."""
    from arbitrage import app

    facts = app.load_facts()
    spec = app.read_spec(str(ROOT / SPEC), facts)
    now = datetime(2026, 11, 23, tzinfo=timezone.utc)
    rss_start = _rss_mib()
    t0 = time.perf_counter()
    offers = synthetic_offers(count, seed)
    t1 = time.perf_counter()
    rss_catalog = _rss_mib()
    result: dict[str, Any] = {"offers": len(offers), "build_s": t1 - t0, "rss_start_mib": rss_start,
                              "rss_catalog_mib": rss_catalog}
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        app.plan_offers(spec, offers, facts, now)
        prof.disable()
        stats = pstats.Stats(prof)
        total = stats.total_tt  # type: ignore[attr-defined]
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:6]  # type: ignore[attr-defined]
        result["profile"] = [(f"{Path(f).name}:{line}({name})", tt / total) for (f, line, name), (_, _, tt, _, _)
                             in rows]
        return result
    t2, c2 = time.perf_counter(), time.process_time()
    planned = app.plan_offers(spec, offers, facts, now)
    t3, c3 = time.perf_counter(), time.process_time()
    result.update(plan_s=t3 - t2, plan_cpu_s=c3 - c2, rss_peak_mib=_rss_mib(), candidates=planned.candidates,
                  feasible=len(planned.placements),
                  best=None if planned.best is None else round(planned.best.total_usd, 2))
    return result


def _run_child(count: int, seed: int, profile: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.scaling", "--child", str(count), "--seed", str(seed)]
    if profile:
        cmd.append("--profile")
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run(sizes: tuple[int, ...] = SIZES, seed: int = 6) -> str:
    """Markdown section: one subprocess per size, plus a profile of the middle size."""
    lines = [
        "## Planner scaling",
        "",
        f"`python -m bench --only scaling` → `bench/scaling.py`: `plan()` of `{SPEC}` (H100:8 or A100-80GB:8, spot "
        "auto, 2 TB in S3) over synthetic catalogs: the bundled snapshot's offers repeated under new region names "
        f"with prices jittered ±20% (seed {seed}). One fresh process per size; peak RSS is that process's "
        "high-water mark (`VmHWM`; Python and gpuarb's imports included).",
        "",
        "| offers | build catalog s | plan wall s | plan CPU s | candidates costed | feasible | RSS with catalog MiB | "
        "peak RSS MiB | plan adds MiB | CPU µs per candidate |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for count in sizes:
        r = _run_child(count, seed)
        lines.append(
            f"| {r['offers']:,} | {r['build_s']:.2f} | {r['plan_s']:.2f} | {r['plan_cpu_s']:.2f} | "
            f"{r['candidates']:,} | {r['feasible']:,} | {r['rss_catalog_mib']:.0f} | {r['rss_peak_mib']:.0f} | "
            f"{r['rss_peak_mib'] - r['rss_catalog_mib']:.0f} | "
            f"{1e6 * r['plan_cpu_s'] / max(1, r['candidates']):.1f} |")
    middle = sizes[len(sizes) // 2]
    prof = _run_child(middle, seed, profile=True)["profile"]
    lines += [
        "",
        f"Where `plan()` spends its time at {middle:,} offers (cProfile, share of total, own time): "
        + ", ".join(f"`{name}` {100 * share:.0f}%" for name, share in prof) + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", type=int, help="internal: measure one size and print JSON")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.seed, args.profile)))
    else:
        print(run(seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

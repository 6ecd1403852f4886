#!/usr/bin/env python3
"""Regenerate the bundled offer snapshot (arbitrage/data/snapshot.csv + snapshot.json).

Inputs: the SkyPilot v8 catalogs in ../shared/catalog-snapshot (AWS, GCP, Lambda, Nebius, Hyperbolic)
and the hand-built, cited rows in data/price-sources/*.csv (Azure, RunPod, Vast.ai, CoreWeave).
Output is deterministic (sorted, no timestamps), so a rebuild on unchanged inputs changes nothing.

    python scripts/build_snapshot.py [--shared ../shared/catalog-snapshot] [--check]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arbitrage.facts import load_gpus  # noqa: E402
from providers.skypilot_catalog import (  # noqa: E402
    SNAPSHOT_COLUMNS,
    convert_gcp,
    convert_manual,
    convert_simple,
    read_csv,
)

# Commits of skypilot-org/skypilot-catalog the shared copy was read from (see its README).
# The catalog files carry no date; "undated" is the honest as-of.
SHARED_SOURCES = {
    "aws": "00148f2af3672e2229b4f7bf8157d5a3f36e3c35",
    "gcp": "006059e0f18acb1341e22a27751e9f80df6ba92f",
    "lambda": "0f4070387edc953d7004cff197940e1918a1d6aa",
    "nebius": "0082b0435f3912ae4c566856b272455cc78f4f61",
    "hyperbolic": "0082b0435f3912ae4c566856b272455cc78f4f61",
}
OUT_CSV = ROOT / "arbitrage" / "data" / "snapshot.csv"
OUT_META = ROOT / "arbitrage" / "data" / "snapshot.json"


def build(shared: Path, manual_dir: Path) -> tuple[str, str]:
    """Return (snapshot csv text, metadata json text)."""
    known_gpus = set(load_gpus())
    rows, sources, dropped = [], [], {}
    for provider, commit in SHARED_SOURCES.items():
        path = shared / provider / "vms.csv"
        ref = f"skypilot-catalog v8 {provider}/vms.csv@{commit[:8]}"
        raw = read_csv(path)
        converted = convert_gcp(raw, "undated", ref) if provider == "gcp" else convert_simple(
            provider, raw, "undated", ref)
        rows += converted
        sources.append({"provider": provider, "file": f"catalog-snapshot/{provider}/vms.csv",
                        "origin": f"skypilot-org/skypilot-catalog catalogs/v8/{provider}/vms.csv",
                        "commit": commit, "as_of": "undated", "rows": len(converted)})
    for path in sorted(manual_dir.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            converted = convert_manual(csv.DictReader(fh), f"data/price-sources/{path.name}")
        rows += converted
        as_ofs = sorted({r["as_of"] for r in converted})
        sources.append({"provider": ",".join(sorted({r["provider"] for r in converted})),
                        "file": f"data/price-sources/{path.name}", "origin": "hand-built, cited per row",
                        "as_of": f"{as_ofs[0]}..{as_ofs[-1]}" if as_ofs else "", "rows": len(converted)})
    kept = []
    for r in rows:
        if r["accelerator"] in known_gpus:
            kept.append(r)
        else:
            dropped[r["accelerator"]] = dropped.get(r["accelerator"], 0) + 1
    kept.sort(key=lambda r: (r["provider"], r["accelerator"], r["instance_type"], r["region"], r["zone"]))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SNAPSHOT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(kept)
    meta = {
        "description": "gpuarb bundled offer snapshot: USD per hour per instance",
        "built_by": "scripts/build_snapshot.py",
        "offers": len(kept),
        "dropped_without_gpu_facts": dict(sorted(dropped.items())),
        "sources": sources,
    }
    return buf.getvalue(), json.dumps(meta, indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "catalog-snapshot")
    parser.add_argument("--manual", type=Path, default=ROOT / "data" / "price-sources")
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed snapshot is stale")
    args = parser.parse_args()
    if not (args.shared / "aws" / "vms.csv").is_file():
        print(f"build_snapshot: {args.shared}: no SkyPilot catalog here (expected aws/vms.csv)", file=sys.stderr)
        return 2
    try:
        csv_text, meta_text = build(args.shared, args.manual)
    except (OSError, ValueError, KeyError) as exc:
        print(f"build_snapshot: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = OUT_CSV.read_text(encoding="utf-8") != csv_text or OUT_META.read_text(encoding="utf-8") != meta_text
        print("snapshot is stale: run scripts/build_snapshot.py" if stale else "snapshot is up to date")
        return 1 if stale else 0
    OUT_CSV.write_text(csv_text, encoding="utf-8")
    OUT_META.write_text(meta_text, encoding="utf-8")
    print(f"wrote {OUT_CSV.relative_to(ROOT)} ({csv_text.count(chr(10)) - 1} offers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Derive arbitrage/data/spot_advisor.csv (the bundled, dated AWS Spot Instance Advisor bands) from a public copy.

The Advisor's feed, https://spot-bid-advisor.s3.amazonaws.com/spot-advisor-data.json, is public and carries no
date. A dated copy is kept in the public repository alexei-led/spotinfo (``internal/spot/data/spot-advisor-data.json``,
refreshed by its Makefile's ``update-data``); its commit date is the copy's as-of date (an upper bound on when it
was fetched). Only the GPU families' Linux rows are kept: region, instance type, interruption band, savings.

    python scripts/build_spot_advisor.py PATH [--out arbitrage/data/spot_advisor.csv] [--check]

PATH is a checkout or bare clone of alexei-led/spotinfo, or a spot-advisor-data.json you downloaded (then give
``--as-of YYYY-MM-DD`` and ``--ref`` yourself). ``--check`` exits 1 when the committed table differs.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "arbitrage" / "data" / "spot_advisor.csv"
FEED = "https://spot-bid-advisor.s3.amazonaws.com/spot-advisor-data.json"
IN_REPO = "internal/spot/data/spot-advisor-data.json"
# Instance families with NVIDIA/AMD GPUs (p*, g*, gr*), as named before the '.' of the instance type.
GPU_FAMILY = re.compile(r"^(p\d|g\d|gr\d)")
COLUMNS = ("region", "instance_type", "band", "frequency", "savings_percent", "as_of", "source")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def read_source(path: Path, as_of: str | None, ref: str | None) -> tuple[dict[str, Any], str, str]:
    """(feed payload, as-of date, reference) from a spotinfo clone or a downloaded JSON file."""
    if path.is_file():
        if not as_of or not ref:
            raise SystemExit("a downloaded JSON file needs --as-of and --ref")
        return json.loads(path.read_text(encoding="utf-8")), as_of, ref
    commit, date = _git(path, "log", "-1", "--format=%H %cs", "--", IN_REPO).split()
    payload = json.loads(_git(path, "show", f"{commit}:{IN_REPO}"))
    return payload, as_of or date, ref or f"alexei-led/spotinfo@{commit[:7]} {IN_REPO}"


def rows(payload: dict[str, Any], as_of: str, ref: str) -> list[dict[str, str]]:
    """The GPU families' Linux rows, sorted by region and instance type."""
    labels = {int(r["index"]): str(r["label"]) for r in payload["ranges"]}
    source = f"AWS Spot Instance Advisor feed (spot-advisor-data.json) via {ref.split()[0]}"
    out = []
    for region, by_os in payload["spot_advisor"].items():
        for instance_type, entry in (by_os.get("Linux") or {}).items():
            if not GPU_FAMILY.match(instance_type.split(".")[0]):
                continue
            band = int(entry["r"])
            out.append({"region": region, "instance_type": instance_type, "band": str(band),
                        "frequency": labels[band], "savings_percent": str(int(entry["s"])), "as_of": as_of,
                        "source": source})
    return sorted(out, key=lambda r: (r["region"], r["instance_type"]))


def render(table: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="clone of alexei-led/spotinfo, or a spot-advisor-data.json")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--as-of", help="date of a downloaded JSON file (YYYY-MM-DD)")
    parser.add_argument("--ref", help="where a downloaded JSON file came from")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out differs from what would be written")
    args = parser.parse_args()
    payload, as_of, ref = read_source(args.source, args.as_of, args.ref)
    text = render(rows(payload, as_of, ref))
    if args.check:
        same = args.out.is_file() and args.out.read_text(encoding="utf-8") == text
        print(f"{args.out}: {'up to date' if same else 'STALE'}")
        return 0 if same else 1
    args.out.write_text(text, encoding="utf-8")
    print(f"{args.out}: {text.count(chr(10)) - 1} rows as of {as_of} ({ref})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

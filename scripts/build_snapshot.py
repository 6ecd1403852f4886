#!/usr/bin/env python3
"""Regenerate the bundled offer snapshot (arbitrage/data/snapshot.csv + snapshot.json).

Inputs: the SkyPilot v8 catalogs in ../shared/catalog-snapshot (AWS, Lambda; GCP for zones only), the dated GCP list
prices in data/price-sources/gcp-gpu-list.csv, and the hand-built, cited rows in data/price-sources/*.csv (Azure,
RunPod, Vast.ai, CoreWeave, Nebius, AWS g-family). Every row gets a location (arbitrage/data/regions.csv) and a
date; a row whose date is an estimate says so (``as_of_estimated``) and snapshot.json says how it was derived.
Output is deterministic (sorted, no timestamps), so a rebuild on unchanged inputs changes nothing.

    python scripts/build_snapshot.py [--shared ../shared/catalog-snapshot] [--check]

The price quality gate (providers/quality.py) runs over the rows before they are written: what it sets aside goes to
arbitrage/data/snapshot_quarantine.csv, with counts in snapshot.json. This script's own check is the GCP one: no GCP
on-demand price far under the same shape's price in its other regions (the build fails if there is one).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arbitrage.errors import DataError  # noqa: E402
from arbitrage.facts import load_facts, load_gpus, load_regions  # noqa: E402
from arbitrage.geo import continent_of, locate  # noqa: E402
from providers.quality import QUARANTINE_COLUMNS, gate_rows  # noqa: E402
from providers.skypilot_catalog import (  # noqa: E402
    SNAPSHOT_COLUMNS,
    apply_gcp_list,
    convert_gcp,
    convert_manual,
    convert_simple,
    read_csv,
    regional_outliers,
)

# The SkyPilot catalog files carry no date (see ../shared/catalog-snapshot/README.md): each source's as-of is an
# estimate from a dated cross-check of its prices, and says so.
SHARED_SOURCES: dict[str, dict[str, str]] = {
    "aws": {
        "commit": "00148f2af3672e2229b4f7bf8157d5a3f36e3c35", "as_of": "2026-11-09",
        "basis": "catalog undated; its us-east-1 on-demand prices for p4d.24xlarge (21.957642), p4de.24xlarge "
                 "(27.44705) and p5.48xlarge (55.04) equal the AWS Price List figures retrieved 2026-11-09 "
                 "(raw.githubusercontent.com/datareceipts/data-receipts/main/109-gpu-pricing/hyperscalers.json); "
                 "spot prices are per-zone samples of unknown date, at least as old as the catalog",
    },
    "gcp": {
        "commit": "006059e0f18acb1341e22a27751e9f80df6ba92f", "as_of": "",
        "basis": "used for zones only: which zones offer each shape. Prices come from data/price-sources/"
                 "gcp-gpu-list.csv (Cloud Billing Catalog, dated per row), because this catalog prices H100, "
                 "H100-MEGA, A100-80GB, H200, B200 and some A100 regions at Flex-start (DWS) rates, about half of list",
    },
    "lambda": {
        "commit": "0f4070387edc953d7004cff197940e1918a1d6aa", "as_of": "2026-09-25",
        "basis": "catalog undated; its prices (1x H100 SXM 4.29, 8x H100 3.99/GPU, 1x A100 1.99, 1x A10 1.29, "
                 "1x B200 6.99, GH200 2.29, 8x A100-80GB 2.79/GPU) equal lambda.ai/pricing as read 2026-09-25 "
                 "(tgarg01/silybench-data prices/gpu_hourly.yaml@045df3bf)",
    },
}
# Catalog files the snapshot no longer takes rows from, and why (recorded in snapshot.json).
SHARED_NOT_USED = {
    "nebius": "rebuilt in data/price-sources/nebius.csv: the catalog's H100/H200/B200 prices are below "
              "nebius.com/prices as read 2026-09-25 (catalog not auto-refreshed)",
    "hyperbolic": "dropped: every row is in region 'default', which is not a place; no located Hyperbolic offer "
                  "was found",
}
GCP_LIST = "gcp-gpu-list.csv"
# Shapes whose catalog on-demand figure is not a price anyone can pay on-demand (a build rule, cited).
ON_DEMAND_NOT_SOLD: dict[tuple[str, str], str] = {
    ("aws", "p5e.48xlarge"): "p5e.48xlarge is sold as Capacity Blocks and Spot; the Price List has no On-Demand "
                             "entry (SkyPilot's catalog Price is empty for every p5e row)",
}
OUT_CSV = ROOT / "arbitrage" / "data" / "snapshot.csv"
OUT_META = ROOT / "arbitrage" / "data" / "snapshot.json"
OUT_QUARANTINE = ROOT / "arbitrage" / "data" / "snapshot_quarantine.csv"


def _gcp_rows(shared: Path, manual_dir: Path) -> tuple[list[dict[str, str]], dict[str, object]]:
    """GCP offers: SkyPilot's zones priced from the dated list; raises ValueError if the outlier check fails."""
    sky = convert_gcp(read_csv(shared / "gcp" / "vms.csv"), "", "")
    with (manual_dir / GCP_LIST).open(newline="", encoding="utf-8") as fh:
        rows, changes = apply_gcp_list(sky, csv.DictReader(fh), f"data/price-sources/{GCP_LIST}")
    outliers = regional_outliers(rows, "gcp")
    if outliers:
        shown = ", ".join(f"{r['instance_type']} {r['zone'] or r['region']} ({ratio:.2f}x median)"
                          for r, ratio in outliers[:5])
        raise ValueError(f"GCP on-demand prices far under the same shape elsewhere: {shown}")
    per_shape: dict[str, Counter[str]] = {}
    for c in changes:
        per_shape.setdefault(c["instance_type"], Counter())[c["action"].split(" (")[0].split(":")[0]] += 1
    report = {
        "skypilot_rows": len(sky),
        "would_have_been_flagged": len(regional_outliers(sky, "gcp")),
        "actions": dict(sorted(Counter(c["action"] for c in changes).items())),
        "per_shape": {shape: dict(sorted(counts.items())) for shape, counts in sorted(per_shape.items())},
    }
    return rows, report


def _csv_text(rows: list[dict[str, str]], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def build(shared: Path, manual_dir: Path) -> tuple[str, str, str]:
    """Return (snapshot csv text, metadata json text, quarantine csv text)."""
    known_gpus = set(load_gpus())
    regions = load_regions()
    rows, sources, dropped = [], [], {}
    for provider, info in SHARED_SOURCES.items():
        commit = info["commit"]
        ref = f"skypilot-catalog v8 {provider}/vms.csv@{commit[:8]}"
        entry: dict[str, object] = {"provider": provider, "file": f"catalog-snapshot/{provider}/vms.csv",
                                    "origin": f"skypilot-org/skypilot-catalog catalogs/v8/{provider}/vms.csv",
                                    "commit": commit, "as_of_basis": info["basis"]}
        if provider == "gcp":
            converted, entry["gcp_list_correction"] = _gcp_rows(shared, manual_dir)
            entry.update(as_of="per row (data/price-sources/gcp-gpu-list.csv)", as_of_estimated=False)
        else:
            converted = convert_simple(provider, read_csv(shared / provider / "vms.csv"), info["as_of"], ref)
            for r in converted:
                r["as_of_estimated"] = "true"
            entry.update(as_of=info["as_of"], as_of_estimated=True)
        entry["rows"] = len(converted)
        rows += converted
        sources.append(entry)
    for path in sorted(manual_dir.glob("*.csv")):
        if path.name == GCP_LIST:
            continue  # list prices applied to GCP's zones above, not offers of their own
        with path.open(newline="", encoding="utf-8") as fh:
            converted = convert_manual(csv.DictReader(fh), f"data/price-sources/{path.name}")
        rows += converted
        as_ofs = sorted({r["as_of"] for r in converted})
        sources.append({"provider": ",".join(sorted({r["provider"] for r in converted})),
                        "file": f"data/price-sources/{path.name}", "origin": "hand-built, cited per row",
                        "as_of": f"{as_ofs[0]}..{as_ofs[-1]}" if as_ofs else "",
                        "as_of_estimated_rows": sum(1 for r in converted if r["as_of_estimated"]),
                        "rows": len(converted)})
    kept: list[dict[str, str]] = []
    not_sold: Counter[tuple[str, str]] = Counter()
    unlocated: list[str] = []
    for r in rows:
        if r["accelerator"] not in known_gpus:
            dropped[r["accelerator"]] = dropped.get(r["accelerator"], 0) + 1
            continue
        if (r["provider"], r["instance_type"]) in ON_DEMAND_NOT_SOLD and r["on_demand_usd_per_hour"]:
            not_sold[(r["provider"], r["instance_type"])] += 1
            r["on_demand_usd_per_hour"] = ""
            if not r["spot_usd_per_hour"]:
                continue
        if r["country"]:
            r["continent"] = continent_of(r["country"])
        else:
            r["country"], r["continent"] = locate(regions, r["provider"], r["region"], r["zone"] or None)
        if not r["continent"]:
            unlocated.append(f"{r['provider']} {r['region']} {r['zone']}".strip())
        kept.append(r)
    if unlocated:
        raise ValueError(f"arbitrage/data/regions.csv does not place: {', '.join(sorted(set(unlocated))[:8])}")
    kept.sort(key=lambda r: (r["provider"], r["accelerator"], r["instance_type"], r["region"], r["zone"]))
    kept, aside = gate_rows(kept, load_facts())
    meta = {
        "description": "gpuarb bundled offer snapshot: USD per hour per instance",
        "built_by": "scripts/build_snapshot.py",
        "offers": len(kept),
        "offers_by_provider": dict(sorted(Counter(r["provider"] for r in kept).items())),
        "as_of_estimated_offers": sum(1 for r in kept if r["as_of_estimated"]),
        "dropped_without_gpu_facts": dict(sorted(dropped.items())),
        "on_demand_not_sold": {f"{p} {i}": {"rows": not_sold[(p, i)], "reason": why}
                               for (p, i), why in sorted(ON_DEMAND_NOT_SOLD.items())},
        "catalogs_not_used": SHARED_NOT_USED,
        "quality_gate": {"rules": "providers/quality.py", "set_aside_in": "arbitrage/data/snapshot_quarantine.csv",
                         "quarantined": dict(sorted(Counter(r["provider"] for r in aside).items()))},
        "sources": sources,
    }
    return (_csv_text(kept, SNAPSHOT_COLUMNS), json.dumps(meta, indent=2, sort_keys=True) + "\n",
            _csv_text(aside, (*SNAPSHOT_COLUMNS, *QUARANTINE_COLUMNS)))


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
        csv_text, meta_text, quarantine_text = build(args.shared, args.manual)
    except (OSError, ValueError, KeyError, DataError) as exc:
        print(f"build_snapshot: {exc}", file=sys.stderr)
        return 2
    outputs = {OUT_CSV: csv_text, OUT_META: meta_text, OUT_QUARANTINE: quarantine_text}
    if args.check:
        stale = any(not path.is_file() or path.read_text(encoding="utf-8") != text for path, text in outputs.items())
        print("snapshot is stale: run scripts/build_snapshot.py" if stale else "snapshot is up to date")
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {OUT_CSV.relative_to(ROOT)} ({csv_text.count(chr(10)) - 1} offers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

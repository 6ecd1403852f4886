"""Convert SkyPilot catalog files (schema v8 ``vms.csv``) into snapshot rows.

Pure functions over rows: used by ``scripts/build_snapshot.py`` to regenerate the bundled snapshot
from ``../shared/catalog-snapshot`` and by the tests on small inline samples.
"""

from __future__ import annotations

import ast
import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

# Columns of the bundled snapshot (USD per hour per instance; as_of + price_ref say where from). country/continent:
# where the offer is (arbitrage/geo.py); as_of_estimated: "true" when the source carries no date (snapshot.json says
# how it was derived); available / host_reliability: marketplace offers only (how many listed, host score 0-1).
SNAPSHOT_COLUMNS = (
    "provider", "region", "zone", "instance_type", "accelerator", "gpus_per_node", "gpu_memory_gb",
    "vcpus", "ram_gb", "on_demand_usd_per_hour", "spot_usd_per_hour", "as_of", "price_ref",
    "country", "continent", "as_of_estimated", "available", "host_reliability",
)

# GCP prices host VM and GPUs in separate rows; SkyPilot pairs them with this fixed map
# (sky/catalog/gcp_catalog.py::_ACC_INSTANCE_TYPE_DICTS). (accelerator, count) -> host type.
GCP_HOST_FOR: dict[tuple[str, int], str] = {
    **{("A100", n): f"a2-highgpu-{n}g" for n in (1, 2, 4, 8)},
    ("A100", 16): "a2-megagpu-16g",
    **{("A100-80GB", n): f"a2-ultragpu-{n}g" for n in (1, 2, 4, 8)},
    **{("H100", n): f"a3-highgpu-{n}g" for n in (1, 2, 4, 8)},
    ("H100-MEGA", 8): "a3-megagpu-8g",
    ("H200", 8): "a3-ultragpu-8g",
    ("B200", 8): "a4-highgpu-8g",
}

Row = dict[str, str]


def read_csv(path: Path) -> list[Row]:
    """Rows of a CSV file keyed by header (CRLF files included)."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _price(text: str | None) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    value = float(text)
    return value if value > 0 else None


def _num(text: str | None) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


def gpu_memory_gb(gpu_info: str, provider: str) -> float | None:
    """Per-GPU memory from SkyPilot's GpuInfo column (a Python-literal dict), rounded to GiB."""
    if not gpu_info.strip():
        return None
    try:
        info = ast.literal_eval(gpu_info)
        mib = info["Gpus"][0]["MemoryInfo"]["SizeInMiB"]
    except (ValueError, SyntaxError, KeyError, IndexError, TypeError):
        return None
    return float(round(float(mib) / 1024)) if mib else None


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}" if abs(value) < 1e6 else f"{value:.2f}"


def _row(provider: str, region: str, zone: str, instance: str, accel: str, count: int, mem: float | None,
         vcpus: float | None, ram: float | None, od: float | None, spot: float | None, as_of: str, ref: str,
         **extra: str) -> Row:
    row = {
        "provider": provider, "region": region, "zone": zone, "instance_type": instance, "accelerator": accel,
        "gpus_per_node": str(count), "gpu_memory_gb": _fmt(mem), "vcpus": _fmt(vcpus), "ram_gb": _fmt(ram),
        "on_demand_usd_per_hour": _fmt(od), "spot_usd_per_hour": _fmt(spot), "as_of": as_of, "price_ref": ref,
        "country": "", "continent": "", "as_of_estimated": "", "available": "", "host_reliability": "",
    }
    row.update(extra)
    return row


def convert_simple(provider: str, rows: Iterable[Row], as_of: str, ref: str) -> list[Row]:
    """AWS / Lambda / Nebius / Hyperbolic: one priced row per instance type and region (or zone)."""
    out = []
    for r in rows:
        accel = (r.get("AcceleratorName") or "").strip()
        count = _num(r.get("AcceleratorCount"))
        if not accel or not count or count < 1:
            continue  # CPU-only rows
        od, spot = _price(r.get("Price")), _price(r.get("SpotPrice"))
        if od is None and spot is None:
            continue
        out.append(_row(provider, r["Region"], (r.get("AvailabilityZone") or "").strip(), r["InstanceType"],
                        accel, int(count), gpu_memory_gb(r.get("GpuInfo", ""), provider),
                        _num(r.get("vCPUs")), _num(r.get("MemoryGiB")), od, spot, as_of, ref))
    return out


def convert_gcp(rows: Iterable[Row], as_of: str, ref: str) -> list[Row]:
    """GCP: add the host VM row and the GPU-only row of the same zone (as SkyPilot prices them)."""
    rows = list(rows)
    hosts: dict[tuple[str, str], Row] = {
        (r["InstanceType"], r["AvailabilityZone"]): r for r in rows if r["InstanceType"].strip()
    }
    out = []
    for r in rows:
        if r["InstanceType"].strip() or not r["AcceleratorName"].strip():
            continue
        accel, count = r["AcceleratorName"], int(float(r["AcceleratorCount"]))
        host_type = GCP_HOST_FOR.get((accel, count))
        host = hosts.get((host_type, r["AvailabilityZone"])) if host_type else None
        if host is None:
            continue  # a GPU price without a host VM in that zone cannot be bought
        gpu_od, host_od = _price(r["Price"]), _num(host["Price"])
        gpu_spot, host_spot = _price(r["SpotPrice"]), _num(host["SpotPrice"])
        od = gpu_od + host_od if gpu_od is not None and host_od is not None else None
        spot = gpu_spot + host_spot if gpu_spot is not None and host_spot is not None else None
        if od is None and spot is None:
            continue
        out.append(_row("gcp", r["Region"], r["AvailabilityZone"], host_type or "", accel, count,
                        gpu_memory_gb(r.get("GpuInfo", ""), "gcp"), _num(host["vCPUs"]), _num(host["MemoryGiB"]),
                        od, spot, as_of, ref))
    return out


_TRUE = frozenset({"true", "yes", "1"})


def _flag(text: str | None) -> str:
    return "true" if (text or "").strip().lower() in _TRUE else ""


def convert_manual(rows: Iterable[Mapping[str, str]], where: str) -> list[Row]:
    """Hand-built cited rows (data/price-sources/*.csv) -> snapshot rows; raises ValueError on bad rows.

    Optional columns: ``as_of_estimated`` (true when the date is an estimate), ``country`` (ISO code, for marketplace
    hosts whose location is not a region name), ``available`` (listed machines) and ``host_reliability`` (0-1).
    """
    out = []
    for lineno, r in enumerate(rows, start=2):
        loc = f"{where}:{lineno}"
        try:
            count = int(float(r["gpus_per_node"]))
            od, spot = _price(r.get("on_demand_usd_per_hour")), _price(r.get("spot_usd_per_hour"))
            available = _num(r.get("available"))
            reliability = _num(r.get("host_reliability"))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{loc}: {exc}") from None
        if od is None and spot is None:
            raise ValueError(f"{loc}: neither on-demand nor spot price")
        if not r.get("source", "").strip() or not r.get("as_of", "").strip():
            raise ValueError(f"{loc}: every hand-built row needs source and as_of")
        if reliability is not None and not 0 <= reliability <= 1:
            raise ValueError(f"{loc}: host_reliability must be in [0, 1], got {reliability:g}")
        out.append(_row(r["provider"].strip(), r["region"].strip(), (r.get("zone") or "").strip(),
                        r["instance_type"].strip(), r["accelerator"].strip(), count, _num(r.get("gpu_memory_gb")),
                        _num(r.get("vcpus")), _num(r.get("ram_gb")), od, spot, r["as_of"].strip(),
                        r["source"].strip(), country=(r.get("country") or "").strip().upper(),
                        as_of_estimated=_flag(r.get("as_of_estimated")),
                        available="" if available is None else str(int(available)),
                        host_reliability="" if reliability is None else f"{reliability:.4g}"))
    return out


# -- GCP list prices -------------------------------------------------------------------------------------------
# SkyPilot's GCP catalog gives the zones each shape exists in, but some of its GPU prices are Flex-start (DWS)
# prices, not on-demand: H100 $4.20/GPU-h in us-central1 against the Cloud Billing Catalog's ~$9.88. The snapshot
# therefore prices GCP shapes from data/price-sources/gcp-gpu-list.csv (whole-instance list prices per region,
# dated and cited) and keeps SkyPilot's zones only as the places a priced shape exists.

GCP_LIST_COLUMNS = ("instance_type", "region", "accelerator", "gpus_per_node", "vcpus", "ram_gb",
                    "on_demand_usd_per_hour", "spot_usd_per_hour", "sold_on_demand", "zones", "source", "as_of",
                    "notes")


def apply_gcp_list(sky_rows: Iterable[Row], list_rows: Iterable[Mapping[str, str]],
                   where: str) -> tuple[list[Row], list[dict[str, str]]]:
    """GCP offers priced from the list: (rows, changes). Raises ValueError on a malformed list row.

    Each list row is one shape in one region at its list prices. A row naming ``zones`` (space-separated: where the
    shape exists) becomes one region-level offer; otherwise it becomes one offer per zone SkyPilot lists for that
    shape and region, and a row with neither is not offered (where the shape exists is not known). On-demand is
    dropped where ``sold_on_demand`` is ``no``. SkyPilot rows with no list row are dropped. ``changes`` records what
    happened to every SkyPilot row, and why.
    """
    sky = list(sky_rows)
    zones: dict[tuple[str, str], list[Row]] = {}
    for r in sky:
        zones.setdefault((r["instance_type"], r["region"]), []).append(r)
    out: list[Row] = []
    changes: list[dict[str, str]] = []
    listed: set[tuple[str, str]] = set()
    seen: set[tuple[str, str, str, int]] = set()
    for lineno, r in enumerate(list_rows, start=2):
        loc = f"{where}:{lineno}"
        try:
            shape, region, accel = r["instance_type"].strip(), r["region"].strip(), r["accelerator"].strip()
            count = int(float(r["gpus_per_node"]))
            od, spot = _price(r.get("on_demand_usd_per_hour")), _price(r.get("spot_usd_per_hour"))
            vcpus, ram = _num(r.get("vcpus")), _num(r.get("ram_gb"))
            sold = r["sold_on_demand"].strip().lower()
            ref, as_of = r["source"].strip(), r["as_of"].strip()
            own_zones = (r.get("zones") or "").split()
        except (KeyError, ValueError, AttributeError) as exc:
            raise ValueError(f"{loc}: {exc}") from None
        if sold not in ("yes", "no") or not ref or not as_of:
            raise ValueError(f"{loc}: sold_on_demand must be yes or no, and source and as_of are required")
        if (shape, region, accel, count) in seen:
            raise ValueError(f"{loc}: {shape} with {count} x {accel} in {region} is listed twice")
        seen.add((shape, region, accel, count))
        if any(not z.startswith(f"{region}-") for z in own_zones):
            raise ValueError(f"{loc}: a zone of {own_zones} is not in {region}")
        listed.add((shape, region))
        on_demand = od if sold == "yes" else None
        sky_here = zones.get((shape, region), [])
        why = (r.get("notes") or "").split(";")[0].strip()
        if on_demand is None and spot is None:
            changes += [_dropped(x, why or "no list price") for x in sky_here]
            continue
        # Zones the list names are evidence that the shape exists in the region: one region-level offer (the region's
        # price is the same in each; the launcher picks the zone). SkyPilot's zones stay one offer per zone.
        places = [("", None)] if own_zones else [(x["zone"], x) for x in sky_here]
        for zone, sky_row in places:
            mem = _num(sky_row["gpu_memory_gb"]) if sky_row else None
            row = _row("gcp", region, zone, shape, accel, count, mem, vcpus, ram, on_demand, spot, as_of, ref)
            out.append(row)
            if sky_row is not None:
                changes.append(_change(sky_row, row, why if sold == "no" else ""))
    changes += [_dropped(r, "no list price for this shape in this region") for r in sky
                if (r["instance_type"], r["region"]) not in listed]
    return out, changes


def _dropped(old: Row, why: str) -> dict[str, str]:
    return {"instance_type": old["instance_type"], "region": old["region"], "zone": old["zone"],
            "was_on_demand": old["on_demand_usd_per_hour"], "was_spot": old["spot_usd_per_hour"],
            "now_on_demand": "", "now_spot": "", "action": f"dropped: {why}"}


def _change(old: Row, new: Row, why: str) -> dict[str, str]:
    same = (old["on_demand_usd_per_hour"] == new["on_demand_usd_per_hour"]
            and old["spot_usd_per_hour"] == new["spot_usd_per_hour"])
    action = "kept" if same else "corrected to list" + (f" ({why})" if why else "")
    return {"instance_type": old["instance_type"], "region": old["region"], "zone": old["zone"],
            "was_on_demand": old["on_demand_usd_per_hour"], "was_spot": old["spot_usd_per_hour"],
            "now_on_demand": new["on_demand_usd_per_hour"], "now_spot": new["spot_usd_per_hour"], "action": action}


def regional_outliers(rows: Iterable[Row], provider: str, median_floor: float = 0.75,
                      max_floor: float = 0.55) -> list[tuple[Row, float]]:
    """On-demand rows of ``provider`` priced far under the same shape's price in its other regions.

    One cloud's list price for one machine shape varies by region by tens of percent, not by half (GCP's dearest
    region, me-central2, is 1.6x its cheapest). A row under ``median_floor`` x the shape's median, or under
    ``max_floor`` x its dearest region, is a different product (GCP's Flex-start price sold as on-demand) or a
    typo; the second test catches a shape whose regions are mostly wrong. Returns (row, price / median) for each
    outlier; shapes priced in fewer than 3 regions are not judged.
    """
    rows = list(rows)

    def shape(r: Mapping[str, str]) -> tuple[str, str, str]:  # an N1 host with 1 T4 is not the same SKU as with a V100
        return r["instance_type"], r["accelerator"], r["gpus_per_node"]

    by_shape: dict[tuple[str, str, str], dict[str, float]] = {}
    for r in rows:
        od = _price(r.get("on_demand_usd_per_hour"))
        if r["provider"] == provider and od is not None:
            regions = by_shape.setdefault(shape(r), {})
            regions[r["region"]] = max(od, regions.get(r["region"], 0.0))
    bounds: dict[tuple[str, str, str], tuple[float, float]] = {}
    for key, per_region in by_shape.items():
        if len(per_region) >= 3:
            values = sorted(per_region.values())
            mid = len(values) // 2
            median = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
            bounds[key] = (median, values[-1])
    found = []
    for r in rows:
        od = _price(r.get("on_demand_usd_per_hour"))
        if r["provider"] != provider or od is None or shape(r) not in bounds:
            continue
        median, dearest = bounds[shape(r)]
        if od < median_floor * median or od < max_floor * dearest:
            found.append((r, od / median))
    return found

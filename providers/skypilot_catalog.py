"""Convert SkyPilot catalog files (schema v8 ``vms.csv``) into snapshot rows.

Pure functions over rows: used by ``scripts/build_snapshot.py`` to regenerate the bundled snapshot
from ``../shared/catalog-snapshot`` and by the tests on small inline samples.
"""

from __future__ import annotations

import ast
import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

# Columns of the bundled snapshot (USD per hour per instance; as_of + price_ref say where from).
SNAPSHOT_COLUMNS = (
    "provider", "region", "zone", "instance_type", "accelerator", "gpus_per_node", "gpu_memory_gb",
    "vcpus", "ram_gb", "on_demand_usd_per_hour", "spot_usd_per_hour", "as_of", "price_ref",
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
         vcpus: float | None, ram: float | None, od: float | None, spot: float | None, as_of: str, ref: str) -> Row:
    return {
        "provider": provider, "region": region, "zone": zone, "instance_type": instance, "accelerator": accel,
        "gpus_per_node": str(count), "gpu_memory_gb": _fmt(mem), "vcpus": _fmt(vcpus), "ram_gb": _fmt(ram),
        "on_demand_usd_per_hour": _fmt(od), "spot_usd_per_hour": _fmt(spot), "as_of": as_of, "price_ref": ref,
    }


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


def convert_manual(rows: Iterable[Mapping[str, str]], where: str) -> list[Row]:
    """Hand-built cited rows (data/price-sources/*.csv) -> snapshot rows; raises ValueError on bad rows."""
    out = []
    for lineno, r in enumerate(rows, start=2):
        loc = f"{where}:{lineno}"
        try:
            count = int(float(r["gpus_per_node"]))
            od, spot = _price(r.get("on_demand_usd_per_hour")), _price(r.get("spot_usd_per_hour"))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{loc}: {exc}") from None
        if od is None and spot is None:
            raise ValueError(f"{loc}: neither on-demand nor spot price")
        if not r.get("source", "").strip() or not r.get("as_of", "").strip():
            raise ValueError(f"{loc}: every hand-built row needs source and as_of")
        out.append(_row(r["provider"].strip(), r["region"].strip(), (r.get("zone") or "").strip(),
                        r["instance_type"].strip(), r["accelerator"].strip(), count, _num(r.get("gpu_memory_gb")),
                        _num(r.get("vcpus")), _num(r.get("ram_gb")), od, spot, r["as_of"].strip(),
                        r["source"].strip()))
    return out

"""GCP live prices from the Cloud Billing Catalog API (public list prices; no billing account needed).

Source: ``GET {base}/v1/services/6F81-5844-456A/skus`` (6F81-5844-456A is Compute Engine), every page
(``nextPageToken`` -> ``pageToken``, up to 5,000 SKUs a page), ``currencyCode=USD``. The reference is
https://cloud.google.com/billing/docs/reference/rest/v1/services.skus/list, and the how-to is
https://cloud.google.com/billing/v1/how-tos/catalog-api. A SKU is ``{skuId, description, category:
{resourceFamily, resourceGroup, usageType}, serviceRegions, pricingInfo: [{pricingExpression: {usageUnit,
tieredRates: [{startUsageAmount, unitPrice: {currencyCode, units, nanos}}]}}]}``, and its price is
``units + nanos / 1e9``.

GCP bills an accelerator-optimized VM in parts (cloud.google.com/compute/docs/accelerator-optimized-machines,
"Pricing"): its vCPUs at the family's core SKU, its memory at the family's RAM SKU (per GiB-hour), and its
GPUs at the GPU SKU. So one instance-hour costs ``vcpus * core + ram_gb * ram + gpus * gpu``. Spot is the
same sum over the Spot/Preemptible SKUs. A4 is the exception: its ``A4 Nvidia B200 (1 gpu slice)`` SKU
prices one eighth of the machine, vCPUs and memory included (the catalog has no A4 core/RAM SKUs), so an
a4-highgpu-8g costs 8 slices.

The shapes priced are those in ``HOSTS``: the accelerator-optimized ones of ``providers.skypilot_catalog.GCP_HOST_FOR``
and ``ATTACHED_HOSTS`` (G2 with L4, N1 with T4/V100); vCPU and memory sizes are in ``MACHINE_SHAPES`` below. A
shape is priced in a region where every part it needs has a price.

Zones (only with Compute Engine access): the catalog lists the regions a SKU is billed in, not the zones
that have the machine. When a project and OAuth credentials are at hand, ``google-cloud-compute`` (REST
transport) asks two project-wide aggregated lists, each one call per page (``maxResults`` 500,
``nextPageToken`` to the end), both at once in worker threads, alongside the SKU pages:
``AcceleratorTypesClient.aggregated_list`` (GET ``/compute/v1/projects/{project}/aggregated/acceleratorTypes``)
for the zones offering each GPU (``GCE_ACCELERATORS``: nvidia-tesla-a100, nvidia-a100-80gb, nvidia-h100-80gb,
nvidia-h100-mega-80gb, nvidia-h200-141gb, nvidia-b200, nvidia-l4, nvidia-tesla-t4, nvidia-tesla-v100), and
``MachineTypesClient.aggregated_list`` with ``filter=MACHINE_TYPE_FILTER`` (the documented RE2 ``eq`` form:
a2/a3/a4, g2-standard and n1 standard/highmem) for the zones offering each host machine type. A shape is then
offered once per zone (``zone`` set, the region's price) where both its GPU and its machine type exist; a
priced region with no such zone gets no offer. Deprecated (OBSOLETE / DELETED) types count as absent.
Compute access, in this order: ``GOOGLE_OAUTH_ACCESS_TOKEN``, else the Application Default Credentials file
below (scope ``compute.readonly``); the project from ``GOOGLE_CLOUD_PROJECT``, ``CLOUDSDK_CORE_PROJECT`` or
``GCLOUD_PROJECT``, else the ADC file's project (service account) or quota project. An API key alone cannot
call the Compute API.

* Without Compute access (only an API key, no project, or ``google-cloud-compute`` not installed): the
  behaviour before zones existed: one offer per priced region, ``zone`` None, and one info log line.
* The zone lookup failing (403, 429/5xx after ``ctx.retries`` retries, a timeout, a page loop, an
  unreadable answer): the prices are still good, so region-level offers are returned with one warning
  line giving the reason. This was chosen over ``ProviderError``, which would replace good live prices
  with older cached or bundled ones that are region-level anyway.
* The lookup answering but no priced region having a zone with the machines: ``ProviderError``.

Limits of this adapter:

* **Capacity is not checked.** A zone that has a machine type can still be out of capacity; only a
  launch finds out.
* **Bundled Local SSD is left out.** A2 Ultra, A3 and A4 come with Local SSD (375 GiB to 12,000 GiB) that
  GCP bills on top. That adds under 1% to these machines (6,000 GiB at about $0.08 per GiB-month is about
  $0.66/h on an ~$88/h a3-highgpu-8g). SkyPilot's catalog leaves it out too.
* **a3-highgpu-1g/2g/4g have no on-demand price.** GCP sells them only as Spot or Flex-start VMs (the A3
  High note in the machine-types doc). A3 Ultra and A4 on-demand capacity needs a reservation; the price
  shown is the on-demand SKU's rate, which is what a reservation bills.
* **SKUs that are not mapped** (see ``classify_sku``): commitments (``usageType`` Commit*), ``Reserved ...``
  and Calendar Mode SKUs, SKUs ``attached to`` DWS Defined Duration, Flex-start or Sole Tenancy VMs, Custom
  and Premium SKUs, every non-Compute SKU (storage, network, licences), and every GPU or machine family that
  ``HOSTS`` does not use (N1 + P100/P4, G4 RTX PRO 6000, A3 Edge, A4X GB200/GB300, TPUs). A SKU whose
  wording matches no known label exactly is skipped (family labels are compared without spaces, so 'A3 Ultra'
  and 'A3Ultra' are one label). A renamed SKU therefore drops offers; it does not produce a wrong sum. If no
  offer at all can be priced, ``fetch`` raises.
* **A SKU without ``pricingInfo``** (or without ``tieredRates``, or priced at $0) is skipped. A part with
  no usable price leaves that shape unpriced in that region for that purchase option.
* **Two ordinary SKUs for the same part and region**: the higher price is kept, whatever order the pages
  arrive in. A stale discount SKU can never make GCP look cheaper than it is.
* Any price in a currency other than USD raises ``ProviderError``. The request asks for USD, so a
  different currency means the answer cannot be trusted.

Credentials, in this order:

1. An API key from ``GPUARB_GCP_API_KEY`` or ``GOOGLE_API_KEY``. The Catalog API accepts API keys. The key
   goes in the ``X-Goog-Api-Key`` header, which Google documents as an alternative to ``?key=``, so it
   stays out of URLs and logs.
2. An OAuth access token from ``GOOGLE_OAUTH_ACCESS_TOKEN``, sent as Bearer.
3. Application Default Credentials, when ``google-auth`` is installed and an ADC file exists: the file
   named by ``GOOGLE_APPLICATION_CREDENTIALS``, or gcloud's ``application_default_credentials.json`` (under
   ``CLOUDSDK_CONFIG``, or ``~/.config/gcloud``, or ``%APPDATA%\\gcloud``). The file is loaded and refreshed
   in a worker thread. The GCE metadata server is not probed; on a VM, set one of the variables above.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arbitrage.offers import Offer
from arbitrage.plural import plural
from providers.base import FetchContext, MissingCredentials, ProviderError, make_live_offer
from providers.http import new_client, request_json
from providers.skypilot_catalog import GCP_HOST_FOR

log = logging.getLogger(__name__)

PROVIDER = "gcp"
SERVICE_ID = "6F81-5844-456A"  # Compute Engine (cloud.google.com/skus)
DEFAULT_BASE_URL = "https://cloudbilling.googleapis.com"
PAGE_SIZE = 5000  # the documented maximum
MAX_PAGES = 100  # Compute Engine has ~10 pages at 5,000; a guard against a server that never stops paging
API_KEY_ENV = ("GPUARB_GCP_API_KEY", "GOOGLE_API_KEY")  # gpuarb's own first: GOOGLE_API_KEY is often a Gemini key
TOKEN_ENV = "GOOGLE_OAUTH_ACCESS_TOKEN"
ADC_SCOPE = "https://www.googleapis.com/auth/cloud-billing.readonly"

# Compute Engine zone lookup (see the module docstring).
COMPUTE_ENDPOINT = "gcp-compute"  # ctx.endpoints key: the Compute API base URL (tests: a loopback server)
COMPUTE_SCOPE = "https://www.googleapis.com/auth/compute.readonly"
PROJECT_ENV = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "GCLOUD_PROJECT")
ZONE_PAGE_SIZE = 500  # the documented maximum of maxResults
ZONE_MAX_PAGES = 50
MACHINE_TYPE_FILTER = "name eq '(a[234]-.*)|(g2-standard-.*)|(n1-(standard|highmem)-.*)'"
# Compute Engine accelerator type names (cloud.google.com/compute/docs/gpus) of the HOSTS accelerators.
GCE_ACCELERATORS: dict[str, str] = {
    "A100": "nvidia-tesla-a100",
    "A100-80GB": "nvidia-a100-80gb",
    "H100": "nvidia-h100-80gb",
    "H100-MEGA": "nvidia-h100-mega-80gb",
    "H200": "nvidia-h200-141gb",
    "B200": "nvidia-b200",
    "L4": "nvidia-l4",
    "T4": "nvidia-tesla-t4",
    "V100": "nvidia-tesla-v100",
}

# Hosts of the GPUs GCP sells outside the accelerator-optimized families, (accelerator, count) -> machine type:
# G2 carries L4 (the one G2 size per count SkyPilot's gcp_catalog.py _ACC_INSTANCE_TYPE_DICTS names first), and
# T4/V100 are attached to N1 VMs (an N1 standard/highmem size with SkyPilot's default host vCPUs for the count,
# gcp_catalog.py _NUM_ACC_TO_NUM_CPU, within GCP's per-GPU vCPU/memory limits, cloud.google.com/compute/docs/gpus;
# one host per (GPU, count) and no host shared by two of them, so an instance type names one GPU configuration).
# Each is priced as its G2 / N1 Predefined vCPUs and RAM plus the attached GPUs.
ATTACHED_HOSTS: dict[tuple[str, int], str] = {
    ("L4", 1): "g2-standard-4", ("L4", 2): "g2-standard-24", ("L4", 4): "g2-standard-48", ("L4", 8): "g2-standard-96",
    ("T4", 1): "n1-highmem-4", ("T4", 2): "n1-highmem-8", ("T4", 4): "n1-standard-64",
    ("V100", 1): "n1-standard-8", ("V100", 2): "n1-highmem-16", ("V100", 4): "n1-highmem-32",
    ("V100", 8): "n1-highmem-64",
}
# Every (accelerator, count) -> host machine type this adapter prices.
HOSTS: dict[tuple[str, int], str] = {**GCP_HOST_FOR, **ATTACHED_HOSTS}


@dataclass(frozen=True)
class MachineShape:
    """What one accelerator-optimized machine type is billed for, besides its GPUs."""

    vcpus: int
    # GCP's "Instance memory (GB)" is the Compute API's memoryMb / 1024, i.e. GiB, and RAM SKUs are per GiB-hour.
    ram_gb: float
    # Billing family of its vCPU/RAM SKUs (keys of _CPU_RAM_FAMILIES), or None when the GPU SKU prices the
    # whole machine (A4's "1 gpu slice").
    cpu_ram_family: str | None
    # False where GCP sells the shape only as Spot / Flex-start VMs.
    on_demand: bool = True


# Sizes from the machine-type tables of https://cloud.google.com/compute/docs/accelerator-optimized-machines
# (A2 Standard, A2 Ultra, A3 High, A3 Mega, A3 Ultra, A4). GPU model and count come from HOSTS. Billing
# families: A2 Ultra bills its vCPUs/RAM as plain A2; A3 Mega uses the "A3Plus" SKUs and A3 Ultra the "A3Ultra" ones.
MACHINE_SHAPES: dict[str, MachineShape] = {
    "a2-highgpu-1g": MachineShape(12, 85, "a2"),
    "a2-highgpu-2g": MachineShape(24, 170, "a2"),
    "a2-highgpu-4g": MachineShape(48, 340, "a2"),
    "a2-highgpu-8g": MachineShape(96, 680, "a2"),
    "a2-megagpu-16g": MachineShape(96, 1360, "a2"),
    "a2-ultragpu-1g": MachineShape(12, 170, "a2"),
    "a2-ultragpu-2g": MachineShape(24, 340, "a2"),
    "a2-ultragpu-4g": MachineShape(48, 680, "a2"),
    "a2-ultragpu-8g": MachineShape(96, 1360, "a2"),
    # "When provisioning a3-highgpu-1g, a3-highgpu-2g, or a3-highgpu-4g machine types, you must create
    # instances by using Spot VMs or Flex-start VMs."
    "a3-highgpu-1g": MachineShape(26, 234, "a3", on_demand=False),
    "a3-highgpu-2g": MachineShape(52, 468, "a3", on_demand=False),
    "a3-highgpu-4g": MachineShape(104, 936, "a3", on_demand=False),
    "a3-highgpu-8g": MachineShape(208, 1872, "a3"),
    "a3-megagpu-8g": MachineShape(208, 1872, "a3plus"),
    "a3-ultragpu-8g": MachineShape(224, 2952, "a3ultra"),
    "a4-highgpu-8g": MachineShape(224, 3968, None),
    # G2 (cloud.google.com/compute/docs/accelerator-optimized-machines#g2-vms): L4 hosts, billed as G2 vCPUs + RAM.
    "g2-standard-4": MachineShape(4, 16, "g2"),
    "g2-standard-24": MachineShape(24, 96, "g2"),
    "g2-standard-48": MachineShape(48, 192, "g2"),
    "g2-standard-96": MachineShape(96, 384, "g2"),
    # N1 (cloud.google.com/compute/docs/general-purpose-machines#n1_machines): T4/V100 hosts, billed as N1
    # Predefined vCPUs + RAM whatever the standard/highmem shape.
    "n1-highmem-4": MachineShape(4, 26, "n1"),
    "n1-standard-8": MachineShape(8, 30, "n1"),
    "n1-highmem-8": MachineShape(8, 52, "n1"),
    "n1-highmem-16": MachineShape(16, 104, "n1"),
    "n1-highmem-32": MachineShape(32, 208, "n1"),
    "n1-highmem-64": MachineShape(64, 416, "n1"),
    "n1-standard-64": MachineShape(64, 240, "n1"),
}

# GPU SKU label (lower case, after the location and Spot wording are removed) -> SkyPilot accelerator name.
# The wordings used by SkyPilot's fetch_gcp.py and gpuhunt, plus each with/without the "Nvidia"/"Tesla" word;
# an unknown wording is skipped, never guessed.
_GPU_LABELS: dict[str, str] = {
    "nvidia tesla a100 gpu": "A100",
    "nvidia a100 gpu": "A100",
    "nvidia tesla a100 80gb gpu": "A100-80GB",
    "nvidia a100 80gb gpu": "A100-80GB",
    "nvidia h100 80gb gpu": "H100",
    "nvidia h100 gpu": "H100",
    # a3-megagpu-8g's GPU is sold under three names in different regions (SkyPilot's fetch_gcp.py, gpuhunt).
    "nvidia h100 80gb mega gpu": "H100-MEGA",
    "nvidia h100 mega 80gb gpu": "H100-MEGA",
    "nvidia h100 80gb plus gpu": "H100-MEGA",
    "h200 141gb gpu": "H200",
    "nvidia h200 141gb gpu": "H200",
    # One eighth of an a4-highgpu-8g, vCPUs and memory included.
    "a4 nvidia b200 (1 gpu slice)": "B200",
    "nvidia b200 (1 gpu slice)": "B200",
    # Attached GPUs ('Nvidia Tesla T4 GPU running in Americas'; SkyPilot's fetch_gcp.py matches '<name> GPU').
    "nvidia l4 gpu": "L4",
    "nvidia tesla t4 gpu": "T4",
    "nvidia t4 gpu": "T4",
    "nvidia tesla v100 gpu": "V100",
    "nvidia v100 gpu": "V100",
}

# "<label> Instance Core" / "<label> Instance Ram" (lower case, spaces removed) -> billing family in MACHINE_SHAPES.
# GCP writes some labels with a space: 'A3 Ultra Instance Core running in Americas' (a billing export's
# 'DWS Defined Duration A3 Ultra Instance Core'), 'A3 Mega ...'; a3-megagpu-8g bills as 'A3Plus Instance Core'
# (gpuhunt gcp.py maps 'A3Plus Instance' to a3-megagpu). Both spellings of each are accepted.
_CPU_RAM_FAMILIES: dict[str, str] = {
    "a2": "a2", "a3": "a3", "a3plus": "a3plus", "a3mega": "a3plus", "a3ultra": "a3ultra", "g2": "g2",
    "n1predefined": "n1",
}

# usageUnit accepted per part, with the factor that turns the rate into USD per hour (GPU, core) or per GiB-hour.
_UNITS: dict[str, dict[str, float]] = {
    "gpu": {"h": 1.0},
    "core": {"h": 1.0},
    "ram": {"GiBy.h": 1.0, "GBy.h": 2**30 / 1e9},  # a per-GB rate costs 1.0737x per GiB
}

_RUNNING_IN = re.compile(r"\s+running in\s.*$")
_SPOT_PREFIXES = ("spot preemptible ", "preemptible ")
_SPOT_SUFFIX = " attached to spot preemptible vms"


@dataclass(frozen=True)
class SkuPart:
    """What a SKU prices: a part ('gpu', 'core' or 'ram') of one accelerator or billing family, spot or not."""

    kind: str
    key: str
    spot: bool


def classify_sku(sku: Mapping[str, Any]) -> SkuPart | None:
    """The machine part a Compute Engine SKU prices, or None for every SKU this adapter does not use.

    Spot is read from the description as well as the category: some Spot SKUs are tagged OnDemand
    (e.g. 'Spot Preemptible A4 Nvidia B200 (1 gpu slice) running in Americas').
    """
    category = sku.get("category")
    if not isinstance(category, Mapping) or category.get("resourceFamily") != "Compute":
        return None
    usage = category.get("usageType")
    if usage not in ("OnDemand", "Preemptible"):
        return None  # Commit1Yr, Commit3Yr, Commit, CmtCudPremium...
    text = " ".join(str(sku.get("description") or "").split()).lower()
    text = _RUNNING_IN.sub("", text)
    spot = usage == "Preemptible"
    for prefix in _SPOT_PREFIXES:
        if text.startswith(prefix):
            text, spot = text[len(prefix):], True
            break
    if text.endswith(_SPOT_SUFFIX):
        text, spot = text[: -len(_SPOT_SUFFIX)], True
    if " attached to " in text:
        return None  # DWS Defined Duration, Flex-start, Sole Tenancy VMs: other provisioning models
    accelerator = _GPU_LABELS.get(text)
    if accelerator is not None:
        return SkuPart("gpu", accelerator, spot)
    for suffix, kind in ((" instance core", "core"), (" instance ram", "ram")):
        if text.endswith(suffix):
            family = _CPU_RAM_FAMILIES.get(text[: -len(suffix)].replace(" ", ""))
            return SkuPart(kind, family, spot) if family else None
    return None


def _sku_id(sku: Mapping[str, Any]) -> str:
    return str(sku.get("skuId") or sku.get("name") or "?")


def _latest_expression(sku: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pricingExpression of the newest pricingInfo entry (the list is chronological), or None."""
    infos = sku.get("pricingInfo")
    if not isinstance(infos, list) or not infos or not isinstance(infos[-1], Mapping):
        return None
    expression = infos[-1].get("pricingExpression")
    return expression if isinstance(expression, Mapping) else None


def check_currency(skus: Iterable[Mapping[str, Any]]) -> None:
    """Raise ProviderError when any price is not in USD (the request asked for USD)."""
    for sku in skus:
        for info in sku.get("pricingInfo") or ():
            expression = info.get("pricingExpression") if isinstance(info, Mapping) else None
            for tier in (expression.get("tieredRates") if isinstance(expression, Mapping) else None) or ():
                price = tier.get("unitPrice") if isinstance(tier, Mapping) else None
                code = price.get("currencyCode") if isinstance(price, Mapping) else None
                if code not in (None, "USD"):
                    raise ProviderError(PROVIDER, f"SKU {_sku_id(sku)} is priced in {code}, not USD")


def unit_price_usd(sku: Mapping[str, Any]) -> float | None:
    """The SKU's current first-tier price (units + nanos / 1e9), or None when it has no pricing."""
    expression = _latest_expression(sku)
    tiers = expression.get("tieredRates") if expression else None
    if not isinstance(tiers, list) or not tiers:
        return None
    try:
        tier = min((t for t in tiers if isinstance(t, Mapping)), key=lambda t: float(t.get("startUsageAmount") or 0))
        price = tier.get("unitPrice") or {}
        value = int(str(price.get("units") or "0")) + int(price.get("nanos") or 0) / 1e9
    except (ValueError, TypeError, AttributeError) as exc:
        raise ProviderError(PROVIDER, f"SKU {_sku_id(sku)} has a malformed price ({exc})") from None
    if not math.isfinite(value) or value < 0:
        raise ProviderError(PROVIDER, f"SKU {_sku_id(sku)} has an impossible price {value}")
    return value


@dataclass(frozen=True)
class Rate:
    """One part's hourly price in one region, and the SKU it came from."""

    usd: float
    sku_id: str


# (kind, key, region, spot) -> Rate
RateTable = dict[tuple[str, str, str, bool], Rate]


def collect_rates(skus: Iterable[Mapping[str, Any]]) -> RateTable:
    """Every mapped part's price per region; conflicts keep the higher price (then the lower skuId)."""
    rates: RateTable = {}
    for sku in skus:
        part = classify_sku(sku)
        if part is None:
            continue
        price = unit_price_usd(sku)
        if price is None or price <= 0:  # no pricingInfo, or a $0 placeholder: never a real machine part
            log.debug("gcp: SKU %s (%s) has no usable price; skipped", _sku_id(sku), sku.get("description"))
            continue
        unit = str((_latest_expression(sku) or {}).get("usageUnit") or "")
        factor = _UNITS[part.kind].get(unit)
        if factor is None:
            log.debug("gcp: SKU %s priced per %r, expected %s; skipped", _sku_id(sku), unit, sorted(_UNITS[part.kind]))
            continue
        rate = Rate(price * factor, _sku_id(sku))
        for region in sku.get("serviceRegions") or ():
            key = (part.kind, part.key, str(region), part.spot)
            old = rates.get(key)
            if old is None or (rate.usd, old.sku_id) > (old.usd, rate.sku_id):
                rates[key] = rate
    return rates


def machine_price(rates: RateTable, shape: MachineShape, accelerator: str, gpus: int, region: str,
                  spot: bool) -> tuple[float, list[str]] | None:
    """USD per instance-hour of one shape in one region, with the SKUs summed; None if a part is unpriced."""
    gpu = rates.get(("gpu", accelerator, region, spot))
    if gpu is None:
        return None
    total, used = gpus * gpu.usd, [gpu.sku_id]
    if shape.cpu_ram_family is not None:
        core = rates.get(("core", shape.cpu_ram_family, region, spot))
        ram = rates.get(("ram", shape.cpu_ram_family, region, spot))
        if core is None or ram is None:
            return None
        total += shape.vcpus * core.usd + shape.ram_gb * ram.usd
        used += [core.sku_id, ram.sku_id]
    return total, used


def region_of(zone: str) -> str:
    """The region a Compute Engine zone is in: 'us-central1-a' -> 'us-central1'."""
    return zone.rsplit("-", 1)[0]


def build_offers(ctx: FetchContext, skus: Iterable[Mapping[str, Any]], source_url: str,
                 zones: Mapping[str, set[str]] | None = None) -> list[Offer]:
    """Offers for every HOSTS shape where all its parts are priced: per region, or per zone from `zones`.

    `zones` maps a zone to the instance types it offers (zone_machines); None keeps region-level offers.
    """
    rates = collect_rates(skus)
    gpu_regions: dict[str, set[str]] = {}
    for kind, key, region, _spot in rates:
        if kind == "gpu":
            gpu_regions.setdefault(key, set()).add(region)
    offers = []
    for (accelerator, gpus), instance_type in sorted(HOSTS.items(), key=lambda item: item[1]):
        shape = MACHINE_SHAPES.get(instance_type)
        if shape is None:
            continue
        for region in sorted(gpu_regions.get(accelerator, ())):
            on_demand = machine_price(rates, shape, accelerator, gpus, region, False) if shape.on_demand else None
            spot = machine_price(rates, shape, accelerator, gpus, region, True)
            if on_demand is None and spot is None:
                continue
            sku_ids = sorted({s for priced in (on_demand, spot) if priced for s in priced[1]})
            places: list[str | None] = [None] if zones is None else sorted(
                z for z, types in zones.items() if region_of(z) == region and instance_type in types)
            for zone in places:
                offers.append(make_live_offer(
                    ctx, provider=PROVIDER, region=region, zone=zone, instance_type=instance_type,
                    accelerator=accelerator, gpus_per_node=gpus,
                    on_demand_usd_per_hour=on_demand[0] if on_demand else None,
                    spot_usd_per_hour=spot[0] if spot else None, price_ref=f"{source_url} skuId={'+'.join(sku_ids)}",
                    vcpus=float(shape.vcpus), ram_gb=float(shape.ram_gb),
                ))
    return offers


# ---- credentials -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Auth:
    kind: str  # "api_key" | "token" | "adc"
    value: str  # the key, the token, or the ADC file path


def _google_auth_available() -> bool:
    """google-auth and the `requests` transport it refreshes tokens with are both installed."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("google.auth", "requests"))
    except (ImportError, ValueError):
        return False


def adc_file(env: Mapping[str, str]) -> Path | None:
    """The Application Default Credentials file google-auth would read, when it exists."""
    explicit = env.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        return path if path.is_file() else None
    if env.get("CLOUDSDK_CONFIG"):
        config = Path(env["CLOUDSDK_CONFIG"]).expanduser()
    elif os.name == "nt" and env.get("APPDATA"):
        config = Path(env["APPDATA"]) / "gcloud"
    elif env.get("HOME"):
        config = Path(env["HOME"]) / ".config" / "gcloud"
    else:
        return None
    path = config / "application_default_credentials.json"
    return path if path.is_file() else None


def find_auth(env: Mapping[str, str]) -> _Auth | None:
    """The first credential found, in the order the module docstring gives; None when there is none."""
    for name in API_KEY_ENV:
        if env.get(name, "").strip():
            return _Auth("api_key", env[name].strip())
    if env.get(TOKEN_ENV, "").strip():
        return _Auth("token", env[TOKEN_ENV].strip())
    path = adc_file(env)
    if path is not None and _google_auth_available():
        return _Auth("adc", str(path))
    return None


def _adc_token(path: str) -> tuple[str, str | None]:
    """Load and refresh ADC from a file (blocking: run in a thread); returns (token, quota project)."""
    import google.auth
    import google.auth.transport.requests

    credentials, _project = google.auth.load_credentials_from_file(path, scopes=[ADC_SCOPE])
    credentials.refresh(google.auth.transport.requests.Request())
    return credentials.token, getattr(credentials, "quota_project_id", None)


async def auth_headers(auth: _Auth) -> dict[str, str]:
    """Request headers that carry the credential."""
    import asyncio

    if auth.kind == "api_key":
        return {"X-Goog-Api-Key": auth.value}
    if auth.kind == "token":
        return {"Authorization": f"Bearer {auth.value}"}
    try:
        token, quota_project = await asyncio.to_thread(_adc_token, auth.value)
    except Exception as exc:  # google-auth raises its own error types, and ImportError without `requests`
        raise ProviderError(PROVIDER, f"Application Default Credentials failed ({type(exc).__name__}: "
                                      f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    headers = {"Authorization": f"Bearer {token}"}
    if quota_project:
        headers["x-goog-user-project"] = quota_project
    return headers


# ---- zones (Compute Engine API, google-cloud-compute) -----------------------------------------------------


@dataclass(frozen=True)
class ComputeAccess:
    """What the Compute API calls need: google-auth credentials and the project to list in."""

    credentials: Any
    project: str


def _compute_sdk_available() -> bool:
    try:
        return importlib.util.find_spec("google.cloud.compute_v1") is not None
    except (ImportError, ValueError):
        return False


def compute_access(ctx: FetchContext) -> ComputeAccess | None:
    """Credentials and project for the zone lookup (blocking: may load the ADC file), or None without them.

    ctx.sdk['gcp_compute_credentials'] (tests) comes first, then GOOGLE_OAUTH_ACCESS_TOKEN, then the ADC file.
    """
    project = next((ctx.env[n].strip() for n in PROJECT_ENV if ctx.env.get(n, "").strip()), "")
    credentials = ctx.sdk.get("gcp_compute_credentials")
    if credentials is None and ctx.env.get(TOKEN_ENV, "").strip():
        import google.oauth2.credentials

        credentials = google.oauth2.credentials.Credentials(token=ctx.env[TOKEN_ENV].strip())
    if credentials is None:
        path = adc_file(ctx.env)
        if path is None:
            return None
        import google.auth

        credentials, file_project = google.auth.load_credentials_from_file(str(path), scopes=[COMPUTE_SCOPE])
        project = project or file_project or getattr(credentials, "quota_project_id", None) or ""
    return ComputeAccess(credentials, project) if project else None


def _retrying(ctx: FetchContext, call: Callable[[], Any]) -> Any:
    """call(), retrying 429/5xx, timeouts and connection errors ctx.retries times with backoff (blocking)."""
    import requests
    from google.api_core import exceptions as google_errors

    transient = (google_errors.TooManyRequests, google_errors.InternalServerError, google_errors.BadGateway,
                 google_errors.ServiceUnavailable, google_errors.GatewayTimeout, requests.exceptions.Timeout,
                 requests.exceptions.ConnectionError)
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except transient:
            if attempt > ctx.retries:
                raise
        time.sleep(min(ctx.backoff_s * 2 ** (attempt - 1), ctx.max_backoff_s))


def list_zone_types(ctx: FetchContext, access: ComputeAccess, kind: str) -> dict[str, set[str]]:
    """Zone -> names of its accelerator types (kind 'accelerator') or host machine types ('machine').

    Blocking (run it in a thread): one aggregated-list call per page, every page, deprecated types left out.
    """
    from google.cloud import compute_v1

    if kind == "accelerator":
        client_type, request_type, field, wanted = (
            compute_v1.AcceleratorTypesClient, compute_v1.AggregatedListAcceleratorTypesRequest, "accelerator_types",
            {"project": access.project})
    else:
        client_type, request_type, field, wanted = (
            compute_v1.MachineTypesClient, compute_v1.AggregatedListMachineTypesRequest, "machine_types",
            {"project": access.project, "filter": MACHINE_TYPE_FILTER})
    endpoint = ctx.endpoints.get(COMPUTE_ENDPOINT)
    client = client_type(credentials=access.credentials, transport="rest",
                         client_options={"api_endpoint": endpoint} if endpoint else None)
    zones: dict[str, set[str]] = {}
    seen: set[str] = set()
    token = ""
    for _page in range(ZONE_MAX_PAGES):
        request = request_type(**wanted, max_results=ZONE_PAGE_SIZE, **({"page_token": token} if token else {}))
        page = _retrying(ctx, lambda request=request: client.aggregated_list(request=request, retry=None,
                                                                             timeout=ctx.timeout_s))
        for scope, scoped in page.items.items():
            if not scope.startswith("zones/"):
                continue
            names = {item.name for item in getattr(scoped, field)
                     if item.deprecated.state not in ("OBSOLETE", "DELETED")}
            zones.setdefault(scope.removeprefix("zones/"), set()).update(names)
        token = page.next_page_token
        if not token:
            return zones
        if token in seen:
            raise ProviderError(PROVIDER, f"{kind} types: pagination loop (the same nextPageToken came back twice)")
        seen.add(token)
    raise ProviderError(PROVIDER, f"{kind} types: more than {ZONE_MAX_PAGES} pages; stopped")


def zone_machines(accelerators: Mapping[str, set[str]], machines: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Zone -> the HOSTS instance types whose GPU (GCE_ACCELERATORS) and machine type both exist there."""
    out: dict[str, set[str]] = {}
    for (accelerator, _gpus), instance_type in HOSTS.items():
        gpu = GCE_ACCELERATORS.get(accelerator)
        for zone, names in accelerators.items():
            if gpu in names and instance_type in machines.get(zone, ()):
                out.setdefault(zone, set()).add(instance_type)
    return out


async def available_zones(ctx: FetchContext) -> dict[str, set[str]] | None:
    """zone_machines from the Compute API, or None (region-level offers) without access or when it fails."""
    import asyncio

    if not _compute_sdk_available():
        log.info("gcp: google-cloud-compute is not installed; offers are per region, zones not checked")
        return None
    try:
        access = await asyncio.to_thread(compute_access, ctx)
        if access is None:
            log.info("gcp: no Compute Engine access (needs OAuth credentials and a project, e.g. "
                     "GOOGLE_CLOUD_PROJECT); offers are per region, zones not checked")
            return None
        accelerators, machines = await asyncio.gather(
            asyncio.to_thread(list_zone_types, ctx, access, "accelerator"),
            asyncio.to_thread(list_zone_types, ctx, access, "machine"))
    except Exception as exc:  # an enrichment failing must not throw away good prices: warn, keep regions
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        log.warning("gcp: zones not checked (%s: %s); GCP offers are per region", type(exc).__name__, reason)
        return None
    return zone_machines(accelerators, machines)


# ---- fetching ----------------------------------------------------------------------------------------------


async def list_skus(client: Any, ctx: FetchContext, url: str, headers: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every SKU of the service, following nextPageToken to the end; checks shape and currency per page."""
    skus: list[dict[str, Any]] = []
    seen: set[str] = set()
    token: str | None = None
    for _page in range(MAX_PAGES):
        params = {"currencyCode": "USD", "pageSize": str(PAGE_SIZE)}
        if token:
            params["pageToken"] = token
        body = await request_json(client, ctx, PROVIDER, "GET", url, params=params, headers=dict(headers))
        page = body.get("skus", []) if isinstance(body, dict) else None
        if not isinstance(page, list):
            raise ProviderError(PROVIDER, f"unexpected response from {url}: no 'skus' list")
        page = [sku for sku in page if isinstance(sku, dict)]
        check_currency(page)
        skus.extend(page)
        token = body.get("nextPageToken") or None
        if not token:
            return skus
        if token in seen:
            raise ProviderError(PROVIDER, "pagination loop: the same nextPageToken came back twice")
        seen.add(token)
    raise ProviderError(PROVIDER, f"more than {MAX_PAGES} pages of SKUs; stopped")


class GcpAdapter:
    """Compute Engine GPU VM list prices from the Cloud Billing Catalog API (see the module docstring)."""

    name = PROVIDER
    ttl_seconds = 3600
    credentials_hint = (
        "GPUARB_GCP_API_KEY or GOOGLE_API_KEY (an API key with the Cloud Billing API enabled), "
        "GOOGLE_OAUTH_ACCESS_TOKEN, or Application Default Credentials "
        "(`gcloud auth application-default login`; needs the google-auth package)"
    )

    def has_credentials(self, ctx: FetchContext) -> bool:
        return find_auth(ctx.env) is not None

    async def fetch(self, ctx: FetchContext) -> list[Offer]:
        import asyncio

        auth = find_auth(ctx.env)
        if auth is None:
            raise MissingCredentials(PROVIDER, f"no credentials; set {self.credentials_hint}")
        base = ctx.endpoints.get(PROVIDER, DEFAULT_BASE_URL).rstrip("/")
        url = f"{base}/v1/services/{SERVICE_ID}/skus"
        zones_task = asyncio.ensure_future(available_zones(ctx))  # runs while the SKU pages come in
        try:
            headers = await auth_headers(auth)
            async with new_client(ctx) as client:
                skus = await list_skus(client, ctx, url, headers)
            zones = await zones_task
        finally:
            zones_task.cancel()  # a no-op once done; stops waiting on it if the prices failed
        offers = build_offers(ctx, skus, url)
        if not offers:
            raise ProviderError(PROVIDER, f"no GPU machine could be priced from {plural(len(skus), 'SKU')} "
                                          "(SKU descriptions may have changed)")
        if zones is None:
            return offers
        zoned = build_offers(ctx, skus, url, zones)
        if not zoned:
            regions = sorted({o.region for o in offers})
            raise ProviderError(PROVIDER, f"machines priced in {plural(len(regions), 'region')} "
                                          f"({', '.join(regions[:4])}{', ...' if len(regions) > 4 else ''}) but no "
                                          f"zone of {'it' if len(regions) == 1 else 'them'} offers one (Compute API "
                                          "accelerator and machine types)")
        return zoned


ADAPTER = GcpAdapter()

"""The run ledger as FinOps FOCUS 1.2 cost-and-usage rows, so finance tools can ingest gpuarb spend next to cloud bills.

Pure: ledger rows, the clock and the data homes come in as arguments; `write_focus_csv` writes to a stream it is
given. Row model:

- compute: one row per attempt per charge period. An attempt (launch to end, or to ``now`` while open) is split at
  UTC day boundaries (``granularity="day"``, the default) or hour boundaries (``"hour"``), so every charge period
  lies inside one billing period (the UTC calendar month). PricingQuantity/ConsumedQuantity are instance-hours
  (hours x nodes), PricingUnit "Hours"; ListUnitPrice is the recorded placement's USD per instance-hour;
  PricingCategory is "Dynamic" for spot and "Standard" for on-demand. No commitments or negotiated discounts are
  known, so List = Contracted = Billed = Effective cost. ResourceId is the cluster name; SkuId the instance type
  (the same for spot and on-demand, as FOCUS requires); SkuPriceId adds provider, location and spot/on-demand.
- egress: one row per run for the input data staged in (billed by the data's home cloud) and one for the outputs
  sent home (billed by the cloud the run finished on), ServiceCategory "Networking", in the charge period that
  holds the moment it was charged (first launch; successful finish), priced per GB when the job spec says how much.

Columns: every FOCUS 1.2 column that applies, in the spec's (alphabetical) order, then gpuarb's own ``x_`` columns.
Columns a FOCUS 1.2 dataset needs only for features gpuarb never sees (invoices, pricing currencies, billing and
sub-account types) are left out; commitment-discount, capacity-reservation and sub-account columns are present
and null, since the clouds behind the runs support those constructs.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Literal, TextIO

from arbitrage.billing import LOCAL_PROVIDER, attempt_usd_per_hour
from arbitrage.egress import EgressPath, egress_path
from arbitrage.ledger import AttemptRow, PlacementRow, RunRow
from arbitrage.money import cost_micro, exact_seconds, usd
from arbitrage.report.spend import RunLedger
from providers.registry import find

FOCUS_VERSION = "1.2"

Granularity = Literal["day", "hour"]
GRANULARITIES: tuple[Granularity, ...] = ("day", "hour")

# The FOCUS 1.2 columns gpuarb writes, in the specification's order (alphabetical by column id).
FOCUS_COLUMNS: tuple[str, ...] = (
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "CapacityReservationId", "CapacityReservationStatus",
    "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus", "CommitmentDiscountType", "CommitmentDiscountUnit", "ConsumedQuantity",
    "ConsumedUnit", "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceIssuerName", "ListCost",
    "ListUnitPrice", "PricingCategory", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
    "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType", "ServiceCategory", "ServiceName",
    "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId", "SubAccountId", "SubAccountName",
    "Tags",
)
# FOCUS 1.2 columns whose feature level is Mandatory: all must be present in every dataset.
MANDATORY_COLUMNS: frozenset[str] = frozenset({
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
    "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
})
# gpuarb's own columns (FOCUS custom columns carry the x_ prefix and come after the FOCUS ones).
CUSTOM_COLUMNS: tuple[str, ...] = ("x_GpuarbRunId", "x_GpuarbAttempt", "x_GpuHours", "x_PriceSource",
                                   "x_PriceAsOf", "x_PriceRef")
COLUMNS: tuple[str, ...] = FOCUS_COLUMNS + CUSTOM_COLUMNS

TAG_PREFIX = "gpuarb:"  # gpuarb's own tag keys; the job spec's tags are the one user-defined scheme, unprefixed


@dataclass(frozen=True)
class DataHome:
    """Where a run's input data lives (its provider bills the input egress) and how much moves each way."""

    provider: str
    region: str
    size_gb: float
    outputs_gb: float
    uri: str | None = None


def provider_name(provider: str) -> str:
    """The name FOCUS rows use for a gpuarb provider id (ProviderName = PublisherName = InvoiceIssuerName).

    From the provider's card (providers/registry.py); a provider no longer carded keeps its id.
    """
    info = find(provider)
    return info.focus_name if info is not None else provider


def compute_service(provider: str) -> str:
    """The FOCUS ServiceName of a provider's GPU compute."""
    info = find(provider)
    return info.focus_compute_service if info is not None else f"{provider} GPU Cloud"


def egress_service(provider: str) -> str:
    """The FOCUS ServiceName of a provider's data transfer."""
    info = find(provider)
    return info.focus_egress_service if info is not None else f"{provider} Data Transfer"


def billing_account(provider: str, accounts: Mapping[str, str]) -> str:
    """The billing account for a provider: the one given (by provider id, or '*' for all), else 'gpuarb-<id>'."""
    return accounts.get(provider) or accounts.get("*") or f"gpuarb-{provider}"


def utc_text(ts: datetime) -> str:
    """FOCUS Date/Time format: extended ISO 8601 in UTC with a Z, to the second."""
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bucket_start(ts: datetime, granularity: Granularity) -> datetime:
    ts = ts.astimezone(timezone.utc)
    return ts.replace(minute=0, second=0, microsecond=0) if granularity == "hour" else \
        ts.replace(hour=0, minute=0, second=0, microsecond=0)


def _step(granularity: Granularity) -> timedelta:
    return timedelta(hours=1) if granularity == "hour" else timedelta(days=1)


def charge_periods(start: datetime, end: datetime, granularity: Granularity) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at UTC day (or hour) boundaries; empty when end <= start."""
    out = []
    cursor = start.astimezone(timezone.utc)
    end = end.astimezone(timezone.utc)
    while cursor < end:
        boundary = _bucket_start(cursor, granularity) + _step(granularity)
        out.append((cursor, min(boundary, end)))
        cursor = boundary
    return out


def billing_period(ts: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar month holding ``ts``: (inclusive start, exclusive end)."""
    start = ts.astimezone(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def _tags(run: RunRow) -> str:
    return json.dumps({**run.tags, f"{TAG_PREFIX}run-id": run.id, f"{TAG_PREFIX}job": run.name}, sort_keys=True)


def _nulls() -> dict[str, object]:
    return dict.fromkeys(COLUMNS)


def _common(run: RunRow, provider: str, period: tuple[datetime, datetime], accounts: Mapping[str, str],
            cost_usd: float, unit_price_usd: float, quantity: float, unit: str) -> dict[str, object]:
    """The columns every gpuarb usage row fills the same way: account, period, currency, costs, quantities."""
    row = _nulls()
    bill_start, bill_end = billing_period(period[0])
    row.update({
        "BilledCost": cost_usd, "EffectiveCost": cost_usd, "ListCost": cost_usd, "ContractedCost": cost_usd,
        "ListUnitPrice": unit_price_usd, "ContractedUnitPrice": unit_price_usd,
        "PricingQuantity": quantity, "PricingUnit": unit, "ConsumedQuantity": quantity, "ConsumedUnit": unit,
        "BillingAccountId": billing_account(provider, accounts), "BillingCurrency": run.currency,
        "BillingPeriodStart": utc_text(bill_start), "BillingPeriodEnd": utc_text(bill_end),
        "ChargePeriodStart": utc_text(period[0]), "ChargePeriodEnd": utc_text(period[1]),
        "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based",
        "ProviderName": provider_name(provider), "PublisherName": provider_name(provider),
        "InvoiceIssuerName": provider_name(provider), "Tags": _tags(run), "x_GpuarbRunId": run.id,
    })
    return row


def compute_rows(run: RunRow, attempt: AttemptRow, p: PlacementRow, now: datetime, *, since: datetime | None,
                 granularity: Granularity, accounts: Mapping[str, str]) -> list[dict[str, object]]:
    """One attempt as FOCUS usage rows, one per charge period, clipped to start no earlier than ``since``."""
    start = attempt.started_at if since is None else max(attempt.started_at, since)
    end = attempt.ended_at or now
    cluster_usd_per_hour = attempt_usd_per_hour(attempt, p)
    price_usd_per_instance_hour = cluster_usd_per_hour / p.nodes
    kind = "spot" if p.spot else "on-demand"
    rows = []
    # Each period's cost is the change in the rounded cost so far (whole micro-USD), so an attempt's rows add up
    # to exactly what billing charges for it, and no row carries float noise (0.010750000000000001).
    billed_micro, seconds_so_far = 0, Fraction(0)
    for period in charge_periods(start, end, granularity):
        seconds = exact_seconds(period[1] - period[0])
        seconds_so_far += seconds
        cost = cost_micro(cluster_usd_per_hour, seconds_so_far) - billed_micro
        billed_micro += cost
        instance_hours = float(seconds) / 3600 * p.nodes
        row = _common(run, p.provider, period, accounts, usd(cost), price_usd_per_instance_hour, instance_hours,
                      "Hours")
        row.update({
            "ChargeDescription": f"{p.label}: attempt {attempt.n} of run {run.id} ({run.name})",
            "PricingCategory": "Dynamic" if p.spot else "Standard",
            "ServiceCategory": "Compute", "ServiceSubcategory": "Virtual Machines",
            "ServiceName": compute_service(p.provider),
            "RegionId": p.region, "RegionName": p.region, "AvailabilityZone": p.zone,
            "ResourceId": attempt.cluster_name, "ResourceName": run.name, "ResourceType": "GPU Cluster",
            "SkuId": p.instance_type, "SkuMeter": "Instance Hours",
            "SkuPriceId": f"{p.provider}:{p.zone or p.region}:{p.instance_type}:{kind}",
            "SkuPriceDetails": json.dumps({"GpuCount": p.gpus_per_node, "InstanceType": p.instance_type,
                                           "x_Accelerator": p.accelerator, "x_Spot": p.spot}, sort_keys=True),
            "x_GpuarbAttempt": attempt.n, "x_GpuHours": instance_hours * p.gpus_per_node,
            "x_PriceSource": p.price_source, "x_PriceAsOf": p.price_as_of, "x_PriceRef": p.price_ref,
        })
        rows.append(row)
    return rows


# SkuId of a data-transfer row, by the kind of transfer (arbitrage.egress); a transfer whose destination is
# unknown (the job spec could not be re-read) is plain "data-transfer".
EGRESS_SKUS: dict[EgressPath, str] = {
    "internet": "data-transfer-internet", "inter_continent": "data-transfer-inter-continent",
    "inter_region": "data-transfer-inter-region", "local_zone": "data-transfer-local-zone",
    "same_region": "data-transfer-same-region",
}


def egress_sku(src: tuple[str, str], dst: tuple[str, str] | None) -> str:
    """The SkuId of a transfer from ``src`` to ``dst`` (each (provider, region)), classified by the egress rule."""
    return "data-transfer" if dst is None else EGRESS_SKUS[egress_path(*src, *dst)]


def egress_row(run: RunRow, *, direction: Literal["in", "out"], usd: float, at: datetime,
               src: tuple[str, str], dst: tuple[str, str] | None, gb: float | None, resource: str | None,
               resource_type: str | None, granularity: Granularity, accounts: Mapping[str, str],
               note: str = "") -> dict[str, object]:
    """One data-transfer charge (billed by ``src``'s provider) in the charge period holding ``at``."""
    provider, region = src
    start = _bucket_start(at, granularity)
    quantity, unit = (gb, "GB") if gb else (1.0, "Transfers")
    # BilledCost is exactly what the ledger charged; the unit price is derived from it (tiers make it an average).
    row = _common(run, provider, (start, start + _step(granularity)), accounts, usd, usd / quantity, quantity, unit)
    what = "input data staged to the run" if direction == "in" else "outputs sent back to the data's home"
    to = f" to {dst[0]} {dst[1]}" if dst else ""
    sku = egress_sku(src, dst)
    row.update({
        "ChargeDescription": f"Data transfer out of {provider} {region}{to}: {what}, run {run.id} ({run.name}){note}",
        "PricingCategory": "Standard", "ServiceCategory": "Networking", "ServiceSubcategory": "Network Connectivity",
        "ServiceName": egress_service(provider),
        "RegionId": region or None, "RegionName": region or None,
        "ResourceId": resource, "ResourceName": run.name if resource_type == "GPU Cluster" else None,
        "ResourceType": resource_type if resource else None,
        "SkuId": sku, "SkuMeter": "Data Transfer", "SkuPriceId": f"{provider}:{region}:{sku}",
        "x_PriceSource": "ledger", "x_PriceRef": f"egress_{direction}_usd charged to run {run.id}",
    })
    return row


def _egress_rows(record: RunLedger, home: DataHome | None, now: datetime, *, since: datetime | None,
                 granularity: Granularity, accounts: Mapping[str, str]) -> list[dict[str, object]]:
    """The run's input and output transfer charges, when the ledger recorded any."""
    run = record.run
    launched = [a for a in record.attempts if a.running_at is not None] or list(record.attempts)
    first = record.placement(launched[0].rank) if launched else (record.placements[0] if record.placements else None)
    finished = [a for a in record.attempts if a.outcome == "succeeded"]
    last_attempt = finished[-1] if finished else (record.attempts[-1] if record.attempts else None)
    last = record.placement(last_attempt.rank) if last_attempt else first
    rows = []
    if run.egress_in_usd > 0 and first is not None:
        at = (launched[0].running_at or launched[0].started_at) if launched else run.created_at
        src = (home.provider, home.region) if home else (first.provider, first.region)
        note = "" if home else " (data home unknown: the job spec could not be re-read)"
        if since is None or at >= since:
            rows.append(egress_row(
                run, direction="in", usd=run.egress_in_usd, at=at, src=src,
                dst=(first.provider, first.region), gb=home.size_gb if home else None,
                resource=home.uri if home else None, resource_type="Object Storage Bucket", granularity=granularity,
                accounts=accounts, note=note))
    if run.egress_out_usd > 0 and last is not None:
        at = (last_attempt.ended_at if last_attempt and last_attempt.ended_at else None) or run.ended_at or now
        if since is None or at >= since:
            rows.append(egress_row(
                run, direction="out", usd=run.egress_out_usd, at=at, src=(last.provider, last.region),
                dst=(home.provider, home.region) if home else None, gb=home.outputs_gb if home else None,
                resource=last_attempt.cluster_name if last_attempt else None, resource_type="GPU Cluster",
                granularity=granularity, accounts=accounts))
    return rows


def focus_rows(records: Iterable[RunLedger], now: datetime, *, since: datetime | None = None,
               granularity: Granularity = "day", data_homes: Mapping[str, DataHome] | None = None,
               billing_accounts: Mapping[str, str] | None = None) -> list[dict[str, object]]:
    """Every run's compute and egress charges as FOCUS 1.2 rows (dicts keyed by COLUMNS), in time order.

    Runs booked under the provider ``local`` (a `--backend local` rehearsal at $0) have no charges and no rows.
    ``since`` keeps only charges incurred from then on (an attempt that straddles it is clipped); ``data_homes``
    maps run id to where its input data lives; ``billing_accounts`` maps provider id (or '*') to an account id.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")
    now = now.astimezone(timezone.utc).replace(microsecond=0)
    homes = data_homes or {}
    accounts = billing_accounts or {}
    rows: list[dict[str, object]] = []
    for record in records:
        if all(p.provider == LOCAL_PROVIDER for p in record.placements):
            continue  # a rehearsal on this machine: nothing rented, no charge to anyone (billing.LOCAL_PROVIDER)
        for attempt in record.attempts:
            rows += compute_rows(record.run, attempt, record.placement(attempt.rank), now, since=since,
                                 granularity=granularity, accounts=accounts)
        rows += _egress_rows(record, homes.get(record.run.id), now, since=since, granularity=granularity,
                             accounts=accounts)
    rows.sort(key=lambda r: (str(r["ChargePeriodStart"]), str(r["x_GpuarbRunId"]), r["ServiceCategory"] != "Compute",
                             r["x_GpuarbAttempt"] or 0, str(r["ChargeDescription"])))
    return rows


def focus_number(value: float | int) -> str:
    """A number in FOCUS Numeric Format: plain decimal, shortest round-trip digits, never a '+' or a comma."""
    if isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"not a FOCUS number: {value!r}")
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    if "e" in text or "E" in text:  # tiny or huge values: the same digits written out, never 1e-05 or 1e+16
        text = format(Decimal(text), "f")
    return "0" if text in ("-0.0", "-0") else text


def write_focus_csv(rows: Iterable[Mapping[str, object]], out: TextIO) -> int:
    """Write the header and rows as CSV (nulls as empty cells) to ``out``; returns the number of rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    n = 0
    for row in rows:
        writer.writerow(["" if row.get(c) is None else focus_number(row[c])  # type: ignore[arg-type]
                         if isinstance(row.get(c), (int, float)) else str(row[c]) for c in COLUMNS])
        n += 1
    return n


def focus_json(rows: Iterable[Mapping[str, object]]) -> tuple[str, int]:
    """The rows as a JSON array of objects keyed by COLUMNS, with the CSV's values: each number written with the
    very digits the CSV has (``focus_number``: exact, never 1e-05), nulls as null, text (Tags too) as strings.
    Returns the document (indented as ``json.dumps(indent=2)``) and the number of rows."""
    items = []
    for row in rows:
        fields = []
        for c in COLUMNS:
            value = row.get(c)
            if value is None:
                text = "null"
            elif isinstance(value, (int, float)):
                text = focus_number(value)
            else:
                text = json.dumps(str(value))
            fields.append(f"    {json.dumps(c)}: {text}")
        items.append("  {\n" + ",\n".join(fields) + "\n  }")
    return ("[\n" + ",\n".join(items) + "\n]\n" if items else "[]\n"), len(items)


def focus_text(rows: Iterable[Mapping[str, object]], fmt: str) -> tuple[str, int]:
    """The FOCUS export as `gpuarb export focus --format FMT` writes it (csv or json) and its row count."""
    if fmt == "json":
        return focus_json(rows)
    import io

    buf = io.StringIO()
    n = write_focus_csv(rows, buf)
    return buf.getvalue(), n

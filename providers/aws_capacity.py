"""AWS spot placement scores: how likely a spot request for N instances of a type is to be fulfilled, per zone.

API: EC2 ``GetSpotPlacementScores`` (docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetSpotPlacementScores.html),
called with AWS credentials (boto3's chain, as the price adapter finds them; IAM action
``ec2:GetSpotPlacementScores``) for one instance type, a target capacity of the job's nodes (units = instances),
``SingleAvailabilityZone=True`` and up to 10 regions per call. The answer::

    {"SpotPlacementScores": [{"Region": "us-east-1", "AvailabilityZoneId": "use1-az4", "Score": 7}, ...],
     "NextToken": "..."}

holds "the Spot placement score for the top 10 Regions or Availability Zones, scored on a scale from 1 to 10 ...
A score of 10 means that your Spot capacity request is highly likely to succeed"; a zone outside the top 10 gets
no score (and so no signal). Each score becomes an ``arbitrage.capacity.CapacitySignal`` of score / 10 for that
zone id (the snapshot's AWS zones are zone ids). Answers are cached for ``TTL_SECONDS`` in one cache document.
boto3 is imported only when called; tests pass a Stubber-wrapped client as ``ctx.sdk['aws_client_factory']``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from arbitrage import paths
from arbitrage.capacity import CapacitySignal
from providers import cache
from providers.base import FetchContext, MissingCredentials, ProviderError

NAME = "aws-spot-placement-scores"
API_REGION = "us-east-1"  # any enabled region answers for every region named in RegionNames
TTL_SECONDS = 900  # scores describe capacity now
DOCUMENT = "spot-placement-scores-aws"
MAX_REGIONS = 10  # RegionNames holds at most 10
MAX_PAGES = 20


def _key(instance_type: str, nodes: int, regions: Sequence[str]) -> str:
    return f"{instance_type}|{nodes}|{','.join(regions)}"


def parse_scores(page: Any, instance_type: str, nodes: int, fetched_at: str) -> list[CapacitySignal]:
    """Signals from one GetSpotPlacementScores page (zone-level scores; a region-level one has no zone)."""
    rows = page.get("SpotPlacementScores") if isinstance(page, dict) else None
    if not isinstance(rows, list):
        raise ProviderError(NAME, "answer lacks the 'SpotPlacementScores' list")
    out = []
    for row in rows:
        score, region = row.get("Score"), row.get("Region")
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 10 or not region:
            continue
        zone = row.get("AvailabilityZoneId") or None
        where = f"{region}/{zone}" if zone else region
        out.append(CapacitySignal(
            "aws", str(region), zone, instance_type, True, score / 10, f"AWS score {score}/10",
            f"AWS spot placement score {score}/10 for {nodes} x {instance_type} in {where} (GetSpotPlacementScores, "
            f"live {fetched_at})", fetched_at, nodes))
    return out


def fetch_scores(ctx: FetchContext, instance_type: str, regions: Sequence[str], nodes: int) -> list[CapacitySignal]:
    """Every zone score AWS returns for ``nodes`` x ``instance_type`` over ``regions`` (<= 10 per call)."""
    from providers import aws

    factory = ctx.sdk.get("aws_client_factory") or aws.default_client_factory(ctx)
    client = factory("ec2", API_REGION)
    stamp = ctx.now.isoformat(timespec="seconds")
    out: list[CapacitySignal] = []
    for start in range(0, len(regions), MAX_REGIONS):
        params: dict[str, Any] = {
            "InstanceTypes": [instance_type], "TargetCapacity": max(1, nodes), "TargetCapacityUnitType": "units",
            "SingleAvailabilityZone": True, "RegionNames": list(regions[start:start + MAX_REGIONS]),
            "MaxResults": 10}
        for _ in range(MAX_PAGES):
            page = aws.call(ctx, client, "ec2", "get_spot_placement_scores", API_REGION, **params)
            out += parse_scores(page, instance_type, nodes, stamp)
            token = page.get("NextToken")
            if not token:
                break
            params["NextToken"] = token
    return out


def placement_scores(ctx: FetchContext, wanted: Iterable[tuple[str, tuple[str, ...], int]],
                     now: datetime | None = None) -> tuple[list[CapacitySignal], str]:
    """Scores for each (instance type, regions, nodes), cached; and a notice ('' when all went well).

    Without credentials nothing is asked (the notice says so); a failed call keeps what was fetched and names
    the failure. Never raises.
    """
    from providers import aws

    if not aws.has_credentials(ctx):
        return [], f"{NAME}: no AWS credentials, so no spot placement scores"
    directory = paths.cache_dir(ctx.env)
    doc = cache.read_document(directory, DOCUMENT) or {}
    entries: dict[str, Any] = dict(doc.get("entries") or {})
    moment = now or ctx.now
    out: list[CapacitySignal] = []
    problem = ""
    changed = False
    for instance_type, regions, nodes in wanted:
        key = _key(instance_type, nodes, sorted(regions))
        hit = entries.get(key)
        if isinstance(hit, dict) and hit.get("fetched_at"):
            try:
                fresh = (moment - datetime.fromisoformat(hit["fetched_at"])).total_seconds() <= TTL_SECONDS
            except (TypeError, ValueError):
                fresh = False
            if fresh:
                out += [CapacitySignal(**row) for row in hit.get("signals", []) if isinstance(row, dict)]
                continue
        try:
            got = fetch_scores(ctx, instance_type, sorted(regions), nodes)
        except MissingCredentials as exc:
            return out, str(exc)
        except ProviderError as exc:
            problem = str(exc)
            continue
        except ImportError as exc:
            return out, f"{NAME}: needs the '{exc.name}' package (pip install 'gpuarb[aws]')"
        out += got
        entries[key] = {"fetched_at": moment.isoformat(timespec="seconds"),
                        "signals": [{f: getattr(s, f) for f in s.__slots__} for s in got]}  # type: ignore[attr-defined]
        changed = True
    if changed:
        cache.write_document(directory, DOCUMENT, {"entries": entries})
    return out, problem

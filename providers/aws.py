"""AWS EC2 GPU prices: on-demand from the Price List Query API, spot from EC2's spot price history.

Docs: https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSpotPriceHistory.html and
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypes.html.

* On-demand: `pricing:GetProducts` (endpoint in us-east-1; it answers for every region): one query for
  every instance type and region at once (Linux, shared tenancy, used capacity, no pre-installed software,
  ``instanceType`` and ``regionCode`` as ``ANY_OF`` filters whose Value is a comma-separated list, see
  https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_Filter.html), paged by
  NextToken. A list longer than the API's 1,024 characters per Value is cut into several queries, which
  run at most 8 at a time, each in its own thread. Each PriceList entry is a JSON *string*. Capacity
  Block products (marketoption 'CapacityBlock', published at $0.00 for p5) and Local/Wavelength Zone
  products are dropped; a price that is not USD per 'Hrs' is an error.
* Spot: `ec2:DescribeSpotPriceHistory` per region from `ctx.now`, which returns the price in effect at
  that time for each zone; the newest price per (instance type, zone) wins. Regions are fetched
  concurrently, each in its own thread.
* GPUs: `ec2:DescribeInstanceTypes` (GpuInfo) names the GPU, its count and memory, each type asked once,
  in the first configured region that sells it (regions asked concurrently). AWS calls both A100 sizes
  'A100'; the memory (40960 vs 81920 MiB) picks A100 or A100-80GB.

One offer per (region, zone) where a zone has a spot price, carrying the region's on-demand price
too; a region with an on-demand price but no spot price gets one region-level offer (zone None).
Zones are AWS zone IDs (use1-az4) where the API gives them, as in the bundled snapshot.

boto3 is imported inside functions only (`gpuarb --help` must not import it). Tests hand in
Stubber-wrapped clients through ``ctx.sdk["aws_client_factory"]``: a callable (service, region) -> client.
"""

from __future__ import annotations

import configparser
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from arbitrage.egress import is_local_zone
from arbitrage.offers import Offer
from arbitrage.plural import plural
from providers.base import FetchContext, MissingCredentials, ProviderError, make_live_offer

log = logging.getLogger(__name__)

NAME = "aws"
PRICING_REGION = "us-east-1"  # the Price List Query API endpoint; it prices every region



@dataclass(frozen=True)
class FamilyGpus:
    """What an EC2 instance family carries: the GPU (SkyPilot/AWS name), its memory, and GPUs per size."""

    gpu: str
    memory_mib: int
    counts: Mapping[str, int]


# GPU facts per instance family, for when DescribeInstanceTypes names the GPU generically ('NVIDIA' for
# p5e/p5en, SkyPilot fetch_aws.py #4652), reports 'Count: 0' (p5.4xlarge), or does not describe the type at all
# (p4de.24xlarge for ordinary accounts; gpuhunt aws.py lists it as a preview GPU, A100 80 GB). Source: AWS EC2
# 'Accelerated computing instance specifications' (docs.aws.amazon.com/ec2/latest/instancetypes/ac.html: GPUs
# per size and GPU memory), read 2026-12, cross-checked with the SkyPilot v8 AWS catalog (AcceleratorName,
# AcceleratorCount, GpuInfo MemoryInfo) and SkyPilot's fetch_aws.py workarounds. Memory is what
# DescribeInstanceTypes reports (A10G and L4: 22888 MiB for 24 GB, L40S 45776 MiB for 48 GB); the offer shows
# gpus.csv's size when the two agree within 10 %.
_G_SIZES_1_4_8 = {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4,
                  "24xlarge": 4, "48xlarge": 8}
FAMILY_GPUS: dict[str, FamilyGpus] = {
    "p3": FamilyGpus("V100", 16384, {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8}),
    "p4d": FamilyGpus("A100", 40960, {"24xlarge": 8}),
    "p4de": FamilyGpus("A100", 81920, {"24xlarge": 8}),
    "p5": FamilyGpus("H100", 81920, {"4xlarge": 1, "48xlarge": 8}),
    "p5e": FamilyGpus("H200", 144384, {"48xlarge": 8}),
    "p5en": FamilyGpus("H200", 144384, {"48xlarge": 8}),
    "p6-b200": FamilyGpus("B200", 183359, {"48xlarge": 8}),
    "p6-b300": FamilyGpus("B300", 275040, {"48xlarge": 8}),
    "g4dn": FamilyGpus("T4", 16384, {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1,
                                     "12xlarge": 4, "metal": 8}),
    "g5": FamilyGpus("A10G", 22888, _G_SIZES_1_4_8),
    "g6": FamilyGpus("L4", 22888, _G_SIZES_1_4_8),
    "g6e": FamilyGpus("L40S", 45776, _G_SIZES_1_4_8),
}
FAMILY_SOURCE = "AWS EC2 accelerated computing instance specifications (GPUs per size), gpuarb family table"

# EC2 instance types carrying the GPUs gpuarb costs: A100/H100/H200/B200/B300 (p4d..p6) and the small GPUs real
# inference and fine-tuning jobs ask for (T4 g4dn, A10G g5, L4 g6, L40S g6e, V100 p3). Every size of each family.
DEFAULT_INSTANCE_TYPES: tuple[str, ...] = (
    "p4d.24xlarge", "p4de.24xlarge", "p5.4xlarge", "p5.48xlarge", "p5e.48xlarge", "p5en.48xlarge",
    "p6-b200.48xlarge", "p6-b300.48xlarge",
    *(f"{family}.{size}" for family in ("g4dn", "g5", "g6", "g6e", "p3") for size in FAMILY_GPUS[family].counts),
)
# Regions where those types are sold (SkyPilot AWS catalog, see shared/catalog-snapshot/aws), opt-in
# regions (ap-southeast-3, eu-south-2, me-central-1...) left out: an account must enable them first.
DEFAULT_REGIONS: tuple[str, ...] = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-central-1", "eu-north-1",
    "eu-west-1", "eu-west-2", "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1",
    "ap-southeast-2",
)
# Overrides: comma-separated lists in the environment, or sequences in ctx.sdk (tests).
REGIONS_ENV = "GPUARB_AWS_REGIONS"
INSTANCE_TYPES_ENV = "GPUARB_AWS_INSTANCE_TYPES"

PRODUCT_FILTERS: tuple[tuple[str, str], ...] = (
    ("operatingSystem", "Linux"), ("tenancy", "Shared"), ("capacitystatus", "Used"), ("preInstalledSw", "NA"),
)
SPOT_PRODUCT = "Linux/UNIX"
MAX_PAGES = 200
FILTER_VALUE_MAX = 1024  # the Price List API's length limit on one filter's Value
MAX_THREADS = 8  # concurrent GetProducts queries / DescribeInstanceTypes regions

# Error codes worth another attempt (throttling, transient server faults).
RETRY_CODES = frozenset({
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException",
    "TooManyRequestsException", "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable",
})
# Error codes that mean the caller's identity or permissions are the problem.
AUTH_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure", "OptInRequired",
    "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
    "SignatureDoesNotMatch", "MissingAuthenticationToken",
})
IAM_ACTIONS = "pricing:GetProducts, ec2:DescribeSpotPriceHistory, ec2:DescribeInstanceTypes"

# Price List `location` names, for products that carry no `regionCode` attribute.
LOCATION_REGIONS: dict[str, str] = {
    "US East (N. Virginia)": "us-east-1", "US East (Ohio)": "us-east-2", "US West (N. California)": "us-west-1",
    "US West (Oregon)": "us-west-2", "Canada (Central)": "ca-central-1", "EU (Frankfurt)": "eu-central-1",
    "EU (Stockholm)": "eu-north-1", "EU (Ireland)": "eu-west-1", "EU (London)": "eu-west-2",
    "EU (Paris)": "eu-west-3", "EU (Spain)": "eu-south-2", "Asia Pacific (Tokyo)": "ap-northeast-1",
    "Asia Pacific (Seoul)": "ap-northeast-2", "Asia Pacific (Mumbai)": "ap-south-1",
    "Asia Pacific (Singapore)": "ap-southeast-1", "Asia Pacific (Sydney)": "ap-southeast-2",
    "Asia Pacific (Jakarta)": "ap-southeast-3", "Middle East (UAE)": "me-central-1",
    "South America (Sao Paulo)": "sa-east-1",
}

# Config-file keys that let botocore build credentials for a profile without access keys in it.
_CONFIG_CREDENTIAL_KEYS = frozenset({
    "aws_access_key_id", "credential_process", "role_arn", "sso_start_url", "sso_session",
    "web_identity_token_file", "login_session", "credential_source",
})

ClientFactory = Callable[[str, str], Any]

# Indirection so tests can record backoff without sleeping.
_sleep = time.sleep


# -- Parsed records ----------------------------------------------------------------------------

@dataclass(frozen=True)
class OnDemandPrice:
    """One Linux on-demand hourly price from the Price List."""

    instance_type: str
    region: str
    usd_per_hour: float
    sku: str
    effective: str
    vcpus: float | None
    ram_gb: float | None
    gpus: int | None
    gpu_memory_total_gb: float | None


@dataclass(frozen=True)
class SpotPrice:
    """The newest spot price of one instance type in one zone."""

    instance_type: str
    zone_name: str
    zone_id: str | None
    usd_per_hour: float
    timestamp: datetime


@dataclass(frozen=True)
class GpuInfo:
    """What DescribeInstanceTypes says about an instance type's GPUs and host."""

    name: str
    count: int
    memory_mib: int | None
    vcpus: float | None
    ram_gb: float | None


# -- Configuration -----------------------------------------------------------------------------

def _list_setting(ctx: FetchContext, sdk_key: str, env_key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = ctx.sdk.get(sdk_key)
    if isinstance(value, str):
        value = value.split(",")
    if value:
        return tuple(str(v).strip() for v in value if str(v).strip())
    raw = ctx.env.get(env_key, "")
    items = tuple(part.strip() for part in raw.split(",") if part.strip())
    return items or default


def regions(ctx: FetchContext) -> tuple[str, ...]:
    """Regions to price: ctx.sdk['aws_regions'], else $GPUARB_AWS_REGIONS, else DEFAULT_REGIONS."""
    return _list_setting(ctx, "aws_regions", REGIONS_ENV, DEFAULT_REGIONS)


def instance_types(ctx: FetchContext) -> tuple[str, ...]:
    """Instance types to price: ctx.sdk['aws_instance_types'], else $GPUARB_AWS_INSTANCE_TYPES, else defaults."""
    return _list_setting(ctx, "aws_instance_types", INSTANCE_TYPES_ENV, DEFAULT_INSTANCE_TYPES)


def _any_of_values(values: Iterable[str], limit: int) -> list[str]:
    """Comma-separated ANY_OF Values, each at most `limit` characters (a longer single value stands alone)."""
    chunks: list[str] = []
    for value in values:
        if chunks and len(chunks[-1]) + 1 + len(value) <= limit:
            chunks[-1] += f",{value}"
        else:
            chunks.append(value)
    return chunks


def product_queries(types: Sequence[str], region_list: Sequence[str]) -> list[list[dict[str, str]]]:
    """GetProducts filter lists that together cover every (instance type, region): usually exactly one."""
    fixed = [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in PRODUCT_FILTERS]
    return [[*fixed, {"Type": "ANY_OF", "Field": "instanceType", "Value": type_values},
             {"Type": "ANY_OF", "Field": "regionCode", "Value": region_values}]
            for type_values in _any_of_values(types, FILTER_VALUE_MAX)
            for region_values in _any_of_values(region_list, FILTER_VALUE_MAX)]


# -- Credentials -------------------------------------------------------------------------------

def _home(env: Mapping[str, str]) -> Path:
    return Path(env["HOME"]) if env.get("HOME") else Path.home()


def _aws_file(env: Mapping[str, str], var: str, name: str) -> Path:
    configured = env.get(var)
    return Path(configured).expanduser() if configured else _home(env) / ".aws" / name


def _profile_has(path: Path, sections: Iterable[str], keys: Iterable[str]) -> bool:
    """True when an INI file has one of the sections with one of the keys (unreadable file: True)."""
    if not path.is_file():
        return False
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return True  # let botocore decide (and report) at fetch time
    wanted = set(keys)
    return any(parser.has_section(s) and wanted & set(parser.options(s)) for s in sections)


def _on_ec2() -> bool:
    """True on an EC2 instance (its instance role can supply credentials); reads DMI, no network."""
    for probe in ("/sys/devices/virtual/dmi/id/board_vendor", "/sys/devices/virtual/dmi/id/sys_vendor",
                  "/sys/hypervisor/uuid"):
        try:
            text = Path(probe).read_text(encoding="ascii", errors="ignore").strip().lower()
        except OSError:
            continue
        if text.startswith("amazon ec2") or text.startswith("ec2"):
            return True
    return False


def has_credentials(ctx: FetchContext) -> bool:
    """Whether botocore's default chain would find credentials, checked without network or subprocess.

    In chain order: access keys in the environment, a named profile, web identity (EKS) or container
    (ECS) credentials, the shared credentials file, the config file (SSO, assume-role, credential_process),
    then an EC2 instance role.
    """
    env = ctx.env
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return True
    if env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE"):
        return True
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
        return True
    if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        return True
    if _profile_has(_aws_file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials"), ["default"],
                    ["aws_access_key_id"]):
        return True
    if _profile_has(_aws_file(env, "AWS_CONFIG_FILE", "config"), ["default", "profile default"],
                    _CONFIG_CREDENTIAL_KEYS):
        return True
    return env.get("AWS_EC2_METADATA_DISABLED", "").lower() != "true" and _on_ec2()


# -- Calling AWS -------------------------------------------------------------------------------

def _api_name(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:200]


def call(ctx: FetchContext, client: Any, service: str, method: str, region: str, **params: Any) -> dict[str, Any]:
    """One AWS API call with gpuarb's retry policy; failures become one-line ProviderErrors.

    Throttling, transient server errors and connection/read timeouts are retried up to ctx.retries
    times with exponential backoff from ctx.backoff_s (capped at ctx.max_backoff_s).
    """
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
    )

    where = f"AWS {service}:{_api_name(method)} in {region}"
    attempt = 0
    while True:
        attempt += 1
        try:
            return getattr(client, method)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            message = _one_line(error.get("Message", ""))
            if code not in RETRY_CODES:
                hint = f" (needs IAM permissions {IAM_ACTIONS})" if code in AUTH_CODES else ""
                raise ProviderError(NAME, f"{where} failed: {code}: {message}{hint}") from None
            reason = f"{code}: {message}" if message else code
        except (NoCredentialsError, PartialCredentialsError, ProfileNotFound) as exc:
            raise MissingCredentials(NAME, f"{where}: {_one_line(exc)}") from None
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError) as exc:
            reason = f"{type(exc).__name__}: {_one_line(exc)}"
        except BotoCoreError as exc:
            raise ProviderError(NAME, f"{where} failed: {type(exc).__name__}: {_one_line(exc)}") from None
        if attempt > ctx.retries:
            raise ProviderError(NAME, f"{where} failed: {reason}; gave up after {plural(attempt, 'attempt')}")
        _sleep(min(ctx.backoff_s * 2 ** (attempt - 1), ctx.max_backoff_s))


def _pages(ctx: FetchContext, client: Any, service: str, method: str, region: str,
           **params: Any) -> Iterable[dict[str, Any]]:
    """Every page of a NextToken-paginated call, to the end."""
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        page = call(ctx, client, service, method, region, **params)
        yield page
        token = page.get("NextToken")
        if not token:
            return
        if token in seen:
            raise ProviderError(NAME, f"AWS {service}:{_api_name(method)} in {region} repeated a NextToken")
        seen.add(token)
        params["NextToken"] = token
    raise ProviderError(NAME, f"AWS {service}:{_api_name(method)} in {region}: more than {MAX_PAGES} pages")


def default_client_factory(ctx: FetchContext) -> ClientFactory:
    """boto3 clients from one session, credentials by boto3's chain (keys/profile taken from ctx.env)."""
    import boto3
    from botocore.config import Config

    from arbitrage import __version__

    env = ctx.env
    keys = env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY")
    session = boto3.session.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") if keys else None,
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") if keys else None,
        aws_session_token=env.get("AWS_SESSION_TOKEN") if keys else None,
        profile_name=None if keys else (env.get("AWS_PROFILE") or None),
    )
    config = Config(connect_timeout=ctx.timeout_s, read_timeout=ctx.timeout_s, user_agent_extra=f"gpuarb/{__version__}",
                    retries={"total_max_attempts": 1, "mode": "standard"})  # retries are ours (call())

    def factory(service: str, region: str) -> Any:
        return session.client(service, region_name=region, config=config)

    return factory


def _make_clients(ctx: FetchContext, region_list: tuple[str, ...]) -> tuple[Any, dict[str, Any]]:
    """The pricing client and one EC2 client per region, created in one thread (sessions are not thread-safe)."""
    from botocore.exceptions import BotoCoreError, NoCredentialsError, ProfileNotFound

    try:
        factory: ClientFactory = ctx.sdk.get("aws_client_factory") or default_client_factory(ctx)
        return factory("pricing", PRICING_REGION), {r: factory("ec2", r) for r in region_list}
    except (NoCredentialsError, ProfileNotFound) as exc:
        raise MissingCredentials(NAME, _one_line(exc)) from None
    except BotoCoreError as exc:
        raise ProviderError(NAME, f"cannot create AWS clients: {_one_line(exc)}") from None


# -- On-demand prices (Price List Query API) -----------------------------------------------------

def _number(text: object) -> float | None:
    """The leading number of a Price List attribute such as '1152 GiB', '96' or '640 GB HBM3'."""
    if text is None:
        return None
    head = str(text).replace(",", "").strip().split(" ")[0]
    try:
        value = float(head)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def parse_price_item(raw: object, wanted_types: Iterable[str], wanted_regions: Iterable[str]) -> OnDemandPrice | None:
    """One PriceList entry (a JSON string) -> its hourly USD price, or None when it is not a product we price.

    Raises ProviderError on malformed JSON or a price that is not USD per 'Hrs'.
    """
    if not isinstance(raw, str):
        raise ProviderError(NAME, f"PriceList entry is {type(raw).__name__}, expected a JSON string")
    try:
        item = json.loads(raw)
        product = item["product"]
        attrs = product["attributes"]
        terms = item.get("terms", {}).get("OnDemand", {})
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        raise ProviderError(NAME, "PriceList entry is not a product JSON document") from None
    instance_type = attrs.get("instanceType")
    region = attrs.get("regionCode") or LOCATION_REGIONS.get(attrs.get("location", ""))
    if instance_type not in set(wanted_types) or region not in set(wanted_regions):
        return None
    if attrs.get("locationType", "AWS Region") != "AWS Region":
        return None  # Local Zone / Wavelength products
    if attrs.get("marketoption", "OnDemand") != "OnDemand" or attrs.get("operation", "RunInstances") != "RunInstances":
        return None  # Capacity Blocks (published at $0.00) and non-Linux operations
    sku = str(product.get("sku", "?"))
    found: tuple[float, str] | None = None
    for term in terms.values():
        for dim in term.get("priceDimensions", {}).values():
            if str(dim.get("beginRange", "0")) != "0":
                continue
            per_unit = dim.get("pricePerUnit", {})
            if "USD" not in per_unit:
                currencies = ", ".join(per_unit) or "none"
                raise ProviderError(NAME, f"Price List sku {sku} ({instance_type}, {region}) is priced in "
                                          f"{currencies}, expected USD")
            if dim.get("unit") != "Hrs":
                raise ProviderError(NAME, f"Price List sku {sku} ({instance_type}, {region}) is per "
                                          f"{dim.get('unit')!r}, expected 'Hrs'")
            try:
                price = float(per_unit["USD"])
            except (TypeError, ValueError):
                raise ProviderError(NAME, f"Price List sku {sku} has a non-numeric price "
                                          f"{per_unit['USD']!r}") from None
            if not math.isfinite(price) or price < 0:
                raise ProviderError(NAME, f"Price List sku {sku} has an invalid price {per_unit['USD']!r}")
            found = (price, str(term.get("effectiveDate", "")))
    if found is None:
        return None
    memory = _number(attrs.get("memory"))
    gpu_memory = _number(attrs.get("gpuMemory"))
    gpus = _number(attrs.get("gpu"))
    return OnDemandPrice(instance_type=instance_type, region=region, usd_per_hour=found[0], sku=sku,
                         effective=found[1][:10], vcpus=_number(attrs.get("vcpu")), ram_gb=memory,
                         gpus=int(gpus) if gpus else None, gpu_memory_total_gb=gpu_memory)


def _in_threads(work: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """work(item) for every item, at most MAX_THREADS at a time; one item runs in the calling thread."""
    if len(items) <= 1:
        return [work(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(MAX_THREADS, len(items)), thread_name_prefix="gpuarb-aws") as pool:
        return list(pool.map(work, items))


def fetch_on_demand(ctx: FetchContext, client: Any, types: tuple[str, ...],
                    region_list: tuple[str, ...]) -> dict[tuple[str, str], OnDemandPrice]:
    """(region, instance type) -> on-demand price from the product_queries, every page of each (run concurrently)."""

    def query(filters: list[dict[str, str]]) -> list[OnDemandPrice]:
        found = []
        for page in _pages(ctx, client, "pricing", "get_products", PRICING_REGION, ServiceCode="AmazonEC2",
                           Filters=filters, FormatVersion="aws_v1", MaxResults=100):
            for raw in page.get("PriceList", []):
                price = parse_price_item(raw, types, region_list)
                if price is not None:
                    found.append(price)
        return found

    prices: dict[tuple[str, str], OnDemandPrice] = {}
    for found in _in_threads(query, product_queries(types, region_list)):
        for price in found:
            key = (price.region, price.instance_type)
            old = prices.get(key)
            # Several products for one key: the cheapest, then the lowest SKU, whatever order the answers came in.
            if old is None or (price.usd_per_hour, price.sku) < (old.usd_per_hour, old.sku):
                prices[key] = price
    return prices


# -- Spot prices (EC2) -------------------------------------------------------------------------

def newest_spot(items: Iterable[Mapping[str, Any]], types: Iterable[str]) -> dict[tuple[str, str], SpotPrice]:
    """(instance type, zone name) -> the newest Linux/UNIX spot price among SpotPriceHistory items."""
    wanted = set(types)
    newest: dict[tuple[str, str], SpotPrice] = {}
    for item in items:
        if item.get("ProductDescription") != SPOT_PRODUCT or item.get("InstanceType") not in wanted:
            continue
        zone, stamp = item.get("AvailabilityZone"), item.get("Timestamp")
        if not zone or not isinstance(stamp, datetime):
            raise ProviderError(NAME, f"spot price item lacks AvailabilityZone or Timestamp: {_one_line(item)}")
        try:
            price = float(item["SpotPrice"])
        except (KeyError, TypeError, ValueError):
            raise ProviderError(NAME, f"spot price in {zone} is not a number: {item.get('SpotPrice')!r}") from None
        key = (item["InstanceType"], zone)
        if key not in newest or stamp > newest[key].timestamp:
            newest[key] = SpotPrice(item["InstanceType"], zone, item.get("AvailabilityZoneId"), price, stamp)
    return newest


def fetch_spot(ctx: FetchContext, client: Any, region: str,
               types: tuple[str, ...]) -> dict[tuple[str, str], SpotPrice]:
    """Newest spot price per (instance type, zone) in one region, all pages."""
    items: list[Mapping[str, Any]] = []
    for page in _pages(ctx, client, "ec2", "describe_spot_price_history", region, InstanceTypes=list(types),
                       ProductDescriptions=[SPOT_PRODUCT], StartTime=ctx.now):
        items.extend(page.get("SpotPriceHistory", []))
    return newest_spot(items, types)


# -- GPU facts (EC2 DescribeInstanceTypes) ---------------------------------------------------------

def parse_instance_type(info: Mapping[str, Any]) -> GpuInfo | None:
    """A DescribeInstanceTypes item -> its GPU facts as AWS states them, or None when it lists no GPU.

    The name and count are kept as given, even when wrong ('NVIDIA', Count 0): ``gpu_facts`` corrects them.
    """
    gpus = (info.get("GpuInfo") or {}).get("Gpus") or []
    if not gpus:
        return None
    first = gpus[0]
    memory = (first.get("MemoryInfo") or {}).get("SizeInMiB")
    vcpus = (info.get("VCpuInfo") or {}).get("DefaultVCpus")
    ram_mib = (info.get("MemoryInfo") or {}).get("SizeInMiB")
    return GpuInfo(name=str(first.get("Name") or ""), count=int(first.get("Count") or 0), memory_mib=memory or None,
                   vcpus=float(vcpus) if vcpus else None, ram_gb=ram_mib / 1024 if ram_mib else None)


def family_facts(instance_type: str) -> tuple[FamilyGpus | None, int | None]:
    """The family table's GPUs for an instance type and its size's GPU count ('g5.12xlarge' -> A10G, 4)."""
    family, _, size = instance_type.partition(".")
    table = FAMILY_GPUS.get(family)
    return table, (table.counts.get(size) if table else None)


def gpu_facts(ctx: FetchContext, instance_type: str, described: GpuInfo | None,
              od: OnDemandPrice | None) -> tuple[GpuInfo, str] | None:
    """GPU name, count and memory of an instance type, and a note saying which came from the family table.

    DescribeInstanceTypes wins where it names a GPU gpuarb knows and a positive count. The family table
    (``FAMILY_GPUS``) fills a generic name ('NVIDIA'), a zero count and a type that was not described; the Price
    List's ``gpu`` attribute is the last source of a count. None when nothing says what the GPUs are.
    """
    table, table_count = family_facts(instance_type)
    notes = []
    if described is not None and ctx.facts.canonical_gpu(described.name) is not None:
        name = described.name
    elif table is not None:
        name = table.gpu
        notes.append(f"GPU {table.gpu} from the family table (DescribeInstanceTypes "
                     + (f"named it '{described.name}')" if described is not None else "did not describe the type)"))
    else:
        return None
    if described is not None and described.count > 0:
        count = described.count
    elif table_count:
        count = table_count
        if described is not None:
            notes.append(f"{plural(count, 'GPU')} from the family table "
                         f"(DescribeInstanceTypes said Count {described.count})")
    elif od is not None and od.gpus:
        count = od.gpus
    else:
        return None
    memory = (described.memory_mib if described is not None and described.memory_mib else None) or (
        table.memory_mib if table is not None else None)
    vcpus = described.vcpus if described is not None else None
    ram_gb = described.ram_gb if described is not None else None
    return GpuInfo(name=name, count=count, memory_mib=memory, vcpus=vcpus, ram_gb=ram_gb), "; ".join(notes)


def describe_gpus(ctx: FetchContext, clients: Mapping[str, Any], region_list: tuple[str, ...],
                  types_by_region: Mapping[str, set[str]],
                  failed: dict[str, str] | None = None) -> dict[str, GpuInfo | None]:
    """Instance type -> GPU facts, each type described once, in the first region that sells it.

    Regions are asked concurrently; a type a region did not describe is asked again in the next region
    that sells it. With ``failed`` (region -> reason), a region whose call fails is recorded there and its
    types are asked in the next region instead of failing the whole lookup (regions already in it are skipped).
    """
    known: dict[str, GpuInfo | None] = {}
    asked: set[tuple[str, str]] = set()

    def describe(job: tuple[str, list[str]]) -> tuple[str, dict[str, GpuInfo | None] | ProviderError]:
        region, wanted = job
        found: dict[str, GpuInfo | None] = {}
        try:
            # A filter (unlike InstanceTypes=) does not fail on a type the region lacks.
            for page in _pages(ctx, clients[region], "ec2", "describe_instance_types", region,
                               Filters=[{"Name": "instance-type", "Values": wanted}]):
                for info in page.get("InstanceTypes", []):
                    if info.get("InstanceType") in wanted:
                        found[info["InstanceType"]] = parse_instance_type(info)
        except MissingCredentials:
            raise
        except ProviderError as exc:
            if failed is None:
                raise
            return region, exc
        return region, found

    while True:
        jobs: dict[str, list[str]] = {}
        for instance_type in sorted(set().union(*types_by_region.values()) - set(known)):
            region = next((r for r in region_list if instance_type in types_by_region.get(r, ())
                           and (r, instance_type) not in asked and r not in (failed or {})), None)
            if region is not None:
                asked.add((region, instance_type))
                jobs.setdefault(region, []).append(instance_type)
        if not jobs:
            return known
        for region, found in _in_threads(describe, [(r, jobs[r]) for r in region_list if r in jobs]):
            if isinstance(found, ProviderError):
                assert failed is not None
                failed[region] = str(found)
            else:
                known.update(found)


def accelerator_for(ctx: FetchContext, gpu_name: str, memory_mib: int | None) -> str | None:
    """AWS GPU name + per-GPU memory -> canonical accelerator, or None when gpuarb does not cost it.

    AWS names both A100 sizes 'A100'; among the model and its '<model>-*' variants in gpus.csv the one
    whose memory is closest to what AWS reports wins, the plain model on ties (H100 stays H100).
    """
    base = ctx.facts.canonical_gpu(gpu_name)
    if base is None or not memory_mib:
        return base
    memory_gb = memory_mib / 1024
    family = [g for g in ctx.facts.gpus.values() if g.name == base or g.name.startswith(base + "-")]
    return min(family, key=lambda g: (abs(g.memory_gb - memory_gb), g.name != base)).name


# -- Offers -----------------------------------------------------------------------------------

def offer_memory_gb(ctx: FetchContext, accelerator: str, memory_mib: int | None) -> float | None:
    """Per-GPU GB for an offer: gpus.csv's size when AWS's figure is within 10 % of it (A10G/L4 report 22888 MiB
    for 24 GB cards), else AWS's own, else None."""
    if not memory_mib:
        return None
    reported = memory_mib / 1024
    fact = ctx.facts.gpus.get(accelerator)
    if fact is not None and abs(reported - fact.memory_gb) <= 0.10 * fact.memory_gb:
        return fact.memory_gb
    return round(reported, 1)


def build_offers(ctx: FetchContext, on_demand: Mapping[tuple[str, str], OnDemandPrice],
                 spot: Mapping[str, Mapping[tuple[str, str], SpotPrice]],
                 gpus: Mapping[str, GpuInfo | None], skip_regions: Iterable[str] = ()) -> list[Offer]:
    """Per-zone offers where spot is priced (with the region's on-demand price), else one per region.

    A Local Zone (use1-atl2-az1) is a zone of its parent region with its own on-demand price, which the
    Price List query does not ask for (Local Zone products are dropped): its offers are spot-only. Regions
    in ``skip_regions`` (a call there failed) get no offers.
    """
    skipped = set(skip_regions)
    keys = set(on_demand) | {(region, t) for region, by_zone in spot.items() for t, _zone in by_zone}
    offers: list[Offer] = []
    for region, instance_type in sorted(keys):
        if region in skipped:
            continue
        od = on_demand.get((region, instance_type))
        resolved = gpu_facts(ctx, instance_type, gpus.get(instance_type), od)
        if resolved is None:
            continue  # no GPU (or unknown to EC2 and to the family table)
        info, note = resolved
        accelerator = accelerator_for(ctx, info.name, info.memory_mib)
        if accelerator is None:
            continue
        memory_gb = offer_memory_gb(ctx, accelerator, info.memory_mib) or (
            round(od.gpu_memory_total_gb / info.count, 1) if od and od.gpu_memory_total_gb else None)
        common = dict(provider=NAME, region=region, instance_type=instance_type, accelerator=accelerator,
                      gpus_per_node=info.count, gpu_memory_gb=memory_gb,
                      vcpus=(od.vcpus if od and od.vcpus else info.vcpus),
                      ram_gb=(od.ram_gb if od and od.ram_gb else info.ram_gb))
        od_ref = f"AWS Price List GetProducts sku {od.sku} (effective {od.effective})" if od else ""
        facts_ref = f"{note} ({FAMILY_SOURCE})" if note else ""
        zones = sorted((p for (t, _z), p in spot.get(region, {}).items() if t == instance_type),
                       key=lambda p: p.zone_id or p.zone_name)
        for price in zones:
            zone = price.zone_id or price.zone_name
            local = is_local_zone(zone)
            stamp = price.timestamp.isoformat(timespec="seconds")
            spot_ref = f"EC2 DescribeSpotPriceHistory {price.zone_name} at {stamp}"
            lz_ref = "Local Zone: spot only (its on-demand price is not the region's)" if local else ""
            refs = ("" if local else od_ref, spot_ref, lz_ref, facts_ref)
            offers.append(make_live_offer(ctx, **common, zone=zone, spot_usd_per_hour=price.usd_per_hour,
                                          on_demand_usd_per_hour=None if local or od is None else od.usd_per_hour,
                                          price_ref="; ".join(r for r in refs if r)))
        if not any(not is_local_zone(p.zone_id or p.zone_name) for p in zones) and od is not None:
            offers.append(make_live_offer(ctx, **common, zone=None, spot_usd_per_hour=None,
                                          on_demand_usd_per_hour=od.usd_per_hour,
                                          price_ref="; ".join(r for r in (od_ref, facts_ref) if r)))
    return [o for o in offers if o.on_demand_usd_per_hour is not None or o.spot_usd_per_hour is not None]


class AwsAdapter:
    """AWS EC2 adapter (boto3)."""

    name = NAME
    ttl_seconds = 3600  # spot prices move
    credentials_hint = ("AWS_ACCESS_KEY_ID+AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials or ~/.aws/config "
                        f"(SSO/assume-role), or an instance role; needs {IAM_ACTIONS}")

    def has_credentials(self, ctx: FetchContext) -> bool:
        """True when boto3's credential chain has somewhere to look (no network call)."""
        return has_credentials(ctx)

    async def fetch(self, ctx: FetchContext) -> list[Offer]:
        """Every GPU offer in the configured regions: on-demand per region, spot per zone.

        A region whose EC2 calls fail (not enabled for the account, throttled past the retries...) is left out
        with one warning naming it; the other regions' offers stay. Only when every region fails, or the Price
        List query (one for all regions) fails, does the fetch fail.
        """
        import asyncio

        region_list, types = regions(ctx), instance_types(ctx)
        pricing, ec2 = await asyncio.to_thread(_make_clients, ctx, region_list)
        results = await asyncio.gather(
            asyncio.to_thread(fetch_on_demand, ctx, pricing, types, region_list),
            *(asyncio.to_thread(_region_spot, ctx, ec2[r], r, types) for r in region_list),
        )
        on_demand: dict[tuple[str, str], OnDemandPrice] = results[0]
        failed: dict[str, str] = {}
        spot: dict[str, dict[tuple[str, str], SpotPrice]] = {}
        for region, answer in zip(region_list, results[1:], strict=True):
            if isinstance(answer, ProviderError):
                failed[region] = str(answer)
            else:
                spot[region] = answer
        types_by_region: dict[str, set[str]] = {r: {t for t, _z in spot[r]} for r in spot}
        for region, instance_type in on_demand:
            if region not in failed:
                types_by_region.setdefault(region, set()).add(instance_type)
        gpus = await asyncio.to_thread(describe_gpus, ctx, ec2, region_list, types_by_region, failed)
        if failed and len(failed) == len(region_list):
            first = failed[region_list[0]].removeprefix(f"{NAME}: ")
            raise ProviderError(NAME, f"every region failed ({', '.join(region_list)}); first: {first}")
        for region in region_list:
            if region in failed:
                log.warning("aws: region %s left out: %s", region, failed[region].removeprefix(f"{NAME}: "))
        return build_offers(ctx, on_demand, spot, gpus, skip_regions=failed)


def _region_spot(ctx: FetchContext, client: Any, region: str,
                 types: tuple[str, ...]) -> dict[tuple[str, str], SpotPrice] | ProviderError:
    """fetch_spot for one region, its failure returned (not raised) so the other regions go on; missing
    credentials still fail the whole fetch."""
    try:
        return fetch_spot(ctx, client, region, types)
    except MissingCredentials:
        raise
    except ProviderError as exc:
        return exc


ADAPTER = AwsAdapter()

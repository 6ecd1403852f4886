"""The provider cards: every per-provider fact gpuarb needs, one frozen ``ProviderInfo`` per provider.

A new provider is one adapter module plus one card here (and its tests). Nothing else in the code lists
providers: the job-spec parser, the baselines, the SkyPilot translation, the price report, the FOCUS export
and the price-source chooser all read these cards.

Pure data: importing this module does no I/O and imports no adapter, SDK or HTTP client, so the core may
import it. ``get_adapter`` imports an adapter module only when a live/cache refresh needs it, so the CLI
stays fast. CoreWeave has no price API: its adapter serves its published list (bundled, or the user's own
file). Nebius and Hyperbolic come from the SkyPilot catalogs and are served by the bundled snapshot alone.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from arbitrage.offers import INTERCONNECTS

if TYPE_CHECKING:
    from providers.base import Adapter

# Market tier, used to compare hyperscalers with neoclouds and marketplaces (and owned capacity).
Tier = Literal["hyperscaler", "specialised", "marketplace", "owned"]
TIERS: tuple[Tier, ...] = ("hyperscaler", "specialised", "marketplace", "owned")

# What a provider's spot (interruptible) capacity is:
#   market      - a provider-set price that moves with supply and demand (no bidding); reclaimed when needed;
#   preemptible - a published, discounted price that changes rarely; reclaimed when capacity is needed;
#   bid         - the renter bids; a higher bid (or an on-demand rental) takes the machine;
#   none        - no spot product.
SpotKind = Literal["market", "preemptible", "bid", "none"]
SPOT_KINDS: tuple[SpotKind, ...] = ("market", "preemptible", "bid", "none")

# Named SkyPilot pins for clouds whose SkyPilot names differ from the offer's (skytask implements each).
SpecialPin = Literal["runpod", "vast"]


@dataclass(frozen=True, slots=True)
class SkyPilotPin:
    """How a SkyPilot task pins one of this provider's placements, as data for ``skytask.pin``.

    ``cloud`` is SkyPilot's cloud name (the ``infra:`` prefix). ``pin_zone``: the offer's zone goes into the
    task (else SkyPilot picks the zone in the pinned region, with ``zone_note`` said when the offer had one;
    ``{zone}`` in it is the offer's zone). ``pin_accelerator``: the accelerator goes next to the instance type
    (else SkyPilot's own catalog supplies the instance type's GPUs). ``special`` names a pin skytask builds
    by its own rules (GPU names and data-centre ids that SkyPilot spells differently). ``catalog_rows``: the
    snapshot's rows for this provider are SkyPilot's own v8 catalog rows, so SkyPilot prices a pinned task
    exactly as gpuarb does.
    """

    cloud: str
    pin_zone: bool = False
    zone_note: str = ""
    pin_accelerator: bool = True
    special: SpecialPin | None = None
    catalog_rows: bool = False


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """One provider's card: names, tier, adapter, how SkyPilot launches it, clusters, spot, object stores.

    ``focus_name`` is the FOCUS ProviderName = PublisherName = InvoiceIssuerName (each provider sells and
    bills its own capacity). ``compute_service`` / ``egress_service`` are the FOCUS ServiceName of its GPU
    compute and of its data transfer ('' = '<focus_name> GPU Cloud' / '<focus_name> Data Transfer').
    ``adapter_module`` is the dotted path of its adapter module, None when the bundled snapshot alone serves it.
    Exactly one of ``skypilot`` (how a task pins it) and ``not_skypilot`` (one line: why SkyPilot cannot
    launch it, and what to do instead) is set for the real providers; a card with neither is reported as
    having no SkyPilot cloud.
    ``multi_node`` and ``fabrics`` (offers.INTERCONNECTS names) say whether and over what its multi-node
    clusters form; ``spot`` what its spot is; ``uri_schemes`` the object-store URI schemes that tell a data
    set lives there. Cluster and spot facts are descriptive: the planner does not read them yet.
    """

    id: str
    display_name: str
    focus_name: str
    tier: Tier
    adapter_module: str | None
    skypilot: SkyPilotPin | None
    not_skypilot: str | None
    multi_node: bool
    fabrics: tuple[str, ...]
    spot: SpotKind
    uri_schemes: tuple[str, ...] = ()
    compute_service: str = ""
    egress_service: str = ""
    # What a live offer of this provider says about capacity (arbitrage/capacity.py): the API field that makes
    # the adapter list an offer only while it can be had now; '' when a live offer says nothing about capacity.
    live_offers_in_stock: str = ""

    def __post_init__(self) -> None:
        if not self.id or self.id != self.id.lower():
            raise ValueError(f"provider id {self.id!r} must be non-empty lower case")
        if self.tier not in TIERS:
            raise ValueError(f"{self.id}: unknown tier {self.tier!r}")
        if self.spot not in SPOT_KINDS:
            raise ValueError(f"{self.id}: unknown spot kind {self.spot!r}")
        if self.skypilot is not None and self.not_skypilot is not None:
            raise ValueError(f"{self.id}: a SkyPilot pin and a reason it cannot be launched exclude each other")
        unknown = [f for f in self.fabrics if f not in INTERCONNECTS]
        if unknown:
            raise ValueError(f"{self.id}: unknown fabric {unknown[0]!r}")
        if self.multi_node != bool(self.fabrics):
            raise ValueError(f"{self.id}: multi-node clusters need a fabric, single hosts have none")

    @property
    def focus_compute_service(self) -> str:
        """FOCUS ServiceName of its GPU compute."""
        return self.compute_service or f"{self.focus_name} GPU Cloud"

    @property
    def focus_egress_service(self) -> str:
        """FOCUS ServiceName of its data transfer."""
        return self.egress_service or f"{self.focus_name} Data Transfer"


_AWS_ZONE_NOTE = "zone left to SkyPilot: catalog zone ids such as {zone} map to zone names per AWS account"

# The cards, in the order gpuarb lists providers. Sources for the cluster and spot facts:
# - fabrics: arbitrage/data/interconnect.csv (each row cites the provider's docs); multi-node support as in
#   SkyPilot 0.14 sky/clouds/*.py (runpod.py, vast.py, hyperbolic.py declare MULTI_NODE unsupported:
#   'interconnection among nodes are non-trivial').
# - spot: arbitrage/data/preemption.csv (each row cites the provider's docs) plus the pages named per card.
# - not_skypilot / pins: SkyPilot 0.14 sky/utils/registry (cloud names) and sky/catalog/data_fetchers.
_BUILTIN: tuple[ProviderInfo, ...] = (
    ProviderInfo(
        id="aws", display_name="AWS", focus_name="AWS", tier="hyperscaler", adapter_module="providers.aws",
        # Catalog zone ids (use1-az4) are per-account zone names, so the zone is left to SkyPilot.
        skypilot=SkyPilotPin("aws", zone_note=_AWS_ZONE_NOTE, catalog_rows=True), not_skypilot=None,
        # EFA on p4d/p5/p5e/p5en/p6 (AWS EC2 accelerated computing instance specs); ENA ethernet elsewhere.
        multi_node=True, fabrics=("efa", "ethernet"),
        # EC2 Spot: an AWS-set price that moves gradually with supply and demand (no bidding since 2017),
        # interrupted with a 2-minute notice (AWS docs 'Spot Instance pricing', 'Spot Instance interruptions').
        spot="market",
        uri_schemes=("s3",), compute_service="Amazon Elastic Compute Cloud", egress_service="AWS Data Transfer",
    ),
    ProviderInfo(
        id="gcp", display_name="Google Cloud", focus_name="Google Cloud", tier="hyperscaler",
        adapter_module="providers.gcp",
        skypilot=SkyPilotPin("gcp", pin_zone=True, catalog_rows=True), not_skypilot=None,
        # GPUDirect-TCPX(O) on A3 High/Mega, RoCE GPUDirect RDMA on A3 Ultra/A4 (GCP 'Networking and GPU
        # machines'); gVNIC TCP on the rest.
        multi_node=True, fabrics=("gpudirect-tcpx", "roce", "ethernet"),
        # Spot VMs: 60-91% off on-demand, prices change at most once every 30 days (cloud.google.com/skus);
        # preempted with a 30-second notice (GCP docs 'Spot VMs').
        spot="preemptible",
        uri_schemes=("gs", "gcs"), compute_service="Compute Engine", egress_service="Cloud Networking",
    ),
    ProviderInfo(
        id="azure", display_name="Microsoft Azure", focus_name="Microsoft", tier="hyperscaler",
        adapter_module="providers.azure",
        # Hand-built rows: the instance type is Azure's own name; SkyPilot's Azure catalog supplies its GPUs.
        skypilot=SkyPilotPin("azure", pin_accelerator=False), not_skypilot=None,
        # NDR/HDR InfiniBand on ND H100/H200 v5 and ND A100 v4; accelerated networking on NC sizes
        # (Microsoft Learn VM size docs).
        multi_node=True, fabrics=("infiniband", "ethernet"),
        # Azure Spot: 'pricing is variable, based on region and SKU'; evicted when Azure needs the capacity or
        # (with a max price set) when the price passes it, 30-second notice (Azure docs 'Spot Virtual Machines').
        spot="market",
        uri_schemes=("az", "abfs", "abfss"), compute_service="Virtual Machines", egress_service="Bandwidth",
    ),
    ProviderInfo(
        id="lambda", display_name="Lambda", focus_name="Lambda", tier="specialised",
        adapter_module="providers.lambda_cloud",
        skypilot=SkyPilotPin("lambda", catalog_rows=True), not_skypilot=None,
        # On-Demand instances are standalone VMs over ethernet; InfiniBand only in 1-Click Clusters, which
        # SkyPilot does not launch (docs.lambda.ai). SkyPilot's lambda_cloud.py does not refuse MULTI_NODE.
        multi_node=True, fabrics=("ethernet",),
        # No spot tier (Lambda docs; SkyPilot lambda_cloud.py: 'Spot instances are not supported').
        spot="none",
        live_offers_in_stock="Lambda API instance-types regions_with_capacity_available",
    ),
    ProviderInfo(
        id="nebius", display_name="Nebius", focus_name="Nebius", tier="specialised", adapter_module=None,
        skypilot=SkyPilotPin("nebius", catalog_rows=True), not_skypilot=None,
        # InfiniBand GPU clusters on the 8-GPU HGX presets (docs.nebius.com compute/clusters/gpu); VPC otherwise.
        multi_node=True, fabrics=("infiniband", "ethernet"),
        # Preemptible VMs at a published discounted price, stopped when capacity is needed with a 60 s
        # SIGTERM (docs.nebius.com/compute/virtual-machines/preemptible).
        spot="preemptible",
    ),
    ProviderInfo(
        id="coreweave", display_name="CoreWeave", focus_name="CoreWeave", tier="specialised",
        adapter_module="providers.coreweave", skypilot=None,
        not_skypilot="SkyPilot reaches CoreWeave only as a Kubernetes context (infra: k8s/<context>), so a "
                     "CoreWeave price-list instance cannot be pinned: deny coreweave in arbitrage.providers, "
                     "or use --backend local with a Ray address on that cluster",
        # Rail-optimised InfiniBand on the IB SKUs, NCCL over IP ethernet on the rest (CoreWeave docs
        # 'HPC Interconnect'); clusters form as Kubernetes node pools.
        multi_node=True, fabrics=("infiniband", "ethernet"),
        # A published per-node 'Spot Price' (CoreWeave pricing page; data/price-sources/coreweave.csv).
        spot="preemptible",
    ),
    ProviderInfo(
        id="runpod", display_name="RunPod", focus_name="RunPod", tier="specialised",
        adapter_module="providers.runpod",
        skypilot=SkyPilotPin("runpod", special="runpod"), not_skypilot=None,
        # Pods are single-host containers; SkyPilot runpod.py: MULTI_NODE unsupported.
        multi_node=False, fabrics=(),
        # Spot (interruptible) pods are rented by bid and stopped when outbid or when an on-demand rental
        # takes the machine, with a 5-second SIGTERM (RunPod docs FAQ).
        spot="bid",
        live_offers_in_stock="RunPod GraphQL lowestPrice.stockStatus",
    ),
    ProviderInfo(
        id="hyperbolic", display_name="Hyperbolic", focus_name="Hyperbolic", tier="marketplace",
        adapter_module=None,
        skypilot=SkyPilotPin("hyperbolic", catalog_rows=True), not_skypilot=None,
        # Marketplace machines; SkyPilot hyperbolic.py: MULTI_NODE unsupported.
        multi_node=False, fabrics=(),
        # SkyPilot hyperbolic.py: 'Spot instances are not supported on Hyperbolic; only on-demand instances'.
        spot="none",
    ),
    ProviderInfo(
        id="vast", display_name="Vast.ai", focus_name="Vast.ai", tier="marketplace",
        adapter_module="providers.vast",
        skypilot=SkyPilotPin("vast", special="vast"), not_skypilot=None,
        # Independent hosts with per-host internet; SkyPilot vast.py: MULTI_NODE unsupported.
        multi_node=False, fabrics=(),
        # Interruptible rentals are a bid market: the highest bid (or an on-demand rental) runs, others are
        # paused (Vast.ai docs 'Rental types'; the adapter prices spot as each listing's min_bid).
        spot="bid",
    ),
    ProviderInfo(
        id="onprem", display_name="On-premises", focus_name="On-premises", tier="owned",
        adapter_module="providers.onprem", skypilot=None,
        not_skypilot="owned capacity is not a SkyPilot cloud: run it with --backend local (Ray) "
                     "or a Ray cluster address",
        # Whatever the owner built, declared per cluster in onprem.yaml (providers/onprem.py).
        multi_node=True, fabrics=("infiniband", "roce", "ethernet"),
        spot="none", compute_service="Owned GPU capacity",
    ),
)

_CARDS: dict[str, ProviderInfo] = {c.id: c for c in _BUILTIN}


def register(info: ProviderInfo, *, replace: bool = False) -> ProviderInfo:
    """Add a card (tests register fake providers); an id already carded needs ``replace=True``."""
    if info.id in _CARDS and not replace:
        raise ValueError(f"provider '{info.id}' already has a card")
    _CARDS[info.id] = info
    return info


def unregister(provider: str) -> None:
    """Remove a card added by ``register`` (the built-in cards stay)."""
    if any(c.id == provider for c in _BUILTIN):
        raise ValueError(f"provider '{provider}' is built in")
    _CARDS.pop(provider, None)


def card(provider: str) -> ProviderInfo:
    """The card of a provider id; KeyError when none."""
    return _CARDS[provider]


def find(provider: str) -> ProviderInfo | None:
    """The card of a provider id, or None (ledger rows and offers may name a provider no longer carded)."""
    return _CARDS.get(provider)


def cards() -> tuple[ProviderInfo, ...]:
    """Every card, in listing order."""
    return tuple(_CARDS.values())


def provider_ids() -> tuple[str, ...]:
    """Every provider id gpuarb knows, in listing order."""
    return tuple(_CARDS)


def adapter_ids() -> tuple[str, ...]:
    """The providers with a live adapter module (the others are served by the bundled snapshot)."""
    return tuple(c.id for c in _CARDS.values() if c.adapter_module is not None)


def skypilot_catalog_ids() -> tuple[str, ...]:
    """The providers whose snapshot rows are SkyPilot's own v8 catalog rows."""
    return tuple(c.id for c in _CARDS.values() if c.skypilot is not None and c.skypilot.catalog_rows)


def tier_of(provider: str) -> Tier:
    """A provider's market tier; an uncarded provider counts as owned capacity."""
    info = _CARDS.get(provider)
    return info.tier if info is not None else "owned"


def provider_for_scheme(scheme: str) -> str | None:
    """The provider whose object store a URI scheme (s3, gs, az...) names, or None."""
    scheme = scheme.lower()
    return next((c.id for c in _CARDS.values() if scheme in c.uri_schemes), None)


def get_adapter(name: str) -> Adapter:
    """The adapter for a provider id (its module's ADAPTER object); KeyError when it has none."""
    module_name = card(name).adapter_module
    if module_name is None:
        raise KeyError(name)
    module = importlib.import_module(module_name)
    return module.ADAPTER


"""The Offer record: one purchasable GPU instance, priced in USD per hour per instance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Where an offer's price came from; every figure gpuarb prints carries one of these.
Source = Literal["snapshot", "cache", "live"]

# Node-to-node fabric. RDMA fabrics make multi-node training scale; plain ethernet does not.
RDMA_INTERCONNECTS = frozenset({"infiniband", "efa", "gpudirect-tcpx", "roce"})
INTERCONNECTS = RDMA_INTERCONNECTS | {"ethernet", "none"}


@dataclass(frozen=True, slots=True)
class Offer:
    """One purchasable instance type in one region/zone, with on-demand and spot prices per instance.

    ``accelerator`` is SkyPilot's name (what a launch asks for); ``gpu_model`` the exact chip variant
    (H100-PCIE, H100-NVL...) whose throughput the cost model uses.
    """

    provider: str
    region: str
    zone: str | None
    instance_type: str
    accelerator: str
    gpus_per_node: int
    gpu_memory_gb: float
    vcpus: float | None
    ram_gb: float | None
    on_demand_usd_per_hour: float | None
    spot_usd_per_hour: float | None
    interconnect: str
    interconnect_gbps: float
    source: Source
    as_of: str
    price_ref: str
    gpu_model: str = ""
    # Where the offer is, normalised across clouds (arbitrage/geo.py): ISO 3166-1 alpha-2 country ("US", "DE")
    # and continent ("north-america", "europe", "asia", "oceania", "south-america", "africa"); "" when unknown.
    country: str = ""
    continent: str = ""
    # True when ``as_of`` is an estimate (the source carries no date; the notes say how it was derived).
    as_of_estimated: bool = False
    # Marketplace offers: how many such machines are listed now, and the host's reliability (0-1) where the
    # API reports one. None where the provider publishes neither (clouds).
    available: int | None = None
    host_reliability: float | None = None

    def __post_init__(self) -> None:
        if not self.gpu_model:  # the exact chip variant defaults to the SkyPilot accelerator name
            object.__setattr__(self, "gpu_model", self.accelerator)

    def provides(self, gpu: str) -> bool:
        """True when a requested canonical GPU name is this offer's accelerator or its exact variant."""
        return gpu == self.accelerator or gpu == self.gpu_model

    def usd_per_hour(self, spot: bool) -> float | None:
        """Price per instance-hour for the chosen purchase option, or None where not sold so."""
        return self.spot_usd_per_hour if spot else self.on_demand_usd_per_hour

    def usd_per_gpu_hour(self, spot: bool) -> float | None:
        """Price per GPU-hour for the chosen purchase option, or None where not sold so."""
        price = self.usd_per_hour(spot)
        return None if price is None else price / self.gpus_per_node

    @property
    def has_rdma(self) -> bool:
        """True when nodes talk over an RDMA fabric (InfiniBand, EFA, GPUDirect-TCPX, RoCE)."""
        return self.interconnect in RDMA_INTERCONNECTS

    @property
    def location(self) -> str:
        """Region and zone as one label, e.g. 'us-east-1/use1-az4'."""
        return f"{self.region}/{self.zone}" if self.zone else self.region

"""Owned / on-prem GPU capacity as offers, priced per node-hour from a user config file.

The planner can then weigh owned baseload against rented burst: an owned node costs its amortized
purchase price (spread over the hours it is expected to be busy) plus power and hosting. Config:
``$GPUARB_CONFIG_DIR/onprem.yaml`` (default ``~/.config/gpuarb/onprem.yaml``; ``arbitrage.paths.onprem_config``),
for example::

    clusters:
      - name: lab-a100              # becomes the instance type
        region: onprem-us-west      # a label; region globs in job specs match it
        accelerator: A100-80GB
        gpus_per_node: 8
        purchase_usd_per_node: 200000
        amortization_years: 3
        utilization: 0.7            # share of hours the nodes are busy (spreads the purchase price)
        power_kw_per_node: 6.5
        usd_per_kwh: 0.12
        pue: 1.3
        hosting_usd_per_node_month: 1500
        interconnect: infiniband    # infiniband | roce | ethernet | none ...
        interconnect_gbps: 1600
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arbitrage import paths
from arbitrage.offers import INTERCONNECTS, Offer
from arbitrage.params import MAX_GPUS_PER_NODE
from providers.base import FetchContext, ProviderError

NAME = "onprem"
HOURS_PER_YEAR = 8760.0
HOURS_PER_MONTH = HOURS_PER_YEAR / 12


@dataclass(frozen=True)
class OwnedCluster:
    """One owned node type and the cost assumptions that price its node-hour."""

    name: str
    region: str
    accelerator: str
    gpus_per_node: int
    purchase_usd_per_node: float
    amortization_years: float
    utilization: float
    power_kw_per_node: float
    usd_per_kwh: float
    pue: float
    hosting_usd_per_node_month: float
    interconnect: str
    interconnect_gbps: float

    @property
    def usd_per_node_hour(self) -> float:
        """Amortized purchase and hosting per busy hour + power (with PUE) while busy, per node."""
        capital = self.purchase_usd_per_node / (self.amortization_years * HOURS_PER_YEAR * self.utilization)
        power = self.power_kw_per_node * self.pue * self.usd_per_kwh
        # Hosting is paid every hour of the month, busy or not: spread it over the busy hours, like the purchase.
        hosting = self.hosting_usd_per_node_month / (HOURS_PER_MONTH * self.utilization)
        return capital + power + hosting


def config_path(ctx: FetchContext) -> Path:
    """Where the owned-capacity config lives, resolved from the fetch context's environment."""
    return paths.onprem_config(ctx.env)


# field -> (minimum, minimum excluded, maximum): a value outside is a typo, not a cost.
_NUMBERS = {"purchase_usd_per_node": (0, False, 1e8), "amortization_years": (0, True, 50),
            "utilization": (0, True, 1), "power_kw_per_node": (0, False, 1000), "usd_per_kwh": (0, False, 10),
            "pue": (1, False, 10), "hosting_usd_per_node_month": (0, False, 1e7),
            "interconnect_gbps": (0, False, 100_000)}
# A node-hour must cost something (a cluster at $0/h would win every plan) and less than this.
MIN_USD_PER_NODE_HOUR = 0.01
MAX_USD_PER_NODE_HOUR = 100_000.0


def parse_clusters(data: Any, where: str, ctx: FetchContext) -> list[OwnedCluster]:
    """Validate the config's clusters; every problem names the file, cluster and field."""
    if not isinstance(data, dict) or not isinstance(data.get("clusters"), list) or not data["clusters"]:
        raise ProviderError(NAME, f"{where}: expected a non-empty 'clusters' list")
    clusters = []
    for i, raw in enumerate(data["clusters"]):
        loc = f"{where}: clusters[{i}]"
        if not isinstance(raw, dict):
            raise ProviderError(NAME, f"{loc}: expected a mapping")
        values: dict[str, Any] = {}
        for key in ("name", "region", "accelerator"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                raise ProviderError(NAME, f"{loc}.{key}: required text")
            values[key] = raw[key].strip()
        accelerator = ctx.facts.canonical_gpu(values["accelerator"])
        if accelerator is None:
            raise ProviderError(NAME, f"{loc}.accelerator: unknown GPU {values['accelerator']!r}")
        values["accelerator"] = accelerator
        count = raw.get("gpus_per_node")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_GPUS_PER_NODE:
            raise ProviderError(NAME, f"{loc}.gpus_per_node: expected a whole number from 1 to {MAX_GPUS_PER_NODE}")
        values["gpus_per_node"] = count
        defaults = {"utilization": 1.0, "pue": 1.0, "hosting_usd_per_node_month": 0.0, "power_kw_per_node": 0.0,
                    "usd_per_kwh": 0.0, "interconnect_gbps": 0.0}
        for key, (minimum, strict, maximum) in _NUMBERS.items():
            value = raw.get(key, defaults.get(key))
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ProviderError(NAME, f"{loc}.{key}: expected a number")
            if value < minimum or (strict and value == minimum):
                raise ProviderError(NAME, f"{loc}.{key}: must be {'>' if strict else '>='} {minimum}")
            if value > maximum:
                hint = " (a share between 0 and 1)" if key == "utilization" else ""
                raise ProviderError(NAME, f"{loc}.{key}: must be at most {maximum:g}{hint}")
            values[key] = float(value)
        fabric = raw.get("interconnect", "ethernet")
        if not isinstance(fabric, str) or fabric not in INTERCONNECTS:
            raise ProviderError(NAME, f"{loc}.interconnect: one of {', '.join(sorted(INTERCONNECTS))}")
        values["interconnect"] = fabric
        cluster = OwnedCluster(**values)
        price = cluster.usd_per_node_hour
        if not MIN_USD_PER_NODE_HOUR <= price <= MAX_USD_PER_NODE_HOUR:
            raise ProviderError(NAME, f"{loc}: costs ${price:,.4g} per node-hour (purchase + power + hosting); a node "
                                      f"must cost ${MIN_USD_PER_NODE_HOUR:g} to ${MAX_USD_PER_NODE_HOUR:,.0f} an hour")
        clusters.append(cluster)
    return clusters


class OnPremAdapter:
    """Owned capacity from the user's config file (no network)."""

    name = NAME
    ttl_seconds = 0  # re-read on every run: it is a local file
    credentials_hint = "config file $GPUARB_CONFIG_DIR/onprem.yaml"

    def has_credentials(self, ctx: FetchContext) -> bool:
        """True when the config file exists."""
        return config_path(ctx).is_file()

    async def fetch(self, ctx: FetchContext) -> list[Offer]:
        """One offer per configured node type, priced per node-hour in USD."""
        import yaml

        from arbitrage import safeyaml

        path = config_path(ctx)
        try:
            data = safeyaml.safe_load(safeyaml.read_capped(str(path)))
        except safeyaml.LimitError as exc:
            raise ProviderError(NAME, f"{path}:{exc.line}: {exc.path}: {exc.message}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ProviderError(NAME, f"{path}: cannot read ({exc})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "syntax error"
            raise ProviderError(NAME, f"{path}{line}: YAML error: {problem}") from None
        offers = []
        for c in parse_clusters(data, str(path), ctx):
            fact = ctx.facts.gpu(c.accelerator)
            offers.append(Offer(
                provider=NAME, region=c.region, zone=None, instance_type=c.name, accelerator=c.accelerator,
                gpus_per_node=c.gpus_per_node, gpu_memory_gb=fact.memory_gb, vcpus=None, ram_gb=None,
                on_demand_usd_per_hour=c.usd_per_node_hour, spot_usd_per_hour=None, interconnect=c.interconnect,
                interconnect_gbps=c.interconnect_gbps, source="live", as_of=ctx.now.isoformat(timespec="seconds"),
                price_ref=f"owned capacity, {path} (amortized purchase + power + hosting)",
            ))
        return offers


ADAPTER = OnPremAdapter()

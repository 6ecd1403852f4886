"""Rent vs buy for one GPU: break-even months, the utilization at which owning wins, totals. Pure, no I/O.

Owning one GPU for a period of H calendar hours at utilization u costs
    purchase + hosting_month x H / 730 + u x H x power_kW x PUE x $/kWh
(the purchase is sunk on day one, hosting is paid every month, power only while busy), and renting the
same busy hours costs u x H x rental $/GPU-hour. No resale value, financing cost or staff time is
modelled; the report says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from arbitrage.errors import UsageError
from arbitrage.offers import Offer
from arbitrage.plural import plural
from providers.registry import tier_of

HOURS_PER_YEAR = 8760.0
HOURS_PER_MONTH = HOURS_PER_YEAR / 12  # 730


@dataclass(frozen=True, slots=True)
class Ownership:
    """What owning one GPU costs, and where each number came from (option, data file, or default)."""

    gpu: str
    purchase_usd: float  # per GPU: its share of the server, host and network included
    power_w: float  # average draw per GPU while busy
    usd_per_kwh: float
    pue: float
    hosting_usd_per_month: float  # per GPU: colocation space, power capacity, support
    years: float
    utilization: float  # share of calendar hours the GPU is busy
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rental:
    """The rental price compared against: USD per GPU-hour of one offer, with its provenance."""

    usd_per_gpu_hour: float
    spot: bool
    offer: Offer | None = None  # None when the price was typed in rather than taken from the catalog

    @property
    def provenance(self) -> str:
        """'lambda us-east-1 gpu_8x_h100_sxm5 (8 GPUs), on-demand [snapshot, as of undated; ref]'."""
        option = "spot" if self.spot else "on-demand"
        o = self.offer
        if o is None:
            return f"{option}, given on the command line"
        gpus = plural(o.gpus_per_node, 'GPU')
        return (f"{o.provider} {o.location} {o.instance_type} ({gpus}), {option} "
                f"[{o.source}, as of {o.as_of}; {o.price_ref}]")


@dataclass(frozen=True, slots=True)
class YearRow:
    """Cumulative USD after a number of years, both ways."""

    years: float
    own_usd: float
    rent_usd: float


@dataclass(frozen=True, slots=True)
class Breakeven:
    """The comparison: per-hour rates, break-even point, utilization threshold and period totals."""

    ownership: Ownership
    rental: Rental
    power_usd_per_busy_hour: float
    hosting_usd_per_hour: float  # per calendar hour
    busy_hours: float  # over the period, at the given utilization
    own_usd: float  # over the period
    rent_usd: float  # over the period
    breakeven_months: float | None  # None: owning never catches up at this utilization
    threshold_utilization: float | None  # None: renting is cheaper than even the power bill
    yearly: tuple[YearRow, ...]

    @property
    def period_hours(self) -> float:
        """Calendar hours in the comparison period."""
        return self.ownership.years * HOURS_PER_YEAR

    @property
    def own_usd_per_busy_hour(self) -> float:
        """What a busy owned GPU-hour costs over the period (comparable to the rental price)."""
        return self.own_usd / self.busy_hours

    @property
    def saving_usd(self) -> float:
        """Renting minus owning over the period: positive when owning is cheaper."""
        return self.rent_usd - self.own_usd

    @property
    def owning_wins(self) -> bool:
        """True when owning costs less than renting over the period at the given utilization."""
        return self.own_usd < self.rent_usd

    @property
    def owning_can_win(self) -> bool:
        """True when some utilization up to 100 % makes owning cheaper over the period."""
        return self.threshold_utilization is not None and self.threshold_utilization <= 1.0


def _check(name: str, value: float, *, minimum: float = 0.0, strict: bool = True, maximum: float | None = None) -> None:
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise UsageError(f"{name}: must be {'>' if strict else '>='} {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise UsageError(f"{name}: must be at most {maximum:g}, got {value:g}")


def validate(own: Ownership, rental_usd_per_gpu_hour: float, rental_name: str = "rental price ($/GPU-hour)") -> None:
    """Reject zero, negative or out-of-range inputs with one line naming the option."""
    _check("--purchase-usd", own.purchase_usd)
    _check("--power-w", own.power_w)
    _check("--usd-per-kwh", own.usd_per_kwh)
    _check("--pue", own.pue, minimum=1.0, strict=False)
    _check("--hosting-usd-per-month", own.hosting_usd_per_month, strict=False)
    _check("--years", own.years, maximum=50)
    _check("--utilization", own.utilization, maximum=1.0)
    _check(rental_name, rental_usd_per_gpu_hour)


def own_cost_usd(own: Ownership, calendar_hours: float, utilization: float) -> float:
    """Purchase + hosting for the calendar hours + power for the busy hours."""
    power = own.power_w / 1000 * own.pue * own.usd_per_kwh
    return own.purchase_usd + own.hosting_usd_per_month / HOURS_PER_MONTH * calendar_hours \
        + power * utilization * calendar_hours


def compare(own: Ownership, rental: Rental) -> Breakeven:
    """Owning vs renting one GPU over ``own.years`` at ``own.utilization``."""
    validate(own, rental.usd_per_gpu_hour)
    rate = rental.usd_per_gpu_hour
    power = own.power_w / 1000 * own.pue * own.usd_per_kwh  # USD per busy hour
    hosting = own.hosting_usd_per_month / HOURS_PER_MONTH  # USD per calendar hour
    period = own.years * HOURS_PER_YEAR
    u = own.utilization

    # Each month owning saves u x 730 x (rate - power) of rent and costs the hosting fee.
    monthly_margin = u * HOURS_PER_MONTH * (rate - power) - own.hosting_usd_per_month
    months = own.purchase_usd / monthly_margin if monthly_margin > 0 else None
    # Over the whole period owning wins when u x H x (rate - power) >= purchase + hosting x H.
    threshold = (own.purchase_usd / period + hosting) / (rate - power) if rate > power else None

    yearly = []
    whole = math.ceil(own.years - 1e-9)
    for y in [*range(1, whole), own.years] if whole > 1 else [own.years]:
        hours = y * HOURS_PER_YEAR
        yearly.append(YearRow(float(y), own_cost_usd(own, hours, u), rate * u * hours))
    return Breakeven(
        ownership=own, rental=rental, power_usd_per_busy_hour=power, hosting_usd_per_hour=hosting,
        busy_hours=u * period, own_usd=own_cost_usd(own, period, u), rent_usd=rate * u * period,
        breakeven_months=months, threshold_utilization=threshold, yearly=tuple(yearly),
    )


def cheapest_rental(offers: list[Offer], gpu: str, spot: bool) -> Rental | None:
    """The lowest USD per GPU-hour among rented (not owned) offers of exactly this GPU model."""
    priced = [(o.usd_per_gpu_hour(spot), o) for o in offers if o.gpu_model == gpu and tier_of(o.provider) != "owned"]
    priced = [(p, o) for p, o in priced if p is not None and p > 0]
    if not priced:
        return None
    price, offer = min(priced, key=lambda t: (t[0], t[1].provider, t[1].region, t[1].zone or "",
                                              t[1].instance_type))
    return Rental(price, spot, offer)

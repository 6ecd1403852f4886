"""Money done exactly: amounts in integer micro-USD, and one way to show them.

Costs are hours x USD per hour in floats, and adding such floats drifts (0.1 + 0.2 = 0.30000000000000004), so a
run's history showed $0.05 where the spend report's sum of the same charges showed $0.04, and the FOCUS export
carried 0.010750000000000001. Billing therefore works in whole micro-USD (one millionth of a dollar: a price has at
most 6 decimals in every source gpuarb reads), rounds once per charge (half to even), adds integers, and people see
amounts rounded once more, half up, to the cent. A float that came from micro-USD converts back exactly (``micro``
reads its shortest decimal form). Imports nothing from the project.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction

MICRO_PER_USD = 1_000_000
_CENT = Decimal("0.01")


def micro(usd: float | int | Decimal | Fraction) -> int:
    """USD as whole micro-USD, half to even (a float is read as its shortest decimal: 0.1 is exactly 100,000)."""
    if isinstance(usd, Fraction):
        return round(usd * MICRO_PER_USD)
    if isinstance(usd, float):
        if not math.isfinite(usd):
            raise ValueError(f"not an amount: {usd!r}")
        usd = Decimal(repr(usd))
    return int((Decimal(usd) * MICRO_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def usd(amount_micro: int) -> float:
    """Micro-USD as the float nearest to it (exact again through ``micro``)."""
    return amount_micro / MICRO_PER_USD


def decimal_usd(amount_micro: int) -> Decimal:
    """Micro-USD as an exact Decimal of dollars (for exports: '0.01075', never 0.010750000000000001)."""
    return Decimal(amount_micro).scaleb(-6).normalize() if amount_micro else Decimal(0)


def exact_sum(amounts: Iterable[float]) -> float:
    """A sum of amounts in whole micro-USD (floats that came from micro-USD convert back exactly)."""
    return usd(sum(micro(a) for a in amounts))


def exact_seconds(span: timedelta) -> Fraction:
    """A time span in seconds as an exact fraction (what a charge is billed for)."""
    return Fraction(span.days * 86400 + span.seconds) + Fraction(span.microseconds, 1_000_000)


def cost_micro(usd_per_hour: float, seconds: Fraction | int) -> int:
    """A charge: ``seconds`` at ``usd_per_hour``, in whole micro-USD (the product is exact, rounded once)."""
    return round(Fraction(micro(usd_per_hour)) * Fraction(seconds) / 3600)


def cents(value: float | int | Decimal) -> Decimal:
    """An amount rounded half up to the cent, from its exact decimal (0.045 -> 0.05, -0.045 -> -0.05)."""
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return exact.quantize(_CENT, rounding=ROUND_HALF_UP)


def format_amount(value: float | None) -> str:
    """'$1,234.56', '-$12.00', or '-' when undefined: every amount people read goes through here."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "∞" if value > 0 else "-∞"
    shown = cents(value)
    return f"-${-shown:,.2f}" if shown < 0 else f"${shown:,.2f}"

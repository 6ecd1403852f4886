"""Rent vs buy: the break-even math against hand-computed figures, input checks, defaults file, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_offer
from typer.testing import CliRunner

from arbitrage.cli import app
from arbitrage.errors import DataError, UsageError
from arbitrage.report.breakeven import Ownership, Rental, cheapest_rental, compare, validate
from arbitrage.report.ownership import load_ownership, parse_ownership

runner = CliRunner()


def own(**changes: float) -> Ownership:
    """$30,000, 700 W, $0.10/kWh, PUE 1.4, $200/month hosting, 3 years, 50 % busy unless changed."""
    values: dict = dict(gpu="H100", purchase_usd=30000.0, power_w=700.0, usd_per_kwh=0.10, pue=1.4,
                        hosting_usd_per_month=200.0, years=3.0, utilization=0.5)
    values.update(changes)
    return Ownership(**values)


def test_hand_computed_example() -> None:
    # power = 0.7 kW x 1.4 x $0.10 = $0.098 per busy hour; hosting = $200 / 730 h per calendar hour
    # period = 3 x 8760 = 26,280 h, of which 13,140 busy
    b = compare(own(), Rental(2.5, spot=False))
    assert b.power_usd_per_busy_hour == pytest.approx(0.098)
    # own = 30,000 + 26,280 x 200/730 (= 7,200) + 13,140 x 0.098 (= 1,287.72) = 38,487.72
    assert b.own_usd == pytest.approx(38487.72)
    # rent = 13,140 x 2.5 = 32,850
    assert b.rent_usd == pytest.approx(32850.0)
    assert not b.owning_wins and b.saving_usd == pytest.approx(32850.0 - 38487.72)
    # each month owning saves 0.5 x 730 x (2.5 - 0.098) = 876.73 of rent and pays 200 hosting:
    # 30,000 / 676.73 = 44.33 months
    assert b.breakeven_months == pytest.approx(30000 / 676.73)
    # owning wins over 3 years when u x 26,280 x 2.402 >= 37,200: u >= 0.5893
    assert b.threshold_utilization == pytest.approx(37200 / (26280 * 2.402))
    assert b.owning_can_win
    assert [round(y.years) for y in b.yearly] == [1, 2, 3]
    assert b.yearly[-1].own_usd == pytest.approx(b.own_usd) and b.yearly[-1].rent_usd == pytest.approx(b.rent_usd)
    # year 1: 30,000 + 2,400 hosting + 4,380 x 0.098
    assert b.yearly[0].own_usd == pytest.approx(30000 + 2400 + 4380 * 0.098)
    assert b.own_usd_per_busy_hour == pytest.approx(38487.72 / 13140)


def test_threshold_is_where_totals_meet() -> None:
    b = compare(own(), Rental(2.5, spot=False))
    at = compare(own(utilization=b.threshold_utilization), Rental(2.5, spot=False))
    assert at.own_usd == pytest.approx(at.rent_usd)
    above = compare(own(utilization=b.threshold_utilization + 0.01), Rental(2.5, spot=False))
    assert above.owning_wins
    # at the break-even month count the cumulative costs are equal too
    months = b.breakeven_months
    assert months is not None
    hours = months * 730
    assert 30000 + 200 * months + 0.098 * 0.5 * hours == pytest.approx(2.5 * 0.5 * hours)


def test_owning_never_wins_when_rent_is_below_power_or_needs_over_100_percent() -> None:
    cheap = compare(own(), Rental(0.05, spot=True))  # below the $0.098 power bill
    assert cheap.breakeven_months is None and cheap.threshold_utilization is None and not cheap.owning_can_win
    pricey_box = compare(own(purchase_usd=200000.0), Rental(2.5, spot=False))
    assert pricey_box.threshold_utilization is not None and pricey_box.threshold_utilization > 1
    assert not pricey_box.owning_can_win


def test_fractional_years_end_on_the_period() -> None:
    b = compare(own(years=2.5), Rental(2.5, spot=False))
    assert [y.years for y in b.yearly] == [1.0, 2.0, 2.5]


@pytest.mark.parametrize(("change", "needle"), [
    ({"purchase_usd": 0.0}, "--purchase-usd"), ({"power_w": -1.0}, "--power-w"),
    ({"usd_per_kwh": 0.0}, "--usd-per-kwh"),
    ({"pue": 0.9}, "--pue"), ({"hosting_usd_per_month": -5.0}, "--hosting-usd-per-month"), ({"years": 0.0}, "--years"),
    ({"utilization": 0.0}, "--utilization"), ({"utilization": 1.2}, "--utilization"),
    ({"purchase_usd": float("nan")}, "--purchase-usd"),
])
def test_bad_inputs_name_the_option(change: dict, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        validate(own(**change), 2.0)
    with pytest.raises(UsageError, match="rental"):
        validate(own(), 0.0)


def test_zero_hosting_is_allowed() -> None:
    assert compare(own(hosting_usd_per_month=0.0), Rental(2.5, spot=False)).own_usd == pytest.approx(31287.72)


def test_cheapest_rental_is_exact_model_and_not_owned() -> None:
    offers = [
        make_offer(provider="aws", on_demand_usd_per_hour=40.0),  # $5/GPU-h
        make_offer(provider="lambda", instance_type="gpu_8x_h100", on_demand_usd_per_hour=24.0),  # $3
        make_offer(provider="runpod", instance_type="pcie", gpu_model="H100-PCIE", gpus_per_node=1,
                   on_demand_usd_per_hour=1.0),  # cheaper but another variant
        make_offer(provider="onprem", instance_type="lab", on_demand_usd_per_hour=8.0),  # owned: not a rental
        make_offer(provider="vast", instance_type="x", on_demand_usd_per_hour=0.0),  # a catalog gap
    ]
    rental = cheapest_rental(offers, "H100", spot=False)
    assert rental is not None and rental.offer is not None
    assert rental.offer.provider == "lambda" and rental.usd_per_gpu_hour == pytest.approx(3.0)
    assert "lambda" in rental.provenance and "snapshot" in rental.provenance and "as of 2026-11-01" in rental.provenance
    spot = cheapest_rental(offers, "H100", spot=True)
    assert spot is not None and spot.usd_per_gpu_hour == pytest.approx(2.0)  # 16 / 8
    assert cheapest_rental(offers, "B200", spot=False) is None


def test_bundled_ownership_defaults_have_sources() -> None:
    defaults = load_ownership()
    assert {"usd_per_kwh", "pue", "hosting_usd_per_month", "years", "utilization"} <= set(defaults.defaults)
    assert defaults.gpus["H100"]["power_w"].value == 700
    for entry in [*defaults.defaults.values(), *(v for g in defaults.gpus.values() for v in g.values())]:
        assert entry.source.strip() and entry.value > 0


BUNDLED = (Path(__file__).resolve().parent.parent / "arbitrage" / "data" / "ownership.toml").read_text()


@pytest.mark.parametrize(("edit", "needle"), [
    (("value = 1.4\nsource", "value = 1.4\nsauce"), "defaults.pue: needs a value and a source"),
    (("value = 700.0", "value = -700.0"), "gpus.H100.power_w.value: expected a number >= 0"),
    (("[gpus.A100.power_w]", "[gpus.A100.power]"), "gpus.A100.power_w: needs a value and a source"),
    (("[defaults.pue]", "not toml ="), "ownership.toml"),
])
def test_ownership_file_errors_name_the_key(edit: tuple[str, str], needle: str) -> None:
    assert edit[0] in BUNDLED
    with pytest.raises(DataError, match=needle):
        parse_ownership(BUNDLED.replace(*edit), "ownership.toml")


def test_user_override_of_ownership_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "facts").mkdir()
    (tmp_path / "facts" / "ownership.toml").write_text(BUNDLED.replace("value = 0.13", "value = 0.31"))
    monkeypatch.setenv("GPUARB_CONFIG_DIR", str(tmp_path))
    defaults = load_ownership()
    assert defaults.defaults["usd_per_kwh"].value == 0.31 and str(tmp_path) in defaults.label


# -- CLI ------------------------------------------------------------------------------------------

def run(*args: str):
    return runner.invoke(app, list(args))


def test_cli_prints_every_assumption_and_the_findings() -> None:
    result = run("breakeven", "--gpu", "H100", "--utilization", "0.9")
    assert result.exit_code == 0, result.output
    out = result.output
    for label in ("purchase price per GPU", "power per GPU while busy", "electricity", "PUE", "hosting per GPU",
                  "period", "utilization", "rental price", "not modelled", "Break-even", "3-year totals"):
        assert label in out
    assert "ownership.toml" in out and "--utilization (command line)" in out
    assert "snapshot, as of" in out  # the rental price's provenance


def test_cli_json_matches_the_math_on_the_catalog_price() -> None:
    result = run("breakeven", "-g", "H100", "--purchase-usd", "30000", "--power-w", "700", "--usd-per-kwh", "0.1",
                 "--pue", "1.4", "--hosting-usd-per-month", "200", "--years", "3", "--utilization", "0.5",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    rate = doc["rental"]["usd_per_gpu_hour"]
    assert doc["rental"]["source"] == "snapshot" and doc["rental"]["provider"] and doc["rental"]["as_of"]
    assert doc["rent_total_usd"] == pytest.approx(13140 * rate, rel=1e-4)
    assert doc["own_total_usd"] == pytest.approx(38487.72, abs=0.01)
    assert doc["assumptions"]["sources"]["purchase_usd"] == "--purchase-usd (command line)"


def test_cli_typed_rental_price_and_markdown() -> None:
    result = run("breakeven", "-g", "H100", "--rental-usd-per-gpu-hour", "2.5", "--purchase-usd", "30000",
                 "--usd-per-kwh", "0.1", "--hosting-usd-per-month", "200", "--utilization", "0.5", "-f", "markdown")
    assert result.exit_code == 0, result.output
    assert "| rental price | $2.50/GPU-hour | on-demand, given on the command line |" in result.output
    assert "after 44.3 months" in result.output and "above 59% utilization" in result.output


@pytest.mark.parametrize(("args", "needle"), [
    (("--gpu", "H100", "--power-w", "-5"), "--power-w: must be > 0"),
    (("--gpu", "H100", "--utilization", "0"), "--utilization: must be > 0"),
    (("--gpu", "H100", "--utilization", "1.5"), "--utilization: must be at most 1"),
    (("--gpu", "H100", "--rental-usd-per-gpu-hour", "0"), "--rental-usd-per-gpu-hour: must be > 0"),
    (("--gpu", "L4",), "no default for L4"),
    (("--gpu", "H10",), "unknown GPU 'H10' (did you mean H100?)"),
    (("--gpu", "H100", "--out", "x.html"), "unknown extension '.html'"),
])
def test_cli_bad_input_is_one_line_exit_2(args: tuple[str, ...], needle: str) -> None:
    result = run("breakeven", *args)
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_no_rental_offer_exit_3() -> None:
    result = run("breakeven", "--gpu", "H100", "--provider", "hyperbolic", "--rent", "spot")
    assert result.exit_code == 3 and "no spot rental offer of H100" in result.output


def test_cli_writes_a_file(tmp_path: Path) -> None:
    target = tmp_path / "be.md"
    result = run("breakeven", "--gpu", "A100-80GB", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {target}") and target.read_text().startswith("# Rent vs buy: one A100-80GB")

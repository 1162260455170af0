"""Rent or buy (accelsim.rental) against closed forms: the break-even utilisation is where
owning and renting cost the same per useful hour, renting wins below it; the break-even
horizon solves C CRF(i, T) + O = R, and is the depreciation life when the rent equals the
owned TCO."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from accelsim.cost import Finance, Region, capital_recovery_factor, tco
from accelsim.devices import load_device
from accelsim.rental import (
    RentalOffer,
    break_even_horizon_years,
    break_even_utilization,
    owned_rate,
    owned_usd_per_useful_hour,
    rent_usd_per_year,
    rent_vs_buy,
    rented_usd_per_useful_hour,
)
from accelsim.units import HOURS_PER_YEAR

SPEC = load_device("h100-sxm").spec
REGION = Region(usd_per_kwh=0.10, pue=1.45, facility_capex_usd_per_mw=8e6)
FIN = Finance(years=5, cost_of_capital=0.08, maintenance_fraction=0.03)


def _offer(price: float, term: str = "on_demand", months: int = 0) -> RentalOffer:
    return RentalOffer(device="h100-sxm", usd_per_device_hour=price, term=term,
                       commitment_months=months, region="sea", source="test")


def test_owned_cost_is_linear_in_utilisation_as_the_tco_module_gives_it():
    a, b = owned_rate(SPEC, REGION, FIN)
    for u in (0.0, 0.3, 0.77, 1.0):
        assert a + b * u == pytest.approx(float(tco(SPEC, REGION, FIN, u)["usd_per_hour"]),
                                          rel=1e-12)
    assert a > 0 and b > 0


@pytest.mark.parametrize("price", [2.0, 4.916, 6.88])
def test_break_even_utilisation_equalises_the_costs_and_renting_wins_below_it(price):
    a, b = owned_rate(SPEC, REGION, FIN)
    u = break_even_utilization(a, b, price)
    assert u == pytest.approx(a / (price - b))
    if u <= 1:
        assert owned_usd_per_useful_hour(a, b, u) == pytest.approx(
            rented_usd_per_useful_hour(price, "on_demand", u))
    for lo in (0.5 * u, 0.9 * u):
        if lo <= 1:
            assert rented_usd_per_useful_hour(price, "on_demand", lo) < \
                owned_usd_per_useful_hour(a, b, lo)
    hi = min(1.0, 1.1 * u)
    if hi > u:
        assert rented_usd_per_useful_hour(price, "on_demand", hi) > \
            owned_usd_per_useful_hour(a, b, hi)


def test_a_price_below_the_marginal_energy_never_breaks_even():
    a, b = owned_rate(SPEC, REGION, FIN)
    assert break_even_utilization(a, b, 0.5 * b) == math.inf


def test_reserved_capacity_costs_its_price_over_the_used_share():
    assert rented_usd_per_useful_hour(2.0, "reserved", 0.25) == pytest.approx(8.0)
    assert rent_usd_per_year(2.0, "reserved", 0.25) == pytest.approx(2.0 * HOURS_PER_YEAR)
    assert rent_usd_per_year(2.0, "on_demand", 0.25) == pytest.approx(0.5 * HOURS_PER_YEAR)


def test_break_even_horizon_closed_forms():
    assert break_even_horizon_years(30_000, 2_000, 8_000, 0.0) == pytest.approx(5.0)
    t = break_even_horizon_years(30_000, 2_000, 12_000, 0.08)
    assert 30_000 * float(capital_recovery_factor(0.08, t)) + 2_000 == pytest.approx(12_000)
    assert break_even_horizon_years(30_000, 2_000, 1_500, 0.0) == math.inf  # rent < opex
    assert break_even_horizon_years(30_000, 2_000, 4_000, 0.08) == math.inf  # < i C + O


@pytest.mark.parametrize("u", [0.4, 1.0])
def test_rent_equal_to_the_owned_tco_breaks_even_at_the_depreciation_life(u):
    cost = tco(SPEC, REGION, FIN, u)
    price = float(cost["tco_usd_per_year"]) / HOURS_PER_YEAR / u  # on demand: paid u of hours
    rb = rent_vs_buy(_offer(price), SPEC, REGION, FIN, utilization=u)
    assert rb["break_even_horizon_years"] == pytest.approx(FIN.years, rel=1e-9)
    shorter = rent_vs_buy(_offer(price * 1.2), SPEC, REGION, FIN, utilization=u)
    assert shorter["break_even_horizon_years"] < FIN.years  # dearer rent: buy sooner


def test_rent_vs_buy_reports_no_break_even_utilisation_for_a_reserved_term():
    rb = rent_vs_buy(_offer(2.0, "reserved", 12), SPEC, REGION, FIN)
    assert np.isnan(rb["break_even_utilization"])
    assert rb["rent_over_owned"] == pytest.approx(2.0 / rb["owned_usd_per_hour"])


@pytest.mark.parametrize("term,months", [("reserved", 0), ("on_demand", 12)])
def test_a_term_and_its_commitment_must_agree(term, months):
    with pytest.raises(ValidationError):
        _offer(2.0, term, months)

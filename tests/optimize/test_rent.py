"""Rented capacity in the optimize MILP: an offer is one more device whose budget cost is a
year of rent, with its availability limit. Priced above the owned TCO the optimum buys;
below it, or when the owned supply runs out, it rents."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.optimize import MixProblem, solve
from accelsim.units import HOURS_PER_YEAR

OWN_TCO = 7_000.0  # USD per device-year


def toy(rent_over_own: float, own_cap: float = np.inf, rent_cap: float = np.inf,
        objective: str = "min_cost", demand: float = 800.0) -> MixProblem:
    """One owned device and one rental of the same throughput (10 per device)."""
    rent_y = rent_over_own * OWN_TCO
    return MixProblem(
        devices=["own", "rent:cloud"], workloads=["w"],
        capex=np.array([20_000.0, rent_y]), tco=np.array([[OWN_TCO], [rent_y]]),
        power=np.array([[1000.0], [0.0]]), thr=np.array([[10.0], [10.0]]),
        demand=np.array([demand]), pool_of=["A", "A"], pool_usd={"A": 1e8}, total_usd=1e8,
        max_units=np.array([own_cap, rent_cap]), power_cap_W=None, server=8,
        objective=objective, rented=[False, True])


def test_rent_dearer_than_owning_buys():
    r = solve(toy(1.2), marginals=False)
    assert r["rented"] == {} and r["rent_usd_per_year"] == 0.0
    assert r["units"] == {"own": {"w": 80}}


def test_rent_cheaper_than_owning_rents_and_pays_no_capex():
    r = solve(toy(0.8), marginals=False)
    assert r["units"] == {} and r["rented"] == {"rent:cloud": {"w": 80}}
    assert r["capex_usd"] == 0.0
    assert r["rent_usd_per_year"] == pytest.approx(80 * 0.8 * OWN_TCO)
    assert r["pool_spend_usd"]["A"] == pytest.approx(r["rent_usd_per_year"])


def test_when_the_owned_supply_runs_out_the_rest_is_rented_up_to_the_offers_limit():
    r = solve(toy(1.2, own_cap=48), marginals=False)
    assert r["units"] == {"own": {"w": 48}} and r["rented"] == {"rent:cloud": {"w": 32}}
    short = solve(toy(1.2, own_cap=48, rent_cap=16, objective="served_demand"),
                  marginals=False)
    assert short["rented"] == {"rent:cloud": {"w": 16}}
    assert short["served_fraction"]["w"] == pytest.approx((48 + 16) / 80)


def test_the_seed_optimum_rents_h100s_when_the_h20_is_banned():
    """2025 with the H20 banned: the overseas pool can buy nothing it may use (H100 and
    H800 banned, the ASIC not yet made), so what it spends is rent."""
    from accelsim.fleet import evaluate_devices, load_scenario, mix_problem
    from tests.conftest import CONFIGS

    sc = load_scenario(CONFIGS / "fleet.yaml")
    sc = sc.model_copy(update={"supply": {**sc.supply, "h20": sc.supply["h20"].model_copy(
        update={"max_units": 0})}})
    r = solve(mix_problem(sc, evaluate_devices(sc)), marginals=False)
    assert set(r["units"]) <= {"ascend-910b", "ascend-910c", "mlu370-x8"}
    assert r["rented"] and r["pool_spend_usd"]["overseas"] == pytest.approx(
        r["rent_usd_per_year"])
    held = {k: sum(v.values()) for k, v in r["rented"].items()}
    for k, n in held.items():
        assert n <= sc.rentals[k.removeprefix("rent:")].max_units
    rent = sum(n * sc.rentals[k.removeprefix("rent:")].usd_per_device_hour * HOURS_PER_YEAR
               for k, n in held.items())
    assert r["rent_usd_per_year"] == pytest.approx(rent)

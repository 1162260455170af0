"""Rented capacity in the plan MILP (accelsim.plan.problem.Rentals): rented servers are held
quarter by quarter (a reserved contract for its whole term), paid every quarter held, from
the offer's pool in that year's budget, and draw no power of ours. Priced above the owned
TCO at full use, a flat demand is bought; a peak that lasts one quarter is rented."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.plan import PlanProblem, solve_plan
from accelsim.plan.problem import Rentals

OWN_TCO = 7_000.0  # USD per device-year: capex 20,000 over 5 years at 8 % (5,009) + opex 2,000


def toy(demand: list[float], rent_over_own: float = 1.3, term_q: int = 1,
        rent_cap: float = 1e12, budget: float = 1e9, power_cap_W: float | None = None
        ) -> PlanProblem:
    Q = len(demand)
    return PlanProblem(
        devices=["own"], workloads=["w"], capex=np.array([20_000.0]),
        opex=np.array([[2_000.0]]), tco=np.array([[OWN_TCO]]), power=np.array([[1000.0]]),
        thr=np.array([[10.0]]), demand=np.array([demand]), supply=np.full((1, Q), 1e9),
        pool_of=["A"], pool_share={"A": 1.0}, budget=np.full(Q, budget),
        year_of=2025 + np.arange(Q) // 4, region_of=["r"], region_caps_W={},
        power_cap_W=power_cap_W, server=8, rate=0.08, life_years=5.0, builds={},
        facility_years=15.0, penalty=np.array([20.0]), off_saving=np.array([[500.0]]),
        rentals=Rentals(offers=["cloud"], thr=np.array([[10.0]]),
                        usd_per_year=np.array([rent_over_own * OWN_TCO]),
                        term_q=np.array([term_q]), supply=np.full((1, Q), rent_cap),
                        pool_of=["A"]))


def _rented(res, q):
    return res["quarters"][q]["rented"].get("cloud", 0)


def test_flat_demand_with_rent_above_the_owned_tco_is_bought():
    res = solve_plan(toy([800.0] * 12))
    assert all(_rented(res, q) == 0 for q in range(12))
    assert res["quarters"][0]["installed"] == {"own": 80}
    assert res["rent_usd_by_year"] == {2025: 0.0, 2026: 0.0, 2027: 0.0}


def test_a_one_quarter_peak_is_rented_and_paid_from_that_years_budget():
    demand = [800.0] + [80.0] * 11
    res = solve_plan(toy(demand))
    assert _rented(res, 0) == pytest.approx(72, abs=1)  # the peak above the base
    assert all(_rented(res, q) == 0 for q in range(1, 12))
    assert res["quarters"][0]["installed"] == {"own": 8}
    assert res["quarters"][0]["served_fraction"]["w"] >= 1 - 1e-9
    assert res["rent_usd_by_year"][2025] == pytest.approx(
        _rented(res, 0) * 1.3 * OWN_TCO / 4, rel=1e-6)


def test_a_reserved_contract_is_held_for_its_term():
    demand = [800.0] + [80.0] * 11
    res = solve_plan(toy(demand, rent_over_own=1.0, term_q=4))
    held = [_rented(res, q) for q in range(12)]
    assert held[0] > 0 and held[:4] == [held[0]] * 4 and held[4:] == [0] * 8


def test_the_offers_limit_and_power_bind_owning_not_renting():
    demand = [800.0] + [80.0] * 11
    res = solve_plan(toy(demand, rent_cap=40))
    assert _rented(res, 0) == pytest.approx(40, abs=1e-6)
    assert res["quarters"][0]["installed"]["own"] >= 40  # the rest is bought
    # rented servers draw no power of ours: under a cap for 8 servers' worth, the peak rents
    capped = solve_plan(toy(demand, power_cap_W=8 * 8 * 1000.0, rent_over_own=3.0))
    assert capped["quarters"][0]["power_MW"] <= 0.064 + 1e-9
    assert _rented(capped, 0) == pytest.approx(72, abs=1)


def test_the_seed_plan_pays_its_rent_from_each_years_budget():
    """On the seed, rented H100s are held within each offer's limit and the year's capex
    plus rent stays within the year's budget."""
    from accelsim.fleet import evaluate_devices, load_scenario
    from accelsim.plan import build
    from tests.conftest import CONFIGS

    sc = load_scenario(CONFIGS / "fleet.yaml")
    assert sc.plan is not None
    res = solve_plan(build(sc, evaluate_devices(sc), sc.plan))
    assert sum(res["rent_usd_by_year"].values()) > 0
    for y, capex in res["capex_usd_by_year"].items():
        assert capex + res["rent_usd_by_year"][y] <= sc.plan.budget_usd_per_year[y] * (1 + 1e-6)
    for q in res["quarters"]:
        for offer, n in q["rented"].items():
            assert n <= (sc.rentals[offer].max_units or float("inf"))

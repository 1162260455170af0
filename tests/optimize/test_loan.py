"""A shared fleet in the optimize MILP: each serving unit credits the training its troughs
lend to the training demand row, so the optimum buys fewer dedicated training devices
(never more), and a flat day (no trough) changes nothing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from accelsim.optimize import MixProblem, solve


def toy(lend_share: float | None, objective: str = "min_cost") -> MixProblem:
    """A serving device (serves 100/unit, trains 10/unit) and a training-only one (10/unit,
    cheaper); 8,000 served and 800 trained. ``lend_share``: the share of a day a serving
    unit trains in its troughs (None: dedicated pools)."""
    thr = np.array([[100.0, 10.0], [0.0, 10.0]])
    loan = None if lend_share is None else np.array([[10.0 * lend_share, 0.0], [0.0, 0.0]])
    return MixProblem(
        devices=["gpu", "trainer"], workloads=["serve", "train"],
        capex=np.array([30_000.0, 20_000.0]), tco=np.array([[9_000.0] * 2, [7_000.0] * 2]),
        power=np.full((2, 2), 1000.0), thr=thr, demand=np.array([8_000.0, 800.0]),
        pool_of=["A", "A"], pool_usd={"A": 1e8}, total_usd=1e8,
        max_units=np.array([np.inf, np.inf]), power_cap_W=None, server=8,
        objective=objective, loan_thr=loan, loan_to=None if loan is None else 1)


def test_serving_troughs_replace_dedicated_training_devices():
    ded = solve(toy(None), marginals=False)
    sha = solve(toy(0.4), marginals=False)
    assert ded["units"] == {"gpu": {"serve": 80}, "trainer": {"train": 80}}
    # 80 serving units lend 80 x 10 x 0.4 = 320 of the 800: 480 left, 48 trainers
    assert sha["units"] == {"gpu": {"serve": 80}, "trainer": {"train": 48}}
    assert sha["loan_capacity"] == pytest.approx(320.0)
    assert sha["capacity"]["train"] == pytest.approx(48 * 10 + 320)
    assert sha["tco_usd_per_year"] < ded["tco_usd_per_year"]


@pytest.mark.parametrize("share", [0.05, 0.4, 0.9])
def test_a_shared_fleet_never_does_worse(share: float):
    for objective in ("min_cost", "served_demand"):
        ded = solve(replace(toy(None, objective), total_usd=3e6, pool_usd={"A": 3e6}),
                    marginals=False)
        sha = solve(replace(toy(share, objective), total_usd=3e6, pool_usd={"A": 3e6}),
                    marginals=False)
        if objective == "min_cost" and ded["feasible"]:
            assert sha["tco_usd_per_year"] <= ded["tco_usd_per_year"] + 1e-6
            assert (sha["units"].get("trainer", {}).get("train", 0)
                    <= ded["units"].get("trainer", {}).get("train", 0))
        if objective == "served_demand":
            assert sha["objective"] >= ded["objective"] - 1e-9


def test_a_flat_day_lends_nothing_and_changes_nothing():
    assert solve(toy(0.0), marginals=False)["units"] == solve(toy(None), marginals=False)["units"]


def test_the_seed_loan_rates_are_linear_and_flat_profiles_give_none():
    """Per-unit rates (accelsim.fleet.loan.unit_loan_rates) times units equal fleet_loan on
    one serving pool; flat daily profiles give every device a rate of 0."""
    from accelsim import units
    from accelsim.fleet import load_scenario
    from accelsim.fleet.loan import fleet_loan, unit_loan_rates
    from tests.conftest import CONFIGS

    sc = load_scenario(CONFIGS / "fleet.yaml")
    thr = {"dev": {"training": 1000.0, "serving": 5.0, "chatbot": 2.0}}
    tw, rates = unit_loan_rates(sc, thr)
    assert tw == "training" and rates["dev"]["serving"] > 0
    lent = fleet_loan(sc, {"dev": {"serving": 800.0}}, thr)
    assert lent["loan_training_tokens_per_day"] / units.DAY == pytest.approx(
        800 * rates["dev"]["serving"])
    flat = {w: s.model_copy(update={"daily_profile": None}) if hasattr(s, "daily_profile")
            else s for w, s in sc.workloads.items()}
    _, none = unit_loan_rates(sc.model_copy(update={"workloads": flat}), thr)
    assert none == {"dev": {}}


def test_the_seed_shared_optimum_buys_no_more_training_devices_and_costs_no_more():
    """2026 seed: with sharing the optimum serves as much, trains on no more dedicated units
    and costs no more a year; with flat daily profiles the two optima are the same fleet."""
    from accelsim.fleet import evaluate_devices, load_scenario, mix_problem
    from tests.conftest import CONFIGS

    sc = load_scenario(CONFIGS / "fleet.yaml")
    dev = evaluate_devices(sc)

    def best(s):
        r = solve(mix_problem(s, dev, 2026), marginals=False)
        return r, sum(u.get("training", 0) for u in r["units"].values())

    ded, ded_train = best(sc)
    sha, sha_train = best(sc.model_copy(update={"sharing": "shared"}))
    assert sha["objective"] >= ded["objective"] - 1e-9
    assert sha_train <= ded_train
    assert sha["tco_usd_per_year"] <= ded["tco_usd_per_year"] * (1 + 1e-6)
    assert sha["loan_capacity"] > 0
    flat = {w: s.model_copy(update={"daily_profile": None}) if hasattr(s, "daily_profile")
            else s for w, s in sc.workloads.items()}
    # (a flat day also moves the chatbot's peak when its demand comes from tokens a day, so
    # compare with the flat dedicated optimum)
    flat_ded, _ = best(sc.model_copy(update={"workloads": flat}))
    flat_sha, _ = best(sc.model_copy(update={"workloads": flat, "sharing": "shared"}))
    assert flat_sha["units"] == flat_ded["units"] and flat_sha["loan_capacity"] == 0


def test_the_seed_shared_plan_costs_no_more_and_flat_days_credit_nothing():
    """plan with sharing: the same credit on each quarter's training demand row; the shared
    plan's objective (present cost plus unserved penalty) is no more than dedicated's."""
    from accelsim.fleet import evaluate_devices, load_scenario
    from accelsim.plan import build, solve_plan
    from tests.conftest import CONFIGS

    sc = load_scenario(CONFIGS / "fleet.yaml")
    dev = evaluate_devices(sc)
    shared = sc.model_copy(update={"sharing": "shared"})
    p_ded, p_sha = build(sc, dev, sc.plan), build(shared, dev, shared.plan)
    assert p_ded.loan_thr is None and p_sha.loan_thr is not None and p_sha.loan_thr.max() > 0
    ded, sha = solve_plan(p_ded), solve_plan(p_sha)
    assert sha["objective_usd"] <= ded["objective_usd"] * (1 + 1e-3)  # the solver's 0.1 % gap
    flat = {w: s.model_copy(update={"daily_profile": None}) if hasattr(s, "daily_profile")
            else s for w, s in shared.workloads.items()}
    p_flat = build(shared.model_copy(update={"workloads": flat}), dev, shared.plan)
    assert p_flat.loan_thr is not None and p_flat.loan_thr.max() == 0

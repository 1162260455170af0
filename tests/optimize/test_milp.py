"""The MILP against brute force on small instances, and monotonicity properties."""

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.optimize import MixProblem, solve


def small(pool_a=0.8e6, pool_b=0.5e6, total=1e6, cap=(np.inf, 16, np.inf),
          objective="served_demand", demand=(600.0, 150.0), power=None) -> MixProblem:
    return MixProblem(
        devices=["a", "b", "c"], workloads=["training", "serving"],
        capex=np.array([20_000.0, 15_000.0, 30_000.0]),
        tco=np.array([[6000.0, 5800.0], [4000.0, 3900.0], [9000.0, 8800.0]]),
        power=np.array([[700.0, 400.0], [400.0, 300.0], [900.0, 600.0]]),
        thr=np.array([[10.0, 3.0], [6.0, 4.0], [18.0, 2.0]]),
        demand=np.array(demand), pool_of=["A", "B", "A"],
        pool_usd={"A": pool_a, "B": pool_b}, total_usd=total,
        max_units=np.array(cap, dtype=float), power_cap_W=power, server=8,
        objective=objective)


def brute(p: MixProblem) -> float:
    """Enumerate integer servers per (device, workload) within the budget."""
    D, W = len(p.devices), len(p.workloads)
    lim = [int(p.total_usd // (p.capex[d] * p.server)) for d in range(D)]
    best = -np.inf if p.objective == "served_demand" else np.inf
    ranges = [range(lim[d] + 1) for d in range(D) for _ in range(W)]
    for combo in itertools.product(*ranges):
        x = np.array(combo, dtype=float).reshape(D, W)
        spend = x.sum(axis=1) * p.capex * p.server
        if spend.sum() > p.total_usd:
            continue
        if any(spend[[d for d in range(D) if p.pool_of[d] == k]].sum() > v
               for k, v in p.pool_usd.items()):
            continue
        if np.any(x.sum(axis=1) * p.server > p.max_units):
            continue
        if p.power_cap_W is not None and np.sum(x * p.power * p.server) > p.power_cap_W:
            continue
        cap = (x * p.thr * p.server).sum(axis=0)
        if p.objective == "served_demand":
            val = float(np.minimum(1, cap / p.demand).mean())
            best = max(best, val)
        elif np.all(cap >= p.demand - 1e-9):
            best = min(best, float(np.sum(x * p.tco * p.server)))
    return best


@pytest.mark.parametrize("kw", [
    {}, {"pool_a": 0.3e6}, {"cap": (8, 0, np.inf)}, {"total": 0.6e6}, {"power": 20_000.0},
    {"objective": "min_cost", "demand": (300.0, 80.0)},
    {"objective": "min_cost", "demand": (250.0, 50.0), "cap": (16, 8, np.inf)},
])
def test_milp_matches_brute_force(kw):
    p = small(**kw)
    assert solve(p)["objective"] == pytest.approx(brute(p), rel=1e-6, abs=1e-9)


def test_binding_constraints_and_shadow_prices():
    p = small(pool_a=0.3e6, pool_b=0.2e6, total=10e6, demand=(5000.0, 2000.0))
    r = solve(p)
    names = {b["constraint"]: b for b in r["binding_constraints"]}
    assert "budget pool A" in names
    # one more dollar in a binding pool is worth something when demand is not met
    assert names["budget pool A"]["shadow_price"] > 0
    assert r["objective"] < 1


@settings(max_examples=25, deadline=None)
@given(extra=st.floats(0, 1e6))
def test_larger_budget_never_lowers_the_optimum(extra):
    base = solve(small(pool_a=0.3e6, total=0.6e6))["objective"]
    more = solve(small(pool_a=0.3e6 + extra, total=0.6e6 + extra))["objective"]
    assert more >= base - 1e-9


@settings(max_examples=25, deadline=None)
@given(cap=st.integers(0, 64))
def test_tighter_caps_never_raise_the_optimum(cap):
    loose = solve(small(cap=(np.inf, 64, np.inf)))["objective"]
    tight = solve(small(cap=(np.inf, cap, np.inf)))["objective"]
    assert tight <= loose + 1e-9


def test_infeasible_min_cost_returns_the_most_serving_mix_with_its_reason():
    p = small(objective="min_cost", total=1e5, demand=(1e9, 1e9))
    res = solve(p)
    assert res["feasible"] is False
    assert "no fleet meets the whole demand" in res["reason"]
    best = solve(replace(p, objective="served_demand"))
    assert res["units"] == best["units"] and res["objective_kind"] == "served_demand"
    assert res["capex_usd"] <= 1e5 + 1e-6


def test_marginals_are_re_solved_differences_in_the_objectives_units():
    from accelsim.optimize.milp import MARGINAL_STEP

    p = small(objective="min_cost", total=2e6, pool_a=1.5e6, pool_b=1e6, demand=(200.0, 60.0))
    res = solve(p)
    assert res["feasible"]
    by = {b["constraint"]: b for b in res["binding_constraints"]}
    for name, b in by.items():
        if b.get("marginal") is None or not name.startswith("demand"):
            continue
        # demand 2 % higher: what the re-solved optimum costs more, per 1 % of demand
        w = p.workloads.index(name.removeprefix("demand "))
        dem = p.demand.copy()
        dem[w] *= 1 + MARGINAL_STEP
        again = solve(replace(p, demand=dem), marginals=False)
        want = (again["objective"] - res["objective"]) / MARGINAL_STEP * 0.01
        assert b["marginal"] == pytest.approx(want, rel=1e-9)
        assert b["marginal"] >= 0  # more demand never costs less
        assert b["marginal_per"] == "per 1 % more demand"


def test_loosening_a_binding_budget_never_worsens_the_objective():
    p = small(pool_a=0.3e6, total=0.6e6)
    res = solve(p)
    for b in res["binding_constraints"]:
        if b["constraint"].startswith("budget") and b.get("marginal") is not None:
            assert b["marginal"] >= -1e-12  # served fraction can only rise


def test_a_time_limit_is_reported_not_hidden(monkeypatch):
    import accelsim.optimize.milp as m

    res = solve(small())
    assert res["proven_optimal"] is True and res["mip_gap"] <= 1e-6
    rng = np.random.default_rng(0)
    D, W = 40, 20  # large enough that HiGHS cannot prove optimality in the limit
    capex = rng.uniform(8e3, 40e3, D)
    p = MixProblem(
        devices=[f"d{i}" for i in range(D)], workloads=[f"w{j}" for j in range(W)],
        capex=capex, tco=capex[:, None] * rng.uniform(0.25, 0.35, (D, W)),
        power=rng.uniform(200, 900, (D, W)), thr=rng.uniform(0.2, 1.0, (D, W)),
        demand=rng.uniform(2e3, 6e3, W), pool_of=["p"] * D, pool_usd={"p": 1e12},
        total_usd=1e12, max_units=np.full(D, np.inf), power_cap_W=None, server=8,
        objective="min_cost")
    monkeypatch.setattr(m, "TIME_LIMIT_S", 0.05)
    res = m.solve(p, marginals=False)
    assert res["proven_optimal"] is False and "time limit" in res["solver"].lower()


def test_quiet_solver_restores_stdout_when_threads_overlap():
    """Two threads silencing the solver at once (the marginal re-solves): the second in
    must not save the first's /dev/null as 'stdout' and put it back last (a study's output
    was lost that way, with exit code 0)."""
    import os
    import threading

    from accelsim.optimize.milp import quiet_solver

    def ident(st: os.stat_result) -> tuple[int, int]:
        return st.st_dev, st.st_ino

    before, null = ident(os.fstat(1)), ident(os.stat(os.devnull))
    inside, first_out = threading.Barrier(2), threading.Event()
    seen: list[tuple[int, int]] = []

    def first() -> None:
        with quiet_solver():
            inside.wait()
            seen.append(ident(os.fstat(1)))
        first_out.set()

    def second() -> None:
        with quiet_solver():
            inside.wait()
            first_out.wait()  # leaves after the first
            seen.append(ident(os.fstat(1)))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert seen == [null, null]  # silenced while either is inside
    assert ident(os.fstat(1)) == before


def test_marginals_known_without_re_solving_equal_the_re_solves(monkeypatch):
    """solve's marginal values equal one full re-solve per binding rule (in this thread),
    where they are known without one (every workload served and the mix still feasible
    loosened), from the loosened problem's first solve alone (it serves everything too) or
    from full re-solves (on two threads)."""
    import accelsim.optimize.milp as m

    first_only = []
    most_served = m._most_served

    def spy(q: MixProblem) -> float | None:
        first_only.append(most_served(q))
        return first_only[-1]

    monkeypatch.setattr(m, "_most_served", spy)
    cases = [  # (problem, every workload served, first solves' most served)
        (small(total=0.45e6, demand=(80.0, 32.0)), True, [1.0, 1.0]),
        (small(total=0.3e6, demand=(80.0, 32.0)), True, [pytest.approx(0.99, abs=0.01)] * 2),
        (small(pool_a=0.3e6, total=0.6e6, power=60e3), False, [])]
    for p, known, firsts in cases:
        first_only.clear()
        res = solve(p)
        assert len(res["binding_constraints"]) >= 3
        assert (res["objective"] == 1.0) is known and first_only == firsts
        _, rhs, names, _ = m._rows(p)
        rhs_of = {name: float(r) for (name, _), r in zip(names, rhs, strict=True)}
        cap, served = np.array(list(res["capacity"].values())), np.array(list(
            res["served_fraction"].values()))
        with monkeypatch.context() as full:
            full.setattr(m, "_most_served", lambda q: None)
            for b in res["binding_constraints"]:
                name = b["constraint"]
                resource = b["per"] != "fraction of demand"
                assert m._keeps_all_served(p, name, b["per"], served, cap) is (known and
                                                                              resource)
                again = m._marginal(p, {"objective": res["objective"]}, name, rhs_of[name],
                                    b["per"])
                assert b["marginal"] == again["marginal"], name
        if not known:
            assert any(b["marginal"] for b in res["binding_constraints"])

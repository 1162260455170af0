"""Speed of the multi-year plan MILP: 10 device types x 12 quarters x 4 workloads (seeded
random instances), supply ramps, yearly budgets split over pools, a power cap, a region
cap and one region that owns its data centres (200 MW built, builds power on 6 quarters
after they start). Prints ``plan_s=`` per instance, whether it was proven optimal (target < 10 s).
``--rentals``: the same instances with three cloud offers (one reserved for a year, two on
demand), each renting one of the devices at 1.2-3x its TCO per hour, up to 20,000 devices.
Run: ``python benchmarks/bench_plan.py [--rentals]``."""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import numpy as np

from accelsim.plan import Build, PlanProblem, solve_plan
from accelsim.plan.problem import Rentals


def with_rentals(p: PlanProblem, rng: np.random.Generator) -> PlanProblem:
    """Three offers renting devices 0, 1 and 2 at 1.2-3x their mean TCO per year."""
    Q = p.demand.shape[1]
    k = [0, 1, 2]
    return replace(p, rentals=Rentals(
        offers=["reserved", "on-demand-a", "on-demand-b"], thr=p.thr[k],
        usd_per_year=p.tco[k].mean(axis=1) * rng.uniform(1.2, 3.0, 3),
        term_q=np.array([4, 1, 1]), supply=np.full((3, Q), 2e4),
        pool_of=[p.pool_of[i] for i in k]))


def instance(rng: np.random.Generator) -> PlanProblem:
    D, W, Q = 10, 4, 12
    capex = rng.uniform(8e3, 40e3, D)
    thr = rng.uniform(0.2, 1.0, (D, W)) * capex[:, None] / 1e4
    demand0 = thr.mean(axis=0) * rng.uniform(1e4, 3e4, W)
    growth = rng.uniform(0.0, 0.1, W)
    years = 2025 + np.arange(Q) // 4
    supply = np.where(rng.random((D, Q)) < 0.85, rng.uniform(2e4, 8e4, (D, Q)), 0.0)
    return PlanProblem(
        devices=[f"dev{i}" for i in range(D)], workloads=[f"w{j}" for j in range(W)],
        capex=capex, opex=capex[:, None] * rng.uniform(0.05, 0.1, (D, W)),
        tco=capex[:, None] * rng.uniform(0.25, 0.35, (D, W)),
        power=rng.uniform(600, 1800, (D, W)), thr=thr,
        demand=demand0[:, None] * (1 + growth[:, None]) ** np.arange(Q), supply=supply,
        pool_of=[["domestic", "overseas"][i % 2] for i in range(D)],
        pool_share={"domestic": 0.45, "overseas": 0.55},
        budget=np.full(Q, 6e9), year_of=years,
        region_of=[["west", "sea"][i % 2] for i in range(D)],
        region_caps_W={"sea": 500e6}, power_cap_W=900e6, server=8, rate=0.08,
        life_years=5.0, builds={"west": Build(200e6, 800e6, 6, 8.0 / 1.25)},
        facility_years=15.0)


def main() -> None:
    rng = np.random.default_rng(5)
    rent = "--rentals" in sys.argv
    for i in range(5):
        p = instance(rng)
        if rent:
            p = with_rentals(p, np.random.default_rng(100 + i))
        t0 = time.perf_counter()
        res = solve_plan(p)
        dt = time.perf_counter() - t0
        print(f"instance {i}: 10 devices x 12 quarters x 4 workloads"
              f"{', 3 rental offers' if rent else ''}, "
              f"{res['variables']} variables: plan_s={dt:.2f} "
              f"proven_optimal={res['proven_optimal']} gap={res['mip_gap']:.1e}")


if __name__ == "__main__":
    main()

"""Speed of the fleet MILP: 8 device types x 3 workloads, 3 pools, supply and power caps
(random seeded instances). Prints ``optimize_s=<t>`` per instance (target < 1 s).
Run: ``python benchmarks/bench_optimize.py``."""

from __future__ import annotations

import time

import numpy as np

from accelsim.optimize import MixProblem, solve


def instance(rng: np.random.Generator, objective: str) -> MixProblem:
    D, W = 8, 3
    capex = rng.uniform(8e3, 40e3, D)
    thr = rng.uniform(0.2, 1.0, (D, W)) * capex[:, None] / 1e4
    demand = thr.mean(axis=0) * rng.uniform(2e4, 6e4, W)
    return MixProblem(
        devices=[f"dev{i}" for i in range(D)], workloads=["training", "serving", "batch"],
        capex=capex, tco=capex[:, None] * rng.uniform(0.25, 0.35, (D, W)),
        power=rng.uniform(200, 900, (D, W)), thr=thr, demand=demand,
        pool_of=[["domestic", "overseas", "inhouse"][i % 3] for i in range(D)],
        pool_usd={"domestic": 5.5e9, "overseas": 6.8e9, "inhouse": 1.5e9}, total_usd=12.3e9,
        max_units=np.where(rng.random(D) < 0.4, rng.uniform(5e4, 3e5, D), np.inf),
        power_cap_W=600e6, server=8, objective=objective)


def main() -> None:
    rng = np.random.default_rng(3)
    for objective in ("served_demand", "min_cost"):
        times = []
        for _ in range(5):
            p = instance(rng, objective)
            t0 = time.perf_counter()
            try:
                solve(p)
            except Exception as exc:  # an infeasible min_cost instance still counts its time
                print(f"  ({type(exc).__name__}: infeasible instance)")
            times.append(time.perf_counter() - t0)
        print(f"{objective}: 8 devices x 3 workloads, 5 instances: "
              f"optimize_s median={np.median(times):.3f} max={max(times):.3f}")


if __name__ == "__main__":
    main()

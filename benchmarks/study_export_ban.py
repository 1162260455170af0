"""Study 4: the export ban. Capacity lost as the overseas pool loses the H20 (the optimiser
re-buys within the pool budgets at each cap), and the cheapest domestic mix that recovers the
reported split's capacity. Writes results/export_ban.{csv,png,svg}.
Run: python benchmarks/study_export_ban.py"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from accelsim.fleet import compare, evaluate_devices, load_scenario, mix_problem
from accelsim.optimize import solve
from accelsim.plots import sweep_plot
from accelsim.sweep import Param

from _study import args, run

X = "supply.h20.max_units"
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def cheapest_domestic_recovery() -> dict:
    """min TCO domestic-only mix (no budget limit) that matches the reported split's capacity."""
    sc = load_scenario(ROOT / "configs" / "fleet.yaml")
    table = evaluate_devices(sc)
    rep = next(f for f in compare(sc, dev_table=table).fleets if f["name"] == "reported-split")
    p = mix_problem(sc, table)
    domestic = np.array([pool == "domestic" for pool in p.pool_of])
    # the reported split's allocated capacity of each workload, in the problem's units
    capacity = {"training": rep["training_tokens_per_day"] / 86400.0,
                "serving": rep["serving_qps_at_slo"], "chatbot": rep["chatbot_rps_at_slo"]}
    target = np.array([capacity[w] for w in p.workloads])
    p = replace(p, objective="min_cost", demand=target,
                max_units=np.where(domestic, p.max_units, 0.0),
                pool_usd={k: 1e13 for k in p.pool_usd}, total_usd=1e13, power_cap_W=None)
    r = solve(p)
    return {"capex_usd": r["capex_usd"], "tco_usd_per_year": r["tco_usd_per_year"],
            "units": r["units"], "reported_capex_usd": rep["capex_usd"],
            "binding": [b["constraint"] for b in r["binding_constraints"]]}


def main() -> None:
    a = args()
    df = run("export_ban", a.out, a.quick, a.workers,
             {X: Param(values=[600000, 200000, 0])})
    df["H20 units allowed (thousands)"] = df[X] / 1e3
    sweep_plot(df, a.out / "export_ban.png", x="H20 units allowed (thousands)",
               y="optimum.served_fraction.training", kind="line",
               labels={"optimum.served_fraction.training":
                       "training demand served by the optimal mix (fraction)",
                       "H20 units allowed (thousands)": "H20 supply cap (thousand units)"},
               title="Export ban: training demand the best in-budget fleet can serve")
    rec = cheapest_domestic_recovery()
    units = ", ".join(f"{d} {sum(w.values()):,}" for d, w in rec["units"].items())
    served = df["optimum.served_fraction.training"]
    print(f"served fraction of training demand: {served.iloc[0]:.3f} with 600k H20 -> "
          f"{served.iloc[-1]:.3f} with none")
    print(f"cheapest domestic mix matching the reported split's capacity: {units}; capex "
          f"USD {rec['capex_usd'] / 1e9:.2f} B (reported split: "
          f"{rec['reported_capex_usd'] / 1e9:.2f} B), TCO {rec['tco_usd_per_year'] / 1e9:.2f} B/yr;"
          f" binding: {', '.join(rec['binding'])}")


if __name__ == "__main__":
    main()

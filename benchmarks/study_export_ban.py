"""Study 4: the export ban. Capacity lost as the overseas pool loses the H20 (the optimiser
re-buys within the pool budgets at each cap), and the cheapest domestic mix that recovers the
reported split's capacity. Writes results/export_ban.{csv,png,svg} and
results/export_ban_recovery.csv. Run: python benchmarks/study_export_ban.py"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from accelsim.fleet import compare, evaluate_devices, load_scenario, mix_problem
from accelsim.optimize import solve
from accelsim.plots import sweep_plot
from accelsim.sweep import Param

from _study import RESULTS, args, read, run, subgrid

X = "supply.h20.max_units"
SERVED = "optimum.served_fraction.training"
ROOT = Path(__file__).resolve().parents[1]


def cheapest_domestic_recovery() -> pd.DataFrame:
    """min TCO domestic-only mix (no budget limit) that matches the reported split's capacity,
    as one row: capex_usd, tco_usd_per_year, the reported split's capex, units.<device> (summed
    over workloads), max_units.<device> (the scenario's supply cap of each device bought) and
    the binding constraints."""
    sc = load_scenario(ROOT / "configs" / "fleet.yaml")
    table = evaluate_devices(sc)
    rep = next(f for f in compare(sc, dev_table=table).fleets if f["name"] == "reported-split")
    p = mix_problem(sc, table)
    domestic = np.array([pool == "domestic" for pool in p.pool_of])
    # the reported split's allocated capacity of each workload, in the problem's units
    capacity = {"training": rep["training_tokens_per_day"] / 86400.0,
                "serving": rep["serving_qps_at_slo"], "chatbot": rep["chatbot_rps_at_slo"]}
    target = np.array([capacity[w] for w in p.workloads])
    caps = dict(zip(p.devices, p.max_units, strict=True))
    p = replace(p, objective="min_cost", demand=target,
                max_units=np.where(domestic, p.max_units, 0.0),
                pool_usd={k: 1e13 for k in p.pool_usd}, total_usd=1e13, power_cap_W=None)
    r = solve(p)
    units = {d: sum(w.values()) for d, w in r["units"].items() if sum(w.values()) > 0}
    return pd.DataFrame([{"capex_usd": r["capex_usd"], "tco_usd_per_year": r["tco_usd_per_year"],
                          "reported_capex_usd": rep["capex_usd"],
                          **{f"units.{d}": n for d, n in units.items()},
                          **{f"max_units.{d}": float(caps[d]) for d in units},
                          "binding": "; ".join(b["constraint"]
                                               for b in r["binding_constraints"])}])


def headline_points() -> dict[str, Param]:
    """The scenario's cap and none: the two points the headline reads."""
    return {X: subgrid("export_ban", X, (0, 0), (600000, 600000))}


def headline(df: pd.DataFrame, recovery: pd.DataFrame) -> dict[str, float]:
    """Training demand served by the best in-budget fleet at the scenario's H20 cap and with no
    H20 (fractions); the cheapest domestic recovery's units per device, capex (USD), TCO
    (USD/year), and whether every device stays within its supply cap."""
    df = df.sort_values(X)
    rec = recovery.iloc[0]
    units = {c.removeprefix("units."): float(rec[c]) for c in recovery if c.startswith("units.")}
    return {"served_fraction_no_h20": float(df[SERVED].iloc[0]),
            "served_fraction_full_cap": float(df[SERVED].iloc[-1]),
            "recovery_capex_usd": float(rec["capex_usd"]),
            "recovery_tco_usd_per_year": float(rec["tco_usd_per_year"]),
            "reported_capex_usd": float(rec["reported_capex_usd"]),
            **{f"recovery_units.{d}": n for d, n in units.items()},
            "within_supply_caps": all(n <= rec[f"max_units.{d}"] for d, n in units.items())}


def describe(h: dict[str, float]) -> str:
    """The headline as Markdown sentences (docs and the script's output)."""
    bought = sorted(((float(n), k.removeprefix("recovery_units.")) for k, n in h.items()
                     if k.startswith("recovery_units.")), reverse=True)
    units = ", ".join(f"{n / 1e3:,.0f} k {d}" if n >= 1e3 else f"{n:,.0f} {d}"
                      for n, d in bought)
    caps = "within" if h["within_supply_caps"] else "beyond"
    return (f"With no H20 the best in-budget fleet serves {100 * h['served_fraction_no_h20']:.0f} %"
            f" of the training demand (with the scenario's cap, "
            f"{100 * h['served_fraction_full_cap']:.0f} %). The cheapest domestic-only mix that "
            f"recovers the reported split's capacity is {units}: USD "
            f"{h['recovery_capex_usd'] / 1e9:.1f} B of capex (the reported split spends "
            f"{h['reported_capex_usd'] / 1e9:.1f} B), TCO "
            f"{h['recovery_tco_usd_per_year'] / 1e9:.1f} B per year, {caps} the assumed supply "
            f"caps.")


def headline_of(results: Path = RESULTS) -> dict[str, float]:
    """The headline of the results tables in ``results`` (default: the committed ones)."""
    return headline(read("export_ban", results), read("export_ban_recovery", results))


def rerun(out: Path, workers: int = 1) -> None:
    """Re-run the headline's points and the recovery into ``out`` (about 20 s: two base
    evaluations)."""
    run("export_ban", out, False, workers, params=headline_points())
    cheapest_domestic_recovery().to_csv(out / "export_ban_recovery.csv", index=False)


def plot(df: pd.DataFrame, out: Path) -> None:
    """Training demand served against the H20 cap, the seed scenario's cap marked."""
    k = "H20 units allowed (thousands)"
    df[k] = df[X] / 1e3
    seed_cap = load_scenario(ROOT / "configs" / "fleet.yaml").supply["h20"].max_units
    sweep_plot(df, out / "export_ban.png", x=k, y=SERVED, kind="line",
               base={k: seed_cap / 1e3}, base_label="seed's cap",
               labels={SERVED: "training demand served by the optimal mix (fraction)",
                       k: "H20 supply cap (thousand units)"},
               title="Export ban: training demand the best in-budget fleet can serve")


def main() -> None:
    a = args()
    df = run("export_ban", a.out, a.quick, a.workers,
             {X: Param(values=[600000, 200000, 0])})
    plot(df, a.out)
    rec = cheapest_domestic_recovery()
    rec.to_csv(a.out / "export_ban_recovery.csv", index=False)
    print(describe(headline(df, rec)))


if __name__ == "__main__":
    main()

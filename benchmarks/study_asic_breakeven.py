"""Study 2: in-house ASIC break-even against the H20. Contours of (ASIC performance relative to
H20, unit price) where the ASIC matches the H20 on recommendation-serving QPS per dollar at the
p99 SLO, and on training tokens per dollar. Writes results/asic_breakeven*.{csv,png,svg}.
Run: python benchmarks/study_asic_breakeven.py"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from accelsim.devices import load_device
from accelsim.plots import sweep_plot
from accelsim.sweep import Param

from _study import RESULTS, args, read, run, subgrid

P, PRICE = "devices.inhouse-asic.perf_scale", "devices.inhouse-asic.price_usd"
WORKLOADS = (("serving", "QPS"), ("training", "tokens"))


def relative(df: pd.DataFrame, w: str) -> pd.Series:
    """The ASIC's throughput over the H20's on workload ``w`` (ratio)."""
    return df[f"device.inhouse-asic.{w}.throughput"] / df[f"device.h20.{w}.throughput"]


def per_usd_ratio(w: str) -> str:
    """The sweep's metric: ASIC throughput per USD over the H20's on workload ``w``."""
    return f"device.inhouse-asic.{w}.throughput_per_usd / device.h20.{w}.throughput_per_usd"


def breakeven_price(df: pd.DataFrame, w: str) -> float:
    """Unit price (USD) at which the ASIC matches the H20 per dollar at equal performance: per
    price, the per-dollar ratio at relative performance 1 (linear between the grid's
    performance points); then the price where that ratio crosses 1 (it falls with price)."""
    rel, ratio = relative(df, w), df[per_usd_ratio(w)]
    prices = np.sort(df[PRICE].unique())
    at_par = []
    for pr in prices:
        m = (df[PRICE] == pr).to_numpy()
        order = np.argsort(rel[m].to_numpy())
        at_par.append(float(np.interp(1.0, rel[m].to_numpy()[order],
                                      ratio[m].to_numpy()[order])))
    return float(np.interp(1.0, np.asarray(at_par)[::-1], prices[::-1]))


def headline_points() -> dict[str, Param]:
    """The full grid's points around the headline (performance at par with the H20 on both
    workloads, break-even prices near USD 18,000): a re-run on them gives the full run's
    headline while the break-even stays inside the window."""
    return {P: subgrid("asic_breakeven", P, (0.25, 0.75)),
            PRICE: subgrid("asic_breakeven", PRICE, (15000, 23000))}


def headline(df: pd.DataFrame) -> dict[str, float]:
    """Break-even unit price (USD) at H20-equal performance, per workload."""
    return {f"{w}_breakeven_usd": breakeven_price(df, w) for w, _ in WORKLOADS}


def describe(h: dict[str, float]) -> str:
    """The headline as one Markdown sentence (docs and the script's output)."""
    return (f"At H20-equal performance the ASIC matches the H20 per dollar up to a unit price "
            f"of USD {h['serving_breakeven_usd']:,.0f} for serving QPS at the p99 SLO and "
            f"USD {h['training_breakeven_usd']:,.0f} for training tokens.")


def headline_of(results: Path = RESULTS) -> dict[str, float]:
    """The headline of the results table in ``results`` (default: the committed one)."""
    return headline(read("asic_breakeven", results))


def rerun(out: Path, workers: int = 1) -> None:
    """Re-run the headline's points into ``out`` (about 12 s: the base evaluation)."""
    run("asic_breakeven", out, False, workers, params=headline_points())


def base_case(df: pd.DataFrame, w: str) -> dict[str, float]:
    """The seed scenario's ASIC on the plot's axes: its relative throughput at perf_scale 1
    (the assumed profile; interpolated where the grid lacks 1) and its profile price."""
    price = load_device("inhouse-asic").cost.price_usd.value
    rel = relative(df, w).groupby(df[P]).mean()  # linear between grid points without 1.0
    return {f"ASIC {w} performance relative to H20":
            float(np.interp(1.0, rel.index.to_numpy(dtype=float), rel.to_numpy())),
            PRICE: float(price)}


def plot(df: pd.DataFrame, out: Path) -> None:
    """The break-even contour per workload, the seed's ASIC marked (from a results table)."""
    for w, unit in WORKLOADS:
        rel = f"ASIC {w} performance relative to H20"
        df[rel] = relative(df, w)
        ratio = per_usd_ratio(w)
        sweep_plot(df, out / f"asic_breakeven_{w}.png", x=rel, y=PRICE, z=ratio,
                   kind="contour", level=1.0, base=base_case(df, w),
                   base_label="seed's ASIC (assumed profile and price)",
                   labels={rel: f"ASIC {w} throughput / H20's (ratio)",
                           PRICE: "ASIC unit price (USD)",
                           ratio: f"ASIC {unit} per USD / H20's (ratio)"},
                   title=f"In-house ASIC vs. H20 on {w}: {unit} per dollar (1 = break-even)")


def main() -> None:
    a = args()
    df = run("asic_breakeven", a.out, a.quick, a.workers,
             {P: Param(low=0.2, high=1.5, num=4), PRICE: Param(low=2000, high=30000, num=4)})
    plot(df, a.out)
    df.to_csv(a.out / "asic_breakeven.csv", index=False)
    print(describe(headline(df)))


if __name__ == "__main__":
    main()

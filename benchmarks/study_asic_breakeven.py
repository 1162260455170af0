"""Study 2: in-house ASIC break-even against the H20. Contours of (ASIC performance relative to
H20, unit price) where the ASIC matches the H20 on recommendation-serving QPS per dollar at the
p99 SLO, and on training tokens per dollar. Writes results/asic_breakeven*.{csv,png,svg}.
Run: python benchmarks/study_asic_breakeven.py"""

from __future__ import annotations

import numpy as np

from accelsim.plots import sweep_plot
from accelsim.sweep import Param

from _study import args, run

P, PRICE = "devices.inhouse-asic.perf_scale", "devices.inhouse-asic.price_usd"


def breakeven_price(df, rel: str, ratio: str) -> float:
    """Unit price at which the ASIC matches the H20 per dollar, at equal performance."""
    prices = np.sort(df[PRICE].unique())
    out = []
    for pr in prices:
        g = df[df[PRICE] == pr].sort_values(rel)
        out.append(float(np.interp(1.0, g[rel], g[ratio])))
    # ratio falls with price: find where it crosses 1
    out = np.asarray(out)
    return float(np.interp(1.0, out[::-1], prices[::-1]))


def main() -> None:
    a = args()
    df = run("asic_breakeven", a.out, a.quick, a.workers,
             {P: Param(low=0.2, high=1.5, num=4), PRICE: Param(low=2000, high=30000, num=4)})
    for w, unit in (("serving", "QPS"), ("training", "tokens")):
        rel = f"ASIC {w} performance relative to H20"
        df[rel] = df[f"device.inhouse-asic.{w}.throughput"] / df[f"device.h20.{w}.throughput"]
        ratio = (f"device.inhouse-asic.{w}.throughput_per_usd / "
                 f"device.h20.{w}.throughput_per_usd")
        sweep_plot(df, a.out / f"asic_breakeven_{w}.png", x=rel, y=PRICE, z=ratio,
                   kind="contour", level=1.0,
                   labels={rel: f"ASIC {w} throughput / H20's (ratio)",
                           PRICE: "ASIC unit price (USD)",
                           ratio: f"ASIC {unit} per USD / H20's (ratio)"},
                   title=f"In-house ASIC vs. H20 on {w}: {unit} per dollar (1 = break-even)")
        print(f"{w}: at H20-equal performance the ASIC breaks even at a unit price of "
              f"USD {breakeven_price(df, rel, ratio):,.0f} (H20: USD 10,000 + host and network)")
    df.to_csv(a.out / "asic_breakeven.csv", index=False)


if __name__ == "__main__":
    main()

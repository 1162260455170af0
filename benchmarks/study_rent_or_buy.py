"""Study 6: rent or buy. When cloud capacity at published hourly prices beats owning the
device (accelsim.rental: break-even utilisation and horizon, per device and offer), and what
the seed scenario's optimiser rents as the 1-year reserved H100 price in South-East Asia
moves from 1 to 5 USD per GPU-hour, with the scenario's H20 cap and with the H20 banned.
Writes results/rent_or_buy.{csv,png,svg}. Run: python benchmarks/study_rent_or_buy.py"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from accelsim.cost import tco
from accelsim.devices import load_device
from accelsim.fleet import load_scenario
from accelsim.rental import (
    break_even_horizon_years,
    break_even_utilization,
    owned_rate,
    rent_usd_per_year,
    rent_vs_buy,
)
from accelsim.sweep import Param

from _study import RESULTS, args, read, run, subgrid

ROOT = Path(__file__).resolve().parents[1]
X = "rentals.h100-reserved-1y.usd_per_device_hour"
H20 = "supply.h20.max_units"
RENTED = "optimum.rented.h100-reserved-1y"
SEED_PRICE = 2.0
DEVICES = ("h100-sxm", "h20", "ascend-910c", "inhouse-asic")  # curves of panel a


def scenario():
    return load_scenario(ROOT / "configs" / "fleet.yaml")


def owned(sc, ref: str) -> tuple[float, float, object, object]:
    """(a, b, spec, region): owning ``ref`` in its pool's region costs a + b u USD/h."""
    pool = sc.budget.pools[sc.pool_of()[ref]]
    spec = load_device(ref).spec
    region = sc.regions[pool.region]
    a, b = owned_rate(spec, region, sc.finance)
    return a, b, spec, region


def offers(sc) -> dict[str, dict[str, float]]:
    """Each seed offer against owning its device at full use (accelsim.rental.rent_vs_buy)."""
    out = {}
    for name, o in sc.rentals.items():
        _, _, spec, region = owned(sc, o.device)
        out[name] = rent_vs_buy(o, spec, region, sc.finance)
    return out


def headline_points() -> dict[str, Param]:
    """Every price, with and without the H20 (the threshold needs the whole price grid)."""
    return {X: subgrid("rent_or_buy", X, (0.0, 100.0)),
            H20: subgrid("rent_or_buy", H20, (0, 0), (600000, 600000))}


def headline(df: pd.DataFrame) -> dict[str, float]:
    """Owning an H100 in South-East Asia (USD/h at full use); the break-even utilisation and
    horizon of AWS Capacity Blocks and the horizon of the 1-year reserved offer; what the
    optimum rents at the seed price with the H20 and with it banned, the training it then
    serves, and the highest reserved price on the grid at which it still rents beside H20s."""
    sc = scenario()
    rb = offers(sc)
    out = {"owned_h100_usd_per_hour": rb["h100-capacity-block"]["owned_usd_per_hour"],
           "block_break_even_utilization": rb["h100-capacity-block"]["break_even_utilization"],
           "block_horizon_years": rb["h100-capacity-block"]["break_even_horizon_years"],
           "on_demand_break_even_utilization": rb["h100-on-demand"]["break_even_utilization"],
           "reserved_horizon_years": rb["h100-reserved-1y"]["break_even_horizon_years"],
           "reserved_limit": float(sc.rentals["h100-reserved-1y"].max_units or 0)}
    held = [c for c in df.columns if c.startswith("optimum.rented.")]
    for label, cap in (("h20", 600000), ("ban", 0)):
        row = df[(df[H20] == cap) & np.isclose(df[X], SEED_PRICE)].iloc[0]
        out[f"{label}_rented"] = float(row[RENTED])
        out[f"{label}_rented_all"] = float(row[held].sum())
        out[f"{label}_h20"] = float(row["optimum.units.h20"])
        out[f"{label}_served_training"] = float(row["optimum.served_fraction.training"])
        out[f"{label}_rent_usd_per_year"] = float(row["optimum.rent_usd_per_year"])
    allowed = df[df[H20] == 600000]
    out["h20_highest_price_rented"] = float(allowed.loc[allowed[RENTED] > 0, X].max())
    out["h20_lowest_price_not_rented"] = float(allowed.loc[allowed[RENTED] <= 0, X].min())
    return out


def describe(h: dict[str, float]) -> str:
    """The headline as one Markdown sentence (docs and the script's output)."""
    return (f"Owning an H100 in the South-East Asian region costs "
            f"{h['owned_h100_usd_per_hour']:.2f} USD an hour at full use, so AWS Capacity "
            f"Blocks (4.92 USD) win only below {100 * h['block_break_even_utilization']:.0f} % "
            f"utilisation or for needs shorter than {h['block_horizon_years']:.1f} years "
            f"(on demand at 6.88 USD: below "
            f"{100 * h['on_demand_break_even_utilization']:.0f} %), and a 1-year reserved H100 "
            f"at 2 USD beats buying for needs up to {h['reserved_horizon_years']:.1f} years. "
            f"H100s may not be bought, but renting them beats buying H20s for training: at "
            f"2 USD the 2025 optimum rents {h['h20_rented']:,.0f} reserved H100s (the offer's "
            f"limit: {h['reserved_limit']:,.0f}; {h['h20_rented_all']:,.0f} H100s in all) and "
            f"buys {h['h20_h20']:,.0f} H20s, and it keeps renting them up to "
            f"{h['h20_highest_price_rented']:g} USD (not at "
            f"{h['h20_lowest_price_not_rented']:g}); with the H20 banned it rents "
            f"{h['ban_rented_all']:,.0f} H100s ({h['ban_rent_usd_per_year'] / 1e9:.2f} B USD "
            f"a year) and serves {100 * h['ban_served_training']:.0f} % of training demand.")

def headline_of(results: Path = RESULTS) -> dict[str, float]:
    """The headline of the results table in ``results`` (default: the committed one)."""
    return headline(read("rent_or_buy", results))


def rerun(out: Path, workers: int = 1) -> None:
    """Re-run the headline's points into ``out``."""
    run("rent_or_buy", out, False, workers, params=headline_points())


def plot(df: pd.DataFrame, out: Path) -> None:
    sc = scenario()
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4.8))
    price = np.linspace(0.3, 8.0, 200)
    colors = dict(zip(DEVICES, ("#4c72b0", "#dd8452", "#55a868", "#8172b3"), strict=True))
    for ref in DEVICES:
        pa, pb, _, _ = owned(sc, ref)
        u = [break_even_utilization(pa, pb, p) for p in price]
        region = sc.budget.pools[sc.pool_of()[ref]].region
        a.plot(price, np.minimum(u, 1.5), color=colors[ref], label=f"{ref} owned in {region}")
    for name, o in sc.rentals.items():
        if o.term != "on_demand" or o.device not in DEVICES:
            continue
        pa, pb, _, _ = owned(sc, o.device)
        u = break_even_utilization(pa, pb, o.usd_per_device_hour)
        a.plot([o.usd_per_device_hour], [u], "o", color=colors.get(o.device, "k"))
        a.annotate(f"{name}\n{u:.0%}", (o.usd_per_device_hour, u), fontsize=7,
                   xytext=(4, 4), textcoords="offset points")
    a.axhline(1.0, color="k", lw=0.8, ls=":")
    a.set_xlabel("on-demand rental price (USD per device-hour)")
    a.set_ylabel("break-even utilisation (rent below, buy above)")
    a.set_ylim(0, 1.5)
    a.set_title("Rent on demand if busy less than")
    a.legend(fontsize=7, loc="upper right")

    util = np.linspace(0.05, 1.0, 96)
    for name, o in sc.rentals.items():
        _, _, spec, region = owned(sc, o.device)
        t = []
        for u in util:
            cost = tco(spec, region, sc.finance, u)
            t.append(break_even_horizon_years(
                float(cost["capex_usd"]), float(cost["opex_usd_per_year"]),
                rent_usd_per_year(o.usd_per_device_hour, o.term, u), sc.finance.cost_of_capital))
        b.plot(util, np.minimum(t, 12), label=f"{name} ({o.usd_per_device_hour:g} USD, "
               f"{o.term.replace('_', ' ')})")
    b.axhline(sc.finance.years, color="k", lw=0.8, ls=":", label="depreciation life")
    b.set_xlabel("utilisation (share of hours the capacity is needed)")
    b.set_ylabel("break-even horizon (years; rent below, buy above)")
    b.set_ylim(0, 12)
    b.set_title("Rent if the need lasts less than")
    b.legend(fontsize=7, loc="upper right")

    for cap, label in ((600000, "H20 at the scenario's cap"), (0, "H20 banned")):
        s = df[df[H20] == cap].sort_values(X)
        c.plot(s[X], s[RENTED] / 1e3, marker="o", label=label)
    limit = sc.rentals["h100-reserved-1y"].max_units or 0
    c.axhline(limit / 1e3, color="k", lw=0.8, ls=":", label="offer's limit")
    c.axvline(SEED_PRICE, color="grey", lw=0.8, ls="--", label="seed price")
    c.set_xlabel("1-year reserved H100 price (USD per GPU-hour)")
    c.set_xlim(left=0)
    c.set_ylabel("reserved H100s rented by the 2025 optimum (thousands)")
    c.set_ylim(bottom=0)
    c.set_title("What the seed scenario rents")
    c.legend(fontsize=7)
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(out / f"rent_or_buy.{ext}", dpi=120)
    plt.close(fig)


def main() -> None:
    a = args()
    df = run("rent_or_buy", a.out, a.quick, a.workers)
    plot(df, a.out)
    print(describe(headline(df)))


if __name__ == "__main__":
    main()

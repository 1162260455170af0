"""Study 3: the price of the software moat. Throughput per dollar of the Ascend-only fleet as
both Ascend parts' achieved efficiencies move from today's estimate to CUDA (H100) parity,
with 5-95 % bands from the profiles' uncertainty ranges (--samples).
Writes results/software_maturity.{csv,png,svg}. Run: python benchmarks/study_software_maturity.py"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from accelsim.plots import sweep_plot
from accelsim.sweep import Param

from _study import RESULTS, args, read, run, subgrid

X = "devices.ascend-910b,ascend-910c.cuda_parity"
Y = "fleet.domestic-only.training_tokens_per_day / fleet.domestic-only.tco_usd_per_year"
H20 = "device.h20.training.throughput_per_usd"
SAMPLES = 24  # draws per point; the centre is their median, so a re-run needs as many
DAYS_PER_YEAR = 365.25  # (tokens/day) / (USD/year) x days/year = tokens per USD


def headline_points() -> dict[str, Param]:
    """Today's estimate (0) and CUDA parity (1), the two points the headline reads."""
    return {X: subgrid("software_maturity", X, (0.0, 0.0), (1.0, 1.0))}


def headline(df: pd.DataFrame) -> dict[str, float]:
    """Domestic fleet training tokens per USD of TCO today and at parity (median of the draws
    with its 5 and 95 % quantiles), and the H20's own tokens per USD today."""
    df = df.sort_values(X)
    now, par = df.iloc[0], df.iloc[-1]
    out = {"h20_tokens_per_usd": float(now[H20])}
    for name, row in (("today", now), ("parity", par)):
        out[f"{name}_tokens_per_usd"] = float(row[Y]) * DAYS_PER_YEAR
        for q in ("p05", "p95"):
            out[f"{name}_{q}_tokens_per_usd"] = float(row[f"{Y} [{q}]"]) * DAYS_PER_YEAR
    return out


def describe(h: dict[str, float]) -> str:
    """The headline as one Markdown sentence (docs and the script's output)."""
    lo, hi = h["today_tokens_per_usd"], h["parity_tokens_per_usd"]
    band = (h["today_p05_tokens_per_usd"], h["today_p95_tokens_per_usd"])
    inside = "inside" if band[0] <= hi <= band[1] else "outside"
    return (f"CUDA parity moves the Ascend-only fleet's training throughput per dollar from "
            f"{lo / 1e3:,.0f} k to {hi / 1e3:,.0f} k tokens per USD of TCO "
            f"({100 * (hi / lo - 1):+.1f} %, {inside} today's 5-95 % band of "
            f"{band[0] / 1e3:,.0f}-{band[1] / 1e3:,.0f} k over {SAMPLES} draws); the H20 alone "
            f"delivers {h['h20_tokens_per_usd'] / 1e3:,.0f} k tokens per USD.")


def headline_of(results: Path = RESULTS) -> dict[str, float]:
    """The headline of the results table in ``results`` (default: the committed one)."""
    return headline(read("software_maturity", results))


def rerun(out: Path, workers: int = 2) -> None:
    """Re-run the headline's points with as many draws into ``out`` (about 40 s on two
    workers, 70 s on one: 24 draws per point, each re-running the chatbot's shortened
    capacity search)."""
    run("software_maturity", out, False, workers, samples=SAMPLES, params=headline_points())


def plot(df: pd.DataFrame, out: Path) -> None:
    """Tokens per USD with its 5-95 % band against maturity; the seed (maturity 0) marked."""
    df["tokens per USD"] = df[Y] * DAYS_PER_YEAR
    for b in ("[p05]", "[p95]"):
        df[f"tokens per USD {b}"] = df[f"{Y} {b}"] * DAYS_PER_YEAR
    sweep_plot(df, out / "software_maturity.png", x=X, y="tokens per USD", kind="line",
               base={X: 0.0, "tokens per USD": float(df.loc[df[X] == 0, "tokens per USD"].mean())},
               base_label="seed scenario",
               labels={X: "Ascend software maturity: 0 = today's estimate, 1 = CUDA parity",
                       "tokens per USD": "domestic fleet training tokens per USD of TCO"},
               title="Ascend-only fleet: training throughput per dollar vs. software maturity")


def main() -> None:
    a = args()
    df = run("software_maturity", a.out, a.quick, a.workers, {X: Param(low=0, high=1, num=3)},
             samples=4 if a.quick else SAMPLES)
    plot(df, a.out)
    print(describe(headline(df)))


if __name__ == "__main__":
    main()

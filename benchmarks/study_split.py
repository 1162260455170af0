"""Study 1: what the reported 2025 split (USD 5.5 B domestic / 6.8 B overseas) buys in training
tokens per day and serving QPS, against all-domestic and all-overseas alternatives.
Writes results/split.csv and results/split.png/.svg. Run: python benchmarks/study_split.py"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from accelsim.plots import plt, save
from accelsim.sweep import Param

from _study import RESULTS, args, read, run, subgrid

REPORTED = 6.8 / 12.3
X = "fleets.reported-split.share.h20"
TOK = "fleet.reported-split.training_tokens_per_day"
QPS = "fleet.reported-split.serving_qps_whole_fleet"
BAD = "fleet.reported-split.n_violations"


def headline_points() -> dict[str, Param]:
    """The full grid's points the headline reads: both ends and the two around the reported
    share (a re-run on them gives the full run's headline)."""
    return {X: subgrid("split", X, (0.0, 0.0), (0.55, 0.61), (1.0, 1.0))}


def headline(df: pd.DataFrame) -> dict[str, float]:
    """Training (tokens/day) and whole-fleet serving (queries/s) all-domestic (share 0), at the
    reported share (linear between its two grid points) and all-H20 (share 1); whether every
    share on the grid breaks a rule (a pool budget: the grid misses the reported share)."""
    df = df.sort_values(X)
    x = df[X].to_numpy()
    at = lambda col: float(np.interp(REPORTED, x, df[col].to_numpy()))  # noqa: E731
    return {"domestic_tokens_per_day": float(df[TOK].iloc[0]),
            "domestic_qps": float(df[QPS].iloc[0]),
            "reported_tokens_per_day": at(TOK), "reported_qps": at(QPS),
            "h20_tokens_per_day": float(df[TOK].iloc[-1]), "h20_qps": float(df[QPS].iloc[-1]),
            "every_share_breaks_a_rule": bool((df[BAD] > 0).all())}


def describe(h: dict[str, float]) -> str:
    """The headline as Markdown sentences (docs and the script's output)."""
    broken = "Every share" if h["every_share_breaks_a_rule"] else "Not every share"
    return (f"All-domestic buys {h['domestic_tokens_per_day'] / 1e12:.2f} T training "
            f"tokens/day and {h['domestic_qps'] / 1e6:,.0f} M queries/s of whole-fleet serving "
            f"capacity; the reported split {h['reported_tokens_per_day'] / 1e12:.2f} T "
            f"tokens/day and {h['reported_qps'] / 1e6:,.0f} M queries/s; all-H20 "
            f"{h['h20_tokens_per_day'] / 1e12:.2f} T tokens/day and "
            f"{h['h20_qps'] / 1e6:,.0f} M queries/s. {broken} on the sweep's grid (the "
            f"reported {REPORTED:.3f} lies between two of its points) breaks a pool budget or "
            f"another rule.")


def headline_of(results: Path = RESULTS) -> dict[str, float]:
    """The headline of the results table in ``results`` (default: the committed one)."""
    return headline(read("split", results))


def rerun(out: Path, workers: int = 1) -> None:
    """Re-run the headline's points into ``out`` (about 10 s: the base evaluation)."""
    run("split", out, False, workers, params=headline_points())


def main() -> None:
    a = args()
    df = run("split", a.out, a.quick, a.workers, {X: Param(low=0.0, high=1.0, num=5)})
    x = df[X].to_numpy()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ax.plot(x, df[TOK] / 1e12, "-o", ms=3,
            color="C0", label="training after serving demand (T tokens/day)")
    ax2 = ax.twinx()
    ax2.plot(x, df[QPS] / 1e6, "-s", ms=3,
             color="C1", label="whole fleet serving at p99 SLO (M queries/s)")
    bad = df[BAD].to_numpy() > 0
    ax.scatter(x[bad], (df[TOK] / 1e12)[bad],
               facecolors="none", edgecolors="C3", s=70, label="breaks a pool budget")
    ax.axvline(REPORTED, color="k", ls="--", lw=1)
    ax.text(REPORTED, ax.get_ylim()[1], " reported split", va="top", fontsize=8)
    ax.set_xlabel("share of the USD 12.3 B spent on H20 (rest: Ascend 910B/910C) (fraction)")
    ax.set_ylabel("training capacity (trillion tokens/day)")
    ax2.set_ylabel("serving capacity (million queries/s)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="lower center")
    ax.grid(alpha=0.3)
    ax.set_title("What USD 12.3 B buys as the H20 share changes", fontsize=10)
    save(fig, a.out, "split")
    print(describe(headline(df)))


if __name__ == "__main__":
    main()

"""Study 1: what the reported 2025 split (USD 5.5 B domestic / 6.8 B overseas) buys in training
tokens per day and serving QPS, against all-domestic and all-overseas alternatives.
Writes results/split.csv and results/split.png/.svg. Run: python benchmarks/study_split.py"""

from __future__ import annotations

import numpy as np

from accelsim.plots import plt, save
from accelsim.sweep import Param

from _study import args, run

REPORTED = 6.8 / 12.3
X = "fleets.reported-split.share.h20"


def main() -> None:
    a = args()
    df = run("split", a.out, a.quick, a.workers, {X: Param(low=0.0, high=1.0, num=5)})
    x = df[X].to_numpy()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ax.plot(x, df["fleet.reported-split.training_tokens_per_day"] / 1e12, "-o", ms=3,
            color="C0", label="training after serving demand (T tokens/day)")
    ax2 = ax.twinx()
    ax2.plot(x, df["fleet.reported-split.serving_qps_whole_fleet"] / 1e6, "-s", ms=3,
             color="C1", label="whole fleet serving at p99 SLO (M queries/s)")
    bad = df["fleet.reported-split.n_violations"].to_numpy() > 0
    ax.scatter(x[bad], (df["fleet.reported-split.training_tokens_per_day"] / 1e12)[bad],
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
    tok = df["fleet.reported-split.training_tokens_per_day"].to_numpy()
    qps = df["fleet.reported-split.serving_qps_whole_fleet"].to_numpy()
    at = lambda v: float(np.interp(REPORTED, x, v))  # noqa: E731
    print(f"all-domestic: {tok[0] / 1e12:.2f} T tokens/day, {qps[0] / 1e6:.0f} M qps; "
          f"reported split: {at(tok) / 1e12:.2f} T tokens/day, {at(qps) / 1e6:.0f} M qps; "
          f"all-H20: {tok[-1] / 1e12:.2f} T tokens/day, {qps[-1] / 1e6:.0f} M qps")


if __name__ == "__main__":
    main()

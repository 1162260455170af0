"""Figures. Only the CLI and benchmarks call these (the models stay pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def pareto_front(cost: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Indices of points not dominated (no other point is cheaper *and* at least as good)."""
    order = np.lexsort((-value, cost))
    front, best = [], -np.inf
    for i in order:
        if value[i] > best:
            front.append(i)
            best = value[i]
    return np.asarray(front, dtype=int)


def save(fig: Any, out_dir: str | Path, stem: str) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.svg"]
    for p in paths:
        fig.savefig(p, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def fleet_chart(fleets: list[dict[str, Any]], demand: dict[str, float], out_dir: str | Path,
                title: str) -> list[Path]:
    """Training tokens/day (after serving demand) and whole-fleet serving QPS against TCO
    per fleet; Pareto frontier marked; fleets that break a rule drawn hollow; demand dashed."""
    panels = [("training_tokens_per_day", "training after serving demand (trillion tokens/day)",
               "training", 86400.0 / 1e12, 1e12),
              ("serving_qps_whole_fleet", "whole fleet serving at p99 SLO (million queries/s)",
               "serving", 1e-6, 1e-6)]
    panels = [p for p in panels if p[2] in demand]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5), squeeze=False)
    tco = np.array([f["tco_usd_per_year"] for f in fleets]) / 1e9
    ok = np.array([not f["violations"] for f in fleets])
    for ax, (key, label, wl, per, unit) in zip(axes[0], panels, strict=True):
        # training: what is left after serving's peak is covered (what the demand sees);
        # serving: the whole fleet's serving capacity (allocation would show only demand)
        val = np.array([f[key] for f in fleets], dtype=float)
        val = val / unit if wl == "training" else val * unit
        front = pareto_front(np.where(ok, tco, np.inf), np.where(ok, val, -np.inf))
        front = front[ok[front]]
        ax.plot(tco[front], val[front], "-", color="0.6", zorder=1, label="Pareto frontier")
        ax.scatter(tco[ok], val[ok], s=60, color="C0", zorder=2, label="within rules")
        if (~ok).any():
            ax.scatter(tco[~ok], val[~ok], s=60, facecolors="none", edgecolors="C3", zorder=2,
                       label="breaks a rule")
        for f, x, y in zip(fleets, tco, val, strict=True):
            ax.annotate(f["name"], (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.axhline(demand[wl] * per, color="C2", ls="--", lw=1, label="demand")
        ax.ticklabel_format(useOffset=False, style="plain", axis="y")
        ax.set_xlabel("TCO (billion USD per year)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    return save(fig, out_dir, "fleet_cost_performance")

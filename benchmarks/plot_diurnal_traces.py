"""The seed's daily profiles against published inference traces (tests/data/diurnal): the load
per hour as a share of each curve's peak, and the share of a peak-sized serving pool that
:mod:`accelsim.sharing` leaves idle each hour (``1 - needed_share``: this hour and the next).
Writes docs/img/diurnal_traces.png. Run: python benchmarks/plot_diurnal_traces.py"""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from accelsim import sharing
from accelsim.fleet.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "diurnal"
CURVES = {"burstgpt-chatgpt-conv": "BurstGPT ChatGPT conversations (local time)",
          "azure-llm-2024-conv": "Azure conversation 2024 (UTC)",
          "azure-llm-2024-code": "Azure coding 2024 (UTC)",
          "alibaba-genai-qps": "Alibaba GenAI QPS (shifted clock)"}


def curve(name: str) -> np.ndarray:
    with open(DATA / f"{name}.csv", newline="") as f:
        return np.array([float(r["load"]) if r["load"] else np.nan for r in csv.DictReader(f)])


def main() -> None:
    sc = load_scenario(ROOT / "configs" / "fleet.yaml")
    seed = {f"seed {'feed' if w == 'serving' else w}":
            np.asarray(s.daily_profile) / max(s.daily_profile)
            for w, s in sc.workloads.items() if getattr(s, "daily_profile", None)}
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.6), sharex=True)
    hours = np.arange(sharing.HOURS + 1)
    for label, p, style in [*((k, v, "-") for k, v in seed.items()),
                            *((CURVES[n], curve(n), "--") for n in CURVES)]:
        lw = 2.5 if label.startswith("seed") else 1.3
        a.step(hours, np.append(p, p[-1]), where="post", ls=style, lw=lw, label=label)
        idle = 1 - sharing.needed_share(sharing.fill_gaps(p))
        b.step(hours, np.append(idle, idle[-1]), where="post", ls=style, lw=lw, label=label)
    a.set_ylabel("load / peak hour")
    a.set_title("Daily load: seed profiles and published traces")
    b.set_ylabel("idle share of a peak-sized pool")
    b.set_title("What the shared fleet can lend each hour")
    for ax in (a, b):
        ax.set_xlabel("hour of day")
        ax.set_xlim(0, 24)
        ax.set_ylim(0, 1.05)
        ax.set_xticks(range(0, 25, 3))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(*a.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8)
    fig.savefig(ROOT / "docs" / "img" / "diurnal_traces.png", dpi=120, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()

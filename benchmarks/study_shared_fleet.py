"""Study 5: training in the serving fleet's night. How many training tokens a day the feed and
chatbot fleets' daily troughs are worth to preemptible training (accelsim.sharing), as the
cost of a resize (restart from a checkpoint) grows from nothing to an hour; the reported
split's hour-by-hour loan at the scenario's 10-minute restart. Writes
results/shared_fleet.{csv,png,svg}. Run: python benchmarks/study_shared_fleet.py"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from accelsim import sharing
from accelsim.fleet import compare, evaluate_devices, load_scenario
from accelsim.fleet.loan import resize_costs
from accelsim.sweep import Param

from _study import RESULTS, args, read, run, subgrid

X = "workloads.training.resilience.restart_s"
FLEET = "fleet.reported-split"
LOAN = f"{FLEET}.loan_training_tokens_per_day"
ROOT = Path(__file__).resolve().parents[1]
RUNWAY_S = (1200, 1800)  # Runway (2026): preemptions cost 20-30 min (Kubernetes grace periods)


def headline_points() -> dict[str, Param]:
    """Free resizes, the scenario's 10 minutes and Runway's 30 minutes."""
    return {X: subgrid("shared_fleet", X, (0, 0), (600, 600), (1800, 1800))}


def headline(df: pd.DataFrame) -> dict[str, float]:
    """The reported split's loaned training tokens a day (and as a share of its dedicated
    training, and of its idle device-hours) with free resizes, at 10 min and at 30 min."""
    out = {}
    for label, s in (("free", 0), ("scenario", 600), ("runway", 1800)):
        row = df[df[X] == s].iloc[0]
        out[f"{label}_tokens_per_day"] = float(row[LOAN])
        trained = row[f"{FLEET}.training_tokens_per_day"]
        out[f"{label}_share_of_training"] = float(row[LOAN] / trained)
        out[f"{label}_lent_share"] = float(row[f"{FLEET}.loan_device_hours_per_day"]
                                           / row[f"{FLEET}.loan_idle_device_hours_per_day"])
        out[f"{label}_resizes_per_day"] = float(row[f"{FLEET}.loan_resizes_per_day"])
    out["idle_device_hours_per_day"] = float(df[f"{FLEET}.loan_idle_device_hours_per_day"].iloc[0])
    return out


def describe(h: dict[str, float]) -> str:
    """The headline as one Markdown sentence (docs and the script's output)."""
    return (f"The reported split's serving troughs leave "
            f"{h['idle_device_hours_per_day'] / 1e3:,.0f} k device-hours a day idle; lent to "
            f"preemptible training at the scenario's 10-minute restart they train "
            f"{h['scenario_tokens_per_day'] / 1e9:,.0f} B tokens a day "
            f"({100 * h['scenario_share_of_training']:.1f} % on top of its dedicated training, "
            f"{100 * h['scenario_lent_share']:.0f} % of the idle hours used, "
            f"{h['scenario_resizes_per_day']:.0f} resizes a day); free resizes would give "
            f"{h['free_tokens_per_day'] / 1e9:,.0f} B, Runway's 30-minute preemptions "
            f"{h['runway_tokens_per_day'] / 1e9:,.0f} B.")


def headline_of(results: Path = RESULTS) -> dict[str, float]:
    """The headline of the results table in ``results`` (default: the committed one)."""
    return headline(read("shared_fleet", results))


def rerun(out: Path, workers: int = 1) -> None:
    """Re-run the headline's points into ``out`` (a few seconds)."""
    run("shared_fleet", out, False, workers, params=headline_points())


def hourly(restart_s: float = 600.0) -> pd.DataFrame:
    """The reported split's serving units needed and training units lent, hour by hour."""
    sc = load_scenario(ROOT / "configs" / "fleet.yaml")
    table = evaluate_devices(sc)
    rep = next(f for f in compare(sc, dev_table=table).fleets if f["name"] == "reported-split")
    rows = []
    for dev, a in rep["allocation"].items():
        pools = [(a[w], sc.workloads[w].daily_profile) for w in ("serving", "chatbot")
                 if a.get(w, 0) > 0]
        if not pools:
            continue
        free = sharing.free_units(pools)
        ckpt, _ = resize_costs(sc.workloads["training"])
        loan = sharing.loan_schedule(free, ckpt, restart_s)
        serving = sum(n for n, _ in pools)
        for h in range(sharing.HOURS):
            rows.append({"device": dev, "hour": h, "serving_units": serving - free[h],
                         "idle_units": free[h], "training_units": loan.devices[h]})
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, hours: pd.DataFrame, out: Path) -> None:
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.6))
    h = hours.groupby("hour")[["serving_units", "idle_units", "training_units"]].sum()
    h.loc[sharing.HOURS] = h.iloc[-1]  # close the last hour's step at 24:00
    a.stackplot(h.index, h["serving_units"] / 1e3, h["idle_units"] / 1e3,
                labels=["serving (what this hour and the next need)", "idle"],
                colors=["#4c72b0", "#dddddd"], step="post")
    a.step(h.index, h["training_units"] / 1e3, where="post", color="#dd8452", lw=2,
           label="lent to training (10 min restart)")
    a.set_xlabel("hour of day")
    a.set_ylabel("devices (thousands)")
    a.set_xlim(0, 24)
    a.set_title("Reported split: serving devices over the day")
    a.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8)
    for col, name in ((LOAN, "reported-split"),
                      ("fleet.domestic-only.loan_training_tokens_per_day", "domestic-only")):
        b.plot(df[X] / 60, df[col] / 1e9, marker="o", label=name)
    b.axvspan(RUNWAY_S[0] / 60, RUNWAY_S[1] / 60, color="#cccccc", alpha=0.5,
              label="Runway's preemptions (20-30 min)")
    b.axvline(10, color="k", ls="--", lw=1, label="scenario (10 min)")
    b.set_xlabel("restart cost per resize (minutes)")
    b.set_ylabel("training tokens per day from troughs (billions)")
    b.set_ylim(bottom=0)
    b.set_title("What the troughs are worth")
    b.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8)
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(out / f"shared_fleet.{ext}", dpi=120)
    plt.close(fig)


def main() -> None:
    a = args()
    df = run("shared_fleet", a.out, a.quick, a.workers)
    plot(df, hourly(), a.out)
    print(describe(headline(df)))


if __name__ == "__main__":
    main()

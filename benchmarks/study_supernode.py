"""Study: what the 910C supernode is worth. DeepSeek-V3 decode, served the CloudMatrix-Infer
way (DP attention, expert parallel over the whole instance, MTP with one draft at 70 %
acceptance, 8-bit weights), on three fabrics:

  cloudmatrix384   the 910C in its 384-NPU Unified Bus domain (configs/topologies)
  ascend-910c-8    the same chip in 8-NPU servers: the counterfactual without the supernode
  hgx-h20-8        the H20 on 8-GPU HGX boards, 400 Gb/s InfiniBand per GPU

For each expert-parallel size the largest batch whose TPOT meets the SLO (bisection on the
decode step of accelsim.llm.perf), its output tokens/s per device, and output tokens per USD
from the per-device TCO (accelsim.cost) with the fabric priced per tier
(accelsim.devices.topology.apply). Prints the table and the headline; writes
results/supernode.{csv,png}. Run: python benchmarks/study_supernode.py [--quick]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from accelsim.cost import Finance, Region, tco
from accelsim.devices import load_device, topology
from accelsim.errors import AccelsimError
from accelsim.llm.job import Replica
from accelsim.llm.perf import replica_model

RESULTS = Path(__file__).resolve().parent / "results"
# label: (device, topology, the topology whose scale-up share its profile's server overhead
# holds, weights). The 910C profile's USD 9k overhead is its hosts' share "and UB switches
# and optics" without a split: it is kept whole (None), so both 910C rows count part of the
# UB twice, conservative for both and neutral for their ratio.
SYSTEMS = {
    "910C CloudMatrix384": ("ascend-910c", "cloudmatrix384", None, "int8"),
    "910C 8-NPU servers": ("ascend-910c", "ascend-910c-8", None, "int8"),
    "H20 8-GPU HGX": ("h20", "hgx-h20-8", "hgx-h20-8", "fp8"),
}
EP = [8, 16, 32, 64, 128, 256]
TPOT_S = 0.050  # the CloudMatrix-Infer paper's decode SLO (< 50 ms TPOT)
PROMPT, OUTPUT = 2000, 600  # tokens (configs/jobs/deepseek-wide-ep-910c.yaml's means)
# The seed scenario's western-China region (configs/fleet.yaml, china-west), 5-year straight
# line.
REGION = Region(usd_per_kwh=0.056, pue=1.25, facility_capex_usd_per_mw=5.0e6)
FINANCE = Finance()


def decode_point(label: str, ep: int, tpot_s: float = TPOT_S,
                 fabric_topology: topology.Topology | None = None) -> dict[str, object]:
    """One system at one EP size: the best batch within the TPOT SLO and what it yields."""
    device, fabric, home, weights = SYSTEMS[label]  # fabric_topology: a variant of fabric
    t = fabric_topology or topology.load_topology(fabric)
    spec = topology.apply(load_device(device).spec, t,
                          home=topology.load_topology(home) if home else None)
    r = Replica(device=device, model="deepseek-v3", dp=ep, redundant_experts=32,
                weights=weights, mtp_tokens=1, mtp_acceptance=0.7, role="decode",
                overlap_ep_comm=True, max_seqs=min(512 * ep, 65536),
                max_batched_tokens=min(1024 * ep, 131072))
    row: dict[str, object] = {"system": label, "ep": ep, "domain": spec.scaleup_domain,
                              "crosses_domain": bool(topology.crosses(t, ep *
                                                     t.scaleup.ranks_per_device))}
    try:
        rm = replica_model(r, spec=spec)
    except AccelsimError as e:  # the model does not fit in the instance's memory
        return {**row, "fits": False, "reason": str(e)[:120]}
    ctx = PROMPT + OUTPUT / 2
    kv_cap = max(1, int(rm.kv_tokens // (PROMPT + OUTPUT)))
    hi = min(rm.max_seqs, kv_cap)

    def tpot(b: int) -> float:
        return rm.decode_step_s(b, ctx) / rm.tokens_per_step

    if tpot(1) > tpot_s:
        return {**row, "fits": True, "batch": 0, "tokens_per_s_per_device": 0.0}
    lo = 1
    while lo < hi:  # largest batch meeting the SLO (the step grows with the batch)
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if tpot(mid) <= tpot_s else (lo, mid - 1)
    step = rm.decode_step_s(lo, ctx)
    per_dev = lo * rm.tokens_per_step / step / rm.devices
    cost = tco(spec, REGION, FINANCE)
    usd_h = float(cost["usd_per_hour"])
    return {**row, "fits": True, "batch": lo, "kv_bound": lo == kv_cap,
            "tpot_ms": tpot(lo) * 1e3, "tokens_per_s_per_device": per_dev,
            "usd_per_device_hour": usd_h, "network_usd_per_device": spec.network_usd,
            "mtokens_per_usd": per_dev * 3600 / usd_h / 1e6}


TRAIN_PRECISION = {"ascend-910c": "bf16", "h20": "fp8"}  # the 910C has no FP8


def training_point(label: str) -> dict[str, object]:
    """DeepSeek-V3 pre-training with its published layout (arXiv 2412.19437 section 3.2,
    configs/runs/deepseek-v3-h800.yaml: 2,048 devices, PP16 with DualPipe, EP64, ZeRO-1 DP,
    FP8 where the device has it) on one system: tokens/s per device and per USD."""
    from accelsim.training.job import Parallelism, TrainJob
    from accelsim.training.perf import estimate
    from accelsim.transformer.model import load_model

    device, fabric, home, _ = SYSTEMS[label]
    t = topology.load_topology(fabric)
    spec = topology.apply(load_device(device).spec, t,
                          home=topology.load_topology(home) if home else None)
    par = Parallelism(tp=1, pp=16, dp=128, ep=64, schedule="dualpipe", zero=1, recompute="none",
                      sequence_parallel=False,
                      recompute_modules=["layernorm", "mla_up_proj", "moe_act"],
                      first_stage_layers=3, last_stage_layers=2)
    job = TrainJob(device=device, model=load_model("deepseek-v3"), global_batch=15360,
                   precision=TRAIN_PRECISION[device], overlap_ep_comm=True, parallelism=par)
    r = estimate(job, spec)
    per_dev = r.tokens_per_s / 2048
    usd_h = float(tco(spec, REGION, FINANCE)["usd_per_hour"])
    return {"system": label, "precision": job.precision, "fits": r.fits_memory,
            "crossings": ",".join(k for k, v in topology.crossings(t, ep=64, dp=128, pp=16)
                                  .items() if v),
            "step_time_s": r.step_time_s, "tokens_per_s_per_device": per_dev,
            "usd_per_device_hour": usd_h, "mtokens_per_usd": per_dev * 3600 / usd_h / 1e6}


def table(eps: list[int] = EP) -> pd.DataFrame:
    return pd.DataFrame([decode_point(label, ep) for label in SYSTEMS for ep in eps])


def headline(df: pd.DataFrame) -> dict[str, float]:
    """Each system's best EP by tokens per USD, and the supernode's worth against the same
    chip in 8-NPU servers and against the H20 boards (ratios of tokens/s per device and of
    tokens per USD at each one's best)."""
    ok = df[df["fits"] & (df["tokens_per_s_per_device"] > 0)]
    best = ok.loc[ok.groupby("system")["mtokens_per_usd"].idxmax()].set_index("system")
    cm, b8, h20 = (best.loc[k] for k in SYSTEMS)
    out: dict[str, float] = {}
    for label, b in best.iterrows():
        key = label.split()[0].lower() + ("_cm384" if "Cloud" in label else
                                          "_8npu" if "NPU" in label else "_hgx")
        out[f"{key}.best_ep"] = float(b["ep"])
        out[f"{key}.tokens_per_s_per_device"] = float(b["tokens_per_s_per_device"])
        out[f"{key}.mtokens_per_usd"] = float(b["mtokens_per_usd"])
    out["supernode_vs_8npu.throughput"] = float(cm["tokens_per_s_per_device"]
                                                / b8["tokens_per_s_per_device"])
    out["supernode_vs_8npu.per_usd"] = float(cm["mtokens_per_usd"] / b8["mtokens_per_usd"])
    out["supernode_vs_h20.throughput"] = float(cm["tokens_per_s_per_device"]
                                               / h20["tokens_per_s_per_device"])
    out["supernode_vs_h20.per_usd"] = float(cm["mtokens_per_usd"] / h20["mtokens_per_usd"])
    return out


def plot(df: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"910C CloudMatrix384": ("tab:red", "o-"), "910C 8-NPU servers": ("tab:red", "s--"),
              "H20 8-GPU HGX": ("tab:green", "^-")}
    ok = df[df["fits"]]
    for label, (color, style) in styles.items():
        d = ok[ok["system"] == label].sort_values("ep")
        axes[0].plot(d["ep"], d["tokens_per_s_per_device"], style, color=color, label=label)
        axes[1].plot(d["ep"], d["mtokens_per_usd"], style, color=color, label=label)
    for ax, ylabel in zip(axes, ("decode output tokens/s per device",
                                 "output tokens per USD of TCO (millions)"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xticks(EP, [str(e) for e in EP])
        ax.axvline(8, color="grey", lw=0.8, ls=":")
        ax.text(8.3, ax.get_ylim()[1] * 0.95, "8-device domain", color="grey", fontsize=8,
                va="top")
        ax.set_xlabel("expert-parallel size (devices per decode instance)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[1].legend(loc="center right", fontsize=8)
    axes[0].text(16, ok[ok["system"] == "H20 8-GPU HGX"]["tokens_per_s_per_device"].max() * 1.15,
                 "H20: DeepSeek-V3 at 8 bits does not fit in 8 x 96 GB", fontsize=8,
                 color="tab:green")
    fig.suptitle(f"DeepSeek-V3 decode at TPOT <= {TPOT_S * 1e3:.0f} ms: what the 384-NPU "
                 "domain buys", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="three EP sizes only")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    eps = [8, 32, 128] if a.quick else EP
    df = table(eps)
    a.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(a.out / "supernode.csv", index=False)
    train = pd.DataFrame([training_point(label) for label in SYSTEMS])
    train.to_csv(a.out / "supernode_training.csv", index=False)
    plot(df, a.out / "supernode.png")
    cols = ["system", "ep", "crosses_domain", "batch", "tpot_ms", "tokens_per_s_per_device",
            "usd_per_device_hour", "mtokens_per_usd"]
    with pd.option_context("display.width", 140, "display.precision", 3):
        print(df[[c for c in cols if c in df]].to_string(index=False))
    with pd.option_context("display.width", 140, "display.precision", 3):
        print(train.to_string(index=False))
    for k, v in headline(df).items():
        print(f"{k:40s} {v:10.3f}" if math.isfinite(v) else f"{k:40s} {v}")


if __name__ == "__main__":
    main()

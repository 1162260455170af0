"""What an LLM serving run reports: TTFT, TPOT and end-to-end latency, throughput, goodput,
KV use, preemptions, the overload rule, cost per output token; and what each replica kind
is."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelsim import units
from accelsim.llm.draws import Draws
from accelsim.llm.engine import ReplicaTrace
from accelsim.llm.job import LLMJob
from accelsim.llm.perf import ReplicaModel


@dataclass
class LLMResult:
    metrics: dict[str, Any]
    replicas: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.metrics, "replicas": self.replicas}


def summarize(job: LLMJob, rate: float, d: Draws, arr: np.ndarray, traces: list[ReplicaTrace],
              groups: list[np.ndarray], rms: list[ReplicaModel],
              usd_per_hour: list[float] | None = None) -> LLMResult:
    """TTFT, TPOT and end-to-end latency (mean, p50, p99) after the warm-up, throughput,
    goodput, KV use, preemptions and USD per million output tokens."""
    n = len(arr)
    first, done, pre = np.empty(n), np.empty(n), np.zeros(n, dtype=np.int64)
    for g, tr in zip(groups, traces, strict=True):  # decode traces follow prefill ones
        first[g], done[g] = tr.first_s, tr.done_s
        pre[g] += tr.preemptions
    keep = slice(job.sim.warmup, None)
    ttft = (first - arr)[keep]
    e2e = (done - arr)[keep]
    out = d.output[keep]
    tpot = np.where(out > 1, (done - first)[keep] / np.maximum(out - 1, 1), np.nan)
    t0, t1 = arr[job.sim.warmup], float(np.nanmax(done))
    span = max(t1 - t0, 1e-12)
    m: dict[str, Any] = {"offered_rps": rate, "requests": len(ttft)}
    for name, x in (("ttft", ttft), ("tpot", tpot), ("e2e", e2e)):
        x = x[np.isfinite(x)]
        m[f"{name}_mean_ms"] = float(x.mean() * 1e3)
        m[f"{name}_p50_ms"] = float(np.percentile(x, 50) * 1e3)
        m[f"{name}_p99_ms"] = float(np.percentile(x, 99) * 1e3)
    m["output_tokens_per_s"] = float(out.sum() / span)
    m["total_tokens_per_s"] = float((out.sum() + d.prompt[keep].sum()) / span)
    m["throughput_rps"] = float(len(ttft) / span)
    # Little's law check: mean requests in the system = rate x mean time in system
    m["mean_in_system"] = float(e2e.sum() / span)
    if job.slo is not None:
        ok = (ttft <= job.slo.ttft_ms * units.MS) & ((out <= 1) | (tpot <= job.slo.tpot_ms
                                                                    * units.MS))
        m["goodput_fraction"] = float(ok.mean())
        m["goodput_rps"] = float(ok.sum() / span)
        m["meets_slo"] = bool(ok.mean() >= job.slo.attainment)
    m["preemptions"] = int(pre[keep].sum())
    m["ttft_growth"] = ttft_growth(arr[keep], ttft)
    m["stable"] = m["ttft_growth"] <= OVERLOAD_GROWTH
    if job.slo is not None:
        m["meets_slo"] = bool(m["meets_slo"] and m["stable"])
    reps = []
    usd = 0.0
    for j, tr in enumerate(traces):
        k = tr.kind
        end = max(tr.end_s, 1e-12)
        rm = rms[k]
        reps.append({"replica": j, "kind": rm.name, "requests": len(groups[j]),
                     "busy": tr.busy_s / end, "kv_utilization": tr.kv_block_s
                     / (rm.kv_blocks * end), "iterations": tr.iterations,
                     "kv_tokens": rm.kv_tokens})
        if usd_per_hour is not None:
            usd += usd_per_hour[k] * rm.devices
    m["kv_utilization"] = float(np.mean([r["kv_utilization"] for r in reps]))
    if usd_per_hour is not None and m["output_tokens_per_s"] > 0:
        m["usd_per_million_output_tokens"] = usd / (m["output_tokens_per_s"] * 3600) * 1e6
    return LLMResult(m, reps if len(reps) <= 64 else reps[:64])


# The overload rule of an LLM run: waits still growing, the mean TTFT of the last third of
# the measured requests above the middle third's by more than this share of the time between
# their mean arrivals (a queue that drains grows by ~0; one fed above its capacity by
# 1 - capacity / rate).
OVERLOAD_GROWTH = 0.05


def ttft_growth(arrival_s: np.ndarray, ttft_s: np.ndarray) -> float:
    """Seconds of TTFT gained per second of arrivals between the middle and the last third
    of the measured requests (0 when too few to tell: under 9)."""
    third = len(ttft_s) // 3
    if third < 3:
        return 0.0
    mid, last = slice(third, 2 * third), slice(2 * third, None)
    d = float(np.nanmean(ttft_s[last]) - np.nanmean(ttft_s[mid]))
    dt = float(arrival_s[last].mean() - arrival_s[mid].mean())
    if dt <= 0:
        return math.inf if d > 0 else 0.0
    return max(d / dt, 0.0)


def describe(rms: list[ReplicaModel]) -> list[dict[str, Any]]:
    """What each replica kind is: devices, KV capacity, weights per device, and its decode
    step (batch 1 and full, 1,024-token contexts) and a 2,048-token prefill, in ms."""
    return [{"kind": rm.name, "tp": rm.tp, "dp": rm.dp, **({"pp": rm.pp} if rm.pp > 1 else {}),
             "devices": rm.devices,
             "kv_tokens": rm.kv_tokens, "tokens_per_step": rm.tokens_per_step,
             "weights_GiB_per_device": rm.weights_bytes / units.GiB,
             "decode_step_ms_batch1": rm.decode_step_s(1, 1024) * 1e3,
             "decode_step_ms_full": rm.decode_step_s(min(rm.max_seqs, rm.max_batched_tokens),
                                                     1024) * 1e3,
             "prefill_ms_2k": rm.prefill_s(2048) * 1e3} for rm in rms]


def usd_per_hour(job: LLMJob, rms: list[ReplicaModel]) -> list[float] | None:
    """Each replica kind's device TCO per hour where the job says where it runs
    (:func:`accelsim.cost.tco`); None without a ``cost`` block."""
    if job.cost is None:
        return None
    from accelsim.cost import tco

    return [float(tco(rm.spec, job.cost.region, job.cost.finance)["usd_per_hour"])
            for rm in rms]

"""Run an LLM serving job: draw the request stream (:mod:`accelsim.llm.draws`), route it
over the replicas (:mod:`accelsim.llm.routing`), run each replica's scheduler
(:mod:`accelsim.llm.engine`) and summarise TTFT, TPOT, throughput, goodput, KV use and cost
(:mod:`accelsim.llm.summary`). The highest rate meeting the SLO: :mod:`accelsim.llm.search`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from accelsim.devices import topology
from accelsim.errors import AccelsimError
from accelsim.llm.draws import Draws, arrival_times, check_fits, draw
from accelsim.llm.engine import ReplicaTrace, run_fast
from accelsim.llm.engine_simpy import run_simpy
from accelsim.llm.job import LLMJob
from accelsim.llm.perf import ReplicaModel, replica_model
from accelsim.llm.routing import run_pool, saturated_tokens_per_s
from accelsim.llm.summary import LLMResult, summarize

# The fast engine's time per request (1.7-2.6 us measured, one replica kind).
SECONDS_PER_REQUEST = 3e-6


# The simpy reference engine takes ~0.35 ms per request (measured, one replica kind): a run
# of more requests than this (about two minutes) is refused; the fast engine runs the same
# scheduler compiled.
SIMPY_MAX_REQUESTS = 300_000


def check_engine_size(job: LLMJob, engine: str, file: str = "job") -> None:
    """Refuse, before running, a simpy run that would take more than minutes."""
    n = job.sim.requests
    if engine == "simpy" and n > SIMPY_MAX_REQUESTS:
        raise AccelsimError.single(
            file, "sim.requests", f"{n:,} requests on the simpy engine take about "
            f"{n * 3.5e-4 / 60:,.0f} min; expected at most {SIMPY_MAX_REQUESTS:,}, or engine "
            "fast (the same scheduler, compiled)")


def models(job: LLMJob, file: str = "job", specs: dict[str, Any] | None = None
           ) -> list[ReplicaModel]:
    """Each replica kind's cost model (``specs`` may give resolved devices by name)."""
    out = []
    for i, r in enumerate(job.replicas):
        spec = (specs or {}).get(r.device)
        out.append(replica_model(r, file, f"replicas[{i}]", spec=spec))
    return out


def kv_transfer_s(job: LLMJob, rm_from: ReplicaModel, rm_to: ReplicaModel,
                  prompt: np.ndarray) -> np.ndarray:
    """Seconds to ship each request's prompt KV cache from a prefill to a decode replica:
    its bytes (the decode replica's per-device share x its tp; with several decode kinds,
    the first one's) over the devices' links in parallel (the fewer of the two replicas'
    devices), plus one message latency."""
    spec = rm_from.spec
    up = job.kv_transfer == "scaleup"
    bw = (spec.scaleup_bw_Bps if up else spec.scaleout_bw_Bps) * spec.eff_comm
    lat = spec.scaleup_latency_s if up else spec.scaleout_latency_s
    total = prompt * rm_to.kv_bytes_per_token * rm_to.tp
    fabric = topology.of(spec)
    if fabric is not None:  # placed in a topology: its links, efficiencies and latencies
        ranks = min(rm_from.tp, rm_to.tp) * fabric.scaleup.ranks_per_device
        return topology.p2p_s(fabric, total / ranks, not up)
    return total / (bw * min(rm_from.tp, rm_to.tp)) + lat


def run(job: LLMJob, rate: float, d: Draws, rms: list[ReplicaModel], engine: str = "fast",
        file: str = "job") -> tuple[np.ndarray, list[ReplicaTrace], list[np.ndarray]]:
    """Arrival times, each replica's trace and the requests (indices) it served. A
    disaggregated job runs the prefill pool on every request (one output token: its TTFT),
    ships each prompt's KV cache to the decode pool, and runs the decode pool on the
    requests with more tokens to produce, in the order their KV arrives."""
    check_engine_size(job, engine, file)
    arr = arrival_times(job, d, rate, file)
    kinds = [k for k, r in enumerate(job.replicas) for _ in range(r.count)]
    mp, mo = float(d.prompt.mean()), float(d.output.mean())
    runner = run_fast if engine == "fast" else run_simpy
    if not job.disaggregated:
        per_kind = {k: saturated_tokens_per_s(rms[k], mp, mo) for k in set(kinds)}
        weights = [per_kind[k] for k in kinds]
        traces, groups = run_pool(arr, d.prompt, d.output, rms, kinds, weights, runner)
        return arr, traces, groups
    pre = [k for k in kinds if job.replicas[k].role == "prefill"]
    dec = [k for k in kinds if job.replicas[k].role == "decode"]
    full = [rms[k].max_batched_tokens for k in pre]
    pre_w = [f / float(rms[k].linear_s[f]) for k, f in zip(pre, full, strict=True)]
    ones = np.ones_like(d.output)
    p_tr, p_groups = run_pool(arr, d.prompt, ones, rms, pre, pre_w, runner)
    first = np.empty(len(arr))
    src = np.empty(len(arr), dtype=np.int64)
    for g, tr, k in zip(p_groups, p_tr, pre, strict=True):
        first[g] = tr.first_s
        src[g] = k
    more = np.flatnonzero(d.output > 1)
    ship = np.empty(len(arr))
    for k in set(pre):
        mine = src == k
        ship[mine] = kv_transfer_s(job, rms[k], rms[dec[0]], d.prompt[mine])
    at = first[more] + ship[more]
    order = more[np.argsort(at, kind="stable")]
    per_kind = {k: saturated_tokens_per_s(rms[k], mp, mo) for k in set(dec)}
    dec_w = [per_kind[k] for k in dec]
    d_tr, d_groups = run_pool(first[order] + ship[order], d.prompt[order], d.output[order],
                               rms, dec, dec_w, runner, np.ones(len(order), np.int64))
    # one trace per replica over all requests: prefill replicas give first tokens (and
    # completion for single-token outputs), decode replicas completion
    n = len(arr)
    traces, groups = [], []
    done_one = np.where(d.output <= 1, first, np.nan)
    for g, tr in zip(p_groups, p_tr, strict=True):
        traces.append(replace(tr, done_s=done_one[g]))
        groups.append(g)
    for g, tr in zip(d_groups, d_tr, strict=True):
        idx = order[g]
        traces.append(replace(tr, first_s=first[idx]))
        groups.append(idx)
    # requests that finished at prefill appear once (in the prefill group); the decode
    # groups overwrite the completion of the others
    assert sum(len(g) for g in groups) == n + len(order)
    return arr, traces, groups


def _rate(job: LLMJob, file: str) -> float:
    if job.arrivals.rate_qps is None:
        raise AccelsimError.single(file, "arrivals.rate_qps", "expected a rate (requests/s)")
    return float(job.arrivals.rate_qps)


def simulate(job: LLMJob, file: str = "job", engine: str | None = None,
             usd_per_hour: list[float] | None = None, rms: list[ReplicaModel] | None = None
             ) -> LLMResult:
    """One run at the job's rate (seed ``sim.seed``)."""
    rms = rms or models(job, file)
    d = draw(job, job.sim.seed, file)
    check_fits(job, rms, d, file)
    rate = _rate(job, file) if d.trace_s is None or job.arrivals.rate_qps else len(d.trace_s) / max(
        float(d.trace_s[-1] - d.trace_s[0]), 1e-9)
    arr, traces, groups = run(job, rate, d, rms, engine or job.sim.engine, file)
    return summarize(job, rate, d, arr, traces, groups, rms, usd_per_hour)

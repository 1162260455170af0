"""The replica pool of an LLM job and its run: each replica kind's cost model, routing by
weighted round robin (stride scheduling, :func:`route`) in proportion to each replica
kind's saturated decode throughput (:func:`saturated_tokens_per_s`), so a mixed pool is
loaded by its speed and every replica runs independently (its requests are known up
front), and each replica's scheduler (:mod:`accelsim.llm.engine`); a disaggregated job
runs its prefill pool, ships the KV caches and runs its decode pool (:func:`run`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.llm import engine_events
from accelsim.llm.draws import Draws, arrival_times
from accelsim.llm.engine import ReplicaTrace, run_fast
from accelsim.llm.engine_simpy import run_simpy
from accelsim.llm.job import LLMJob
from accelsim.llm.perf import ReplicaModel, replica_model

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


def saturated_tokens_per_s(rm: ReplicaModel, prompt: float, output: float) -> float:
    """Output tokens/s of a replica kept full (routing weights, the capacity search's
    bracket): ``seqs`` sequences (max_seqs, or as many as the KV cache holds) decode
    together at the mean context, gaining ``tokens_per_step`` each, and each request's
    prompt is prefilled at the cost per token of a full iteration plus its attention."""
    seqs = max(1, min(rm.max_seqs, int(rm.kv_tokens // max(prompt + output, 1.0)),
                      rm.max_batched_tokens))
    step = rm.decode_step_s(seqs, prompt + output / 2)
    full = rm.max_batched_tokens
    prefill = float(rm.linear_s[full]) / full * prompt + rm.c_pf * prompt * (prompt + 1) / 2
    per_request = output / rm.tokens_per_step * step / seqs + prefill
    return output / per_request


def route(n: int, weights: list[float]) -> np.ndarray:
    """Weighted round robin, smooth: replica j takes a share w_j / sum(w) of the n requests
    (largest remainders), its k-th at virtual time (k + 1/2) / share_j; requests go out in
    virtual-time order (stride scheduling, Waldspurger 1995), so every replica's requests
    are spread evenly over the stream."""
    w = np.asarray(weights, dtype=float)
    share = w / w.sum()
    exact = n * share
    counts = np.floor(exact).astype(np.int64)
    extra = n - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:extra]] += 1
    vt = np.concatenate([(np.arange(c) + 0.5) / s for c, s in zip(counts, share, strict=True)])
    owner = np.repeat(np.arange(len(w)), counts)
    return owner[np.argsort(vt, kind="stable")]


def route_groups(n: int, weights: list[float]) -> list[np.ndarray]:
    """The requests (indices, in arrival order) each replica serves (:func:`route`)."""
    where = route(n, weights)
    order = np.argsort(where, kind="stable")
    bounds = np.searchsorted(where[order], np.arange(len(weights) + 1))
    return [order[bounds[j]:bounds[j + 1]] for j in range(len(weights))]


def run_pool(arr: np.ndarray, prompt: np.ndarray, out: np.ndarray, rms: list[ReplicaModel],
             kinds: list[int], weights: list[float], runner: Any,
             ready: np.ndarray | None = None) -> tuple[list[ReplicaTrace], list[np.ndarray]]:
    """Route requests (arrival-sorted) over the replicas ``kinds`` by ``weights`` and run each
    replica; the traces and the requests (indices) each served."""
    groups = route_groups(len(arr), weights)
    traces = [replace(runner(arr[g], prompt[g], out[g], rms[k],
                             None if ready is None else ready[g]), kind=k)
              for g, k in zip(groups, kinds, strict=True)]
    return traces, groups


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
    if spec.topology is not None:  # placed in a topology: its links, efficiencies, latencies
        from accelsim.devices import topology

        fabric = topology.of(spec)
        assert fabric is not None
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
    if engine == "fast" and engine_events.prefer(len(arr)):
        runner = engine_events.Budget().run  # the same traces, without loading numba
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

"""Run an LLM serving job: draw the request stream, route it over the replicas, run each
replica's scheduler (:mod:`accelsim.llm.engine`) and summarise TTFT, TPOT, throughput,
goodput, KV use and cost; search the highest rate meeting the SLO.

Routing: weighted round robin by stride scheduling (:func:`route`) in proportion to each
replica kind's saturated decode throughput, so a mixed pool is loaded by its speed and every
replica runs independently (its requests are known up front).

Random inputs come from one seeded generator: unit-rate Poisson points mapped through the
arrival profile (so a capacity search rescales one sample path: common random numbers),
prompt and output lengths drawn once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from accelsim import units
from accelsim.devices import topology
from accelsim.errors import AccelsimError
from accelsim.llm.engine import ReplicaTrace, run_fast, run_simpy
from accelsim.llm.job import LLMJob
from accelsim.llm.perf import ReplicaModel, replica_model
from accelsim.traffic import nhpp_times, read_trace, sample, shape_function


@dataclass(frozen=True)
class Draws:
    """A job's random inputs: unit-rate arrival points (or trace times), lengths."""

    unit_points: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    trace_s: np.ndarray | None = None


# Peak memory of one run per request: draws, routing, traces and the summary's temporaries
# (RSS measured at 1 M and 3 M requests: ~125 B), with headroom; and its time on the fast
# engine (1.7-2.6 us per request measured, one replica kind).
BYTES_PER_REQUEST = 200
SECONDS_PER_REQUEST = 3e-6


def check_memory(job: LLMJob, file: str = "job") -> None:
    """Refuse, before drawing anything, a run that would need more than half of this
    machine's memory (``sim.requests`` x :data:`BYTES_PER_REQUEST`)."""
    from accelsim.serving.service import physical_memory

    need = job.sim.requests * BYTES_PER_REQUEST
    have = physical_memory()
    if need > have / 2:
        raise AccelsimError.single(
            file, "sim.requests", f"{job.sim.requests:,} requests need ~{need / units.GB:,.1f} "
            f"GB; this machine has {have / units.GB:,.1f} GB; expected at most "
            f"{int(have / 2 / BYTES_PER_REQUEST):,}")


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


def draw(job: LLMJob, seed: int, file: str = "job") -> Draws:
    check_memory(job, file)
    rng = np.random.default_rng(seed)
    n = job.sim.requests
    trace = None
    if job.arrivals.process == "trace":
        trace, _ = read_trace(job.arrivals.trace or "", file)
        n = min(n, len(trace))
        trace = trace[:n]
    pts = np.cumsum(rng.exponential(1.0, n))
    prompt = sample(job.prompt_tokens, rng, n, integer=True).astype(np.int64)
    output = sample(job.output_tokens, rng, n, integer=True).astype(np.int64)
    return Draws(pts, prompt, output, trace)


def arrival_times(job: LLMJob, d: Draws, rate: float, file: str = "job") -> np.ndarray:
    """Arrival times at ``rate`` requests/s (a trace is rescaled to it)."""
    if d.trace_s is not None:
        span = d.trace_s[-1] - d.trace_s[0]
        native = (len(d.trace_s) - 1) / span if span > 0 else rate
        return (d.trace_s - d.trace_s[0]) * native / rate
    horizon = d.unit_points[-1] / rate
    t, m = shape_function(job.arrivals, horizon, np.random.default_rng(job.sim.seed + 7), file)
    return nhpp_times(d.unit_points, rate, t, m, file)


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


@dataclass
class LLMResult:
    metrics: dict[str, Any]
    replicas: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.metrics, "replicas": self.replicas}


def check_fits(job: LLMJob, rms: list[ReplicaModel], d: Draws, file: str) -> None:
    longest = int((d.prompt + d.output).max())
    for i, rm in enumerate(rms):
        if longest > rm.kv_tokens:
            raise AccelsimError.single(
                file, "prompt_tokens", f"a request of {longest:,} tokens (prompt + output) "
                f"exceeds replicas[{i}]'s KV cache of {rm.kv_tokens:,} tokens; expected "
                "shorter requests or more memory per replica")
        if rm.max_batched_tokens > rm.kv_tokens:
            raise AccelsimError.single(
                file, f"replicas[{i}].max_batched_tokens", f"{rm.max_batched_tokens:,} "
                f"exceeds the KV cache ({rm.kv_tokens:,} tokens); expected a smaller budget")


def _groups(n: int, weights: list[float]) -> list[np.ndarray]:
    """The requests (indices, in arrival order) each replica serves (:func:`route`)."""
    where = route(n, weights)
    order = np.argsort(where, kind="stable")
    bounds = np.searchsorted(where[order], np.arange(len(weights) + 1))
    return [order[bounds[j]:bounds[j + 1]] for j in range(len(weights))]


def _pool_run(arr: np.ndarray, prompt: np.ndarray, out: np.ndarray, rms: list[ReplicaModel],
              kinds: list[int], weights: list[float], runner: Any,
              ready: np.ndarray | None = None) -> tuple[list[ReplicaTrace], list[np.ndarray]]:
    """Route requests (arrival-sorted) over the replicas ``kinds`` by ``weights`` and run each
    replica; the traces and the requests (indices) each served."""
    groups = _groups(len(arr), weights)
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
        traces, groups = _pool_run(arr, d.prompt, d.output, rms, kinds, weights, runner)
        return arr, traces, groups
    pre = [k for k in kinds if job.replicas[k].role == "prefill"]
    dec = [k for k in kinds if job.replicas[k].role == "decode"]
    full = [rms[k].max_batched_tokens for k in pre]
    pre_w = [f / float(rms[k].linear_s[f]) for k, f in zip(pre, full, strict=True)]
    ones = np.ones_like(d.output)
    p_tr, p_groups = _pool_run(arr, d.prompt, ones, rms, pre, pre_w, runner)
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
    d_tr, d_groups = _pool_run(first[order] + ship[order], d.prompt[order], d.output[order],
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


def _attains(job: LLMJob, rate: float, d: Draws, rms: list[ReplicaModel], file: str) -> float:
    arr, traces, groups = run(job, rate, d, rms, job.sim.engine, file)
    return float(summarize(job, rate, d, arr, traces, groups, rms).metrics[
        "goodput_fraction"])


def slo_budget(n: int, target: float) -> int:
    """The most of ``n`` counted requests that may miss the SLO while the goodput fraction
    ``(n - m) / n`` (as :func:`summarize` computes it, in floating point) stays >= target;
    -1 when none may (``n`` 0)."""
    if n <= 0:
        return -1
    m = min(n, max(0, math.floor((1.0 - target) * n) + 1))
    while m >= 0 and not ((n - m) / n >= target):
        m -= 1
    while m < n and (n - m - 1) / n >= target:
        m += 1
    return m


def _passes(job: LLMJob, rate: float, d: Draws, rms: list[ReplicaModel], file: str) -> bool:
    """Whether ``rate`` meets the SLO: ``_attains(...) >= slo.attainment`` exactly, with
    each replica's run judged as it goes (:func:`accelsim.llm.engine.run_judged`) and
    stopped once more requests missed than the attainment allows (a rate past capacity is
    known within its first seconds) or once none can miss any more."""
    assert job.slo is not None
    n, warm = len(d.prompt), job.sim.warmup
    budget = slo_budget(n - warm, job.slo.attainment)
    if job.disaggregated or job.sim.engine != "fast" or budget < 0:
        return _attains(job, rate, d, rms, file) >= job.slo.attainment
    from accelsim.llm.engine import Judge, run_judged

    arr = arrival_times(job, d, rate, file)
    kinds = [k for k, r in enumerate(job.replicas) for _ in range(r.count)]
    mp, mo = float(d.prompt.mean()), float(d.output.mean())
    per_kind = {k: saturated_tokens_per_s(rms[k], mp, mo) for k in set(kinds)}
    groups = _groups(len(arr), [per_kind[k] for k in kinds])
    counted = np.arange(len(arr)) >= warm
    ttft, tpot = job.slo.ttft_ms * units.MS, job.slo.tpot_ms * units.MS
    for i, (g, k) in enumerate(zip(groups, kinds, strict=True)):
        _, v = run_judged(arr[g], d.prompt[g], d.output[g], rms[k],
                          Judge(counted[g], ttft, tpot, budget, i == len(groups) - 1))
        if v.stopped == 1:
            return False
        if v.stopped == 2:
            return True
        budget -= v.misses
    return budget >= 0


def _cap(job: LLMJob, rms: list[ReplicaModel], d: Draws) -> float:
    """Requests/s of the whole pool kept saturated at the draws' mean lengths."""
    mp, mo = float(d.prompt.mean()), float(d.output.mean())
    return sum(saturated_tokens_per_s(rms[k], mp, mo) * r.count / mo
               for k, r in enumerate(job.replicas))


def capacity(job: LLMJob, file: str = "job", rms: list[ReplicaModel] | None = None,
             guess: float | None = None) -> dict[str, Any]:
    """Highest request rate whose goodput fraction meets ``slo.attainment``:
    :func:`search` without a rival."""
    out = search(job, file, rms, None, guess)
    assert out is not None
    return out


def search(job: LLMJob, file: str = "job", rms: list[ReplicaModel] | None = None,
           loses: Callable[[float], bool] | None = None, guess: float | None = None
           ) -> dict[str, Any] | None:
    """Highest request rate whose goodput fraction meets ``slo.attainment``, per
    replication (bisection on common random numbers, 1 % resolution), with the mean and a
    95 % confidence interval (Student t) over ``sim.replications`` seeds.

    Each probe stops as soon as its verdict is certain (:func:`_passes`: the same verdict
    as the whole run's goodput). ``loses(upper)``: a caller comparing several searches
    says whether a mean of at most ``upper`` requests/s can still win; once the search's
    bound on its mean (the answers so far, the current upper end of the bisection, and the
    starting upper end of the replications to come) cannot, it stops and returns None.
    Neither changes the answer. ``guess`` (fast searches only; it moves the answer within
    the 1 % resolution): the first replication's bisection starts from a bracket around
    it, each later one from a bracket around the one before's answer."""
    if job.slo is None:
        raise AccelsimError.single(file, "slo", "--capacity needs slo.ttft_ms and slo.tpot_ms")
    rms = rms or models(job, file)
    target = job.slo.attainment
    reps = range(job.sim.replications)
    draws = [draw(job, job.sim.seed + rep, file) for rep in reps]
    for d in draws:  # every replication's requests fit before any is searched
        check_fits(job, rms, d, file)
    caps = [_cap(job, rms, d) for d in draws]
    # each replication's search is a coroutine that yields rates and gets verdicts; they
    # advance in turn (plain searches) so that the bound on the mean tightens on all at once
    upper = [2.0 * c for c in caps]  # each replication's answer is at most this
    found: list[float] = []
    if loses is not None and loses(float(np.mean(upper))):
        return None
    if guess is not None:  # sequential: each starts around the answer before it
        for rep, (d, cap) in enumerate(zip(draws, caps, strict=True)):
            found.append(_drive(_bisection(cap, guess if rep == 0 else found[-1]),
                                job, d, rms, file))
    else:
        gens = [_bisection(cap) for cap in caps]
        rates: list[float | None] = [next(g) for g in gens]
        result = [0.0] * len(gens)
        while any(r is not None for r in rates):
            for rep, g in enumerate(gens):
                r = rates[rep]
                if r is None:
                    continue
                ok = _passes(job, r, draws[rep], rms, file)
                if not ok:
                    upper[rep] = min(upper[rep], r)
                try:
                    rates[rep] = g.send(ok)
                except StopIteration as stop:
                    rates[rep] = None
                    result[rep] = upper[rep] = stop.value
                if not ok and loses is not None and loses(float(np.mean(upper))):
                    return None
        found = result
    x = np.asarray(found)
    half = 0.0
    if len(x) > 1:
        from scipy import stats

        half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    out = {"max_rps_at_slo": float(x.mean()), "ci95_low_rps": max(float(x.mean() - half), 0.0),
           "ci95_high_rps": float(x.mean() + half), "per_replication_rps": x.tolist(),
           "slo_ttft_ms": job.slo.ttft_ms, "slo_tpot_ms": job.slo.tpot_ms,
           "attainment": target}
    if not x.any():
        out["reason"] = (f"no rate meets the SLO: even at 1 % of saturation fewer than "
                         f"{100 * target:g} % of requests get a TTFT <= {job.slo.ttft_ms:g} ms "
                         f"and TPOT <= {job.slo.tpot_ms:g} ms")
    return out


# First half-width of a bracket around a guess (then doubled until it holds the answer).
BRACKET = 0.02

Search = Generator[float, bool, float]


def _drive(gen: Search, job: LLMJob, d: Draws, rms: list[ReplicaModel], file: str
           ) -> float:
    """Run one replication's search to its answer."""
    rate = next(gen)
    while True:
        try:
            rate = gen.send(_passes(job, rate, d, rms, file))
        except StopIteration as stop:
            return float(stop.value)


def _bisection(cap: float, start: float | None = None) -> Search:
    """One replication's search for the highest rate that meets the SLO, as a coroutine
    (yields a rate, is sent whether it passes, returns the answer): twice the saturated
    rate ``cap`` passes (answer: it), 1 % of it fails (answer 0; requests barely queue
    there, so a long prompt's prefill alone breaks the TTFT), else bisection to 1 %. With
    ``start``, the bracket comes from widening +-:data:`BRACKET` around it instead."""
    lo, hi = 0.01 * cap, 2.0 * cap
    if start is not None and lo < start < hi:
        lo, hi = yield from _bracket(start, lo, hi)
    else:
        if (yield hi):
            return hi
        if not (yield lo):
            return 0.0
    while hi - lo > 0.01 * hi:
        mid = 0.5 * (lo + hi)
        if (yield mid):
            lo = mid
        else:
            hi = mid
    return lo


def _bracket(start: float, floor: float, top: float) -> Generator[float, bool,
                                                                   tuple[float, float]]:
    """``(lo, hi)`` around ``start``: ``lo`` meets the SLO and ``hi`` does not, found by
    widening a bracket of +-:data:`BRACKET` geometrically; ``floor`` (1 % of saturation)
    and ``top`` (twice saturation) end it as in the plain search (``lo = hi = 0`` when
    ``floor`` fails, ``lo = hi = top`` when ``top`` passes)."""
    w = BRACKET
    if (yield start):
        lo = start
        while True:
            up = min(start * (1 + w), top)
            if not (yield up):
                return lo, up
            if up >= top:
                return top, top
            lo, w = up, 2 * w
    hi = start
    while True:
        down = max(start * (1 - w), floor)
        if (yield down):
            return down, hi
        if down <= floor:
            return 0.0, 0.0
        hi, w = down, 2 * w


def describe(rms: list[ReplicaModel]) -> list[dict[str, Any]]:
    """What each replica kind is: devices, KV capacity, weights per device, and its decode
    step (batch 1 and full, 1,024-token contexts) and a 2,048-token prefill, in ms."""
    return [{"kind": rm.name, "tp": rm.tp, "dp": rm.dp, "devices": rm.devices,
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

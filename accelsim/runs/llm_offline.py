"""``llm_offline`` -- LLM serving at maximum load (trtllm-bench, MLPerf Offline): every
request queued at once on the replicas, output tokens over the makespan
(:func:`accelsim.llm.sim.simulate`); lengths fixed or a dataset's histogram.

MLPerf's LoadGen issues one Offline query of ``samples_per_query`` samples (200,640 to
1,119,360 in the logs cited here) and reports samples over the whole query's time, so a run
is the start (every batch slot prefilling at once), a long steady state, and one drain (the
batch emptying). A run of more than :data:`STEADY_REQUESTS` requests is predicted from a
run of that many (:func:`offline_tokens_per_s`): its makespan plus the remaining requests'
output tokens at the steady-state rate measured in the second half of it. Held to the full
simulation within 1 % by tests/llm/test_offline.py."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from accelsim.runs.base import Prediction, RunKind, register
from accelsim.runs.llm import LLMLoadRun, llm_files

STEADY_REQUESTS = 100_000
"""Fewest requests simulated for a longer Offline run (~0.4 s on the compiled engine)."""
STEADY_WAVES = 10
"""...and at least this many times the sequences the replicas hold at once: the simulated
start (every slot prefilling together) settles within ~5 such waves on the rows of
configs/runs (measured: completions per second flat from there on)."""
WINDOW = (0.5, 0.9)
"""Completions (shares of the simulated requests) bounding the steady-state window."""


class LLMOfflineRun(LLMLoadRun):
    kind: Literal["llm_offline"]
    """LLM serving under maximum load: every request queued at once (trtllm-bench
    throughput, MLPerf Offline); total output tokens per second of the replicas."""
    metric: Literal["output_tokens_per_s"]
    """Output tokens per second of all the replicas."""


def concurrent_sequences(job: Any, rms: list[Any], prompt: float, output: float) -> float:
    """Sequences the replicas hold at once: per replica its max_seqs, or as many as its KV
    cache holds at a mean context of prompt + output / 2 tokens."""
    kinds = [k for k, r in enumerate(job.replicas) for _ in range(r.count)]
    return float(sum(min(rms[k].max_seqs, rms[k].kv_tokens / (prompt + output / 2))
                     for k in kinds))


def steady_requests(job: Any, rms: list[Any], prompt: float, output: float) -> int:
    """Requests simulated for an Offline run: at least :data:`STEADY_REQUESTS` and
    :data:`STEADY_WAVES` times :func:`concurrent_sequences`."""
    return max(STEADY_REQUESTS, int(STEADY_WAVES * concurrent_sequences(job, rms, prompt,
                                                                         output)))


def offline_tokens_per_s(job: Any, file: str = "job", full: bool = False
                         ) -> tuple[float, Any, int]:
    """Output tokens per second of ``job`` (every request at once), the simulated run's
    :class:`accelsim.llm.summary.LLMResult` and the requests simulated.

    The run's N requests are drawn; when N exceeds n = :func:`steady_requests`, only the
    first n are simulated: with T_n their makespan, O_n their output tokens and r the
    output-token rate of the requests completing between the :data:`WINDOW` shares of
    them (the steady state), the other requests' O_rest output tokens add O_rest / r
    seconds: tokens/s = (O_n + O_rest) / (T_n + O_rest / r). ``full``: all N simulated."""
    from accelsim.llm.draws import Draws, check_fits, draw
    from accelsim.llm.pool import models, run
    from accelsim.llm.summary import summarize

    rms = models(job, file)
    d = draw(job, job.sim.seed, file)
    check_fits(job, rms, d, file)
    n_all = len(d.output)
    n = n_all if full else min(n_all, steady_requests(job, rms, float(d.prompt.mean()),
                                                      float(d.output.mean())))
    short = job.model_copy(update={"sim": job.sim.model_copy(update={"requests": n})})
    ds = Draws(d.unit_points[:n], d.prompt[:n], d.output[:n])
    rate = float(job.arrivals.rate_qps)
    arr, traces, groups = run(short, rate, ds, rms, job.sim.engine, file)
    r = summarize(short, rate, ds, arr, traces, groups, rms)
    if n == n_all:
        return float(r.metrics["output_tokens_per_s"]), r, n
    done = np.empty(n)
    for g, tr in zip(groups, traces, strict=True):
        done[g] = tr.done_s
    order = np.argsort(done, kind="stable")
    lo, hi = (int(w * n) for w in WINDOW)
    t = done[order]
    rate_tok = float(ds.output[order][lo + 1:hi + 1].sum() / (t[hi] - t[lo]))
    rest = float(d.output[n:].sum())
    return (float(ds.output.sum()) + rest) / (float(t[-1] - arr[0]) + rest / rate_tok), r, n


def predict(run: LLMOfflineRun, file: str) -> Prediction:
    """Every request arrives within microseconds (rate 1e6/s) and the replicas drain them."""
    tps, r, n = offline_tokens_per_s(run.job(file, 1e6), file)
    rep = r.replicas[0]
    shown = f"{n:,} of {run.requests:,} requests simulated, " if n < run.requests else ""
    return Prediction(tps, f"{shown}KV {rep['kv_tokens']:,} tokens, {rep['iterations']:,} "
                      f"iterations, KV use {rep['kv_utilization']:.0%}; TTFT mean "
                      f"{r.metrics['ttft_mean_ms']:.0f} ms, TPOT mean "
                      f"{r.metrics['tpot_mean_ms']:.1f} ms")


register(RunKind("llm_offline", LLMOfflineRun, predict, llm_files))

"""Run an LLM serving job: draw the request stream (:mod:`accelsim.llm.draws`), route it
over the replicas and run each replica's scheduler (:mod:`accelsim.llm.pool`,
:mod:`accelsim.llm.engine`), and summarise TTFT, TPOT, throughput, goodput, KV use and
cost (:mod:`accelsim.llm.summary`). The highest rate meeting the SLO:
:mod:`accelsim.llm.search`. The names callers imported from this module before it was
split stay importable from it.
"""

from __future__ import annotations

from accelsim.errors import AccelsimError
from accelsim.llm.draws import Draws, arrival_times, check_fits, draw
from accelsim.llm.job import LLMJob
from accelsim.llm.perf import ReplicaModel
from accelsim.llm.pool import (
    SIMPY_MAX_REQUESTS,
    check_engine_size,
    kv_transfer_s,
    models,
    route,
    run,
    saturated_tokens_per_s,
)
from accelsim.llm.search import capacity, search, slo_budget
from accelsim.llm.summary import LLMResult, describe, summarize, usd_per_hour

__all__ = ["SECONDS_PER_REQUEST", "SIMPY_MAX_REQUESTS", "Draws", "LLMResult", "arrival_times",
           "capacity", "check_engine_size", "check_fits", "describe", "draw", "kv_transfer_s",
           "models", "route", "run", "saturated_tokens_per_s", "search", "simulate",
           "slo_budget", "summarize", "usd_per_hour"]

# The fast engine's time per request (1.7-2.6 us measured, one replica kind).
SECONDS_PER_REQUEST = 3e-6


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

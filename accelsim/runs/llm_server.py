"""``llm_server`` -- MLPerf Server for LLMs: the highest Poisson rate at which ``percentile``
of the requests meet the TTFT and TPOT bounds (:func:`accelsim.llm.sim.capacity`; MLPerf
checks the two p99s separately, so meeting both on one request each is the stricter test)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from accelsim.runs.base import Prediction, RunKind, register
from accelsim.runs.llm import LLMLoadRun, llm_files


class LLMServerRun(LLMLoadRun):
    kind: Literal["llm_server"]
    """MLPerf Inference Server for LLMs: Poisson arrivals, the highest rate at which the
    p99 time to first token and the p99 time per output token meet their bounds."""
    metric: Literal["queries_per_s"]
    """Requests per second at the latency bounds."""
    ttft_ms: float = Field(gt=0, le=3_600_000)
    """Time-to-first-token bound (MLPerf Llama-2-70B: 2,000 ms at p99)."""
    tpot_ms: float = Field(gt=0, le=3_600_000)
    """Time-per-output-token bound (MLPerf Llama-2-70B: 200 ms at p99)."""
    percentile: float = Field(default=0.99, gt=0, lt=1)
    """Share of requests that must meet the bounds."""
    replications: int = Field(default=3, ge=1, le=100)
    """Seeded runs averaged (each a bisection on the rate)."""


def predict(run: LLMServerRun, file: str) -> Prediction:
    from accelsim.llm.sim import capacity

    slo = {"ttft_ms": run.ttft_ms, "tpot_ms": run.tpot_ms, "attainment": run.percentile}
    c = capacity(run.job(file, 1.0, slo, run.replications), file)
    return Prediction(float(c["max_rps_at_slo"]),
                      f"{c['max_rps_at_slo']:.1f} req/s (95 % CI {c['ci95_low_rps']:.1f}-"
                      f"{c['ci95_high_rps']:.1f}) over {run.replications} seeded runs")


register(RunKind("llm_server", LLMServerRun, predict, llm_files))

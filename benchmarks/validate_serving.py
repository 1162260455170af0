"""Serving validation tables for the README: closed forms, and the published MLPerf runs of
``accelsim validate-runs``.

The same comparisons are asserted in tests/serving/ with their tolerances.
Run: ``python benchmarks/validate_serving.py``.
"""

from __future__ import annotations

import math

import numpy as np

from accelsim.runs import validate_runs
from accelsim.serving import queueing as Q
from accelsim.serving.job import ServeJob
from accelsim.serving.sim import simulate


def _job(service: dict, rate: float, c: int = 1) -> ServeJob:
    return ServeJob.model_validate({
        "arrivals": {"process": "poisson", "rate_qps": rate},
        "service": {"synthetic": service}, "replicas": c,
        "sim": {"requests": 200_000, "warmup": 20_000, "seed": 11}})


def _row(name: str, theory: float, sim: float) -> None:
    print(f"| {name} | {theory:.4g} | {sim:.4g} | {100 * (sim - theory) / theory:+.1f} % |")


def main() -> None:
    print("| quantity | closed form | simulated | error |\n|---|---|---|---|")
    r = simulate(_job({"dist": "exponential", "mean_ms": 1.0}, 700), keep_trace=True)
    w = (r.trace.start_s - r.trace.arrival_s).to_numpy()[20_000:]
    _row("M/M/1 rho 0.7 mean wait (ms)", Q.mm1_wait_mean(700, 1000) * 1e3,
         r.metrics["mean_wait_ms"])
    _row("M/M/1 rho 0.7 p99 wait (ms)", Q.mm1_wait_quantile(700, 1000, 0.99) * 1e3,
         float(np.quantile(w, 0.99)) * 1e3)
    _row("M/M/1 rho 0.7 p99 latency (ms)", math.log(100) / 300 * 1e3, r.metrics["p99_ms"])
    r = simulate(_job({"dist": "deterministic", "value_ms": 1.0}, 800), keep_trace=True)
    w = (r.trace.start_s - r.trace.arrival_s).to_numpy()[20_000:]
    _row("M/D/1 rho 0.8 mean wait (ms)", Q.md1_wait_mean(800, 1e-3) * 1e3,
         r.metrics["mean_wait_ms"])
    _row("M/D/1 rho 0.8 p95 wait (ms)", Q.md1_wait_quantile(800, 1e-3, 0.95) * 1e3,
         float(np.quantile(w, 0.95)) * 1e3)
    r = simulate(_job({"dist": "lognormal", "mean_ms": 1.0, "cv": 1.5}, 600))
    _row("M/G/1 (lognormal cv 1.5) rho 0.6 mean wait (ms)",
         Q.mg1_wait_mean(600, 1e-3, 1e-6 * 3.25) * 1e3, r.metrics["mean_wait_ms"])
    r = simulate(_job({"dist": "exponential", "mean_ms": 1.0}, 13600, 16), keep_trace=True)
    w = (r.trace.start_s - r.trace.arrival_s).to_numpy()[20_000:]
    _row("M/M/16 rho 0.85 mean wait (ms)", Q.mmc_wait_mean(13600, 1000, 16) * 1e3,
         r.metrics["mean_wait_ms"])
    _row("M/M/16 rho 0.85 P(wait > 0.5 ms)", Q.mmc_p_wait_gt(5e-4, 13600, 1000, 16),
         float(np.mean(w > 5e-4)))
    print("\n| run | published | predicted | error |\n|---|---|---|---|")
    for r in validate_runs():  # configs/runs: MLPerf Inference DLRM / DLRMv2 (cited there)
        print(f"| {r.id} | {r.published:,.0f} | {r.predicted:,.0f} | {100 * r.error:+.1f} % |")


if __name__ == "__main__":
    main()

"""Speed of the serving simulator. Prints ``requests_per_s=<n>`` for each engine on a
one-million-request M/M/4 run with dynamic batching, the fast engine's time against a plain
compiled multi-server FIFO recursion on the same inputs (Kiefer-Wolfowitz: earliest free
server, start = max(arrival, free); the floor for any exact simulation of this queue), and
the seconds of a capacity search (5 replications x bisection, 200k requests each).
Run: ``python benchmarks/bench_serving.py`` (add ``--quick`` for 100k requests)."""

from __future__ import annotations

import sys
import time

import numpy as np
from numba import njit

from accelsim.serving.draws import draw_inputs
from accelsim.serving.engines import simulate_fast, simulate_simpy
from accelsim.serving.job import ServeJob
from accelsim.serving.sim import capacity

N = 100_000 if "--quick" in sys.argv else 1_000_000


def job(n: int, batch: int) -> ServeJob:
    return ServeJob.model_validate({
        "arrivals": {"process": "poisson", "rate_qps": 3200},
        "service": {"synthetic": {"dist": "exponential", "mean_ms": 1.0,
                                  "per_item_ms": 0.01}},
        "replicas": 4, "routing": "shared_queue",
        "batching": {"max_batch_items": batch, "timeout_ms": 0.2 if batch > 1 else 0},
        "slo": {"p99_ms": 25},
        "sim": {"requests": n, "warmup": n // 20, "seed": 1}})


@njit(cache=True)
def plain_recursion(arr, svc, c, start, finish):  # pragma: no cover - compiled
    """c-server FIFO, one request per service: the reference floor."""
    free = np.zeros(c)
    for i in range(arr.shape[0]):
        s = 0
        for r in range(1, c):
            if free[r] < free[s]:
                s = r
        st = max(arr[i], free[s])
        start[i] = st
        finish[i] = st + svc[i]
        free[s] = finish[i]


def against_plain() -> None:
    x = draw_inputs(job(N, 1))
    svc = x.draw_s * x.scale[0] + x.table_s[0, 1]
    start, finish = np.empty(N), np.empty(N)
    plain_recursion(x.arrival_s, svc, 4, start, finish)  # JIT warm-up
    simulate_fast(x)
    best_plain = best_fast = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        plain_recursion(x.arrival_s, svc, 4, start, finish)
        best_plain = min(best_plain, time.perf_counter() - t0)
        t0 = time.perf_counter()
        tr = simulate_fast(x)
        best_fast = min(best_fast, time.perf_counter() - t0)
    assert np.allclose(tr.finish_s, finish)  # the same queue, the same answer
    print(f"M/M/4 batch<= 1: plain recursion {N / best_plain:,.0f} requests/s, fast engine "
          f"{N / best_fast:,.0f} requests/s: engine_over_plain={best_fast / best_plain:.2f}")


def main() -> None:
    against_plain()
    for batch in (1, 8):
        x = draw_inputs(job(N, batch))
        simulate_fast(draw_inputs(job(1000, batch)))  # JIT warm-up (cached on disk after)
        t0 = time.perf_counter()
        simulate_fast(x)
        fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        simulate_simpy(x)
        simp = time.perf_counter() - t0
        print(f"M/M/4 batch<= {batch}: requests={N} "
              f"fast requests_per_s={N / fast:,.0f}  simpy requests_per_s={N / simp:,.0f}")
    t0 = time.perf_counter()
    c = capacity(job(200_000, 1))
    dt = time.perf_counter() - t0
    print(f"capacity search: {c['replications']} replications x 200k requests, "
          f"max_qps_at_slo={c['max_qps_at_slo']:.0f} "
          f"[{c['ci95_low_qps']:.0f}, {c['ci95_high_qps']:.0f}] capacity_s={dt:.2f}")


if __name__ == "__main__":
    main()

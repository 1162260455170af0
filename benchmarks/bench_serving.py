"""Speed of the serving simulator. Prints ``requests_per_s=<n>`` for each engine on a
one-million-request M/M/4 run with dynamic batching, and the seconds of a capacity search
(5 replications x bisection, 200k requests each). Run: ``python benchmarks/bench_serving.py``
(add ``--quick`` for 100k requests)."""

from __future__ import annotations

import sys
import time

from accelsim.serving.engines import simulate_fast, simulate_simpy
from accelsim.serving.job import ServeJob
from accelsim.serving.sim import capacity, draw_inputs

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


def main() -> None:
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

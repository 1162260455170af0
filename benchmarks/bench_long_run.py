"""A long serving run in bounded memory: 1e8 requests (``--requests N`` for another size) on
the fast engine's streamed path, M/M/4 with dynamic batching. Prints the seconds, requests/s,
the process's peak resident memory and p99, against the same run's memory at 1e6 requests.
Run: ``python benchmarks/bench_long_run.py [--requests 1e8]``."""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

from accelsim.serving.job import ServeJob
from accelsim.serving.sim import simulate


def job(n: int) -> ServeJob:
    return ServeJob.model_validate({
        "arrivals": {"process": "poisson", "rate_qps": 3200},
        "queries": {"size": {"dist": "truncnormal", "mean": 4, "std": 2, "min": 1, "max": 16}},
        "service": {"synthetic": {"dist": "exponential", "mean_ms": 1.0,
                                  "per_item_ms": 0.01}},
        "replicas": 4, "routing": "shared_queue",
        "batching": {"max_batch_items": 16, "timeout_ms": 0.2},
        "slo": {"p99_ms": 25}, "sim": {"requests": n, "warmup": n // 100, "seed": 1}})


def one(n: int) -> None:
    t0 = time.perf_counter()
    m = simulate(job(n), engine="fast").metrics
    dt = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"requests={n:.0e} seconds={dt:.1f} requests_per_s={n / dt:,.0f} "
          f"peak_rss_MB={peak_mb:.0f} p99_ms={m['p99_ms']:.4f} stable={m['stable']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=float, default=1e8)
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        one(int(a.requests))
        return
    for n in (1e6, a.requests):  # separate processes: each peak is its own
        subprocess.run([sys.executable, __file__, "--one", "--requests", str(n)], check=True)


if __name__ == "__main__":
    main()

"""Speed of the LLM serving simulator: a one-hour simulated day of chatbot traffic (the
24-hour profile compressed into 3,600 s) at a mean 1,000 requests/s, 3.6 M requests over
260 replicas of Llama 2 70B on 4 x H100 (sized for the evening peak), with the compiled
scheduler.

Prints ``requests=<n> seconds=<t>`` (draws, routing, every replica's scheduler and the
summary; the numba compilation, cached on disk, is excluded by a warm-up run).
Run: ``python benchmarks/bench_llm_serving.py``.
"""

from __future__ import annotations

import time

from accelsim.llm.job import LLMJob
from accelsim.llm.sim import simulate

HOURLY = [0.3, 0.2, 0.15, 0.15, 0.2, 0.3, 0.5, 0.8, 1.1, 1.3, 1.4, 1.5, 1.5, 1.4, 1.4, 1.4,
          1.5, 1.6, 1.7, 1.8, 1.7, 1.3, 0.9, 0.5]


def job(requests: int) -> LLMJob:
    return LLMJob.model_validate({
        "replicas": [{"device": "h100-sxm", "model": "llama2-70b", "tp": 4, "count": 260}],
        "arrivals": {"rate_qps": 1000.0, "profile": {"hourly": HOURLY, "day_s": 3600}},
        "prompt_tokens": {"dist": "lognormal", "mean": 800, "cv": 1.0, "max": 8000},
        "output_tokens": {"dist": "lognormal", "mean": 200, "cv": 1.0, "max": 2000},
        "slo": {"ttft_ms": 2000, "tpot_ms": 100},
        "sim": {"requests": requests, "warmup": 10_000, "seed": 1},
    })


def main() -> None:
    simulate(job(20_000))  # compile (cached) and warm up
    n = 3_600_000
    t0 = time.perf_counter()
    r = simulate(job(n))
    dt = time.perf_counter() - t0
    m = r.metrics
    print(f"requests={n} seconds={dt:.2f} requests_per_s={n / dt:,.0f}; "
          f"ttft_p99_ms={m['ttft_p99_ms']:.0f} tpot_p99_ms={m['tpot_p99_ms']:.0f} "
          f"goodput={m['goodput_fraction']:.3f}")


if __name__ == "__main__":
    main()

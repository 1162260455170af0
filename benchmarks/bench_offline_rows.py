"""The MLPerf Offline rows at LoadGen's query sizes: for every ``llm_offline`` row of
configs/runs/mlperf-inference-*.yaml and its misses, the steady-state shortcut
(:func:`accelsim.runs.llm_offline.offline_tokens_per_s`) against the full simulation of all
its requests: requests simulated, seconds of each, and the shortcut's distance to the full
run.

Prints one line per row and the totals. Run: ``python benchmarks/bench_offline_rows.py``.
"""

from __future__ import annotations

import time

from accelsim.refs import configs_dir
from accelsim.runs import load_runs
from accelsim.runs.llm_offline import offline_tokens_per_s


def main() -> None:
    runs = configs_dir() / "runs"
    files = sorted(runs.glob("mlperf-inference-*.yaml")) + sorted(
        (runs / "misses").glob("mlperf-inference-*.yaml"))
    total_short = total_full = 0.0
    worst = 0.0
    for f in files:
        for run in load_runs(f).runs:
            if run.kind != "llm_offline":
                continue
            job = run.job(str(f), 1e6)
            offline_tokens_per_s(job.model_copy(update={"sim": job.sim.model_copy(
                update={"requests": 1000})}), str(f))  # compile and load outside the timing
            t = time.perf_counter()
            short, _, n = offline_tokens_per_s(job, str(f))
            ts = time.perf_counter() - t
            t = time.perf_counter()
            full, _, _ = offline_tokens_per_s(job, str(f), full=True)
            tf = time.perf_counter() - t
            total_short += ts
            total_full += tf
            worst = max(worst, abs(short / full - 1))
            print(f"{run.id} requests={run.requests} simulated={n} shortcut_s={ts:.2f} "
                  f"full_s={tf:.2f} shortcut_vs_full={short / full - 1:+.4f}")
    print(f"total shortcut_s={total_short:.1f} full_s={total_full:.1f} worst={worst:.4f}")


if __name__ == "__main__":
    main()

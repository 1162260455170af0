"""Sweep throughput: a 10,000-point scenario sweep (the ASIC break-even study on a 100 x 100
grid) on 2 local processes and on a 2-worker local Dask cluster. Prints ``points_per_s=``
for each, wall time including worker start-up and the base run (from an empty evaluation
cache; the study's metrics read training and serving only, so the chatbot is never
evaluated), and the CPU seconds of the sweep process and of its workers.

Each run is a new interpreter (as ``accelsim sweep`` is): nothing one run loaded or built
(the base context, Dask's modules) is left for the next. With ``--repeats N`` the executors
take turns N times.
Run: python benchmarks/bench_sweep.py [--points N] [--repeats N]"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from accelsim.sweep import read_results

SWEEP = Path(__file__).resolve().parent / "studies" / "asic_breakeven.yaml"

# one run in a new interpreter: accelsim imported before the clock starts (as the CLI has
# before it runs the sweep); the rest (Dask's import included) is timed
_ONE = """
import json, os, sys, time
from accelsim.sweep import Param, run_sweep
sweep, out, points, workers, executor = sys.argv[1:6]
n = round(int(points) ** 0.5)
params = {"devices.inhouse-asic.perf_scale": Param(low=0.1, high=1.5, num=n),
          "devices.inhouse-asic.price_usd": Param(low=2000, high=30000, num=n)}
c0, t0 = os.times(), time.perf_counter()
run = run_sweep(sweep, out, workers=int(workers), executor=executor, params=params)
dt, c1 = time.perf_counter() - t0, os.times()
print(json.dumps({"total": run.total, "seconds": dt,
                  "cpu_parent": c1.user - c0.user + c1.system - c0.system,
                  "cpu_workers": (c1.children_user - c0.children_user
                                  + c1.children_system - c0.children_system)}))
"""


def run_one(points: int, executor: str, workers: int) -> tuple[dict[str, float], pd.DataFrame]:
    """One sweep in a new interpreter with an empty evaluation cache: its timings and table."""
    tmp = Path(tempfile.mkdtemp())
    try:
        env = {**os.environ, "ACCELSIM_CACHE_DIR": str(tmp / "cache")}
        r = subprocess.run([sys.executable, "-c", _ONE, str(SWEEP), str(tmp / "sweep"),
                            str(points), str(workers), executor], env=env, capture_output=True,
                           text=True, check=True)
        got = json.loads(r.stdout.strip().splitlines()[-1])
        return got, read_results(tmp / "sweep")
    finally:
        shutil.rmtree(tmp)


def run_both(points: int, executors: tuple[str, ...] = ("local", "dask"),
             workers: tuple[int, ...] = (2,), repeats: int = 1) -> dict[tuple[str, int], float]:
    """Median points/s of each executor and worker count over ``repeats`` turns (each run
    from an empty evaluation cache, in a new interpreter), after checking that every table
    is the same."""
    tables, rates = {}, {}
    for _ in range(repeats):
        for executor in executors:
            for w in workers:
                if executor == "dask" and w < 2:
                    continue
                got, table = run_one(points, executor, w)
                tables[(executor, w)] = table
                rate = got["total"] / got["seconds"]
                rates.setdefault((executor, w), []).append(rate)
                print(f"{executor:5s}: points={got['total']} workers={w} "
                      f"seconds={got['seconds']:.2f} points_per_s={rate:,.0f} "
                      f"cpu_sweep_process={got['cpu_parent']:.2f} "
                      f"cpu_workers={got['cpu_workers']:.2f} "
                      f"load_average={os.getloadavg()[0]:.1f}", flush=True)
    first = next(iter(tables.values()))
    for t in tables.values():
        pd.testing.assert_frame_equal(first, t)
    print("every table identical")
    return {k: statistics.median(v) for k, v in rates.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    got = run_both(args.points, repeats=args.repeats)
    for (executor, w), rate in got.items():
        print(f"median {executor} ({w} workers): {rate:,.0f} points/s")


if __name__ == "__main__":
    main()

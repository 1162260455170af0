"""Sweep throughput: a 10,000-point scenario sweep (the ASIC break-even study on a 100 x 100
grid) on 2 local processes and on a 2-worker local Dask cluster. Prints ``points_per_s=``
for each, wall time including worker start-up and the base run (from an empty evaluation
cache; the study's metrics read training and serving only, so the chatbot is never
evaluated).
Run: python benchmarks/bench_sweep.py [--points N]"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from accelsim.sweep import Param, read_results, run_sweep

SWEEP = Path(__file__).resolve().parent / "studies" / "asic_breakeven.yaml"


def run_both(points: int, executors: tuple[str, ...] = ("local", "dask"),
             workers: tuple[int, ...] = (2,)) -> dict[tuple[str, int], float]:
    """Points/s of each executor and worker count (each with an empty evaluation cache),
    after checking that every table is the same."""
    n = round(points ** 0.5)
    params = {"devices.inhouse-asic.perf_scale": Param(low=0.1, high=1.5, num=n),
              "devices.inhouse-asic.price_usd": Param(low=2000, high=30000, num=n)}
    tables, rates = {}, {}
    for executor in executors:
        for w in workers:
            if executor == "dask" and w < 2:
                continue
            tmp = Path(tempfile.mkdtemp())
            os.environ["ACCELSIM_CACHE_DIR"] = str(tmp / "cache")
            out = tmp / "sweep"
            t0 = time.perf_counter()
            run = run_sweep(SWEEP, out, workers=w, executor=executor,  # type: ignore[arg-type]
                            params=params)
            dt = time.perf_counter() - t0
            tables[(executor, w)] = read_results(out)
            rates[(executor, w)] = run.total / dt
            print(f"{executor:5s}: points={run.total} workers={w} seconds={dt:.1f} "
                  f"points_per_s={run.total / dt:,.0f}")
            shutil.rmtree(tmp)
    first = next(iter(tables.values()))
    for t in tables.values():
        pd.testing.assert_frame_equal(first, t)
    print("every table identical")
    return rates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=10_000)
    run_both(ap.parse_args().points)


if __name__ == "__main__":
    main()

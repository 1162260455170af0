"""Sweep throughput: a 10,000-point scenario sweep (the ASIC break-even study on a 100 x 100
grid) on 2 local processes and on a 2-worker local Dask cluster. Prints ``points_per_s=``
for each, wall time including worker start-up and each worker's base run.
Run: python benchmarks/bench_sweep.py [--points N]"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from accelsim.sweep import Param, read_results, run_sweep

SWEEP = Path(__file__).resolve().parent / "studies" / "asic_breakeven.yaml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=10_000)
    n = round(ap.parse_args().points ** 0.5)
    params = {"devices.inhouse-asic.perf_scale": Param(low=0.1, high=1.5, num=n),
              "devices.inhouse-asic.price_usd": Param(low=2000, high=30000, num=n)}
    tables = {}
    for executor in ("local", "dask"):
        out = Path(tempfile.mkdtemp()) / "sweep"
        t0 = time.perf_counter()
        run = run_sweep(SWEEP, out, workers=2, executor=executor, params=params)  # type: ignore[arg-type]
        dt = time.perf_counter() - t0
        tables[executor] = read_results(out)
        print(f"{executor:5s}: points={run.total} workers=2 seconds={dt:.1f} "
              f"points_per_s={run.total / dt:,.0f}")
        shutil.rmtree(out.parent)
    pd.testing.assert_frame_equal(tables["local"], tables["dask"])
    print("local and dask tables identical")


if __name__ == "__main__":
    main()

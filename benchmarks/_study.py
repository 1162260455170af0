"""Shared plumbing of the study scripts: run a sweep file, keep its CSV, return the table."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd

from accelsim.sweep import Param, read_results, run_sweep

HERE = Path(__file__).resolve().parent
STUDIES = HERE / "studies"
RESULTS = HERE / "results"


def args() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="coarse grid, one process (smoke test)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for CSV and plots")
    ap.add_argument("--workers", type=int, default=2)
    return ap.parse_args()


def run(name: str, out_dir: Path, quick: bool, workers: int = 2,
        quick_params: dict[str, Param] | None = None, samples: int = 0) -> pd.DataFrame:
    """Run ``studies/<name>.yaml`` into ``out_dir/<name>/`` (fresh) and write ``<name>.csv``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = out_dir / f"{name}.parquet.d"
    if parts.exists():
        shutil.rmtree(parts)
    run_sweep(STUDIES / f"{name}.yaml", parts, workers=1 if quick else workers,
              params=quick_params if quick else None, samples=samples)
    df = read_results(parts)
    df.to_csv(out_dir / f"{name}.csv", index=False)
    return df

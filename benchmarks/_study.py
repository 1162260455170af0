"""Shared plumbing of the study scripts: run a sweep file, keep its CSV, return the table; the
sub-grid of a sweep's own values that its headline figures need (tests re-run only those)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd

from accelsim.sweep import Param, load_sweep, read_results, run_sweep

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
        quick_params: dict[str, Param] | None = None, samples: int = 0,
        params: dict[str, Param] | None = None) -> pd.DataFrame:
    """Run ``studies/<name>.yaml`` into ``out_dir/<name>/`` (fresh) and write ``<name>.csv``:
    on ``params`` if given, else on ``quick_params`` (one process) if quick, else on the
    sweep file's own grid."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = out_dir / f"{name}.parquet.d"
    if parts.exists():
        shutil.rmtree(parts)
    run_sweep(STUDIES / f"{name}.yaml", parts, workers=1 if quick and not params else workers,
              params=params or (quick_params if quick else None), samples=samples)
    df = read_results(parts)
    df.to_csv(out_dir / f"{name}.csv", index=False)
    return df


def subgrid(name: str, path: str, *windows: tuple[float, float]) -> Param:
    """The values of ``path`` in ``studies/<name>.yaml`` inside any of the [low, high]
    windows, as the full sweep computes them (the same floats, so a re-run's points are the
    full run's points)."""
    spec, _ = load_sweep(STUDIES / f"{name}.yaml")
    return Param(values=[v for v in spec.parameters[path].grid()
                         if any(lo <= v <= hi for lo, hi in windows)])


def read(name: str, results: Path = RESULTS) -> pd.DataFrame:
    """A study's committed results table (``results/<name>.csv``)."""
    return pd.read_csv(results / f"{name}.csv")

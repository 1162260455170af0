"""Running a sweep: batches to local processes or a Dask cluster, results written as Parquet
parts as each batch finishes, resume by skipping what is on disk."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from accelsim.errors import AccelsimError
from accelsim.sweep.evaluate import base_inputs, evaluate_batch
from accelsim.sweep.spec import Param, fingerprint, load_sweep, points

# ------------------------------------------------------------------------------ results on disk


def _meta_path(out: Path) -> Path:
    return out / "_sweep.json"


def done_ids(out: Path) -> set[int]:
    if not out.exists():
        return set()
    ids: set[int] = set()
    for part in sorted(out.glob("part-*.parquet")):
        ids.update(pd.read_parquet(part, columns=["point_id"])["point_id"].tolist())
    return ids


def read_results(out: str | Path) -> pd.DataFrame:
    """All rows written so far, in point order."""
    p = Path(out)
    if p.is_file():
        return pd.read_csv(p) if p.suffix == ".csv" else pd.read_parquet(p)
    parts = sorted(p.glob("part-*.parquet"))
    if not parts:
        raise AccelsimError.single(str(p), "", "no results here (expected part-*.parquet files)")
    df = pd.concat([pd.read_parquet(x) for x in parts], ignore_index=True)
    return df.sort_values("point_id").reset_index(drop=True)


def _write_part(out: Path, rows: list[dict[str, Any]]) -> None:
    first = min(r["point_id"] for r in rows)
    name = out / f"part-{first:09d}-{os.getpid()}-{len(rows)}.parquet"
    tmp = name.with_suffix(".tmp")
    pd.DataFrame(rows).to_parquet(tmp, index=False)
    os.replace(tmp, name)  # atomic: a crash never leaves a half-written part


# ------------------------------------------------------------------------------ running


Batch = list[tuple[int, dict[str, float]]]


def _execute(executor: str, workers: int, scheduler: str | None, payload: dict[str, Any],
             batches: list[Batch]) -> Iterator[list[dict[str, Any]]]:
    """Evaluate batches and yield their rows as each finishes (in completion order)."""
    if executor == "dask":
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_completed

        cluster = None
        if scheduler:
            client = Client(scheduler)
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)
            client = Client(cluster)
        try:
            futs = [client.submit(evaluate_batch, payload, b, pure=False) for b in batches]
            for fut in dask_completed(futs):
                yield fut.result()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    elif workers <= 1:
        for b in batches:
            yield evaluate_batch(payload, b)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pfuts = [pool.submit(evaluate_batch, payload, b) for b in batches]
            for pf in as_completed(pfuts):
                yield pf.result()


@dataclass
class SweepRun:
    out: Path
    total: int
    skipped: int
    computed: int


def _batches(todo: Batch, size: int) -> Iterator[Batch]:
    for i in range(0, len(todo), size):
        yield todo[i:i + size]


def run_sweep(sweep_path: str | Path, out: str | Path, workers: int = 2,
              executor: Literal["local", "dask"] = "local", scheduler: str | None = None,
              resume: bool = False, samples: int = 0, batch_size: int | None = None,
              progress: Callable[[int, int], None] | None = None,
              limit: int | None = None, params: dict[str, Param] | None = None) -> SweepRun:
    """Evaluate every point (or the first ``limit``) and write results as batches finish.
    ``params`` replaces parameters' values (e.g. coarser grids for a quick run)."""
    spec, base = load_sweep(sweep_path)
    if params:
        spec = spec.model_copy(update={"parameters": {**spec.parameters, **params}})
    base_text = base.read_text(encoding="utf-8")
    inputs = {str(f): f.read_text(encoding="utf-8", errors="replace")
              for f in base_inputs(base)}
    fp = fingerprint(spec, base_text, samples, inputs)
    outp = Path(out)
    if outp.exists() and any(outp.iterdir()):
        meta = json.loads(_meta_path(outp).read_text()) if _meta_path(outp).exists() else {}
        if not resume:
            raise AccelsimError.single(str(outp), "", "results already exist; use --resume to "
                                                      "continue or choose another --out")
        if meta.get("fingerprint") != fp:
            raise AccelsimError.single(str(outp), "", "these results come from a different "
                                                      "sweep, base, device or model file; "
                                                      "cannot resume")
    outp.mkdir(parents=True, exist_ok=True)
    pts = points(spec)
    if limit is not None:
        pts = pts[:limit]
    _meta_path(outp).write_text(json.dumps({"fingerprint": fp, "name": spec.name,
                                            "sweep": str(Path(sweep_path).resolve()),
                                            "points": len(pts), "samples": samples,
                                            "parameters": list(spec.parameters),
                                            "inputs": sorted(inputs),
                                            "metrics": spec.metrics}, indent=2))
    done = done_ids(outp)
    todo = [(i, p) for i, p in enumerate(pts) if i not in done]
    payload = {"spec": spec.model_dump(), "key": fp, "base_path": str(base),
               "sweep_path": str(sweep_path), "samples": samples, "seed": spec.sampling.seed}
    size = batch_size or spec.batch_size or max(1, min(256, math.ceil(len(todo) /
                                                                      max(4 * workers, 1))))
    batches = list(_batches(todo, size))
    finished = len(done)
    if progress:
        progress(finished, len(pts))
    if not batches:
        return SweepRun(outp, len(pts), len(done), 0)
    for rows in _execute(executor, workers, scheduler, payload, batches):
        _write_part(outp, rows)
        finished += len(rows)
        if progress:
            progress(finished, len(pts))
    return SweepRun(outp, len(pts), len(done), len(todo))

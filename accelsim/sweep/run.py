"""Running a sweep: batches to local processes or a Dask cluster, results written as Parquet
parts as each batch finishes, resume by skipping what is on disk."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from accelsim.errors import AccelsimError
from accelsim.outputs import check_dir, writing
from accelsim.sweep.evaluate import base_inputs, check_sweep, context, evaluate_batch
from accelsim.sweep.spec import Param, count_points, fingerprint, load_sweep, points
from accelsim.uncertainty import MAX_SAMPLES

# ------------------------------------------------------------------------------ results on disk


def _meta_path(out: Path) -> Path:
    return out / "_sweep.json"


def done_ids(out: Path) -> set[int]:
    if not out.exists():
        return set()
    ids: set[int] = set()
    for part in sorted(out.glob("part-*.parquet")):
        ids.update(_read_table(part, ["point_id"])["point_id"].tolist())
    return ids


def read_results(out: str | Path) -> pd.DataFrame:
    """All rows written so far, in point order: a results folder, or one Parquet or CSV
    table of a sweep (it has a ``point_id`` column)."""
    p = Path(out)
    if p.is_file():
        if p.suffix not in (".csv", ".parquet"):
            raise AccelsimError.single(str(p), "", "expected a results folder, a .parquet or "
                                       "a .csv file of a sweep")
        df = _read_table(p)
        if "point_id" not in df.columns:
            raise AccelsimError.single(str(p), "point_id", "missing column; expected the "
                                       "results of an accelsim sweep")
        return df
    if p.exists() and not p.is_dir():
        raise AccelsimError.single(str(p), "", "is not a regular file or a folder; expected a "
                                   "sweep's results")
    parts = sorted(p.glob("part-*.parquet"))
    if not parts:
        raise AccelsimError.single(str(p), "", "no results here (expected part-*.parquet files)")
    df = pd.concat([_read_table(x) for x in parts], ignore_index=True)
    return df.sort_values("point_id").reset_index(drop=True)


def _read_table(p: Path, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        if p.suffix == ".csv":
            return pd.read_csv(p, usecols=columns)
        return pd.read_parquet(p, columns=columns)
    except Exception as exc:  # pandas and pyarrow raise many kinds for a broken file
        what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AccelsimError.single(str(p), "", f"cannot read it as a table ({what})") from None


def _write_part(out: Path, rows: list[dict[str, Any]]) -> None:
    first = min(r["point_id"] for r in rows)
    name = out / f"part-{first:09d}-{os.getpid()}-{len(rows)}.parquet"
    tmp = name.with_suffix(".tmp")
    with writing(out, "--out"):
        pd.DataFrame(rows).to_parquet(tmp, index=False)
        os.replace(tmp, name)  # atomic: a crash never leaves a half-written part


# ------------------------------------------------------------------------------ running


Batch = list[tuple[int, dict[str, float]]]
# How long to try reaching a --scheduler before saying it is not there.
SCHEDULER_TIMEOUT = "10s"


def _execute(executor: str, workers: int, scheduler: str | None, payload: dict[str, Any],
             batches: list[Batch]) -> Iterator[list[dict[str, Any]]]:
    """Evaluate batches and yield their rows as each finishes (in completion order). Leaving
    early (Ctrl-C, SIGTERM, an error) cancels what has not started and stops the workers. A
    Dask scheduler is reached here, before any row (an unreachable one is one line)."""
    if executor == "dask":
        return _execute_dask(workers, scheduler, payload, batches)
    return _execute_local(workers, payload, batches)


def _execute_local(workers: int, payload: dict[str, Any], batches: list[Batch]
                   ) -> Iterator[list[dict[str, Any]]]:
    if workers <= 1:
        for b in batches:
            yield evaluate_batch(payload, b)
    else:
        import multiprocessing as mp

        fork = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        pool = ProcessPoolExecutor(max_workers=workers, initializer=_die_with_parent,
                                   initargs=(os.getpid(),), mp_context=fork)
        try:
            pfuts = [pool.submit(evaluate_batch, payload, b) for b in batches]
            for pf in as_completed(pfuts):
                yield pf.result()
        finally:
            _stop(pool)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel queued batches and end the workers now (not after their current batch)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=2)


def _die_with_parent(parent: int) -> None:
    """Worker initializer: exit when the sweep process is gone, even after a SIGKILL that
    let it clean nothing up (Linux: the kernel's parent-death signal; elsewhere a watchdog
    that polls the parent's pid)."""
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, if forked
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _execute_dask(workers: int, scheduler: str | None, payload: dict[str, Any],
                  batches: list[Batch]) -> Iterator[list[dict[str, Any]]]:
    from dask.distributed import Client

    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        else:
            cluster = _local_cluster(workers)
            client = Client(cluster)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise AccelsimError.single("sweep", "--scheduler", f"cannot reach a Dask scheduler at "
                                   f"{scheduler or 'the local cluster'} ({exc}); expected "
                                   "tcp://HOST:PORT of a running scheduler") from None
    return _dask_rows(client, cluster, payload, batches)


def _local_cluster(workers: int) -> Any:
    """A Dask cluster of ``workers`` processes on this machine. Where processes can be
    forked (Linux), its workers are forked from this process, as the local executor's are:
    they inherit the imports, the compiled kernels and the sweep's base context built
    here, instead of each starting a new interpreter that imports and builds them again
    (Dask's default, spawn: 2-3 s per worker on the reference machine)."""
    import multiprocessing as mp

    import dask
    from dask.distributed import LocalCluster

    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with dask.config.set({"distributed.worker.multiprocessing-method": method, **QUIET}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            host="127.0.0.1", dashboard_address=None)


# The sweep's own local cluster runs one CPU-bound task per worker: what Dask's workers do
# beside it by default (a stack sample every 10 ms for its profiler, the event loop's 20 ms
# health tick, memory checks every 100 ms, system metrics every 0.5 s) takes the worker's
# GIL from the task; here they run rarely or not at all (a cluster given by --scheduler
# keeps its own settings).
QUIET = {"distributed.worker.profile.enabled": False,
         "distributed.admin.tick.interval": "1s",
         "distributed.worker.memory.monitor-interval": "1s",
         "distributed.admin.system-monitor.interval": "2s"}


def _dask_rows(client: Any, cluster: Any, payload: dict[str, Any], batches: list[Batch]
               ) -> Iterator[list[dict[str, Any]]]:
    from dask.distributed import as_completed as dask_completed

    try:
        futs = [client.submit(evaluate_batch, payload, b, pure=False) for b in batches]
        try:
            for fut in dask_completed(futs):
                yield fut.result()
        finally:
            client.cancel(futs)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


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
              limit: int | None = None, params: dict[str, Param] | None = None,
              check: bool = True) -> SweepRun:
    """Evaluate every point (or the first ``limit``) and write results as batches finish.
    ``params`` replaces parameters' values (e.g. coarser grids for a quick run); ``check``
    False skips :func:`check_sweep` (the caller has run it)."""
    if not 0 <= samples <= MAX_SAMPLES:
        raise AccelsimError.single(str(sweep_path), "--samples", f"expected 0 to "
                                   f"{MAX_SAMPLES:,} uncertainty draws per point, got "
                                   f"{samples:,}")
    spec, base = load_sweep(sweep_path)
    if params:
        spec = spec.model_copy(update={"parameters": {**spec.parameters, **params}})
    count_points(spec, str(sweep_path))  # too many points, broken paths or metrics: refused
    if check:  # before any work
        check_sweep(spec, str(sweep_path), str(base))
    base_text = base.read_text(encoding="utf-8")
    inputs = {str(f): f.read_text(encoding="utf-8", errors="replace")
              for f in base_inputs(base)}
    fp = fingerprint(spec, base_text, samples, inputs)
    outp = Path(out)
    check_dir(outp, "--out")
    with _lock(outp):
        return _run_locked(spec, sweep_path, base, outp, fp, inputs, samples, resume, limit,
                           executor, workers, scheduler, batch_size, progress)


@contextmanager
def _lock(out: Path) -> Iterator[None]:
    """One writer per results folder: an exclusive advisory lock on ``out/_lock`` held for
    the whole run (released by the kernel if the process dies)."""
    with writing(out, "--out"):
        out.mkdir(parents=True, exist_ok=True)
        fh = (out / "_lock").open("a+")
    try:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not POSIX: no lock
            pass
        except OSError:
            fh.seek(0)
            owner = fh.read().strip() or "?"
            raise AccelsimError.single(str(out), "--out", f"another sweep (pid {owner}) is "
                                       "writing to this folder; wait for it to finish or "
                                       "choose another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield
    finally:
        fh.close()


def _run_locked(spec: Any, sweep_path: str | Path, base: Path, outp: Path, fp: str,
                inputs: dict[str, str], samples: int, resume: bool, limit: int | None,
                executor: str, workers: int, scheduler: str | None, batch_size: int | None,
                progress: Callable[[int, int], None] | None) -> SweepRun:
    if done_ids(outp):  # results (not just the metadata of a run that failed to start)
        meta = json.loads(_meta_path(outp).read_text()) if _meta_path(outp).exists() else {}
        if not resume:
            raise AccelsimError.single(str(outp), "--out", "results already exist; use "
                                       "--resume to continue or choose another --out")
        if meta.get("fingerprint") != fp:
            raise AccelsimError.single(str(outp), "--out", "these results come from a "
                                       "different sweep, base, device, model or stack file; "
                                       "cannot resume")
    pts = points(spec, str(sweep_path))
    if limit is not None:
        pts = pts[:limit]
    with writing(outp, "--out"):
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
    if batches:
        # the base evaluated once here: forked local workers inherit it, others (Dask) find
        # its device evaluations in the cache
        context(fp, str(base), spec.metrics)
    finished = len(done)
    if not batches:
        if progress:
            progress(finished, len(pts))
        return SweepRun(outp, len(pts), len(done), 0)
    results = _execute(executor, workers, scheduler, payload, batches)  # reach the workers
    if progress:
        progress(finished, len(pts))
    for rows in results:
        _write_part(outp, rows)
        finished += len(rows)
        if progress:
            progress(finished, len(pts))
    return SweepRun(outp, len(pts), len(done), len(todo))

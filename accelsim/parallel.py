"""Independent tasks over worker processes: one per core, forked from this process (they
inherit what it has loaded: compiled kernels, parsed profiles, registered workloads), with
the results in the order of the tasks.

``ACCELSIM_WORKERS`` sets the number of processes (1: everything in this process). A
worker process never starts workers of its own (but for a staged pool's first process,
:func:`imap`), and where processes cannot be forked (Windows, macOS's default) everything
runs in this process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def workers(tasks: int) -> int:
    """Processes for ``tasks`` independent tasks."""
    import multiprocessing as mp

    if tasks < 2 or mp.parent_process() is not None or "fork" not in mp.get_all_start_methods():
        return 1
    env = os.environ.get("ACCELSIM_WORKERS", "")
    if env.isdigit() and int(env) > 0:
        n = int(env)
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count() or 1
    return max(1, min(n, tasks))


def warm_compiled() -> None:
    """Set up numba's CPU target in this process (its typing and lowering registries, and
    the scipy.linalg import its BLAS check makes): what the first compiled kernel a
    process loads pays, 0.3-0.7 s on the reference machine, the rest of a cached kernel's
    load being about 20 ms. Done before forking, the workers inherit it instead of each
    paying it."""
    from numba.core.registry import cpu_target

    cpu_target.typing_context.refresh()
    cpu_target.target_context.refresh()


@contextlib.contextmanager
def _pool(n: int) -> Iterator[Any]:
    """``n`` forked worker processes. When the block raises (a task's error, the caller's)
    or the caller stops early, the tasks not yet started are cancelled rather than run to
    the end before the error reaches the user; the running ones finish."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(n, mp_context=mp.get_context("fork"))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _set_up(preload: Sequence[str], compiled: bool) -> None:
    import importlib

    for name in preload:
        importlib.import_module(name)
    if compiled:
        warm_compiled()


def _staged(fn: Callable[..., T], tasks: Sequence[tuple[Any, ...]], n: int, compiled: bool,
            preload: Sequence[str]) -> list[tuple[int, T]]:
    """In a first worker process: the set-up, then ``n`` workers forked from here."""
    from concurrent.futures import as_completed

    _set_up(preload, compiled)
    with _pool(n) as pool:
        futs = {pool.submit(fn, *task): i for i, task in enumerate(tasks)}
        return [(futs[fut], fut.result()) for fut in as_completed(futs)]


def imap(fn: Callable[..., T], tasks: Sequence[tuple[Any, ...]], compiled: bool = False,
         preload: Sequence[str] = (), after: Sequence[str] = (),
         meanwhile: Callable[[], Any] | None = None, staged: bool = False
         ) -> Iterator[tuple[int, T]]:
    """``(index, fn(*task))`` for every task, as each finishes (in worker processes when
    :func:`workers` gives more than one, else here in order). ``compiled``: the tasks run
    numba kernels, so the workers are forked after :func:`warm_compiled`; ``preload``:
    modules the tasks import, imported first so that the workers inherit them; ``after``:
    modules the caller needs next (not the tasks), imported here while the workers run
    rather than before they fork; ``meanwhile``: work of the caller's own, run here while
    they run (first, when everything runs here). ``staged``: the set-up (``preload``,
    numba's) runs in a first worker process, which then forks the workers and hands
    their results back at the end, so that the caller's ``after`` and ``meanwhile`` work
    runs beside the set-up instead of after it (on two cores, the second core is busy
    from the start)."""
    n = workers(len(tasks))
    if n == 1:
        if meanwhile is not None:
            meanwhile()
        for i, task in enumerate(tasks):
            yield i, fn(*task)
        return
    import importlib
    from concurrent.futures import as_completed

    if staged:
        with _pool(1) as first:
            got = first.submit(_staged, fn, tasks, n, compiled, tuple(preload))
            for name in after:
                importlib.import_module(name)
            if meanwhile is not None:
                meanwhile()
            yield from got.result()
        return
    _set_up(preload, compiled)
    with _pool(n) as pool:
        futs = {pool.submit(fn, *task): i for i, task in enumerate(tasks)}
        for name in after:
            importlib.import_module(name)
        if meanwhile is not None:
            meanwhile()
        for fut in as_completed(futs):
            yield futs[fut], fut.result()


def map_ordered(fn: Callable[..., T], tasks: Sequence[tuple[Any, ...]], compiled: bool = False
                ) -> list[T]:
    """``[fn(*task) for task in tasks]``, in worker processes where there are several."""
    out: dict[int, T] = dict(imap(fn, tasks, compiled))
    return [out[i] for i in range(len(tasks))]

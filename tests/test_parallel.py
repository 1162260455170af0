"""Worker processes: the results of every task, in order, with and without numba's target
set up before forking (:func:`accelsim.parallel.warm_compiled`)."""

import numpy as np
import pytest

from accelsim import parallel
from accelsim.llm.engine import run_fast
from accelsim.llm.job import LLMJob
from accelsim.llm.pool import models


def _job() -> LLMJob:
    return LLMJob.model_validate({
        "replicas": [{"device": "h100-sxm", "model": "llama2-70b", "tp": 4}],
        "arrivals": {"rate_qps": 1.0},
        "prompt_tokens": {"dist": "lognormal", "mean": 500, "cv": 1.0, "max": 4000},
        "output_tokens": {"dist": "lognormal", "mean": 50, "cv": 1.0, "max": 500},
        "sim": {"requests": 200, "warmup": 10}})


def _done(rate: float) -> float:
    """The last completion of 200 requests at ``rate`` through the compiled scheduler."""
    rm = models(_job())[0]
    n = 200
    arr = np.arange(n) / rate
    out = run_fast(arr, np.full(n, 500), np.full(n, 50), rm)
    return float(np.nanmax(out.done_s))


@pytest.mark.parametrize("compiled", [False, True])
def test_worker_results_come_back_in_order_and_equal_to_serial(monkeypatch, compiled):
    tasks = [(r,) for r in (0.5, 1.0, 2.0, 4.0)]
    serial = [_done(*t) for t in tasks]
    monkeypatch.setenv("ACCELSIM_WORKERS", "2")
    assert parallel.map_ordered(_done, tasks, compiled) == serial


def _check(x: int) -> int:
    if x == 2:
        from accelsim.errors import AccelsimError

        raise AccelsimError.single("f.yaml", "workloads.chatbot", "does not fit")
    return x


def test_a_worker_error_reaches_the_caller_as_the_same_error(monkeypatch):
    """An AccelsimError raised in a worker process is raised in the caller with its
    problems (the CLI prints them as its usual one-line error)."""
    from accelsim.errors import AccelsimError

    monkeypatch.setenv("ACCELSIM_WORKERS", "2")
    assert parallel.workers(3) == 2
    with pytest.raises(AccelsimError) as err:
        parallel.map_ordered(_check, [(1,), (2,), (3,)])
    assert [str(p) for p in err.value.problems] == ["f.yaml: workloads.chatbot: does not fit"]


def _mark(folder: str, x: int) -> int:
    """Task ``x`` leaves a file in ``folder``; task 0 fails at once, the others take 50 ms."""
    import pathlib
    import time

    if x == 0:
        raise ValueError("task 0 fails")
    time.sleep(0.05)
    (pathlib.Path(folder) / str(x)).touch()
    return x


def test_a_worker_error_cancels_the_tasks_not_yet_started(monkeypatch, tmp_path):
    """The first task fails: the error reaches the caller without the 59 queued tasks
    behind it being run first (only those already handed to a worker finish)."""
    monkeypatch.setenv("ACCELSIM_WORKERS", "2")
    with pytest.raises(ValueError, match="task 0 fails"):
        parallel.map_ordered(_mark, [(str(tmp_path), x) for x in range(60)])
    assert len(list(tmp_path.iterdir())) < 30


def test_the_modules_needed_after_are_imported_while_the_workers_run(monkeypatch):
    import sys

    monkeypatch.setenv("ACCELSIM_WORKERS", "2")
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    got = dict(parallel.imap(_check, [(1,), (3,)], after=("colorsys",)))
    assert got == {0: 1, 1: 3} and "colorsys" in sys.modules


def test_the_workers_fork_before_pandas_is_imported():
    """A fleet evaluation's modules (the simulators' included) import no pandas: the
    workers fork without it and the caller imports it while they run."""
    import subprocess
    import sys

    code = ("import sys, accelsim.fleet.evaluation, accelsim.serving.sim, accelsim.llm.sim, "
            "accelsim.workloads.recsys, accelsim.workloads.training; "
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("n", ["1", "2"])
def test_the_callers_own_work_runs_once_here_beside_the_tasks(monkeypatch, n):
    import os

    monkeypatch.setenv("ACCELSIM_WORKERS", n)
    ran: list[int] = []
    got = dict(parallel.imap(_check, [(1,), (3,)], meanwhile=lambda: ran.append(os.getpid())))
    assert got == {0: 1, 1: 3} and ran == [os.getpid()]


@pytest.mark.parametrize("compiled", [False, True])
def test_a_staged_pool_gives_the_serial_results_and_sets_up_in_its_first_worker(
        monkeypatch, compiled):
    """Staged (the set-up in a first worker process, which forks the others): the serial
    results, the preloaded module loaded there and not here, the caller's own work here,
    and a worker's error raised here as itself."""
    import os
    import sys

    from accelsim.errors import AccelsimError

    tasks = [(r,) for r in (0.5, 1.0, 2.0, 4.0)]
    serial = [_done(*t) for t in tasks]
    monkeypatch.setenv("ACCELSIM_WORKERS", "2")
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    ran: list[int] = []
    got = dict(parallel.imap(_done, tasks, compiled, preload=("colorsys",), staged=True,
                             meanwhile=lambda: ran.append(os.getpid())))
    assert [got[i] for i in range(len(tasks))] == serial
    assert ran == [os.getpid()] and "colorsys" not in sys.modules
    with pytest.raises(AccelsimError) as err:
        list(parallel.imap(_check, [(1,), (2,), (3,)], staged=True))
    assert [str(p) for p in err.value.problems] == ["f.yaml: workloads.chatbot: does not fit"]

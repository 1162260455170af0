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

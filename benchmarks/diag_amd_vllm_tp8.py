"""Diagnostics of the AMD vLLM TP8 held-out rows (known misses until 2026-12-07)
(configs/runs/heldout/amd-vllm-mi300x.yaml, issue 21; docs/validation.md): for each
row, the extra cost that would zero its error in three forms, found by bisection on the row's
own prediction. Nothing here is fitted into a shipped
number: the rows are held out.

  host us / seq       vllm-rocm's ``iteration.host_seq_us`` raised by this much (a host cost
                      per sampling sequence, the same whatever the model)
  us / (seq x layer)  the same divided by the model's layers (a cost per sequence and layer)
  KV-read factor      the decode attention's KV read (``c_kv_read``) this many times slower

Run: ``python benchmarks/diag_amd_vllm_tp8.py`` (about 10 s).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import accelsim.llm.perf as perf
import accelsim.llm.pool as pool
from accelsim import stacks
from accelsim.runs import KINDS, load_runs
from accelsim.transformer.model import load_model

FILE = Path(__file__).resolve().parents[1] / "configs/runs/heldout/amd-vllm-mi300x.yaml"
HOST = stacks.load_stack("vllm-rocm").iteration
BASE_US = HOST.host_seq_us.value if HOST else 0.0


@contextmanager
def kv_slower(factor: float) -> Iterator[None]:
    """The replicas' decode KV read ``factor`` times slower (the fast path reads the models
    through :mod:`accelsim.llm.pool`)."""
    orig = pool.replica_model

    def slower(*a, **k):  # type: ignore[no-untyped-def]
        m = perf.replica_model(*a, **k)
        return dataclasses.replace(m, c_kv_read=m.c_kv_read * factor)

    pool.replica_model = slower
    try:
        yield
    finally:
        pool.replica_model = orig


def _error(run, path: str) -> float:  # type: ignore[no-untyped-def]
    return KINDS[run.kind].predict(run, path).value / run.published.value - 1.0


def _zero(run, path: str, within: Callable[[float], object], lo: float,  # type: ignore[no-untyped-def]
          hi: float, steps: int = 16) -> float:
    """The knob value in [lo, hi] that zeroes the row's (decreasing) error."""
    for _ in range(steps):
        mid = (lo + hi) / 2
        with within(mid):  # type: ignore[attr-defined]
            err = _error(run, path)
        lo, hi = (mid, hi) if err > 0 else (lo, mid)
    return (lo + hi) / 2


def main() -> None:
    path = str(FILE)
    print("| row | error | host us / seq | us / (seq x layer) | KV-read factor |")
    print("|---|---|---|---|---|")
    for run in load_runs(FILE).runs:
        layers = load_model(run.replica.model).layers

        def host(extra: float):  # type: ignore[no-untyped-def]
            return stacks.overridden({"vllm-rocm": {"iteration.host_seq_us": BASE_US + extra}})

        us = _zero(run, path, host, 0.0, 100.0)
        k = _zero(run, path, kv_slower, 1.0, 10.0)
        print(f"| {run.id} | {100 * _error(run, path):+.1f} % | {us:.1f} | "
              f"{us / layers:.3f} | {k:.2f} |")


if __name__ == "__main__":
    main()

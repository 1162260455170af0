"""The TensorRT-LLM perf overview across its releases (tests/data/trtllm-perf-overview-releases.csv;
docs/_notes/trtllm-perf-overview-misses.md, "Release history").

The held-out rows read the v1.0 page (NVIDIA/TensorRT-LLM docs/source/performance/perf-overview.md
at 00f37686). The same trtllm-bench command on the same datasets was published at v0.19, v0.20
(twice: once with CUDA graphs disabled by accident) and v0.21. How far one cell moves between
releases is the noise floor under a held-out comparison with one of them.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from accelsim import stacks
from accelsim.runs import KINDS, load_runs

DATA = Path(__file__).resolve().parents[1] / "data" / "trtllm-perf-overview-releases.csv"
HELDOUT = Path(__file__).resolve().parents[2] / "configs/runs/heldout"
RELEASES = ("v0.19", "v0.20", "v0.20-nocg", "v0.21", "v1.0")


def _table() -> dict[tuple[str, str], dict[str, float]]:
    rows = csv.DictReader(line for line in open(DATA, newline="") if not line.startswith("#"))
    return {(r["column"], f'{r["isl"]}-{r["osl"]}'): {k: float(r[k]) for k in RELEASES if r[k]}
            for r in rows}


def _run(cell: tuple[str, str]):
    model, gpu, tp = cell[0].split("-")
    rid = f"trtllm-llama3-{model}-{gpu}-{tp}-{cell[1]}"
    for path in (HELDOUT / "trtllm-perf-overview.yaml",
                 HELDOUT / "misses/trtllm-perf-overview.yaml"):
        for run in load_runs(path).runs:
            if run.id == rid:
                return str(path), run
    raise LookupError(rid)


def test_the_v1_0_figures_are_the_held_out_rows():
    t = _table()
    for cell in (("405b-h100-tp8", "20000-2000"), ("405b-h100-tp8", "500-2000"),
                 ("8b-h100-tp1", "128-2048"), ("405b-h200-tp8", "20000-2000")):
        _, run = _run(cell)
        assert t[cell]["v1.0"] == run.published.value


def test_the_h100_405b_cells_of_the_misses_move_more_between_releases_than_their_h200_twins():
    """405B at 20000/2000: H100 316.8 (v0.20 without CUDA graphs) to 372.1, 17 % apart, the
    H200 twin 505 to 520 (3 %); at 500/2000 the v1.0 H100 figure (3,994) is 8.9 % above the
    median of the four earlier pages (3,662-3,840) while its H200 twin fell 2 %."""
    t = _table()

    def spread(cell: tuple[str, str]) -> float:
        v = t[cell].values()
        return max(v) / min(v) - 1

    assert spread(("405b-h100-tp8", "20000-2000")) > 0.15
    assert spread(("405b-h200-tp8", "20000-2000")) < 0.04
    h100 = t[("405b-h100-tp8", "500-2000")]
    earlier = statistics.median(v for k, v in h100.items() if k != "v1.0")
    assert h100["v1.0"] / earlier - 1 == pytest.approx(0.089, abs=0.005)
    h200 = t[("405b-h200-tp8", "500-2000")]
    assert h200["v1.0"] < statistics.median(v for k, v in h200.items() if k != "v1.0")


def test_the_405b_20k_rows_against_every_release_with_cuda_graphs():
    """With TensorRT-LLM's one-shot all-reduce at <= 128 tokens (configs/stacks/tensorrt-llm.yaml
    ``allreduce.oneshot_max_tokens``) the 405B H200 20000/2000 row is within 2 % of every page
    that ran CUDA graphs and has the cell (v0.19, v0.21, v1.0) and the H100 row within 7 % of
    the three before v1.0 (+3.8 to +6.3 %); with the two-shot price the H200 row is 5-7 % over
    every one, the H100 row 7.7-16.1 % over. The H100 row's v1.0 figure (345) is the lowest of
    those four pages; the row stays in the misses file (+12.0 % against it)."""
    t = _table()
    for gpu, tol_now, lo_off in (("h200", 0.02, 0.04), ("h100", 0.125, 0.07)):
        cell = (f"405b-{gpu}-tp8", "20000-2000")
        path, run = _run(cell)
        pred = KINDS[run.kind].predict(run, path).value
        with stacks.overridden({"tensorrt-llm": {"allreduce.oneshot_max_tokens": 0}}):
            two = KINDS[run.kind].predict(run, path).value
        assert pred < two
        graphs = {k: v for k, v in t[cell].items() if k != "v0.20-nocg"}
        for rel, v in graphs.items():
            assert abs(pred / v - 1) < (tol_now if rel == "v1.0" or gpu == "h200" else 0.07), rel
            assert two / v - 1 > lo_off, rel


def _column_errors(columns: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Mean error (predicted / published - 1) of each column's ISL/OSL rows per page, without
    128/128 (host- or max_batch-bound, not a decode step)."""
    t = _table()
    runs = {}
    for path in (HELDOUT / "trtllm-perf-overview.yaml",
                 HELDOUT / "misses/trtllm-perf-overview.yaml",
                 HELDOUT.parent / "trtllm-h100-fp8.yaml"):
        for run in load_runs(path).runs:
            runs[run.id] = (str(path), run)
    out: dict[str, dict[str, float]] = {}
    for col in columns:
        errs: dict[str, list[float]] = {rel: [] for rel in RELEASES}
        for (c, cell), pages in t.items():
            if c != col or cell == "128-128":
                continue
            model, gpu, tp = col.split("-")
            path, run = runs[f"trtllm-llama3-{model}-{gpu}-{tp}-{cell}"]
            pred = KINDS[run.kind].predict(run, path).value
            for rel, v in pages.items():
                errs[rel].append(pred / v - 1)
        out[col] = {rel: statistics.mean(e) for rel, e in errs.items() if e}
    return out


def test_the_h100_under_prediction_is_the_8b_column_not_the_device():
    """docs/_notes/trtllm-perf-overview-misses.md, "H100 against H200, every page" (branch
    trth100): the 8B on one H100 is under-predicted on every page (-3.4 to -7.0 %), but the 70B
    on two H100 is over-predicted on every page before v1.0 (+9.6 to +12.5 %) and the 405B on
    eight H100 sits with its H200 twin (mean over the pages -2.3 against -2.6 %). A term that
    makes the H100 faster (its streaming share, its KV capacity) would take the 70B H100 column
    further over on four pages of five; no device-wide H100/H200 mechanism fits the table."""
    e = _column_errors(("8b-h100-tp1", "70b-h100-tp2", "405b-h100-tp8", "405b-h200-tp8"))
    assert all(-0.08 < v < -0.025 for v in e["8b-h100-tp1"].values())
    assert all(v > 0.07 for rel, v in e["70b-h100-tp2"].items() if rel != "v1.0")
    h100, h200 = (statistics.mean(e[c].values()) for c in ("405b-h100-tp8", "405b-h200-tp8"))
    assert abs(h100 - h200) < 0.02


def test_kv_capacity_and_trtllm_bench_limits_cannot_close_the_8b_h100_rows():
    """The 8B H100 decode rows are KV-bound below trtllm-bench's max_batch_size (the tuning
    formula, accelsim/llm/trtllm_bench.py: 128/2048 B 493 against 640), and throughput moves
    little with the batch there (the step is ~linear in B): with 50 % more device memory (its
    batch 493 -> 778, +58 %, under the then 896 of max_batch_size) the 128/2048 row still reads
    below -5 % (-10.2 % today)."""
    from accelsim import devices
    from accelsim.llm.pool import models

    path = str(HELDOUT / "misses/trtllm-perf-overview.yaml")
    run = next(r for r in load_runs(path).runs if r.id == "trtllm-llama3-8b-h100-tp1-128-2048")
    rm = models(run.job(path, 1e6), path)[0]
    assert rm.max_seqs == 640
    assert rm.kv_tokens / (run.input_tokens + run.output_tokens) < 0.8 * rm.max_seqs
    with devices.overridden({"h100-sxm": {"memory.memory_GiB": 1.5 * 79.65}}):
        more = KINDS[run.kind].predict(run, path).value
        big = models(run.job(path, 1e6), path)[0]
    assert big.kv_tokens > 1.5 * rm.kv_tokens
    assert more / run.published.value - 1 < -0.05

"""Best parallel layout for a model on N devices: enumerate every valid Megatron layout,
estimate all of them in one vectorized pass, keep those that fit, rank by tokens/s."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from accelsim.devices import load_device
from accelsim.errors import AccelsimError
from accelsim.training.job import RECOMPUTE_CODE, Parallelism, TrainJob, TransformerModel
from accelsim.training.perf import (
    device_columns,
    estimate_frame,
    job_columns,
    model_columns,
)

MICRO_BATCHES = (1, 2, 4, 8)
MAX_VIRTUAL = 8
CODE_RECOMPUTE = {v: k for k, v in RECOMPUTE_CODE.items()}


def _divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0]


def _pow2_upto(n: int) -> list[int]:
    out, k = [], 1
    while k <= n:
        out.append(k)
        k *= 2
    return out


def default_global_batch(model: TransformerModel) -> int:
    """About 4 Mi tokens per step (GPT-3 used 3.2 M), in whole sequences."""
    return max(1, round(4 * 2**20 / model.seq_len))


def candidate_layouts(model: TransformerModel, devices: int, global_batch: int,
                      domain: int) -> pd.DataFrame:
    """Every layout satisfying Megatron's divisibility rules (see ``job.layout_problems``)."""
    kv = model.n_kv_heads
    tps = [t for t in _pow2_upto(min(devices, domain, model.heads))
           if model.heads % t == 0 and model.ffn_hidden % t == 0 and (kv % t == 0 or t % kv == 0)]
    cps = [c for c in _pow2_upto(16) if model.seq_len % c == 0
           and (c == 1 or model.seq_len // c >= 4096)]
    pps = _divisors(model.layers)
    experts = model.moe.experts if model.moe else 1
    rows = []
    for t, c, p in itertools.product(tps, cps, pps):
        if devices % (t * c * p):
            continue
        d = devices // (t * c * p)
        eps = [e for e in _divisors(experts) if (d * c) % e == 0] if model.moe else [1]
        for e, b in itertools.product(eps, MICRO_BATCHES):
            if global_batch % (d * b):
                continue
            m = global_batch // (d * b)
            vs = [1] + [v for v in range(2, MAX_VIRTUAL + 1)
                        if p > 1 and model.layers % (p * v) == 0 and m % p == 0]
            for v in vs:
                rows.append((t, p, d, c, e, b, v))
    if not rows:
        raise AccelsimError.single(
            "train-search", "--devices",
            f"no valid layout of {devices} devices for this model and global batch "
            f"{global_batch} (tp must divide heads, pp the layers, dp*micro_batch the batch)",
        )
    base = pd.DataFrame(rows, columns=["tp", "pp", "dp", "cp", "ep", "micro_batch",
                                       "virtual_stages"])
    knobs = pd.DataFrame(list(itertools.product([0, 1, 2], [0, 1, 2, 3])),
                         columns=["recompute", "zero"])
    return base.merge(knobs, how="cross")


@dataclass(frozen=True)
class SearchResult:
    best: TrainJob | None
    table: pd.DataFrame  # every evaluated layout, best first; ``fits_memory`` marks feasible
    evaluated: int


def search_layouts(model: TransformerModel, device: str, devices: int,
                   global_batch: int | None = None, precision: str = "bf16",
                   attention: str = "flash") -> SearchResult:
    """Evaluate every valid layout; the best is the fastest that fits in memory."""
    spec = load_device(device).spec
    spec.flops(precision, where="train-search")
    gb = global_batch or default_global_batch(model)
    cand = candidate_layouts(model, devices, gb, spec.scaleup_domain)
    cand["sequence_parallel"] = (cand["tp"] > 1).astype(int)
    cand["global_batch"] = gb
    for k, val in {**model_columns(model), **device_columns(spec, precision),
                   **job_columns(precision, attention)}.items():
        cand[k] = val
    est = estimate_frame(cand)
    layout_cols = ["tp", "pp", "dp", "cp", "ep", "micro_batch", "virtual_stages", "recompute",
                   "zero"]
    table = pd.concat([cand[layout_cols], est], axis=1)
    table["recompute"] = table["recompute"].map(CODE_RECOMPUTE)
    table = table.sort_values(["fits_memory", "tokens_per_s", "memory_per_device_gib"],
                              ascending=[False, False, True], kind="stable")
    table = table.reset_index(drop=True)
    best = None
    if bool(table["fits_memory"].iloc[0]):
        r = table.iloc[0]
        best = TrainJob(
            device=device, model=model, global_batch=gb, precision=precision,  # type: ignore[arg-type]
            attention=attention,  # type: ignore[arg-type]
            parallelism=Parallelism(
                tp=int(r.tp), pp=int(r.pp), dp=int(r.dp), cp=int(r.cp), ep=int(r.ep),
                micro_batch=int(r.micro_batch), virtual_stages=int(r.virtual_stages),
                sequence_parallel=bool(r.tp > 1), recompute=r.recompute, zero=int(r.zero),
            ),
        )
    return SearchResult(best=best, table=table, evaluated=len(table))


def feasible(table: pd.DataFrame) -> pd.DataFrame:
    return table[np.asarray(table["fits_memory"], dtype=bool)]

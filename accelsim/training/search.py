"""Best parallel layout for a model on N devices: enumerate every valid Megatron layout,
estimate all of them in one vectorized pass, keep those that fit, rank by tokens/s."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from accelsim.devices import DeviceLike, DeviceSpec, as_spec
from accelsim.errors import AccelsimError
from accelsim.training.job import (
    RECOMPUTE,
    Parallelism,
    TrainJob,
    TransformerModel,
    layout_rules,
)
from accelsim.training.perf import (
    device_columns,
    estimate_frame,
    job_columns,
    model_columns,
)

MICRO_BATCHES = (1, 2, 4, 8)
MAX_VIRTUAL = 8


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
    """Every layout of the search space that satisfies Megatron's divisibility rules
    (:func:`accelsim.training.job.layout_rules`, the one copy): tp a power of two within the
    scale-up domain, cp a power of two up to 16 keeping >= 4096 tokens per rank, pp any
    divisor, micro-batch 1-8, up to 8 virtual stages, then recompute x ZeRO."""
    tps = _pow2_upto(min(devices, domain, model.heads))
    cps = [c for c in _pow2_upto(16) if c == 1 or model.seq_len // c >= 4096]
    pps = [p for p in range(1, model.layers + 1) if model.layers % p == 0]
    experts = model.moe.experts if model.moe else 1
    eps = _divisors(experts)
    grid = np.array(list(itertools.product(tps, cps, pps, eps, MICRO_BATCHES,
                                           range(1, MAX_VIRTUAL + 1))), dtype=np.int64)
    t, c, p, e, b, v = grid.T
    whole = devices % (t * c * p) == 0  # dp = devices / (tp cp pp) must be a whole number
    t, c, p, e, b, v = (x[whole] for x in (t, c, p, e, b, v))
    d = devices // (t * c * p)
    broken = np.zeros(len(t), dtype=bool)
    for _, bad, _ in layout_rules(model, t, p, d, c, e, b, v, global_batch):
        broken |= np.broadcast_to(bad, broken.shape)
    ok = ~broken
    if not ok.any():
        raise AccelsimError.single(
            "train-search", "--devices",
            f"no valid layout of {devices} devices for this model and global batch "
            f"{global_batch} (tp must divide heads, pp the layers, dp*micro_batch the batch)",
        )
    base = pd.DataFrame({"tp": t[ok], "pp": p[ok], "dp": d[ok], "cp": c[ok], "ep": e[ok],
                         "micro_batch": b[ok], "virtual_stages": v[ok]})
    knobs = pd.DataFrame(list(itertools.product(range(len(RECOMPUTE)), [0, 1, 2, 3])),
                         columns=["recompute", "zero"])
    return base.merge(knobs, how="cross")


@dataclass(frozen=True)
class SearchResult:
    best: TrainJob | None  # its ``device`` is the spec's name; estimate it with ``spec``
    spec: DeviceSpec
    table: pd.DataFrame  # every evaluated layout, best first; ``fits_memory`` marks feasible
    evaluated: int


def search_layouts(model: TransformerModel, device: DeviceLike, devices: int,
                   global_batch: int | None = None, precision: str = "bf16",
                   attention: str = "flash") -> SearchResult:
    """Evaluate every valid layout on ``device`` (a resolved DeviceSpec or DeviceProfile);
    the best is the fastest that fits in memory."""
    spec = as_spec(device, "train-search")
    spec.flops(precision, where="train-search")
    if global_batch is not None and global_batch < 1:
        raise AccelsimError.single("train-search", "--global-batch",
                                   f"expected a whole number of sequences >= 1, got {global_batch}")
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
    table["recompute"] = table["recompute"].map(dict(enumerate(RECOMPUTE)))
    table = table.sort_values(["fits_memory", "tokens_per_s", "memory_per_device_gib"],
                              ascending=[False, False, True], kind="stable")
    table = table.reset_index(drop=True)
    best = None
    if bool(table["fits_memory"].iloc[0]):
        r = table.iloc[0]
        best = TrainJob(
            device=spec.name, model=model, global_batch=gb, precision=precision,  # type: ignore[arg-type]
            attention=attention,  # type: ignore[arg-type]
            parallelism=Parallelism(
                tp=int(r.tp), pp=int(r.pp), dp=int(r.dp), cp=int(r.cp), ep=int(r.ep),
                micro_batch=int(r.micro_batch), virtual_stages=int(r.virtual_stages),
                sequence_parallel=bool(r.tp > 1), recompute=r.recompute, zero=int(r.zero),
            ),
        )
    return SearchResult(best=best, spec=spec, table=table, evaluated=len(table))


def feasible(table: pd.DataFrame) -> pd.DataFrame:
    return table[np.asarray(table["fits_memory"], dtype=bool)]

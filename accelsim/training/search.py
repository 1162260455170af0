"""Best parallel layout for a model on N devices: enumerate every valid Megatron layout,
estimate all of them in one vectorized pass, keep those that fit, rank by tokens/s."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from accelsim.devices import DeviceSpec, require_spec
from accelsim.errors import AccelsimError
from accelsim.training.job import RECOMPUTE, Parallelism, TrainJob, layout_rules
from accelsim.training.perf import (
    device_columns,
    estimate_columns,
    job_columns,
    model_columns,
)
from accelsim.transformer.model import TransformerModel

if TYPE_CHECKING:
    import pandas as pd

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


def candidate_columns(model: TransformerModel, devices: int, global_batch: int,
                      domain: int) -> dict[str, np.ndarray]:
    """Every layout of the search space that satisfies Megatron's divisibility rules
    (:func:`accelsim.training.job.layout_rules`, the one copy): tp a power of two within the
    scale-up domain, cp a power of two up to 16 keeping >= 4096 tokens per rank, pp any
    divisor, micro-batch 1-8, up to 8 virtual stages, then recompute x ZeRO. Columns of
    equal length; recompute as its code (:data:`RECOMPUTE`)."""
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
    knobs = np.array(list(itertools.product(range(len(RECOMPUTE)), [0, 1, 2, 3])))
    n, k = int(ok.sum()), len(knobs)
    base = {"tp": t[ok], "pp": p[ok], "dp": d[ok], "cp": c[ok], "ep": e[ok],
            "micro_batch": b[ok], "virtual_stages": v[ok]}
    cols = {name: np.repeat(x, k) for name, x in base.items()}  # each layout x every knob
    cols["recompute"] = np.tile(knobs[:, 0], n)
    cols["zero"] = np.tile(knobs[:, 1], n)
    return cols


def candidate_layouts(model: TransformerModel, devices: int, global_batch: int,
                      domain: int) -> pd.DataFrame:
    """:func:`candidate_columns` as a DataFrame (the batch API's input rows)."""
    import pandas as pd

    return pd.DataFrame(candidate_columns(model, devices, global_batch, domain))


LAYOUT_COLUMNS = ("tp", "pp", "dp", "cp", "ep", "micro_batch", "virtual_stages", "recompute",
                  "zero")


@dataclass(frozen=True)
class SearchResult:
    """Every evaluated layout, best first: ``columns`` holds the layout and estimate columns
    (``fits_memory`` marks feasible; ``recompute`` by name); ``best`` is the fastest that
    fits (None if none does), its ``device`` the spec's name: estimate it with ``spec``."""

    best: TrainJob | None
    spec: DeviceSpec
    columns: dict[str, np.ndarray]
    evaluated: int

    @property
    def table(self) -> pd.DataFrame:
        """The columns as a DataFrame (built on access; pandas is imported here)."""
        import pandas as pd

        return pd.DataFrame(self.columns)

    def records(self, columns: list[str], top: int, fitting: bool = True
                ) -> list[dict[str, Any]]:
        """The first ``top`` rows as dicts: of the layouts that fit, or (``fitting`` False)
        of all layouts by memory needed, least first."""
        if fitting:
            idx = np.flatnonzero(self.columns["fits_memory"])[:top]
        else:
            idx = np.argsort(self.columns["memory_per_device_gib"], kind="stable")[:top]
        return [{c: _py(self.columns[c][i]) for c in columns} for i in idx]

    @property
    def n_fitting(self) -> int:
        return int(np.count_nonzero(self.columns["fits_memory"]))


def _py(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x


def search_layouts(model: TransformerModel, spec: DeviceSpec, devices: int,
                   global_batch: int | None = None, precision: str = "bf16",
                   attention: str = "flash", stack: str | None = None) -> SearchResult:
    """Evaluate every valid layout on the resolved device ``spec``; the best is the fastest
    that fits in memory (ties: less memory). ``stack`` (a ``configs/stacks`` name or path):
    its kernel factors and data-parallel overlaps, and only the schedules it has (no
    interleaving on a stack without it, no pipeline on a stack with no schedule)."""
    require_spec(spec, "train-search").flops(precision, where="train-search")
    if global_batch is not None and global_batch < 1:
        raise AccelsimError.single("train-search", "--global-batch",
                                   f"expected a whole number of sequences >= 1, got {global_batch}")
    gb = global_batch or default_global_batch(model)
    cand = candidate_columns(model, devices, gb, spec.scaleup_domain)
    extra: dict[str, float] = {}
    st = None
    if stack is not None:
        from accelsim import stacks

        st = stacks.load_stack(stack, where="train-search", field="stack")
        extra = stacks.search_columns(st)
        # a pipelined layout needs the schedule the job check asks for (1F1B, or interleaved
        # with virtual stages): a stack with neither (MaxText: no pipeline) keeps pp 1 only
        keep = np.ones(len(cand["tp"]), dtype=bool)
        if "interleaved" not in st.schedules:
            keep &= cand["virtual_stages"] == 1
        if "1f1b" not in st.schedules:
            keep &= (cand["pp"] == 1) | (cand["virtual_stages"] > 1)
        cand = {k: v[keep] for k, v in cand.items()}
    inputs: dict[str, Any] = {**cand, "sequence_parallel": (cand["tp"] > 1).astype(np.int64),
                              "global_batch": gb, **model_columns(model),
                              **device_columns(spec, precision),
                              **job_columns(precision, attention), **extra}
    n = len(cand["tp"])
    est = {k: np.broadcast_to(np.asarray(v), (n,)) for k, v in estimate_columns(inputs).items()
           if not k.startswith("_")}
    fits = np.asarray(est["fits_memory"], dtype=bool)
    # best first: fitting, then most tokens/s, then least memory (a stable sort)
    order = np.lexsort((est["memory_per_device_gib"], -est["tokens_per_s"], ~fits))
    cols = {k: cand[k][order] for k in LAYOUT_COLUMNS}
    cols["recompute"] = np.asarray(RECOMPUTE, dtype=object)[cols["recompute"]]
    cols.update({k: v[order] for k, v in est.items()})
    cols["fits_memory"] = fits[order]
    best = None
    if cols["fits_memory"][0]:
        best = TrainJob(
            device=spec.name, model=model, global_batch=gb, precision=precision,  # type: ignore[arg-type]
            attention=attention,  # type: ignore[arg-type]
            parallelism=Parallelism(
                tp=int(cols["tp"][0]), pp=int(cols["pp"][0]), dp=int(cols["dp"][0]),
                cp=int(cols["cp"][0]), ep=int(cols["ep"][0]),
                micro_batch=int(cols["micro_batch"][0]),
                virtual_stages=int(cols["virtual_stages"][0]),
                sequence_parallel=bool(cols["tp"][0] > 1), recompute=cols["recompute"][0],
                zero=int(cols["zero"][0]),
            ),
            stack=stack,
            overlap_dp_comm=bool(extra.get("overlap_dp", 1.0)),
            overlap_param_gather=bool(extra.get("overlap_ag", 1.0)),
        )
    return SearchResult(best=best, spec=spec, columns=cols, evaluated=n)


def feasible(table: pd.DataFrame) -> pd.DataFrame:
    return table[np.asarray(table["fits_memory"], dtype=bool)]

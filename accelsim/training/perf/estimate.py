"""The training model end to end: the batch API over columns (:func:`estimate_columns`, numpy
arrays in and out; :func:`estimate_frame` for pandas) and one job (:func:`estimate`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import InitVar, dataclass, fields
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

import numpy as np

from accelsim import units, xp
from accelsim.devices import DeviceSpec
from accelsim.errors import AccelsimError
from accelsim.roofline import gemm_bytes
from accelsim.training.job import TrainJob, check_job
from accelsim.training.perf.columns import (
    INPUT_COLUMNS,
    OPTIONAL_COLUMNS,
    PEAK_ACT,
    inputs,
    job_inputs,
    scalar_inputs,
)
from accelsim.training.perf.flops import flops
from accelsim.training.perf.layer import Layer, Micro, dense_layer, micro
from accelsim.training.perf.memory import memory
from accelsim.training.perf.moe import moe_layer
from accelsim.training.perf.step import (
    DataParallel,
    Stages,
    data_parallel,
    gc_stall,
    rank_params,
    stages,
)
from accelsim.training.perf.stragglers import slowest_device_factor

if TYPE_CHECKING:
    import pandas as pd


# what Python floats raise where numpy gives inf or nan (the formulas then rerun on arrays)
_FLOAT_ERRORS = (ZeroDivisionError, OverflowError, ValueError)


@dataclass(frozen=True)
class OpCost:
    """One operator of a dense layer (forward, one micro-batch, one rank)."""

    flops: Any
    bytes: Any
    time_s: Any


@dataclass(frozen=True)
class StagePieces:
    """Per micro-batch pieces of a stage, for the pipeline simulation
    (:func:`accelsim.training.pipeline.simulate_step`): the stage's layers (v chunks, TP and
    EP communication split evenly over forward and backward), the embedding and head, one
    send, the layers of the first, middle and last stage over the even share, and what
    follows the pipeline (exposed DP communication; the optimizer)."""

    stage_f_s: Any
    stage_b_s: Any
    emb_f_s: Any
    emb_b_s: Any
    head_f_s: Any
    head_b_s: Any
    p2p_s: Any
    k_first: Any
    k_mid: Any
    k_last: Any
    dp_s: Any
    optimizer_s: Any
    # the first stage's first chunk, its other chunks, the last stage's chunks but its last,
    # and its last, over an even chunk's layers (account_for_embedding / _loss: one layer
    # fewer in the first and last virtual stage); by default the rank's k_first / k_last
    k_f0: Any = None
    k_fo: Any = None
    k_lo: Any = None
    k_lf: Any = None


@dataclass(frozen=True)
class Estimate:
    """The model's result over configurations: ``columns`` (metrics, one element each),
    one dense layer's operators and the stage pieces."""

    columns: dict[str, Any]
    ops: dict[str, OpCost]
    stages: StagePieces


def _ops(f: dict[str, Any], u: Micro, ly: Layer) -> dict[str, OpCost]:
    g, T, e, e_lin, t = u.g, u.T, u.e, u.e_lin, f["tp"]
    zero = 0.0 * T
    qkv_bytes = xp.where(g.mla, gemm_bytes(T, g.h, g.r_q + g.r_kv + g.d_r, e_lin)
                         + gemm_bytes(T, g.r_q + g.r_kv, (g.q_w + g.a * (g.d_qk - g.d_r + g.d_v))
                                      / t, e_lin), gemm_bytes(T, g.h, ly.n_qkv, e_lin))
    ffn = f["ffn_hidden"]
    return {
        "qkv_proj": OpCost(ly.F_qkv, qkv_bytes, ly.t_qkv),
        "attention_core": OpCost(ly.F_attn, xp.where(f["flash"] > 0, 4 * T * g.h * e / t,
                                                     6.5 * ly.S_bytes), ly.t_att_f),
        "attention_out_proj": OpCost(ly.F_out, gemm_bytes(T, g.o_w / t, g.h, e_lin), ly.t_out),
        "mlp_up": OpCost(ly.F_up, gemm_bytes(T, g.h, ffn * g.up / t, e_lin), ly.t_up),
        "mlp_down": OpCost(ly.F_down, gemm_bytes(T, ffn / t, g.h, e_lin), ly.t_down),
        "norms_residual_activation": OpCost(zero, ly.ew_f, ly.t_ew_f),
        "kernel_launches": OpCost(zero, zero, ly.t_launch_f + zero),
        "tp_comm": OpCost(zero, (4 - 2 * f["parallel"]) * ly.M_tp * (t - 1) / xp.maximum(t, 1),
                          ly.t_tp_f),
    }


def estimate_arrays(c: Mapping[str, Any]) -> Estimate:
    """The whole model over columns (numpy arrays, or floats for one configuration)."""
    return _estimate_inputs(inputs(c))


def _estimate_inputs(f: dict[str, Any]) -> Estimate:
    """:func:`estimate_arrays` of the inputs (:func:`inputs`)."""
    cols, pieces, u, ly = _estimate_parts(f)
    return Estimate(cols, _ops(f, u, ly), pieces)


def _estimate_parts(f: dict[str, Any]) -> tuple[dict[str, Any], StagePieces, Micro, Layer]:
    """The metric columns and the stage pieces of the inputs, and the micro-batch and layer
    the operator table is made of (:func:`_ops`)."""
    cols, f, u, ly, st, dp = _columns_of(f)
    p = f["pp"]
    pieces = StagePieces(
        stage_f_s=st.base_f + (st.tp_stage + st.ep_stage) / 2,
        stage_b_s=st.base_b + (st.tp_stage + st.ep_stage) / 2,
        # the MTP modules ride with the head on the last virtual stage (a third forward)
        emb_f_s=st.t_emb_f, emb_b_s=st.t_emb_b, head_f_s=st.t_head_f + st.t_mtp / 3,
        head_b_s=st.t_head_b + st.t_mtp * 2 / 3,
        p2p_s=st.c_pp, k_first=st.k_first + 0.0 * p, k_mid=st.k_mid + 0.0 * p,
        k_last=st.k_last + 0.0 * p, dp_s=dp.exposed_s + dp.zero3_s,
        optimizer_s=dp.optimizer_s + cols["gc_stall_s"] + dp.host_s, k_f0=st.k_f0 + 0.0 * p,
        k_fo=st.k_fo + 0.0 * p, k_lo=st.k_lo + 0.0 * p, k_lf=st.k_lf + 0.0 * p)
    return cols, pieces, u, ly


def _columns(c: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Micro, Layer,
                                              Stages, DataParallel]:
    """The metric columns, and the inputs and parts the operator table and the stage
    pieces are made from."""
    return _columns_of(inputs(c))


def _columns_of(f: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Micro, Layer,
                                            Stages, DataParallel]:
    """:func:`_columns` of the inputs (:func:`inputs`)."""
    u = micro(f)
    ly = dense_layer(f, u)
    mo = moe_layer(f, u, ly)
    st = stages(f, u, ly, mo)
    pr = rank_params(f, u, st)
    dp = data_parallel(f, u, st, pr)
    fl = flops(f, u)
    mem_total = memory(f, u, st, pr, dp)
    t, p, d, cp = f["tp"], f["pp"], f["dp"], f["cp"]
    devices = t * p * d * cp
    # unaligned Python garbage collection: each rendezvous waits for a collecting rank
    gc_s = gc_stall(f, st, devices)
    step = st.pipeline + dp.exposed_s + dp.zero3_s + dp.optimizer_s + gc_s + dp.host_s
    peak = f["peak_flops"]
    slow, m = st.slow, st.m
    # the slowest stage's share of layers (1 with even stages)
    k_slow = xp.where(p > 1, xp.where(st.stage_max == st.first * slow, st.k_first, xp.where(
        st.stage_max == st.last * slow, st.k_last, st.k_mid)), 1.0)
    stage_comp = st.stage_max - (k_slow * (st.tp_stage + st.ep_stage) + st.p2p) * slow
    cols = {
        "step_time_s": step,
        "tokens_per_s": f["global_batch"] * f["seq_len"] / step,
        "model_tflops_per_device": fl.model / step / devices / units.TFLOP,
        "mfu": fl.model / (step * devices * peak),
        "model_tflops_causal_per_device": fl.model_causal / step / devices / units.TFLOP,
        "mfu_causal": fl.model_causal / (step * devices * peak),
        "hfu": fl.hardware / (step * devices * peak),
        "memory_per_device_gib": mem_total / units.GiB,
        "fits_memory": mem_total <= f["memory_bytes"],
        "devices": devices,
        "micro_batches": m,
        "compute_s": m * stage_comp,
        "tp_comm_s": m * k_slow * st.tp_stage * slow,
        "ep_comm_s": m * k_slow * st.ep_stage * slow,
        "pp_comm_s": m * st.p2p * slow,
        "bubble_s": st.bubble,
        "dp_comm_s": dp.exposed_s + dp.zero3_s,
        "optimizer_s": dp.optimizer_s,
        "gc_stall_s": gc_s,
        "host_sync_s": dp.host_s,
        "model_flops_per_step": fl.model,
        "params_per_device": pr.total,
    }
    return cols, f, u, ly, st, dp


def estimate_columns(c: Mapping[str, Any]) -> dict[str, Any]:
    """Batch API on numpy columns: :data:`INPUT_COLUMNS` (and any optional ones) in, the
    metric columns out, one element per configuration. Rows are not layout-checked (use
    :func:`accelsim.training.job.layout_problems` for user input)."""
    missing = [col for col in INPUT_COLUMNS if col not in c]
    if missing:
        raise AccelsimError.single("configs", ", ".join(missing), "missing input columns")
    folded = fold_uniform(c)
    if folded is not None:
        n, f = folded
        try:
            cols = _columns(f)[0]
        except _FLOAT_ERRORS:
            pass  # a float operation numpy would give inf or nan for: all arrays below
        else:
            return {k: v if type(v) is np.ndarray and v.shape == (n,) else np.full(n, v)
                    for k, v in cols.items()}
    return _columns(c)[0]  # without the operator table and the stage pieces


def fold_uniform(c: Mapping[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The columns (one-dimensional, of one length n > 1) with each one whose rows are
    all equal as a Python float (the model, the device and the job's settings, in a call for
    one of each): the formulas then run on floats (:mod:`accelsim.xp`) wherever no varying
    column enters, element for element the same numbers with fewer array operations
    (a 100-row call of one model and device: about 7 % less CPU, net of this check). None
    when the columns are not such arrays."""
    try:
        m = np.array(list(c.values()), dtype=float)  # every column at once, as floats
    except (ValueError, TypeError):  # columns of different lengths or kinds
        return None
    if m.ndim != 2 or m.shape[1] < 2:
        return None
    n = m.shape[1]
    same = (m == m[:, :1]).all(axis=1).tolist()
    first = m[:, 0].tolist()
    return n, {k: first[i] if same[i] else m[i] for i, k in enumerate(c)}


def estimate_frame(configs: pd.DataFrame) -> pd.DataFrame:
    """Batch API on a DataFrame: :func:`estimate_columns` over its columns."""
    import pandas as pd

    cols = {k: configs[k].to_numpy() for k in INPUT_COLUMNS if k in configs.columns}
    cols.update({k: configs[k].to_numpy() for k in [*OPTIONAL_COLUMNS, PEAK_ACT]
                 if k in configs.columns})
    return pd.DataFrame(estimate_columns(cols), index=configs.index)


def _estimate_one(row: dict[str, Any]) -> Estimate:
    """One configuration (a row of numbers) on Python floats (:func:`_estimate_scalar`)."""
    return _estimate_scalar(scalar_inputs(row))


def _estimate_scalar(f: dict[str, float]) -> Estimate:
    """One configuration's inputs (:func:`scalar_inputs`) on Python floats
    (:mod:`accelsim.xp`: the same formulas at interpreter speed); a value numpy would turn
    into inf or nan (a division by zero, a log of zero) reruns it on one-element arrays,
    with numpy's semantics."""
    try:
        return _estimate_inputs(f)
    except _FLOAT_ERRORS:
        return _estimate_on_arrays(f)


def _estimate_on_arrays(f: dict[str, float]) -> Estimate:
    """One configuration's inputs on one-element arrays, with numpy's semantics (inf, nan)."""
    with np.errstate(all="ignore"):
        return estimate_arrays({k: np.asarray([v], dtype=float) for k, v in f.items()})


def _scalar(x: Any) -> float:
    t = type(x)
    if t is float:
        return x
    if t is bool:  # a comparison on floats (fits_memory)
        return float(x)
    return float(np.asarray(x).ravel()[0])


@dataclass(frozen=True)
class TrainResult:
    """One job's estimate. Times in seconds; ``breakdown`` sums to ``step_time_s``."""

    job: TrainJob
    step_time_s: float
    tokens_per_s: float
    model_tflops_per_device: float
    mfu: float
    hfu: float
    memory_per_device_gib: float
    model_tflops_causal_per_device: float
    mfu_causal: float
    device_memory_gib: float
    fits_memory: bool
    breakdown: dict[str, float]
    engine: str
    stages: StagePieces
    # the operator table, made when first read (``ops``): most callers read the metrics only.
    # Init-only (kept out of the fields), so ``dataclasses.asdict`` and ``==`` see results,
    # never a function.
    op_table: InitVar[Callable[[], list[dict[str, Any]]] | None] = None

    def __post_init__(self, op_table: Callable[[], list[dict[str, Any]]] | None) -> None:
        object.__setattr__(self, "_op_table", op_table)

    @cached_property
    def ops(self) -> list[dict[str, Any]]:
        """One dense layer's operators (forward, one micro-batch, one rank) and what bounds
        each (:func:`_op_row`)."""
        make = self.__dict__.get("_op_table")
        return make() if make is not None else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.job.device, "devices": self.job.parallelism.devices,
            "engine": self.engine, "step_time_s": self.step_time_s,
            "tokens_per_s": self.tokens_per_s,
            "model_tflops_per_device": self.model_tflops_per_device, "mfu": self.mfu,
            "model_tflops_causal_per_device": self.model_tflops_causal_per_device,
            "mfu_causal": self.mfu_causal,
            "hfu": self.hfu, "memory_per_device_gib": self.memory_per_device_gib,
            "device_memory_gib": self.device_memory_gib, "fits_memory": self.fits_memory,
            "breakdown": self.breakdown,
            "layout": self.job.parallelism.model_dump(), "global_batch": self.job.global_batch,
            "precision": self.job.precision, "ops_per_layer_forward": self.ops,
        }


_SCALED = ("tokens_per_s", "model_tflops_per_device", "mfu", "hfu",
           "model_tflops_causal_per_device", "mfu_causal")


def estimate(job: TrainJob, spec: DeviceSpec, engine: str = "analytic", file: str = "job"
             ) -> TrainResult:
    """Estimate one training step of ``job`` on the resolved device ``spec``.
    ``engine='des'`` simulates the pipeline schedule in simpy."""
    check_job(job, file)
    spec.flops(job.precision, where=file)  # an unsupported precision names the job file
    f = job_inputs(job, spec, job_stack_factors(job, spec, file))
    try:  # on Python floats, the operator table left to its first read
        columns, stage_pieces, u, ly = _estimate_parts(f)
        ops: dict[str, OpCost] | None = None
    except _FLOAT_ERRORS:
        est = _estimate_on_arrays(f)
        columns, stage_pieces, ops = est.columns, est.stages, est.ops
    r = {k: _scalar(v) for k, v in columns.items()}
    vals = [getattr(stage_pieces, n) for n in _PIECES]
    pieces = stage_pieces if all(type(v) is float for v in vals) else StagePieces(
        *[_scalar(v) for v in vals])  # (on floats: the pieces as made)
    breakdown = {
        "compute_s": r["compute_s"], "tp_comm_s": r["tp_comm_s"], "ep_comm_s": r["ep_comm_s"],
        "pp_comm_s": r["pp_comm_s"], "pipeline_bubble_s": r["bubble_s"],
        "dp_comm_s": r["dp_comm_s"], "optimizer_s": r["optimizer_s"],
        "gc_stall_s": r["gc_stall_s"], "host_sync_s": r["host_sync_s"],
    }
    step = r["step_time_s"]
    if engine == "des":
        from accelsim.training.pipeline import check_des_size, simulate_step

        if job.parallelism.schedule != "1f1b":
            raise AccelsimError.single(file, "parallelism.schedule", "the des engine simulates "
                                       "1f1b and interleaved schedules; expected 1f1b, or "
                                       "engine analytic for dualpipe")
        check_des_size(job, file)
        # the slowest of the job's devices under the SKU's spread slows its stage's rank
        par = job.parallelism
        spread = slowest_device_factor(float(par.tp * par.pp * par.dp * par.cp),
                                       spec.device_cv)
        sim = simulate_step(job if spread == 1.0 else job.model_copy(
            update={"straggler_slowdown": job.straggler_slowdown * spread}), pieces)
        scale = step / sim.step_time_s
        step = sim.step_time_s
        others = sum(v for k, v in breakdown.items() if k != "pipeline_bubble_s")
        breakdown["pipeline_bubble_s"] = max(step - others, 0.0)
        for key in _SCALED:
            r[key] *= scale
    elif engine != "analytic":
        raise AccelsimError.single(file, "engine", f"expected analytic or des, got {engine!r}")
    ridge = spec.flops(job.precision) / spec.memory_bw_Bps
    op_table = (partial(_op_table_of, f, u, ly, ridge) if ops is None
                else partial(_op_rows, ops, ridge))
    return TrainResult(
        job=job, step_time_s=step, tokens_per_s=r["tokens_per_s"],
        model_tflops_per_device=r["model_tflops_per_device"], mfu=r["mfu"], hfu=r["hfu"],
        memory_per_device_gib=r["memory_per_device_gib"],
        model_tflops_causal_per_device=r["model_tflops_causal_per_device"],
        mfu_causal=r["mfu_causal"],
        device_memory_gib=spec.memory_bytes / units.GiB, fits_memory=bool(r["fits_memory"]),
        breakdown=breakdown, engine=engine, stages=pieces, op_table=op_table,
    )


_PIECES = tuple(fl.name for fl in fields(StagePieces))  # StagePieces' fields, in order


def _op_table_of(f: dict[str, float], u: Micro, ly: Layer, ridge: float
                 ) -> list[dict[str, Any]]:
    """The operator table of one job's inputs on Python floats (:func:`_ops`); a value
    numpy would turn into inf or nan: the whole estimate on one-element arrays
    (:func:`_estimate_on_arrays`)."""
    try:
        ops = _ops(f, u, ly)
    except _FLOAT_ERRORS:
        ops = _estimate_on_arrays(f).ops
    return _op_rows(ops, ridge)


def _op_rows(ops: dict[str, OpCost], ridge: float) -> list[dict[str, Any]]:
    return [_op_row(name, op, ridge) for name, op in ops.items()]


def job_stack_factors(job: TrainJob, spec: DeviceSpec, file: str = "job") -> dict[str, float]:
    """The kernel factors of the job's stack (checked against the job's options), or of its
    device vendor's default stack (:mod:`accelsim.stacks`)."""
    from accelsim import stacks

    if job.stack is None:
        return {}  # device_columns holds the vendor's default stack's
    st = stacks.load_stack(job.stack, where=file)
    stacks.check_training(st, job, file)
    return {**stacks.kernel_factors(st), **stacks.memory_columns(st)}


def _op_row(name: str, op: OpCost, ridge: float) -> dict[str, Any]:
    """An operator and what bounds it: compute when its FLOP/byte exceeds the device's ridge
    point (peak / memory bandwidth)."""
    fl, by, tm = _scalar(op.flops), _scalar(op.bytes), _scalar(op.time_s)
    intensity = fl / by if by > 0 else float("inf") if fl > 0 else 0.0
    if name == "tp_comm":
        bound = "communication"
    elif name == "kernel_launches":
        bound = "launch overhead"
    else:
        bound = "compute" if intensity > ridge else "memory"
    return {"op": name, "flops": fl, "bytes": by, "flop_per_byte": intensity, "time_s": tm,
            "bound": bound}

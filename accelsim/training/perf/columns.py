"""The batch API's input columns: one row per configuration (model, layout, device, job), and
the flattening of a job and its device into one row."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from accelsim import xp
from accelsim.devices import DeviceSpec
from accelsim.stack_kernels import DEFAULTS as STACK_KERNEL_DEFAULTS
from accelsim.stack_memory import DEFAULTS as STACK_MEMORY_DEFAULTS
from accelsim.training.job import RECOMPUTE_CODE, TrainJob
from accelsim.training.perf.recipes import (
    ACT_BYTES,
    ACT_DTYPE,
    GRAD_BYTES,
    OPT_BYTES,
    WEIGHT_BYTES,
)
from accelsim.transformer.params import MODEL_COLUMNS, model_columns

LAYOUT_COLUMNS = ["tp", "pp", "dp", "cp", "ep", "micro_batch", "virtual_stages",
                  "sequence_parallel", "recompute", "zero", "global_batch"]
DEVICE_COLUMNS = ["peak_flops", "memory_bytes", "memory_bw_Bps", "eff_compute", "eff_memory",
                  "eff_comm", "gemm_half_flop", "kernel_overhead_s", "scaleup_bw_Bps",
                  "scaleup_latency_s", "scaleout_bw_Bps", "scaleout_latency_s",
                  "scaleup_domain"]
JOB_COLUMNS = ["act_bytes", "weight_bytes", "grad_bytes", "opt_bytes", "flash", "straggler",
               "overlap_dp"]
INPUT_COLUMNS = MODEL_COLUMNS + LAYOUT_COLUMNS + DEVICE_COLUMNS + JOB_COLUMNS
# Optional inputs and their defaults: uneven pipeline stages (0 = Megatron's even split),
# dropout (1 = masks held, the GPT-3 default), parallel attention and MLP (0 = sequential),
# causal attention (1; 0 = the whole score matrix), FP8 linear layers (0 = every GEMM at the
# training precision), tensor-parallel communication overlapped with the GEMMs (0 = exposed),
# the MoE all-to-all hidden behind another micro-batch's compute (overlap_ep), DeepSeek's
# bidirectional schedule (dualpipe), node-limited routing, multi-token prediction modules
# and MLA (0 = absent), per-module recomputation (rc_*: Megatron-core's --recompute-modules
# layernorm, mla_up_proj, moe_act; rc_alt_mm: torchtitan's per-op selective checkpointing;
# rc_qkv_off: MaxText's Q/K/V offload to host under full remat; rc_mlp_in: MaxText's
# save_dot_except_mlpwi;
# 1 = recomputed in backward, not held), the parameter
# all-gather overlapped with the next forward (overlap_ag); the kernel model's device fields
# (compute_units 0: the size curve; eff_attn 0: FLASH_REL_EFF x eff_compute; eff_attn_fa2 and
# _bwd: FlashAttention-2's rates over the published kernel's, 1: the same; device_cv: the
# spread of the devices' compute rate, 0: all alike; eff_reduction and reduction_latency_s:
# the scale-up fabric's in-switch all-reduce, NVLS, 0: none) and the software
# stack's kernel factors (stack_*, pp_scatter, stream_k, ...: :mod:`accelsim.stack_kernels`)
# and memory terms (mem_*: :mod:`accelsim.stack_memory`), each module's defaults.
OPTIONAL_COLUMNS = {"pp_first_layers": 0.0, "pp_last_layers": 0.0, "pp_acc_emb": 0.0,
                    "pp_acc_loss": 0.0, "pp_first_chunk": -1.0, "pp_last_chunk": -1.0,
                    "dropout": 1.0,
                    "fp8": 0.0, "overlap_tp": 0.0, "overlap_ep": 0.0, "dualpipe": 0.0,
                    "graph_attn": 0.0, "graph_router": 0.0, "graph_pre": 0.0,
                    "moe_max_nodes": 0.0, "mtp": 0.0, "mla_q_rank": 0.0, "mla_kv_rank": 0.0,
                    "mla_qk_head": 0.0, "mla_rope_head": 0.0, "mla_v_head": 0.0,
                    "head_dim": 0.0, "parallel": 0.0, "causal": 1.0, "rc_norm": 0.0,
                    "rc_mla_up": 0.0, "rc_moe_act": 0.0,
                    "rc_alt_mm": 0.0, "rc_qkv_off": 0.0, "rc_mlp_in": 0.0,
                    "overlap_ag": 1.0, "compute_units": 0.0, "tile_m": 128.0,
                    "tile_n": 128.0, "eff_attn": 0.0, "eff_attn_bwd": 1.0,
                    "eff_attn_fa2": 1.0, "eff_attn_fa2_bwd": 1.0, "device_cv": 0.0,
                    "eff_reduction": 0.0, "reduction_latency_s": 0.0,
                    **STACK_KERNEL_DEFAULTS, **STACK_MEMORY_DEFAULTS}
# Peak of the operators that stay at the activation precision (attention core, LM head,
# router); absent: peak_flops (every operator at one precision).
PEAK_ACT = "peak_act_flops"


def inputs(c: Mapping[str, Any]) -> dict[str, Any]:
    """Every input as a float array (or a float for one configuration), optional ones at
    their defaults, and ``lin_bytes``: bytes per element of a linear GEMM's input, as read
    and as held for the backward pass (1 under FP8, else the activation width)."""
    f = {k: xp.asarray(c[k], dtype=float) for k in INPUT_COLUMNS}
    f.update({k: xp.asarray(c[k], dtype=float) if k in c else float(d)
              for k, d in OPTIONAL_COLUMNS.items()})
    f[PEAK_ACT] = xp.asarray(c.get(PEAK_ACT, f["peak_flops"]), dtype=float)
    f["lin_bytes"] = xp.where(f["fp8"] > 0, 1.0, f["act_bytes"])
    return f


def scalar_inputs(row: Mapping[str, Any]) -> dict[str, float]:
    """:func:`inputs` of one configuration whose values are numbers (a :func:`job_row`):
    each a Python float, the same dict ``inputs({k: float(v) for k, v in row.items()})``
    gives, without the array checks per value."""
    f = {k: float(row[k]) for k in INPUT_COLUMNS}
    f.update({k: float(row[k]) if k in row else float(d) for k, d in OPTIONAL_COLUMNS.items()})
    f[PEAK_ACT] = float(row[PEAK_ACT]) if PEAK_ACT in row else f["peak_flops"]
    f["lin_bytes"] = 1.0 if f["fp8"] > 0 else f["act_bytes"]
    return f


# the optional columns' defaults as floats (what inputs gives an absent one)
_OPTIONAL_FLOATS = {k: float(d) for k, d in OPTIONAL_COLUMNS.items()}


def job_inputs(job: TrainJob, spec: DeviceSpec, stack_factors: dict[str, float] | None = None
               ) -> dict[str, float]:
    """``scalar_inputs(job_row(job, spec, stack_factors))``, the one-job path's inputs:
    the same parts applied in the same order, the device's already as floats (memoised per
    spec, :func:`_device_columns`)."""
    f = _OPTIONAL_FLOATS.copy()
    for k, v in _job_head(job).items():
        f[k] = float(v)
    f.update(_device_columns(spec, job.precision, floats=True))
    for k, v in job_columns(job.precision, job.attention, job.straggler_slowdown,
                            job.overlap_dp_comm).items():
        f[k] = float(v)
    if stack_factors:
        for k, v in stack_factors.items():
            f[k] = float(v)
    f["lin_bytes"] = 1.0 if f["fp8"] > 0 else f["act_bytes"]
    return f


def job_row(job: TrainJob, spec: DeviceSpec, stack_factors: dict[str, float] | None = None
            ) -> dict[str, Any]:
    """Flatten a job, its resolved device and its stack's kernel factors
    (:func:`accelsim.stacks.kernel_factors`) into one row of the batch API's columns."""
    return {
        **_job_head(job),
        **_device_columns(spec, job.precision),
        **job_columns(job.precision, job.attention, job.straggler_slowdown,
                      job.overlap_dp_comm),
        **(stack_factors or {}),
    }


def _job_head(job: TrainJob) -> dict[str, Any]:
    """A job row's model and layout columns (the head of :func:`job_row`)."""
    par = job.parallelism
    return {
        **model_columns(job.model),
        "tp": par.tp, "pp": par.pp, "dp": par.dp, "cp": par.cp, "ep": par.ep,
        "micro_batch": par.micro_batch, "virtual_stages": par.virtual_stages,
        "pp_first_layers": par.first_stage_layers or 0,
        "pp_last_layers": par.last_stage_layers or 0,
        "pp_acc_emb": int(par.account_for_embedding),
        "pp_acc_loss": int(par.account_for_loss),
        "pp_first_chunk": -1 if par.first_chunk_layers is None else par.first_chunk_layers,
        "pp_last_chunk": -1 if par.last_chunk_layers is None else par.last_chunk_layers,
        "dualpipe": int(par.schedule == "dualpipe"),
        "rc_norm": int("layernorm" in par.recompute_modules),
        "rc_mla_up": int("mla_up_proj" in par.recompute_modules),
        "rc_moe_act": int("moe_act" in par.recompute_modules),
        "rc_alt_mm": int("alternate_mm" in par.recompute_modules),
        "rc_qkv_off": int("qkv_offload" in par.recompute_modules),
        "rc_mlp_in": int("mlp_in" in par.recompute_modules),
        "overlap_tp": int(job.overlap_tp_comm and par.tp > 1),
        "overlap_ep": int(job.overlap_ep_comm),
        "graph_attn": int("attn" in job.cuda_graph_scope),
        "graph_router": int("moe_router" in job.cuda_graph_scope),
        "graph_pre": int("moe_preprocess" in job.cuda_graph_scope),
        "overlap_ag": int(job.overlap_param_gather),
        "sequence_parallel": int(par.sequence_parallel and par.tp > 1),
        "recompute": RECOMPUTE_CODE[par.recompute], "zero": par.zero,
        "global_batch": job.global_batch,
    }


def job_columns(precision: str, attention: str = "flash", straggler: float = 1.0,
                overlap_dp: bool = True) -> dict[str, float]:
    """The job-level input columns (:data:`JOB_COLUMNS`, and ``fp8``)."""
    return {
        "act_bytes": ACT_BYTES[precision], "weight_bytes": WEIGHT_BYTES[precision],
        "grad_bytes": GRAD_BYTES[precision], "opt_bytes": OPT_BYTES[precision],
        "flash": int(attention == "flash"), "straggler": straggler,
        "overlap_dp": int(overlap_dp), "fp8": int(precision == "fp8"),
    }


def default_stack_factors(vendor: str) -> tuple[tuple[str, float], ...]:
    """The kernel factors of the vendor's default training stack (:mod:`accelsim.stacks`),
    under the stack overrides in force (calibration refits)."""
    from accelsim import stacks

    return _default_stack_factors(vendor, stacks.current_overrides(),
                                  stacks.default_stamp(vendor))


@lru_cache(maxsize=64)
def _default_stack_factors(vendor: str, _overrides: tuple[tuple[str, str, float], ...],
                           _stamp: tuple[int, ...]) -> tuple[tuple[str, float], ...]:
    from accelsim import stacks

    st = stacks.default_stack(vendor)
    return tuple({**stacks.kernel_factors(st), **stacks.memory_columns(st)}.items())


def device_columns(spec: DeviceSpec, precision: str) -> dict[str, float]:
    """The device's input columns (:data:`DEVICE_COLUMNS` and :data:`PEAK_ACT`), the kernel
    model's fields and its vendor's default stack's kernel factors."""
    return dict(_device_columns(spec, precision))


# device_columns per (spec, precision, stack overrides in force, the default stack file's
# stamp): a DeviceSpec is frozen (a device override is another spec object), so its columns
# are computed once per spec and stack file, not per estimate. Keyed by the spec's id, the
# entry holding the spec itself (an id is not reused while its object lives) and checked to
# be it; cleared past _DEVICE_CACHE_MAX.
# The one mutable field the columns read, the ``peak_flops`` dict, is kept as a copy and
# compared at each hit: a spec whose peaks were changed in place is computed again (as
# before the memo), never served the old peaks.
_DEVICE_CACHE: dict[tuple[int, str, Any, tuple[int, ...]],
                    tuple[DeviceSpec, dict[str, float], dict[str, float], dict[str, float]]] = {}
_DEVICE_CACHE_MAX = 256


def _device_columns(spec: DeviceSpec, precision: str, floats: bool = False
                    ) -> dict[str, float]:
    """:func:`device_columns` (``floats``: each value a Python float), shared (memoised):
    not to be modified."""
    from accelsim import stacks

    key = (id(spec), precision, stacks.current_overrides(), stacks.default_stamp(spec.vendor))
    hit = _DEVICE_CACHE.get(key)
    if hit is None or hit[0] is not spec or hit[3] != spec.peak_flops:
        cols = _compute_device_columns(spec, precision)
        if len(_DEVICE_CACHE) >= _DEVICE_CACHE_MAX:
            _DEVICE_CACHE.clear()
        hit = _DEVICE_CACHE[key] = (spec, cols, {k: float(v) for k, v in cols.items()},
                                    dict(spec.peak_flops))
    return hit[2] if floats else hit[1]


def _compute_device_columns(spec: DeviceSpec, precision: str) -> dict[str, float]:
    return {
        **dict(default_stack_factors(spec.vendor)),
        "peak_flops": spec.flops(precision), PEAK_ACT: spec.flops(ACT_DTYPE[precision]),
        "memory_bytes": spec.memory_bytes,
        "memory_bw_Bps": spec.memory_bw_Bps, "eff_compute": spec.eff_compute,
        "eff_memory": spec.eff_memory, "eff_comm": spec.eff_comm,
        "gemm_half_flop": spec.gemm_half_flop, "kernel_overhead_s": spec.kernel_overhead_s,
        "scaleup_bw_Bps": spec.scaleup_bw_Bps, "scaleup_latency_s": spec.scaleup_latency_s,
        "scaleout_bw_Bps": spec.scaleout_bw_Bps, "scaleout_latency_s": spec.scaleout_latency_s,
        "scaleup_domain": spec.scaleup_domain,
        "compute_units": float(spec.compute_units), "tile_m": spec.tile_m,
        "tile_n": spec.tile_n, "eff_attn": spec.eff_attention,
        "eff_attn_bwd": spec.eff_attention_bwd, "eff_attn_fa2": spec.eff_attention_fa2,
        "eff_attn_fa2_bwd": spec.eff_attention_fa2_bwd, "device_cv": spec.device_cv,
        "eff_reduction": spec.eff_reduction, "reduction_latency_s": spec.reduction_latency_s,
    }

"""One dense transformer layer on one rank, one micro-batch: its GEMMs, attention core,
memory-bound elementwise kernels, kernel launches, and the tensor- and context-parallel
communication around them (forward and backward).

  GEMM          the kernel model (:func:`accelsim.kernels.gemm_time`: tiles and waves over
                the device's compute units, the roofline per shape) at the stack's GEMM
                efficiency x the device's; a profile without compute units: the size-curve
                roofline (:func:`accelsim.roofline.gemm_time`). Linear layers at the training
                precision (FP8 elements under FP8, at the stack's ``gemm_8bit`` factor),
                others at the activation precision
  attention     flash: causal half of the score blocks (a model without the causal mask:
                all of them) at the published kernel's rate by sequence length and head
                dim (:func:`accelsim.kernels.attention_efficiency`,
                the device's ``efficiency.attention`` x the stack's; a stack on FA2-generation
                kernels x the device's ``attention_fa2`` too), backward BWD_FLOP_FACTOR x the
                forward's FLOPs at ``attention_backward`` of its rate (the stack's and FA2's
                backward factors in place of the forward's)
                (no ``efficiency.attention``: FLASH_REL_EFF x the GEMM efficiency); or
                unfused (scores held, softmax and dropout memory-bound)
  elementwise   2 norms (parallel layers: 1), 2 dropout-residuals and the activation, read
                and written once; FP8 cast/transpose traffic (recipes.FP8_CAST_*; with
                current scaling the amax reads and unfused casts, recipes.FP8_CS_*); a
                stack's attention padding copies (recipes.UNPAD_PASSES_*)
  launches      KERNELS_PER_LAYER per forward (twice that backward) at the device's kernel
                overhead; a stack whose flash-attention wrapper synchronises the host
                (``attn_syncs`` per forward: ``.item()``, ``torch.nonzero``) idles the GPU
                ``unit_gap_s`` at each, in every forward (the recomputed one too)
  TP            sequence parallel: 2 all-gathers + 2 reduce-scatters of T h e per pass, else
                2 all-reduces (parallel layers: half of each); with TP overlap (userbuffers)
                1/t of it exposed, the GEMMs run as t chunks each (t - 1 more ramp-ups);
                with Megatron's asynchronous backward (stack ``tp_bwd_async``) the
                column-parallel linears' input re-gather and gradient reduce-scatter
                (all-reduce) run beside their data- and weight-gradient GEMMs (Korthikanti
                et al. 2022 section 6.2)
  CP            ring exchange of K and V blocks, overlapped with the attention kernel; or
                (stack ``cp_kv_ring: false``) all-gathered K and V and reduce-scattered
                gradients, exposed (Llama 3, arXiv 2407.21783 section 3.3.2); and
                (``CP_RING_BOOKKEEPING``) the ring's own memory passes and kernels (the fp32
                output corrections, the gradient accumulation, the per-call work of each
                further attention backward: :func:`ring_bookkeeping`)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim import collectives as coll
from accelsim import kernels, xp
from accelsim.roofline import (
    FLASH_BWD_FACTOR,
    FLASH_CAUSAL_FRACTION,
    FLASH_REL_EFF,
    gemm_time,
    memory_time,
)
from accelsim.runtime import KERNELS_PER_LAYER
from accelsim.training.perf.columns import PEAK_ACT
from accelsim.training.perf.recipes import (
    FP8_CAST_BWD_BYTES,
    FP8_CAST_FWD_BYTES,
    FP8_CS_ACT_BYTES,
    FP8_CS_BWD_BYTES,
    FP8_CS_NORM_BYTES,
    FP8_CS_OUT_BYTES,
    OVERLAP_TAX,
    UNPAD_PASSES_OUT,
    UNPAD_PASSES_QKV,
)
from accelsim.transformer.params import Shape, shape


def gemm(m: Any, k: Any, n: Any, f: dict[str, Any], linear: bool = True) -> Any:
    """GEMM time (module docstring). A linear layer's GEMM runs at the training precision
    (FP8 elements when ``fp8``); others (``linear=False``: LM head, router) at the
    activation precision. Its launch is counted with the layer's kernels."""
    e_in = f["lin_bytes"] if linear else f["act_bytes"]
    peak = f["peak_flops"] if linear else f[PEAK_ACT]
    eff = f["eff_compute"] * f["stack_gemm"]
    if linear:  # 8-bit training: the stack's 8-bit factor (1 + fp8 (g8 - 1): 1 otherwise)
        eff = eff * (1.0 + f["fp8"] * (f["stack_gemm8"] - 1.0))
    units = f["compute_units"]
    if type(units) is float:
        tiled_all = units > 0
        none = not tiled_all
    else:  # every / no configuration has the kernel fields
        pos = units > 0
        tiled_all, none = bool(pos.all()), not pos.any()
    if none:
        return gemm_time(m, k, n, e_in, peak, eff, f["gemm_half_flop"], f["memory_bw_Bps"],
                         f["eff_memory"])
    tiled = kernels.gemm_time(m, n, k, e_in, f["act_bytes"], peak, eff,
                              xp.maximum(units, 1.0), f["tile_m"], f["tile_n"],
                              f["memory_bw_Bps"], f["eff_memory"], stream_k=f["stream_k"])
    if tiled_all:
        return tiled
    return xp.where(units > 0, tiled, gemm_time(m, k, n, e_in, peak, eff, f["gemm_half_flop"],
                                                f["memory_bw_Bps"], f["eff_memory"]))


def compute(F: Any, f: dict[str, Any]) -> Any:
    """Compute side of the roofline only, at the activation precision:
    (F + F_half) / (peak * eff_c)."""
    return (F + f["gemm_half_flop"]) / (f[PEAK_ACT] * f["eff_compute"])


def mem(nbytes: Any, f: dict[str, Any]) -> Any:
    return memory_time(nbytes, f["memory_bw_Bps"], f["eff_memory"])


def exposed(comm: Any, window: Any) -> Any:
    """Time a collective adds when overlapped with ``window`` seconds of compute:
    the part that sticks out, plus :data:`OVERLAP_TAX` of the part hidden."""
    hidden = xp.minimum(comm, window)
    return comm - hidden + OVERLAP_TAX * hidden


def staged(comm: Any, v: Any, gap: Any, own: Any) -> Any:
    """Time a collective adds when it is split in v equal parts released ``gap`` seconds
    apart and run one after another, the last one overlapping ``own`` seconds of compute:
    the queue ends max(comm / v, comm - (v - 1) gap) after the last release; what sticks
    out past ``own`` is exposed, the rest costs :data:`OVERLAP_TAX`. v = 1: ``exposed``."""
    out = xp.maximum(xp.maximum(comm / v, comm - (v - 1) * gap) - own, 0.0)
    return out + OVERLAP_TAX * (comm - out)


def gemm_many(shapes: list[tuple[Any, Any, Any]], f: dict[str, Any]) -> list[Any]:
    """:func:`gemm` of several linear-layer shapes ``(m, k, n)``; on arrays one call over
    them stacked (numpy's per-call cost paid once, not per GEMM)."""
    if not any(isinstance(x, np.ndarray) for s in shapes for x in s):
        return [gemm(m, k, n, f) for m, k, n in shapes]
    cols = np.broadcast_arrays(*(np.asarray(x, dtype=float) for s in shapes for x in s))
    m = np.stack(cols[0::3])
    k = np.stack(cols[1::3])
    n = np.stack(cols[2::3])
    return list(gemm(m, k, n, f))


def flash_attention(F: Any, s_kv: Any, hd: Any, causal: Any, f: dict[str, Any]) -> tuple[Any, Any]:
    """Forward and backward seconds of a flash-attention kernel executing ``F`` FLOPs
    (module docstring): at the published kernel's rate when the device gives
    ``efficiency.attention``, else FLASH_REL_EFF x the GEMM efficiency."""
    a = f["eff_attn"]
    old_f = (F + f["gemm_half_flop"]) / (f[PEAK_ACT] * f["eff_compute"] * FLASH_REL_EFF)
    if type(a) is float and a <= 0:
        return old_f, FLASH_BWD_FACTOR * old_f
    # a stack running FA2-generation kernels: its factors are relative to FA2's rates on
    # the device (eff_attn_fa2, _bwd: 1 where the published kernel is FA2's generation)
    fa2 = f["stack_fa2"] > 0
    k_f = f["stack_attn"] * xp.where(fa2, f["eff_attn_fa2"], 1.0)
    k_b = f["stack_attn_bwd"] * xp.where(fa2, f["eff_attn_fa2_bwd"], 1.0)
    new_f = kernels.attention_fwd_time(F, s_kv, hd, causal, f[PEAK_ACT],
                                       xp.maximum(a, 1e-9) * k_f)
    new_b = kernels.attention_bwd_time(new_f * k_f / k_b, f["eff_attn_bwd"])
    if type(a) is float:
        return new_f, new_b
    return (xp.where(a > 0, new_f, old_f),
            xp.where(a > 0, new_b, FLASH_BWD_FACTOR * old_f))


def ring_attention(F: Any, s: Any, hd: Any, cp: Any, f: dict[str, Any]) -> tuple[Any, Any]:
    """Forward and backward seconds of a rank's causal attention (``F`` FLOPs, already
    halved) under ring context parallelism with load balancing (Transformer Engine's
    ``AttnFuncWithCPAndKVP2P``, transformer_engine/pytorch/attention/dot_product_attention/
    context_parallel.py: each rank holds two of 2 cp chunks of the sequence and runs cp
    kernels, one per ring step): the diagonal step, causal over its s/cp queries and keys
    (1/cp of the FLOPs), and cp - 1 off-diagonal steps without mask, half of them s/cp
    queries against the s/(2 cp) keys of the peer's first chunk ("lower-triangle"), half
    the second s/(2 cp) queries against s/cp keys ("upper-triangle"). Each kernel runs at
    the rate of its own key length (:func:`flash_attention`). cp = 1: one causal kernel over
    s; a stack that all-gathers K and V (``cp_allgather``) runs one kernel over the whole
    sequence's keys."""
    ring = (cp > 1) & (f["cp_allgather"] <= 0)
    if xp.never(ring):
        return flash_attention(F, s, hd, 1.0, f)
    n = xp.maximum(cp, 1.0)
    d_f, d_b = flash_attention(F / n, s / n, hd, 1.0, f)
    lo_f, lo_b = flash_attention(F * (n - 1) / (2 * n), s / (2 * n), hd, 0.0, f)
    up_f, up_b = flash_attention(F * (n - 1) / (2 * n), s / n, hd, 0.0, f)
    one_f, one_b = flash_attention(F, s, hd, 1.0, f)
    return (xp.where(ring, d_f + lo_f + up_f, one_f), xp.where(ring, d_b + lo_b + up_b, one_b))


# Transformer Engine's ring attention (AttnFuncWithCPAndKVP2P): True (shipped) prices its
# bookkeeping around the attention kernels (ring_bookkeeping); False: the kernels and the K/V
# exchange only. On since the data-parallel widths of NVIDIA's MLPerf recipes are priced
# (stacks nemo-mlperf*, branch dpship): with both, held-out 4.89 / 18.9 %, 14 misses ->
# 4.56 / 23.4 %, 7; LOSO training 3.31 -> 3.16 (docs/_notes/cp-ring-attention.md)
CP_RING_BOOKKEEPING = True
# kernels TE's P2P ring adds per layer and pass over one causal kernel (context_parallel.py at
# TE release_v2.8, 40c69e75): forward, the K/V concatenation, the LSE clone and the output's
# init and cast, and per further ring step an attention call, an LSE and an output correction
# and a send/receive; backward, the K/V copy into the ring buffer, per further step an
# attention backward with its two memory-bound companions (dO.O row sums, the fp32 dQ
# accumulator's conversion), and per step the dQ copy/add, the dK and dV copy/adds and a
# send/receive
RING_KERNELS_FWD = (4.0, 4.0)  # fixed, per further step
RING_KERNELS_BWD = (5.0, 7.0)


def ring_bookkeeping(f: dict[str, Any], T: Any, g: Shape, cp: Any) -> tuple[Any, Any]:
    """Forward and backward seconds one rank's ring attention (cp > 1, load-balanced causal,
    Transformer Engine's ``AttnFuncWithCPAndKVP2P``, transformer_engine/pytorch/attention/
    dot_product_attention/context_parallel.py at TE release_v2.8, commit 40c69e75) spends
    outside its attention kernels and the K/V exchange: memory passes at the device's
    bandwidth and :data:`RING_KERNELS_FWD` / ``_BWD`` kernels at its kernel overhead.

    Forward: K and V concatenated into the first send buffer (read + write); the partial
    outputs merged in fp32 (``flash_attn_fwd_out_correction_init``: read the first step's
    output, write fp32; each further step ``flash_attn_fwd_out_correction``: read fp32 and
    the step's output, write fp32; the rank whose further steps are lower-triangle (all
    queries) sets the ring's pace) and cast back (read fp32, write the activation type);
    the softmax-LSE corrections (a few bytes per query) are counted as kernels only.
    Backward (bf16: dQ, dK, dV accumulated in the activation type): the saved K/V copied into
    the ring buffer; dQ copied at the first step and added (read two, write one) at each
    further one, dK and dV likewise; each further attention backward repeats its per-call
    memory-bound work: the dO.O row sums (read dO and O; cuDNN's SDPA backward graph,
    NVIDIA/cudnn-frontend include/cudnn_frontend/node/scaled_dot_product_flash_attention.h
    ``mul_dO_O`` / ``reduce_dO_o``; FlashAttention-2's ``flash_bwd_dot_do_o_kernel``) and
    the fp32 dQ accumulator (zeroed, then converted: ``dQ_accum``;
    ``flash_bwd_convert_dq_kernel``)."""
    n = xp.maximum(cp, 1.0)
    e = f["act_bytes"]
    t = f["tp"]
    n_o = T * g.o_w / t  # output (and dout) elements per rank
    n_q = T * g.q_w / t  # query (and dq) elements
    kv = T * (g.k_w + g.v_w) / t * e  # K and V bytes
    fwd_bytes = 2 * kv + n_o * (e + 4) + (n - 1) * n_o * (4 + e + 4) + n_o * (4 + e)
    bwd_bytes = (2 * kv + 2 * n_q * e + 2 * kv + (n - 1) * (3 * n_q * e + 3 * kv)
                 + (n - 1) * (2 * n_o * e + n_q * (4 + 4 + e)))
    kern = f["kernel_overhead_s"]
    k_f = RING_KERNELS_FWD[0] + RING_KERNELS_FWD[1] * (n - 1)
    k_b = RING_KERNELS_BWD[0] + RING_KERNELS_BWD[1] * (n - 1)
    return mem(fwd_bytes, f) + k_f * kern, mem(bwd_bytes, f) + k_b * kern


@dataclass
class Micro:
    """One micro-batch on one rank: the layer's shape, tokens, element widths and the links
    its groups live on (TP innermost, then CP, then DP/EP, PP outermost: Megatron's order)."""

    g: Shape
    T: Any  # tokens per rank per micro-batch (before the tensor-parallel split)
    s_loc: Any  # sequence length per context-parallel rank
    sp_div: Any  # t with sequence parallelism, else 1
    e: Any  # activation bytes per element
    e_lin: Any  # linear GEMM input bytes per element (1 under FP8)
    bw_in: Any  # scale-up bandwidth achieved, bytes/s
    bw_out: Any  # scale-out bandwidth achieved, bytes/s
    a_in: Any  # scale-up latency, s
    a_out: Any  # scale-out latency, s
    bw_tp: Any
    al_tp: Any
    bw_cp: Any
    al_cp: Any


def micro(f: dict[str, Any]) -> Micro:
    t, cp = f["tp"], f["cp"]
    s_loc = f["seq_len"] / cp
    dom = f["scaleup_domain"]
    bw_in = f["scaleup_bw_Bps"] * f["eff_comm"]
    bw_out = f["scaleout_bw_Bps"] * f["eff_comm"]
    a_in, a_out = f["scaleup_latency_s"], f["scaleout_latency_s"]

    def link(n: Any, stride: Any) -> tuple[Any, Any]:
        bw, out_frac = coll.group_bandwidth(n, stride, dom, bw_in, bw_out)
        return bw, xp.where(out_frac > 0, a_out, a_in)

    bw_tp, al_tp = link(t, 1.0)
    bw_cp, al_cp = link(cp, t)
    return Micro(g=shape(f), T=f["micro_batch"] * s_loc, s_loc=s_loc,
                 sp_div=xp.where(f["sequence_parallel"] > 0, t, 1.0), e=f["act_bytes"],
                 e_lin=f["lin_bytes"], bw_in=bw_in, bw_out=bw_out, a_in=a_in, a_out=a_out,
                 bw_tp=bw_tp, al_tp=al_tp, bw_cp=bw_cp, al_cp=al_cp)


class _cached:
    """functools.cached_property without its lock (Python 3.11 takes an RLock at each first
    read, about a microsecond; 3.12 dropped it): the value computed at the first read is
    kept in the instance's ``__dict__``, which later reads find first."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


@dataclass
class Layer:
    """A dense layer's seconds (forward ``_f``, backward ``_b``) and the FLOPs and bytes of
    its operators (one rank, one micro-batch)."""

    F_qkv: Any
    F_out: Any
    F_up: Any
    F_down: Any
    F_attn: Any  # QK^T and AV over the full sequence (the model-FLOP convention)
    n_qkv: Any  # QKV projection width per rank (GQA)
    S_bytes: Any  # one unfused score tensor
    M_tp: Any  # bytes of one TP all-gather / reduce-scatter
    t_qkv: Any
    t_out: Any
    t_up: Any
    t_down: Any
    t_gemm_f: Any
    t_gemm_b: Any
    t_att_f: Any
    t_att_b: Any
    ew_f: Any  # elementwise bytes, forward
    t_ew_f: Any
    t_ew_b: Any
    t_launch_f: Any
    t_launch_b: Any
    t_tp_once: Any  # one pass's TP communication, not overlapped
    t_tp_f: Any
    t_tp_b: Any
    t_cp_f: Any
    t_cp_b: Any

    # cached: each is read several times per estimate (kept in the instance's __dict__)
    @_cached
    def t_f(self) -> Any:
        return self.t_gemm_f + self.t_att_f + self.t_ew_f + self.t_launch_f

    @_cached
    def t_b(self) -> Any:
        return self.t_gemm_b + self.t_att_b + self.t_ew_b + self.t_launch_b

    @_cached
    def comm_f(self) -> Any:
        return self.t_tp_f + self.t_cp_f

    @_cached
    def comm_b(self) -> Any:
        return self.t_tp_b + self.t_cp_b


def dense_layer(f: dict[str, Any], u: Micro) -> Layer:
    """One dense layer's operators (module docstring)."""
    g, T, e = u.g, u.T, u.e
    h, a, kv, hd, up = g.h, g.a, g.kv, g.hd, g.up
    t, cp, b = f["tp"], f["cp"], f["micro_batch"]
    ffn, s = f["ffn_hidden"], f["seq_len"]
    mla, r_q, r_kv, d_r = g.mla, g.r_q, g.r_kv, g.d_r
    d_qk, d_v, q_w, o_w = g.d_qk, g.d_v, g.q_w, g.o_w
    sp_div, fp8, flash = u.sp_div, f["fp8"], f["flash"]
    # --- projections and MLP, forward, per rank
    F_qkv = 2 * T * (g.attn_split - o_w * h - xp.where(mla, r_q + r_kv, 0.0)) / t \
        + 2 * T * (g.attn_rep - 2 * h)
    F_out = 2 * T * o_w * h / t
    F_up = 2 * T * h * ffn * up / t
    F_down = 2 * T * ffn * h / t
    F_attn = 2 * T * s * a * (d_qk + d_v) / t
    n_qkv = (q_w + 2 * kv * hd) / t
    if mla if type(mla) is bool else np.any(mla):  # no MLA: its GEMMs skipped
        g_qa, g_qb, g_q, g_kva, g_kvb, g_qkv, t_out, t_up, t_down = gemm_many(
            [(T, h, r_q), (T, r_q, q_w / t), (T, h, q_w / t), (T, h, r_kv + d_r),
             (T, r_kv, a * (d_qk - d_r + d_v) / t), (T, h, n_qkv), (T, o_w / t, h),
             (T, h, ffn * up / t), (T, ffn / t, h)], f)
        t_q_mla = xp.where(r_q > 0, g_qa + g_qb, g_q)
        t_qkv = xp.where(mla, t_q_mla + g_kva + g_kvb, g_qkv)
    else:
        t_qkv, t_out, t_up, t_down = gemm_many([(T, h, n_qkv), (T, o_w / t, h),
                                                (T, h, ffn * up / t), (T, ffn / t, h)], f)
    t_gemm_f = t_qkv + t_out + t_up + t_down
    t_gemm_b = 2 * t_gemm_f  # dgrad + wgrad GEMMs of the same shapes

    # --- attention core: flash (causal, fused) or unfused (scores materialised); a model
    # without the causal mask (causal 0): one kernel over every score block
    t_fa_f, t_fa_b = ring_attention(FLASH_CAUSAL_FRACTION * F_attn, s, (d_qk + d_v) / 2, cp, f)
    ring = (cp > 1) & (f["cp_allgather"] <= 0)
    if CP_RING_BOOKKEEPING and not xp.never(ring):
        r_f, r_b = ring_bookkeeping(f, T, g, cp)
        t_fa_f = t_fa_f + xp.where(ring, r_f, 0.0)
        t_fa_b = t_fa_b + xp.where(ring, r_b, 0.0)
    full = f["causal"] <= 0
    if not xp.never(full):
        t_nc_f, t_nc_b = flash_attention(F_attn, s, (d_qk + d_v) / 2, 0.0, f)
        t_fa_f, t_fa_b = xp.where(full, t_nc_f, t_fa_f), xp.where(full, t_nc_b, t_fa_b)
    S_bytes = b * a * u.s_loc * s * e / t
    if (type(flash) is float and type(t_fa_f) is float and type(t_fa_b) is float
            and flash > 0) or (  # one configuration: the shapes all (), np.shape unasked
            (flash > 0 if type(flash) is float else (flash > 0).all())
            and np.shape(t_fa_f) == np.shape(t_fa_b) == np.shape(flash)):
        t_att_f, t_att_b = t_fa_f, t_fa_b  # flash in every row: the unfused path unused
    else:
        t_scores = xp.maximum(compute(F_attn, f), mem(2 * S_bytes, f))
        t_un_f = t_scores + mem(4.5 * S_bytes, f)
        t_un_b = 2 * t_scores + mem(6.5 * S_bytes, f)
        t_att_f = xp.where(flash > 0, t_fa_f, t_un_f)
        t_att_b = xp.where(flash > 0, t_fa_b, t_un_b)

    # --- memory-bound elementwise: 2 norms (r+w), 2 dropout-residual (2r+w), activation
    # (parallel layers: one norm, r+w less); FP8: the transposed copies of the GEMM inputs
    # (forward) and the cast of each GEMM output's gradient (backward), per element
    par = f["parallel"]
    ew_f = T * h * e * (10 - 2 * par) / sp_div + T * ffn * e * (up + 1) / t
    cast_in = T * (2 * h / sp_div + o_w / t + ffn / t)
    cast_out = T * ((q_w + g.k_w + g.v_w) / t + 2 * h / sp_div + ffn * up / t)
    # FP8 current scaling (fp8_cs): the amax reads, and the norms' casts unfused
    cs = f["fp8_cs"] * T * (FP8_CS_NORM_BYTES * 2 * h / sp_div + FP8_CS_ACT_BYTES * ffn / t
                            + FP8_CS_OUT_BYTES * o_w / t)
    t_cast_f = fp8 * mem(FP8_CAST_FWD_BYTES * cast_in + cs, f)
    t_cast_b = fp8 * mem((FP8_CAST_BWD_BYTES + f["fp8_cs"] * FP8_CS_BWD_BYTES) * cast_out, f)
    t_ew = mem(ew_f, f)
    # a stack whose attention wrapper unpads q, k, v and pads the output (stack_unpad)
    qkv_w, unpad = (q_w + g.k_w + g.v_w) / t, f["stack_unpad"] * flash * T * e
    t_unpad_f = mem(unpad * (UNPAD_PASSES_QKV[0] * qkv_w + UNPAD_PASSES_OUT[0] * o_w / t), f)
    t_unpad_b = mem(unpad * (UNPAD_PASSES_QKV[1] * qkv_w + UNPAD_PASSES_OUT[1] * o_w / t), f)
    t_ew_f = t_ew + t_cast_f + t_unpad_f
    t_ew_b = 2 * t_ew + t_cast_b + t_unpad_b
    kern = f["kernel_overhead_s"]
    # a stack whose flash-attention wrapper synchronises the host with the GPU (attn_syncs
    # per forward): the GPU idles unit_gap_s at each, until the host queues the next kernels
    t_sync_f = f["attn_syncs"] * flash * f["unit_gap_s"]

    # --- tensor-parallel communication (overlap: t chunks pipeline with the GEMMs, one
    # chunk exposed, the rest hidden with the overlap tax, t - 1 more GEMM ramp-ups each)
    M_tp = T * h * e
    # one all-gather costs what one reduce-scatter does (collectives.all_gather)
    ag = rs = coll.reduce_scatter(M_tp, t, u.bw_tp, u.al_tp)
    # the ring all-reduce, 2 (t-1)/t M/bw + 2 (t-1) alpha: twice the reduce-scatter, and
    # computed so (each of its terms is the reduce-scatter's times 2, exact in floating point)
    ar = 2.0 * rs
    # parallel layers: one gather of the norm's output for the QKV and MLP-in GEMMs and one
    # reduction of the summed attention and MLP outputs per pass, half the sequential
    # block's (MaxText 2023: GSPMD reshards an operand once for all its dots, the
    # partitioner's reshard cache; XLA's ReduceScatterReassociate, openxla/xla
    # xla/service/reduce_scatter_reassociate.cc, rewrites add(rs(a), rs(b)) into
    # rs(add(a, b)), a pass of the GPU compiler's collective pipeline (gpu_compiler.cc);
    # ASSUMPTION: TPU's too. Two reductions instead: MaxText's 128B v5e row -12.6 %, not -4.5)
    n_io = 1.0 - 0.5 * par  # gathers (reductions) per pass over the sequential block's 2
    t_tp_once = xp.where(f["sequence_parallel"] > 0, 2 * ag + 2 * rs, 2 * ar) * n_io
    t_tp_raw = xp.where(t > 1, t_tp_once, 0.0)
    # (a switch no row turns on, a false scalar: its branch is not computed, xp.never)
    ov = f["overlap_tp"] > 0
    if xp.never(ov):
        t_tp_f = t_tp_raw
    else:
        ov_tp = ov & (t > 1)
        chunk_cost = (t - 1) * compute(0.0, f)
        t_tp_f = xp.where(ov_tp, t_tp_raw / t + exposed(t_tp_raw * (t - 1) / t, t_gemm_f)
                          + 4 * chunk_cost, t_tp_raw)
    # Megatron's asynchronous backward (stack tp_async): the column-parallel linears' (QKV,
    # MLP up) input re-gather (sequence parallel) beside their data-gradient GEMMs and their
    # gradient reduce-scatter (else all-reduce) beside their weight-gradient GEMMs; the
    # row-parallel linears' gradient all-gathers stay exposed
    asy = f["tp_async"] > 0
    if xp.never(asy):
        t_tp_plain_b = t_tp_raw
    else:
        col = t_qkv + t_up  # one pass of the column-parallel GEMMs
        t_tp_async = xp.where(f["sequence_parallel"] > 0,
                              2 * ag + exposed(2 * ag, col) + exposed(2 * rs, col),
                              exposed(2 * ar, col)) * n_io
        t_tp_plain_b = xp.where(asy & (t > 1), t_tp_async, t_tp_raw)
    t_tp_b = t_tp_plain_b if xp.never(ov) else xp.where(
        ov_tp, t_tp_raw / t + exposed(t_tp_raw * (t - 1) / t, t_gemm_b) + 8 * chunk_cost,
        t_tp_plain_b)

    # --- context parallel: ring exchange of K, V blocks, overlapped with attention; or
    # (stack cp_allgather, Llama 3) K and V all-gathered before the attention kernel and
    # their gradients reduce-scattered after it, on the critical path
    if cp > 1 if type(cp) is float else (cp > 1).any():
        M_kv = T * (g.k_w + g.v_w) * e / t
        t_cp_raw = (cp - 1) * coll.p2p(M_kv, u.bw_cp, u.al_cp)
        t_cp_ag = coll.all_gather(cp * M_kv, cp, u.bw_cp, u.al_cp)
        ag_cp = f["cp_allgather"] > 0
        t_cp_f = xp.where(cp > 1, xp.where(ag_cp, t_cp_ag, exposed(t_cp_raw, t_att_f)), 0.0)
        t_cp_b = xp.where(cp > 1, xp.where(ag_cp, t_cp_ag, exposed(2 * t_cp_raw, t_att_b)),
                          0.0)
    else:  # no context parallelism in any row
        t_cp_f = t_cp_b = 0.0
    return Layer(
        F_qkv=F_qkv, F_out=F_out, F_up=F_up, F_down=F_down, F_attn=F_attn, n_qkv=n_qkv,
        S_bytes=S_bytes, M_tp=M_tp, t_qkv=t_qkv, t_out=t_out, t_up=t_up, t_down=t_down,
        t_gemm_f=t_gemm_f, t_gemm_b=t_gemm_b, t_att_f=t_att_f, t_att_b=t_att_b, ew_f=ew_f,
        t_ew_f=t_ew_f, t_ew_b=t_ew_b, t_launch_f=KERNELS_PER_LAYER * kern + t_sync_f,
        t_launch_b=2 * KERNELS_PER_LAYER * kern, t_tp_once=t_tp_once, t_tp_f=t_tp_f,
        t_tp_b=t_tp_b, t_cp_f=t_cp_f, t_cp_b=t_cp_b)

"""Analytic step-time model of transformer training, vectorized over a table of configurations.

One micro-batch on one pipeline stage is a sequence of operators; each gets FLOPs
and bytes and a roofline time from the device profile:

  GEMM           t = (F + F_half) / (peak * eff_compute)        (efficiency-vs-size curve:
                                                                 eff(F) = eff_c * F/(F+F_half))
  memory-bound   t = bytes / (memory_bw * eff_memory)
  every kernel   + kernel_overhead
  collectives    alpha-beta on the link the group lives on (:mod:`.collectives`)

Stage times build the 1F1B / interleaved pipeline (bubble (p-1)/(v m) of the steady
state, Narayanan et al. SC'21), then DP gradient reduction overlapped with the last
backward, then the optimizer step. Memory follows Korthikanti et al. 2022
(arXiv 2205.05198) generalised to GQA, gated MLPs, MoE and flash attention.

Every input is a column of a pandas DataFrame (``estimate_frame``) so thousands of
layouts are evaluated in one pass of numpy; :func:`estimate` wraps a single job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from accelsim import collectives as coll
from accelsim import units, xp
from accelsim.devices import DeviceLike, DeviceSpec, as_spec, load_device
from accelsim.errors import AccelsimError
from accelsim.precision import BYTES
from accelsim.roofline import gemm_bytes, gemm_time, memory_time
from accelsim.runtime import KERNELS_PER_LAYER, RUNTIME_RESERVE_BYTES
from accelsim.training.job import RECOMPUTE_CODE, TrainJob, check_job
from accelsim.transformer.model import TransformerModel

if TYPE_CHECKING:
    import pandas as pd

# Flash-attention kernels run below cuBLAS GEMM efficiency: FlashAttention-2 reaches
# 50-73 % of A100 peak forward and up to 63 % backward, against ~80-85 % for large
# GEMMs (Dao 2023, arXiv 2307.08691, sections 4.1). Ratio taken as 0.8.
FLASH_REL_EFF = 0.8
# Flash-attention backward executes 5 matmuls of the forward's 2 (it recomputes P).
FLASH_BWD_FACTOR = 2.5
# Causal masking lets flash attention skip half of the score blocks.
FLASH_CAUSAL_FRACTION = 0.5
# Adam with fp32 master weights: read param, grad, m, v (16 B), write param, m, v (12 B)
# and the 16-bit copy (2 B) -> 30 bytes of HBM traffic per parameter (assumption).
OPTIMIZER_BYTES_PER_PARAM = 30.0

# Communication overlapped with compute is not free: collective kernels occupy SMs and
# HBM bandwidth. Overlapped comm costs this fraction of its duration (assumption; NCCL
# runs on ~8-16 of 108-132 SMs, and overlap studies report 5-20 % GEMM slowdown).
OVERLAP_TAX = 0.1

# Storage format of each tensor class per training precision. FP8 training (Transformer
# Engine recipes) casts to fp8 inside the GEMMs but keeps activations and weights in bf16.
# Gradients as reduced: bf16 and fp8 training accumulate and all-reduce fp32 main grads
# (Megatron requires --accumulate-allreduce-grads-in-fp32 with bf16); fp16 mixed precision
# reduces fp16 grads (Megatron-LM's default, Micikevicius et al. 2018 loss scaling).
ACT_DTYPE = {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16", "fp8": "bf16"}
WEIGHT_DTYPE = ACT_DTYPE
GRAD_DTYPE = {"fp32": "fp32", "bf16": "fp32", "fp16": "fp16", "fp8": "fp32"}
# Optimizer state in fp32 values: Adam m, v, plus an fp32 master copy in mixed precision.
OPT_STATES = {"fp32": 2, "bf16": 3, "fp16": 3, "fp8": 3}
ACT_BYTES = {p: BYTES[d] for p, d in ACT_DTYPE.items()}
WEIGHT_BYTES = {p: BYTES[d] for p, d in WEIGHT_DTYPE.items()}
GRAD_BYTES = {p: BYTES[d] for p, d in GRAD_DTYPE.items()}
OPT_BYTES = {p: n * BYTES["fp32"] for p, n in OPT_STATES.items()}

MODEL_COLUMNS = ["layers", "hidden", "heads", "kv_heads", "ffn_hidden", "gated_mlp", "vocab",
                 "seq_len", "tied_embeddings", "moe_experts", "moe_top_k", "moe_ffn_hidden",
                 "moe_shared", "moe_layers"]
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
# dropout (1 = masks held, the GPT-3 default), FP8 linear layers (0 = every GEMM at the
# training precision), tensor-parallel communication overlapped with the GEMMs (0 = exposed).
OPTIONAL_COLUMNS = {"pp_first_layers": 0.0, "pp_last_layers": 0.0, "dropout": 1.0,
                    "fp8": 0.0, "overlap_tp": 0.0, "overlap_ep": 0.0, "dualpipe": 0.0,
                    "moe_max_nodes": 0.0, "mtp": 0.0, "mla_q_rank": 0.0, "mla_kv_rank": 0.0,
                    "mla_qk_head": 0.0, "mla_rope_head": 0.0, "mla_v_head": 0.0,
                    "head_dim": 0.0, "rc_norm": 0.0, "rc_mla_up": 0.0, "rc_moe_act": 0.0,
                    "overlap_ag": 1.0}
# (rc_*: per-module recomputation, Megatron-core's --recompute-modules layernorm,
# mla_up_proj, moe_act; 1 = the module's outputs are recomputed in backward, not held)
# (multi-token prediction modules, node-limited routing and MLA: 0 = absent; overlap_ep:
# MoE all-to-all hidden behind another micro-batch's compute; dualpipe: DeepSeek's
# bidirectional schedule, 1 = used)
# Peak of the operators that stay at the activation precision (attention core, LM head,
# router); absent: peak_flops (every operator at one precision).
PEAK_ACT = "peak_act_flops"

# FP8 training (Transformer Engine recipes; DeepSeek-V3, arXiv 2412.19437 section 3.3): the
# linear layers' GEMMs run in FP8; attention, embedding, LM head, router and norms stay BF16.
# Each FP8 GEMM input is held for the backward pass as FP8 (1 B); producing it costs extra
# HBM traffic: forward, the transposed FP8 copy for the weight-gradient GEMM (TE's
# cast_transpose, the cast itself fused into the norm or activation kernel): 2 B per input
# element; backward, the gradient of each GEMM output is cast and transposed: read 2 B,
# write 2 x 1 B per element (assumption from TE's kernel design).
FP8_CAST_FWD_BYTES = 2.0
FP8_CAST_BWD_BYTES = 4.0


def _gemm(m: Any, k: Any, n: Any, c: Mapping[str, Any], linear: bool = True) -> Any:
    """Roofline GEMM time (:func:`accelsim.roofline.gemm_time`). A linear layer's GEMM runs
    at the training precision (FP8 elements when ``fp8``); others (``linear=False``: LM
    head, router) at the activation precision."""
    if linear:
        return gemm_time(m, k, n, c["_lin_bytes"], c["peak_flops"], c["eff_compute"],
                         c["gemm_half_flop"], c["memory_bw_Bps"], c["eff_memory"])
    return gemm_time(m, k, n, c["act_bytes"], c[PEAK_ACT], c["eff_compute"],
                     c["gemm_half_flop"], c["memory_bw_Bps"], c["eff_memory"])


def _compute(F: Any, c: Mapping[str, Any]) -> Any:
    """Compute side of the roofline only, at the activation precision:
    (F + F_half) / (peak * eff_c)."""
    return (F + c["gemm_half_flop"]) / (c[PEAK_ACT] * c["eff_compute"])


def _mem(nbytes: Any, c: Mapping[str, Any]) -> Any:
    return memory_time(nbytes, c["memory_bw_Bps"], c["eff_memory"])


def _exposed(comm: Any, window: Any) -> Any:
    """Time a collective adds when overlapped with ``window`` seconds of compute:
    the part that sticks out, plus :data:`OVERLAP_TAX` of the part hidden."""
    hidden = xp.minimum(comm, window)
    return comm - hidden + OVERLAP_TAX * hidden


def _staged(comm: Any, v: Any, gap: Any, own: Any) -> Any:
    """Time a collective adds when it is split in v equal parts released ``gap`` seconds
    apart and run one after another, the last one overlapping ``own`` seconds of compute:
    the queue ends max(comm / v, comm - (v - 1) gap) after the last release; what sticks
    out past ``own`` is exposed, the rest costs :data:`OVERLAP_TAX`. v = 1: ``_exposed``."""
    exposed = xp.maximum(xp.maximum(comm / v, comm - (v - 1) * gap) - own, 0.0)
    return exposed + OVERLAP_TAX * (comm - exposed)


def estimate_arrays(c: Mapping[str, Any]) -> dict[str, Any]:
    """The whole model on numpy arrays: one element per configuration. See module docstring."""
    f = {k: xp.asarray(c[k], dtype=float) for k in INPUT_COLUMNS}
    f.update({k: xp.asarray(c.get(k, d), dtype=float) for k, d in OPTIONAL_COLUMNS.items()})
    f[PEAK_ACT] = xp.asarray(c.get(PEAK_ACT, f["peak_flops"]), dtype=float)
    fp8 = f["fp8"]
    # bytes per element of a linear GEMM's input, as read and as held for the backward pass
    e_lin = xp.where(fp8 > 0, 1.0, f["act_bytes"])
    f["_lin_bytes"] = e_lin
    L, h, a, kv = f["layers"], f["hidden"], f["heads"], f["kv_heads"]
    ffn, V, s = f["ffn_hidden"], f["vocab"], f["seq_len"]
    gated = f["gated_mlp"]
    t, p, d, cp, ep = f["tp"], f["pp"], f["dp"], f["cp"], f["ep"]
    b, v = f["micro_batch"], f["virtual_stages"]
    sp = f["sequence_parallel"]
    rc = f["recompute"]
    e = f["act_bytes"]
    flash = f["flash"]
    E, k_top, ffn_e, shared = f["moe_experts"], f["moe_top_k"], f["moe_ffn_hidden"], f["moe_shared"]
    n_moe = f["moe_layers"]
    hd = xp.where(f["head_dim"] > 0, f["head_dim"], h / a)  # 0: hidden / heads
    up = 1.0 + gated  # number of up-projection matrices (2 for SwiGLU)
    s_loc = s / cp
    T = b * s_loc  # tokens per rank per micro-batch (before tensor parallel split)
    sp_div = xp.where(sp > 0, t, 1.0)

    # --- links: TP innermost, then CP, then DP/EP, PP outermost (Megatron's rank order)
    dom = f["scaleup_domain"]
    eff_l = f["eff_comm"]
    bw_in = f["scaleup_bw_Bps"] * eff_l
    bw_out = f["scaleout_bw_Bps"] * eff_l
    a_in, a_out = f["scaleup_latency_s"], f["scaleout_latency_s"]

    def link(n: Any, stride: Any) -> tuple[Any, Any]:
        bw, out_frac = coll.group_bandwidth(n, stride, dom, bw_in, bw_out)
        return bw, xp.where(out_frac > 0, a_out, a_in)

    bw_tp, al_tp = link(t, 1.0)
    bw_cp, al_cp = link(cp, t)

    # --- attention projections: grouped-query (Q, K, V from h) or multi-head latent
    # attention (MLA, DeepSeek-V2/V3, arXiv 2405.04434): Q and the joint KV go through
    # low-rank latents (q_rank, kv_rank; down-projections replicated over TP ranks, as in
    # Megatron-core), K carries rope_head extra dims shared by the heads
    mla = f["mla_kv_rank"] > 0
    r_q, r_kv, d_r = f["mla_q_rank"], f["mla_kv_rank"], f["mla_rope_head"]
    d_qk = xp.where(mla, f["mla_qk_head"] + d_r, hd)  # query/key head dim
    d_v = xp.where(mla, f["mla_v_head"], hd)  # value head dim
    q_w = a * d_qk  # query width
    k_w = xp.where(mla, a * d_qk, kv * hd)  # key width as attention reads it
    v_w = xp.where(mla, a * d_v, kv * hd)
    o_w = a * d_v  # attention output width (input of the output projection)
    # parameters: split over TP ranks, and replicated (MLA's down-projections)
    P_q_mla = xp.where(r_q > 0, r_q * q_w + r_q, h * q_w)
    P_attn_split = xp.where(mla, P_q_mla + r_kv * a * (d_qk - d_r + d_v) + r_kv,
                            h * (q_w + 2 * kv * hd)) + o_w * h
    P_attn_rep = xp.where(mla, h * r_q + h * (r_kv + d_r), 0.0) + 2 * h  # + 2 norms
    # --- one dense layer, forward, per rank
    F_qkv = 2 * T * (P_attn_split - o_w * h - xp.where(mla, r_q + r_kv, 0.0)) / t \
        + 2 * T * (P_attn_rep - 2 * h)
    F_out = 2 * T * o_w * h / t
    F_up = 2 * T * h * ffn * up / t
    F_down = 2 * T * ffn * h / t
    # QK^T and AV over the full sequence (the model-FLOP convention)
    F_attn = 2 * T * s * a * (d_qk + d_v) / t
    n_qkv = (q_w + 2 * kv * hd) / t
    t_q_mla = xp.where(r_q > 0, _gemm(T, h, r_q, f) + _gemm(T, r_q, q_w / t, f),
                       _gemm(T, h, q_w / t, f))
    t_kv_mla = _gemm(T, h, r_kv + d_r, f) + _gemm(T, r_kv, a * (d_qk - d_r + d_v) / t, f)
    t_qkv = xp.where(mla, t_q_mla + t_kv_mla, _gemm(T, h, n_qkv, f))
    t_out = _gemm(T, o_w / t, h, f)
    t_up = _gemm(T, h, ffn * up / t, f)
    t_down = _gemm(T, ffn / t, h, f)
    t_gemm_f = t_qkv + t_out + t_up + t_down
    t_gemm_b = 2 * t_gemm_f  # dgrad + wgrad GEMMs of the same shapes

    # attention core: flash (causal, fused) or unfused (scores materialised, softmax+dropout)
    eff_fa = f["eff_compute"] * FLASH_REL_EFF
    t_fa_f = (FLASH_CAUSAL_FRACTION * F_attn + f["gemm_half_flop"]) / (f[PEAK_ACT] * eff_fa)
    t_fa_b = FLASH_BWD_FACTOR * t_fa_f
    S_bytes = b * a * s_loc * s * e / t  # one score tensor
    t_un_f = xp.maximum(_compute(F_attn, f), _mem(2 * S_bytes, f)) + _mem(4.5 * S_bytes, f)
    t_un_b = (2 * xp.maximum(_compute(F_attn, f), _mem(2 * S_bytes, f))
              + _mem(6.5 * S_bytes, f))
    t_att_f = xp.where(flash > 0, t_fa_f, t_un_f)
    t_att_b = xp.where(flash > 0, t_fa_b, t_un_b)

    # memory-bound elementwise: 2 norms (r+w), 2 dropout-residual (2r+w), activation
    ew_f = T * h * e * 10 / sp_div + T * ffn * e * (up + 1) / t
    # FP8: the transposed copies of the GEMM inputs (forward) and the cast of each GEMM
    # output's gradient (backward), per element (FP8_CAST_*_BYTES)
    cast_in = T * (2 * h / sp_div + o_w / t + ffn / t)
    cast_out = T * ((q_w + k_w + v_w) / t + 2 * h / sp_div + ffn * up / t)
    t_cast_f = fp8 * _mem(FP8_CAST_FWD_BYTES * cast_in, f)
    t_cast_b = fp8 * _mem(FP8_CAST_BWD_BYTES * cast_out, f)
    t_ew_f = _mem(ew_f, f) + t_cast_f
    t_ew_b = 2 * _mem(ew_f, f) + t_cast_b
    kern = f["kernel_overhead_s"]
    t_launch_f = KERNELS_PER_LAYER * kern
    t_launch_b = 2 * KERNELS_PER_LAYER * kern

    # tensor-parallel communication: SP -> 2 all-gather + 2 reduce-scatter, else 2 all-reduce
    M_tp = T * h * e
    t_tp_once = xp.where(sp > 0,
                         2 * coll.all_gather(M_tp, t, bw_tp, al_tp)
                         + 2 * coll.reduce_scatter(M_tp, t, bw_tp, al_tp),
                         2 * coll.ring_allreduce(M_tp, t, bw_tp, al_tp))
    # overlapped with the layer's GEMMs (Transformer Engine userbuffers): each all-gather /
    # reduce-scatter and its GEMM are split in t chunks that pipeline, so one chunk of the
    # communication (1/t) stays exposed, the rest hides behind the GEMM (with the overlap
    # tax), and each of the 4 GEMMs (8 in backward) runs as t smaller ones (t - 1 more
    # ramp-ups of F_half each)
    t_tp_raw = xp.where(t > 1, t_tp_once, 0.0)
    ov_tp = (f["overlap_tp"] > 0) & (t > 1)
    chunk_cost = (t - 1) * _compute(0.0, f)
    t_tp_f = xp.where(ov_tp, t_tp_raw / t + _exposed(t_tp_raw * (t - 1) / t, t_gemm_f)
                      + 4 * chunk_cost, t_tp_raw)
    t_tp_b = xp.where(ov_tp, t_tp_raw / t + _exposed(t_tp_raw * (t - 1) / t, t_gemm_b)
                      + 8 * chunk_cost, t_tp_raw)

    # context parallel: ring exchange of K,V blocks, overlapped with the attention kernel
    M_kv = T * (k_w + v_w) * e / t
    t_cp_raw = (cp - 1) * coll.p2p(M_kv, bw_cp, al_cp)
    t_cp_f = xp.where(cp > 1, _exposed(t_cp_raw, t_att_f), 0.0)
    t_cp_b = xp.where(cp > 1, _exposed(2 * t_cp_raw, t_att_b), 0.0)

    # --- MoE feed-forward replaces the dense MLP in MoE layers
    E_safe = xp.maximum(E, 1.0)
    E_loc = E_safe / ep
    tok_e = T * ep * k_top / E_safe  # tokens reaching each local expert
    t_moe_ffn_f = (E_loc * (_gemm(tok_e, h, ffn_e * up / t, f) + _gemm(tok_e, ffn_e / t, h, f))
                   + xp.where(shared > 0, _gemm(T, h, ffn_e * shared * (up + 1) / t, f), 0.0)
                   + _gemm(T, h, E_safe / t, f, linear=False)  # router
                   + _mem(T * k_top * ffn_e * e * (up + 1) / t, f)
                   + fp8 * _mem(FP8_CAST_FWD_BYTES * T * k_top * (h + ffn_e) / t, f)
                   + 2 * E_loc * kern)
    t_dense_ffn_f = (t_up + t_down + _mem(T * ffn * e * (up + 1) / t, f)
                     + fp8 * _mem(FP8_CAST_FWD_BYTES * T * (h / sp_div + ffn / t), f))
    # expert-parallel all-to-all (dispatch at the GEMM input width, FP8 when the experts
    # run FP8 as in DeepSeek-V3; combine at the activation width). The EP group spans
    # nodes_ep scale-up domains; a token's copies to other domains cross the scale-out
    # network: k of them, or with node-limited routing (DeepSeek-V3: at most M nodes per
    # token, sent once per node and forwarded inside it) min(M, k); copies inside a domain
    # use the scale-up link. The slower of the two links bounds the exchange.
    g_ep = xp.clip(xp.floor(dom / (t * cp)), 1.0, ep)  # EP ranks per scale-up domain
    nodes_ep = xp.ceil(ep / g_ep)
    remote = (nodes_ep - 1) / xp.maximum(nodes_ep, 1.0)
    M_lim = f["moe_max_nodes"]
    copies_out = xp.where(M_lim > 0, xp.minimum(xp.minimum(M_lim, k_top), nodes_ep),
                          k_top) * remote
    tok_sp = T / sp_div
    e_disp = e_lin + e
    t_a2a_one = xp.maximum(tok_sp * copies_out * h * e_disp / bw_out,
                           tok_sp * k_top * h * e_disp * (g_ep - 1) / xp.maximum(ep, 1.0) / bw_in)
    t_a2a = xp.where(ep > 1, t_a2a_one + 2 * (ep - 1) * xp.where(nodes_ep > 1, a_out, a_in),
                     0.0)

    t_f_dense = t_gemm_f + t_att_f + t_ew_f + t_launch_f
    t_b_dense = t_gemm_b + t_att_b + t_ew_b + t_launch_b
    t_f_moe = t_f_dense - t_dense_ffn_f + t_moe_ffn_f
    t_b_moe = t_b_dense - 2 * t_dense_ffn_f + 2 * t_moe_ffn_f
    comm_f = t_tp_f + t_cp_f
    comm_b = t_tp_b + t_cp_b

    # recomputation: full re-runs the layer forward in backward; selective re-runs the
    # attention core (free with flash attention, whose backward recomputes it anyway)
    re_dense = xp.where(rc == 2, t_f_dense + comm_f, xp.where(rc == 1, (1 - flash) * t_att_f, 0.0))
    re_moe = xp.where(rc == 2, t_f_moe + comm_f + t_a2a, xp.where(rc == 1, (1 - flash) * t_att_f,
                                                                   0.0))
    # per-module recomputation (below full): the norms (memory-bound), MLA's
    # up-projections (GEMMs from the held latents), the MoE activation (memory-bound)
    rc_norm_t = xp.where(f["rc_norm"] > 0, _mem(2 * T * h * (e + e_lin) / sp_div, f), 0.0)
    rc_mla_t = xp.where((f["rc_mla_up"] > 0) & mla, t_qkv - _gemm(T, h, r_q, f) * (r_q > 0)
                        - _gemm(T, h, r_kv + d_r, f), 0.0)
    rc_act_t = xp.where(f["rc_moe_act"] > 0, _mem(T * (k_top + shared) * ffn_e
                                                  * (e * up + e_lin) / t, f), 0.0)
    re_dense = re_dense + xp.where(rc == 2, 0.0, rc_norm_t + rc_mla_t)
    re_moe = re_moe + xp.where(rc == 2, 0.0, rc_norm_t + rc_mla_t + rc_act_t)

    # --- stages: layers per stage, MoE layers spread evenly
    Ls = L / p
    # uneven stages (Megatron-core's decoder-first/last-pipeline-num-layers): the first
    # and/or last stage hold the given layers, the others share the rest evenly
    fL, lL = f["pp_first_layers"], f["pp_last_layers"]
    n_rest = xp.maximum(p - (fL > 0) - (lL > 0), 1.0)
    L_mid = xp.where((fL > 0) | (lL > 0), (L - fL - lL) / n_rest, Ls)
    k_first = xp.where(fL > 0, fL, L_mid) / Ls  # stage layers over the even share
    k_mid = L_mid / Ls
    k_last = xp.where(lL > 0, lL, L_mid) / Ls
    Lm = n_moe / p
    Ld = Ls - Lm
    comp_layer_f = Ld * t_f_dense + Lm * t_f_moe
    comp_layer_b = Ld * (t_b_dense + re_dense) + Lm * (t_b_moe + re_moe)
    tp_stage = (Ld + Lm) * (comm_f + comm_b)
    # the all-to-all of one micro-batch hidden behind another's compute (DualPipe's
    # forward-backward pairs, Megatron's EP-overlap with 1F1B): the part that sticks out
    ov_ep = (f["overlap_ep"] > 0) | (f["dualpipe"] > 0)
    a2a_layer = xp.where(ov_ep, _exposed(2 * t_a2a, t_f_moe + t_b_moe), 2 * t_a2a)
    ep_stage = Lm * a2a_layer

    # embedding (first stage) and LM head + cross-entropy (last stage)
    t_head_gemm = _gemm(T, h, V / t, f, linear=False)
    t_head_f = t_head_gemm + _mem(3 * T * V * 4 / t, f) + 3 * kern
    t_head_b = 2 * t_head_gemm + _mem(2 * T * V * 4 / t, f) + 3 * kern
    t_emb_f = _mem(2 * T * h * e / sp_div, f) + kern
    t_emb_b = _mem(3 * T * h * e / sp_div, f) + kern + xp.where(t > 1, t_tp_once / 4, 0.0)

    # pipeline point-to-point: one activation per chunk boundary, scattered over TP ranks
    M_pp = T * h * e / t
    pp_cross = (t * cp * d * p) > dom
    c_pp = coll.p2p(M_pp, xp.where(pp_cross, bw_out, bw_in), xp.where(pp_cross, a_out, a_in))
    c_pp = xp.where(p > 1, c_pp, 0.0)

    # per micro-batch time of the first, middle and last stage (v chunks each)
    base_f = comp_layer_f
    base_b = comp_layer_b
    layers_part = base_f + base_b + tp_stage + ep_stage
    # DualPipe overlaps the pipeline sends with the paired forward-backward chunk
    dual = f["dualpipe"] > 0
    p2p = xp.where(dual, _exposed(2 * v * c_pp, base_f + base_b), 2 * v * c_pp)
    first = k_first * layers_part + p2p + t_emb_f + t_emb_b
    # multi-token prediction (DeepSeek-V3 section 2.2): each of the mtp modules on the last
    # stage is a projection of [h; embedding] (2h -> h), one transformer layer (MoE when the
    # model has experts) and the shared LM head again
    n_mtp = f["mtp"]
    mtp_layer = xp.where(n_moe > 0, t_f_moe + t_b_moe + re_moe + a2a_layer,
                         t_f_dense + t_b_dense + re_dense) + comm_f + comm_b
    t_mtp = n_mtp * (mtp_layer + 3 * _gemm(T, 2 * h, h / t, f) + t_head_f + t_head_b)
    last = k_last * layers_part + p2p + t_head_f + t_head_b + t_mtp
    single = layers_part + p2p + t_emb_f + t_emb_b + t_head_f + t_head_b + t_mtp
    first = xp.where(p > 1, first, single)
    last = xp.where(p > 1, last, single)
    middle = k_mid * layers_part + p2p
    slow = f["straggler"]
    stage_max = xp.maximum(xp.maximum(first, last), xp.where(p > 2, middle, 0.0)) * slow
    n_mid = xp.maximum(p - 2, 0.0)
    stage_avg = xp.where(p > 1, (first + last + n_mid * middle) / xp.maximum(p, 1.0), single)
    m = f["global_batch"] / (d * b)
    # 1F1B / interleaved: (p-1)/v stage times. DualPipe (DeepSeek-V3 Table 2): (p/2 - 1)
    # (F&B + B - 3W) with F&B = F + B + W (a paired chunk) and B = W = half the backward:
    # (p/2 - 1) F, the forward share of a stage time
    f_share = base_f / xp.maximum(base_f + base_b, 1e-30)
    bubble = xp.where(dual, xp.maximum(p / 2 - 1, 0.0) * stage_avg * f_share,
                      (p - 1) / v * stage_avg)
    pipeline = m * stage_max + bubble

    # --- parameters per rank (first stage, which holds the embedding)
    P_attn = P_attn_split + P_attn_rep
    P_dense_mlp = h * ffn * (up + 1)
    P_expert = h * ffn_e * (up + 1)
    P_emb = V * h
    untied_or_split = xp.where((f["tied_embeddings"] > 0) & (p == 1), 0.0, 1.0)
    P_layers = ((Ls * P_attn_split + Ld * P_dense_mlp + Lm * (shared * P_expert + h * E_safe))
                / t + Ls * P_attn_rep)
    P_emb_rank = (P_emb + xp.where(p == 1, untied_or_split * P_emb, 0.0)) / t
    P_layers_expert = Lm * E_loc * P_expert / t
    # the first stage (embedding) and a middle stage; DP reduces the larger of the two
    P_first_dense = k_first * P_layers + P_emb_rank
    P_mid_dense = k_mid * P_layers
    P_rank_dense = xp.maximum(P_first_dense, P_mid_dense)
    P_rank_expert = xp.maximum(k_first, k_mid) * P_layers_expert
    P_rank = P_rank_dense + P_rank_expert

    # --- data-parallel gradient reduction (+ parameter all-gather with ZeRO >= 1)
    zero = f["zero"]
    D = d * cp
    De = xp.maximum(D / ep, 1.0)
    stride_dp = t
    wb = f["weight_bytes"]
    gb = f["grad_bytes"]
    # DualPipe holds two stages' parameters per rank (DeepSeek-V3 Table 2: 2x parameters)
    copies = xp.where(dual, 2.0, 1.0)
    ar_d = coll.group_allreduce(copies * P_rank_dense * gb, D, stride_dp, dom, bw_in, a_in,
                                bw_out, a_out)
    ar_e = coll.group_allreduce(copies * P_rank_expert * gb, De, stride_dp * ep, dom, bw_in,
                                a_in, bw_out, a_out)
    # ring RS/AG move half of an all-reduce each
    rs = 0.5 * (ar_d + ar_e)
    ag = 0.5 * (ar_d + ar_e) * wb / gb
    # overlap (Megatron's overlap_grad_reduce / overlap_param_gather): a chunk's gradients
    # are final after its last backward; in the cooldown the v chunks finish min(m, p)
    # chunk-backwards apart, so their reductions are released `gap` apart and queue on the
    # link; the last one also hides behind its own chunk's backward (layer buckets).
    # Parameter all-gathers mirror this over the next step's warm-up forwards.
    ov = f["overlap_dp"]
    ov_ag = ov * f["overlap_ag"]  # overlap_param_gather (0: the all-gather after the step)
    gap_b = ov * xp.minimum(m, p) * base_b / v
    gap_f = ov_ag * xp.minimum(m, p) * base_f / v
    dp_exposed = xp.where(
        zero > 0,
        _staged(rs, v, gap_b, ov * base_b / v) + _staged(ag, v, gap_f, ov_ag * base_f / v),
        _staged(ar_d + ar_e, v, gap_b, ov * base_b / v),
    )
    dp_exposed = xp.where(D > 1, dp_exposed, 0.0)
    # ZeRO-3 gathers weights before every forward and backward of every micro-batch
    z3 = xp.where((zero == 3) & (D > 1), m * _exposed(2 * ag, base_f + base_b), 0.0)

    shard = xp.where(zero >= 1, D, 1.0)
    t_opt = _mem(copies * P_rank * OPTIMIZER_BYTES_PER_PARAM / shard, f)

    step = pipeline + dp_exposed + z3 + t_opt

    # --- memory per rank (Korthikanti et al. 2022, bytes, generalised)
    ob = f["opt_bytes"]
    state_dense = xp.select(
        [zero == 0, zero == 1, zero == 2],
        [wb + gb + ob, wb + gb + ob / D, wb + (gb + ob) / D],
        (wb + gb + ob) / D,
    )
    state_exp = xp.select(
        [zero == 0, zero == 1, zero == 2],
        [wb + gb + ob, wb + gb + ob / De, wb + (gb + ob) / De],
        (wb + gb + ob) / De,
    )
    mem_states = copies * (P_first_dense * state_dense + k_first * P_layers_expert * state_exp)
    mem_states_mid = copies * (P_mid_dense * state_dense + k_mid * P_layers_expert * state_exp)
    # MTP modules (last stage): projection, one layer; the LM head and embedding are shared
    P_mtp_dense = n_mtp * ((P_attn_split + 2 * h * h + xp.where(
        n_moe > 0, shared * P_expert + h * E_safe, P_dense_mlp)) / t + P_attn_rep)
    P_mtp_exp = n_mtp * xp.where(n_moe > 0, E_loc * P_expert / t, 0.0)
    # the last stage holds the LM head (Megatron keeps a copy there even when tied)
    mem_states_last = copies * (k_last * (P_layers * state_dense + P_layers_expert * state_exp)
                                + P_emb / t * state_dense + P_mtp_dense * state_dense
                                + P_mtp_exp * state_exp)
    tok = s_loc * b
    # replicated part (norm inputs, residual inputs; two 1-byte dropout masks when the model
    # has dropout): 4e h + 2 h per token
    # (the two norm outputs feed linear GEMMs: held at the GEMM input width, FP8 or not)
    rc_norm, rc_mla, rc_act = f["rc_norm"] > 0, (f["rc_mla_up"] > 0) & mla, f["rc_moe_act"] > 0
    act_rep = tok * (2 * e * h + xp.where(rc_norm, 0.0, 2 * e_lin * h)
                     + 2 * h * f["dropout"]) / sp_div
    # Q, K, V and the attention output for flash's backward, the output projection's input;
    # MLA also holds the latents (the up-projections' inputs, replicated)
    act_attn = (tok * (xp.where(rc_mla, 0.0, e * (q_w + k_w + v_w)) + e_lin * o_w) / t
                + xp.where(mla, tok * e_lin * (r_q + r_kv), 0.0))
    # gated MLP: gate and up outputs for the activation's backward, the down-proj input
    act_mlp = tok * ffn * (e * up + e_lin) / t
    # MoE: per routed copy the expert's input (GEMM width) and output (the combine's input,
    # for the gate's gradient); per expert pass the activation's inputs and output. With the
    # activation recomputed (moe_act, DeepSeek-V3 section 3.3.2) its inputs are the cache
    # and are held at the GEMM input width (FP8 under fp8), its output is not held, and the
    # gate's gradient comes from the recomputed output (dL/dg_i = <dL/ds_i, s_i>), so the
    # expert outputs are not held either
    act_moe = tok * ((k_top + shared) * ffn_e * xp.where(rc_act, e_lin * up, e * up + e_lin)
                     + k_top * (xp.where(rc_act, 0.0, e) + e_lin) * h) / t
    scores = xp.where((flash > 0) | (rc >= 1), 0.0, 5 * a * s_loc * s * b / t * e / 2)
    a_dense = act_rep + act_attn + act_mlp + scores
    a_moe = act_rep + act_attn + act_moe + scores
    a_full_ckpt = tok * e * h / sp_div  # full recompute keeps only each layer's input
    per_layer = xp.where(rc == 2, a_full_ckpt, (Ld * a_dense + Lm * a_moe) / xp.maximum(Ls, 1))
    working = xp.where(rc == 2, xp.maximum(a_dense, a_moe), 0.0)
    inflight = xp.minimum(m, p) * xp.where(v > 1, 1 + (p - 1) / (p * v), 1.0)
    inflight = xp.where(dual, xp.minimum(m, p + 1), inflight)  # DualPipe: PP + 1
    mem_act = k_first * Ls * per_layer * inflight + working + tok * h * e / sp_div
    logits = xp.where(p == 1, tok * V * 4 / t, 0.0)  # fp32 logits (last stage; first if p==1)
    mem_first = mem_states + mem_act + logits + RUNTIME_RESERVE_BYTES
    # the second stage: one micro-batch fewer in flight, no embedding; binds only when the
    # first stage was made lighter (uneven stages)
    inflight_2 = xp.minimum(m, xp.maximum(p - 1, 1)) * xp.where(v > 1, 1 + (p - 2) / (p * v),
                                                                 1.0)
    mem_mid = xp.where(p > 2, mem_states_mid + k_mid * Ls * per_layer * inflight_2 + working
                       + RUNTIME_RESERVE_BYTES, 0.0)
    # last stage: one micro-batch in flight per chunk, no embedding unless tied, logits
    last_inflight = xp.where(dual, inflight, 1.0)
    a_mtp = n_mtp * xp.where(rc == 2, a_full_ckpt, xp.where(n_moe > 0, a_moe, a_dense))
    # without pipelining the one stage also holds the MTP modules
    mem_first = mem_first + xp.where(p == 1, copies * (P_mtp_dense * state_dense
                                                       + P_mtp_exp * state_exp)
                                     + a_mtp * inflight + n_mtp * tok * V * 4 / t, 0.0)
    # logits (fp32) of one micro-batch at a time, the main head's and each MTP head's
    mem_last = xp.where(p > 1, mem_states_last + (k_last * Ls * per_layer + a_mtp)
                        * last_inflight + working + (1 + n_mtp) * tok * V * 4 / t
                        + RUNTIME_RESERVE_BYTES, 0.0)
    mem_total = xp.maximum(xp.maximum(mem_first, mem_last), mem_mid)

    # --- FLOP accounting (model FLOPs: no recompute, full-sequence attention convention)
    # linear-layer weights of attention (norm weights excluded) and the attention core
    P_attn_lin = P_attn - 2 * h - xp.where(mla, r_q + r_kv, 0.0)
    attn_tok = 2 * s * a * (d_qk + d_v)  # QK^T and AV, full sequence (4 s h for MHA)
    fwd_dense_tok = 2 * P_attn_lin + 2 * P_dense_mlp + attn_tok
    fwd_moe_tok = (2 * P_attn_lin + 2 * h * E_safe + 2 * (k_top + shared) * P_expert
                   + attn_tok)
    # MTP modules count: their layer, projection and LM head run for every token
    fwd_mtp_tok = n_mtp * (xp.where(n_moe > 0, fwd_moe_tok, fwd_dense_tok) + 4 * h * h
                           + 2 * h * V)
    fwd_tok = (L - n_moe) * fwd_dense_tok + n_moe * fwd_moe_tok + 2 * h * V + fwd_mtp_tok
    tokens = f["global_batch"] * s
    model_flops = 3 * fwd_tok * tokens
    # the causal convention: attention scores and values over the unmasked half only (what
    # flash kernels execute); model FLOPs above keep the full-sequence convention
    # (Narayanan et al. 2021, PaLM's 12 L H Q T term)
    model_flops_causal = model_flops - 3 * (L + n_mtp) * attn_tok / 2 * tokens
    recompute_tok = xp.where(rc == 2, (L - n_moe) * fwd_dense_tok + n_moe * fwd_moe_tok,
                             xp.where(rc == 1, L * attn_tok, 0.0))
    hw_flops = model_flops + recompute_tok * tokens
    devices = t * p * d * cp
    peak = f["peak_flops"]

    # the slowest stage's share of layers (1 with even stages)
    k_slow = xp.where(p > 1, xp.where(stage_max == first * slow, k_first, xp.where(
        stage_max == last * slow, k_last, k_mid)), 1.0)
    stage_comp = stage_max - (k_slow * (tp_stage + ep_stage) + p2p) * slow
    # operator table: one dense layer, forward, one micro-batch, one rank
    ops = {
        "qkv_proj": (F_qkv, xp.where(mla, gemm_bytes(T, h, r_q + r_kv + d_r, e_lin)
                                     + gemm_bytes(T, r_q + r_kv, (q_w + a * (d_qk - d_r + d_v))
                                                  / t, e_lin), gemm_bytes(T, h, n_qkv, e_lin)),
                     t_qkv),
        "attention_core": (F_attn, xp.where(flash > 0, 4 * T * h * e / t, 6.5 * S_bytes),
                           t_att_f),
        "attention_out_proj": (F_out, gemm_bytes(T, o_w / t, h, e_lin), t_out),
        "mlp_up": (F_up, gemm_bytes(T, h, ffn * up / t, e_lin), t_up),
        "mlp_down": (F_down, gemm_bytes(T, ffn / t, h, e_lin), t_down),
        "norms_residual_activation": (0.0 * T, ew_f, t_ew_f),
        "kernel_launches": (0.0 * T, 0.0 * T, t_launch_f + 0.0 * T),
        "tp_comm": (0.0 * T, 4 * M_tp * (t - 1) / xp.maximum(t, 1), t_tp_f),
    }
    op_cols = {}
    for name, (fl, by, tm) in ops.items():
        op_cols[f"_op_{name}_flops"] = fl
        op_cols[f"_op_{name}_bytes"] = by
        op_cols[f"_op_{name}_time_s"] = tm
    return {
        **op_cols,
        "step_time_s": step,
        "tokens_per_s": tokens / step,
        "model_tflops_per_device": model_flops / step / devices / units.TFLOP,
        "mfu": model_flops / (step * devices * peak),
        "model_tflops_causal_per_device": model_flops_causal / step / devices / units.TFLOP,
        "mfu_causal": model_flops_causal / (step * devices * peak),
        "hfu": hw_flops / (step * devices * peak),
        "memory_per_device_gib": mem_total / units.GiB,
        "fits_memory": mem_total <= f["memory_bytes"],
        "devices": devices,
        "micro_batches": m,
        "compute_s": m * stage_comp,
        "tp_comm_s": m * k_slow * tp_stage * slow,
        "ep_comm_s": m * k_slow * ep_stage * slow,
        "pp_comm_s": m * p2p * slow,
        "bubble_s": bubble,
        "dp_comm_s": dp_exposed + z3,
        "optimizer_s": t_opt,
        "model_flops_per_step": model_flops,
        "params_per_device": P_rank,
        # stage pieces for the pipeline simulation (per micro-batch, whole stage, v chunks)
        "_stage_f_s": base_f + (tp_stage + ep_stage) / 2,
        "_stage_b_s": base_b + (tp_stage + ep_stage) / 2,
        "_emb_f_s": t_emb_f, "_emb_b_s": t_emb_b,
        "_head_f_s": t_head_f, "_head_b_s": t_head_b,
        "_p2p_s": c_pp,
        "_k_first": k_first + 0.0 * p, "_k_mid": k_mid + 0.0 * p, "_k_last": k_last + 0.0 * p,
        "_dp_s": dp_exposed + z3,
    }


# ---------------------------------------------------------------------------- frames and jobs

def job_row(job: TrainJob, spec: DeviceSpec | None = None) -> dict[str, Any]:
    """Flatten a job (and its device) into one row of the batch API's input columns."""
    spec = spec or load_device(job.device).spec
    par = job.parallelism
    return {
        **model_columns(job.model),
        "tp": par.tp, "pp": par.pp, "dp": par.dp, "cp": par.cp, "ep": par.ep,
        "micro_batch": par.micro_batch, "virtual_stages": par.virtual_stages,
        "pp_first_layers": par.first_stage_layers or 0,
        "pp_last_layers": par.last_stage_layers or 0,
        "dualpipe": int(par.schedule == "dualpipe"),
        "rc_norm": int("layernorm" in par.recompute_modules),
        "rc_mla_up": int("mla_up_proj" in par.recompute_modules),
        "rc_moe_act": int("moe_act" in par.recompute_modules),
        "overlap_tp": int(job.overlap_tp_comm and par.tp > 1),
        "overlap_ep": int(job.overlap_ep_comm),
        "overlap_ag": int(job.overlap_param_gather),
        "sequence_parallel": int(par.sequence_parallel and par.tp > 1),
        "recompute": RECOMPUTE_CODE[par.recompute], "zero": par.zero,
        "global_batch": job.global_batch,
        **device_columns(spec, job.precision),
        **job_columns(job.precision, job.attention, job.straggler_slowdown,
                      job.overlap_dp_comm),
    }


def model_columns(model: TransformerModel) -> dict[str, float]:
    """The model's input columns of the batch API (:data:`MODEL_COLUMNS`)."""
    moe = model.moe
    return {
        "layers": model.layers, "hidden": model.hidden, "heads": model.heads,
        "kv_heads": model.n_kv_heads, "ffn_hidden": model.ffn_hidden,
        "gated_mlp": int(model.gated_mlp), "vocab": model.vocab, "seq_len": model.seq_len,
        "tied_embeddings": int(model.tied_embeddings),
        "moe_experts": moe.experts if moe else 0, "moe_top_k": moe.top_k if moe else 0,
        "moe_ffn_hidden": moe.ffn_hidden if moe else 0,
        "moe_shared": moe.shared_experts if moe else 0, "moe_layers": model.n_moe_layers,
        "dropout": int(model.dropout), "head_dim": model.head_dim or 0,
        "moe_max_nodes": (moe.max_nodes or 0) if moe else 0, "mtp": model.mtp_layers,
        **mla_columns(model),
    }


def mla_columns(model: TransformerModel) -> dict[str, float]:
    """MLA's optional columns (all 0 for grouped-query attention)."""
    m = model.mla
    if m is None:
        return {"mla_q_rank": 0, "mla_kv_rank": 0, "mla_qk_head": 0, "mla_rope_head": 0,
                "mla_v_head": 0}
    return {"mla_q_rank": m.q_lora_rank, "mla_kv_rank": m.kv_lora_rank,
            "mla_qk_head": m.qk_head_dim, "mla_rope_head": m.rope_head_dim,
            "mla_v_head": m.v_head_dim}


def job_columns(precision: str, attention: str = "flash", straggler: float = 1.0,
                overlap_dp: bool = True) -> dict[str, float]:
    """The job-level input columns of the batch API (:data:`JOB_COLUMNS`)."""
    return {
        "act_bytes": ACT_BYTES[precision], "weight_bytes": WEIGHT_BYTES[precision],
        "grad_bytes": GRAD_BYTES[precision], "opt_bytes": OPT_BYTES[precision],
        "flash": int(attention == "flash"), "straggler": straggler,
        "overlap_dp": int(overlap_dp), "fp8": int(precision == "fp8"),
    }


def device_columns(spec: DeviceSpec, precision: str) -> dict[str, float]:
    return {
        "peak_flops": spec.flops(precision), PEAK_ACT: spec.flops(ACT_DTYPE[precision]),
        "memory_bytes": spec.memory_bytes,
        "memory_bw_Bps": spec.memory_bw_Bps, "eff_compute": spec.eff_compute,
        "eff_memory": spec.eff_memory, "eff_comm": spec.eff_comm,
        "gemm_half_flop": spec.gemm_half_flop, "kernel_overhead_s": spec.kernel_overhead_s,
        "scaleup_bw_Bps": spec.scaleup_bw_Bps, "scaleup_latency_s": spec.scaleup_latency_s,
        "scaleout_bw_Bps": spec.scaleout_bw_Bps, "scaleout_latency_s": spec.scaleout_latency_s,
        "scaleup_domain": spec.scaleup_domain,
    }


def model_params(model: TransformerModel) -> float:
    """The model's parameters: the batch model's per-rank count on a single rank (one copy
    of the formulas; device and job columns do not enter it)."""
    one = {k: 1.0 for k in LAYOUT_COLUMNS + DEVICE_COLUMNS + JOB_COLUMNS}
    one.update(sequence_parallel=0.0, recompute=0.0, zero=0.0, flash=1.0)
    out = estimate_arrays({**one, **model_columns(model)})
    return float(np.asarray(out["params_per_device"]).ravel()[0])


def _estimate_one(row: dict[str, Any]) -> dict[str, Any]:
    """One configuration on Python floats (:mod:`accelsim.xp`: the same formulas at
    interpreter speed); a value numpy would turn into inf or nan (a division by zero, a
    log of zero) reruns it on one-element arrays, with numpy's semantics."""
    try:
        return estimate_arrays({k: float(v) for k, v in row.items()})
    except (ZeroDivisionError, OverflowError, ValueError):
        with np.errstate(all="ignore"):
            out = estimate_arrays({k: np.asarray([v], dtype=float) for k, v in row.items()})
        return {k: np.asarray(v).ravel()[0] for k, v in out.items()}


def estimate_frame(configs: pd.DataFrame) -> pd.DataFrame:
    """Batch API: a DataFrame with :data:`INPUT_COLUMNS` in, estimates (one row each) out.

    Rows are not layout-checked here (the search generates only valid ones); use
    :func:`accelsim.training.job.layout_problems` for user input.
    """
    import pandas as pd

    missing = [col for col in INPUT_COLUMNS if col not in configs.columns]
    if missing:
        raise AccelsimError.single("configs", ", ".join(missing), "missing input columns")
    out = estimate_arrays({k: configs[k].to_numpy() for k in INPUT_COLUMNS
                           + [c for c in [*OPTIONAL_COLUMNS, PEAK_ACT]
                              if c in configs.columns]})
    return pd.DataFrame(out, index=configs.index)


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
    stage_times: dict[str, float]
    ops: list[dict[str, Any]]

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


def estimate(job: TrainJob, engine: str = "analytic", file: str = "job",
             spec: DeviceLike | None = None) -> TrainResult:
    """Estimate one training step on ``spec`` (a resolved DeviceSpec or DeviceProfile);
    without it, the job's own device reference is resolved. ``engine='des'`` simulates the
    pipeline schedule in simpy."""
    check_job(job, file)
    spec = as_spec(spec, file) if spec is not None else load_device(
        job.device, where=file, field="device").spec
    spec.flops(job.precision, where=file)  # an unsupported precision names the job file
    row = _estimate_one(job_row(job, spec))
    r = {k: float(v) for k, v in row.items()}
    breakdown = {
        "compute_s": r["compute_s"], "tp_comm_s": r["tp_comm_s"], "ep_comm_s": r["ep_comm_s"],
        "pp_comm_s": r["pp_comm_s"], "pipeline_bubble_s": r["bubble_s"],
        "dp_comm_s": r["dp_comm_s"], "optimizer_s": r["optimizer_s"],
    }
    step = r["step_time_s"]
    if engine == "des":
        from accelsim.training.pipeline import simulate_step

        if job.parallelism.schedule != "1f1b":
            raise AccelsimError.single(file, "parallelism.schedule", "the des engine simulates "
                                       "1f1b and interleaved schedules; expected 1f1b, or "
                                       "engine analytic for dualpipe")

        sim = simulate_step(job, r)
        scale = step / sim.step_time_s
        step = sim.step_time_s
        others = sum(v for k, v in breakdown.items() if k != "pipeline_bubble_s")
        breakdown["pipeline_bubble_s"] = max(step - others, 0.0)
        for key in ("tokens_per_s", "model_tflops_per_device", "mfu", "hfu",
                    "model_tflops_causal_per_device", "mfu_causal"):
            r[key] *= scale
    elif engine != "analytic":
        raise AccelsimError.single(file, "engine", f"expected analytic or des, got {engine!r}")
    return TrainResult(
        job=job, step_time_s=step, tokens_per_s=r["tokens_per_s"],
        model_tflops_per_device=r["model_tflops_per_device"], mfu=r["mfu"], hfu=r["hfu"],
        memory_per_device_gib=r["memory_per_device_gib"],
        model_tflops_causal_per_device=r["model_tflops_causal_per_device"],
        mfu_causal=r["mfu_causal"],
        device_memory_gib=spec.memory_bytes / units.GiB, fits_memory=bool(r["fits_memory"]),
        breakdown=breakdown, engine=engine,
        stage_times={k: r[k] for k in r if k.startswith("_") and not k.startswith("_op_")},
        ops=_op_table(r, spec.flops(job.precision) / spec.memory_bw_Bps),
    )


def _op_table(r: dict[str, float], ridge: float) -> list[dict[str, Any]]:
    """One dense layer's forward operators (one micro-batch, one rank) and what bounds each:
    compute when its FLOP/byte exceeds the device's ridge point (peak / memory bandwidth)."""
    names = [k[4:-7] for k in r if k.startswith("_op_") and k.endswith("_time_s")]
    out = []
    for n in names:
        fl, by, tm = r[f"_op_{n}_flops"], r[f"_op_{n}_bytes"], r[f"_op_{n}_time_s"]
        intensity = fl / by if by > 0 else float("inf") if fl > 0 else 0.0
        if n == "tp_comm":
            bound = "communication"
        elif n == "kernel_launches":
            bound = "launch overhead"
        else:
            bound = "compute" if intensity > ridge else "memory"
        out.append({"op": n, "flops": fl, "bytes": by, "flop_per_byte": intensity,
                    "time_s": tm, "bound": bound})
    return out

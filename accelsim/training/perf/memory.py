"""Memory per rank (Korthikanti et al. 2022, arXiv 2205.05198, generalised to GQA, MLA,
gated MLPs, MoE, FP8 and flash attention), bytes: the heaviest of the first, a middle and
the last pipeline stage, as the job's software stack holds it (the ``mem_*`` columns,
:mod:`accelsim.stack_memory`).

  states       weights, gradients and optimizer state per parameter, sharded by ZeRO stage
               over the data-parallel group (experts over their smaller group); without a
               low-precision weight copy (``mem_weight_copy`` 0) the fp32 master alone
  activations  per layer and micro-batch, what the backward pass needs (recipes: widths
               per tensor; recomputed modules hold nothing), times the micro-batches in
               flight on the stage (min(m, p), more with interleaving, p + 1 for DualPipe)
  layer phase  the layer in its backward pass (its activations' gradients, its recomputed
               activations under full recomputation) and, under ZeRO-3/FSDP, the gathered
               weights and unsharded gradients of the units in flight (``mem_z3_live``
               layers, or weight tensors with ``mem_z3_tensor``)
  loss phase   one micro-batch's logits on the stage with the LM head (and MTP heads),
               ``mem_logit_bytes`` per element, and the gathered head under ZeRO-3
  phases       summed, or the larger (``mem_phase_max``: liveness-planned buffers)
  workspace    GEMM library workspace (``mem_workspace``)
  runtime      RUNTIME_RESERVE_BYTES: device context and communicator buffers, outside the
               framework's allocator

:func:`memory` is what must fit (the caching allocator frees its cache and retries before
it fails, so the fit needs what is allocated, not what it keeps); :func:`reserved` is what
the allocator holds when memory is plentiful (torch.cuda.max_memory_reserved, what
torchtitan and most logs report): allocated / (1 - ``mem_frag``), capped at the device.
"""

from __future__ import annotations

from typing import Any

from accelsim import xp
from accelsim.runtime import RUNTIME_RESERVE_BYTES
from accelsim.stack_memory import StackMemory
from accelsim.training.perf.layer import Micro
from accelsim.training.perf.step import DataParallel, RankParams, Stages, grad_width

# The gradients of one layer's activations live while that layer's backward runs, as a
# share of the layer's held activations (assumption: each saved tensor's gradient is made
# once and freed after its consumer; the wide MLP tensors dominate both).
BACKWARD_GRADS = 1.0


def _with(f: dict[str, Any], stack: StackMemory | None) -> dict[str, Any]:
    """The columns with ``stack``'s memory terms in place of the job's (None: as given)."""
    return f if stack is None else {**f, **stack.columns()}


def memory(f: dict[str, Any], u: Micro, st: Stages, pr: RankParams, dp: DataParallel,
           stack: StackMemory | None = None) -> Any:
    """Bytes that must fit on the fullest rank: what the framework allocates at its peak
    and the runtime outside it (module docstring)."""
    return allocated(f, u, st, pr, dp, stack) + RUNTIME_RESERVE_BYTES


def reserved(f: dict[str, Any], u: Micro, st: Stages, pr: RankParams, dp: DataParallel,
             stack: StackMemory | None = None) -> Any:
    """Bytes the caching allocator holds at the peak with memory to spare (what
    ``torch.cuda.max_memory_reserved`` reports): allocated / (1 - fragmentation), at most
    the device's memory less the runtime outside the allocator."""
    f = _with(f, stack)
    return xp.minimum(allocated(f, u, st, pr, dp) / (1.0 - f["mem_frag"]),
                      f["memory_bytes"] - RUNTIME_RESERVE_BYTES)


def allocated(f: dict[str, Any], u: Micro, st: Stages, pr: RankParams, dp: DataParallel,
              stack: StackMemory | None = None) -> Any:
    """Bytes the framework's allocator hands out at the fullest rank's peak."""
    f = _with(f, stack)
    g, e, e_lin, sp_div = u.g, u.e, u.e_lin, u.sp_div
    h, up, mla = g.h, g.up, g.mla
    t, p, v, b = f["tp"], f["pp"], f["virtual_stages"], f["micro_batch"]
    rc, flash, zero = f["recompute"], f["flash"], f["zero"]
    n_moe, n_mtp, V = f["moe_layers"], f["mtp"], f["vocab"]
    k_top, ffn_e, shared = f["moe_top_k"], f["moe_ffn_hidden"], f["moe_shared"]
    Ls, Ld, Lm, m = st.Ls, st.Ld, st.Lm, st.m
    D, De, copies = dp.D, dp.De, dp.copies
    dual = f["dualpipe"] > 0
    gb, ob = grad_width(f), f["opt_bytes"]  # gradient buffers at the reduction width
    # the weights as held: the low-precision copy beside the optimizer's fp32 master, or
    # the master alone (opt_bytes hold it) when the stack casts at each use
    wb_gather = f["weight_bytes"]
    wb = wb_gather * f["mem_weight_copy"]
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
    mem_states = copies * (pr.first_dense * state_dense
                           + st.k_first * pr.layers_expert * state_exp)
    mem_states_mid = copies * (pr.mid_dense * state_dense + st.k_mid * pr.layers_expert * state_exp)
    # MTP modules (last stage): projection, one layer; the LM head and embedding are shared
    P_mtp_dense = n_mtp * ((g.attn_split + 2 * h * h + xp.where(
        n_moe > 0, shared * g.expert + h * g.experts, g.dense_mlp)) / t + g.attn_rep)
    P_mtp_exp = n_mtp * xp.where(n_moe > 0, (g.experts / f["ep"]) * g.expert / t, 0.0)
    # the last stage holds the LM head (Megatron keeps a copy there even when tied)
    mem_states_last = copies * (st.k_last * (pr.layers * state_dense
                                             + pr.layers_expert * state_exp)
                                + pr.emb / t * state_dense + P_mtp_dense * state_dense
                                + P_mtp_exp * state_exp)
    tok = u.s_loc * b
    # replicated part (norm inputs, residual inputs; two 1-byte dropout masks when the model
    # has dropout): 4e h + 2 h per token
    # (the two norm outputs feed linear GEMMs: held at the GEMM input width, FP8 or not)
    rc_norm, rc_mla, rc_act = f["rc_norm"] > 0, (f["rc_mla_up"] > 0) & mla, f["rc_moe_act"] > 0
    # torchtitan's per-op selective checkpointing (alternate_mm) holds the block's input, the
    # outputs of the Q, V, gate and down matmuls and of the attention kernel: no norm
    # outputs, no K, output-projection or up outputs, no activation output
    alt = f["rc_alt_mm"] > 0
    # MaxText's save_dot_except_mlpwi (mlp_in): no norm output, no attention output
    # ('context'), no MLP input projection or activation output is held; the output and MLP
    # output projections' dots are (their outputs, h wide, sharded over the tensor axis)
    mi = f["rc_mlp_in"] > 0
    act_rep = xp.where(alt, tok * 2 * e * h / sp_div,
                       tok * (2 * e * h + xp.where(rc_norm | mi, 0.0, 2 * e_lin * h)
                              + 2 * h * f["dropout"]) / sp_div)
    # Q, K, V and the attention output for flash's backward, the output projection's input;
    # MLA also holds the latents (the up-projections' inputs, replicated)
    act_attn = (tok * (xp.where(rc_mla, 0.0, e * (g.q_w + xp.where(alt, 0.0, g.k_w) + g.v_w))
                       + xp.where(mi, 2 * e * h, e_lin * g.o_w)) / t
                + xp.where(mla, tok * e_lin * (g.r_q + g.r_kv), 0.0))
    # gated MLP: gate and up outputs for the activation's backward, the down-proj input
    act_mlp = xp.where(alt, tok * f["ffn_hidden"] * e,  # the gate's (or fc1's) output
                       xp.where(mi, 0.0, tok * f["ffn_hidden"] * (e * up + e_lin))) / t
    # MoE: per routed copy the expert's input (GEMM width) and output (the combine's input,
    # for the gate's gradient); per expert pass the activation's inputs and output. With the
    # activation recomputed (moe_act, DeepSeek-V3 section 3.3.2) its inputs are the cache
    # and are held at the GEMM input width (FP8 under fp8), its output is not held, and the
    # gate's gradient comes from the recomputed output (dL/dg_i = <dL/ds_i, s_i>), so the
    # expert outputs are not held either
    act_moe = tok * ((k_top + shared) * ffn_e * xp.where(rc_act, e_lin * up, e * up + e_lin)
                     + k_top * (xp.where(rc_act, 0.0, e) + e_lin) * h) / t
    fused = flash > 0
    if type(fused) is bool and fused:  # flash in every row: no scores held
        scores = xp.where(rc >= 1, 0.0, 0.0)
    else:
        scores = xp.where(fused | (rc >= 1), 0.0,
                          5 * g.a * u.s_loc * f["seq_len"] * b / t * e / 2)
    a_dense = act_rep + act_attn + act_mlp + scores
    a_moe = act_rep + act_attn + act_moe + scores
    a_full_ckpt = tok * e * h / sp_div  # full recompute keeps only each layer's input
    per_layer = xp.where(rc == 2, a_full_ckpt, (Ld * a_dense + Lm * a_moe) / xp.maximum(Ls, 1))
    # the layer in its backward pass: the gradients of its activations as they are made
    # (about one layer's activations, BACKWARD_GRADS), and under full recomputation the
    # recomputed activations themselves
    layer_act = xp.maximum(a_dense, a_moe)
    working = (xp.where(rc == 2, 1.0, 0.0) + BACKWARD_GRADS) * layer_act
    inflight = xp.minimum(m, p) * xp.where(v > 1, 1 + (p - 1) / (p * v), 1.0)
    if not xp.never(dual):
        inflight = xp.where(dual, xp.minimum(m, p + 1), inflight)  # DualPipe: PP + 1
    saved_first = st.k_first * Ls * per_layer * inflight + tok * h * e / sp_div
    LB = f["mem_logit_bytes"]
    # ZeRO-3/FSDP: the gathered weights and, in backward, unsharded gradients of the units in
    # flight (mem_z3_live layers, or weight tensors: the largest, the MLP's input projection
    # or a rank's stacked experts), and the LM head's (embedding's) while the loss runs
    z3 = zero >= 3
    gz = xp.where(f["mem_z3_grad_bytes"] > 0, f["mem_z3_grad_bytes"], gb)
    per_layer_w = (pr.layers + pr.layers_expert) / xp.maximum(Ls, 1)
    by_tensor = f["mem_z3_tensor"] > 0
    # with pipelining, a stack that keeps the stage's weights gathered between micro-batches
    # (mem_z3_pp_hold) holds every layer of the stage unsharded, and their gradients
    # accumulate unsharded until the last micro-batch's reduce-scatter
    pp_hold = f["mem_z3_pp_hold"] > 0
    live = xp.minimum(f["mem_z3_live"], xp.maximum(Ls, 1))
    layers_live = live if xp.never(pp_hold) else xp.where(
        (p > 1) & pp_hold, xp.maximum(Ls, 1), live)
    if xp.never(by_tensor):
        unit = layers_live * per_layer_w
    else:
        biggest = xp.maximum(h * xp.maximum(f["ffn_hidden"] * up, g.q_w), xp.where(
            n_moe > 0, (g.experts / f["ep"]) * h * ffn_e * up, 0.0)) / t
        unit = xp.where(by_tensor, f["mem_z3_live"] * biggest, layers_live * per_layer_w)
    gathered = xp.where(z3, unit * (wb_gather + gz), 0.0)
    head_gathered = xp.where(z3, pr.emb / t * (wb_gather + gz), 0.0)
    # Two moments of the step hold the transient terms: a layer's backward (its working set
    # and the gathered units) and the loss (the logits and the gathered head). A compiler's
    # liveness-planned buffers reuse one's space for the other (mem_phase_max 1: the larger);
    # a caching allocator's figures are taken as their sum (mem_phase_max 0)
    layer_phase = working + gathered
    reuse = f["mem_phase_max"] > 0

    def peak(loss: Any) -> Any:
        return xp.where(reuse, xp.maximum(layer_phase, loss), layer_phase + loss)

    ws = f["mem_workspace"]
    # last stage: one micro-batch in flight per chunk, no embedding unless tied, logits
    last_inflight = xp.where(dual, inflight, 1.0)
    a_mtp = n_mtp * xp.where(rc == 2, a_full_ckpt, xp.where(n_moe > 0, a_moe, a_dense))
    # without pipelining the one stage holds the logits (and the MTP modules and heads')
    mtp_first = xp.where(p == 1, copies * (P_mtp_dense * state_dense + P_mtp_exp * state_exp)
                         + a_mtp * inflight, 0.0)
    loss_first = xp.where(p == 1, (1 + n_mtp) * tok * V * LB / t + head_gathered, 0.0)
    mem_first = mem_states + saved_first + mtp_first + peak(loss_first) + ws
    # the second stage: one micro-batch fewer in flight, no embedding; binds only when the
    # first stage was made lighter (uneven stages)
    inflight_2 = xp.minimum(m, xp.maximum(p - 1, 1)) * xp.where(v > 1, 1 + (p - 2) / (p * v),
                                                                 1.0)
    mem_mid = xp.where(p > 2, mem_states_mid + st.k_mid * Ls * per_layer * inflight_2
                       + layer_phase + ws, 0.0)
    # logits of one micro-batch at a time, the main head's and each MTP head's
    loss_last = (1 + n_mtp) * tok * V * LB / t + head_gathered
    mem_last = xp.where(p > 1, mem_states_last + (st.k_last * Ls * per_layer + a_mtp)
                        * last_inflight + peak(loss_last) + ws, 0.0)
    return xp.maximum(xp.maximum(mem_first, mem_last), mem_mid)

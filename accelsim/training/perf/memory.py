"""Memory per rank (Korthikanti et al. 2022, arXiv 2205.05198, generalised to GQA, MLA,
gated MLPs, MoE, FP8 and flash attention), bytes: the heaviest of the first, a middle and
the last pipeline stage, as the framework holds it (:class:`StackMemory`).

  states       weights, gradients and optimizer state per parameter, sharded by ZeRO stage
               over the data-parallel group (experts over their smaller group)
  activations  per layer and micro-batch, what the backward pass needs (recipes: widths
               per tensor; recomputed modules hold nothing), times the micro-batches in
               flight on the stage (min(m, p), more with interleaving, p + 1 for DualPipe)
  logits       one micro-batch's logits on the stage with the LM head (and MTP heads) at
               the loss's peak: ``logit_bytes`` per element (the head's bf16 output beside
               the fp32 copy the loss works on)
  gathered     ZeRO-3/FSDP: the unsharded weights and gradients of the layers in flight
               (``zero3_live_layers``) and of the LM head while the loss runs
  workspace    GEMM library workspace (``workspace_bytes``)
  runtime      RUNTIME_RESERVE_BYTES: CUDA context and communicator buffers, outside the
               framework's allocator

:func:`memory` is what must fit (the caching allocator frees its cache and retries before
it fails, so the fit needs what is allocated, not what it keeps); :func:`reserved` is what
the allocator holds when memory is plentiful (torch.cuda.max_memory_reserved, what
torchtitan and most logs report): allocated / (1 - ``fragmentation``), capped at the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accelsim import units, xp
from accelsim.runtime import RUNTIME_RESERVE_BYTES
from accelsim.training.perf.layer import Micro
from accelsim.training.perf.step import DataParallel, RankParams, Stages


@dataclass(frozen=True)
class StackMemory:
    """What a training software stack adds to the tensors the model holds, per device."""

    name: str
    logit_bytes: float
    """Bytes per logit element at the loss's peak."""
    zero3_live_layers: float
    """Transformer layers whose weights (and, in backward, gradients) are gathered at once
    under ZeRO-3/FSDP: the one computing and the one prefetched."""
    fragmentation: float
    """The caching allocator's (reserved - allocated) / reserved with memory to spare."""
    workspace_bytes: float
    """GEMM library workspace held per device."""


# Megatron-LM / Megatron-Core (NeMo, Megatron-Bridge): the loss is
# ``vocab_parallel_cross_entropy(logits.float(), labels)`` (megatron/core/models/gpt/
# gpt_model.py), whose softmax is computed in place in the fp32 copy and saved for the
# backward pass: the bf16 head output (2 B) beside the fp32 copy (4 B). Distributed optimizer
# buffers: states per parameter 6 + 12/d bytes with bf16 params and fp32 grads (Megatron-LM
# docs/source/api-guide/dist_optimizer.md), which ``zero`` 1 already is; gradients reduce
# in place in the contiguous grad buffer (no bucket copies). Transformer Engine's cuBLASLt
# workspace: 32 MiB per GEMM stream on Hopper (transformer_engine/pytorch/module/base.py
# get_workspace), two streams with communication overlap (assumption). ZeRO-3/FSDP: two
# gathered layers as PyTorch FSDP2 (assumption for Megatron-Core's FSDP).
MEGATRON = StackMemory("megatron", logit_bytes=6.0, zero3_live_layers=2.0,
                       fragmentation=0.15, workspace_bytes=2 * 32 * units.MiB)
# PyTorch-native (torchtitan, FSDP2): the loss is ``cross_entropy(pred.float(), labels)``
# (torchtitan train.py at 9dec370): bf16 logits (2 B), their fp32 copy (4 B) and the fp32
# log-softmax output saved for the backward pass (4 B) are live together; FSDP2 reshards
# every block after its forward and prefetches the next one (torchtitan
# parallelize_llama.py; PyTorch fully_shard docs): two gathered layers. cuBLAS workspace:
# PyTorch's default 4096 KiB x 8 per handle (CUBLAS_WORKSPACE_CONFIG, torch docs
# "Reproducibility"), one compute stream.
PYTORCH = StackMemory("pytorch", logit_bytes=10.0, zero3_live_layers=2.0,
                      fragmentation=0.15, workspace_bytes=8 * 4 * units.MiB)
# Both allocators are PyTorch's caching allocator: fragmentation 15 % on average (up to
# 33 %) over eight LLMs trained on A100-80GB (Guo et al., GMLake, ASPLOS 2024, arXiv
# 2401.08156, abstract and section 2); the rest of the memory it holds is cache.
STACKS = {s.name: s for s in (MEGATRON, PYTORCH)}
# The gradients of one layer's activations live while that layer's backward runs, as a
# share of the layer's held activations (assumption: each saved tensor's gradient is made
# once and freed after its consumer; the wide MLP tensors dominate both).
BACKWARD_GRADS = 1.0
DEFAULT_STACK = MEGATRON  # the published runs' stack (configs/runs: Megatron and NeMo)


def memory(f: dict[str, Any], u: Micro, st: Stages, pr: RankParams, dp: DataParallel,
           stack: StackMemory = DEFAULT_STACK) -> Any:
    """Bytes that must fit on the fullest rank: what the framework allocates at its peak
    and the runtime outside it (module docstring)."""
    return allocated(f, u, st, pr, dp, stack) + RUNTIME_RESERVE_BYTES


def reserved(f: dict[str, Any], u: Micro, st: Stages, pr: RankParams, dp: DataParallel,
             stack: StackMemory = DEFAULT_STACK) -> Any:
    """Bytes the caching allocator holds at the peak with memory to spare (what
    ``torch.cuda.max_memory_reserved`` reports): allocated / (1 - fragmentation), at most
    the device's memory less the runtime outside the allocator."""
    return xp.minimum(allocated(f, u, st, pr, dp, stack) / (1.0 - stack.fragmentation),
                      f["memory_bytes"] - RUNTIME_RESERVE_BYTES)


def allocated(f: dict[str, Any], u: Micro, st: Stages, pr: RankParams, dp: DataParallel,
              stack: StackMemory = DEFAULT_STACK) -> Any:
    """Bytes the framework's allocator hands out at the fullest rank's peak."""
    g, e, e_lin, sp_div = u.g, u.e, u.e_lin, u.sp_div
    h, up, mla = g.h, g.up, g.mla
    t, p, v, b = f["tp"], f["pp"], f["virtual_stages"], f["micro_batch"]
    rc, flash, zero = f["recompute"], f["flash"], f["zero"]
    n_moe, n_mtp, V = f["moe_layers"], f["mtp"], f["vocab"]
    k_top, ffn_e, shared = f["moe_top_k"], f["moe_ffn_hidden"], f["moe_shared"]
    Ls, Ld, Lm, m = st.Ls, st.Ld, st.Lm, st.m
    D, De, copies = dp.D, dp.De, dp.copies
    dual = f["dualpipe"] > 0
    wb, gb, ob = f["weight_bytes"], f["grad_bytes"], f["opt_bytes"]
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
    act_rep = tok * (2 * e * h + xp.where(rc_norm, 0.0, 2 * e_lin * h)
                     + 2 * h * f["dropout"]) / sp_div
    # Q, K, V and the attention output for flash's backward, the output projection's input;
    # MLA also holds the latents (the up-projections' inputs, replicated)
    act_attn = (tok * (xp.where(rc_mla, 0.0, e * (g.q_w + g.k_w + g.v_w)) + e_lin * g.o_w) / t
                + xp.where(mla, tok * e_lin * (g.r_q + g.r_kv), 0.0))
    # gated MLP: gate and up outputs for the activation's backward, the down-proj input
    act_mlp = tok * f["ffn_hidden"] * (e * up + e_lin) / t
    # MoE: per routed copy the expert's input (GEMM width) and output (the combine's input,
    # for the gate's gradient); per expert pass the activation's inputs and output. With the
    # activation recomputed (moe_act, DeepSeek-V3 section 3.3.2) its inputs are the cache
    # and are held at the GEMM input width (FP8 under fp8), its output is not held, and the
    # gate's gradient comes from the recomputed output (dL/dg_i = <dL/ds_i, s_i>), so the
    # expert outputs are not held either
    act_moe = tok * ((k_top + shared) * ffn_e * xp.where(rc_act, e_lin * up, e * up + e_lin)
                     + k_top * (xp.where(rc_act, 0.0, e) + e_lin) * h) / t
    scores = xp.where((flash > 0) | (rc >= 1), 0.0,
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
    inflight = xp.where(dual, xp.minimum(m, p + 1), inflight)  # DualPipe: PP + 1
    mem_act = st.k_first * Ls * per_layer * inflight + working + tok * h * e / sp_div
    LB = stack.logit_bytes
    logits = xp.where(p == 1, tok * V * LB / t, 0.0)  # logits (last stage; first if p==1)
    # ZeRO-3/FSDP: the gathered weights and, in backward, gradients of the layers in flight,
    # and the LM head's (embedding's) while the loss runs
    z3 = zero >= 3
    per_layer_w = (pr.layers + pr.layers_expert) / xp.maximum(Ls, 1)
    gathered = xp.where(z3, xp.minimum(stack.zero3_live_layers, xp.maximum(Ls, 1))
                        * per_layer_w * (wb + gb), 0.0)
    head_gathered = xp.where(z3, pr.emb / t * (wb + gb), 0.0)
    extra = gathered + stack.workspace_bytes
    mem_first = (mem_states + mem_act + logits + extra
                 + xp.where(p == 1, head_gathered, 0.0))
    # the second stage: one micro-batch fewer in flight, no embedding; binds only when the
    # first stage was made lighter (uneven stages)
    inflight_2 = xp.minimum(m, xp.maximum(p - 1, 1)) * xp.where(v > 1, 1 + (p - 2) / (p * v),
                                                                 1.0)
    mem_mid = xp.where(p > 2, mem_states_mid + st.k_mid * Ls * per_layer * inflight_2 + working
                       + extra, 0.0)
    # last stage: one micro-batch in flight per chunk, no embedding unless tied, logits
    last_inflight = xp.where(dual, inflight, 1.0)
    a_mtp = n_mtp * xp.where(rc == 2, a_full_ckpt, xp.where(n_moe > 0, a_moe, a_dense))
    # without pipelining the one stage also holds the MTP modules
    mem_first = mem_first + xp.where(p == 1, copies * (P_mtp_dense * state_dense
                                                       + P_mtp_exp * state_exp)
                                     + a_mtp * inflight + n_mtp * tok * V * LB / t, 0.0)
    # logits of one micro-batch at a time, the main head's and each MTP head's
    mem_last = xp.where(p > 1, mem_states_last + (st.k_last * Ls * per_layer + a_mtp)
                        * last_inflight + working + (1 + n_mtp) * tok * V * LB / t
                        + extra + head_gathered, 0.0)
    return xp.maximum(xp.maximum(mem_first, mem_last), mem_mid)

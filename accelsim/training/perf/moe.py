"""A Mixture-of-Experts layer on one rank, one micro-batch: the dense layer with its MLP
replaced by routed experts, shared experts and the router, and the expert-parallel
all-to-all around them.

  experts     E/ep local experts, each on T ep k / E tokens (balanced routing), plus the
              shared experts on every token and the router (activation precision)
  all-to-all  dispatch at the GEMM input width (FP8 when the experts run FP8, as in
              DeepSeek-V3), combine at the activation width. The EP group spans
              ceil(ep / g) scale-up domains of g ranks; a token's copies to other domains
              cross the scale-out network: k of them, or with node-limited routing
              (DeepSeek-V3: at most M nodes per token, sent once per node and forwarded
              inside it) min(M, k); copies inside a domain use the scale-up link. The
              slower of the two links bounds the exchange.
  host        a stack that dispatches a dropless MoE layer eagerly (``moe_host_op_s`` > 0)
              syncs the router's token counts to the host in every forward before the
              dispatcher's all-to-all (Megatron-Core core_v0.15.0 transformer/moe/
              token_dispatcher.py: preprocess() sets cuda_sync_point "before_ep_alltoall",
              lines 521-524, and _maybe_dtoh_and_synchronize() calls d2h_event.synchronize(),
              lines 857-859; with ep 1, "before_finish"), so the host cannot run ahead of a
              layer: each MoE layer's forward and backward take max(GPU time, host ops x
              moe_host_op_s) (:func:`host_excess`). Host ops per layer and micro-batch:
              HOST_OPS_FIXED_{F,B} + E/ep x (HOST_OPS_EXPERT_{F,B} + fp8 x HOST_OPS_FP8_{F,B}),
              less the CUDA-graphed scopes' (HOST_OPS_GRAPH: attn, moe_router,
              moe_preprocess), whose kernels replay from one launch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accelsim import xp
from accelsim.training.perf.layer import Layer, Micro, gemm, mem
from accelsim.training.perf.recipes import FP8_CAST_FWD_BYTES

# Host operations of one MoE transformer layer (attention + MoE) per micro-batch.
# NVIDIA's profile of Qwen3-30B-A3B on 16 H100 (Megatron-Bridge skills/nemo-mbridge-perf-moe-
# comm-overlap/SKILL.md at 067f987d, "HybridEP production-shape validation": BF16, TP1 PP1
# EP16, MBS 1, GBS 1024): 463,348 kernels per step on rank 0 = 151 per MoE layer and
# micro-batch (64 micro-batches x 48 layers), with 128 / 16 = 8 local experts. Transformer
# Engine's GroupedLinear (transformer_engine/pytorch/module/grouped_linear.py at v2.9:
# general_grouped_gemm, one cuBLAS GEMM per expert, forward line 171, dgrad 363, wgrad 413)
# issues per local expert and expert linear (fc1, fc2) one GEMM forward and two backward:
# 6 per local expert, 48 of the 151; the other 103 per layer, a third forward and two thirds
# backward (assumption: the backward's two GEMMs per forward GEMM and its elementwise grads).
# FP8 adds per expert and linear a quantize of its input forward and of its output gradient
# backward (tex.split_quantize, lines 127 and 316-327: one kernel per split, our reading).
HOST_OPS_FIXED_F = 34.0
HOST_OPS_FIXED_B = 69.0
HOST_OPS_EXPERT_F = 2.0
HOST_OPS_EXPERT_B = 4.0
HOST_OPS_FP8_F = 2.0
HOST_OPS_FP8_B = 2.0
# Operations a CUDA-graphed scope takes off the host, forward and backward (assumption, our
# count of Megatron-Core core_v0.15.0: attn: input norm, QKV GEMM, two RoPEs, the fused
# attention, the output GEMM, bias-dropout-add and their FP8 casts, ~12 forward and twice as
# many backward; moe_router: gating GEMM, top-k softmax, aux loss terms, ~8 each way;
# moe_preprocess: token_dispatcher.py preprocess() lines 471-545, ~10 reductions, slices
# and the counts' all-gather, forward only)
HOST_OPS_GRAPH = {"graph_attn": (12.0, 24.0), "graph_router": (8.0, 8.0),
                  "graph_pre": (10.0, 0.0)}


def host_ops(f: dict[str, Any]) -> tuple[Any, Any]:
    """Host-issued operations of one MoE layer per micro-batch, forward and backward."""
    E_loc = f["moe_experts"] / f["ep"]
    fp8 = f["fp8"]
    n_f = HOST_OPS_FIXED_F + E_loc * (HOST_OPS_EXPERT_F + fp8 * HOST_OPS_FP8_F)
    n_b = HOST_OPS_FIXED_B + E_loc * (HOST_OPS_EXPERT_B + fp8 * HOST_OPS_FP8_B)
    for col, (g_f, g_b) in HOST_OPS_GRAPH.items():
        n_f = n_f - f[col] * g_f
        n_b = n_b - f[col] * g_b
    return n_f, n_b


def segment(gpu_s: Any, host_ops_n: Any, op_s: Any) -> Any:
    """A stretch of work between two host synchronisations: the longer of its GPU time and
    the host's time to issue it (``host_ops_n`` operations of ``op_s`` each)."""
    return xp.maximum(gpu_s, host_ops_n * op_s)


def host_excess(f: dict[str, Any], gpu_f: Any, gpu_b: Any) -> Any:
    """Seconds a MoE layer's forward and backward (GPU times ``gpu_f``, ``gpu_b``) wait on the
    host per micro-batch: segment(...) - GPU time, each pass (0 without ``moe_host_op_s``)."""
    op_s = f["moe_host_op_s"]
    if xp.never(op_s > 0):
        return 0.0
    n_f, n_b = host_ops(f)
    return (segment(gpu_f, n_f, op_s) - gpu_f) + (segment(gpu_b, n_b, op_s) - gpu_b)


@dataclass
class MoELayer:
    """Seconds of a MoE layer (one rank, one micro-batch)."""

    t_ffn_f: Any  # experts, shared experts, router, their elementwise kernels, forward
    t_dense_ffn_f: Any  # what the dense MLP it replaces took, forward
    t_a2a: Any  # one all-to-all (dispatch or combine)
    t_f: Any  # the whole layer, forward
    t_b: Any  # the whole layer, backward


# No row has a MoE layer: every term of a MoE layer is weighted by the MoE layers per stage
# (0) or chosen away by ``moe_layers > 0``, and its values are finite there (no experts:
# empty GEMMs), so zeros give the same numbers without evaluating it.
_NO_MOE = MoELayer(t_ffn_f=0.0, t_dense_ffn_f=0.0, t_a2a=0.0, t_f=0.0, t_b=0.0)


def moe_layer(f: dict[str, Any], u: Micro, ly: Layer) -> MoELayer:
    n_moe = f["moe_layers"]
    if not (n_moe > 0 if type(n_moe) is float else (n_moe > 0).any()):
        return _NO_MOE
    g, T, e = u.g, u.T, u.e
    h, up = g.h, g.up
    t, cp, ep = f["tp"], f["cp"], f["ep"]
    k_top, ffn_e, shared = f["moe_top_k"], f["moe_ffn_hidden"], f["moe_shared"]
    fp8, sp_div = f["fp8"], u.sp_div
    E_safe = g.experts
    E_loc = E_safe / ep
    tok_e = T * ep * k_top / E_safe  # tokens reaching each local expert
    t_ffn_f = (E_loc * (gemm(tok_e, h, ffn_e * up / t, f) + gemm(tok_e, ffn_e / t, h, f))
               + xp.where(shared > 0, gemm(T, h, ffn_e * shared * (up + 1) / t, f), 0.0)
               + gemm(T, h, E_safe / t, f, linear=False)  # router
               + mem(T * k_top * ffn_e * e * (up + 1) / t, f)
               + fp8 * mem(FP8_CAST_FWD_BYTES * T * k_top * (h + ffn_e) / t, f)
               + 2 * E_loc * f["kernel_overhead_s"])
    t_dense_ffn_f = (ly.t_up + ly.t_down + mem(T * f["ffn_hidden"] * e * (up + 1) / t, f)
                     + fp8 * mem(FP8_CAST_FWD_BYTES * T * (h / sp_div + f["ffn_hidden"] / t),
                                 f))
    g_ep = xp.clip(xp.floor(f["scaleup_domain"] / (t * cp)), 1.0, ep)  # EP ranks per domain
    nodes_ep = xp.ceil(ep / g_ep)
    remote = (nodes_ep - 1) / xp.maximum(nodes_ep, 1.0)
    M_lim = f["moe_max_nodes"]
    copies_out = xp.where(M_lim > 0, xp.minimum(xp.minimum(M_lim, k_top), nodes_ep),
                          k_top) * remote
    tok_sp = T / sp_div
    e_disp = u.e_lin + e
    t_a2a_one = xp.maximum(tok_sp * copies_out * h * e_disp / u.bw_out,
                           tok_sp * k_top * h * e_disp * (g_ep - 1) / xp.maximum(ep, 1.0)
                           / u.bw_in)
    t_a2a = xp.where(ep > 1, t_a2a_one + 2 * (ep - 1) * xp.where(nodes_ep > 1, u.a_out,
                                                                   u.a_in), 0.0)
    return MoELayer(t_ffn_f=t_ffn_f, t_dense_ffn_f=t_dense_ffn_f, t_a2a=t_a2a,
                    t_f=ly.t_f - t_dense_ffn_f + t_ffn_f,
                    t_b=ly.t_b - 2 * t_dense_ffn_f + 2 * t_ffn_f)

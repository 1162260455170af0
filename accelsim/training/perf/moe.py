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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accelsim import xp
from accelsim.training.perf.layer import Layer, Micro, gemm, mem
from accelsim.training.perf.recipes import FP8_CAST_FWD_BYTES


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

"""FLOPs of one step: model FLOPs (no recomputation, full-sequence attention: Narayanan et
al. 2021, PaLM's 12 L H Q T term), the causal convention (attention over the unmasked half,
what flash kernels execute), and hardware FLOPs (recomputation included, with the GEMMs the
recompute modules add or spare, and the down projections a checkpoint that stops at the
layer's last saved tensor does not recompute)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accelsim import xp
from accelsim.training.perf.layer import Micro


@dataclass
class Flops:
    model: Any
    model_causal: Any
    hardware: Any


def flops(f: dict[str, Any], u: Micro) -> Flops:
    g = u.g
    h, V, s, L = g.h, f["vocab"], f["seq_len"], f["layers"]
    n_moe, n_mtp = f["moe_layers"], f["mtp"]
    attn_tok = 2 * s * g.a * (g.d_qk + g.d_v)  # QK^T and AV, full sequence (4 s h for MHA)
    fwd_dense_tok = 2 * g.attn_linear + 2 * g.dense_mlp + attn_tok
    fwd_moe_tok = (2 * g.attn_linear + 2 * h * g.experts
                   + 2 * (f["moe_top_k"] + f["moe_shared"]) * g.expert + attn_tok)
    # MTP modules count: their layer, projection and LM head run for every token
    fwd_mtp_tok = n_mtp * (xp.where(n_moe > 0, fwd_moe_tok, fwd_dense_tok) + 4 * h * h
                           + 2 * h * V)
    fwd_tok = (L - n_moe) * fwd_dense_tok + n_moe * fwd_moe_tok + 2 * h * V + fwd_mtp_tok
    tokens = f["global_batch"] * s
    model = 3 * fwd_tok * tokens
    rc = f["recompute"]
    # recompute modules' GEMMs: torchtitan's alternate matmuls (K, output, up) recomputed,
    # MaxText's offloaded Q, K, V projection not
    alt_tok = xp.where(f["rc_alt_mm"] > 0, 2 * h * (g.k_w + g.o_w + f["ffn_hidden"]), 0.0)
    qkv_tok = xp.where(f["rc_qkv_off"] > 0, 2 * h * (g.q_w + g.k_w + g.v_w), 0.0)
    # a checkpoint that stops at the last saved tensor: no dense layer's down projection
    # (parallel layers: the attention output projection too)
    down_tok = xp.where(f["rc_early_stop"] > 0,
                        2 * f["ffn_hidden"] * h + f["parallel"] * 2 * g.o_w * h, 0.0)
    recompute_tok = xp.where(rc == 2, (L - n_moe) * (fwd_dense_tok - down_tok)
                             + n_moe * fwd_moe_tok - L * qkv_tok,
                             xp.where(rc == 1, L * attn_tok, 0.0) + L * alt_tok)
    return Flops(model=model, model_causal=model - 3 * (L + n_mtp) * attn_tok / 2 * tokens,
                 hardware=model + recompute_tok * tokens)

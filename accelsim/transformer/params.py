"""What a transformer's shape implies, over the batch API's model columns (scalars or numpy
arrays, :mod:`accelsim.xp`): per-layer geometry and weight counts, the one copy of these
formulas for training (:mod:`accelsim.training.perf`) and serving (:mod:`accelsim.llm`).

Attention is grouped-query (Q, K, V from h) or multi-head latent (MLA, DeepSeek-V2/V3,
arXiv 2405.04434): Q and the joint KV go through low-rank latents (``q_rank``, ``kv_rank``;
the down-projections are replicated over tensor-parallel ranks, as in Megatron-core), and K
carries ``rope_head`` decoupled rotary dimensions shared by the heads. Weights per layer::

  attention, split over TP    GQA: h (a d + 2 kv d) + a d h
                              MLA: q-up (r_q a d_qk + r_q, or h a d_qk) + kv-up
                                   r_kv a (d_qk - d_r + d_v) + r_kv + a d_v h
  attention, replicated       MLA: h r_q + h (r_kv + d_r); both: 2 h (the norms)
  dense MLP                   h ffn (up + 1)           (up = 2 for a gated MLP)
  one expert                  h ffn_e (up + 1); router h E
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accelsim import xp
from accelsim.transformer.model import TransformerModel

# The model's input columns of the batch API (``model_columns`` fills them).
MODEL_COLUMNS = ["layers", "hidden", "heads", "kv_heads", "ffn_hidden", "gated_mlp", "vocab",
                 "seq_len", "tied_embeddings", "moe_experts", "moe_top_k", "moe_ffn_hidden",
                 "moe_shared", "moe_layers"]


def model_columns(model: TransformerModel) -> dict[str, float]:
    """The model's columns of the batch API (:data:`MODEL_COLUMNS` and the optional ones:
    dropout, head_dim, parallel layers, causal attention, node-limited routing, MTP modules,
    MLA)."""
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
        "parallel": int(model.parallel_layers), "causal": int(model.causal),
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


@dataclass
class Shape:
    """One layer's geometry and weights (scalars or arrays, one element per configuration)."""

    h: Any  # hidden
    a: Any  # query heads
    kv: Any  # key/value heads
    hd: Any  # head dimension (GQA)
    up: Any  # up-projection matrices: 2 for a gated MLP
    mla: Any  # multi-head latent attention (bool)
    r_q: Any  # MLA query latent (0: none)
    r_kv: Any  # MLA key-value latent
    d_r: Any  # MLA decoupled rotary dims
    d_qk: Any  # query/key head dimension
    d_v: Any  # value head dimension
    q_w: Any  # query width a d_qk
    k_w: Any  # key width as attention reads it
    v_w: Any  # value width
    o_w: Any  # attention output width a d_v (the output projection's input)
    attn_split: Any  # attention weights split over TP ranks
    attn_rep: Any  # attention weights replicated on every TP rank (norms included)
    dense_mlp: Any  # dense MLP weights
    expert: Any  # one routed or shared expert's weights
    experts: Any  # routed experts per MoE layer (at least 1)

    @property
    def attn(self) -> Any:
        return self.attn_split + self.attn_rep

    @property
    def attn_linear(self) -> Any:
        """Attention's linear-layer weights (norm weights and MLA's latent norms excluded)."""
        return self.attn - 2 * self.h - xp.where(self.mla, self.r_q + self.r_kv, 0.0)


def shape(f: dict[str, Any]) -> Shape:
    """The geometry of the model whose columns are ``f`` (module docstring)."""
    h, a, kv = f["hidden"], f["heads"], f["kv_heads"]
    hd = xp.where(f["head_dim"] > 0, f["head_dim"], h / a)  # 0: hidden / heads
    up = 1.0 + f["gated_mlp"]
    mla = f["mla_kv_rank"] > 0
    r_q, r_kv, d_r = f["mla_q_rank"], f["mla_kv_rank"], f["mla_rope_head"]
    d_qk = xp.where(mla, f["mla_qk_head"] + d_r, hd)
    d_v = xp.where(mla, f["mla_v_head"], hd)
    q_w = a * d_qk
    o_w = a * d_v
    p_q_mla = xp.where(r_q > 0, r_q * q_w + r_q, h * q_w)
    attn_split = xp.where(mla, p_q_mla + r_kv * a * (d_qk - d_r + d_v) + r_kv,
                          h * (q_w + 2 * kv * hd)) + o_w * h
    return Shape(
        h=h, a=a, kv=kv, hd=hd, up=up, mla=mla, r_q=r_q, r_kv=r_kv, d_r=d_r, d_qk=d_qk,
        d_v=d_v, q_w=q_w, k_w=xp.where(mla, a * d_qk, kv * hd),
        v_w=xp.where(mla, a * d_v, kv * hd), o_w=o_w, attn_split=attn_split,
        attn_rep=xp.where(mla, h * r_q + h * (r_kv + d_r), 0.0) + 2 * h,
        dense_mlp=h * f["ffn_hidden"] * (up + 1), expert=h * f["moe_ffn_hidden"] * (up + 1),
        experts=xp.maximum(f["moe_experts"], 1.0))


def columns(model: TransformerModel) -> dict[str, Any]:
    """``model_columns`` as floats (every optional column present)."""
    return {k: float(v) for k, v in model_columns(model).items()}


def model_params(model: TransformerModel) -> float:
    """Parameters of the model without its multi-token-prediction modules: every layer's
    attention and MLP (experts, shared experts and routers in MoE layers), the embedding and,
    untied, the output layer."""
    f = columns(model)
    g = shape(f)
    n_moe = f["moe_layers"]
    dense = f["layers"] - n_moe
    layers = (f["layers"] * g.attn_split + dense * g.dense_mlp
              + n_moe * (f["moe_shared"] * g.expert + g.h * g.experts)) + f["layers"] * g.attn_rep
    emb = f["vocab"] * g.h
    embeddings = emb + (0.0 if f["tied_embeddings"] > 0 else emb)
    return float(layers + embeddings + n_moe * g.experts * g.expert)

"""The decoder-only transformer every workload runs: its shape (dense or MoE feed-forward,
grouped-query or multi-head latent attention, multi-token prediction), as one schema both
training (:mod:`accelsim.training`) and LLM serving (:mod:`accelsim.llm`) embed, and its
loader from the model catalog. Field names follow Megatron-LM and Hugging Face configs."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from accelsim import refs
from accelsim.config import Strict, read_yaml, validate


class MoE(Strict):
    """Mixture-of-Experts feed-forward: ``experts`` routed experts of width ``ffn_hidden``,
    ``top_k`` per token, plus ``shared_experts`` always-on experts.
    MoE layers are every ``layer_freq``-th layer after the first ``first_dense_layers``."""

    experts: int = Field(ge=2, le=100_000)
    """Routed experts per MoE layer."""
    top_k: int = Field(ge=1, le=1024)
    """Routed experts each token is sent to."""
    ffn_hidden: int = Field(ge=1, le=10_000_000)
    """Hidden width of one expert's feed-forward."""
    shared_experts: int = Field(default=0, ge=0, le=1024)
    """Always-on experts every token also passes (DeepSeek-style)."""
    layer_freq: int = Field(default=1, ge=1, le=10_000)
    """Every layer_freq-th layer (after the dense ones) is an MoE layer."""
    first_dense_layers: int = Field(default=0, ge=0, le=10_000)
    """Leading layers with a dense feed-forward instead of experts."""
    max_nodes: int | None = Field(default=None, ge=1, le=100_000)
    """Node-limited routing (DeepSeek-V3): each token is sent to experts on at most this many
    scale-up domains, once per domain, then forwarded inside it. Not given: no limit, one
    copy per routed expert crosses the network."""

    @model_validator(mode="after")
    def _k(self) -> MoE:
        if self.top_k > self.experts:
            raise ValueError(f"top_k ({self.top_k}) must not exceed experts ({self.experts})")
        return self


class MLA(Strict):
    """Multi-head latent attention (DeepSeek-V2/V3, arXiv 2405.04434): queries and the joint
    key-value go through low-rank latents; keys and queries carry ``rope_head_dim`` extra
    decoupled rotary dimensions. Head dimensions are independent of hidden / heads."""

    q_lora_rank: int = Field(ge=0, le=1_000_000)
    """Query latent width (0: queries projected from the hidden state directly)."""
    kv_lora_rank: int = Field(ge=1, le=1_000_000)
    """Joint key-value latent width (what the KV cache holds)."""
    qk_head_dim: int = Field(ge=1, le=100_000)
    """Per-head query/key dimension without the rotary part (qk_nope_head_dim)."""
    rope_head_dim: int = Field(ge=0, le=100_000)
    """Decoupled rotary dimension added to each query/key head (qk_rope_head_dim)."""
    v_head_dim: int = Field(ge=1, le=100_000)
    """Per-head value dimension."""


class TransformerModel(Strict):
    """Decoder-only transformer (GPT / Llama family)."""

    name: str = "model"
    """Name shown in outputs."""
    layers: int = Field(ge=1, le=10_000)
    """Transformer layers."""
    hidden: int = Field(ge=1, le=1_000_000)
    """Model (residual stream) width."""
    heads: int = Field(ge=1, le=10_000)
    """Attention (query) heads."""
    kv_heads: int | None = Field(default=None, ge=1, le=10_000)
    """Key/value heads (grouped-query attention); default: heads (MHA)."""
    head_dim: int | None = Field(default=None, ge=1, le=100_000)
    """Per-head dimension when it is not hidden / heads (Qwen3: 128 with hidden 4096 and 64
    heads); default: hidden / heads."""
    ffn_hidden: int = Field(ge=1, le=10_000_000)
    """Feed-forward hidden width (per gate for a gated MLP)."""
    gated_mlp: bool = False
    """Gated feed-forward (SwiGLU: three matrices instead of two)."""
    vocab: int = Field(ge=1, le=100_000_000)
    """Vocabulary size (embedding and output layer rows)."""
    seq_len: int = Field(ge=1, le=100_000_000)
    """Tokens per training sequence."""
    tied_embeddings: bool = True
    """Input embedding and output layer share one matrix."""
    dropout: bool = True
    """Dropout after attention and MLP (GPT-3 and Megatron's default): its masks are held
    for the backward pass. Llama and DeepSeek train without it."""
    parallel_layers: bool = False
    """Attention and MLP read one norm of the layer's input and their outputs are added to
    it together (GPT-J, PaLM: Chowdhery et al. 2022 (arXiv 2204.02311) section 2 'Parallel
    Layers'; MaxText's DecoderLayer in 2023). One norm per layer; with tensor parallelism one
    input gather and one output reduction per pass instead of two each. Not given: false
    (the sequential block of GPT-3 and Llama). Read by the training model only."""
    causal: bool = True
    """Each token attends to the tokens before it only (a decoder's mask: flash attention
    skips the masked half of the score blocks); false: to every token of the sequence, the
    whole score matrix computed (an encoder; MaxText's 2023 flash path called the Pallas
    kernel with ``causal=False``). Read by the training model only."""
    moe: MoE | None = None
    """Mixture-of-Experts feed-forward; absent for a dense model."""
    mla: MLA | None = None
    """Multi-head latent attention; absent: grouped-query attention (kv_heads)."""
    mtp_layers: int = Field(default=0, ge=0, le=64)
    """Multi-token prediction modules (DeepSeek-V3: 1), each a projection, one transformer
    layer and the shared LM head, run on the last pipeline stage."""

    @model_validator(mode="after")
    def _shape(self) -> TransformerModel:
        if self.hidden % self.heads and self.head_dim is None and self.mla is None:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads}), "
                             "or give head_dim")
        kv = self.kv_heads or self.heads
        if self.heads % kv:
            raise ValueError(f"heads ({self.heads}) must be divisible by kv_heads ({kv})")
        if self.moe and self.moe.first_dense_layers >= self.layers:
            raise ValueError("moe.first_dense_layers must be below layers")
        return self

    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads or self.heads

    @property
    def n_moe_layers(self) -> int:
        if self.moe is None:
            return 0
        return len(range(self.moe.first_dense_layers, self.layers, self.moe.layer_freq))


def load_model(ref: str | Path, relative_to: str | Path | None = None, where: str = "",
               field: str = "") -> TransformerModel:
    """A catalog name (``gpt3-175b``) or a model file: either the model mapping itself or a
    job with a ``model`` key."""
    path = refs.find(ref, "models", relative_to, where, field, family="training",
                     what="training model")
    data = read_yaml(path)
    if "model" in data and isinstance(data["model"], dict):
        return validate(TransformerModel, data["model"], path, prefix="model")
    refs.check_family(data, "training", path, where, field)
    return validate(TransformerModel, data, path)

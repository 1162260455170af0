"""Cost of one serving iteration of a decoder-only model on one replica (``tp`` devices).

An iteration runs every scheduled token (prefill chunks and one decode token per running
sequence) through the model once (continuous batching, Yu et al. OSDI'22 "Orca"; vLLM).
Per device, with T tokens in the iteration:

  linear layers   sum over weight matrices of the roofline GEMM (:mod:`accelsim.roofline`)
                  with m = T: compute (2 T k n + F_half) / (peak_w eff_c) against memory
                  (w k n + e T (k + n)) / (bw eff_m): at small T the weights' read dominates
                  (decode is memory-bound), at large T the FLOPs (prefill is compute-bound)
  MoE experts     tokens spread over E experts (top-k); the experts touched, E (1 - (1 - k/E)^T),
                  are read; the replica's tp devices hold E/tp experts each (expert parallel)
  TP collectives  2 all-reduces of T h e bytes per layer on the scale-up link (ring)
  per layer       norms, residual and activation traffic; kernel_overhead per kernel
  decode attention  reads each sequence's KV cache: context x kv_bytes_per_token / (bw eff_m)
  prefill attention causal flash attention over the chunk and the context before it:
                  2 (d_qk + d_v) heads/tp per (query, key) pair, at FLASH_REL_EFF x eff_c
  LM head         one row of logits per sequence that emits a token

So an iteration costs ``linear[T] + c_kv * sum(decode contexts) + c_pf * prefill pairs +
c_head * emitting sequences``: the scheduler (:mod:`accelsim.llm.engine`) evaluates it per
iteration from this table and three coefficients.

Memory per device: weights / tp (MLA's latent KV and all embeddings included), the KV
cache of ``block_tokens`` blocks, activations of one iteration, a runtime reserve. The
KV capacity is what is left of ``memory_utilization`` x memory; a model that leaves none is
an error naming the replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim import units
from accelsim.devices import DeviceSpec, load_device
from accelsim.errors import AccelsimError
from accelsim.llm.job import Replica
from accelsim.precision import BYTES
from accelsim.training import collectives as coll
from accelsim.training.job import TransformerModel, load_model
from accelsim.training.perf import FLASH_REL_EFF, RUNTIME_RESERVE_BYTES, model_params

# Kernels per layer and iteration (QKV, rotary, attention, out-proj, 2 norms, residual adds,
# gate/up, activation, down; assumption, as in training's KERNELS_FWD).
KERNELS_PER_LAYER = 11.0
ACT_BYTES = 2.0  # activations in bf16 whatever the weight format (W8A8 GEMMs cast inside)


@dataclass(frozen=True)
class ReplicaModel:
    """What the scheduler needs of one replica kind, in seconds and tokens."""

    name: str
    linear_s: np.ndarray  # [T] seconds of everything but attention and LM head, T tokens
    c_kv: float  # seconds per context token read by a decode step
    c_pf: float  # seconds per (query, key) pair of prefill attention
    c_head: float  # seconds per sequence emitting a token (LM head + sampling)
    kv_blocks: int  # KV-cache blocks per replica
    block_tokens: int
    max_batched_tokens: int
    max_seqs: int
    tp: int
    reserve: bool  # admission reserves the whole sequence's KV (no preemption)
    weights_bytes: float  # per device
    kv_bytes_per_token: float  # per device
    spec: DeviceSpec

    @property
    def kv_tokens(self) -> int:
        return self.kv_blocks * self.block_tokens

    def iteration_s(self, tokens: Any, decode_ctx: Any, prefill_pairs: Any,
                    emitting: Any) -> Any:
        """One iteration's time (vectorized over its arguments)."""
        t = np.asarray(tokens, dtype=np.int64)
        return (self.linear_s[np.minimum(t, len(self.linear_s) - 1)] + self.c_kv * decode_ctx
                + self.c_pf * prefill_pairs + self.c_head * emitting)

    def decode_step_s(self, batch: int, context: float) -> float:
        """A pure decode iteration: ``batch`` sequences of ``context`` tokens each."""
        return float(self.iteration_s(batch, batch * context, 0.0, batch))

    def prefill_s(self, prompt: int) -> float:
        """One prompt prefilled alone in chunks of max_batched_tokens."""
        t, done = 0.0, 0
        while done < prompt:
            q = min(self.max_batched_tokens, prompt - done)
            t += float(self.iteration_s(q, 0.0, q * (done + (q + 1) / 2), 1 if
                                        done + q == prompt else 0))
            done += q
        return t


def _gemm(m: np.ndarray, k: float, n: float, wb: float, peak: float, spec: DeviceSpec
          ) -> np.ndarray:
    """Roofline GEMM with weights of ``wb`` bytes and bf16 activations."""
    compute = (2.0 * m * k * n + spec.gemm_half_flop) / (peak * spec.eff_compute)
    memory = (wb * k * n + ACT_BYTES * m * (k + n)) / (spec.memory_bw_Bps * spec.eff_memory)
    return np.where(m > 0, np.maximum(compute, memory), 0.0)


def kv_bytes_per_token(model: TransformerModel, tp: int, fmt: str) -> float:
    """KV-cache bytes one token holds on one device, all layers: GQA keeps 2 kv_heads x
    head_dim per layer, split over tp (a head is replicated when tp > kv_heads); MLA keeps
    the kv latent and the rotary key (kv_lora_rank + rope_head_dim), replicated."""
    kb = BYTES[fmt]
    if model.mla is not None:
        return (model.mla.kv_lora_rank + model.mla.rope_head_dim) * model.layers * kb
    hd = model.head_dim or model.hidden // model.heads
    kv_local = max(model.n_kv_heads / tp, 1.0)
    return 2.0 * kv_local * hd * model.layers * kb


def replica_model(r: Replica, file: str = "job", where: str = "replicas[0]",
                  spec: DeviceSpec | None = None, model: TransformerModel | None = None
                  ) -> ReplicaModel:
    """Resolve a replica's device and model and build its cost table and KV capacity."""
    spec = spec or load_device(r.device, where=file, field=f"{where}.device").spec
    model = model or load_model(r.model, where=file, field=f"{where}.model")
    if r.tp > spec.scaleup_domain:
        raise AccelsimError.single(file, f"{where}.tp", f"tp {r.tp} exceeds the scale-up "
                                   f"domain of {spec.name} ({spec.scaleup_domain} devices); "
                                   "expected tp within one domain")
    if model.heads % r.tp:
        raise AccelsimError.single(file, f"{where}.tp", f"tp ({r.tp}) must divide the "
                                   f"model's heads ({model.heads})")
    wfmt = r.weights
    # W8A8: fp8 and int8 weights run the GEMMs at that peak; 16-bit formats at bf16/fp16
    peak_w = spec.flops(wfmt, where=f"{file}: {where}.weights")
    peak_a = spec.flops("bf16", where=f"{file}: {where}.device")
    wb = BYTES[wfmt]
    tp = r.tp
    h, L, a, V = model.hidden, model.layers, model.heads, model.vocab
    kv = model.n_kv_heads
    hd = model.head_dim or h // a
    up = 2 if model.gated_mlp else 1
    T = np.arange(r.max_batched_tokens + r.max_seqs + 1, dtype=float)

    # attention projections (per device)
    if model.mla is not None:
        m = model.mla
        d_qk, d_v = m.qk_head_dim + m.rope_head_dim, m.v_head_dim
        q_in = m.q_lora_rank or h
        attn = (_gemm(T, h, m.q_lora_rank, wb, peak_w, spec) if m.q_lora_rank else 0.0) \
            + _gemm(T, q_in, a * d_qk / tp, wb, peak_w, spec) \
            + _gemm(T, h, m.kv_lora_rank + m.rope_head_dim, wb, peak_w, spec) \
            + _gemm(T, m.kv_lora_rank, a * (m.qk_head_dim + d_v) / tp, wb, peak_w, spec) \
            + _gemm(T, a * d_v / tp, h, wb, peak_w, spec)
    else:
        d_qk = d_v = hd
        attn = _gemm(T, h, (a * hd + 2 * kv * hd) / tp, wb, peak_w, spec) \
            + _gemm(T, a * hd / tp, h, wb, peak_w, spec)
    dense_mlp = _gemm(T, h, model.ffn_hidden * up / tp, wb, peak_w, spec) \
        + _gemm(T, model.ffn_hidden / tp, h, wb, peak_w, spec)
    n_moe = model.n_moe_layers
    if model.moe is not None:
        e = model.moe
        E, k = e.experts, e.top_k
        touched = E * (1.0 - (1.0 - k / E) ** T)  # experts hit by T tokens (uniform routing)
        per_exp = np.where(touched > 0, T * k / np.maximum(touched, 1e-9), 0.0)
        ff = e.ffn_hidden
        expert = (touched / tp) * (_gemm(per_exp, h, ff * up, wb, peak_w, spec)
                                   + _gemm(per_exp, ff, h, wb, peak_w, spec))
        shared = (_gemm(T, h, ff * e.shared_experts * up / tp, wb, peak_w, spec)
                  + _gemm(T, ff * e.shared_experts / tp, h, wb, peak_w, spec)
                  if e.shared_experts else 0.0)
        router = _gemm(T, h, E, 2.0, peak_a, spec)
        moe_mlp = expert + shared + router
    else:
        moe_mlp = 0.0
    mem = spec.memory_bw_Bps * spec.eff_memory
    ffn_w = (model.moe.ffn_hidden * model.moe.top_k if model.moe else model.ffn_hidden)
    elementwise = T * ACT_BYTES * (10 * h + (up + 1) * ffn_w / tp) / mem
    bw_in = spec.scaleup_bw_Bps * spec.eff_comm
    tp_comm = 2 * coll.ring_allreduce(T * h * ACT_BYTES, tp, bw_in, spec.scaleup_latency_s) \
        if tp > 1 else 0.0
    per_layer = attn + elementwise + tp_comm + KERNELS_PER_LAYER * spec.kernel_overhead_s
    # the LM head's weights are read once per iteration; each emitting row adds its FLOPs
    head_read = h * V / tp * wb / mem
    linear = L * per_layer + (L - n_moe) * dense_mlp + n_moe * moe_mlp + head_read
    linear = np.where(T > 0, linear, 0.0)

    kv_tok = kv_bytes_per_token(model, tp, r.kv_cache)
    c_kv = kv_tok / mem
    # prefill attention: FLOPs per (query, key) pair on this device, all layers
    c_pf = 2.0 * (d_qk + d_v) * (a / tp) * L / (peak_a * spec.eff_compute * FLASH_REL_EFF)
    # per emitting sequence: its row of the LM head, fp32 logits written and read to sample
    c_head = 2.0 * h * V / tp / (peak_w * spec.eff_compute) + 2 * 4.0 * V / tp / mem

    weights = model_params(model) * wb / tp
    workspace = (r.max_batched_tokens * ACT_BYTES * (4 * h + 2 * ffn_w * up / tp)
                 + r.max_seqs * V / tp * 4.0)
    free = spec.memory_bytes * r.memory_utilization - weights - workspace - RUNTIME_RESERVE_BYTES
    blocks = int(free // (kv_tok * r.block_tokens)) if free > 0 else 0
    if blocks < 1:
        need = (weights + workspace + RUNTIME_RESERVE_BYTES) / units.GiB
        raise AccelsimError.single(
            file, f"{where}.tp", f"{model.name} does not fit on {spec.name} with tp {tp}: "
            f"weights {weights / units.GiB:.1f} GiB + workspace and reserve need "
            f"{need:.1f} GiB of {spec.memory_bytes * r.memory_utilization / units.GiB:.1f} "
            "usable, leaving no KV cache; expected a larger tp, 8-bit weights or a "
            "device with more memory")
    return ReplicaModel(
        name=f"{spec.name} x{tp} {model.name}", linear_s=linear, c_kv=c_kv, c_pf=c_pf,
        c_head=c_head, kv_blocks=blocks, block_tokens=r.block_tokens,
        max_batched_tokens=r.max_batched_tokens, max_seqs=r.max_seqs, tp=tp,
        reserve=r.kv_admission == "reserve",
        weights_bytes=weights, kv_bytes_per_token=kv_tok, spec=spec)

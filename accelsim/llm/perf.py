"""Cost of one serving iteration of a decoder-only model on one replica (``tp`` x ``dp``
devices).

An iteration runs every scheduled token (prefill chunks and one decode token per running
sequence) through the model once (continuous batching, Yu et al. OSDI'22 "Orca"; vLLM).
Per device, with T tokens in the iteration:

  linear layers   sum over weight matrices of the roofline GEMM with m = T: compute (the
                  kernel model's tiles and waves, :mod:`accelsim.kernels`; without compute
                  units (2 T k n + F_half) / (peak_w eff_c)) against memory
                  (w k n + e T (k + n)) / (bw eff_m): at small T the weights' read dominates
                  (decode is memory-bound), at large T the FLOPs (prefill is compute-bound)
  MoE experts     tokens spread over S = E + redundant expert slots (top-k, balanced as EPLB
                  aims); without dp groups the device runs its S/ep slots as one grouped
                  GEMM (:func:`grouped_gemm`: one pool of tiles, the touched slots' weights
                  read), each slot's rows padded to whole tiles, E[ceil(m/tile)] row tiles
                  for its Binomial(T, k/S) count m (:func:`expert_load.expected_row_tiles`;
                  the tile the device's, shorter for small batches, :func:`moe_row_tile`);
                  with dp groups the slots touched, S (1 - (1 - k/S)^T), are read; the replica's
                  ep = tp x dp devices hold S/ep slots each (expert parallel); with dp
                  groups (tokens routed over the devices) the layer runs at the busiest
                  device's copies, the expected maximum of the devices' sampled loads,
                  mu + z_ep sqrt(mu (1 - 1/ep)) for mu = T k / ep
                  (:mod:`accelsim.llm.expert_load`), in its experts and its all-to-all
  MoE routing     without attention data parallelism the MoE layer permutes and un-permutes
                  on every device (:func:`moe_routing_bytes`): top-k over the router's
                  logits, the tokens expanded to k copies grouped by expert, and the k
                  expert outputs reduced back per token, 2 (1 + k) h e + (4 + 8 k / E) E
                  bytes per token, and MOE_ROUTING_KERNELS more kernels per layer; with dp
                  groups the all-to-all's dispatch and combine do it
  TP collectives  2 all-reduces of T h e bytes per layer on the scale-up link, as the serving
                  stack's rule picks them (:func:`serving_allreduce`): the engine's direct
                  two-shot kernel, 2 (n-1)/n M / bw + 2 alpha, while the message fits its
                  workspace (TensorRT-LLM at tp > 2: also at most 128 tokens; its one-shot
                  up to ``oneshot_max_tokens``, (n-1) M / bw + alpha), else NCCL,
                  the faster of its ring and, with in-switch reduction, NVLS,
                  (n+1)/n M / bw_red + latency; in a named topology NCCL is the topology's
                  all-reduce
  DP attention    with dp groups, attention, dense layers and the LM head run per group on
                  T/dp tokens, and each MoE layer adds an all-to-all: every device sends its
                  T/ep tokens x k copies of h to the experts (8-bit dispatch with 8-bit
                  weights, else 16-bit) and gets them back in bf16 (combine), the share
                  leaving a scale-up domain on the scale-out link (at the profile's
                  all-to-all efficiency); with ``overlap_ep_comm`` two micro-batches hide it
                  behind each other's compute (:func:`replica_model`)
  per layer       norms, residual and activation traffic; kernel_overhead per kernel
  decode attention  each sequence's query against its KV cache, the roofline of reading it,
                  context x kv_bytes_per_token / (bw eff_m), and its FLOPs, MLA's absorbed
                  form 2 heads (2 kv_lora_rank + rope) per key (compute-bound: 128 heads
                  share one latent) or GQA's 4 heads head_dim (memory-bound)
  prefill attention causal flash attention over the chunk and the context before it:
                  2 (d_qk + d_v) heads/tp per (query, key) pair, at the published kernel's
                  rate for a chunk of max_batched_tokens (:mod:`accelsim.kernels`; no
                  ``efficiency.attention``: FLASH_REL_EFF x eff_c)
  LM head         one row of logits per sequence that emits a token, and the serving
                  stack's sampling: its logits' all-gather over the TP ranks, its sampler's
                  HBM passes over the vocabulary each rank samples, the host time per
                  sequence the GPU waits for (:func:`head_seconds`)
  MTP             with d drafted tokens a decoding sequence puts 1 + d tokens through the
                  linear layers and the LM head and 1 + d queries against one KV read; the
                  MTP modules' d passes scale the iteration by 1 + d mtp_layers / layers

The serving stack is the replica's ``stack`` (:func:`serving_stack`: a serving stack that
lists the device's vendor), else the vendor's default serving stack: its all-reduce rule, its
sampling and host terms and its GEMMs' stream-K enter the table above.

So an iteration costs ``linear[T] + c_kv * sum(decode contexts) + c_pf * prefill pairs +
c_head * emitting sequences``: the scheduler (:mod:`accelsim.llm.engine`) evaluates it per
iteration from this table and three coefficients. A stack whose host work runs beside the
GPU's (an overlap scheduler, ``iteration.host_overlap_seq_us``) bounds it below by
``host_overlap * emitting sequences``: the iteration takes the larger of the two.

Memory per device: the non-expert weights / tp and the device's expert slots (MLA's latent
KV and all embeddings included), the KV cache of ``block_tokens`` blocks (its own group's
sequences), activations of one iteration, a runtime reserve. The KV capacity is what is
left of ``memory_utilization`` x memory (vLLM), or with ``memory_share_of: free``
``memory_utilization`` x what the rest leaves (TensorRT-LLM), or with ``static``
``memory_utilization`` x (memory - runtime reserve) less the weights (SGLang's
mem_fraction_static: activations and graphs outside the pool); a model that leaves none is
an error naming the replica.

With ``pp`` pipeline stages (:func:`pipeline_round`) the scheduler's iteration is one round of
TensorRT-LLM's pp micro-batches: a micro-batch of ceil(T/pp) tokens crosses all the layers
(the table above at that size) plus its sends between stages, the per-token coefficients are
divided by pp, and a device holds its stage's layers, one vocabulary table and its layers' KV.
A request is in one micro-batch of a round: it takes at most one chunk of max_batched_tokens
a round (``chunk_tokens``), and that chunk's crossing of the pipeline (``cross_s``,
``c_pf_cross``) is the least the round takes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

import numpy as np

from accelsim import collectives as coll
from accelsim import kernels, units
from accelsim.devices import DeviceSpec, load_device
from accelsim.errors import AccelsimError
from accelsim.llm import expert_load, trtllm_bench
from accelsim.llm.checks import engine_problems, pipeline_problem  # noqa: F401 (perf.<name>)
from accelsim.llm.job import Replica
from accelsim.precision import BYTES
from accelsim.roofline import FLASH_REL_EFF
from accelsim.runtime import KERNELS_PER_LAYER, RUNTIME_RESERVE_BYTES
from accelsim.stacks import AllReduceRule, IterationTerms
from accelsim.transformer.model import TransformerModel, load_model
from accelsim.transformer.params import model_params

ACT_BYTES = 2.0  # activations in bf16 whatever the weight format (W8A8 GEMMs cast inside)
# Bytes per (sequence, vocabulary entry) at the peak of vLLM's memory-profiling sampler pass.
# The pass samples max_num_seqs rows with top-k and top-p on (V0 worker/model_runner.py
# profile_run: SamplingParams(top_p=0.99, top_k=vocab_size - 1); V1
# v1/worker/gpu_model_runner.py _dummy_sampler_run: top_p 0.9, top_k V - 1), over the
# full vocabulary (the vocab-parallel LM head's logits are all-gathered on every rank). Live at
# the peak of the native path (v1/sample/ops/topk_topp_sampler.py apply_top_k_top_p): the
# model's bf16 logits (2), their fp32 copy (Sampler.forward, 4), the sorted values (4) and
# int64 indices (8), the top-k and top-p masks (1 + 1), the softmax/cumsum (4) and the
# scattered result (4): 28 bytes; plus the sort's scratch, cub's segmented radix sort holding
# a second key (4) and value (8) buffer (cub DeviceSegmentedRadixSort::SortPairs without a
# DoubleBuffer allocates them): 40. Check: vllm-project/vllm#10511 measures the same 1.26 GiB
# activation peak for Llama 3 8B at TP1 and TP2 (256 seqs x 128,256: 1.22 GiB at 40 bytes),
# tests/test_engine_memory.py.
SAMPLER_BYTES_PER_LOGIT = 40.0
# Kernels a tensor-parallel MoE layer adds to a dense one around its expert GEMMs: top-k
# gating softmax, the sort of the T k (expert, token) keys, the per-expert row offsets, the
# expansion of the input rows and the finalize reduction (TensorRT-LLM's
# CutlassMoeFCRunner::runMoe, cpp/tensorrt_llm/kernels/mixtureOfExperts/moe_kernels.cu:
# topkGatingSoftmax, CubKeyValueSorter, computeTotalRowsBeforeExpert, expandInputRows,
# finalizeMoeRouting; vLLM's fused_moe has the same steps as topk_softmax,
# moe_align_block_size and moe_sum, the expansion gathered inside its GEMM). The router
# GEMM and the gated activation are counted with the other GEMMs and elementwise kernels.
MOE_ROUTING_KERNELS = 5.0


def moe_routing_bytes(hidden: float, experts: float, top_k: float,
                      act_bytes: float = ACT_BYTES) -> float:
    """HBM bytes per token of a tensor-parallel MoE layer's routing around its expert GEMMs
    (the kernels of MOE_ROUTING_KERNELS): the top-k softmax reads the token's E fp32
    logits and writes k fp32 weights and k int32 expert ids, 4 E + 8 k; the expansion reads
    the token's row once and writes its k copies grouped by expert, (1 + k) h e; the
    finalize reduction reads the k expert outputs and writes the token's row,
    (k + 1) h e. The sort's int32 keys (a few passes over T k keys) are left out: under
    1 % of the rest at h >= 1024."""
    return 4.0 * experts + 8.0 * top_k + 2.0 * (1.0 + top_k) * hidden * act_bytes


@dataclass(frozen=True)
class ReplicaModel:
    """What the scheduler needs of one replica kind, in seconds and tokens."""

    name: str
    linear_s: np.ndarray  # [T] seconds of everything but attention and LM head, T tokens
    c_kv_read: float  # seconds per context token of a decode: reading its KV cache
    c_kv_flop: float  # seconds per context token of a decode: one query's FLOPs against it
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
    dp: int = 1  # attention data-parallel groups (the replica spans tp x dp devices)
    draft_tokens: int = 0  # multi-token prediction: tokens drafted per decode step
    draft_extra: float = 0.0  # accepted drafts per step on average, a + ... + a^d
    mtp_scale: float = 1.0  # 1 + d x mtp_layers / layers: the MTP modules' passes
    host_overlap_s: float = 0.0  # overlapped host seconds per emitting sequence (its group's)
    prefill_first: bool = False  # an iteration that can prefill carries no decodes
    estimate: bool = False  # SGLang's admission: prompt + ratio x output must fit
    pp: int = 1  # pipeline stages (the replica spans tp x dp x pp devices)
    # a request's most prompt tokens per iteration (0: max_batched_tokens): with pp stages
    # one micro-batch's max_num_tokens, a request being in one micro-batch of a round
    chunk_tokens: int = 0
    # with pp stages: seconds for one micro-batch of q tokens (a request's chunk) to cross
    # the pipeline, [q] for q up to chunk_tokens (empty: no pipeline), and per prefill
    # (query, key) pair of that chunk (:func:`pipeline_round`)
    cross_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    c_pf_cross: float = 0.0

    @property
    def chunk(self) -> int:
        """A request's most prompt tokens per iteration."""
        return self.chunk_tokens or self.max_batched_tokens

    def crossing_s(self, q: int, pairs: float) -> float:
        """Seconds one request's prefill chunk of ``q`` tokens and ``pairs`` (query, key)
        pairs takes to cross the pipeline in its micro-batch: the least its round can take
        (0 without a pipeline)."""
        if len(self.cross_s) == 0 or q <= 0:
            return 0.0
        return float(self.cross_s[q] + self.c_pf_cross * pairs)

    @property
    def c_kv(self) -> float:
        """Seconds per context token of a decode step: the roofline of one KV read against
        the FLOPs of its 1 + draft_tokens queries."""
        return max(self.c_kv_read, (1 + self.draft_tokens) * self.c_kv_flop)

    @property
    def tokens_per_step(self) -> float:
        """Output tokens a decoding sequence gains per iteration on average."""
        return 1.0 + self.draft_extra

    @property
    def devices(self) -> int:
        return self.tp * self.dp * self.pp

    @property
    def kv_tokens(self) -> int:
        return self.kv_blocks * self.block_tokens

    def iteration_s(self, tokens: Any, decode_ctx: Any, prefill_pairs: Any,
                    emitting: Any, crossing: Any = 0.0) -> Any:
        """One iteration's time (vectorized over its arguments): ``tokens`` through the
        linear layers (a decoding sequence counts 1 + draft_tokens), ``decode_ctx`` context
        tokens read by the decodes, ``prefill_pairs`` (query, key) pairs of prefill
        attention, ``emitting`` rows of the LM head, at least ``crossing`` (with pp stages:
        the longest :meth:`crossing_s` of the round's prefill chunks); the MTP modules'
        passes scale it. With an overlapped host (``host_overlap_s``) it takes at least
        ``host_overlap_s x emitting``."""
        t = np.asarray(tokens, dtype=np.int64)
        gpu = np.maximum(self.linear_s[np.minimum(t, len(self.linear_s) - 1)]
                         + self.c_kv * decode_ctx + self.c_pf * prefill_pairs
                         + self.c_head * emitting, crossing) * self.mtp_scale
        if self.host_overlap_s <= 0.0:
            return gpu
        return np.maximum(gpu, self.host_overlap_s * np.asarray(emitting, dtype=np.float64))

    def decode_step_s(self, batch: int, context: float) -> float:
        """A pure decode iteration: ``batch`` sequences of ``context`` tokens each. With
        multi-token prediction every sequence verifies 1 + d tokens: the linear layers and
        the LM head see batch (1 + d) rows, the KV cache is read once and its FLOPs paid
        1 + d times (``c_kv``), and the MTP modules' passes scale the step."""
        q = batch * (1 + self.draft_tokens)
        return float(self.iteration_s(q, batch * context, 0.0, q))

    def prefill_s(self, prompt: int) -> float:
        """One prompt prefilled alone in chunks of :attr:`chunk` tokens (max_batched_tokens;
        with pp stages one micro-batch's, each crossing the pipeline)."""
        t, done = 0.0, 0
        while done < prompt:
            q = min(self.chunk, prompt - done)
            pairs = q * (done + (q + 1) / 2)
            t += float(self.iteration_s(q, 0.0, pairs, 1 if done + q == prompt else 0,
                                        self.crossing_s(q, pairs)))
            done += q
        return t


def _gemm(m: np.ndarray, k: float, n: float, wb: float, peak: float, spec: DeviceSpec,
          key: Any = None, sk: float | None = None) -> np.ndarray:
    """Roofline GEMM with weights of ``wb`` bytes and bf16 activations: the kernel model's
    tiles and waves (:mod:`accelsim.kernels`) when the profile gives its compute units,
    else the size curve. ``key``: a name for the values of ``m`` (the fast path's): the
    kernel model's lines for this shape and geometry are built once (:func:`_lines`).
    ``sk``: whether the serving stack's GEMMs are stream-K (:class:`ServingStack`; not
    given: the vendor's default serving stack's)."""
    if sk is None:
        sk = _stream_k(spec.vendor)
    lines = _lines(key, m, k, n, wb, spec, sk) if spec.compute_units > 0 and key else None
    if lines is not None:
        return lines.time(peak, spec.eff_compute, spec.memory_bw_Bps, spec.eff_memory)
    if spec.compute_units > 0:
        compute = kernels.gemm_compute_time(m, n, k, ACT_BYTES, peak, spec.eff_compute,
                                            float(spec.compute_units), spec.tile_m,
                                            spec.tile_n, spec.memory_bw_Bps, spec.eff_memory,
                                            sk)
    else:
        compute = (2.0 * m * k * n + spec.gemm_half_flop) / (peak * spec.eff_compute)
    memory = (wb * k * n + ACT_BYTES * m * (k + n)) / (spec.memory_bw_Bps * spec.eff_memory)
    return np.where(m > 0, np.maximum(compute, memory), 0.0)


def grouped_gemm(rows: np.ndarray, experts: Any, k: float, n: float, wb: float, peak: float,
                 spec: DeviceSpec, key: Any = None, sk: float | None = None) -> np.ndarray:
    """A grouped GEMM: ``experts`` weight matrices of k x n (``wb`` bytes an element) over
    ``rows`` rows in all, each expert's rows already padded to whole tiles. The experts'
    tiles share one pool of compute units (a grouped kernel's tile scheduler), so its
    compute is one GEMM's over all the rows (:func:`_gemm` without weights: the kernel
    model's tiles and waves), against the memory of every expert's weights read once and
    the bf16 activations in and out, (experts wb k n + e rows (k + n)) / (bw eff_m).
    Checked against DeepGEMM's grouped FP8 GEMMs on H800
    (tests/data/kernels/deepgemm-h800-fp8-grouped.csv)."""
    rows = np.asarray(rows, dtype=float)
    compute = _gemm(rows, k, n, 0.0, peak, spec, key, sk)
    memory = (experts * wb * k * n + ACT_BYTES * rows * (k + n)) / (
        spec.memory_bw_Bps * spec.eff_memory)
    return np.where(rows > 0, np.maximum(compute, memory), 0.0)


# The fast path's GEMM lines, by (m's name, shape, geometry), and the keys asked for once
# (lines are built the second time: a geometry seen once, a drawn count of compute units,
# is cheaper through :func:`accelsim.kernels.gemm_compute_time`); emptied when full.
_LINES: dict[tuple[Any, ...], kernels.GemmLines] = {}
_ASKED: set[tuple[Any, ...]] = set()
LINES_MAX = 2048


def _lines(key: Any, m: np.ndarray, k: float, n: float, wb: float, spec: DeviceSpec,
           sk: float) -> kernels.GemmLines | None:
    """:func:`accelsim.kernels.gemm_lines` of one GEMM of :func:`_gemm` (its bytes: the
    weights once and the bf16 activations in and out), kept for the next device of the
    same geometry (an uncertainty draw, a sweep's point); None the first time a key is
    asked for; ``sk``: the serving stack's stream-K."""
    full = (key, len(m), k, n, wb, spec.compute_units, spec.tile_m, spec.tile_n, sk)
    got = _LINES.get(full)
    if got is None:
        if full not in _ASKED:
            if len(_ASKED) >= 16 * LINES_MAX:
                _ASKED.clear()
            _ASKED.add(full)
            return None
        if len(_LINES) >= LINES_MAX:
            _LINES.clear()
        moved = wb * k * n + ACT_BYTES * m * (k + n)
        got = _LINES[full] = kernels.gemm_lines(m, n, k, ACT_BYTES, float(spec.compute_units),
                                                spec.tile_m, spec.tile_n, sk, moved)
    return got


def _stream_k(vendor: str) -> float:
    """Whether the vendor's default serving stack (:mod:`accelsim.stacks`) has stream-K."""
    return serving_stack(vendor).stream_k


def attention_rate(spec: DeviceSpec, s_kv: float, head_dim: float, causal: bool) -> float:
    """Fraction of the 16-bit peak a flash-attention kernel reaches: the published kernel's
    (:func:`accelsim.kernels.attention_efficiency`) when the profile gives it, else
    FLASH_REL_EFF x eff_compute."""
    if spec.eff_attention > 0:
        return float(kernels.attention_efficiency(float(s_kv), float(head_dim), causal,
                                                  spec.eff_attention))
    return spec.eff_compute * FLASH_REL_EFF


# FP8 over 16-bit flash-attention forward on Hopper, by key length: FlashAttention-3's FP8
# forward (Shah et al. 2024, arXiv 2407.08608, Figure 7, head dim 128, no causal mask: 348,
# 596, 733, 918, 974, 1,008 TFLOP/s) over its BF16 forward (Figure 5, the same panel shape:
# 467, 565, 625, 638, 646, 648; tests/data/kernels/fa3-h100-bf16-fwd.csv), H100 80GB SXM5,
# batch x seq = 16k tokens. The short keys' ratio under 1 is that kernel's (its FP8 path
# transposes V in the kernel and carries a larger fixed cost per query block).
FP8_ATTN_SEQ = (512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0)
FP8_ATTN_SPEEDUP = (348 / 467, 596 / 565, 733 / 625, 918 / 638, 974 / 646, 1008 / 648)


def fp8_attention_speedup(s_kv: float) -> float:
    """FP8 flash attention's forward rate over the 16-bit one at ``s_kv`` keys (the table
    above, linear in log2 of the key length, held at its ends). ASSUMPTION: TensorRT-LLM's
    FP8 context FMHA (its rate is not published) gains over its 16-bit kernel what
    FlashAttention-3's FP8 kernel gains over its BF16 one, on every Hopper part."""
    x = math.log2(max(float(s_kv), 1.0))
    xs = [math.log2(s) for s in FP8_ATTN_SEQ]
    return float(np.interp(x, xs, FP8_ATTN_SPEEDUP))


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


# NCCL's all-reduce inside one scale-up domain: the one model the training step and the
# topologies use too (accelsim.collectives.nccl_allreduce)
nccl_allreduce = coll.nccl_allreduce


def serving_allreduce(M: Any, tokens: Any, n: int, bw: float, alpha: float,
                      rule: AllReduceRule | None = None, bw_red: float = 0.0,
                      lat_red: float = 0.0, nccl: Any = None) -> Any:
    """A tensor-parallel all-reduce of ``M`` bytes over ``n`` ranks of one scale-up domain in
    an iteration of ``tokens`` tokens, as the serving engine runs it.

    With a stack's rule (:func:`accelsim.stacks.allreduce_rule`) the engine's custom kernel,
    a direct reduce-scatter and all-gather through the peers' mapped buffers,
    2 (n-1)/n M / bw + 2 alpha, runs where the rule allows it (the message within the
    kernel's workspace; TensorRT-LLM at tp > 2 also at most 128 tokens) and NCCL
    (:func:`nccl_allreduce`, or ``nccl`` when given: a topology's) elsewhere: the engine's
    rule, not the faster of the two. Where the rule's ``oneshot_max_tokens`` covers the
    iteration the kernel is the one-shot, (n-1) M / bw + alpha
    (:func:`accelsim.collectives.oneshot_allreduce`). Without a rule, the fastest of ring,
    tree and the direct kernel."""
    M = np.asarray(M, dtype=float)
    direct = coll.direct_allreduce(M, n, bw, alpha)
    if rule is not None and rule.oneshot_max_tokens > 0:
        direct = np.where(np.asarray(tokens, dtype=float) <= rule.oneshot_max_tokens,
                          coll.oneshot_allreduce(M, n, bw, alpha), direct)
    if rule is None:
        best = np.minimum(coll.ring_allreduce(M, n, bw, alpha),
                          coll.tree_allreduce(M, n, bw, alpha))
        return np.minimum(best, direct) if nccl is None else nccl
    lib = nccl_allreduce(M, n, bw, alpha, bw_red, lat_red) if nccl is None else nccl
    return np.where(rule.custom_ok(M, tokens, n), direct, lib)


# The serving stack whose engines have the fused GEMM + all-reduce (:func:`fused_gemm_allreduce`)
GEMM_ALLREDUCE_STACK = "tensorrt-llm"


def gemm_allreduce_problem(spec: DeviceSpec) -> str | None:
    """Why TensorRT-LLM's fused GEMM + all-reduce cannot run among the tensor-parallel ranks
    of a ``spec`` device (None: it can). The plugin's workspace is NVLS multicast memory at
    any group size (cpp/tensorrt_llm/kernels/cutlass_kernels/allreduce_gemm/
    allreduce_gemm_impl_sm90.h at c8c6df08: the tile and completion barriers are
    DeviceAllocationNvls, TileBarrierType a MulticastSystemBarrier; at 2 ranks a staging
    buffer too), allocated by cuMulticastCreate and cuMulticastAddDevice over the group
    (cpp/tensorrt_llm/runtime/ipcNvlsMemory.cpp at 34da406d, ipcNvlsAllocate; ipcNvlsSupported
    needs CU_DEVICE_ATTRIBUTE_MULTICAST_SUPPORTED): one NVSwitch domain with NVLink SHARP.
    The device, or the topology it is placed in (its ``interconnect.topology``), must have an
    in-switch reduction; the group within one domain is replica_model's tp check."""
    if spec.topology is not None:
        from accelsim.devices import topology

        fabric = topology.of(spec)
        if fabric is not None and (fabric.scaleup.fabric != "switch"
                                   or fabric.scaleup.reduction_efficiency is None):
            kind = ("a switch without in-switch reduction (no reduction_efficiency)"
                    if fabric.scaleup.fabric == "switch" else f"a {fabric.scaleup.fabric}")
            return (f"{spec.name} is placed in topology '{fabric.name}', whose scale-up fabric "
                    f"is {kind}; gemm_allreduce needs NVLS multicast within one NVSwitch "
                    "domain (TensorRT-LLM's ipcNvlsAllocate); expected gemm_allreduce false")
    if spec.eff_reduction <= 0:
        return (f"{spec.name}'s scale-up fabric has no in-switch reduction (its profile gives "
                "no interconnect.scaleup_reduction_efficiency); gemm_allreduce needs NVLS "
                "multicast within one NVSwitch domain (TensorRT-LLM's ipcNvlsAllocate); "
                "expected gemm_allreduce false")
    return None


def fused_gemm_allreduce(gemm_s: Any, msg: Any, tokens: Any, width: float, n: int,
                         spec: DeviceSpec) -> Any:
    """A row-parallel GEMM fused with its all-reduce over ``n`` ranks (TensorRT-LLM's
    gemm_allreduce_plugin): one persistent CUTLASS kernel whose output tiles are reduced by
    warps of their own while the next tiles compute. On Hopper
    (cpp/tensorrt_llm/kernels/cutlass_kernels/allreduce_gemm/, allreduce_gemm_impl_sm90.h
    and communication/sm90_allreduce_nvls_warpspecialized.hpp): the ranks store each finished
    tile, a system barrier per tile waits for all of them, and the tile's owner (1/n of the
    tiles each) reduces it in the switch and multicasts the sum back (multimem.ld_reduce,
    multimem.st: NVLink SHARP); two GPUs read each other's tile instead. Per GEMM of
    ``gemm_s`` seconds and output ``msg`` bytes:

      comm  (n+1)/n msg / (bw eff_reduction) + alpha   in the switch (n > 2), or
            (n-1) msg / (bw eff_comm) + alpha          reading the peers' tiles
      t     (c + comm) / W + (W - 1) / W max(c, comm)  a two-stage pipeline over the W waves
                                                       of output tiles

    with W = ceil(ceil(tokens / tile_m) ceil(width / tile_n) / compute_units): the waves of
    the persistent kernel's tiles, each wave's reduction beside the next wave's mainloop, the
    last one's after it (one wave, a decode batch: the GEMM and then its reduction). alpha:
    the scale-up step latency (the tile barrier's flag; no collective call's fixed time).
    ASSUMPTIONS: the switch reduction at the profile's NVLS efficiency (eff_reduction,
    measured on NCCL's NVLS all-reduce), the mainloop not slowed by the reducing warps, and
    the device's GEMM tile for the kernel's (the profiler picks among several).
    ``spec``: the device as placed (a topology's link, efficiencies and latency, as
    :func:`accelsim.devices.topology.apply` sets them); one without NVLS is an error
    (:func:`gemm_allreduce_problem`, checked by :func:`replica_model`)."""
    why = gemm_allreduce_problem(spec) if n > 1 else None
    if why:
        raise ValueError(why)
    c = np.asarray(gemm_s, dtype=float)
    m = np.asarray(msg, dtype=float)
    bw = spec.scaleup_bw_Bps
    if n > 2:
        comm = coll.in_switch_allreduce(m, n, bw * spec.eff_reduction, spec.scaleup_latency_s)
    else:
        comm = (n - 1) * m / (bw * spec.eff_comm) + spec.scaleup_latency_s
    if spec.compute_units > 0:
        tiles = np.ceil(np.asarray(tokens, dtype=float) / spec.tile_m) * np.ceil(
            width / spec.tile_n)
        waves = np.maximum(np.ceil(tiles / spec.compute_units), 1.0)
    else:
        waves = np.ones_like(c)
    t = (c + comm) / waves + (waves - 1.0) / waves * np.maximum(c, comm)
    return np.where(m > 0, t, 0.0)


@dataclass(frozen=True)
class ServingStack:
    """What a replica's cost table reads of its serving stack (:mod:`accelsim.stacks`), with
    the stack numbers overridden here: its tensor-parallel all-reduce rule
    (:func:`serving_allreduce`), its per-sequence sampling and host costs
    (:func:`head_seconds`) and whether its GEMM library is stream-K (:func:`_gemm`). A
    vendor without a default serving stack: no rule, no terms, no stream-K."""

    name: str | None
    rule: AllReduceRule | None
    terms: IterationTerms | None
    stream_k: float


def serving_stack(vendor: str, ref: str | None = None, file: str = "job",
                  field: str = "replicas[0].stack", device: str = "") -> ServingStack:
    """The serving stack a replica on a ``vendor`` device runs: the one it names (``ref``: a
    catalog name or a path), which must be a serving stack that lists the vendor (else one
    error naming ``file`` and ``field``), or the vendor's default serving stack
    (:func:`accelsim.stacks.default_stack`). Kept per stack, overrides and (the default's)
    file stamp, so an edited stack file is read again."""
    from accelsim import stacks

    ov = stacks.current_overrides()
    if ref is None:
        return _default_serving(vendor, ov, stacks.default_stamp(vendor, "serving"))
    st = stacks.load_stack(ref, where=file, field=field)
    why = stacks.role_mismatch(st, "serving") or stacks.vendor_mismatch(st, vendor, device)
    if why:
        raise AccelsimError.single(file, field, why)
    return _of_profile(st, ov)


@lru_cache(maxsize=16)
def _default_serving(vendor: str, _overrides: Any, _stamp: tuple[int, ...]) -> ServingStack:
    from accelsim import stacks

    st = stacks.default_stack(vendor, "serving")
    return _of_profile(st, _overrides) if st is not None else ServingStack(None, None, None,
                                                                           0.0)


# The stacks' ServingStack by profile object (load_stack keeps one object per file version
# and overrides; the profile is kept beside its entry so its id is not reused)
_OF_PROFILE: dict[int, tuple[Any, ServingStack]] = {}


def _of_profile(st: Any, _overrides: Any = None) -> ServingStack:
    from accelsim import stacks

    got = _OF_PROFILE.get(id(st))
    if got is None or got[0] is not st:
        if len(_OF_PROFILE) >= 64:
            _OF_PROFILE.clear()
        got = _OF_PROFILE[id(st)] = (st, ServingStack(
            st.name, stacks.allreduce_rule(st), stacks.iteration_terms(st),
            float(st.kernels.stream_k.value)))
    return got[1]


def sampler_peak_bytes(seqs: float, vocab: float) -> float:
    """Peak bytes of vLLM's profiling sampler pass: ``SAMPLER_BYTES_PER_LOGIT x seqs x vocab``
    (top-k and top-p over the full vocabulary of max_num_seqs rows)."""
    return SAMPLER_BYTES_PER_LOGIT * seqs * vocab


def embedding_extra_bytes(embedding_params: float, wb: float) -> float:
    """Bytes the embedding table and LM head hold beyond ``wb`` per parameter: quantised
    checkpoints keep them in 16-bit, ``embedding_params x (ACT_BYTES - wb)`` when
    ``wb < ACT_BYTES``. Sources: ModelOpt quantizes only the linear layers of the transformer
    blocks (nvidia/Llama-3.1-8B-Instruct-FP8 and -405B-Instruct-FP8 cards; ModelOpt's default
    config disables the ``*lm_head*`` quantizer), and TensorRT-LLM 0.20's log of that 8B
    checkpoint, "Rank 0 uses 8.46 GB for model weights" (NVIDIA/TensorRT-LLM#6294), is
    6.98e9 fp8 + 1.05e9 x 2 bf16 bytes = 8.46 GiB, not the 7.48 GiB of all parameters in fp8;
    vLLM's ``ParallelLMHead`` and ``VocabParallelEmbedding`` are unquantized under fp8."""
    return embedding_params * max(ACT_BYTES - wb, 0.0)


def profiling_peak_bytes(h: float, ffn_up: float, vocab: float, tp: int, tokens: float,
                         seqs: float, vllm_sampler: bool, dummy_rows: float | None = None
                         ) -> float:
    """Activation peak of an engine's memory-profiling pass on one device: the forward pass of
    ``tokens`` (bf16 rows of 4 h plus the MLP's 2 x ffn_up / tp) and a logits row of V/tp fp32
    per sequence; with ``vllm_sampler`` the larger of that and :func:`sampler_peak_bytes` plus
    the forward pass's output rows (vLLM frees the forward pass's other activations before
    sampling, not its output ``hidden_states``). ``dummy_rows``: TensorRT-LLM's
    PyTorch backend, whose pass computes the logits of its dummy requests' last tokens only,
    a gathered bf16 row and its fp32 copy of the full vocabulary each
    (:data:`accelsim.llm.trtllm_bench.LOGIT_ROW_BYTES`), instead of a row per sequence."""
    logits = (dummy_rows * vocab * trtllm_bench.LOGIT_ROW_BYTES if dummy_rows is not None
              else seqs * vocab / tp * 4.0)
    forward = tokens * ACT_BYTES * (4 * h + 2 * ffn_up / tp) + logits
    if not vllm_sampler:
        return forward
    # vLLM's profile_run keeps the forward pass's output, hidden_states [tokens, h], until
    # after _dummy_sampler_run (``del hidden_states, output`` follows it; V1
    # v1/worker/gpu_model_runner.py, 0.10.x): it sits beside the sampler's buffers
    return max(forward, sampler_peak_bytes(seqs, vocab) + tokens * h * ACT_BYTES)


def head_seconds(h: float, V: float, tp: int, dp: int, peak_w: float, spec: DeviceSpec,
                 it: IterationTerms | None, steps: int = 1) -> float:
    """Seconds per sequence that samples a token (``c_head``): its row of the LM head,
    2 h V/tp / (peak_w eff_c), and what the serving stack does with the logits. Without a
    stack's :class:`accelsim.stacks.IterationTerms`, each rank writes and reads its V/tp fp32
    logits once, 2 x 4 V/tp / (bw eff_m). With them: the ranks' all-gather of the bf16
    logits, (tp-1)/tp x 2 V / (bw_scaleup eff_comm), when the stack gathers them, then the
    sampler's ``sampler_bytes`` per element over the V elements (V/tp without the gather)
    a rank samples, at HBM speed, and ``host_seq_s`` of host time the GPU waits for, once per
    host round of ``steps`` decode steps (multi-step scheduling). The device terms run per
    attention group (/ dp); so does the host's (one engine per group)."""
    mem = spec.memory_bw_Bps * spec.eff_memory
    gemm = 2.0 * h * V / tp / (peak_w * spec.eff_compute)
    if it is None:
        return (gemm + 2 * 4.0 * V / tp / mem) / dp
    gather = it.gather and tp > 1
    comm = (tp - 1) / tp * ACT_BYTES * V / (spec.scaleup_bw_Bps * spec.eff_comm) if gather \
        else 0.0
    sampled = V if gather else V / tp
    return (gemm + comm + it.sampler_bytes * sampled / mem + it.host_seq_s / steps) / dp


def _layer_costs(T: np.ndarray, r: Replica, spec: DeviceSpec, model: TransformerModel,
                 peak_w: float, peak_a: float, wb: float, tkey: Any = None,
                 stack: ServingStack | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-device seconds, for ``T`` tokens in the replica's iteration (the module
    docstring's formulas), of one dense layer, and of one MoE layer's four phases: its
    attention side (projections, norms, collectives), its expert side (routed and shared
    experts, router), the all-to-all dispatch and the combine. ``tkey``: a name for ``T`` (the fast
    path: the GEMMs' lines are kept, :func:`_lines`); ``stack``: the replica's serving stack
    (not given: :func:`serving_stack` of its ``stack`` field)."""
    st = stack if stack is not None else serving_stack(spec.vendor, r.stack)
    sk = st.stream_k
    tp, dp = r.tp, r.dp
    ep = tp * dp
    h, a = model.hidden, model.heads
    kv = model.n_kv_heads
    hd = model.head_dim or h // a
    up = 2 if model.gated_mlp else 1
    Tg = T / dp  # tokens of one attention group (balanced over the dp groups)

    def gemm(mm: np.ndarray, name: Any, k: float, n: float, w: float = wb,
             peak: float = peak_w) -> np.ndarray:
        return _gemm(mm, k, n, w, peak, spec, None if tkey is None else (tkey, name), sk)

    g = ("group", dp)
    if model.mla is not None:
        m = model.mla
        q_in = m.q_lora_rank or h
        o_proj = gemm(Tg, g, a * m.v_head_dim / tp, h)
        attn = (gemm(Tg, g, h, m.q_lora_rank) if m.q_lora_rank else 0.0) \
            + gemm(Tg, g, q_in, a * (m.qk_head_dim + m.rope_head_dim) / tp) \
            + gemm(Tg, g, h, m.kv_lora_rank + m.rope_head_dim) \
            + gemm(Tg, g, m.kv_lora_rank, a * (m.qk_head_dim + m.v_head_dim) / tp) \
            + o_proj
    else:
        o_proj = gemm(Tg, g, a * hd / tp, h)
        attn = gemm(Tg, g, h, (a * hd + 2 * kv * hd) / tp) + o_proj
    down_proj = gemm(Tg, g, model.ffn_hidden / tp, h)
    dense_mlp = gemm(Tg, g, h, model.ffn_hidden * up / tp) + down_proj
    mem = spec.memory_bw_Bps * spec.eff_memory
    ffn_w = (model.moe.ffn_hidden * model.moe.top_k if model.moe else model.ffn_hidden)
    elementwise = Tg * ACT_BYTES * (10 * h + (up + 1) * ffn_w / tp) / mem
    bw_in = spec.scaleup_bw_Bps * spec.eff_comm
    msg = Tg * h * ACT_BYTES
    nccl = None
    if spec.topology is not None and tp > 1:  # placed: its all-reduce (NVLS, mesh, torus)
        from accelsim.devices import topology  # its models load only for such a device

        fabric = topology.of(spec)
        nccl = topology.allreduce_s(fabric, msg, tp) if fabric else None
    one_ar = serving_allreduce(
        msg, Tg, tp, bw_in, spec.scaleup_latency_s, st.rule,
        spec.scaleup_bw_Bps * spec.eff_reduction, spec.reduction_latency_s,
        nccl) if tp > 1 else 0.0
    tp_comm = 2 * one_ar
    if r.gemm_allreduce and tp > 1:
        # the row-parallel GEMMs carry their all-reduce (:func:`fused_gemm_allreduce`): the
        # attention output's always, the MLP's in a dense layer (an MoE layer's output is
        # reduced after its experts, by the engine's all-reduce as before)
        def fused(c: np.ndarray) -> np.ndarray:
            return fused_gemm_allreduce(c, msg, Tg, h, tp, spec)

        attn = attn - o_proj + fused(o_proj)
        dense_mlp = dense_mlp - down_proj + fused(down_proj)
        tp_comm = 0.0
    per_layer = attn + elementwise + tp_comm + KERNELS_PER_LAYER * spec.kernel_overhead_s
    dense_layer = per_layer + dense_mlp
    if r.gemm_allreduce and tp > 1:
        per_layer = per_layer + one_ar  # an MoE layer's output: the engine's all-reduce
    zero = np.zeros_like(T)
    if model.moe is None:
        return dense_layer, zero, zero, zero, zero
    e = model.moe
    E, k = e.experts, e.top_k
    S = E + r.redundant_experts  # expert slots (EPLB copies share their expert's tokens)
    ff = e.ffn_hidden
    if dp == 1:
        # one grouped GEMM over the device's S/ep slots, each slot's rows padded to whole
        # tiles (:func:`moe_row_tile` high): the expected tiles of its binomial count
        # (:func:`expert_load.expected_row_tiles`); the weights of the slots touched are read
        slots = max(S / ep, 1.0)
        tile = moe_row_tile(T * k / S, spec.tile_m)
        rows = slots * tile * _row_tiles(T, k / S, tile, spec.tile_m, tkey)
        touched = slots * (1.0 - (1.0 - k / S) ** T)
        gk = None if tkey is None else (tkey, ("grouped experts", S, k, ep, spec.tile_m))
        expert = (grouped_gemm(rows, touched, h, ff * up, wb, peak_w, spec, gk, sk)
                  + grouped_gemm(rows, touched, ff, h, wb, peak_w, spec, gk, sk))
    else:
        per_exp, slots_dev = _routing(T, S, k, ep, tkey, sampled=True)
        pe = ("per expert", S, k)
        expert = slots_dev * (gemm(per_exp, pe, h, ff * up) + gemm(per_exp, pe, ff, h))
    # shared experts: replicated per group, tensor-parallel inside it
    shared = (gemm(Tg, g, h, ff * e.shared_experts * up / tp)
              + gemm(Tg, g, ff * e.shared_experts / tp, h)
              if e.shared_experts else 0.0)
    router = gemm(Tg, g, h, E, 2.0, peak_a)
    experts = expert + shared + router
    if dp == 1:
        # the permutation and reduction around the expert GEMMs, on every tp rank (each
        # holds a slice of every expert and routes all T tokens)
        routing = np.where(T > 0, T * moe_routing_bytes(h, E, k) / mem
                           + MOE_ROUTING_KERNELS * spec.kernel_overhead_s, 0.0)
        return dense_layer, per_layer, experts + routing, zero, zero
    # all-to-all: each device's T/ep tokens, k copies, out (dispatch, 8-bit with 8-bit
    # weights) and back (combine, bf16); the share bound outside the device's scale-up
    # domain crosses the scale-out link
    b_disp = 1.0 if wb <= 1.0 else ACT_BYTES
    # the busiest device receives (dispatch) and returns (combine) its sampled excess of
    # copies (:mod:`accelsim.llm.expert_load`); the all-to-all ends with it
    mean = T * k / ep
    busiest = np.where(mean > 0, expert_load.busiest_device_load(mean, ep)
                       / np.maximum(mean, 1e-12), 1.0)
    per_dev = (T / ep) * busiest * k * h * (b_disp + ACT_BYTES) * (1.0 - 1.0 / ep)
    dom = min(ep, spec.scaleup_domain)
    out_share = 1.0 - dom / ep
    if r.role == "prefill" and e.max_nodes and out_share > 0:
        # prefill kernels (DeepEP normal mode) send a token once per remote domain it
        # needs (at most max_nodes of the ep / dom domains) and forward it inside
        n_dom = ep / dom
        hit = n_dom * (1.0 - (1.0 - 1.0 / n_dom) ** k)  # domains a token's k experts span
        remote = min(e.max_nodes, hit) * (n_dom - 1) / n_dom
        out_bytes = per_dev / k * remote
    else:
        out_bytes = per_dev * out_share
    bw_a2a_in = spec.scaleup_bw_Bps * spec.eff_a2a
    bw_a2a_out = spec.scaleout_bw_Bps * spec.eff_a2a
    lat = spec.scaleout_latency_s if out_share > 0 else spec.scaleup_latency_s
    a2a = np.maximum(per_dev * (1 - out_share) / bw_a2a_in,
                     out_bytes / bw_a2a_out if out_share > 0 else 0.0)
    disp = b_disp / (b_disp + ACT_BYTES)  # the dispatch's share of the bytes
    on = T > 0
    return (dense_layer, per_layer, experts, np.where(on, disp * a2a + lat, 0.0),
            np.where(on, (1 - disp) * a2a + lat, 0.0))


_ROUTING: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}
_TILES: dict[tuple[Any, ...], np.ndarray] = {}


def moe_row_tile(rows: Any, device_tile: float) -> np.ndarray:
    """Row tile of an MoE grouped GEMM whose experts get ``rows`` rows each on average: the
    power of two at or above twice that, at least 16 and at most the device's tile.
    ASSUMPTION drawn from vLLM's tuned fused_moe configs for Mixtral's shape
    (vllm/model_executor/layers/fused_moe/configs/E=8,N=14336,device_name=*,
    dtype=fp8_w8a8.json): BLOCK_SIZE_M 64 at 128 tokens and 128 from 256 on H100; 16 up to 48
    tokens, 32-64 at 64-128 and 128-256 from 256 on MI300X (top-2 of 8: a quarter of the
    tokens per expert); a small batch's kernel takes short tiles rather than pad every
    expert to the device's."""
    r = np.maximum(np.asarray(rows, dtype=float), 1.0)
    return np.clip(2.0 ** np.ceil(np.log2(2.0 * r)), 16.0, device_tile)


_V = TypeVar("_V")


def _kept(cache: dict[tuple[Any, ...], Any], tkey: Any, key: tuple[Any, ...],
          compute: Callable[[], _V]) -> _V:
    """``compute()``, kept in ``cache`` under ``(tkey, *key)`` when ``tkey`` is given (the
    fast path's token grid: the value follows from it and ``key``, no device field); the
    cache is emptied when it holds 256 entries."""
    if tkey is None:
        return compute()
    full = (tkey, *key)
    if full not in cache:
        if len(cache) >= 256:
            cache.clear()
        cache[full] = compute()
    return cache[full]


def _row_tiles(T: np.ndarray, share: float, tile: np.ndarray, device_tile: float,
               tkey: Any) -> np.ndarray:
    """:func:`expert_load.expected_row_tiles` of ``T``, kept by ``tkey`` when given (the
    tiles follow from T, the share and the device's tile)."""
    return _kept(_TILES, tkey, (len(T), share, device_tile),
                 lambda: expert_load.expected_row_tiles(T, share, tile))


def _routing(T: np.ndarray, S: float, k: float, ep: int, tkey: Any, sampled: bool = False
             ) -> tuple[np.ndarray, np.ndarray]:
    """Tokens per touched expert slot for ``T`` tokens (top-k of S, balanced routing: S (1 -
    (1 - k/S)^T) slots touched) and the touched slots one of ``ep`` devices runs (one each
    with more devices than slots); ``sampled`` (tokens routed over the devices, expert
    parallelism behind an all-to-all): the slots' tokens on the busiest device, at least
    the expected maximum of the devices' sampled loads (:mod:`accelsim.llm.expert_load`);
    kept by ``tkey`` when given (the fast path: no device field enters)."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        touched = S * (1.0 - (1.0 - k / S) ** T)
        per_exp = np.where(touched > 0, T * k / np.maximum(touched, 1e-9), 0.0)
        slots_dev = np.maximum(touched / ep, np.minimum(touched, 1.0))
        if sampled and ep > 1:
            load = slots_dev * per_exp  # the even spread's copies per device
            busiest = expert_load.busiest_device_load(T * k / ep, ep)
            per_exp = per_exp * np.where(load > 0, np.maximum(
                1.0, busiest / np.maximum(load, 1e-12)), 1.0)
        return per_exp, slots_dev

    return _kept(_ROUTING, tkey, (len(T), S, k, ep, sampled), compute)


def pipeline_transfer_s(h: float, devices: int, spec: DeviceSpec
                        ) -> Callable[[Any, int], Any]:
    """Seconds a micro-batch of ``t`` tokens spends between the stages of a pipeline over
    ``devices`` = tp x pp devices, as a function of ``t``: pp - 1 point-to-point sends of
    its hidden states, t h bf16 bytes from each tp rank to the same rank of the next stage
    (TensorRT-LLM's models end a non-last stage with ``send(hidden_states,
    mapping.next_pp_rank())``, tensorrt_llm/models/llama/model.py at 2340c776), at the
    scale-up link's bandwidth and latency when the replica fits in one scale-up domain, else
    the scale-out link's, and one more latency for the sampled tokens' return to the first
    stage (a few bytes per sequence). Returns ``f(t, pp)``: one micro-batch's seconds between
    stages in a step."""
    inside = devices <= spec.scaleup_domain
    bw = (spec.scaleup_bw_Bps if inside else spec.scaleout_bw_Bps) * spec.eff_comm
    lat = spec.scaleup_latency_s if inside else spec.scaleout_latency_s

    def hops(t: Any, pp: int) -> Any:
        return (pp - 1) * (np.asarray(t, dtype=float) * h * ACT_BYTES / bw + lat) + lat

    return hops


def pipeline_round(linear: np.ndarray, head_read: float, pp: int,
                   hops: Callable[[Any, int], Any], coeffs: tuple[float, float, float, float]
                   ) -> tuple[np.ndarray, float, float, float, float]:
    """The cost table of a pp-stage replica, whose scheduler iteration is one pipeline round:
    TensorRT-LLM's in-flight batching runs pp micro-batches (TrtGptModelInflightBatching:
    mNumMicroBatches = pipeline parallelism, cpp/tensorrt_llm/batch_manager/
    trtGptModelInflightBatching.cpp at 00825c4e), each scheduled with up to max_batch_size
    requests and max_num_tokens tokens, a request in flight in one micro-batch skipped by the
    others, and maxNumSequences = pp x max_batch_size (trtGptModel.h at c8c6df08). In a round
    every micro-batch advances one step; with the round's T tokens split evenly, t =
    ceil(T/pp) each, a micro-batch crosses the pp stages of L/pp layers one after another:
    ``linear[t]`` (the whole model's layers for t tokens on tp devices, the sum of its stages)
    plus the hops between stages (:func:`pipeline_transfer_s`), while each stage runs the pp
    micro-batches in turn, pp x its 1/pp of linear[t]: the stages are busy for the whole
    round except during the hops (the pipeline bubble of a full pipeline), and the last
    stage reads the LM head once per micro-batch that runs, n = min(T, pp) of them (an
    empty micro-batch is not run). The round takes the larger of the two paths' table
    terms: linear[t] - head + max(n head, head + hops(t)).
    Each micro-batch's attention reads its own sequences' KV cache (1/pp of the round's
    contexts and prefill pairs) and samples its own rows, so the per-token coefficients are
    divided by pp. At batch 1 (one sequence, one micro-batch busy) a step costs what it costs
    on tp devices holding all layers plus the hops: the pp x tp devices run at the speed of
    tp (the bubble). A request's prefill chunk runs in one micro-batch (the scheduler's
    ``chunk_tokens``), whose crossing bounds its round from below (:meth:`ReplicaModel.
    crossing_s`, built in :func:`replica_model`). ASSUMPTION otherwise: micro-batches of
    equal size (the attention, prefill and
    sampling terms of a round with fewer sequences than stages are 1/pp of their cost
    instead of 1/n for n busy micro-batches; a small share at batch < pp where the weights'
    read dominates)."""
    n = len(linear) - 1
    T = np.arange(pp * n + 1)
    t = -(-T // pp)
    body = linear[t] - head_read
    busy = np.minimum(T, pp)  # micro-batches with a token: each reads the LM head once
    rnd = np.where(T > 0, body + np.maximum(busy * head_read, head_read + hops(t, pp)), 0.0)
    c_kv_read, c_kv_flop, c_pf, c_head = coeffs
    return rnd, c_kv_read / pp, c_kv_flop / pp, c_pf / pp, c_head / pp


def replica_model(r: Replica, file: str = "job", where: str = "replicas[0]",
                  spec: DeviceSpec | None = None, model: TransformerModel | None = None,
                  lines: bool = False) -> ReplicaModel:
    """Resolve a replica's device and model and build its cost table and KV capacity.
    ``lines``: the GEMMs from their lines kept per shape and geometry (:func:`_lines`;
    the fast path's, for many devices of one geometry: equal to rounding)."""
    spec = spec or load_device(r.device, where=file, field=f"{where}.device").spec
    model = model or load_model(r.model, where=file, field=f"{where}.model")
    stack = serving_stack(spec.vendor, r.stack, file, f"{where}.stack", spec.name)
    if r.tp > spec.scaleup_domain:
        raise AccelsimError.single(file, f"{where}.tp", f"tp {r.tp} exceeds the scale-up "
                                   f"domain of {spec.name} ({spec.scaleup_domain} devices); "
                                   "expected tp within one domain")
    # the engine's settings against the model: the one check (engine_problems) of a job
    # file, the fleet's chatbot block and the published runs, here for the Python API
    # (accelsim.llm.replica_model), which reaches this without a file's check
    probs = engine_problems(r, model, file, where, r.tp, r.dp, r.pp, r.role)
    if probs:
        raise AccelsimError(probs)
    if r.gemm_allreduce and stack.name != GEMM_ALLREDUCE_STACK:
        raise AccelsimError.single(
            file, f"{where}.gemm_allreduce", "gemm_allreduce is TensorRT-LLM's "
            f"gemm_allreduce_plugin; the replica's serving stack on {spec.name} is "
            f"'{stack.name or 'none'}'; expected gemm_allreduce false or stack "
            f"'{GEMM_ALLREDUCE_STACK}'")
    nvls = gemm_allreduce_problem(spec) if r.gemm_allreduce and r.tp > 1 else None
    if nvls:  # at tp 1 the plugin skips its all-reduce and allocates no multicast memory
        raise AccelsimError.single(file, f"{where}.gemm_allreduce", nvls)
    wfmt = r.weights
    # W8A8: fp8 and int8 weights run the GEMMs at that peak; 16-bit formats at bf16/fp16
    peak_w = spec.flops(wfmt, where=f"{file}: {where}.weights")
    peak_a = spec.flops("bf16", where=f"{file}: {where}.device")
    wb = BYTES[wfmt]
    tp, dp = r.tp, r.dp
    ep = tp * dp
    h, L, a, V = model.hidden, model.layers, model.heads, model.vocab
    d = r.mtp_tokens
    T = np.arange(r.max_batched_tokens + (1 + d) * r.max_seqs + 1, dtype=float)
    tkey = ("T", len(T)) if lines else None
    dense_layer, at, ex, dis, com = _layer_costs(T, r, spec, model, peak_w, peak_a, wb, tkey,
                                                 stack)
    n_moe = model.n_moe_layers
    moe = at + ex + dis + com
    if r.overlap_ep_comm and n_moe:
        # two micro-batches of half the tokens (SGLang's two-batch overlap): each one's
        # dispatch and combine run behind the other's compute, in the order the
        # schedule allows (dispatch 0 | attention 1, dispatch 1 | experts 0, combine 0 |
        # experts 1, combine 1 | next attention 0); each half reads the weights again, so
        # at small batches there is no gain and engines run one batch (the better of two)
        _, a2, e2, d2, c2 = _layer_costs(T / 2, r, spec, model, peak_w, peak_a, wb,
                                         ("T/2", len(T)) if lines else None, stack)
        # prefill all-to-all kernels hold a share f of the compute units while in flight:
        # compute c beside communication x takes max(x, c + f x)
        f = spec.a2a_compute_share if r.role == "prefill" else 0.0

        def beside(c: np.ndarray, x: np.ndarray) -> np.ndarray:
            return np.maximum(x, c + f * x)

        tbo = beside(a2, d2) + beside(e2, d2) + beside(e2, c2) + beside(a2, c2)
        moe = np.minimum(moe, tbo)
    mem = spec.memory_bw_Bps * spec.eff_memory
    # the LM head's weights are read once per iteration; each emitting row adds its FLOPs
    head_read = h * V / tp * wb / mem
    linear = (L - n_moe) * dense_layer + n_moe * moe + head_read
    linear = np.where(T > 0, linear, 0.0)
    if model.mla is not None:
        m = model.mla
        d_qk, d_v = m.qk_head_dim + m.rope_head_dim, m.v_head_dim
        # decode (absorbed MLA): per key, scores over the latent and rope key, values over
        # the latent, for every head
        dec_flops_per_key = 2.0 * (a / tp) * (2 * m.kv_lora_rank + m.rope_head_dim)
    else:
        d_qk = d_v = model.head_dim or h // a
        dec_flops_per_key = 2.0 * (a / tp) * 2 * d_qk
    up = 2 if model.gated_mlp else 1
    ffn_w = (model.moe.ffn_hidden * model.moe.top_k if model.moe else model.ffn_hidden)

    kv_tok = kv_bytes_per_token(model, tp, r.kv_cache)  # all layers: the costs' (below)
    # a decode query per context token (its group's share): the KV read against the FLOPs
    c_kv_read = kv_tok / mem / dp
    # (decode attention kernels, FlashMLA / FlashDecoding, are not the prefill kernel whose
    # rate efficiency.attention gives: FLASH_REL_EFF x eff_c, as FlashMLA's 580 TFLOP/s on
    # H800 is 0.59 of peak)
    c_kv_flop = dec_flops_per_key * L / (peak_a * spec.eff_compute * FLASH_REL_EFF) / dp
    # prefill attention: FLOPs per (query, key) pair on this device, all layers, at the
    # kernel's rate for a causal chunk of max_batched_tokens
    c_pf = 2.0 * (d_qk + d_v) * (a / tp) * L / (peak_a * attention_rate(
        spec, r.max_batched_tokens, (d_qk + d_v) / 2, True)) / dp
    if r.fp8_context_attention:
        # FP8 context FMHA (use_fp8_context_fmha): the same kernel on the FP8 tensor cores
        c_pf /= fp8_attention_speedup(r.max_batched_tokens)
    # per emitting sequence: its row of the LM head and the stack's sampling (and host) costs
    terms = stack.terms
    c_head = head_seconds(h, V, tp, dp, peak_w, spec, terms, r.scheduler_steps)
    # an overlapped host: each attention group's executor serves its own sequences
    host_overlap = terms.host_overlap_s / dp if terms is not None else 0.0

    total = model_params(model)
    if model.moe is not None:
        e = model.moe
        one_expert = (up + 1) * h * e.ffn_hidden
        routed = n_moe * e.experts * one_expert
        slots = max((e.experts + r.redundant_experts) / ep, 1.0)
        weights = ((total - routed) / tp + n_moe * slots * one_expert) * wb
    else:
        weights = total * wb / tp
    emb_params = V * h * (1 if model.tied_embeddings else 2)
    weights += embedding_extra_bytes(emb_params, wb) / tp
    pp = r.pp
    cross_s, c_pf_cross = np.zeros(0), 0.0  # no pipeline: no crossing
    if pp > 1:
        # a stage holds its L/pp layers and one vocabulary table (the first the embedding,
        # the last the LM head; a tied table on both); its KV cache its layers' share
        emb_dev = (emb_params * wb + embedding_extra_bytes(emb_params, wb)) / tp
        one_table = (V * h * wb + embedding_extra_bytes(V * h, wb)) / tp
        weights = (weights - emb_dev) / pp + one_table
        hops = pipeline_transfer_s(h, tp * pp, spec)
        # a request is in one micro-batch of a round (TensorRT-LLM's MicroBatchScheduler
        # skips the requests in flight): one chunk of at most max_num_tokens a round, whose
        # micro-batch crosses every stage (its layers on tp devices, the hops) before the
        # request's next chunk: the least time of a round that holds it
        q = np.arange(r.max_batched_tokens + 1)
        cross_s = np.where(q > 0, linear[q] + hops(q, pp), 0.0)
        c_pf_cross = c_pf  # its attention, not shared with the other micro-batches
        linear, c_kv_read, c_kv_flop, c_pf, c_head = pipeline_round(
            linear, head_read, pp, hops, (c_kv_read, c_kv_flop, c_pf, c_head))
    kv_dev = kv_tok / pp  # per device: the stage's layers
    dummy = (trtllm_bench.dummy_requests(r.max_batched_tokens, r.max_seq_len) / dp
             if r.memory_share_of == "free" and r.max_seq_len else None)
    workspace = profiling_peak_bytes(h, ffn_w * up, V, tp, r.max_batched_tokens / dp,
                                     r.max_seqs / dp, r.memory_share_of == "total", dummy)
    held = weights + workspace + RUNTIME_RESERVE_BYTES
    if r.memory_share_of == "free":  # TensorRT-LLM: (total - peak) x fraction
        free = (spec.memory_bytes - held) * r.memory_utilization
    elif r.memory_share_of == "static":  # SGLang: fraction x (total - runtime) - weights
        free = (spec.memory_bytes - RUNTIME_RESERVE_BYTES) * r.memory_utilization - weights
    else:  # vLLM: total x utilization - peak
        free = spec.memory_bytes * r.memory_utilization - held
    blocks = int(free // (kv_dev * r.block_tokens)) * dp if free > 0 else 0
    if blocks < 1:
        need = held / units.GiB
        raise AccelsimError.single(
            file, f"{where}.tp", f"{model.name} does not fit on {spec.name} with tp {tp}"
            + (f" and dp {dp}" if dp > 1 else "") + (f" and pp {pp}" if pp > 1 else "")
            + f": weights {weights / units.GiB:.1f} "
            f"GiB + workspace and reserve need {need:.1f} GiB of "
            f"{spec.memory_bytes * r.memory_utilization / units.GiB:.1f} usable, leaving no "
            "KV cache; expected a larger tp, dp or pp, 8-bit weights or a device with more "
            "memory")
    return ReplicaModel(
        name=f"{spec.name} x{tp * dp * pp} {model.name}", linear_s=linear, c_kv_read=c_kv_read,
        c_kv_flop=c_kv_flop, c_pf=c_pf,
        c_head=c_head, kv_blocks=blocks, block_tokens=r.block_tokens,
        max_batched_tokens=r.max_batched_tokens * pp, max_seqs=r.max_seqs * pp, tp=tp,
        reserve=r.kv_admission == "reserve",
        weights_bytes=weights, kv_bytes_per_token=kv_dev, spec=spec, dp=dp, draft_tokens=d,
        draft_extra=sum(r.mtp_acceptance ** i for i in range(1, d + 1)),
        mtp_scale=1.0 + d * model.mtp_layers / L, host_overlap_s=host_overlap,
        prefill_first=r.prefill_first, estimate=r.kv_admission == "estimate", pp=pp,
        chunk_tokens=r.max_batched_tokens if pp > 1 else 0, cross_s=cross_s,
        c_pf_cross=c_pf_cross)

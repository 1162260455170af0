"""Software stacks as profiles (``configs/stacks/*.yaml``): what a training or serving framework
does on top of a device: the kernels it runs (its GEMM and flash-attention rates relative to
the device's published ones), the communication it overlaps, the pipeline schedules it has,
the fused kernels it ships. Every number is a :class:`accelsim.devices.Quantity` with a
source and a confidence (``fitted_on`` when calibrated on published runs); every feature a
:class:`Feature` with its source.

How the models use a stack (:func:`check_training`, :func:`kernel_factors`,
:func:`allreduce_rule`):

  kernels     stream-K GEMMs or not (``kernels.stream_k``); GEMM time / ``kernels.gemm``
              (multiplies the device's ``efficiency.compute`` on GEMMs only); flash
              attention at ``kernels.attention`` (``attention_backward`` on the backward)
              x the device's published kernel rate (``efficiency.attention``), and x the
              device's FlashAttention-2 ratio (``efficiency.attention_fa2``) for a stack
              that runs FA2-generation kernels (``kernels.attention_fa2``); pipeline sends
              scatter-gathered or not
  features    a training job that names a stack may only ask for what it has: its
              pipeline ``schedules`` (1f1b, interleaved, dualpipe) and ``overlaps``
              (tp_comm, dp_grad_reduce, param_gather, ep_a2a); anything else is a one-line
              error naming the job's field
  allreduce   a serving stack's tensor-parallel all-reduce: its own one-/two-shot kernel
              through the peers' mapped buffers while the message fits the kernel's
              workspace (and, where the engine says so, up to a token count), NCCL above
              (:func:`accelsim.llm.perf.serving_allreduce`)
  iteration   a serving stack's cost per sequence that samples a token beside the layers:
              its logits' all-gather, its sampler's HBM passes over the vocabulary and the
              host work the GPU waits for (:class:`StackIteration`)

A job that names no stack gets :func:`default_stack` of its device's vendor for the kernel
factors (1 for the stacks the device efficiencies were calibrated with), unchecked.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from accelsim import overrides, refs, units
from accelsim.config import Strict, read_yaml, validate
from accelsim.devices import Confidence, Fraction, NonNegative, Quantity
from accelsim.errors import AccelsimError, Problem
from accelsim.overrides import Overrides, Values
from accelsim.precision import BYTES
from accelsim.stack_kernels import DEFAULTS as KERNEL_DEFAULTS
from accelsim.stack_memory import StackMemory as Terms

Schedule = Literal["1f1b", "interleaved", "dualpipe"]
# The vendor's stack a job runs on when it names none (what the device profiles'
# efficiencies were calibrated with).
DEFAULT_BY_VENDOR = {"NVIDIA": "megatron-core", "Huawei": "mindspeed", "Google": "maxtext"}
DEFAULT_SERVING_BY_VENDOR = {"NVIDIA": "tensorrt-llm", "Huawei": "mindie", "AMD": "vllm-rocm"}


class Feature(Strict):
    """Whether the stack has a capability, and where that comes from."""

    value: bool
    """True: the stack has it."""
    source: str = Field(min_length=1)
    """Documentation, paper or repository path that shows it."""
    confidence: Confidence
    """A vendor or paper, B press or analyst, C sources disagree, or 'assumption'."""
    note: str | None = None
    """Reasoning; required for an assumption."""


class StackKernels(Strict):
    stream_k: Feature
    """Its GEMM library deals a GEMM's K iterations evenly over the compute units
    (stream-K; :mod:`accelsim.kernels`): no wave quantisation."""
    gemm: Fraction
    """GEMM rate relative to the device's ``efficiency.compute`` (1: the stack the device
    was calibrated with)."""
    attention: Fraction
    """Flash-attention rate relative to the device's published kernel
    (``efficiency.attention``: FA3 on Hopper, FA2 on Ampere), or to FlashAttention-2's rate
    on the device when ``attention_fa2`` is true."""
    attention_backward: Fraction | None = None
    """The same for the backward pass, where it differs from the forward's. Not given:
    ``attention``."""
    attention_fa2: Feature | None = None
    """The stack runs FlashAttention-2-generation kernels (Ampere MMA instructions) on every
    device, also where the published kernel is newer: its attention factors are relative to
    FA2's rate on the device (the device's ``efficiency.attention_fa2``,
    ``attention_fa2_backward``). Not given: false."""
    gemm_8bit: Fraction | None = None
    """8-bit training's linear GEMMs (precision fp8: FP8, or INT8 where the device has no
    FP8) relative to the device's ``efficiency.compute`` at the 8-bit peak: the achieved
    8-bit over 16-bit speedup divided by the peaks' ratio (1: the full ratio, as NVIDIA's
    FP8 GEMMs are fitted; TPU AQT int8 quantises each operand on the vector units and
    gains less). Not given: 1."""
    attention_unpad: Feature | None = None
    """Its flash-attention wrapper removes the padding of q, k and v before the kernel and
    restores it on the output (flash-attn's ``bert_padding``), a gather or scatter of each
    over HBM per pass (``recipes.UNPAD_PASSES_*``). Not given: false."""
    fp8_current_scaling: Feature | None = None
    """Its FP8 recipe scales each tensor by its own amax at the time (Transformer Engine's
    Float8CurrentScaling, Megatron-Bridge's FP8-CS): every GEMM input and output gradient is
    read once more for its amax before the cast, and the norm and activation kernels can no
    longer write FP8 themselves (``recipes.FP8_CS_*``). Not given: false (delayed scaling,
    the cast fused into the producing kernel)."""
    unit_grad_bytes: NonNegative | None = None
    """HBM bytes per parameter its FSDP moves in each unit's gradient hook per micro-batch
    outside the GEMMs (the unsharded gradient gathered into the flat gradient, cast to the
    reduce dtype, pre-divided), run beside the next unit's backward on a side stream and
    priced as memory-bound time added to the step (side-stream kernels take SMs from the
    compute stream's). Not given: 0."""
    unit_gather_bytes: NonNegative | None = None
    """HBM bytes per parameter its FSDP moves after each unit's parameter all-gather on the
    compute stream, outside the collective: per-parameter sharding (PyTorch FSDP2) gathers
    into one flat buffer and copies each parameter's shards out of it into its unsharded
    tensor (read and write); paid per layer and micro-batch for each all-gather (ZeRO-3
    two, ZeRO-2 one). Not given: 0 (FSDP1's flat parameter is gathered in place)."""
    unit_gap_us: NonNegative | None = None
    """GPU-idle time at each FSDP unit's (one layer's) parameter all-gather, microseconds: a
    rate limiter that synchronises the CPU with the GPU before issuing the all-gather leaves
    the GPU idle until the CPU has issued it (PyTorch FSDP1 with ``limit_all_gathers``). Paid
    per layer and micro-batch for each all-gather: ZeRO-3 two (forward, backward), ZeRO-2 one
    (the forward's; FSDP's SHARD_GRAD_OP reshards after the backward). Not given: 0."""
    recompute_early_stop: Feature | None = None
    """Its activation checkpointing stops the recomputed forward at the layer's last saved
    tensor (PyTorch's non-reentrant ``torch.utils.checkpoint`` from 2.1: "stops recomputation
    as soon as it has computed all needed Tensors"): autograd saves a linear's inputs before
    its GEMM runs, so under full recomputation a block ending in ``x + down(act(up(x)))``
    recomputes neither the down projection's GEMM nor the residual add after it (nor, with
    tensor parallelism, the MLP's output collective). JAX's ``jax.checkpoint`` does the same
    by dead-code elimination of the recomputed jaxpr (``remat_partial_eval``'s
    ``pe.dce_jaxpr``: the backward's tangent equations read a dot's operands, not its
    output). Not given: false (the whole layer again: Megatron's and PyTorch's reentrant
    checkpoint)."""
    train_metric_passes: NonNegative | None = None
    """Cross-entropy passes over the LM head's logits per micro-batch outside the loss, with no
    gradient: training metrics updated from each micro-batch's outputs (Composer's
    ``Trainer._eval_train_metrics`` with llm-foundry's default ``LanguageCrossEntropy`` and
    ``LanguagePerplexity``, one ``torch.nn.CrossEntropyLoss`` each). Under CUDA autocast each is
    a ``log_softmax`` at the logits' width (the composite cross-entropy passes the input's
    dtype) and an ``nll_loss``, on autocast's fp32 list, whose input is first copied to fp32:
    3 x activation bytes + 4 per logit, priced as memory-bound time on the last stage. Not
    given: 0."""
    step_host_ops_per_rank: NonNegative | None = None
    """Host-issued operations per rank of the job and per step while the GPU waits for the
    host (after the step's end-of-batch host synchronisation, before the next forward is
    queued), ``kernel_overhead`` each: Composer's per-batch ``metric.compute()`` of its
    training metrics syncs each metric state through torchmetrics' ``gather_all_tensors``,
    which creates one ``zeros_like`` per rank and whose ``all_gather`` into a list copies each
    rank's slice out (2 per state and rank). Grows with the job's ranks. Not given: 0."""
    step_host_gap_ms: NonNegative | None = None
    """Milliseconds per optimizer step the GPU waits for the host, whatever the job's size: a
    framework whose step ends in a host synchronisation (a logged loss or gradient norm read
    with ``.item()``, a world-group broadcast of the loss for logging) and that queues the
    next step's work from Python without CUDA graphs leaves the GPU idle while the host runs
    the end of the step (optimizer launches, the training loop, loggers, callbacks) and the
    next step's prologue. Added once per step, like the optimizer. Not given: 0."""
    moe_host_op_us: NonNegative | None = None
    """Microseconds of host time per operation the host issues eagerly (Python, the
    dispatcher, the launch) in a dropless MoE layer whose router syncs its token counts to the
    host every forward (Megatron-Core's all-to-all dispatcher): each MoE layer's forward and
    backward take the longer of their GPU time and the host's time to issue them, the
    operation counts of :mod:`accelsim.training.perf.moe` less the CUDA-graphed scopes'. Not
    given: 0 (the host always ahead)."""
    attention_host_syncs: NonNegative | None = None
    """Host-device synchronisations in each forward of its flash-attention wrapper (a
    ``.item()`` or a ``torch.nonzero`` of a CUDA tensor): the host waits for the GPU's queue to
    drain, then the GPU waits for the host to queue the next kernels, ``unit_gap_us`` each
    (the stack's measured gap between a host synchronisation and its next launch). Paid per
    layer in every forward, the recomputed one included. Not given: 0."""


class StackOverlaps(Strict):
    tp_comm: Feature
    """Tensor-parallel all-gather / reduce-scatter overlapped with the GEMMs (userbuffers)."""
    dp_grad_reduce: Feature
    """Data-parallel gradient reduction overlapped with the backward pass."""
    param_gather: Feature
    """ZeRO parameter all-gather overlapped with the next forward."""
    ep_a2a: Feature
    """MoE all-to-all hidden behind another micro-batch's compute."""
    tp_bwd_async: Feature | None = None
    """Megatron's asynchronous tensor-parallel backward: a column-parallel linear's (QKV, MLP
    up) input all-gather (sequence parallel) runs beside its data-gradient GEMM and its
    gradient reduce-scatter (all-reduce without sequence parallelism) beside its
    weight-gradient GEMM (``LinearWithGradAccumulationAndAsyncCommunication``). Not given:
    false (every backward collective exposed)."""
    cp_kv_ring: Feature | None = None
    """Context parallelism exchanges K and V in a ring of point-to-point sends overlapped with
    the attention kernel (Megatron-Core / Transformer Engine); false: K and V are
    all-gathered before attention and their gradients reduce-scattered after it, exposed
    (Llama 3's all-gather CP). Not given: true."""
    pp_scatter_gather: Feature | None = None
    """Pipeline sends split over the tensor-parallel ranks and all-gathered on arrival
    (Narayanan et al. 2021 section 4.1: 1/t of the bytes on the inter-node link); false:
    every TP rank sends the whole activation. Not given: true."""
    unit_ring: Feature | None = None
    """Its ZeRO/FSDP all-gathers and reduce-scatters run per unit (one per layer and pass),
    each a ring over the data-parallel ranks (NCCL's only algorithm for them before 2.23):
    each pays the ring's latency, n - k steps inside the scale-up domains and k - 1 across
    them (k domains), where the aggregated collective pays one. Not given: false."""
    unit_edges: Feature | None = None
    """With ``unit_ring``: the collectives at a step's edges are exposed, the first unit's
    all-gather of each micro-batch's forward (and, with ZeRO-3, of its backward: nothing
    before it to prefetch behind) and the last unit's reduce-scatter (the optimizer waits
    for it); one unit's share of the step's all-gather and reduce-scatter each
    (docs/_notes/fsdp-small-collectives.md). Not given: false (hidden with the rest)."""


class StackAllReduce(Strict):
    """When a serving engine runs a tensor-parallel all-reduce with its own kernel (a direct
    reduce-scatter and all-gather through the peers' IPC-mapped buffers) rather than the
    collective library (NCCL): the message must fit the kernel's workspace and, in some
    engines, the iteration's tokens must stay below a threshold."""

    custom_kernel: Feature
    """It has a custom all-reduce kernel inside one scale-up domain (false: always NCCL)."""
    max_MB: NonNegative
    """Largest message (MB, 10^6 bytes) the custom kernel takes at tp above ``small_tp``."""
    small_tp: int = Field(default=0, ge=0, le=64)
    """tp at or below which ``max_MB_small_tp`` and no token limit apply (0: none)."""
    max_MB_small_tp: NonNegative | None = None
    """Largest message (MB) at tp <= ``small_tp`` (not given: ``max_MB``)."""
    max_tokens: NonNegative | None = None
    """At tp above ``small_tp`` the custom kernel runs only up to this many tokens in the
    iteration, NCCL beyond (not given: no token limit)."""
    world_sizes: list[Annotated[int, Field(ge=2, le=1024)]] | None = None
    """tp values the custom kernel supports (not given: any)."""
    oneshot_max_tokens: NonNegative | None = None
    """Up to this many tokens in the iteration the custom kernel runs its one-shot variant
    (every rank pushes the whole message to every peer: (tp - 1) M over the links, one
    step), above it the two-shot (reduce-scatter + all-gather, 2 (tp - 1)/tp M, two steps).
    Not given: always the two-shot."""


class StackIteration(Strict):
    """What a serving engine's iteration costs per sequence that samples a token, beside the
    model's layers: the logits' path to the sampler and the host (CPU) work the GPU waits
    for (:func:`accelsim.llm.perf.replica_model` adds them to ``c_head``). Not given: each
    rank reads its V/tp logits once (written and read back in fp32), no host term."""

    logits_gather: Feature
    """The tensor-parallel ranks all-gather the vocabulary-parallel LM head's bf16 logits and
    every rank samples the whole vocabulary (false: its V/tp shard)."""
    sampler_bytes: NonNegative
    """HBM bytes per vocabulary element per sampling sequence that the sampler's passes move
    on each rank (cast to fp32, temperature, softmax, random draw, argmax)."""
    host_seq_us: NonNegative
    """Host microseconds per sampling sequence on the iteration's critical path (scheduler,
    input preparation, output bookkeeping the GPU waits for; 0 where the engine overlaps
    them with the GPU's work)."""
    host_overlap_seq_us: NonNegative | None = None
    """Host microseconds per sampling sequence that the engine runs beside the GPU's work
    (an overlap scheduler: the host prepares iteration n + 1 while the GPU runs n), so an
    iteration takes max(its GPU time, this x its sampling sequences) (not given: 0, the
    host never binds)."""


class Share(NonNegative):
    """A share of what is held, in [0, 0.9]."""

    high = 0.9


class StackMemoryTerms(Strict):
    """What the stack holds beside the model's tensors (the training model's ``mem_*``
    columns, :mod:`accelsim.stack_memory`)."""

    logit_bytes: NonNegative
    """Bytes per logit element live at the loss's peak."""
    fragmentation: Share
    """The allocator's (reserved - allocated) / reserved with memory to spare."""
    workspace_MiB: NonNegative
    """GEMM library workspace held per device, MiB."""
    zero3_live: NonNegative
    """ZeRO-3/FSDP units gathered at once (the one computing, the prefetched)."""
    zero3_per_tensor: Feature
    """True: each weight tensor is gathered on its own (GSPMD); false: a layer at a time."""
    zero3_grad_bytes: NonNegative | None = None
    """Bytes per element of an unsharded gradient before its reduce-scatter (not given: the
    job's gradient bytes)."""
    zero3_pp_hold: Feature | None = None
    """With pipelining, the stage's weights stay gathered between micro-batches and its
    unsharded gradients accumulate until the last one (not given: false)."""
    weight_copy: Feature
    """True: a low-precision weight copy beside the optimizer's fp32 master; false: the fp32
    parameters only, cast at each use."""
    phase_max: Feature
    """True: the loss's and a layer backward's transient buffers share memory (the larger
    counts); false: their sum."""


class StackGC(Strict):
    """How the training stack runs Python's cyclic garbage collector
    (:mod:`accelsim.training.perf.gc_pauses`)."""

    aligned: Feature
    """True: the automatic collector is disabled and every rank collects at the same step
    (Megatron-LM ``--manual-gc``, torchtitan ``gc_freq``, llm-foundry's
    ``ScheduledGarbageCollector``), or the host runs ahead of the device so a pause is
    hidden; false: each rank collects when its own thresholds trip, unaligned."""
    unaligned_us_per_layer: NonNegative | None = None
    """Per-rank time in automatic collections per layer and micro-batch (forward and
    backward), microseconds; used when ``aligned`` is false (not given: 0)."""
    pause_ms: NonNegative | None = None
    """One automatic collection's pause on a rank, milliseconds: with R rendezvous per
    step, pauses of different ranks that fall in one interval overlap (not given: 0, every
    pause paid apart, the rare limit)."""


class DPWidth(Strict):
    """A data-parallel collective's element width, and where it comes from."""

    value: Literal["fp32", "bf16", "fp16", "fp8"]
    """The dtype the collective moves."""
    source: str = Field(min_length=1)
    """The recipe's configuration line that sets it."""
    confidence: Confidence
    """A vendor or paper, B press or analyst, C sources disagree, or 'assumption'."""
    note: str | None = None
    """Reasoning; required for an assumption."""


class StackDP(Strict):
    """The widths a training stack's data-parallel collectives move (not given: the training
    precision's, :mod:`accelsim.training.perf.recipes` ``GRAD_DTYPE`` / ``WEIGHT_DTYPE``)."""

    grad_reduce_dtype: DPWidth | None = None
    """The gradients' reduce-scatter / all-reduce (Megatron ``grad_reduce_in_fp32`` false,
    Apex ``grad_sync_dtype``: bf16), and the width its gradient buffers are held in
    (:func:`accelsim.training.perf.memory.allocated`). Not given: fp32 under bf16 and fp8
    training."""
    param_gather_dtype: DPWidth | None = None
    """The distributed optimizer's parameter all-gather: fp8 (Megatron ``fp8_param_gather``,
    NeMo ``FP8_PARAMS`` / ``FP8_PARAM_GATHER``) gathers FP8 training's linear weights at 1 B
    and the non-FP8 parameters (embedding, output layer, norms) at the weight width, and
    merges every non-FP8 bucket into the last FP8 bucket group, whose reduce-scatter runs
    after the backward and whose all-gather before the forward, exposed
    (:func:`accelsim.training.perf.step.data_parallel`). Other values: the weight width.
    Only an fp8 job with ZeRO >= 1 uses it."""
    fp8_bucket_edge: Feature | None = None
    """With ``param_gather_dtype`` fp8: its distributed data parallel is Megatron-Core's,
    whose ``partition_buckets`` merges every non-FP8 bucket into the last FP8 bucket group,
    reduced after the backward and gathered before the forward, exposed (Apex's
    DistributedFusedAdam has no such group). Not given: false. True without
    ``param_gather_dtype`` fp8 is an error (the group exists only with FP8 parameters)."""

    @model_validator(mode="after")
    def _widths_it_prices(self) -> StackDP:
        g, a = self.grad_reduce_dtype, self.param_gather_dtype
        if g is not None and g.value == "fp8":
            raise ValueError("grad_reduce_dtype fp8 is not priced (no recipe reduces gradients "
                             "in FP8): expected fp32, bf16 or fp16")
        if a is not None and a.value == "fp32":
            raise ValueError("param_gather_dtype fp32 is not priced (the distributed optimizer "
                             "gathers the model's weights, not its fp32 main copy): expected "
                             "bf16, fp16 (the weight width) or fp8")
        if (self.fp8_bucket_edge is not None and self.fp8_bucket_edge.value
                and (a is None or a.value != "fp8")):
            raise ValueError("fp8_bucket_edge true needs param_gather_dtype fp8 (Megatron-Core's "
                             "FP8 bucket group exists only with FP8 parameters gathered)")
        return self


class StackProfile(Strict):
    """One software stack (framework and release)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    """Catalog name (how jobs and runs refer to it)."""
    base: str | None = None
    """The stack it derives from (a catalog name or a path beside it): every section the
    file does not give is the base's, a section it gives replaces the base's entries key by
    key, and a key set to null removes the base's (:func:`expand`). The file still states its
    own ``name`` and ``framework`` (the key a file is known as a stack by). An override of
    the base's numbers by name (:func:`overridden`) changes the base alone; a derived stack's
    are overridden by its own name (calibration groups them). Not given: none."""
    framework: str = Field(min_length=1)
    """The framework (Megatron-LM, DeepSpeed, vLLM, ...)."""
    version: str = Field(min_length=1)
    """The release or period the profile describes."""
    role: Literal["training", "serving"]
    """What the stack runs."""
    vendors: list[str] = Field(min_length=1)
    """Device vendors it runs on (as the device profiles spell them)."""
    description: str = ""
    """Free text."""
    sources: dict[str, str] = Field(default_factory=dict)
    """Citation keys used in the fields' sources, with the full citation."""
    kernels: StackKernels
    """GEMM and attention rates relative to the device's."""
    schedules: list[Schedule] = Field(default_factory=list)
    """Pipeline schedules it has (training stacks)."""
    overlaps: StackOverlaps | None = None
    """Communication it overlaps (training stacks)."""
    fused_kernels: list[str] = Field(default_factory=list)
    """Fused kernels it ships (documentation: what its kernel factors rest on)."""
    memory: StackMemoryTerms | None = None
    """Training memory terms (not given: Megatron-Core's,
    :data:`accelsim.stack_memory.DEFAULT`)."""
    allreduce: StackAllReduce | None = None
    """A serving stack's tensor-parallel all-reduce strategy (not given: the fabric's best
    algorithm, :func:`accelsim.llm.perf.serving_allreduce`)."""
    gc: StackGC | None = None
    """A training stack's Python garbage collection (not given: aligned, no stall)."""
    dp: StackDP | None = None
    """A training stack's data-parallel collective widths (not given: the training
    precision's)."""
    iteration: StackIteration | None = None
    """A serving stack's per-sequence sampling and host costs (not given: the LM head's logits
    written and read once per rank, no host term; :class:`StackIteration`)."""

    @model_validator(mode="after")
    def _sections_of_its_role(self) -> StackProfile:
        if self.role == "serving" and self.dp is not None:
            raise ValueError("dp: a serving stack has no data-parallel gradient collectives "
                             "(the section is read for training stacks only)")
        ov, d = self.overlaps, self.dp
        if (ov is not None and ov.unit_ring is not None and ov.unit_ring.value
                and d is not None and d.fp8_bucket_edge is not None and d.fp8_bucket_edge.value):
            raise ValueError("dp.fp8_bucket_edge with overlaps.unit_ring: Megatron-Core's FP8 "
                             "bucket group is priced on the aggregated collectives, which a "
                             "per-unit ring replaces; choose one")
        return self

    def quantities(self) -> dict[str, Quantity]:
        """Its numbers by ``section.key`` (the kernel factors and the per-step host gap, which
        calibration reads, and the all-reduce strategy's limits, the iteration's sampler bytes
        and host time)."""
        out: dict[str, Quantity] = {"kernels.gemm": self.kernels.gemm,
                                    "kernels.attention": self.kernels.attention}
        if self.kernels.step_host_gap_ms is not None:
            out["kernels.step_host_gap_ms"] = self.kernels.step_host_gap_ms
        if self.kernels.moe_host_op_us is not None:
            out["kernels.moe_host_op_us"] = self.kernels.moe_host_op_us
        if self.iteration is not None:
            out["iteration.sampler_bytes"] = self.iteration.sampler_bytes
            out["iteration.host_seq_us"] = self.iteration.host_seq_us
            if self.iteration.host_overlap_seq_us is not None:
                out["iteration.host_overlap_seq_us"] = self.iteration.host_overlap_seq_us
        a = self.allreduce
        if a is not None:
            out["allreduce.max_MB"] = a.max_MB
            for key in ("max_MB_small_tp", "max_tokens", "oneshot_max_tokens"):
                q = getattr(a, key)
                if q is not None:
                    out[f"allreduce.{key}"] = q
        return out


def catalog_names() -> list[str]:
    return refs.names("stacks")


def load_stack(name_or_path: str | Path, where: str = "stack", field: str = "stack",
               relative_to: str | Path | None = None) -> StackProfile:
    """A catalog name (``megatron-core``) or a path to a stack YAML."""
    path = refs.find(name_or_path, "stacks", relative_to, where, field, what="stack")
    stamp = _stamp(str(path))
    profile = _load(stamp, refs.shown(path))
    mine = _OVERRIDES.of(profile.name)
    if mine:
        return _load_overridden(stamp, refs.shown(path), mine)
    return profile


Stamp = tuple[tuple[str, int], ...]


@lru_cache(maxsize=128)
def _base_of(resolved: str, mtime_ns: int) -> str | None:
    """The resolved file a stack file's ``base:`` names (None: it has none); read again
    only when the file changes."""
    data = read_yaml(resolved)
    ref = data.get("base") if isinstance(data, dict) else None
    if ref is None:
        return None
    shown = refs.shown(Path(resolved))
    if not isinstance(ref, str) or not ref:
        raise AccelsimError.single(shown, "base", "expected a stack's catalog name or path")
    return str(refs.find(ref, "stacks", resolved, shown, "base", what="stack"))


def _stamp(resolved: str) -> Stamp:
    """The file and the files it derives from, each with its modification time: the cache
    key of the profile (an edit of a base is seen as one of the file). A cycle is an error."""
    out: list[tuple[str, int]] = []
    path: str | None = resolved
    while path is not None:
        if any(p == path for p, _ in out):
            names = " -> ".join(Path(p).stem for p, _ in out) + f" -> {Path(path).stem}"
            raise AccelsimError.single(refs.shown(Path(resolved)), "base",
                                       f"stacks derive from each other in a cycle ({names})")
        mtime = os.stat(path).st_mtime_ns
        out.append((path, mtime))
        path = _base_of(path, mtime)
    return tuple(out)


def files_of(path: str | Path) -> list[Path]:
    """A stack file and the files it derives from (``base:``), the file first."""
    return [Path(p) for p, _ in _stamp(str(Path(path).resolve()))]


def defined_in(path: str | Path, address: str) -> Path:
    """The file of a stack's chain (:func:`files_of`) that states ``section.key`` (the
    first that gives it; the stack's own file when none does)."""
    files = files_of(path)
    section, _, key = address.partition(".")
    for f in files:
        sec = read_yaml(f).get(section)
        if isinstance(sec, dict) and sec.get(key) is not None:
            return f
    return files[0]


def _merge(base: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """``child`` over ``base``: top-level mappings merge key by key (a field's whole entry
    replaced), anything else replaced; a null removes the base's key."""
    out = {k: v for k, v in base.items() if k not in ("name", "base")}
    for k, v in child.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, Mapping):  # a null inside removes the base's key (or is dropped)
            merged = {**out[k], **v} if isinstance(out.get(k), Mapping) else dict(v)
            out[k] = {kk: vv for kk, vv in merged.items() if vv is not None}
        else:
            out[k] = v
    return out


def expand(data: Any, path: str | Path) -> Any:
    """A stack file's data with its ``base:`` chain applied (:attr:`StackProfile.base`); data
    without one unchanged. ``base`` stays, naming the stack it derives from."""
    if not isinstance(data, dict) or data.get("base") is None:
        return data
    chain = _stamp(str(Path(path).resolve()))
    out: dict[str, Any] = {}
    for p, _ in reversed(chain[1:]):
        out = _merge(out, read_yaml(p))
    return {**_merge(out, data), "base": data["base"]}


@lru_cache(maxsize=64)
def _load(stamp: Stamp, shown: str) -> StackProfile:
    resolved = stamp[0][0]
    return validate(StackProfile, expand(read_yaml(resolved), resolved), shown)


_OVERRIDES = Overrides("stack")


def current_overrides() -> Values:
    """The stack numbers overridden here (a cache key for what reads stacks)."""
    return _OVERRIDES.current()


def overridden(values: Mapping[str, Mapping[str, float]]) -> AbstractContextManager[None]:
    """Within the block, :func:`load_stack` returns the named stacks with these numbers
    (``{'megatron-lm-2022': {'kernels.gemm': 1.03}}``), files untouched
    (:mod:`accelsim.overrides`, as :func:`accelsim.devices.overridden`)."""
    return _OVERRIDES.set(values)


@lru_cache(maxsize=256)
def _load_overridden(stamp: Stamp, shown: str, values: Values) -> StackProfile:
    return overrides.apply(_load(stamp, shown), values, shown)


def default_stack(vendor: str, role: str = "training") -> StackProfile | None:
    """The stack a job on a ``vendor`` device runs when it names none (None: no factors)."""
    table = DEFAULT_BY_VENDOR if role == "training" else DEFAULT_SERVING_BY_VENDOR
    name = table.get(vendor)
    return load_stack(name) if name else None


_DEFAULT_PATHS: dict[tuple[str, str], str] = {}


def role_mismatch(stack: StackProfile, role: str) -> str | None:
    """Why ``stack`` cannot serve as a ``role`` stack (None: it is one). The one wording of
    the role check: a serving replica's stack (:func:`accelsim.llm.perf.serving_stack`), a
    training job's (:func:`training_problems`) and a scenario block's (:func:`named_problems`)."""
    if stack.role == role:
        return None
    return (f"'{stack.name}' is a {stack.role} stack; expected a {role} stack "
            f"(configs/stacks with role: {role})")


def named_problems(named: Mapping[str, str], role: str, file: str, field: str
                   ) -> list[Problem]:
    """A scenario block's ``stacks`` (device name -> stack) on their own: each loads and is a
    ``role`` stack (one problem each, naming ``field``.stacks.<device>); the devices' vendors
    are :func:`device_problems`'."""
    out: list[Problem] = []
    for dev, ref in named.items():
        at = f"{field}.stacks.{dev}"
        try:
            st = load_stack(ref, where=file, field=at)
        except AccelsimError as e:
            out += e.problems
            continue
        why = role_mismatch(st, role)
        if why:
            out.append(Problem(file, at, why))
    return out


def vendor_mismatch(stack: StackProfile, vendor: str, device: str = "") -> str | None:
    """Why ``stack`` cannot run on a ``vendor`` device (None: it lists the vendor)."""
    if vendor in stack.vendors:
        return None
    on = f" ({device})" if device else ""
    return (f"stack '{stack.name}' runs on {', '.join(stack.vendors)}, not on {vendor}{on}; "
            f"expected a {stack.role} stack that lists {vendor}")


def device_problems(named: Mapping[str, str], devices: Mapping[str, Any], role: str,
                    file: str, field: str) -> list[Problem]:
    """A scenario block's ``stacks`` (device name -> stack) against the scenario's pool
    devices (profile name -> profile): each key a pool device, each stack of ``role`` one
    that lists the device's vendor. A stack that does not load or is of another role is the
    block's own check's problem (not repeated)."""
    out: list[Problem] = []
    for dev, ref in named.items():
        at = f"{field}.stacks.{dev}"
        if dev not in devices:
            out.append(Problem(file, at, f"'{dev}' is no device of the budget pools; expected "
                               "one of: " + ", ".join(devices)))
            continue
        try:
            st = load_stack(ref)
        except AccelsimError:
            continue
        why = vendor_mismatch(st, devices[dev].spec.vendor, dev) if st.role == role else None
        if why:
            out.append(Problem(file, at, why))
    return out


def named_files(named: Mapping[str, str]) -> list[Path]:
    """The files of the stacks a block names (device name -> stack) and those they derive
    from, each once."""
    out: list[Path] = []
    for s in sorted(set(named.values())):
        out += [p for p in files_of(refs.find(s, "stacks", what="stack")) if p not in out]
    return out


def default_files(vendor: str) -> list[Path]:
    """The files of the vendor's default training and serving stacks (those it has): inputs
    of every evaluation on its devices that names no stack, for the disk cache's keys and the
    replayed output's check (an edited default stack file is not served stale)."""
    out = []
    for table in (DEFAULT_BY_VENDOR, DEFAULT_SERVING_BY_VENDOR):
        name = table.get(vendor)
        if name:
            out += [p for p in files_of(refs.configs_dir() / "stacks" / f"{name}.yaml")
                    if p not in out]
    return out


def job_files(ref: str | None, device: str) -> list[Path]:
    """The files of the stack a job or replica runs: the one it names (``ref``) and those it
    derives from, else its device vendor's default stacks (:func:`default_files`)."""
    if ref:
        return files_of(refs.find(ref, "stacks", what="stack"))
    from accelsim.devices import load_device

    return default_files(load_device(device).spec.vendor)


def default_stamp(vendor: str, role: str = "training") -> tuple[int, ...]:
    """The (modification time in ns, size) of the vendor's default stack file, then the
    modification times of the files it derives from (``base:``), (0, 0) without one: a cache
    key for what is derived from :func:`default_stack`, so that an edit of the file is seen
    by a running process (a notebook) as :func:`load_stack` sees it. One ``os.stat`` a file
    (about 1 us; the path is resolved once)."""
    key = (vendor, role)
    path = _DEFAULT_PATHS.get(key)
    if path is None:
        table = DEFAULT_BY_VENDOR if role == "training" else DEFAULT_SERVING_BY_VENDOR
        name = table.get(vendor)
        path = _DEFAULT_PATHS[key] = (
            str(refs.configs_dir() / "stacks" / f"{name}.yaml") if name else "")
    if not path:
        return (0, 0)
    try:
        st = os.stat(path)
        base = _base_of(path, st.st_mtime_ns)
        bases = _stamp(base) if base else ()  # each file of the chain stat'ed once
    except (OSError, AccelsimError):
        return (0, 0)
    return (st.st_mtime_ns, st.st_size, *(m for _, m in bases))


def kernel_factors(stack: StackProfile | None) -> dict[str, float]:
    """The training model's stack columns (:mod:`accelsim.stack_kernels`, which says what
    each means), from the stack's :class:`StackKernels` and :class:`StackOverlaps`; without a
    stack, that module's ``DEFAULTS``."""
    if stack is None:
        return dict(KERNEL_DEFAULTS)
    ov = stack.overlaps
    sg = ov.pp_scatter_gather if ov else None
    ta = ov.tp_bwd_async if ov else None
    ring = ov.cp_kv_ring if ov else None
    unit = ov.unit_ring if ov else None
    edges = ov.unit_edges if ov else None
    k = stack.kernels
    g8 = k.gemm_8bit
    return {"stack_gemm": k.gemm.value, "stack_attn": k.attention.value,
            "stack_attn_bwd": (k.attention_backward or k.attention).value,
            "stack_fa2": float(k.attention_fa2 is not None and k.attention_fa2.value),
            "stack_gemm8": g8.value if g8 is not None else 1.0,
            "stack_unpad": float(k.attention_unpad is not None and k.attention_unpad.value),
            "fp8_cs": float(k.fp8_current_scaling is not None and k.fp8_current_scaling.value),
            "pp_scatter": 0.0 if sg is not None and not sg.value else 1.0,
            "stream_k": float(stack.kernels.stream_k.value),
            "tp_async": float(ta is not None and ta.value),
            "cp_allgather": float(ring is not None and not ring.value),
            "unit_gap_s": (stack.kernels.unit_gap_us.value * units.US
                           if stack.kernels.unit_gap_us is not None else 0.0),
            "unit_grad_bytes": (k.unit_grad_bytes.value if k.unit_grad_bytes is not None
                                else 0.0),
            "unit_gather_bytes": (k.unit_gather_bytes.value
                                  if k.unit_gather_bytes is not None else 0.0),
            "metric_passes": (k.train_metric_passes.value
                              if k.train_metric_passes is not None else 0.0),
            "host_ops_rank": (k.step_host_ops_per_rank.value
                              if k.step_host_ops_per_rank is not None else 0.0),
            "step_gap_s": (k.step_host_gap_ms.value * units.MS
                           if k.step_host_gap_ms is not None else 0.0),
            "moe_host_op_s": (k.moe_host_op_us.value * units.US
                              if k.moe_host_op_us is not None else 0.0),
            "attn_syncs": (k.attention_host_syncs.value if k.attention_host_syncs is not None
                           else 0.0),
            "unit_ring": float(unit is not None and unit.value),
            "unit_edges": float(edges is not None and edges.value),
            "rc_early_stop": float(k.recompute_early_stop is not None
                                   and k.recompute_early_stop.value),
            **gc_columns(stack), **dp_columns(stack)}


def dp_columns(stack: StackProfile | None) -> dict[str, float]:
    """The stack's data-parallel widths as training columns: ``dp_grad_bytes``, bytes per
    reduced gradient element (0: the precision's), and ``dp_fp8_gather``, 1 when it gathers
    FP8 parameters (:class:`StackDP`)."""
    d = stack.dp if stack is not None else None
    g = d.grad_reduce_dtype if d is not None else None
    a = d.param_gather_dtype if d is not None else None
    return {"dp_grad_bytes": float(BYTES[g.value]) if g is not None else 0.0,
            "dp_fp8_gather": float(a is not None and a.value == "fp8"),
            "dp_fp8_edge": float(a is not None and a.value == "fp8"
                                 and d is not None and d.fp8_bucket_edge is not None
                                 and d.fp8_bucket_edge.value)}


def gc_columns(stack: StackProfile | None) -> dict[str, float]:
    """The stack's unaligned garbage collection as training columns: ``gc_layer_s``, a
    rank's seconds in automatic collections per layer and micro-batch (0: aligned or not
    given), and ``gc_pause_s``, one collection's pause."""
    gc = stack.gc if stack is not None else None
    if gc is None or gc.aligned.value or gc.unaligned_us_per_layer is None:
        return {"gc_layer_s": 0.0, "gc_pause_s": 0.0}
    return {"gc_layer_s": gc.unaligned_us_per_layer.value * units.US,
            "gc_pause_s": gc.pause_ms.value * units.MS if gc.pause_ms is not None else 0.0}


@dataclass(frozen=True)
class AllReduceRule:
    """A stack's all-reduce strategy in SI units (:class:`StackAllReduce`): the custom kernel
    runs a message of ``M`` bytes over ``tp`` ranks with ``T`` tokens when ``tp`` is a
    supported size, ``M <= max_bytes(tp)`` and ``T <= max_tokens(tp)``."""

    custom: bool
    max_bytes: float  # tp > small_tp
    small_tp: int = 0
    max_bytes_small_tp: float = 0.0
    max_tokens: float = math.inf  # tp > small_tp
    world_sizes: tuple[int, ...] = ()  # (): any
    oneshot_max_tokens: float = 0.0  # the one-shot kernel up to this many tokens (0: never)

    def custom_ok(self, M: Any, tokens: Any, tp: int) -> Any:
        """Whether the custom kernel runs (numpy arrays of bytes and tokens)."""
        M = np.asarray(M, dtype=float)
        if not self.custom or tp < 2 or (self.world_sizes and tp not in self.world_sizes):
            return np.zeros_like(M, dtype=bool)
        if tp <= self.small_tp:
            return M <= self.max_bytes_small_tp
        return (M <= self.max_bytes) & (np.asarray(tokens, dtype=float) <= self.max_tokens)


def allreduce_rule(stack: StackProfile | None) -> AllReduceRule | None:
    """The stack's all-reduce strategy (None: the stack gives none)."""
    if stack is None or stack.allreduce is None:
        return None
    a = stack.allreduce
    big = a.max_MB.value * 1e6
    return AllReduceRule(
        custom=a.custom_kernel.value, max_bytes=big, small_tp=a.small_tp,
        max_bytes_small_tp=a.max_MB_small_tp.value * 1e6 if a.max_MB_small_tp else big,
        max_tokens=a.max_tokens.value if a.max_tokens else math.inf,
        world_sizes=tuple(a.world_sizes or ()),
        oneshot_max_tokens=a.oneshot_max_tokens.value if a.oneshot_max_tokens else 0.0)


@dataclass(frozen=True)
class IterationTerms:
    """A serving stack's :class:`StackIteration` in SI units."""

    gather: bool  # every TP rank gets and samples the whole vocabulary
    sampler_bytes: float  # HBM bytes per vocabulary element per sampling sequence
    host_seq_s: float  # host seconds per sampling sequence on the critical path
    host_overlap_s: float = 0.0  # host seconds per sampling sequence beside the GPU's work


def iteration_terms(stack: StackProfile | None) -> IterationTerms | None:
    """The stack's per-sequence sampling and host costs (None: it gives none)."""
    if stack is None or stack.iteration is None:
        return None
    it = stack.iteration
    ov = it.host_overlap_seq_us
    return IterationTerms(gather=it.logits_gather.value, sampler_bytes=it.sampler_bytes.value,
                          host_seq_s=it.host_seq_us.value * units.US,
                          host_overlap_s=ov.value * units.US if ov is not None else 0.0)


def memory_terms(stack: StackProfile | None) -> Terms | None:
    """The stack's memory block as the training model's
    :class:`accelsim.stack_memory.StackMemory` (None: it has none)."""
    if stack is None or stack.memory is None:
        return None
    m = stack.memory
    return Terms(stack.name, logit_bytes=m.logit_bytes.value, zero3_live=m.zero3_live.value,
                 fragmentation=m.fragmentation.value,
                 workspace_bytes=m.workspace_MiB.value * units.MiB,
                 zero3_tensor=m.zero3_per_tensor.value,
                 zero3_grad_bytes=m.zero3_grad_bytes.value if m.zero3_grad_bytes else 0.0,
                 weight_copy=m.weight_copy.value, phase_max=m.phase_max.value,
                 zero3_pp_hold=bool(m.zero3_pp_hold and m.zero3_pp_hold.value))


def memory_columns(stack: StackProfile | None) -> dict[str, float]:
    """The training model's ``mem_*`` columns of the stack's memory block (none: {})."""
    terms = memory_terms(stack)
    return terms.columns() if terms is not None else {}


def search_columns(stack: StackProfile) -> dict[str, float]:
    """The batch model's columns a layout search on this stack runs with: its kernel factors
    and the data-parallel overlaps it has."""
    cols = {**kernel_factors(stack), **memory_columns(stack)}
    if stack.overlaps is not None:
        cols["overlap_dp"] = float(stack.overlaps.dp_grad_reduce.value)
        cols["overlap_ag"] = float(stack.overlaps.param_gather.value)
    return cols


def training_problems(stack: StackProfile, job: Any, file: str = "job") -> list[Problem]:
    """Every option of a :class:`accelsim.training.job.TrainJob` the stack does not have."""
    par = job.parallelism
    out = []
    why = role_mismatch(stack, "training")
    if why:
        return [Problem(file, "stack", why)]
    sched = ("dualpipe" if par.schedule == "dualpipe" else
             "interleaved" if par.virtual_stages > 1 else "1f1b")
    if par.pp > 1 and sched not in stack.schedules:
        out.append(Problem(file, "parallelism.schedule" if sched == "dualpipe" else
                           "parallelism.virtual_stages",
                           f"stack '{stack.name}' has no {sched} pipeline schedule "
                           f"(it has: {', '.join(stack.schedules) or 'none'})"))
    ov = stack.overlaps
    if ov is not None:
        asks = [("overlap_tp_comm", job.overlap_tp_comm and par.tp > 1, ov.tp_comm),
                ("overlap_dp_comm", job.overlap_dp_comm and par.dp * par.cp > 1,
                 ov.dp_grad_reduce),
                ("overlap_param_gather", job.overlap_param_gather and par.zero >= 1
                 and par.dp * par.cp > 1, ov.param_gather),
                ("overlap_ep_comm", job.overlap_ep_comm and par.ep > 1, ov.ep_a2a)]
        for key, asked, feat in asks:
            if asked and not feat.value:
                out.append(Problem(file, key, f"stack '{stack.name}' does not overlap "
                                   f"this ({feat.source}); expected false"))
    return out


def check_training(stack: StackProfile, job: Any, file: str = "job") -> None:
    problems = training_problems(stack, job, file)
    if problems:
        raise AccelsimError(problems)

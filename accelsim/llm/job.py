"""An LLM serving job: the replicas (device, model, tensor parallelism, number formats,
scheduler limits), the request stream (arrivals, prompt and output lengths) and the SLO."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from accelsim.config import Strict
from accelsim.cost import Finance, Region
from accelsim.traffic import Arrivals, Dist

WeightFormat = Literal["bf16", "fp16", "fp8", "int8"]
KVFormat = Literal["bf16", "fp16", "fp8", "int8"]


# SGLang's admission estimate (``kv_admission: estimate``), python/sglang/global_config.py of
# the v0.3 line (GlobalConfig: init_new_token_ratio 0.7, base_min_new_token_ratio 0.1,
# new_token_ratio_decay 0.001, retract_decode_steps 20)
EST_INIT = 0.7
EST_MIN = 0.1
EST_DECAY = 0.001
EST_RETRACT_STEPS = 20


class Engine(Strict):
    """A serving engine's settings for one replica kind: number formats, scheduler limits,
    expert placement and speculative decoding. The one schema of these settings: a job's
    replicas, a published run's replica and the fleet workload's ``engine`` block embed it."""

    redundant_experts: int = Field(default=0, ge=0, le=100_000)
    """Extra copies of routed experts per MoE layer for load balancing (EPLB); they add
    weights and spread the tokens over more expert slots."""
    mtp_tokens: int = Field(default=0, ge=0, le=8)
    """Multi-token prediction (DeepSeek-V3's MTP modules, speculative decoding): tokens
    drafted per decode step and verified with the next one; needs a model with
    ``mtp_layers``."""
    mtp_acceptance: float = Field(default=0.0, ge=0, le=1)
    """Probability a drafted token is accepted (each needs the one before): a step emits
    1 + a + ... + a^d tokens on average (DeepSeek reports 0.85-0.9 for the second token;
    CloudMatrix-Infer assumes 0.7)."""
    overlap_ep_comm: bool = False
    """Two micro-batches overlap the MoE all-to-all with the other's compute (SGLang's
    two-batch overlap, CloudMatrix-Infer's microbatch pipeline): each half's dispatch and
    combine behind the other half's attention and experts, in schedule order, where that
    beats one batch (:func:`accelsim.llm.perf.replica_model`)."""
    gemm_allreduce: bool = False
    """The row-parallel GEMMs (attention output, MLP down projection) run fused with their
    tensor-parallel all-reduce, each output tile reduced while the next ones compute
    (TensorRT-LLM engines built with ``gemm_allreduce_plugin``:
    :func:`accelsim.llm.perf.fused_gemm_allreduce`); off: the GEMM and then the serving
    stack's all-reduce (the PyTorch backend's, NCCL past its custom kernel's limits). Only
    on the ``tensorrt-llm`` serving stack (an error on another); no effect at tp 1."""
    fp8_context_attention: bool = False
    """Prompt (context) attention runs in FP8: Q, K and V quantized, both matmuls on the FP8
    tensor cores (TensorRT-LLM engines built with ``use_fp8_context_fmha``); the prefill
    attention is priced at the FP8 kernel's rate, the 16-bit rate times
    :func:`accelsim.llm.perf.fp8_attention_speedup` at the same key length. Off: the 16-bit
    flash-attention rate."""
    weights: WeightFormat = "bf16"
    """Weight format; fp8 and int8 run the GEMMs at that peak (W8A8)."""
    kv_cache: KVFormat = "bf16"
    """KV-cache format."""
    max_batched_tokens: int = Field(default=8192, ge=1, le=10_000_000)
    """Token budget of one iteration (chunked prefill: vLLM's max_num_batched_tokens)."""
    max_seqs: int = Field(default=256, ge=1, le=100_000)
    """Most sequences running at once (vLLM's max_num_seqs)."""
    block_tokens: int = Field(default=16, ge=1, le=4096)
    """Tokens per KV-cache block (paged attention)."""
    memory_utilization: float = Field(default=0.9, gt=0, le=1)
    """Share of device memory the engine may use (vLLM's gpu_memory_utilization), or with
    ``memory_share_of: free`` the KV cache's share of the memory left free."""
    memory_share_of: Literal["total", "free", "static"] = "total"
    """What ``memory_utilization`` is a share of. total: the device's memory, which holds
    the weights, the activations and the KV cache (vLLM's gpu_memory_utilization); free:
    what the weights, the memory-profiling pass's peak activations and the runtime leave,
    all of which the KV cache may take up to that share of (TensorRT-LLM's
    kv_cache_free_gpu_mem_fraction, the PyTorch backend's (total - peak) x fraction; the
    rest holds the CUDA graphs captured after it); static: the weights and the KV pool
    together, the activations and CUDA graphs outside it (SGLang's mem_fraction_static,
    ModelRunner.profile_max_num_token: the KV pool is what is free after loading the weights
    less (1 - fraction) of the memory free before, i.e. fraction x (memory - runtime) -
    weights)."""
    max_seq_len: int | None = Field(default=None, ge=2, le=10_000_000)
    """TensorRT-LLM's max_seq_len (trtllm-bench: the dataset's longest prompt + output). Set
    with ``memory_share_of: free``: the PyTorch backend's memory-profiling pass, dummy context
    requests of max_seq_len - 1 tokens filling max_batched_tokens, one full-vocabulary logits
    row each (:mod:`accelsim.llm.trtllm_bench`); unset: a logits row per ``max_seqs``."""
    scheduler_steps: int = Field(default=1, ge=1, le=64)
    """Decode steps per host round (vLLM V0's num_scheduler_steps, multi-step scheduling):
    the serving stack's host time per sequence (scheduling, input preparation, output
    processing) is paid once per round, so 1/n of it per step; 1: every step (vLLM V1
    without async scheduling)."""
    prefill_first: bool = False
    """An iteration that can prefill runs prefills only: when a running sequence has prompt
    tokens left or the first waiting request can be admitted, the running decodes skip that
    iteration (SGLang's scheduler with its default ``enable_mixed_chunk`` off: a new prefill
    batch when one can be formed, else the decode batch; vLLM V0 without chunked prefill:
    "Don't schedule decodes if prefills are scheduled"). Off: decodes and prefill chunks
    share every iteration (chunked prefill, vLLM V1, TensorRT-LLM)."""
    kv_admission: Literal["on_demand", "reserve", "estimate"] = "on_demand"
    """on_demand: KV blocks are taken as tokens arrive and a full cache preempts the latest
    sequence (vLLM); reserve: a request is admitted with its whole sequence's blocks and is
    never evicted (TensorRT-LLM's GUARANTEED_NO_EVICT; output lengths known); estimate:
    blocks on demand as on_demand, and a request is admitted only while its prompt plus a
    ratio of its output fits in the free tokens less that ratio of the running requests'
    remaining outputs, the ratio falling from 0.7 to 0.1 over the decode passes and reset
    after a preemption (SGLang's PrefillAdder and new_token_ratio, :mod:`accelsim.llm.engine`)."""


class Replica(Engine):
    """One kind of serving replica: ``tp`` x ``dp`` x ``pp`` devices running one copy of the
    model with an engine's settings."""

    device: str
    """Catalog device name or path to a device YAML (relative to the job file)."""
    model: str
    """Decoder-only model: catalog name (configs/models) or path to a model YAML."""
    count: int = Field(default=1, ge=1, le=1_000_000)
    """Replicas of this kind."""
    role: Literal["both", "prefill", "decode"] = "both"
    """both (prefill and decode on one replica), or one side of a disaggregated deployment:
    prefill replicas compute prompts and first tokens, then ship the KV cache to decode
    replicas (DistServe, Splitwise)."""
    tp: int = Field(default=1, ge=1, le=1024)
    """Tensor-parallel devices per attention group (inside one scale-up domain)."""
    dp: int = Field(default=1, ge=1, le=100_000)
    """Attention data-parallel groups per replica (SGLang's DP attention, DeepSeek's and
    CloudMatrix-Infer's decode): the replica spans tp x dp devices; each group runs
    attention, dense layers and the LM head for its share of the sequences and holds their
    KV cache, and the MoE experts are spread over all tp x dp devices (expert parallel,
    all-to-all dispatch and combine per MoE layer). dp 1: experts spread over the tp devices
    behind the tensor-parallel all-reduce."""
    pp: int = Field(default=1, ge=1, le=64)
    """Pipeline-parallel stages (TensorRT-LLM's pipeline_parallelism): the layers split evenly
    over pp stages of tp devices each (the replica spans tp x pp devices; pp must divide the
    layers), the first stage holding the embedding and the last the LM head. In-flight
    batching runs pp micro-batches, each of up to ``max_seqs`` sequences and
    ``max_batched_tokens`` tokens (so pp x max_seqs sequences in flight), one per stage at a
    time; a micro-batch's step crosses every stage and sends its activations to the next one
    (:func:`accelsim.llm.perf.replica_model`). Not with dp > 1 or a disaggregated role."""
    stack: str | None = None
    """Serving stack the replica runs (``configs/stacks``: catalog name or path, relative to
    the job file): its tensor-parallel all-reduce rule, its per-iteration sampling and host
    costs and its GEMM library's stream-K (:func:`accelsim.llm.perf.serving_stack`). It must
    be a serving stack that lists the device's vendor. Not given: the vendor's default
    serving stack (:data:`accelsim.stacks.DEFAULT_SERVING_BY_VENDOR`: TensorRT-LLM on NVIDIA,
    vLLM on ROCm on AMD, MindIE on Huawei)."""


    def resolved(self, relative_to: str | Path) -> Replica:
        """The replica with its device, model and stack references read from the folder of
        ``relative_to`` (:func:`accelsim.refs.normalize`: catalog names stay names)."""
        from accelsim.refs import normalize

        return self.model_copy(update={
            "device": normalize(self.device, relative_to),
            "model": normalize(self.model, relative_to),
            "stack": normalize(self.stack, relative_to) if self.stack else None})

class Slo(Strict):
    ttft_ms: float = Field(gt=0, le=3_600_000)
    """Time to first token target, ms."""
    tpot_ms: float = Field(gt=0, le=3_600_000)
    """Time per output token target (after the first), ms."""
    attainment: float = Field(default=0.99, gt=0, le=1)
    """Share of requests that must meet both targets (goodput) for a rate to count."""


class SimSettings(Strict):
    requests: int = Field(default=20_000, ge=10, le=100_000_000)
    """Requests per simulated run."""
    warmup: int = Field(default=1_000, ge=0, le=100_000_000)
    """Leading requests left out of the statistics."""
    seed: int = Field(default=1, ge=0, le=2**63 - 1)
    """Seed of the run's random inputs (same seed, same result)."""
    engine: Literal["fast", "simpy"] = "fast"
    """fast (compiled scheduler) or simpy (the reference; slow, small runs)."""
    replications: int = Field(default=3, ge=1, le=100)
    """Independent seeded runs behind the capacity's confidence interval."""

    @model_validator(mode="after")
    def _w(self) -> SimSettings:
        if self.warmup >= self.requests:
            raise ValueError(f"warmup ({self.warmup}) must be below requests ({self.requests})")
        return self


class Cost(Strict):
    region: Region
    """Electricity price and PUE where the replicas run (``accelsim.cost``)."""
    finance: Finance = Finance()
    """Depreciation, cost of capital, maintenance."""


class LLMJob(Strict):
    replicas: list[Replica] = Field(min_length=1)
    """The serving replicas; requests are spread over them in proportion to their decode
    throughput (weighted round robin by stride scheduling)."""
    arrivals: Arrivals
    """Request arrivals: Poisson with an optional daily profile and bursts, or a trace."""
    prompt_tokens: Dist
    """Prompt length distribution, tokens."""
    output_tokens: Dist
    """Output length distribution, tokens (at least 1)."""
    slo: Slo | None = None
    """TTFT and TPOT targets: goodput and --capacity need them."""
    sim: SimSettings = SimSettings()
    """Simulation length, seed, engine and replications."""
    kv_transfer: Literal["scaleup", "scaleout"] = "scaleout"
    """Link the KV cache crosses from a prefill to a decode replica (disaggregated only):
    the scale-up domain (same supernode) or the scale-out network."""
    cost: Cost | None = None
    """Where the replicas run: with it, USD per million output tokens (device TCO per
    hour at the simulated utilisation over output tokens per hour)."""

    @field_validator("replicas")
    @classmethod
    def _roles(cls, v: list[Replica]) -> list[Replica]:
        roles = {r.role for r in v}
        if roles != {"both"} and roles != {"prefill", "decode"}:
            raise ValueError("expected every role 'both', or 'prefill' and 'decode' replicas "
                             f"and no 'both' (got {sorted(roles)})")
        return v

    @property
    def disaggregated(self) -> bool:
        return self.replicas[0].role != "both"

    @property
    def n_replicas(self) -> int:
        return sum(r.count for r in self.replicas)

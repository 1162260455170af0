"""Training job inputs: the model, the parallel layout, the batch. Field names follow Megatron-LM.

Layout rules are checked here and reported against the field that breaks them;
a model that does not fit in memory is a *result*, not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from accelsim import refs, xp
from accelsim.config import Strict, read_yaml, validate
from accelsim.errors import AccelsimError, Problem
from accelsim.precision import TrainPrecision
from accelsim.transformer.model import TransformerModel

Recompute = Literal["none", "selective", "full"]
# Per-module recomputation on top of ``recompute`` (:attr:`Parallelism.recompute_modules`).
RecomputeModule = Literal["layernorm", "mla_up_proj", "moe_act", "alternate_mm", "qkv_offload",
                          "mlp_in"]
# Recompute modes in the order of their codes in the batch model (0, 1, 2).
RECOMPUTE: tuple[str, ...] = ("none", "selective", "full")
RECOMPUTE_CODE = {name: code for code, name in enumerate(RECOMPUTE)}


class Parallelism(Strict):
    tp: int = Field(default=1, ge=1, le=10_000_000)
    """Tensor-parallel ranks (Megatron); must divide heads, within the scale-up domain."""
    pp: int = Field(default=1, ge=1, le=10_000_000)
    """Pipeline stages; must divide layers (x virtual_stages)."""
    dp: int = Field(default=1, ge=1, le=10_000_000)
    """Data-parallel replicas."""
    cp: int = Field(default=1, ge=1, le=10_000_000)
    """Context-parallel ranks (sequence split for attention)."""
    ep: int = Field(default=1, ge=1, le=10_000_000)
    """Expert-parallel ranks (MoE); must divide experts."""
    micro_batch: int = Field(default=1, ge=1, le=1_000_000)
    """Sequences per micro-batch per data-parallel rank."""
    virtual_stages: int = Field(default=1, ge=1, le=1024)
    """Interleaved pipeline chunks per stage (Narayanan et al. 2021)."""
    first_stage_layers: int | None = Field(default=None, ge=0, le=100_000)
    """Uneven stages: layers on the first pipeline stage (Megatron-core's
    decoder-first-pipeline-num-layers), split evenly over its virtual stages as Megatron-Core
    does (``get_num_layers_to_build``). Not given: the even split. For the embedding counted
    as a layer of the first virtual stage only, see ``account_for_embedding``."""
    last_stage_layers: int | None = Field(default=None, ge=0, le=100_000)
    """Uneven stages: layers on the last stage (room for the LM head and loss), split evenly
    over its virtual stages. The other stages share the remaining layers evenly (a multiple of
    virtual_stages each)."""
    first_chunk_layers: int | None = Field(default=None, ge=0, le=100_000)
    """Layers of the first virtual stage (chunk 0 of the first stage, beside the embedding)
    when a pipeline layout does not split the first stage's layers evenly over its chunks
    (Megatron-Core's ``pipeline_model_parallel_layout``, e.g. DeepSeek-V3's ``Et|(tt|)*30mL``:
    one layer beside the embedding); the stage's other chunks share the rest evenly.
    Needs virtual_stages > 1."""
    last_chunk_layers: int | None = Field(default=None, ge=0, le=100_000)
    """Layers of the last virtual stage (beside the LM head, loss and MTP), as
    first_chunk_layers (DeepSeek-V3's ``mL``: none)."""
    account_for_embedding: bool = False
    """Megatron-Core's ``account_for_embedding_in_pipeline_split``: the embedding counts as
    one layer in the split, so each virtual stage holds (layers + 1 [+ 1 with
    account_for_loss]) / (pp x virtual_stages) layers and the first virtual stage (chunk 0 of
    stage 0) one fewer, beside the embedding (Megatron-Bridge's Llama 3.1 405B recipes; Llama
    3's own stack: the first chunk holds the embedding alone). Not with first_stage_layers."""
    account_for_loss: bool = False
    """Megatron-Core's ``account_for_loss_in_pipeline_split``: the LM head and loss count as
    one layer; the last virtual stage (the last chunk of the last stage) holds one layer
    fewer, beside them. Not with last_stage_layers."""
    sequence_parallel: bool = True
    """Megatron sequence parallelism for norms and dropout (with tp > 1)."""
    recompute: Recompute = "none"
    """Activation recomputation: none, selective (attention) or full (every layer)."""
    recompute_modules: list[RecomputeModule] = Field(default_factory=list)
    """Per-module recomputation on top of ``recompute`` (Megatron-core's
    --recompute-modules; DeepSeek-V3 recomputes the norms and MLA up-projections and keeps
    only the SwiGLU inputs): those outputs are not held, and are recomputed in backward.
    ``alternate_mm``: torchtitan's per-op selective checkpointing (``selective_ac_option:
    op``): of a block's matmuls in call order (Q, K, V, output, gate, up, down) every second
    one's output (K, output, up) and every non-matmul op's (norms, RoPE, the activation, the
    residual adds) is recomputed; Q, V, gate, down and the attention kernel's are held.
    ``qkv_offload`` (with ``recompute: full``): MaxText's ``remat_policy:
    qkv_proj_offloaded``: Q, K and V go to host memory in the forward and come back for the
    backward, so the QKV projection is not recomputed; the rest of the layer is.
    ``mlp_in`` (selective): MaxText's ``remat_policy: save_dot_except_mlpwi`` (v4.0's
    ``save_dot_except_logits_ffn1``): only the named dots Q, K, V, output and MLP output
    projection are saved, so the MLP's input projection (wi), its activation, the norms and
    the attention kernel's forward are recomputed in backward."""
    schedule: Literal["1f1b", "dualpipe"] = "1f1b"
    """Pipeline schedule: 1f1b (interleaved when virtual_stages > 1) or DeepSeek-V3's
    dualpipe (bidirectional; two stages' parameters per rank, bubble (pp/2 - 1) forward
    times, all-to-all and sends hidden behind paired forward-backward chunks)."""
    zero: int = Field(default=1, ge=0, le=3)
    """ZeRO stage: 0 none, 1 optimizer state, 2 + gradients, 3 + parameters sharded."""

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.dp * self.cp


class TrainJob(Strict):
    """One training step: ``global_batch`` sequences of ``model.seq_len`` tokens."""

    device: str
    """Catalog device name or path to a device YAML (relative to this file)."""
    model: TransformerModel
    """The transformer: inline, or a catalog name or path to a model YAML."""
    parallelism: Parallelism = Parallelism()
    """How the step is split over devices."""
    global_batch: int = Field(ge=1, le=1_000_000_000)
    """Sequences per optimizer step."""
    precision: TrainPrecision = "bf16"
    """Training precision of the GEMMs: fp32, bf16, fp16 or fp8."""
    devices: int | None = Field(default=None, ge=1, le=10_000_000)
    """Total devices; when given it must equal tp x pp x dp x cp."""
    attention: Literal["flash", "unfused"] = "flash"
    """flash (fused, no score matrix held) or unfused attention."""
    straggler_slowdown: float = Field(default=1.0, ge=1.0, le=100)
    """Slowest device's step time over the typical one (>= 1)."""
    overlap_dp_comm: bool = True
    """Overlap the data-parallel gradient reduction with the backward pass."""
    overlap_param_gather: bool = True
    """With ZeRO >= 1, gather the updated parameters chunk by chunk during the next step's
    forward (Megatron-core's --overlap-param-gather, 2024); false: one all-gather after the
    optimizer step (Apex's DistributedFusedAdam default, NeMo 2023)."""
    overlap_tp_comm: bool = False
    """Overlap tensor-parallel all-gather / reduce-scatter with the GEMMs they feed
    (Transformer Engine userbuffers; NeMo's tp_comm_overlap)."""
    overlap_ep_comm: bool = False
    """Hide the MoE all-to-all behind another micro-batch's compute (Megatron's EP overlap
    with 1F1B); implied by the dualpipe schedule."""
    cuda_graph_scope: list[Literal["attn", "moe_router", "moe_preprocess"]] = Field(
        default_factory=list)
    """Modules captured in CUDA graphs (Megatron-Core's --cuda-graph-scope, Megatron-Bridge's
    ``cuda_graph_scope``): their kernels are replayed from one launch, off the host's eager
    dispatch (priced only with a stack's ``moe_host_op_us``)."""
    stack: str | None = None
    """Software stack (``configs/stacks``: catalog name or path): its kernel rates apply and
    the options above must be ones it has. Not given: the device vendor's default stack's
    kernel rates (megatron-core on NVIDIA, mindspeed on Huawei), options unchecked."""

    @model_validator(mode="after")
    def _devices(self) -> TrainJob:
        if self.devices is not None and self.devices != self.parallelism.devices:
            raise ValueError(
                f"devices ({self.devices}) must equal tp*pp*dp*cp "
                f"({self.parallelism.devices})"
            )
        return self


def _ints(x: Any) -> Any:
    """Integer arrays for the layout search; a Python int for one job (numpy's overhead on
    a single value is most of a rule check's time)."""
    if type(x) is int:
        return x
    if isinstance(x, np.ndarray | list | tuple):
        return np.asarray(x, dtype=np.int64)
    return int(x)


def _not(x: Any) -> Any:
    return np.logical_not(x) if isinstance(x, np.ndarray) else not x


def layout_rules(model: TransformerModel, tp: Any, pp: Any, dp: Any, cp: Any, ep: Any,
                 micro_batch: Any, virtual_stages: Any, global_batch: Any,
                 first_layers: Any = 0, last_layers: Any = 0, dualpipe: Any = 0,
                 acc_emb: Any = 0, acc_loss: Any = 0, first_chunk: Any = -1,
                 last_chunk: Any = -1) -> list[tuple[str, Any, str]]:
    """Megatron-LM's divisibility rules, the one copy: ``(field, broken, message)`` per rule,
    where ``broken`` is a boolean array over the layouts given as arrays (the layout search
    filters with it) and ``message`` a template over the layout's names (user input)."""
    t, p, d, c, e = (_ints(x) for x in (tp, pp, dp, cp, ep))
    b, v = _ints(micro_batch), _ints(virtual_stages)
    gb = _ints(global_batch)
    kv = model.n_kv_heads
    heads_bad = model.heads % t != 0
    experts = model.moe.experts if model.moe else 1
    per_step = d * b
    batch_bad = gb % per_step != 0
    fl, ll = _ints(first_layers), _ints(last_layers)
    uneven = (fl > 0) | (ll > 0)
    n_rest = p - (fl > 0) - (ll > 0)
    rest = model.layers - fl - ll
    uneven_bad = uneven & ((n_rest < 1) | (rest < n_rest * v)
                           | (rest % xp.maximum(n_rest * v, 1) != 0))
    # Megatron-Core's account_for_embedding/loss_in_pipeline_split: (layers + 1 + 1) split
    # evenly over the p v virtual stages, at least one layer each to give up
    ae, al = _ints(acc_emb), _ints(acc_loss)
    acc = (ae > 0) | (al > 0)
    n_acc = model.layers + ae + al
    acc_bad = acc & (uneven | (n_acc % (p * v) != 0) | (n_acc < p * v))
    # a pipeline layout's first / last virtual stage: within its stage's layers, v > 1, and
    # not beside account_for_* (which sets it)
    fc, lc = _ints(first_chunk), _ints(last_chunk)
    stage_f = xp.where(fl > 0, fl, model.layers // xp.maximum(p, 1))
    stage_l = xp.where(ll > 0, ll, model.layers // xp.maximum(p, 1))
    chunk_bad = (((fc >= 0) | (lc >= 0)) & ((v < 2) | acc)) | (fc > stage_f) | (lc > stage_l)
    dual = _ints(dualpipe) > 0
    m = gb // xp.maximum(per_step, 1)
    dual_bad = dual & ((p < 2) | (p % 2 != 0) | (v > 1) | (m < p) | (m % 2 != 0))
    return [
        ("parallelism.tp", heads_bad, "tp ({tp}) must divide heads ({heads})"),
        ("parallelism.tp", _not(heads_bad) & (kv % t != 0) & (t % kv != 0),
         "tp ({tp}) and kv_heads ({kv_heads}) must divide one another"),
        ("parallelism.tp", model.ffn_hidden % t != 0,
         "tp ({tp}) must divide ffn_hidden ({ffn_hidden})"),
        ("parallelism.pp", _not(uneven) & _not(acc) & (model.layers % (p * v) != 0),
         "pp*virtual_stages ({pp}*{virtual_stages}) must divide layers ({layers}); or set "
         "first_stage_layers / last_stage_layers for uneven stages"),
        ("parallelism.first_stage_layers", uneven_bad,
         "the stages other than the first ({first_stage_layers}) and last "
         "({last_stage_layers}) must share the remaining layers evenly, a multiple of "
         "virtual_stages ({virtual_stages}) each, and at least one stage must remain"),
        ("parallelism.account_for_embedding", acc_bad,
         "with account_for_embedding / account_for_loss, pp*virtual_stages ({pp}*"
         "{virtual_stages}) must divide layers ({layers}) plus the embedding and the loss "
         "counted as layers, and first_stage_layers / last_stage_layers must not be set"),
        ("parallelism.first_chunk_layers", chunk_bad,
         "first_chunk_layers / last_chunk_layers need virtual_stages > 1 ({virtual_stages}), "
         "at most their stage's layers, and no account_for_embedding / account_for_loss"),
        ("parallelism.virtual_stages", (v > 1) & (p == 1),
         "virtual_stages > 1 needs pp > 1 (interleaved 1F1B)"),
        ("parallelism.cp", model.seq_len % c != 0, "cp ({cp}) must divide seq_len ({seq_len})"),
        ("parallelism.ep", (e > 1) & (model.moe is None), "ep > 1 needs a MoE model (model.moe)"),
        ("parallelism.ep", (e > 1) & (model.moe is not None) & (experts % e != 0),
         "ep ({ep}) must divide moe.experts ({experts})"),
        ("parallelism.ep", (e > 1) & ((d * c) % e != 0), "ep ({ep}) must divide dp*cp ({dpcp})"),
        ("global_batch", batch_bad,
         "global_batch ({global_batch}) must be divisible by dp*micro_batch ({per_step})"),
        ("global_batch", _not(batch_bad) & (v > 1) & ((gb // xp.maximum(per_step, 1)) % p != 0),
         "interleaved schedule needs micro-batches per step ({m}) divisible by pp ({pp})"),
        ("parallelism.schedule", dual_bad,
         "dualpipe needs an even pp ({pp}) >= 2, virtual_stages 1 ({virtual_stages}) and an "
         "even number of micro-batches per step ({m}) of at least pp"),
    ]


def layout_problems(model: TransformerModel, par: Parallelism, global_batch: int,
                    file: str = "job") -> list[Problem]:
    """Every way the layout breaks Megatron's divisibility rules, each naming its field."""
    rules = layout_rules(model, par.tp, par.pp, par.dp, par.cp, par.ep, par.micro_batch,
                         par.virtual_stages, global_batch, par.first_stage_layers or 0,
                         par.last_stage_layers or 0, par.schedule == "dualpipe",
                         par.account_for_embedding, par.account_for_loss,
                         -1 if par.first_chunk_layers is None else par.first_chunk_layers,
                         -1 if par.last_chunk_layers is None else par.last_chunk_layers)
    broken = [(field, msg) for field, bad, msg in rules if bool(bad)]
    out = []
    if broken:  # the messages' names only for a broken layout (model_dump: most of a check)
        names = {**par.model_dump(), "heads": model.heads, "kv_heads": model.n_kv_heads,
                 "ffn_hidden": model.ffn_hidden, "layers": model.layers,
                 "seq_len": model.seq_len, "experts": model.moe.experts if model.moe else 1,
                 "dpcp": par.dp * par.cp, "global_batch": global_batch,
                 "per_step": par.dp * par.micro_batch,
                 "m": global_batch // (par.dp * par.micro_batch)}
        out = [Problem(file, field, msg.format(**names)) for field, msg in broken]
    return out + [Problem(file, "parallelism.recompute_modules", msg)
                  for msg in recompute_module_problems(par.recompute, par.recompute_modules)]


def recompute_module_problems(recompute: str, modules: Sequence[str]) -> list[str]:
    """The recompute modules that mean nothing with ``recompute``: qkv_offload spares the
    QKV projection of full recomputation only (the model reads it with ``full`` alone);
    alternate_mm is a selective policy (with ``full`` every op is recomputed already)."""
    out = []
    if "qkv_offload" in modules and recompute != "full":
        out.append(f"qkv_offload needs recompute: full (MaxText's qkv_proj_offloaded is a "
                   f"full remat policy), not {recompute}")
    if "mlp_in" in modules and recompute == "full":
        out.append("mlp_in is a selective policy (MaxText's save_dot_except_mlpwi): with "
                   "recompute: full every op is recomputed already")
    if "alternate_mm" in modules and recompute == "full":
        out.append("alternate_mm is a selective policy (torchtitan's per-op checkpointing): "
                   "with recompute: full every op is recomputed already")
    return out


def check_job(job: TrainJob, file: str = "job") -> TrainJob:
    """Raise one AccelsimError listing every layout problem of the job."""
    problems = layout_problems(job.model, job.parallelism, job.global_batch, file)
    if problems:
        raise AccelsimError(problems)
    return job


def job_from(data: dict[str, Any], path: str | Path, where: str | None = None,
             check: bool = True) -> TrainJob:
    """Validate a job mapping read from ``path`` (a relative device path resolves from its
    folder); ``check`` also resolves the device, its precision and the layout rules."""
    where = where or str(path)
    job = validate(TrainJob, data, where)
    job = job.model_copy(update={"device": refs.normalize(job.device, path), "stack": (
        refs.normalize(job.stack, path) if job.stack else None)})
    if check:
        from accelsim.devices import load_device
        from accelsim.stacks import check_training, load_stack

        spec = load_device(job.device, where=f"{where}: device").spec
        spec.flops(job.precision, where=where)
        check_job(job, where)
        if job.stack:
            check_training(load_stack(job.stack, where=where), job, where)
    return job


def load_job(path: str | Path) -> TrainJob:
    """Read, validate and check a job."""
    return job_from(read_yaml(path), path)

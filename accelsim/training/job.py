"""Training job inputs: the model, the parallel layout, the batch. Field names follow Megatron-LM.

Layout rules are checked here and reported against the field that breaks them;
a model that does not fit in memory is a *result*, not an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from accelsim.config import Strict, read_yaml, validate
from accelsim.errors import AccelsimError, Problem

TrainPrecision = Literal["fp32", "bf16", "fp16", "fp8"]
Recompute = Literal["none", "selective", "full"]
RECOMPUTE_CODE = {"none": 0, "selective": 1, "full": 2}


class MoE(Strict):
    """Mixture-of-Experts feed-forward: ``experts`` routed experts of width ``ffn_hidden``,
    ``top_k`` per token, plus ``shared_experts`` always-on experts.
    MoE layers are every ``layer_freq``-th layer after the first ``first_dense_layers``."""

    experts: int = Field(ge=2)
    top_k: int = Field(ge=1)
    ffn_hidden: int = Field(ge=1)
    shared_experts: int = Field(default=0, ge=0)
    layer_freq: int = Field(default=1, ge=1)
    first_dense_layers: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _k(self) -> MoE:
        if self.top_k > self.experts:
            raise ValueError(f"top_k ({self.top_k}) must not exceed experts ({self.experts})")
        return self


class TransformerModel(Strict):
    """Decoder-only transformer (GPT / Llama family)."""

    name: str = "model"
    layers: int = Field(ge=1)
    hidden: int = Field(ge=1)
    heads: int = Field(ge=1)
    kv_heads: int | None = Field(default=None, ge=1)
    ffn_hidden: int = Field(ge=1)
    gated_mlp: bool = False
    vocab: int = Field(ge=1)
    seq_len: int = Field(ge=1)
    tied_embeddings: bool = True
    moe: MoE | None = None

    @model_validator(mode="after")
    def _shape(self) -> TransformerModel:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
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


class Parallelism(Strict):
    tp: int = Field(default=1, ge=1)
    pp: int = Field(default=1, ge=1)
    dp: int = Field(default=1, ge=1)
    cp: int = Field(default=1, ge=1)
    ep: int = Field(default=1, ge=1)
    micro_batch: int = Field(default=1, ge=1)
    virtual_stages: int = Field(default=1, ge=1)
    sequence_parallel: bool = True
    recompute: Recompute = "none"
    zero: int = Field(default=1, ge=0, le=3)

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.dp * self.cp


class TrainJob(Strict):
    """One training step: ``global_batch`` sequences of ``model.seq_len`` tokens."""

    device: str
    model: TransformerModel
    parallelism: Parallelism = Parallelism()
    global_batch: int = Field(ge=1)
    precision: TrainPrecision = "bf16"
    devices: int | None = Field(default=None, ge=1)
    attention: Literal["flash", "unfused"] = "flash"
    straggler_slowdown: float = Field(default=1.0, ge=1.0)
    overlap_dp_comm: bool = True

    def check(self, file: str = "job") -> None:
        """Checks that need more than this file: the device exists, the layout divides."""
        from accelsim.devices import load_device

        spec = load_device(self.device, where=f"{file}: device").spec
        spec.flops(self.precision, where=file)
        check_job(self, file)

    @model_validator(mode="after")
    def _devices(self) -> TrainJob:
        if self.devices is not None and self.devices != self.parallelism.devices:
            raise ValueError(
                f"devices ({self.devices}) must equal tp*pp*dp*cp "
                f"({self.parallelism.devices})"
            )
        return self


def layout_problems(model: TransformerModel, par: Parallelism, global_batch: int,
                    file: str = "job") -> list[Problem]:
    """Every way the layout breaks Megatron's divisibility rules, each naming its field."""
    out: list[Problem] = []

    def bad(field: str, msg: str) -> None:
        out.append(Problem(file, field, msg))

    kv = model.n_kv_heads
    if model.heads % par.tp:
        bad("parallelism.tp", f"tp ({par.tp}) must divide heads ({model.heads})")
    elif kv % par.tp and par.tp % kv:
        bad("parallelism.tp", f"tp ({par.tp}) and kv_heads ({kv}) must divide one another")
    if model.ffn_hidden % par.tp:
        bad("parallelism.tp", f"tp ({par.tp}) must divide ffn_hidden ({model.ffn_hidden})")
    if model.layers % (par.pp * par.virtual_stages):
        bad("parallelism.pp",
            f"pp*virtual_stages ({par.pp}*{par.virtual_stages}) must divide layers "
            f"({model.layers})")
    if par.virtual_stages > 1 and par.pp == 1:
        bad("parallelism.virtual_stages", "virtual_stages > 1 needs pp > 1 (interleaved 1F1B)")
    if model.seq_len % par.cp:
        bad("parallelism.cp", f"cp ({par.cp}) must divide seq_len ({model.seq_len})")
    if par.ep > 1:
        if model.moe is None:
            bad("parallelism.ep", "ep > 1 needs a MoE model (model.moe)")
        elif model.moe.experts % par.ep:
            bad("parallelism.ep", f"ep ({par.ep}) must divide moe.experts ({model.moe.experts})")
        if (par.dp * par.cp) % par.ep:
            bad("parallelism.ep", f"ep ({par.ep}) must divide dp*cp ({par.dp * par.cp})")
    per_step = par.dp * par.micro_batch
    if global_batch % per_step:
        bad("global_batch",
            f"global_batch ({global_batch}) must be divisible by dp*micro_batch ({per_step})")
    elif par.virtual_stages > 1 and (global_batch // per_step) % par.pp:
        bad("global_batch",
            f"interleaved schedule needs micro-batches per step ({global_batch // per_step}) "
            f"divisible by pp ({par.pp})")
    return out


def check_job(job: TrainJob, file: str = "job") -> TrainJob:
    """Raise one AccelsimError listing every layout problem of the job."""
    problems = layout_problems(job.model, job.parallelism, job.global_batch, file)
    if problems:
        raise AccelsimError(problems)
    return job


def load_model(path: str | Path) -> TransformerModel:
    """A model file: either the model mapping itself or a job with a ``model`` key."""
    data = read_yaml(path)
    if "model" in data and isinstance(data["model"], dict):
        return validate(TransformerModel, data["model"], path, prefix="model")
    return validate(TransformerModel, data, path)


def load_job(path: str | Path) -> TrainJob:
    """Read, validate and layout-check a job; a relative device path resolves from the file."""
    from accelsim.devices import resolve_ref

    data: dict[str, Any] = read_yaml(path)
    job = validate(TrainJob, data, path)
    job = job.model_copy(update={"device": resolve_ref(job.device, path)})
    job.check(str(path))
    return job

"""``training`` -- one published training layout (:func:`accelsim.training.perf.estimate`),
the micro-batch and virtual stages a paper does not give searched over the listed values (the
fastest layout that fits, as the authors tuned them); the metric is the paper's
``eq3_tflops_per_gpu`` (Narayanan et al. 2021, Eq. 3), ``mfu_pct``, causal TFLOP/s or
tokens/s per GPU."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from accelsim.errors import AccelsimError, Problem
from accelsim.precision import TrainPrecision
from accelsim.runs.base import Loader, Prediction, RunBase, RunKind, register
from accelsim.training.job import Recompute, RecomputeModule
from accelsim.transformer.model import TransformerModel


class TrainingRun(RunBase):
    kind: Literal["training"]
    """A published training layout: throughput per device or MFU."""
    metric: Literal["eq3_tflops_per_gpu", "mfu_pct", "causal_tflops_per_gpu",
                    "tokens_per_s_per_gpu"]
    """What was published: TFLOP/s per GPU counted as Narayanan et al. 2021 Eq. 3 (full
    recomputation), model-FLOPs utilisation in percent (full-sequence attention), model
    TFLOP/s per GPU with causal attention counted over the unmasked half, or training
    tokens per second per GPU (free of any FLOP convention)."""
    model: TransformerModel
    """The transformer, inline."""
    device: str
    """Device: catalog name or path."""
    devices: int = Field(ge=1, le=10_000_000)
    """GPUs of the run."""
    tp: int = Field(ge=1, le=10_000)
    """Tensor-parallel ranks."""
    pp: int = Field(ge=1, le=10_000)
    """Pipeline stages."""
    cp: int = Field(default=1, ge=1, le=10_000)
    """Context-parallel ranks."""
    ep: int = Field(default=1, ge=1, le=100_000)
    """Expert-parallel ranks (MoE)."""
    schedule: Literal["1f1b", "dualpipe"] = "1f1b"
    """Pipeline schedule."""
    zero: int = Field(default=0, ge=0, le=3)
    """ZeRO stage of the data-parallel replicas (FSDP sharding gradients and optimizer: 2)."""
    first_stage_layers: int | None = Field(default=None, ge=0, le=100_000)
    """Layers on the first pipeline stage when the stages are uneven."""
    last_stage_layers: int | None = Field(default=None, ge=0, le=100_000)
    """Layers on the last pipeline stage when the stages are uneven."""
    first_chunk_layers: int | None = Field(default=None, ge=0, le=100_000)
    """Layers of the first virtual stage when a pipeline layout places them unevenly."""
    last_chunk_layers: int | None = Field(default=None, ge=0, le=100_000)
    """Layers of the last virtual stage when a pipeline layout places them unevenly."""
    account_for_embedding: bool = False
    """Megatron-Core's account_for_embedding_in_pipeline_split (the embedding counted as a
    layer of the first virtual stage)."""
    account_for_loss: bool = False
    """Megatron-Core's account_for_loss_in_pipeline_split (the head and loss counted as a
    layer of the last virtual stage)."""
    global_batch: int = Field(ge=1, le=100_000_000)
    """Sequences per step."""
    precision: TrainPrecision
    """Training precision."""
    attention: Literal["flash", "unfused"]
    """flash or unfused attention (2021-2022 Megatron: unfused softmax)."""
    recompute: Recompute
    """Activation recomputation."""
    recompute_modules: list[RecomputeModule] = Field(default_factory=list)
    """Per-module recomputation (Megatron-core's --recompute-modules)."""
    sequence_parallel: bool
    """Megatron sequence parallelism."""
    overlap_dp_comm: bool
    """Whether the gradient all-reduce overlaps the backward pass."""
    overlap_param_gather: bool = True
    """Whether the ZeRO parameter all-gather overlaps the next step's forward."""
    overlap_tp_comm: bool = False
    """Whether tensor-parallel communication overlaps the GEMMs (TE userbuffers)."""
    overlap_ep_comm: bool = False
    """Whether the MoE all-to-all is hidden behind another micro-batch's compute."""
    cuda_graph_scope: list[Literal["attn", "moe_router", "moe_preprocess"]] = Field(
        default_factory=list)
    """Modules the run's recipe captures in CUDA graphs (Megatron-Bridge ``cuda_graph_scope``)."""
    micro_batches: list[Annotated[int, Field(ge=1, le=1024)]] = Field(min_length=1)
    """Micro-batch sizes searched (one value when published)."""
    virtual_stages: list[Annotated[int, Field(ge=1, le=64)]] = Field(min_length=1)
    """Interleaved pipeline chunks searched (one value when published)."""
    stack: str | None = None
    """Software stack of the run (``configs/stacks``); not given: the vendor's default."""


def eq3_flops(batch: int, model: TransformerModel) -> float:
    """FLOPs per step as Narayanan et al. 2021 count them (Eq. 3, full recomputation):
    ``96 B s l h^2 (1 + s / 6h + V / 16 l h)``."""
    h, s, ell, V = model.hidden, model.seq_len, model.layers, model.vocab
    return 96 * batch * s * ell * h * h * (1 + s / (6 * h) + V / (16 * ell * h))


def predict(run: TrainingRun, file: str) -> Prediction:
    from accelsim.devices import load_device
    from accelsim.training.job import Parallelism, TrainJob, layout_problems
    from accelsim.training.perf import estimate

    spec = load_device(run.device, where=file, field="device", relative_to=file)
    dspec = spec.spec  # one object for every candidate layout: the device columns' memo keys on it
    dp = run.devices // (run.tp * run.pp * run.cp)
    if dp * run.tp * run.pp * run.cp != run.devices:
        raise AccelsimError.single(file, "devices", f"{run.devices} is not a multiple "
                                   f"of tp*pp*cp ({run.tp * run.pp * run.cp})")
    best = None
    broken: list[Problem] = []  # the first candidate's layout problems, fields as in the run
    divides = False
    for b in run.micro_batches:
        for v in run.virtual_stages:
            par = Parallelism(tp=run.tp, pp=run.pp, dp=dp, cp=run.cp, ep=run.ep,
                              schedule=run.schedule, micro_batch=b,
                              virtual_stages=v, sequence_parallel=run.sequence_parallel,
                              recompute=run.recompute, zero=run.zero,
                              recompute_modules=run.recompute_modules,
                              first_stage_layers=run.first_stage_layers,
                              last_stage_layers=run.last_stage_layers,
                              account_for_embedding=run.account_for_embedding,
                              account_for_loss=run.account_for_loss,
                              first_chunk_layers=run.first_chunk_layers,
                              last_chunk_layers=run.last_chunk_layers)
            problems = layout_problems(run.model, par, run.global_batch, file)
            if problems and not broken:
                broken = [Problem(file, p.field.removeprefix("parallelism."), p.message)
                          for p in problems]
            if (v > 1 and run.pp == 1) or problems:
                continue
            divides = True
            job = TrainJob(device=spec.name, model=run.model, global_batch=run.global_batch,
                           precision=run.precision, attention=run.attention,
                           overlap_dp_comm=run.overlap_dp_comm,
                           overlap_tp_comm=run.overlap_tp_comm,
                           overlap_param_gather=run.overlap_param_gather,
                           overlap_ep_comm=run.overlap_ep_comm, parallelism=par,
                           cuda_graph_scope=run.cuda_graph_scope, stack=run.stack)
            res = estimate(job, dspec, file=file)
            if res.fits_memory and (best is None or res.step_time_s < best.step_time_s):
                best = res
    if best is None and not divides and broken:
        raise AccelsimError(broken)  # no candidate divides: say which rule breaks
    if best is None:
        raise AccelsimError.single(file, "", "no layout of the listed micro-batches and "
                                   "virtual stages divides and fits; expected a valid one")
    par = best.job.parallelism
    detail = (f"tp{par.tp} pp{par.pp} dp{par.dp}" + (f" cp{par.cp}" if par.cp > 1 else "")
              + (f" ep{par.ep}" if par.ep > 1 else "")
              + (f" {par.schedule}" if par.schedule != "1f1b" else "")
              + f" mb{par.micro_batch} v{par.virtual_stages}; step {best.step_time_s:.3g} s, "
              f"{best.memory_per_device_gib:.0f} of {best.device_memory_gib:.0f} GiB")
    if run.metric == "mfu_pct":
        return Prediction(100 * best.mfu, detail)
    if run.metric == "causal_tflops_per_gpu":
        return Prediction(best.model_tflops_causal_per_device, detail)
    if run.metric == "tokens_per_s_per_gpu":
        return Prediction(best.tokens_per_s / run.devices, detail)
    return Prediction(eq3_flops(run.global_batch, run.model) / best.step_time_s / run.devices
                      / 1e12, detail)


def files(run: TrainingRun) -> list[tuple[str, str, Loader]]:
    from accelsim.devices import load_device

    return [("device", run.device, load_device)]


register(RunKind("training", TrainingRun, predict, files))

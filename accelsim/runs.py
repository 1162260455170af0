"""Published runs as cited data files, predicted by the same models a planner uses.

A run file (``configs/runs/*.yaml``) names a tolerance and its runs; each run gives its
source (paper, results log), the published figure and what the model needs to predict it.
:func:`validate_runs` predicts every run and reports the relative error
``(predicted - published) / published``; ``accelsim validate-runs`` prints the table and exits
with code 1 when any run misses by more than its file's tolerance.

Kinds of run:

* ``recsys_offline`` -- MLPerf Inference Offline: samples/s of ``devices`` devices at the
  batch that maximises throughput within device memory
  (:func:`accelsim.serving.recsys.offline`), items/s divided by the mean sample size.
* ``recsys_server`` -- MLPerf Inference Server: the highest Poisson rate of samples whose p99
  latency meets the bound, simulated on ``devices`` replicas behind one queue with dynamic
  batching (:func:`accelsim.serving.sim.capacity`).
* ``training`` -- one published training layout (:func:`accelsim.training.perf.estimate`),
  the micro-batch and virtual stages a paper does not give searched over the listed values
  (the fastest layout that fits, as the authors tuned them); the metric is the paper's
  ``eq3_tflops_per_gpu`` (Narayanan et al. 2021, Eq. 3) or ``mfu_pct``.
* ``llm_offline`` -- LLM serving at maximum load (trtllm-bench, MLPerf Offline): every
  request queued at once on ``replicas`` replicas, output tokens over the makespan
  (:func:`accelsim.llm.sim.simulate`); lengths fixed or a dataset's histogram.
* ``llm_server`` -- MLPerf Server for LLMs: the highest Poisson rate at which
  ``percentile`` of the requests meet the TTFT and TPOT bounds
  (:func:`accelsim.llm.sim.capacity`).
* ``llm_decode`` / ``llm_prefill`` -- one iteration of a wide replica (DP attention, expert
  parallelism) at a fixed batch, as the DeepSeek, SGLang and CloudMatrix papers tabulate
  them: output tokens/s per device from the decode step (with multi-token prediction), or
  prompt tokens/s per device from one prefill iteration.

Run files in ``configs/runs/`` are asserted (a test runs them all). Published runs the model
misses by more than its file's tolerance live in ``configs/runs/misses/`` with the error and
its analysis in the file and the README: runnable by naming them, not asserted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from accelsim.config import Strict, read_yaml, validate
from accelsim.errors import AccelsimError, Problem
from accelsim.llm.job import KVFormat, WeightFormat
from accelsim.precision import TrainPrecision
from accelsim.traffic import Dist
from accelsim.training.job import Recompute
from accelsim.transformer.model import TransformerModel


class Published(Strict):
    value: float = Field(gt=0)
    """The published figure."""
    unit: str = Field(min_length=1)
    """Its unit, as published (e.g. samples/s)."""


class _Published(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    """Short unique name of the run."""
    source: str = Field(min_length=1)
    """Where the published figure comes from (paper table, results log path and repository)."""
    published: Published
    """The published figure and its unit."""
    note: str = ""
    """What the run's settings come from, and what is assumed."""


class _Run(_Published):
    model: str
    """Recommendation model: catalog name or path."""
    device: str
    """Device: catalog name or path."""
    devices: int = Field(ge=1, le=100_000)
    """Devices in the published system (one replica each)."""
    sample_items: Dist
    """Items (user-item pairs) per sample: the published figure counts samples."""


class RecsysOfflineRun(_Run):
    kind: Literal["recsys_offline"]
    """MLPerf Offline: throughput with every sample available at once."""


class RecsysServerRun(_Run):
    kind: Literal["recsys_server"]
    """MLPerf Server: Poisson arrivals, throughput at a p99 latency bound."""
    p99_ms: float = Field(gt=0, le=3_600_000)
    """The latency bound the published rate met, at the 99th percentile, ms."""
    max_batch_items: int = Field(ge=1, le=10_000_000)
    """Largest batch a device forms (the submission's batch size), items."""
    timeout_ms: float = Field(default=1.0, ge=0, le=60_000)
    """Longest a batch waits to fill, ms."""
    requests: int = Field(default=40_000, ge=1000, le=10_000_000)
    """Simulated samples per replication."""
    replications: int = Field(default=2, ge=1, le=20)
    """Seeded replications behind the capacity."""
    seed: int = Field(default=1, ge=0)
    """Seed of the first replication."""


class TrainingRun(_Published):
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
    global_batch: int = Field(ge=1, le=100_000_000)
    """Sequences per step."""
    precision: TrainPrecision
    """Training precision."""
    attention: Literal["flash", "unfused"]
    """flash or unfused attention (2021-2022 Megatron: unfused softmax)."""
    recompute: Recompute
    """Activation recomputation."""
    recompute_modules: list[Literal["layernorm", "mla_up_proj", "moe_act"]] = Field(
        default_factory=list)
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
    micro_batches: list[Annotated[int, Field(ge=1, le=1024)]] = Field(min_length=1)
    """Micro-batch sizes searched (one value when published)."""
    virtual_stages: list[Annotated[int, Field(ge=1, le=64)]] = Field(min_length=1)
    """Interleaved pipeline chunks searched (one value when published)."""


class _LLMModel(_Published):
    """The decoder, the device and the number formats of a published LLM serving run."""

    model: str
    """Decoder-only model: catalog name or path."""
    device: str
    """Device: catalog name or path."""
    weights: WeightFormat
    """Weight format (W8A8 GEMMs with 8-bit weights)."""
    kv_cache: KVFormat
    """KV-cache format."""


class _LLMRun(_LLMModel):
    """One kind of LLM serving replica under a published load (:mod:`accelsim.llm`)."""

    replicas: int = Field(default=1, ge=1, le=100_000)
    """Replicas serving the load (MLPerf: 8 GPUs as 4 TP2 engines)."""
    tp: int = Field(ge=1, le=1024)
    """Tensor-parallel GPUs of the replica."""
    input_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | Dist = Field(
        union_mode="left_to_right")
    """Prompt tokens: one length for every request, or a distribution (dataset histogram)."""
    output_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | Dist = Field(
        union_mode="left_to_right")
    """Output tokens: one length, or a distribution."""
    requests: int = Field(ge=10, le=1_000_000)
    """Requests in the run."""
    max_batched_tokens: int = Field(ge=1, le=1_000_000)
    """The engine's token budget per iteration."""
    max_seqs: int = Field(ge=1, le=100_000)
    """The engine's largest batch of sequences."""
    memory_utilization: float = Field(gt=0, le=1)
    """Share of memory the engine may use."""
    kv_admission: Literal["on_demand", "reserve"]
    """KV-cache admission policy (reserve: TensorRT-LLM's GUARANTEED_NO_EVICT)."""

    def job(self, file: str, rate_qps: float, slo: dict[str, float] | None = None,
            replications: int = 1) -> Any:
        """The run as an :class:`accelsim.llm.job.LLMJob` at ``rate_qps``."""
        from accelsim import refs
        from accelsim.llm.job import LLMJob

        def dist(x: Any) -> Any:
            return {"dist": "fixed", "value": x} if isinstance(x, int) else x.model_dump()

        return LLMJob.model_validate({
            "replicas": [{"device": refs.normalize(self.device, file),
                          "model": refs.normalize(self.model, file), "count": self.replicas,
                          "tp": self.tp, "weights": self.weights, "kv_cache": self.kv_cache,
                          "max_batched_tokens": self.max_batched_tokens,
                          "max_seqs": self.max_seqs,
                          "memory_utilization": self.memory_utilization,
                          "kv_admission": self.kv_admission}],
            "arrivals": {"rate_qps": rate_qps},
            "prompt_tokens": dist(self.input_tokens), "output_tokens": dist(self.output_tokens),
            "slo": slo,
            "sim": {"requests": self.requests, "warmup": 0, "seed": 1,
                    "replications": replications}})


class LLMOfflineRun(_LLMRun):
    kind: Literal["llm_offline"]
    """LLM serving under maximum load: every request queued at once (trtllm-bench
    throughput, MLPerf Offline); total output tokens per second of the replicas."""
    metric: Literal["output_tokens_per_s"]
    """Output tokens per second of all the replicas."""


class LLMServerRun(_LLMRun):
    kind: Literal["llm_server"]
    """MLPerf Inference Server for LLMs: Poisson arrivals, the highest rate at which the
    p99 time to first token and the p99 time per output token meet their bounds."""
    metric: Literal["queries_per_s"]
    """Requests per second at the latency bounds."""
    ttft_ms: float = Field(gt=0, le=3_600_000)
    """Time-to-first-token bound (MLPerf Llama-2-70B: 2,000 ms at p99)."""
    tpot_ms: float = Field(gt=0, le=3_600_000)
    """Time-per-output-token bound (MLPerf Llama-2-70B: 200 ms at p99)."""
    percentile: float = Field(default=0.99, gt=0, lt=1)
    """Share of requests that must meet the bounds."""
    replications: int = Field(default=3, ge=1, le=100)
    """Seeded runs averaged (each a bisection on the rate)."""


class _LLMStep(_LLMModel):
    """One iteration of a wide replica measured alone (the papers' decode and prefill
    tables: fixed batch per device, fixed lengths, no queueing)."""

    tp: int = Field(default=1, ge=1, le=1024)
    """Tensor-parallel devices per attention group."""
    dp: int = Field(ge=1, le=100_000)
    """Attention data-parallel groups (the replica spans tp x dp devices, the experts all
    of them)."""
    redundant_experts: int = Field(default=0, ge=0, le=100_000)
    """Extra routed-expert copies (EPLB)."""
    overlap_ep_comm: bool
    """Whether two micro-batches hide the all-to-all behind compute."""

    def replica_model(self, file: str, max_tokens: int, max_seqs: int,
                      role: str = "both", mtp_tokens: int = 0,
                      mtp_acceptance: float = 0.0) -> Any:
        from accelsim import refs
        from accelsim.llm.job import Replica
        from accelsim.llm.perf import replica_model

        # a fixed batch's step does not depend on the KV capacity: memory only has to fit
        r = Replica(device=refs.normalize(self.device, file),
                    model=refs.normalize(self.model, file), tp=self.tp, dp=self.dp,
                    redundant_experts=self.redundant_experts,
                    overlap_ep_comm=self.overlap_ep_comm, weights=self.weights,
                    kv_cache=self.kv_cache, max_batched_tokens=max_tokens, max_seqs=max_seqs,
                    memory_utilization=0.95, role=role, mtp_tokens=mtp_tokens,
                    mtp_acceptance=mtp_acceptance)
        return replica_model(r, file, "run")


class LLMDecodeRun(_LLMStep):
    kind: Literal["llm_decode"]
    """Decode throughput at a fixed batch and KV length: batch x tokens per step / step
    time (:meth:`accelsim.llm.perf.ReplicaModel.decode_step_s`)."""
    metric: Literal["output_tokens_per_s_per_device"]
    """Output tokens per second per device."""
    batch_per_device: int = Field(ge=1, le=1_000_000)
    """Sequences decoding per device."""
    context_tokens: int = Field(ge=1, le=10_000_000)
    """KV-cache length of every sequence."""
    draft_tokens: int = Field(default=0, ge=0, le=8)
    """Multi-token prediction: tokens drafted and verified per step."""
    draft_acceptance: float = Field(default=0.0, ge=0, le=1)
    """Probability a drafted token is accepted (each needs the previous one)."""


class LLMPrefillRun(_LLMStep):
    kind: Literal["llm_prefill"]
    """Prefill throughput: one iteration of ``tokens_per_device`` prompt tokens per device,
    prompts of ``prompt_tokens`` each; prompt tokens per second per device."""
    metric: Literal["input_tokens_per_s_per_device"]
    """Prompt tokens per second per device."""
    tokens_per_device: int = Field(ge=1, le=10_000_000)
    """Prompt tokens per device in the iteration."""
    prompt_tokens: int = Field(ge=1, le=10_000_000)
    """Length of each prompt."""


Run = Annotated[RecsysOfflineRun | RecsysServerRun | TrainingRun | LLMOfflineRun
                | LLMServerRun | LLMDecodeRun | LLMPrefillRun, Field(discriminator="kind")]


class RunFile(Strict):
    name: str = Field(min_length=1)
    """Name of the set of runs."""
    description: str = ""
    """Free text."""
    tolerance: float = Field(gt=0, le=1)
    """Largest relative error |predicted - published| / published accepted."""
    shared: dict[str, Any] = Field(default_factory=dict)
    """Blocks several runs share through YAML anchors (a dataset's length histogram);
    read only where a run refers to them."""
    runs: list[Run] = Field(min_length=1)
    """The published runs."""

    def check(self, file: str = "runs") -> None:
        """Run ids are unique; every run's model and device exist."""
        from accelsim.devices import load_device
        from accelsim.serving.recsys import load_model

        probs: list[Problem] = []
        ids = [r.id for r in self.runs]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            probs.append(Problem(file, "runs", f"run ids must be unique; repeated: "
                                 f"{', '.join(dup)}"))
        from accelsim.transformer.model import load_model as load_decoder

        for i, r in enumerate(self.runs):
            loads: tuple[tuple[str, Any], ...] = (("device", load_device),)
            if r.kind.startswith("llm_"):
                loads = (("model", load_decoder), ("device", load_device))
            elif r.kind != "training":
                loads = (("model", load_model), ("device", load_device))
            for field, load in loads:
                try:
                    load(getattr(r, field), relative_to=file, where=file,
                         field=f"runs[{i}].{field}")
                except AccelsimError as e:
                    probs += e.problems
        if probs:
            raise AccelsimError(probs)


@dataclass(frozen=True)
class RunResult:
    file: str
    id: str
    kind: str
    published: float
    predicted: float
    unit: str
    tolerance: float
    detail: str
    source: str

    @property
    def error(self) -> float:
        return (self.predicted - self.published) / self.published

    @property
    def within(self) -> bool:
        return abs(self.error) <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "id": self.id, "kind": self.kind,
                "published": self.published, "predicted": self.predicted, "unit": self.unit,
                "error": self.error, "tolerance": self.tolerance, "within": self.within,
                "detail": self.detail, "source": self.source}


def runs_dir() -> Path:
    from accelsim import refs

    return refs.configs_dir() / "runs"


def load_runs(path: str | Path) -> RunFile:
    data = read_yaml(path)
    if "runs" not in data:
        from accelsim.schemas import detect

        try:
            what = f"a {detect(data, str(path)).description}"
        except AccelsimError:
            what = "something else"
        raise AccelsimError.single(str(path), "runs", f"expected a run file (a 'runs' list, "
                                   f"configs/runs/), got {what}")
    rf = validate(RunFile, data, path)
    rf.check(str(path))
    return rf


def validate_runs(paths: list[str | Path] | None = None) -> list[RunResult]:
    """Predict every run of every file (default: all shipped run files)."""
    files = [Path(p) for p in paths] if paths else sorted(runs_dir().glob("*.yaml"))
    if not files:
        raise AccelsimError.single(str(runs_dir()), "", "no run files (*.yaml) here")
    out: list[RunResult] = []
    for f in files:
        rf = load_runs(f)
        for i, run in enumerate(rf.runs):
            where = f"runs[{i}]"
            try:
                predicted, detail = _PREDICT[run.kind](run, str(f))
            except AccelsimError as e:
                raise AccelsimError([Problem(str(f), f"{where}.{p.field}".rstrip("."),
                                             p.message) for p in e.problems]) from None
            out.append(RunResult(str(f), run.id, run.kind, run.published.value, predicted,
                                 run.published.unit, rf.tolerance, detail, run.source))
    return out


def _mean_items(run: Any) -> float:
    from accelsim.traffic import dist_mean

    return float(dist_mean(run.sample_items))


def _predict_offline(run: RecsysOfflineRun, file: str) -> tuple[float, str]:
    from accelsim.devices import load_device
    from accelsim.serving.recsys import load_model, offline

    model = load_model(run.model, relative_to=file, where=file, field="model")
    spec = load_device(run.device, where=file, field="device", relative_to=file).spec
    o = offline(model, spec, where=file)
    samples = run.devices * o["items_per_s"] / _mean_items(run)
    detail = (f"{o['items_per_s'] / 1e6:.3g} M items/s per device at batch "
              f"{o['batch_items']:,} (memory bound {o['batch_memory_bound_items']:,}); "
              f"period {o['period_s'] * 1e3:.3g} ms")
    return samples, detail


def _predict_server(run: RecsysServerRun, file: str) -> tuple[float, str]:
    from accelsim import refs
    from accelsim.serving.job import shared_queue_job
    from accelsim.serving.service import build_service
    from accelsim.serving.sim import capacity

    job = shared_queue_job(
        refs.normalize(run.device, file), refs.normalize(run.model, file), run.devices,
        run.sample_items.model_dump(),
        {"max_batch_items": run.max_batch_items, "timeout_ms": run.timeout_ms}, run.p99_ms,
        {"requests": run.requests, "warmup": run.requests // 10, "seed": run.seed,
         "replications": run.replications})
    c = capacity(job, service=build_service(job, file))
    detail = (f"saturated {c['capacity_qps']:,.0f} samples/s; at p99 <= {run.p99_ms:g} ms "
              f"[{c['ci95_low_qps']:,.0f}, {c['ci95_high_qps']:,.0f}]")
    return float(c["max_qps_at_slo"]), detail


def eq3_flops(batch: int, model: TransformerModel) -> float:
    """FLOPs per step as Narayanan et al. 2021 count them (Eq. 3, full recomputation):
    ``96 B s l h^2 (1 + s / 6h + V / 16 l h)``."""
    h, s, ell, V = model.hidden, model.seq_len, model.layers, model.vocab
    return 96 * batch * s * ell * h * h * (1 + s / (6 * h) + V / (16 * ell * h))


def _predict_training(run: TrainingRun, file: str) -> tuple[float, str]:
    from accelsim.devices import load_device
    from accelsim.training.job import Parallelism, TrainJob, layout_problems
    from accelsim.training.perf import estimate

    spec = load_device(run.device, where=file, field="device", relative_to=file)
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
                              last_stage_layers=run.last_stage_layers)
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
                           overlap_ep_comm=run.overlap_ep_comm, parallelism=par)
            res = estimate(job, spec.spec, file=file)
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
        return 100 * best.mfu, detail
    if run.metric == "causal_tflops_per_gpu":
        return best.model_tflops_causal_per_device, detail
    if run.metric == "tokens_per_s_per_gpu":
        return best.tokens_per_s / run.devices, detail
    return eq3_flops(run.global_batch, run.model) / best.step_time_s / run.devices / 1e12, detail


def _predict_llm_offline(run: LLMOfflineRun, file: str) -> tuple[float, str]:
    """Every request arrives within microseconds (rate 1e6/s) and the replicas drain them:
    output tokens over the makespan (:func:`accelsim.llm.sim.simulate`)."""
    from accelsim.llm.sim import simulate

    r = simulate(run.job(file, 1e6), file)
    rep = r.replicas[0]
    detail = (f"KV {rep['kv_tokens']:,} tokens, {rep['iterations']:,} iterations, "
              f"KV use {rep['kv_utilization']:.0%}; TTFT mean {r.metrics['ttft_mean_ms']:.0f} "
              f"ms, TPOT mean {r.metrics['tpot_mean_ms']:.1f} ms")
    return float(r.metrics["output_tokens_per_s"]), detail


def _predict_llm_server(run: LLMServerRun, file: str) -> tuple[float, str]:
    """The highest Poisson rate at which ``percentile`` of the requests meet both the TTFT
    and the TPOT bound (:func:`accelsim.llm.sim.capacity`; MLPerf checks the two p99s
    separately, so meeting both on one request each is the stricter test)."""
    from accelsim.llm.sim import capacity

    slo = {"ttft_ms": run.ttft_ms, "tpot_ms": run.tpot_ms, "attainment": run.percentile}
    c = capacity(run.job(file, 1.0, slo, run.replications), file)
    detail = (f"{c['max_rps_at_slo']:.1f} req/s (95 % CI {c['ci95_low_rps']:.1f}-"
              f"{c['ci95_high_rps']:.1f}) over {run.replications} seeded runs")
    return float(c["max_rps_at_slo"]), detail


def _predict_llm_decode(run: LLMDecodeRun, file: str) -> tuple[float, str]:
    """batch x (1 + a + ... + a^d) / step, the step at batch_per_device x devices
    sequences of ``context_tokens`` with d drafts each
    (:meth:`accelsim.llm.perf.ReplicaModel.decode_step_s`, the scheduler's iteration)."""
    devices = run.tp * run.dp
    batch = run.batch_per_device * devices
    rm = run.replica_model(file, 1, batch, "decode", run.draft_tokens, run.draft_acceptance)
    step = rm.decode_step_s(batch, run.context_tokens)
    per_step = rm.tokens_per_step
    tpot = step / per_step
    return batch / tpot / devices, (f"step {step * 1e3:.1f} ms, TPOT {tpot * 1e3:.1f} ms, "
                                    f"{per_step:.2f} tokens per step")


def _predict_llm_prefill(run: LLMPrefillRun, file: str) -> tuple[float, str]:
    """Prompt tokens over one iteration holding tokens_per_device x devices of them."""
    devices = run.tp * run.dp
    tokens = run.tokens_per_device * devices
    prompts = tokens / run.prompt_tokens
    rm = run.replica_model(file, tokens, 1, "prefill")
    pairs = prompts * run.prompt_tokens * (run.prompt_tokens + 1) / 2
    step = float(rm.iteration_s(tokens, 0.0, pairs, prompts))
    return tokens / step / devices, f"iteration {step:.2f} s for {prompts:.0f} prompts"


_PREDICT = {"recsys_offline": _predict_offline, "recsys_server": _predict_server,
            "training": _predict_training, "llm_offline": _predict_llm_offline,
            "llm_server": _predict_llm_server, "llm_decode": _predict_llm_decode,
            "llm_prefill": _predict_llm_prefill}

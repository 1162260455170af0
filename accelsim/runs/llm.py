"""Shared by the LLM serving run kinds: the replica as published (device, model, engine
settings: :class:`accelsim.llm.job.Replica`, the one schema of them), the request stream of
a run under load, and a wide replica's one iteration at a fixed batch."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from accelsim.llm.job import Replica
from accelsim.runs.base import Loader, RunBase
from accelsim.traffic import Dist


class LLMRun(RunBase):
    replica: Replica
    """The published replica: device, model, count, tensor and data parallelism, number
    formats and the engine's scheduler limits."""


class LLMLoadRun(LLMRun):
    """Replicas serving a published load (:mod:`accelsim.llm`)."""

    input_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | Dist = Field(
        union_mode="left_to_right")
    """Prompt tokens: one length for every request, or a distribution (dataset histogram)."""
    output_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | Dist = Field(
        union_mode="left_to_right")
    """Output tokens: one length, or a distribution."""
    requests: int = Field(ge=10, le=10_000_000)
    """Requests in the run (MLPerf Offline: the log's samples_per_query, up to ~1.1 M)."""
    limits: Literal["given", "trtllm-bench"] = "given"
    """The replica's max_seqs and max_batched_tokens: as given, or as ``trtllm-bench
    throughput`` sets them when its command line gives none (from the model, the device's
    memory, tp and the run's lengths, :func:`accelsim.llm.trtllm_bench.engine_setting`), with
    its max_seq_len the longest prompt + output."""

    def engine(self, file: str) -> Replica:
        """The replica with the run's scheduler limits (:attr:`limits`)."""
        if self.limits == "given":
            return self.replica
        if self.replica.pp > 1:
            from accelsim.errors import AccelsimError

            raise AccelsimError.single(file, "limits", "limits 'trtllm-bench' sizes a replica "
                                       "without pipeline stages (pp 1); expected limits "
                                       f"'given' with pp {self.replica.pp}")
        from accelsim import refs
        from accelsim.devices import load_device
        from accelsim.llm import trtllm_bench
        from accelsim.transformer.model import load_model
        from accelsim.transformer.params import model_params

        r = self.replica
        spec = load_device(refs.normalize(r.device, file), where=file,
                           field="replica.device").spec
        model = load_model(refs.normalize(r.model, file), where=file, field="replica.model")
        isl, max_isl = _length_stats(self.input_tokens)
        osl, max_osl = _length_stats(self.output_tokens)
        bs, tokens = trtllm_bench.engine_setting(
            model_params(model), model.layers, model.n_kv_heads,
            model.head_dim or model.hidden // model.heads,
            1.0 if r.weights == "fp8" else 2.0, 1.0 if r.kv_cache == "fp8" else 2.0,
            spec.memory_bytes, r.tp, isl, osl, max_isl)
        return r.model_copy(update={"max_seqs": bs, "max_batched_tokens": tokens,
                                    "max_seq_len": max_isl + max_osl})

    def job(self, file: str, rate_qps: float, slo: dict[str, float] | None = None,
            replications: int = 1) -> Any:
        """The run as an :class:`accelsim.llm.job.LLMJob` at ``rate_qps``."""
        from accelsim.llm.job import LLMJob

        def dist(x: Any) -> Any:
            return {"dist": "fixed", "value": x} if isinstance(x, int) else x.model_dump()

        r = self.engine(file)
        return LLMJob.model_validate({
            "replicas": [r.resolved(file).model_dump()],
            "arrivals": {"rate_qps": rate_qps},
            "prompt_tokens": dist(self.input_tokens), "output_tokens": dist(self.output_tokens),
            "slo": slo,
            "sim": {"requests": self.requests, "warmup": 0, "seed": 1,
                    "replications": replications}})


class LLMStepRun(LLMRun):
    """One iteration of a wide replica measured alone (the papers' decode and prefill
    tables: fixed batch per device, fixed lengths, no queueing)."""

    def replica_model(self, file: str, max_tokens: int, max_seqs: int, role: str) -> Any:
        """The replica's cost model with the iteration's limits (a fixed batch's step does
        not depend on the KV capacity: memory only has to fit)."""
        from accelsim.llm.perf import replica_model

        r = self.replica.resolved(file).model_copy(update={
            "max_batched_tokens": max_tokens, "max_seqs": max_seqs,
            "memory_utilization": 0.95, "role": role})
        return replica_model(r, file, "replica")


def _length_stats(x: Any) -> tuple[float, int]:
    """A run's length as trtllm-bench's dataset metadata sees it: (mean, longest)."""
    from accelsim.traffic import Empirical, Fixed, TruncNormal, dist_mean

    if isinstance(x, int):
        return float(x), x
    if isinstance(x, Fixed):
        return float(x.value), int(x.value)
    if isinstance(x, Empirical):
        return dist_mean(x), int(max(x.values))
    if isinstance(x, TruncNormal):
        return dist_mean(x), int(x.max)
    raise ValueError(f"limits trtllm-bench needs a bounded length, not {x.dist}")


def llm_files(run: LLMRun) -> list[tuple[str, str, Loader]]:
    from accelsim.devices import load_device

    files = [("replica.model", run.replica.model, _model_loader(run)),
             ("replica.device", run.replica.device, load_device)]
    if run.replica.stack:
        files.append(("replica.stack", run.replica.stack, _stack_loader(run)))
    return files


def _stack_loader(run: LLMRun) -> Loader:
    """The replica's serving stack, loaded and checked against its device's vendor
    (:func:`accelsim.llm.perf.serving_stack`)."""

    def load(ref: str, relative_to: str, where: str, field: str) -> Any:
        from accelsim import refs
        from accelsim.devices import load_device
        from accelsim.errors import AccelsimError
        from accelsim.llm.perf import serving_stack

        try:
            spec = load_device(run.replica.device, relative_to=relative_to, where=where,
                               field=field.removesuffix(".stack") + ".device").spec
        except AccelsimError:
            return None  # the device's own loader says what is wrong with it
        return serving_stack(spec.vendor, refs.normalize(ref, relative_to), where, field,
                             spec.name)

    return load


def _model_loader(run: LLMRun) -> Loader:
    """The replica's model, loaded and checked against the replica's engine settings
    (:func:`accelsim.llm.checks.engine_problems`)."""
    from accelsim.errors import AccelsimError
    from accelsim.llm.load import engine_problems
    from accelsim.transformer.model import load_model

    def load(ref: str, relative_to: str, where: str, field: str) -> Any:
        model = load_model(ref, relative_to=relative_to, where=where, field=field)
        probs = engine_problems(run.replica, model, where, field.removesuffix(".model"),
                                run.replica.tp, run.replica.dp, run.replica.pp,
                                run.replica.role)
        if probs:
            raise AccelsimError(probs)
        return model

    return load

"""Shared by the LLM serving run kinds: the replica as published (device, model, engine
settings: :class:`accelsim.llm.job.Replica`, the one schema of them), the request stream of
a run under load, and a wide replica's one iteration at a fixed batch."""

from __future__ import annotations

from typing import Annotated, Any

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

    def job(self, file: str, rate_qps: float, slo: dict[str, float] | None = None,
            replications: int = 1) -> Any:
        """The run as an :class:`accelsim.llm.job.LLMJob` at ``rate_qps``."""
        from accelsim import refs
        from accelsim.llm.job import LLMJob

        def dist(x: Any) -> Any:
            return {"dist": "fixed", "value": x} if isinstance(x, int) else x.model_dump()

        r = self.replica
        return LLMJob.model_validate({
            "replicas": [{**r.model_dump(), "device": refs.normalize(r.device, file),
                          "model": refs.normalize(r.model, file)}],
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
        from accelsim import refs
        from accelsim.llm.perf import replica_model

        r = self.replica.model_copy(update={
            "device": refs.normalize(self.replica.device, file),
            "model": refs.normalize(self.replica.model, file),
            "max_batched_tokens": max_tokens, "max_seqs": max_seqs,
            "memory_utilization": 0.95, "role": role})
        return replica_model(r, file, "replica")


def llm_files(run: LLMRun) -> list[tuple[str, str, Loader]]:
    from accelsim.devices import load_device

    return [("replica.model", run.replica.model, _model_loader(run)),
            ("replica.device", run.replica.device, load_device)]


def _model_loader(run: LLMRun) -> Loader:
    """The replica's model, loaded and checked against the replica's engine settings
    (:func:`accelsim.llm.load.engine_problems`)."""
    from accelsim.errors import AccelsimError
    from accelsim.llm.load import engine_problems
    from accelsim.transformer.model import load_model

    def load(ref: str, relative_to: str, where: str, field: str) -> Any:
        model = load_model(ref, relative_to=relative_to, where=where, field=field)
        probs = engine_problems(run.replica, model, where, field.removesuffix(".model"),
                                run.replica.tp, run.replica.dp)
        if probs:
            raise AccelsimError(probs)
        return model

    return load

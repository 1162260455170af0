"""The ``llm_serving`` fleet block (:class:`LLMServingSpec`) and what it names: the LLM job
of one replica size on a device, the block's mean lengths, its model (read once per
version of its file) and the replica sizes a device can run (:func:`replica_sizes`)."""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, model_validator

from accelsim import refs
from accelsim.config import Strict
from accelsim.devices import DeviceProfile
from accelsim.errors import AccelsimError
from accelsim.llm.job import Engine, Slo
from accelsim.traffic import Dist
from accelsim.workloads.base import CapacitySpec


class LLMSim(Strict):
    requests: int = Field(default=3000, ge=100, le=10_000_000)
    """Requests per simulated run (one replica)."""
    warmup: int = Field(default=300, ge=0, le=10_000_000)
    """Leading requests left out of the statistics."""
    replications: int = Field(default=2, ge=1, le=50)
    """Seeded runs behind the capacity's confidence interval."""
    seed: int = Field(default=1, ge=0, le=2**63 - 1)
    """Seed of the first replication."""

    @model_validator(mode="after")
    def _w(self) -> LLMSim:
        if self.warmup >= self.requests:
            raise ValueError(f"warmup ({self.warmup}) must be below requests ({self.requests})")
        return self


class LLMServingSpec(CapacitySpec):
    """Serve ``peak_rps`` chat requests of ``model`` within the TTFT/TPOT SLO."""

    kind: Literal["llm_serving"] = "llm_serving"
    """Workload kind: llm_serving (alias chatbot)."""
    model: str
    """Decoder-only model: catalog name (configs/models) or path (relative to the scenario)."""
    peak_rps: float = Field(gt=0, le=1e9)
    """Requests/s at the daily peak that must meet the SLO."""
    prompt_tokens: Dist
    """Prompt length distribution, tokens (history included)."""
    output_tokens: Dist
    """Output length distribution, tokens."""
    slo: Slo
    """TTFT and TPOT targets and the share of requests that must meet both."""
    tp: int | None = Field(default=None, ge=1, le=1024)
    """Tensor-parallel devices per attention group (:attr:`accelsim.llm.job.Replica.tp`);
    default: searched (see module)."""
    dp: int = Field(default=1, ge=1, le=100_000)
    """Attention data-parallel groups per replica (wide expert parallelism for MoE models,
    :attr:`accelsim.llm.job.Replica.dp`): a replica spans tp x dp devices."""
    engine: Engine = Engine()
    """The serving engine's settings of each replica (number formats, scheduler limits,
    expert placement, multi-token prediction): :class:`accelsim.llm.job.Engine`."""
    sim: LLMSim = LLMSim()
    """Simulation behind each device's capacity at the SLO."""


def replica_job(spec: LLMServingSpec, device: str, tp: int) -> Any:
    """The LLM job of one replica of ``tp`` devices on ``device`` (rate 1/s: a search sets it)."""
    from accelsim.llm.job import LLMJob

    return LLMJob.model_validate({
        "replicas": [{**spec.engine.model_dump(), "device": device, "model": spec.model,
                      "tp": tp, "dp": spec.dp}],
        "arrivals": {"rate_qps": 1.0},
        "prompt_tokens": spec.prompt_tokens.model_dump(),
        "output_tokens": spec.output_tokens.model_dump(),
        "slo": spec.slo.model_dump(),
        "sim": {"requests": spec.sim.requests, "warmup": spec.sim.warmup,
                "seed": spec.sim.seed, "replications": spec.sim.replications},
    })


def mean_lengths(spec: LLMServingSpec) -> tuple[float, float]:
    """The block's mean prompt and output tokens."""
    from accelsim.traffic import dist_mean

    return float(dist_mean(spec.prompt_tokens)), float(dist_mean(spec.output_tokens))


def block_model(ref: str, file: str) -> Any:
    """The block's model, read once per version of its file (sweeps and draws build every
    replica size of every point's device on it)."""
    path = refs.find(ref, "models", family="training", what="training model")
    st = path.stat()
    return _model_at(str(path), file, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=32)
def _model_at(path: str, file: str, mtime_ns: int, size: int) -> Any:
    from accelsim.transformer.model import load_model

    return load_model(path, where=file, field="workloads.llm_serving.model")


def replica_sizes(spec: LLMServingSpec, device: DeviceProfile, file: str,
                  skip: Collection[int] = ()) -> list[tuple[int, Any]]:
    """Replica sizes to try: the block's tp, or every power of two within the scale-up
    domain whose memory leaves a KV cache (their cost models); ``skip``: sizes not to
    try, except the smallest that fits (the full search always tries it)."""
    from accelsim.llm.perf import replica_model

    job = replica_job(spec, device.name, 1)
    model = block_model(spec.model, file)
    tps = [spec.tp] if spec.tp else [t for t in (1, 2, 4, 8, 16, 32, 64)
                                     if t <= device.spec.scaleup_domain]
    out: list[tuple[int, Any]] = []
    last = None
    for tp in tps:
        if out and tp in skip:
            continue
        r = job.replicas[0].model_copy(update={"tp": tp})
        try:
            out.append((tp, replica_model(r, file, "workloads.llm_serving",
                                          spec=device.spec, model=model)))
        except AccelsimError as e:
            last = e
    if not out:
        assert last is not None
        raise last
    return out

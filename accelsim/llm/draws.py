"""An LLM job's random inputs, drawn once from one seeded generator: unit-rate Poisson
points mapped through the arrival profile (so a capacity search rescales one sample path:
common random numbers), prompt and output lengths; and the checks that they fit this
machine's memory and the replicas' KV caches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelsim import machine, units
from accelsim.errors import AccelsimError
from accelsim.llm.job import LLMJob
from accelsim.llm.perf import ReplicaModel
from accelsim.traffic import nhpp_times, read_trace, sample, shape_function


@dataclass(frozen=True)
class Draws:
    """A job's random inputs: unit-rate arrival points (or trace times), lengths."""

    unit_points: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    trace_s: np.ndarray | None = None


# Peak memory of one run per request: draws, routing, traces and the summary's temporaries
# (RSS measured at 1 M and 3 M requests: ~125 B), with headroom.
BYTES_PER_REQUEST = 200


def check_memory(job: LLMJob, file: str = "job") -> None:
    """Refuse, before drawing anything, a run that would need more than half of this
    machine's memory (``sim.requests`` x :data:`BYTES_PER_REQUEST`)."""
    need = job.sim.requests * BYTES_PER_REQUEST
    have = machine.physical_memory()
    if need > have / 2:
        raise AccelsimError.single(
            file, "sim.requests", f"{job.sim.requests:,} requests need ~{need / units.GB:,.1f} "
            f"GB; this machine has {have / units.GB:,.1f} GB; expected at most "
            f"{int(have / 2 / BYTES_PER_REQUEST):,}")


def draw(job: LLMJob, seed: int, file: str = "job") -> Draws:
    check_memory(job, file)
    rng = np.random.default_rng(seed)
    n = job.sim.requests
    trace = None
    if job.arrivals.process == "trace":
        trace, _ = read_trace(job.arrivals.trace or "", file)
        n = min(n, len(trace))
        trace = trace[:n]
    pts = np.cumsum(rng.exponential(1.0, n))
    prompt = sample(job.prompt_tokens, rng, n, integer=True).astype(np.int64)
    output = sample(job.output_tokens, rng, n, integer=True).astype(np.int64)
    return Draws(pts, prompt, output, trace)


def arrival_times(job: LLMJob, d: Draws, rate: float, file: str = "job") -> np.ndarray:
    """Arrival times at ``rate`` requests/s (a trace is rescaled to it)."""
    if d.trace_s is not None:
        span = d.trace_s[-1] - d.trace_s[0]
        native = (len(d.trace_s) - 1) / span if span > 0 else rate
        return (d.trace_s - d.trace_s[0]) * native / rate
    horizon = d.unit_points[-1] / rate
    t, m = shape_function(job.arrivals, horizon, np.random.default_rng(job.sim.seed + 7), file)
    return nhpp_times(d.unit_points, rate, t, m, file)


def check_fits(job: LLMJob, rms: list[ReplicaModel], d: Draws, file: str) -> None:
    longest = int((d.prompt + d.output).max())
    for i, rm in enumerate(rms):
        if longest > rm.kv_tokens:
            raise AccelsimError.single(
                file, "prompt_tokens", f"a request of {longest:,} tokens (prompt + output) "
                f"exceeds replicas[{i}]'s KV cache of {rm.kv_tokens:,} tokens; expected "
                "shorter requests or more memory per replica")
        if rm.max_batched_tokens > rm.kv_tokens:
            raise AccelsimError.single(
                file, f"replicas[{i}].max_batched_tokens", f"{rm.max_batched_tokens:,} "
                f"exceeds the KV cache ({rm.kv_tokens:,} tokens); expected a smaller budget")

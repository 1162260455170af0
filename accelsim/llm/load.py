"""Loading an LLM serving job: validate it, resolve its files from the job's folder, and
check what needs more than the file (devices and models exist, every replica fits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim import refs
from accelsim.config import read_yaml, validate
from accelsim.errors import AccelsimError, Problem
from accelsim.llm.checks import engine_problems
from accelsim.llm.job import LLMJob


def job_from(data: dict[str, Any], path: str | Path, where: str | None = None,
             check: bool = True) -> LLMJob:
    """Validate a job mapping read from ``path``: device, model and trace paths resolve from
    its folder; ``check`` also builds every replica's cost model."""
    where = where or str(path)
    job = validate(LLMJob, data, where)
    reps = [r.resolved(path) for r in job.replicas]
    arr = job.arrivals
    if arr.trace and not Path(arr.trace).is_absolute():
        beside = Path(path).resolve().parent / arr.trace
        if beside.exists():
            arr = arr.model_copy(update={"trace": str(beside)})
    job = job.model_copy(update={"replicas": reps, "arrivals": arr})
    if check:
        check_job(job, where)
    return job


def check_job(job: LLMJob, file: str = "job") -> None:
    """Devices and models exist, each replica's settings suit its model, prefill and decode
    replicas run one model, every replica fits in memory, and the run's requests (drawn as
    the run draws them) fit this machine's memory and every replica's KV cache."""
    from accelsim.llm.perf import replica_model
    from accelsim.transformer.model import load_model

    probs: list[Problem] = []
    for i, r in enumerate(job.replicas):
        try:
            model = load_model(r.model, where=file, field=f"replicas[{i}].model")
        except AccelsimError as e:
            probs += e.problems
            continue
        probs += engine_problems(r, model, file, f"replicas[{i}]", r.tp, r.dp, r.pp, r.role)
    from accelsim.llm.sim import check_engine_size

    try:
        check_engine_size(job, job.sim.engine, file)
    except AccelsimError as e:
        probs += e.problems
    if job.disaggregated:
        first = job.replicas[0]
        for i, r in enumerate(job.replicas[1:], 1):
            if not _same_file(r.model, first.model):
                probs.append(Problem(file, f"replicas[{i}].model", f"'{r.model}' differs from "
                                     f"replicas[0]'s '{first.model}': a decode replica "
                                     "continues the prefill replica's KV cache; expected one "
                                     "model for every prefill and decode replica"))
    if job.arrivals.process == "trace":
        probs += _trace_problems(job, file)
    if probs:
        raise AccelsimError(probs)
    rms = [replica_model(r, file, f"replicas[{i}]") for i, r in enumerate(job.replicas)]
    from accelsim.llm.sim import check_fits, draw

    check_fits(job, rms, draw(job, job.sim.seed, file), file)  # memory, every request's KV


def _trace_problems(job: LLMJob, file: str) -> list[Problem]:
    """The trace reads, and holds more arrivals than the warm-up leaves out (a run replays
    it once: its requests are the trace's first ``sim.requests``)."""
    from accelsim.traffic import read_trace

    try:
        t, _ = read_trace(job.arrivals.trace or "", file)
    except AccelsimError as e:
        return e.problems
    if len(t) <= job.sim.warmup:
        return [Problem(file, "sim.warmup", f"the trace {job.arrivals.trace} has {len(t):,} "
                        f"arrivals, none left after the warm-up of {job.sim.warmup:,}; "
                        "expected a longer trace or a smaller warmup")]
    return []


def _same_file(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return refs.find(a, "models") == refs.find(b, "models")
    except AccelsimError:
        return False


def load_llm_job(path: str | Path) -> LLMJob:
    """Read, validate and check a job."""
    return job_from(read_yaml(path), path)

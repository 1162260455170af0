"""Loading an LLM serving job: validate it, resolve its files from the job's folder, and
check what needs more than the file (devices and models exist, every replica fits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.config import read_yaml, validate
from accelsim.llm.job import LLMJob
from accelsim.refs import normalize


def job_from(data: dict[str, Any], path: str | Path, where: str | None = None,
             check: bool = True) -> LLMJob:
    """Validate a job mapping read from ``path``: device, model and trace paths resolve from
    its folder; ``check`` also builds every replica's cost model."""
    where = where or str(path)
    job = validate(LLMJob, data, where)
    reps = [r.model_copy(update={"device": normalize(r.device, path),
                                 "model": normalize(r.model, path)}) for r in job.replicas]
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
    """Devices and models exist and every replica fits in memory."""
    from accelsim.llm.perf import replica_model

    for i, r in enumerate(job.replicas):
        replica_model(r, file, f"replicas[{i}]")


def load_llm_job(path: str | Path) -> LLMJob:
    """Read, validate and check a job."""
    return job_from(read_yaml(path), path)

"""Loading a recommendation-serving job: validate it, resolve its files from the job's folder,
and check what needs more than the file (devices, model and trace exist and fit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.config import read_yaml, validate
from accelsim.refs import normalize
from accelsim.serving.job import ServeJob


def job_from(data: dict[str, Any], path: str | Path, where: str | None = None,
             check: bool = True) -> ServeJob:
    """Validate a job mapping read from ``path``: device, model and trace paths resolve from
    its folder; ``check`` also builds its service-time tables."""
    where = where or str(path)
    job = validate(ServeJob, data, where)
    svc = job.service
    upd: dict[str, Any] = {}
    if svc.device:
        upd["device"] = normalize(svc.device, path)
    if svc.model:
        upd["model"] = normalize(svc.model, path)
    if svc.pool:
        upd["pool"] = [m.model_copy(update={"device": normalize(m.device, path)})
                       for m in svc.pool]
    arr = job.arrivals
    if arr.trace and not Path(arr.trace).is_absolute():
        beside = Path(path).resolve().parent / arr.trace  # relative to the job file
        if beside.exists():
            arr = arr.model_copy(update={"trace": str(beside)})
    job = job.model_copy(update={"service": svc.model_copy(update=upd), "arrivals": arr})
    if check:
        from accelsim.serving.service import build_service

        build_service(job, where)  # devices and model exist
        if job.arrivals.process == "trace":
            from accelsim.traffic import read_trace

            read_trace(job.arrivals.trace or "", where)  # the trace is readable
    return job


def load_serve_job(path: str | Path) -> ServeJob:
    """Read, validate and check a job."""
    return job_from(read_yaml(path), path)

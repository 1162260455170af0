"""``serve-job``: recommendation serving (:mod:`accelsim.serving`), run by ``serve``; a sweep
point is simulated at full fidelity (and its capacity at the SLO searched when a metric asks
for it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.kinds.base import Kind, Sweepable, register, short_run_names


def from_data(data: dict[str, Any], path: str | Path, where: str, check: bool = True) -> Any:
    from accelsim.serving.load import job_from

    return job_from(data, path, where, check)


def devices(job: Any) -> list[str]:
    svc = job.service
    return [m.device for m in svc.pool] if svc.pool else ([svc.device] if svc.device else [])


def input_files(job: Any) -> list[Path]:
    from accelsim import refs

    files = [refs.find(r, "devices") for r in devices(job)]
    if job.service.model:
        files.append(refs.find(job.service.model, "models", family="recsys"))
    if job.arrivals.trace:
        files.append(Path(job.arrivals.trace))
    return files


def evaluate(job: Any, profiles: dict[str, Any], metrics: list[str], where: str, state: Any,
             reasons: list[str]) -> dict[str, Any]:
    from accelsim.serving.service import build_service
    from accelsim.serving.sim import capacity, simulate

    sm = build_service(job, where, {ref: p.spec for ref, p in profiles.items()})
    out = dict(simulate(job, service=sm).metrics)
    if not out["stable"]:
        reasons.append(f"unstable: {out.get('message', 'waits keep growing')}")
    if any("max_qps_at_slo" in m or "ci95" in m for m in metrics):
        out.update(capacity(job, service=sm))
    return {k: v for k, v in out.items() if isinstance(v, (int, float, bool))}


def capacity_keys() -> tuple[str, ...]:
    from accelsim.serving.sim import CAPACITY_KEYS

    return CAPACITY_KEYS


register(Kind("serve-job", "accelsim.serving.job:ServeJob", "service", "serving job",
              from_data, command="serve", input_files=input_files, devices=devices,
              sweep=Sweepable(evaluate, short_run_names(from_data, evaluate, capacity_keys))))

"""``train-job``: one training job on one layout (:mod:`accelsim.training`), run by ``train``;
a sweep point is estimated at full fidelity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.kinds.base import Kind, Sweepable, register


def from_data(data: dict[str, Any], path: str | Path, where: str, check: bool = True) -> Any:
    from accelsim.training.job import job_from

    return job_from(data, path, where, check)


def input_files(job: Any) -> list[Path]:
    """The device profile and the stack the job runs (the one it names, else its vendor's
    default), with the files that stack derives from."""
    from accelsim import refs, stacks

    return [refs.find(job.device, "devices"), *stacks.job_files(job.stack, job.device)]


def evaluate(job: Any, profiles: dict[str, Any], metrics: list[str], where: str, state: Any,
             reasons: list[str]) -> dict[str, Any]:
    """Every number of the estimate, and the step's breakdown as ``breakdown.<part>``."""
    from accelsim.training.perf import estimate

    r = estimate(job, profiles[job.device].spec, file=where).to_dict()
    out = {k: v for k, v in r.items() if isinstance(v, (int, float, bool))}
    out.update({f"breakdown.{k}": v for k, v in r["breakdown"].items()})
    return out


def metric_names(data: dict[str, Any], path: str, profiles: dict[str, Any],
                 metrics: list[str], where: str) -> set[str]:
    return set(evaluate(from_data(data, path, where), profiles, metrics, where, None, []))


register(Kind("train-job", "accelsim.training.job:TrainJob", "global_batch", "training job",
              from_data, command="train", input_files=input_files,
              devices=lambda job: [job.device], sweep=Sweepable(evaluate, metric_names)))

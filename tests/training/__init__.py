"""Helpers of the training tests: jobs name their device, the physics takes it resolved."""

from __future__ import annotations

from typing import Any

from accelsim.devices import DeviceSpec, load_device
from accelsim.training import TrainJob, TrainResult
from accelsim.training import estimate as _estimate
from accelsim.training.perf import job_row as _job_row


def spec_of(job: TrainJob) -> DeviceSpec:
    return load_device(job.device).spec


def estimate(job: TrainJob, engine: str = "analytic", spec: Any = None) -> TrainResult:
    """:func:`accelsim.training.estimate` on the job's own device unless ``spec`` is given."""
    return _estimate(job, spec if spec is not None else spec_of(job), engine=engine)


def job_row(job: TrainJob) -> dict[str, Any]:
    return _job_row(job, spec_of(job))

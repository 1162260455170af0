"""``recsys_server`` -- MLPerf Inference Server: the highest Poisson rate of samples whose p99
latency meets the bound, simulated on ``devices`` replicas behind one queue with dynamic
batching (:func:`accelsim.serving.sim.capacity`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from accelsim.runs.base import Prediction, RunKind, register
from accelsim.runs.recsys import RecsysRun, recsys_files


class RecsysServerRun(RecsysRun):
    kind: Literal["recsys_server"]
    """MLPerf Server: Poisson arrivals, throughput at a p99 latency bound."""
    p99_ms: float = Field(gt=0, le=3_600_000)
    """The latency bound the published rate met, at the 99th percentile, ms."""
    max_batch_items: int = Field(ge=1, le=10_000_000)
    """Largest batch a device forms (the submission's batch size), items."""
    timeout_ms: float = Field(default=1.0, ge=0, le=60_000)
    """Longest a batch waits to fill, ms."""
    requests: int = Field(default=40_000, ge=1000, le=10_000_000)
    """Simulated samples per replication."""
    replications: int = Field(default=2, ge=1, le=20)
    """Seeded replications behind the capacity."""
    seed: int = Field(default=1, ge=0)
    """Seed of the first replication."""


def predict(run: RecsysServerRun, file: str) -> Prediction:
    from accelsim import refs
    from accelsim.serving.job import shared_queue_job
    from accelsim.serving.service import build_service
    from accelsim.serving.sim import capacity

    job = shared_queue_job(
        refs.normalize(run.device, file), refs.normalize(run.model, file), run.devices,
        run.sample_items.model_dump(),
        {"max_batch_items": run.max_batch_items, "timeout_ms": run.timeout_ms}, run.p99_ms,
        {"requests": run.requests, "warmup": run.requests // 10, "seed": run.seed,
         "replications": run.replications})
    c = capacity(job, service=build_service(job, file))
    return Prediction(float(c["max_qps_at_slo"]),
                      f"saturated {c['capacity_qps']:,.0f} samples/s; at p99 <= "
                      f"{run.p99_ms:g} ms [{c['ci95_low_qps']:,.0f}, {c['ci95_high_qps']:,.0f}]")


register(RunKind("recsys_server", RecsysServerRun, predict, recsys_files))

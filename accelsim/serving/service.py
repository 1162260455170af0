"""The service a recommendation-serving job's replicas give: per replica, the latency and the
pipelined period of a batch of every size (:class:`ServiceModel`, from the recommendation
model's cost on each device, :mod:`accelsim.serving.recsys`), and the memory a run needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelsim import machine, units
from accelsim.devices import DeviceSpec, load_device, require_spec
from accelsim.errors import AccelsimError
from accelsim.serving import recsys
from accelsim.serving.job import PoolMember, ServeJob
from accelsim.serving.rec_model import RecModel, load_model
from accelsim.traffic import dist_mean


@dataclass(frozen=True)
class ServiceModel:
    """Per-replica service: a batch's latency is ``draw * scale[r] + table[r, items]``; the
    replica takes its next batch after ``draw * scale[r] + period[r, items]`` (consecutive
    batches pipeline their stages, :func:`accelsim.serving.recsys.offline_period`; without a
    period table the replica serves one batch at a time). Names for reports."""

    table_s: np.ndarray
    scale: np.ndarray
    draw_dist: Any | None  # seconds, synthetic mode
    replica_devices: list[str]
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    job: ServeJob | None = None
    specs: dict[str, DeviceSpec] | None = None
    file: str = "job"  # the job's file, named by errors found while simulating it
    period_s: np.ndarray | None = None  # [replica, items]; None: period = latency

    @property
    def busy_s(self) -> np.ndarray:
        """The table that occupies a replica: the pipelined period, or the latency."""
        return self.table_s if self.period_s is None else self.period_s

    def covering(self, max_items: float) -> ServiceModel:
        """This model, or one rebuilt with a table wide enough for ``max_items`` (a batch
        is never charged for fewer items than it holds)."""
        if max_items < self.table_s.shape[1] or self.job is None:
            return self
        return build_service(self.job, self.file, specs=self.specs, width=int(max_items) + 2)


def _table_width(job: ServeJob) -> int:
    """Items covered by the service table: the largest possible batch or query."""
    d = job.queries.size
    cap = getattr(d, "max", None) or getattr(d, "value", None)
    if cap is None and hasattr(d, "values"):
        cap = max(d.values)
    if cap is None:  # unbounded (lognormal, exponential): widened later if draws exceed it
        cap = dist_mean(d) * 50
    return int(max(job.batching.max_batch_items, cap)) + 2


def build_service(job: ServeJob, file: str = "job",
                  specs: dict[str, DeviceSpec] | None = None,
                  width: int | None = None, model: RecModel | None = None
                  ) -> ServiceModel:
    """Service-time tables per replica. ``specs`` maps the job's device references to
    resolved devices (specs or profiles; references not in it are resolved here, at the
    job's boundary); ``model`` is the job's resolved model; ``width`` overrides the number
    of items the table covers."""
    specs = {k: require_spec(v, file) for k, v in (specs or {}).items()}
    svc = job.service
    width = max(width or 0, _table_width(job))
    need = job.n_replicas * width * 8.0  # the table: one float per replica and batch size
    if need > _physical_memory() / 4:
        raise AccelsimError.single(
            file, "replicas", f"{job.n_replicas:,} replicas x {width:,} batch sizes need a "
            f"{need / units.GB:,.1f} GB service-time table; expected fewer replicas or a "
            "smaller batching.max_batch_items / query size")
    k = np.arange(width, dtype=float)
    if svc.synthetic is not None:
        c = job.n_replicas
        per_item = svc.synthetic.per_item_ms * units.MS * np.maximum(k - 1, 0)
        return ServiceModel(np.tile(per_item, (c, 1)), np.ones(c), svc.synthetic.to_dist(),
                            ["synthetic"] * c, job=job, specs=specs, file=file)
    model = model or load_model(svc.model or "", where=file, field="service.model")
    members = svc.pool or [PoolMember(device=svc.device or "", count=job.replicas)]
    rows, periods, names, breakdown = [], [], [], {}
    for mem in members:
        spec = specs.get(mem.device) or load_device(
            mem.device, where=file, field="service.device").spec
        parts = recsys.service_time(model, spec, np.maximum(k, 1), svc.placement,
                                    where=f"{file}: service")
        t = np.asarray(parts["total_s"], dtype=float).copy()
        t[0] = 0.0
        per = np.minimum(np.asarray(recsys.offline_period(parts), dtype=float), t)
        per[0] = 0.0
        rows += [t] * mem.count
        periods += [per] * mem.count
        names += [spec.name] * mem.count
        one = recsys.service_time(model, spec, [job.batching.max_batch_items], svc.placement)
        breakdown[spec.name] = {k2: float(np.asarray(v).ravel()[0]) for k2, v in one.items()
                                if k2.endswith("_s")}
        breakdown[spec.name]["period_s"] = float(np.asarray(recsys.offline_period(one)).ravel()[0])
        breakdown[spec.name]["placement"] = one["placement"]
    table = np.vstack(rows)
    return ServiceModel(table, np.ones(len(rows)), None, names, breakdown, job=job, specs=specs,
                        file=file, period_s=np.vstack(periods))


# Peak memory of one run per request: inputs, trace and summary temporaries (measured with
# tracemalloc at 2e5 and 1e6 requests: 149-150 B), and what the per-request trace table adds.
BYTES_PER_REQUEST = 160
TRACE_BYTES_PER_REQUEST = 100


def check_memory(job: ServeJob, keep_trace: bool = False, where: str = "job") -> None:
    """Refuse, before allocating, a run that would need more than half of this machine's
    memory (``sim.requests`` x :data:`BYTES_PER_REQUEST`)."""
    need = job.sim.requests * (BYTES_PER_REQUEST + (TRACE_BYTES_PER_REQUEST if keep_trace
                                                    else 0))
    have = _physical_memory()
    if need > have / 2:
        fit = int(have / 2 / (need / job.sim.requests))
        raise AccelsimError.single(where, "sim.requests", f"{job.sim.requests:,} requests need "
                                   f"~{need / units.GB:,.1f} GB; this machine has "
                                   f"{have / units.GB:,.1f} GB; expected at most {fit:,}")


def _physical_memory() -> float:
    return machine.physical_memory()


def physical_memory() -> float:
    """Bytes of RAM of this machine (8 GB where the platform does not say)."""
    return _physical_memory()

"""A serving job: arrivals, query sizes, service (synthetic or device x model), replicas,
routing, batching, SLO and simulation settings. Field names are the documented ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from accelsim import units
from accelsim.config import Strict, read_yaml, validate
from accelsim.serving.workload import (
    Arrivals,
    Dist,
    Empirical,
    Exponential,
    Fixed,
    LogNormal,
)

ROUTING = ("shared_queue", "round_robin", "jsq", "power_of_two")


class SyntheticService(Strict):
    """Service time of one batch given directly (milliseconds), plus ``per_item_ms`` for
    every item after the first."""

    dist: Literal["fixed", "deterministic", "exponential", "lognormal", "empirical"]
    mean_ms: float | None = Field(default=None, gt=0)
    value_ms: float | None = Field(default=None, gt=0)
    cv: float | None = Field(default=None, gt=0)
    values_ms: list[float] | None = None
    weights: list[float] | None = None
    per_item_ms: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _need(self) -> SyntheticService:
        need = {"fixed": "value_ms", "deterministic": "value_ms", "exponential": "mean_ms",
                "lognormal": "mean_ms", "empirical": "values_ms"}[self.dist]
        if getattr(self, need) is None:
            raise ValueError(f"dist {self.dist} needs {need}")
        if self.dist == "lognormal" and self.cv is None:
            raise ValueError("dist lognormal needs cv")
        return self

    def to_dist(self) -> Any:
        """The distribution in seconds."""
        ms = units.MS
        if self.dist in ("fixed", "deterministic"):
            return Fixed(dist="fixed", value=self.value_ms * ms)  # type: ignore[operator]
        if self.dist == "exponential":
            return Exponential(dist="exponential", mean=self.mean_ms * ms)  # type: ignore[operator]
        if self.dist == "lognormal":
            return LogNormal(dist="lognormal", mean=self.mean_ms * ms, cv=self.cv)  # type: ignore[arg-type,operator]
        return Empirical(dist="empirical", values=[v * ms for v in self.values_ms or []],
                         weights=self.weights)


class PoolMember(Strict):
    device: str
    count: int = Field(ge=1)


class Service(Strict):
    synthetic: SyntheticService | None = None
    device: str | None = None
    model: str | None = None
    pool: list[PoolMember] | None = None
    placement: Literal["auto", "device", "shard", "host"] = "auto"

    @model_validator(mode="after")
    def _one(self) -> Service:
        modes = [self.synthetic is not None, self.device is not None, self.pool is not None]
        if sum(modes) != 1:
            raise ValueError("give exactly one of: synthetic, device (with model), pool "
                             "(with model)")
        if (self.device or self.pool) and not self.model:
            raise ValueError("a device or pool service needs model (a zoo name or path)")
        refs = [m.device for m in self.pool or []]
        dup = sorted({r for r in refs if refs.count(r) > 1})
        if dup:
            raise ValueError(f"pool devices must be unique (give one count each); repeated: "
                             f"{', '.join(dup)}")
        return self


class Queries(Strict):
    size: Dist = Fixed(dist="fixed", value=1)


class Batching(Strict):
    max_batch_items: int = Field(default=1, ge=1)
    timeout_ms: float = Field(default=0.0, ge=0)


class Slo(Strict):
    p99_ms: float = Field(gt=0)


class SimSettings(Strict):
    requests: int = Field(default=200_000, ge=100)
    warmup: int = Field(default=10_000, ge=0)
    seed: int = Field(default=1, ge=0)
    engine: Literal["auto", "simpy", "fast"] = "auto"
    replications: int = Field(default=5, ge=1, le=100)

    @model_validator(mode="after")
    def _w(self) -> SimSettings:
        if self.warmup >= self.requests:
            raise ValueError(f"warmup ({self.warmup}) must be below requests ({self.requests})")
        return self


class ServeJob(Strict):
    arrivals: Arrivals
    queries: Queries = Queries()
    service: Service
    replicas: int = Field(default=1, ge=1)
    routing: Literal["shared_queue", "round_robin", "jsq", "power_of_two"] = "shared_queue"
    batching: Batching = Batching()
    slo: Slo | None = None
    deadline_ms: float | None = Field(default=None, gt=0)
    sim: SimSettings = SimSettings()

    @model_validator(mode="after")
    def _pool(self) -> ServeJob:
        if self.service.pool is not None and self.replicas != 1:
            total = sum(m.count for m in self.service.pool)
            if self.replicas != total:
                raise ValueError(f"replicas ({self.replicas}) must match the pool's total "
                                 f"count ({total}) or be omitted")
        return self

    @property
    def n_replicas(self) -> int:
        if self.service.pool is not None:
            return sum(m.count for m in self.service.pool)
        return self.replicas

    def check(self, file: str = "job") -> None:
        """Cross-file checks: devices and model exist, the trace is readable."""
        from accelsim.serving.sim import build_service

        build_service(self, file)


def load_serve_job(path: str | Path) -> ServeJob:
    from accelsim.refs import normalize

    data = read_yaml(path)
    job = validate(ServeJob, data, path)
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
    job.check(str(path))
    return job

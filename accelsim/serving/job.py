"""A serving job: arrivals, query sizes, service (synthetic or device x model), replicas,
routing, batching, SLO and simulation settings. Field names are the documented ones."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from accelsim import units
from accelsim.config import Strict, Weight
from accelsim.traffic import (
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
    """Distribution of one batch's service time: fixed, deterministic, exponential, lognormal
    or empirical."""
    mean_ms: float | None = Field(default=None, gt=0, le=3_600_000)
    """Mean service time (exponential, lognormal), ms."""
    value_ms: float | None = Field(default=None, gt=0, le=3_600_000)
    """Service time (fixed, deterministic), ms."""
    cv: float | None = Field(default=None, gt=0, le=100)
    """Coefficient of variation (lognormal)."""
    values_ms: list[Annotated[float, Field(gt=0, le=3_600_000)]] | None = None
    """Observed service times (empirical), ms."""
    weights: list[Weight] | None = None
    """Relative weights of values_ms (empirical); default equal."""
    per_item_ms: float = Field(default=0.0, ge=0, le=3_600_000)
    """Extra time for every item of a batch after the first, ms."""

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
    """Catalog device name or path to a device YAML."""
    count: int = Field(ge=1, le=100_000)
    """Replicas of this device in the pool."""


class Service(Strict):
    synthetic: SyntheticService | None = None
    """Service time given directly (no device model)."""
    device: str | None = None
    """Every replica runs on this device (catalog name or path)."""
    model: str | None = None
    """Recommendation model: catalog name or path to a model YAML."""
    pool: list[PoolMember] | None = None
    """Replicas on mixed devices: a list of {device, count}."""
    placement: Literal["auto", "device", "shard", "host"] = "auto"
    """Where embedding tables live: auto, device (HBM), shard (across the scale-up domain) or
    host."""

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
    """Items (candidates) per query: a distribution."""


class Batching(Strict):
    max_batch_items: int = Field(default=1, ge=1, le=1_000_000)
    """Most items a replica batches into one forward pass."""
    timeout_ms: float = Field(default=0.0, ge=0, le=60_000)
    """Longest a batch waits to fill before it runs, ms."""


class Slo(Strict):
    p99_ms: float = Field(gt=0, le=3_600_000)
    """99th-percentile latency target, ms."""


class SimSettings(Strict):
    requests: int = Field(default=200_000, ge=100, le=1_000_000_000)
    """Requests per simulated run (more: tighter percentiles; memory grows ~160 B each)."""
    warmup: int = Field(default=10_000, ge=0, le=1_000_000_000)
    """Leading requests left out of the statistics."""
    seed: int = Field(default=1, ge=0, le=2**63 - 1)
    """Seed of the run's random inputs (same seed, same result)."""
    engine: Literal["auto", "simpy", "fast"] = "auto"
    """auto (fast when it applies), simpy (reference) or fast (compiled FIFO recursion)."""
    replications: int = Field(default=5, ge=1, le=100)
    """Independent seeded runs behind a confidence interval."""

    @model_validator(mode="after")
    def _w(self) -> SimSettings:
        if self.warmup >= self.requests:
            raise ValueError(f"warmup ({self.warmup}) must be below requests ({self.requests})")
        return self


class ServeJob(Strict):
    arrivals: Arrivals
    """How requests arrive: Poisson (with daily profile, bursts) or a trace."""
    queries: Queries = Queries()
    """Query sizes."""
    service: Service
    """What serves a batch: a synthetic time, a device and model, or a pool."""
    replicas: int = Field(default=1, ge=1, le=100_000)
    """Serving replicas (one device each)."""
    routing: Literal["shared_queue", "round_robin", "jsq", "power_of_two"] = "shared_queue"
    """shared_queue, round_robin, jsq (join the shortest queue) or power_of_two choices."""
    batching: Batching = Batching()
    """Dynamic batching per replica."""
    slo: Slo | None = None
    """Latency target: needed for --capacity."""
    deadline_ms: float | None = Field(default=None, gt=0, le=3_600_000)
    """Requests still waiting this long are dropped, ms."""
    sim: SimSettings = SimSettings()
    """Simulation length, seed, engine and replications."""

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

def shared_queue_job(device: str, model: str, replicas: int, query_size: dict[str, Any],
                     batching: dict[str, Any], p99_ms: float, sim: dict[str, Any]
                     ) -> ServeJob:
    """``replicas`` devices serving ``model`` behind one shared queue at a unit Poisson rate,
    with a p99 target: what a capacity search at the SLO runs (the fleet workload's
    one-server job, MLPerf Server runs)."""
    return ServeJob.model_validate({
        "arrivals": {"process": "poisson", "rate_qps": 1.0},
        "queries": {"size": query_size},
        "service": {"device": device, "model": model},
        "replicas": replicas, "routing": "shared_queue", "batching": batching,
        "slo": {"p99_ms": p99_ms}, "sim": sim})

"""Recommendation serving as a fleet workload: queries/s per device at the p99 SLO.

Full fidelity: one server of ``server_chips`` replicas behind a shared queue, simulated,
and the highest arrival rate meeting the SLO found by :func:`accelsim.serving.sim.capacity`
(mean of seeded replications). Fast fidelity (sweeps): the saturated capacity of the
point's service-time table on the base run's own batch mix
(:class:`accelsim.serving.sim.SaturatedMix`, the formula the full run's stability bound
uses), times the base run's SLO-to-saturation ratio for that device. Energy follows the
mean load: utilisation = (QPS at SLO / saturated QPS) x mean/peak of the daily profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from accelsim import refs, units
from accelsim.config import Strict
from accelsim.devices import DeviceProfile
from accelsim.errors import AccelsimError, Problem
from accelsim.serving.job import Batching
from accelsim.traffic import Dist, Fixed
from accelsim.workloads.base import CapacitySpec, DeviceEval, EvalContext, Workload, register


class ServingSim(Strict):
    requests: int = Field(default=40_000, ge=1000, le=100_000_000)
    """Requests per simulated run."""
    warmup: int = Field(default=2_000, ge=0, le=100_000_000)
    """Leading requests left out of the statistics."""
    replications: int = Field(default=3, ge=1, le=50)
    """Seeded runs behind the capacity's confidence interval."""
    seed: int = Field(default=1, ge=0, le=2**63 - 1)
    """Seed of the first replication."""

    @model_validator(mode="after")
    def _w(self) -> ServingSim:
        if self.warmup >= self.requests:
            raise ValueError(f"warmup ({self.warmup}) must be below requests ({self.requests})")
        return self


class RecsysServingSpec(CapacitySpec):
    """Serve ``peak_qps`` of ``model`` with p99 <= ``slo_p99_ms``; ``daily_profile`` (24 hourly
    multipliers) sets the mean load that drives energy."""

    kind: Literal["recsys_serving"] = "recsys_serving"
    """Workload kind: recsys_serving (alias serving)."""
    model: str
    """Recommendation model: catalog name or path (relative to the scenario)."""
    peak_qps: float = Field(gt=0, le=1e12)
    """Queries/s at the daily peak that must meet the SLO."""
    slo_p99_ms: float = Field(gt=0, le=3_600_000)
    """99th-percentile latency target, ms."""
    query_size: Dist = Fixed(dist="fixed", value=1)
    """Items (candidates) per query."""
    batching: Batching = Batching()
    """Dynamic batching per replica."""
    sim: ServingSim = ServingSim()
    """Simulation behind each device's capacity at the SLO."""


@dataclass(frozen=True)
class _Base:
    """What the fast path keeps of a device's full run."""

    slo_ratio: float  # QPS at the SLO / saturated QPS
    reason: str | None
    mix: Any = None  # SaturatedMix of the run's draws (the same for every device)
    max_items: float = 0.0
    service_s: float = 0.0  # mean latency of a saturated batch


def slo_ratio(r0: float, x0: float, x1: float) -> float:
    """The SLO-to-saturation ratio at another speed. Heavy-traffic queueing (Kingman 1961):
    the tail of the wait scales as rho / (1 - rho) times the service time S, so at the
    load where p99 latency meets the SLO, rho / (1 - rho) = (x - 1) / kappa with
    x = SLO / S. kappa is fitted at the base run (ratio ``r0`` at ``x0``) and the ratio read
    at ``x1``. Outside the formula's domain (SLO under one batch), the base ratio."""
    if not (0.0 < r0 < 1.0) or x0 <= 1.0 or x1 <= 1.0:
        return r0
    kappa = (x0 - 1.0) / (r0 / (1.0 - r0))
    y = (x1 - 1.0) / kappa
    return y / (1.0 + y)


@dataclass(frozen=True)
class _FastState:
    job: Any  # the one-server ServeJob
    model: Any  # RecModel
    mix: Any  # SaturatedMix of the base run's draws
    max_items: float
    base: dict[str, _Base]


@register
class RecsysServing(Workload[RecsysServingSpec]):
    kind = "recsys_serving"
    aliases = ("serving",)
    unit = "qps at SLO"
    role = "capacity"
    spec_model = RecsysServingSpec
    cost = 0.6  # 0.05-0.07 s a device on the seed (capacity search)
    device_fields = frozenset({"model", "slo_p99_ms", "query_size", "batching", "sim"})

    def resolve(self, spec: RecsysServingSpec, relative_to: str | Path) -> RecsysServingSpec:
        return spec.model_copy(update={"model": refs.normalize(spec.model, relative_to)})

    def check(self, spec: RecsysServingSpec, file: str, field: str) -> list[Problem]:
        from accelsim.serving.rec_model import load_model

        try:
            load_model(spec.model, where=file, field=f"{field}.model")
        except AccelsimError as e:
            return e.problems
        return []

    def input_files(self, spec: RecsysServingSpec) -> list[Path]:
        return [refs.find(spec.model, "models", family="recsys", what="recommendation model")]

    def demand(self, spec: RecsysServingSpec) -> float:
        return spec.peak_qps

    def job(self, spec: RecsysServingSpec, device_ref: str, ctx: EvalContext) -> Any:
        """One server: ``server_chips`` replicas of the device behind a shared queue."""
        from accelsim.serving.job import shared_queue_job

        return shared_queue_job(device_ref, spec.model, ctx.server_chips,
                                spec.query_size.model_dump(), spec.batching.model_dump(),
                                spec.slo_p99_ms, {**spec.sim.model_dump(), "engine": "auto"})

    def evaluate(self, spec: RecsysServingSpec, device: DeviceProfile, ctx: EvalContext
                 ) -> DeviceEval:
        from accelsim.serving.draws import draw
        from accelsim.serving.service import build_service
        from accelsim.serving.sim import capacity
        from accelsim.serving.summary import SaturatedMix

        job = self.job(spec, device.name, ctx)
        try:
            sm = build_service(job, ctx.file, specs={device.name: device.spec})
            c = capacity(job, service=sm)
            d = draw(job, job.sim.seed, sm)  # the draws of c["capacity_qps"]
        except AccelsimError as e:
            msg = e.problems[0].message
            return DeviceEval(0.0, 0.0, msg, msg, _Base(0.0, msg))
        n = ctx.server_chips
        up = spec.availability(device)
        qps, sat = c["max_qps_at_slo"] / n * up, c["capacity_qps"] / n * up
        note = (f"{c['max_qps_at_slo']:,.0f} qps/server [{c['ci95_low_qps']:,.0f}, "
                f"{c['ci95_high_qps']:,.0f}]; {100 * up:.2f} % of replicas up")
        details = {"server_chips": n, "qps_per_server": c["max_qps_at_slo"],
                   "ci95_low_qps_per_server": c["ci95_low_qps"],
                   "ci95_high_qps_per_server": c["ci95_high_qps"], "replicas_up_share": up}
        util = (qps / sat) * spec.mean_to_peak if sat > 0 else 0.0
        b = job.batching.max_batch_items
        mix = SaturatedMix.of(d.sizes, b)
        width = float(max(d.sizes.max(), b))
        svc = float(sm.covering(width).table_s[:, mix.items].mean())
        kept = _Base(qps / sat if sat > 0 else 0.0, None, mix, width, svc)
        return DeviceEval(qps, util, note, None, kept, details)

    def prepare_fast(self, spec: RecsysServingSpec, base: dict[str, DeviceEval],
                     ctx: EvalContext) -> _FastState:
        """The base run's batch mix (seed ``sim.seed``, the draws of the full run's
        stability bound) and each device's SLO-to-saturation ratio."""
        from accelsim.serving.rec_model import load_model

        kept = {ref: ev.state for ref, ev in base.items()}
        ok = [b for b in kept.values() if b.mix is not None]
        mix, width = (ok[0].mix, ok[0].max_items) if ok else (None, 0.0)
        return _FastState(self.job(spec, "_", ctx), load_model(spec.model), mix, width, kept)

    def evaluate_fast(self, spec: RecsysServingSpec, ref: str, device: DeviceProfile,
                      state: _FastState, ctx: EvalContext) -> DeviceEval:
        from accelsim.serving.service import build_service

        b = state.base[ref]
        if b.reason is not None or state.mix is None:
            why = b.reason or "no batch mix from the base run"
            return DeviceEval(0.0, 0.0, why, why)
        job = state.job
        try:
            sm = build_service(job, ctx.file, specs={"_": device.spec}, model=state.model)
        except AccelsimError as e:
            msg = e.problems[0].message
            return DeviceEval(0.0, 0.0, msg, msg)
        sm = sm.covering(state.max_items)
        sat = state.mix.capacity_qps(sm.busy_s) / ctx.server_chips
        slo_s = spec.slo_p99_ms * units.MS
        svc = float(sm.table_s[:, state.mix.items].mean())
        ratio = slo_ratio(b.slo_ratio, slo_s / b.service_s if b.service_s > 0 else 0.0,
                          slo_s / svc if svc > 0 else 0.0)
        qps = sat * ratio * spec.availability(device)
        return DeviceEval(qps, ratio * spec.mean_to_peak if sat > 0 else 0.0)

    def fleet_metrics(self, name: str, spec: RecsysServingSpec, capacity: float,
                      whole_fleet: float) -> dict[str, float]:
        return {f"{name}_qps_at_slo": capacity, f"{name}_qps_whole_fleet": whole_fleet}

    def fleet_columns(self, name: str) -> dict[str, str]:
        return {f"{name} QPS at SLO, allocated": f"{name}_qps_at_slo",
                f"{name} QPS at SLO, whole fleet": f"{name}_qps_whole_fleet"}

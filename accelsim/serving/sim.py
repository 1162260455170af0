"""Serving simulation: build the inputs of a job, run an engine, summarise, search capacity.

``simulate(job)`` returns a :class:`ServeResult` (metrics, per-replica table and, on
request, the per-request trace as a DataFrame). ``capacity(job)`` finds the highest
arrival rate whose p99 latency meets the SLO, by bisection in each of
``sim.replications`` seeded replications (common random numbers across rates), and
reports the mean with a Student-t 95 % confidence interval.
"""

from __future__ import annotations

import functools
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from accelsim import units
from accelsim.bisection import drive, guided
from accelsim.errors import AccelsimError
from accelsim.serving.draws import Draws, at_rate, draw, draw_inputs
from accelsim.serving.engines import Inputs, simulate_fast, simulate_simpy
from accelsim.serving.job import ServeJob
from accelsim.serving.service import ServiceModel, build_service, check_memory
from accelsim.serving.summary import (
    SaturatedMix,
    capacity_estimate,
    drift,
    quantile_with_drops,
    summarise,
)

if TYPE_CHECKING:  # pandas is imported where a DataFrame is built: a capacity search
    import pandas as pd  # (fleet workloads in worker processes) needs none

# What :func:`capacity` returns (sweeps check metric names against them before running).
CAPACITY_KEYS = ("max_qps_at_slo", "ci95_low_qps", "ci95_high_qps", "replications",
                 "per_replication_qps", "capacity_qps", "slo_p99_ms", "engine")


def pick_engine(job: ServeJob, engine: str | None = None) -> str:
    want = engine or job.sim.engine
    fast_ok = job.routing in ("shared_queue", "round_robin") and job.deadline_ms is None
    if want == "fast" and not fast_ok:
        raise AccelsimError.single(
            "sim", "engine", "the fast engine handles FIFO shared_queue/round_robin without "
                             "deadlines; use engine simpy or auto")
    if want == "auto":
        return "fast" if fast_ok else "simpy"
    return want


@dataclass
class ServeResult:
    metrics: dict[str, Any]
    replicas: pd.DataFrame
    trace: pd.DataFrame | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.metrics, "replicas": self.replicas.to_dict(orient="records")}

    @property
    def summary(self) -> pd.DataFrame:
        """The metrics as a one-row DataFrame (see ``replicas`` and ``trace`` for more)."""
        import pandas as pd

        return pd.DataFrame([self.metrics])


def _offered(x: Inputs) -> float:
    return float((len(x.arrival_s) - 1) / (x.arrival_s[-1] - x.arrival_s[0]))


def _saturated(job: ServeJob, d: Draws) -> float:
    """A replication's saturated capacity: it does not depend on the arrival times."""
    return SaturatedMix.of(d.sizes, job.batching.max_batch_items).capacity_qps(
        d.service.busy_s, d.draws, d.service.scale)


def _meets(job: ServeJob, eng: str, x: Inputs, cap: float, slo_ms: float) -> bool:
    """Stable and p99 <= SLO, drops counting as misses, for the inputs ``x`` at one rate
    (the capacity search's cheap test); ``cap`` is this replication's saturated capacity
    (the same at every rate)."""
    if _offered(x) >= cap:
        return False
    tr = simulate_fast(x) if eng == "fast" else simulate_simpy(x)
    w = job.sim.warmup
    done = ~tr.dropped[w:]
    lat = (tr.finish_s - x.arrival_s)[w:][done]
    p99 = quantile_with_drops(lat, int((~done).sum()), 99)
    return len(lat) > 0 and not drift(x, tr, w) and p99 <= slo_ms * units.MS


def simulate(job: ServeJob, engine: str | None = None, rate_qps: float | None = None,
             seed: int | None = None, keep_trace: bool = False,
             service: ServiceModel | None = None, progress: Any = None) -> ServeResult:
    """One seeded run. Overload is detected before running (offered rate above the
    replicas' capacity) and after (waits still growing): the result then says
    ``stable: False`` and gives the capacity instead of simulating forever. A long run that
    :func:`streams` takes the bounded-memory path (:mod:`accelsim.serving.stream`), calling
    ``progress(done, total)`` as its chunks of requests finish."""
    sm = service or build_service(job)
    eng = pick_engine(job, engine)
    if streams(job, eng, keep_trace):
        return _simulate_stream(job, eng, rate_qps, seed, sm, progress)
    check_memory(job, keep_trace, sm.file)
    x = draw_inputs(job, rate_qps, seed, sm)
    cap = capacity_estimate(x)
    offered = _offered(x)
    base: dict[str, Any] = {"engine": eng, "capacity_qps": cap, "offered_qps": float(offered)}
    # with per-request deadlines the queue is bounded: an overloaded run is simulated (its
    # drops are the answer) but is still unstable, like any offered load above capacity
    import pandas as pd

    if offered >= cap and job.deadline_ms is None:
        over = {**base, "stable": False, "utilization": offered / cap,
                "message": f"offered {offered:.4g} qps exceeds capacity {cap:.4g} qps"}
        return ServeResult(over, pd.DataFrame({"replica": range(len(sm.replica_devices)),
                                            "device": sm.replica_devices}))
    tr = simulate_fast(x) if eng == "fast" else simulate_simpy(x)
    summary, reps = summarise(x, tr, job.sim.warmup, sm.replica_devices)
    stable = offered < cap and summary["completed"] > 0 and not drift(x, tr, job.sim.warmup)
    m: dict[str, Any] = {**base, **summary, "stable": stable}
    if job.deadline_ms is not None:
        sel = np.arange(len(x.arrival_s)) >= job.sim.warmup
        lat = (tr.finish_s - x.arrival_s)[sel & ~tr.dropped]
        in_time = int(np.count_nonzero(lat <= job.deadline_ms * units.MS))
        window = max(float(np.nanmax(tr.finish_s[sel & ~tr.dropped], initial=x.arrival_s[
            job.sim.warmup])) - float(x.arrival_s[job.sim.warmup]), 1e-12)
        m["goodput_qps"] = in_time / window  # served within the deadline, per second
        if m["completed"] == 0:
            m["message"] = (f"no request completed: all {m['dropped']:,} measured requests "
                            f"were dropped at the {job.deadline_ms:g} ms deadline")
        elif offered >= cap:
            m["message"] = (f"offered {offered:.4g} qps exceeds capacity {cap:.4g} qps; "
                            f"{m['drop_rate']:.1%} dropped at the {job.deadline_ms:g} ms "
                            "deadline")
    if job.slo is not None:
        m["slo_p99_ms"] = job.slo.p99_ms
        sel = np.arange(len(x.arrival_s)) >= job.sim.warmup
        lat = (tr.finish_s - x.arrival_s)[sel & ~tr.dropped]
        m["p99_ms_counting_drops"] = quantile_with_drops(lat, m["dropped"], 99) / units.MS
        m["meets_slo"] = bool(stable and m["p99_ms_counting_drops"] <= job.slo.p99_ms)
    trace = None
    if keep_trace:
        trace = pd.DataFrame({"arrival_s": x.arrival_s, "items": x.items, "start_s": tr.start_s,
                              "finish_s": tr.finish_s, "replica": tr.server,
                              "dropped": tr.dropped})
        trace["latency_ms"] = (trace.finish_s - trace.arrival_s) / units.MS
    return ServeResult(m, reps, trace)


def streams(job: ServeJob, engine: str, keep_trace: bool) -> bool:
    """Whether a run takes the bounded-memory path (:mod:`accelsim.serving.stream`): fast
    engine, one shared queue, no trace kept, Poisson arrivals, more than one chunk."""
    from accelsim.serving.stream import CHUNK

    return (engine == "fast" and not keep_trace and job.routing == "shared_queue"
            and job.arrivals.process == "poisson" and job.sim.requests > CHUNK)


def _simulate_stream(job: ServeJob, eng: str, rate_qps: float | None, seed: int | None,
                     sm: ServiceModel, progress: Any = None) -> ServeResult:
    from accelsim.serving.stream import simulate_stream

    m, reps = simulate_stream(job, sm, rate_qps, seed, progress)
    if "_drift" not in m:  # refused before simulating: offered load above capacity
        return ServeResult({"engine": eng, **m}, reps)
    grows, cap, offered = m.pop("_drift"), m.pop("_capacity_qps"), m.pop("_offered_qps")
    stable = offered < cap and m["completed"] > 0 and not grows
    m = {"engine": eng, "capacity_qps": cap, "offered_qps": offered, **m, "stable": stable}
    if job.slo is not None:
        m["slo_p99_ms"] = job.slo.p99_ms
        m["p99_ms_counting_drops"] = m["p99_ms"]  # the fast engine drops nothing
        m["meets_slo"] = bool(stable and m["p99_ms"] <= job.slo.p99_ms)
    return ServeResult(m, reps)


# A replication's likely answer over its saturated capacity, guiding its bisection
# (:func:`_search`; any guess gives the plain bisection's answer, a near one from fewer
# runs): the first replication's (assumption: a batching replica whose SLO is many batch
# times meets it up to near saturation; the seed's answers are 0.999 of it on every
# device), the later ones' the mean of those before.
RATIO_PRIOR = 1.0
# A guided bisection's pivots: the plain path's rates predicted to pass at most 1 - PIVOT of
# the guessed answer, or to fail at least 1 + PIVOT of it (the seed's replications differ
# by 0.1 % in answer over saturated capacity).
PIVOT = 0.005


def _bisection(cap: float, rel_tol: float) -> Generator[float, bool, float]:
    """One replication's search as a coroutine (yields a rate, is sent whether it meets the
    SLO, returns the answer): 0.1 % of the saturated capacity ``cap`` must pass (else 0),
    then bisection on [that, cap] to ``rel_tol``; the answer is the final bracket's
    midpoint."""
    lo, hi = cap * 1e-3, cap
    if not (yield lo):
        return 0.0
    while hi - lo > rel_tol * hi:
        mid = 0.5 * (lo + hi)
        if (yield mid):
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _meets_at(job: ServeJob, eng: str, d: Draws, cap: float, slo: float, rate: float
              ) -> bool:
    """Whether replication draw ``d`` run at ``rate`` meets the p99 SLO."""
    return _meets(job, eng, at_rate(job, d, rate), cap, slo)


def capacity(job: ServeJob, engine: str | None = None, rel_tol: float = 0.002,
             service: ServiceModel | None = None) -> dict[str, Any]:
    """Latency-bounded throughput: the highest rate with p99 <= SLO (mean and 95 % CI).
    Each replication's bisection is guided (:func:`accelsim.bisection.guided`: the same
    answer from fewer runs) by :data:`RATIO_PRIOR`, then by the replications before."""
    sm = service or build_service(job)
    if job.slo is None:
        raise AccelsimError.single(sm.file, "slo.p99_ms", "capacity search needs an SLO")
    check_memory(job, where=sm.file)
    slo = job.slo.p99_ms
    eng = pick_engine(job, engine)
    found: list[float] = []
    caps: list[float] = []
    cap = float("nan")
    for r in range(job.sim.replications):
        d = draw(job, job.sim.seed + r, sm)  # once per replication; bisection rescales
        cap_r = _saturated(job, d)
        if r == 0:
            cap = cap_r
        done = [f / c for f, c in zip(found, caps, strict=False) if f > 0 and c > 0]
        ratio = float(np.mean(done)) if done else RATIO_PRIOR
        caps.append(cap_r)
        search = guided(functools.partial(_bisection, cap_r, rel_tol), ratio * cap_r, PIVOT)
        found.append(drive(search, functools.partial(_meets_at, job, eng, d, cap_r, slo)))
    arr = np.asarray(found)
    mean = float(arr.mean())
    if len(arr) > 1:
        from scipy.special import stdtrit  # scipy.stats.t.ppf's own (importing stats: 0.3 s)

        half = float(stdtrit(len(arr) - 1, 0.975) * arr.std(ddof=1) / np.sqrt(len(arr)))
    else:
        half = float("nan")
    return {"max_qps_at_slo": mean, "ci95_low_qps": mean - half, "ci95_high_qps": mean + half,
            "replications": len(arr), "per_replication_qps": arr.tolist(),
            "capacity_qps": cap, "slo_p99_ms": slo, "engine": eng}


def offline_job(job: ServeJob, file: str = "job") -> dict[str, Any]:
    """Offline throughput of every replica of a device-and-model job: each at the batch that
    maximises throughput within its memory (:func:`accelsim.serving.recsys.offline`); items/s
    and queries/s of the whole job and the figures per replica kind."""
    from accelsim.devices import load_device
    from accelsim.serving.rec_model import load_model
    from accelsim.serving.recsys import offline
    from accelsim.traffic import dist_mean

    svc = job.service
    if svc.synthetic is not None:
        raise AccelsimError.single(file, "service", "--offline needs a device and a model (a "
                                   "synthetic service has no batch physics)")
    model = load_model(svc.model or "", where=file, field="service.model")
    members = ([(m.device, m.count) for m in svc.pool] if svc.pool
               else [(svc.device or "", job.replicas)])
    mean_items = float(dist_mean(job.queries.size))
    per, total = [], 0.0
    for ref, count in members:
        spec = load_device(ref, where=file, field="service.device").spec
        o = offline(model, spec, svc.placement, file)
        total += count * o["items_per_s"]
        per.append({"device": spec.name, "replicas": count, "items_per_s": o["items_per_s"],
                    "batch_items": o["batch_items"],
                    "batch_memory_bound_items": o["batch_memory_bound_items"],
                    "period_ms": o["period_s"] * 1e3, "latency_ms": o["latency_s"] * 1e3,
                    "breakdown": o["breakdown"]})
    return {"model": model.name, "items_per_s": total, "queries_per_s": total / mean_items,
            "mean_query_items": mean_items, "devices": per}

"""Serving simulation: build the inputs of a job, run an engine, summarise, search capacity.

``simulate(job)`` returns a :class:`ServeResult` (metrics, per-replica table and, on
request, the per-request trace as a DataFrame). ``capacity(job)`` finds the highest
arrival rate whose p99 latency meets the SLO, by bisection in each of
``sim.replications`` seeded replications (common random numbers across rates), and
reports the mean with a Student-t 95 % confidence interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from accelsim import units
from accelsim.devices import DeviceLike, DeviceSpec, as_spec, load_device
from accelsim.errors import AccelsimError
from accelsim.serving import recsys
from accelsim.serving.engines import (
    Inputs,
    Trace,
    saturated_batches,
    simulate_fast,
    simulate_simpy,
)
from accelsim.serving.job import PoolMember, ServeJob
from accelsim.serving.workload import (
    dist_mean,
    nhpp_times,
    read_trace,
    sample,
    shape_function,
)

PERCENTILES = {"p50_ms": 50, "p95_ms": 95, "p99_ms": 99, "p999_ms": 99.9}
# What :func:`capacity` returns (sweeps check metric names against them before running).
CAPACITY_KEYS = ("max_qps_at_slo", "ci95_low_qps", "ci95_high_qps", "replications",
                 "per_replication_qps", "capacity_qps", "slo_p99_ms", "engine")


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
                  specs: dict[str, DeviceLike] | None = None,
                  width: int | None = None, model: recsys.RecModel | None = None
                  ) -> ServiceModel:
    """Service-time tables per replica. ``specs`` maps the job's device references to
    resolved devices (specs or profiles; references not in it are resolved here, at the
    job's boundary); ``model`` is the job's resolved model; ``width`` overrides the number
    of items the table covers."""
    specs = {k: as_spec(v) for k, v in (specs or {}).items()}
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
    model = model or recsys.load_model(svc.model or "", where=file, field="service.model")
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
        breakdown[spec.name]["placement"] = one["placement"]  # type: ignore[assignment]
    table = np.vstack(rows)
    return ServiceModel(table, np.ones(len(rows)), None, names, breakdown, job=job, specs=specs,
                        file=file, period_s=np.vstack(periods))


@dataclass(frozen=True)
class Draws:
    """One replication's random inputs at unit rate: everything but the arrival times is
    the same at every rate (common random numbers), so the capacity search draws once per
    replication and only rescales arrivals (:func:`at_rate`)."""

    unit: np.ndarray | None  # unit-rate Poisson points (cumulative), None for a trace
    trace_s: np.ndarray | None  # trace arrival times at the trace's own rate
    trace_rate: float
    sizes: np.ndarray
    draws: np.ndarray
    choices: np.ndarray  # [N, 2]
    shape_state: dict[str, Any]  # generator state for the burst schedule (drawn last)
    service: ServiceModel


def draw(job: ServeJob, seed: int | None = None, service: ServiceModel | None = None
         ) -> Draws:
    """All random inputs of one run from one generator (seed), in a fixed order; the
    rate-dependent burst schedule is drawn last, from the state kept here."""
    sm = service or build_service(job)
    rng = np.random.default_rng(job.sim.seed if seed is None else seed)
    n = job.sim.requests
    a = job.arrivals
    sizes = unit = trace_s = None
    trace_rate = 1.0
    if a.process == "trace":
        t, sizes = read_trace(a.trace or "")
        trace_rate = (len(t) - 1) / t[-1] if t[-1] > 0 else 1.0
        reps = int(np.ceil(n / len(t)))
        span = t[-1] + (t[-1] / max(len(t) - 1, 1))
        trace_s = np.concatenate([t + r * span for r in range(reps)])[:n]
        if sizes is not None:
            sizes = np.tile(sizes, reps)[:n]
    else:
        unit = np.cumsum(rng.exponential(1.0, n))
    if sizes is None:
        sizes = sample(job.queries.size, rng, n, integer=True)
    sm = sm.covering(max(float(sizes.max()), job.batching.max_batch_items))
    c = sm.table_s.shape[0]
    draws = sample(sm.draw_dist, rng, n) if sm.draw_dist is not None else np.zeros(n)
    first = rng.integers(0, c, n)
    second = (first + rng.integers(1, max(c, 2), n)) % max(c, 1)
    return Draws(unit, trace_s, trace_rate, sizes, draws, np.stack([first, second], axis=1),
                 rng.bit_generator.state, sm)


def at_rate(job: ServeJob, d: Draws, rate_qps: float | None = None) -> Inputs:
    """The run's inputs at ``rate_qps`` (default: the job's): arrivals are the unit-rate
    points mapped through the rate and its shape (daily profile, bursts); the burst
    schedule is re-drawn from the kept state, so it is the same sequence at every rate."""
    a = job.arrivals
    sm = d.service
    if d.trace_s is not None:
        rate = rate_qps or a.rate_qps or d.trace_rate
        arrivals = d.trace_s * (d.trace_rate / rate)
    else:
        assert d.unit is not None
        rate = rate_qps or a.rate_qps or 1.0
        if a.profile is None and a.bursts is None:
            arrivals = d.unit / rate
        else:
            rng = np.random.default_rng()
            rng.bit_generator.state = d.shape_state
            t_b, m_b = shape_function(a, d.unit[-1] / rate, rng, sm.file)
            arrivals = nhpp_times(d.unit, rate, t_b, m_b, sm.file)
    return Inputs(
        arrival_s=arrivals, items=d.sizes, draw_s=d.draws, table_s=sm.table_s,
        period_s=sm.period_s, scale=sm.scale,
        max_batch_items=job.batching.max_batch_items,
        timeout_s=job.batching.timeout_ms * units.MS, routing=job.routing,
        choices=d.choices,
        deadline_s=job.deadline_ms * units.MS if job.deadline_ms else None,
    )


def draw_inputs(job: ServeJob, rate_qps: float | None = None, seed: int | None = None,
                service: ServiceModel | None = None) -> Inputs:
    """All random inputs of one run at ``rate_qps``: :func:`draw` then :func:`at_rate`."""
    return at_rate(job, draw(job, seed, service), rate_qps)


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


@dataclass(frozen=True)
class SaturatedMix:
    """The batches a replica forms when its queue never empties: every batch is a greedy
    FIFO pack of the drawn query sizes (the same packing as the engines)."""

    first: np.ndarray  # index of each batch's first query
    items: np.ndarray  # items in each batch (int)
    queries_per_batch: float

    @classmethod
    def of(cls, items: np.ndarray, max_batch_items: int) -> SaturatedMix:
        first, total = saturated_batches(items, max_batch_items)
        return cls(first, total.astype(np.int64), len(items) / len(first))

    def capacity_qps(self, table_s: np.ndarray, draw_s: np.ndarray | None = None,
                     scale: np.ndarray | None = None) -> float:
        """Stability bound: sum over replicas of queries per batch / mean batch service
        time, the service of a batch being ``draw * scale[r] + table[r, items]``."""
        svc = table_s[:, self.items]
        if draw_s is not None and scale is not None:
            svc = draw_s[self.first][None, :] * scale[:, None] + svc
        return float(np.sum(self.queries_per_batch / svc.mean(axis=1)))


def capacity_estimate(x: Inputs) -> float:
    """Queries/s the replicas sustain when queues never empty (:class:`SaturatedMix`).
    Offered load at or above it is unstable."""
    return SaturatedMix.of(x.items, x.max_batch_items).capacity_qps(x.busy_s, x.draw_s, x.scale)


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
        return pd.DataFrame([self.metrics])


def summarise(x: Inputs, tr: Trace, warmup: int, names: list[str]) -> tuple[dict[str, Any],
                                                                              pd.DataFrame]:
    n = len(x.arrival_s)
    sel = np.arange(n) >= warmup
    done = sel & ~tr.dropped
    lat = (tr.finish_s - x.arrival_s)[done]
    wait = (tr.start_s - x.arrival_s)[done]
    t0 = x.arrival_s[warmup]
    t1 = float(np.nanmax(tr.finish_s[done])) if done.any() else t0
    window = max(t1 - t0, 1e-12)
    nan = float("nan")  # latencies of an empty window (every request dropped) are undefined
    m: dict[str, Any] = {
        "requests": int(sel.sum()), "completed": int(done.sum()),
        "dropped": int((sel & tr.dropped).sum()),
        "mean_latency_ms": float(lat.mean() / units.MS) if len(lat) else nan,
        "mean_wait_ms": float(wait.mean() / units.MS) if len(lat) else nan,
    }
    for k, q in PERCENTILES.items():
        m[k] = float(np.percentile(lat, q) / units.MS) if len(lat) else nan
    m["drop_rate"] = m["dropped"] / max(m["requests"], 1)
    m["offered_qps"] = float(sel.sum() / max(x.arrival_s[-1] - t0, 1e-12))
    m["throughput_qps"] = float(done.sum() / window)
    # batches: the first request of each batch carries its service interval
    ok = ~tr.dropped
    order = np.lexsort((tr.start_s[ok], tr.server[ok]))
    srv, st, fin = tr.server[ok][order], tr.start_s[ok][order], tr.finish_s[ok][order]
    new = np.ones(len(srv), dtype=bool)
    new[1:] = (srv[1:] != srv[:-1]) | (st[1:] != st[:-1])
    in_win = new & (st >= t0) & (st <= t1)
    c = x.table_s.shape[0]
    held = fin - st  # a batch holds its replica for its latency, less what pipelining hides
    if x.period_s is not None and len(srv):
        tot = np.bincount(np.cumsum(new) - 1, weights=x.items[ok][order])
        k = np.minimum(tot, x.table_s.shape[1] - 1).astype(int)
        hidden = x.table_s[srv[new], k] - x.period_s[srv[new], k]
        held = held.copy()
        held[new] -= hidden
    busy = np.bincount(srv[in_win], weights=held[in_win], minlength=c)
    n_b = np.bincount(srv[in_win], minlength=c)
    util = busy / window
    m["utilization"] = float(util.mean())
    items_done = np.bincount(tr.server[done], weights=x.items[done], minlength=c)
    m["mean_batch_items"] = float(items_done.sum() / max(n_b.sum(), 1))
    # queue: time-average length by Little's law, and as seen by arrivals
    m["mean_queue_len"] = float(wait.sum() / window)
    starts_sorted = np.sort(tr.start_s[ok])
    started_before = np.searchsorted(starts_sorted, x.arrival_s, side="left")
    q_seen = (np.arange(n) - started_before)[sel]
    m["p99_queue_len"] = float(np.percentile(q_seen, 99))
    m["max_queue_len"] = int(q_seen.max())
    reps = pd.DataFrame({"replica": np.arange(c), "device": names, "utilization": util,
                         "batches": n_b,
                         "mean_batch_items": items_done / np.maximum(n_b, 1)})
    return m, reps


def _drift(x: Inputs, tr: Trace, warmup: int) -> bool:
    """Overload seen in the trace: waits still growing from the middle to the last third."""
    wait = tr.start_s - x.arrival_s
    w = wait[warmup:]
    w = w[np.isfinite(w)]
    if len(w) < 300:
        return False
    third = len(w) // 3
    mid, last = w[third:2 * third].mean(), w[2 * third:].mean()
    svc = float(np.nanmedian(tr.finish_s - tr.start_s))
    return bool(last > 2 * mid + 50 * svc)


def _offered(x: Inputs) -> float:
    return float((len(x.arrival_s) - 1) / (x.arrival_s[-1] - x.arrival_s[0]))


def _saturated(job: ServeJob, d: Draws) -> float:
    """A replication's saturated capacity: it does not depend on the arrival times."""
    return SaturatedMix.of(d.sizes, job.batching.max_batch_items).capacity_qps(
        d.service.busy_s, d.draws, d.service.scale)


def quantile_with_drops(latency_s: np.ndarray, dropped: int, q: float) -> float:
    """The ``q``-th percentile of all requests, a dropped one counting as an infinite
    latency (numpy's linear interpolation; equal to ``np.percentile`` when none dropped)."""
    n = len(latency_s) + dropped
    if n == 0 or len(latency_s) == 0:
        return float("inf")
    pos = q / 100 * (n - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    if hi > len(latency_s) - 1:  # the interpolation reaches a dropped (infinite) one
        return float("inf")
    part = np.partition(latency_s, [lo, hi])
    return float(part[lo] + (pos - lo) * (part[hi] - part[lo]))


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
    return len(lat) > 0 and not _drift(x, tr, w) and p99 <= slo_ms * units.MS


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
    import os

    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * units.GB  # unknown platform: assume a small machine


def simulate(job: ServeJob, engine: str | None = None, rate_qps: float | None = None,
             seed: int | None = None, keep_trace: bool = False,
             service: ServiceModel | None = None) -> ServeResult:
    """One seeded run. Overload is detected before running (offered rate above the
    replicas' capacity) and after (waits still growing): the result then says
    ``stable: False`` and gives the capacity instead of simulating forever. A long run that
    :func:`streams` takes the bounded-memory path (:mod:`accelsim.serving.stream`)."""
    sm = service or build_service(job)
    eng = pick_engine(job, engine)
    if streams(job, eng, keep_trace):
        return _simulate_stream(job, eng, rate_qps, seed, sm)
    check_memory(job, keep_trace, sm.file)
    x = draw_inputs(job, rate_qps, seed, sm)
    cap = capacity_estimate(x)
    offered = _offered(x)
    base = {"engine": eng, "capacity_qps": cap, "offered_qps": float(offered)}
    # with per-request deadlines the queue is bounded: an overloaded run is simulated (its
    # drops are the answer) but is still unstable, like any offered load above capacity
    if offered >= cap and job.deadline_ms is None:
        m = {**base, "stable": False, "utilization": offered / cap,
             "message": f"offered {offered:.4g} qps exceeds capacity {cap:.4g} qps"}
        return ServeResult(m, pd.DataFrame({"replica": range(len(sm.replica_devices)),
                                            "device": sm.replica_devices}))
    tr = simulate_fast(x) if eng == "fast" else simulate_simpy(x)
    m, reps = summarise(x, tr, job.sim.warmup, sm.replica_devices)
    stable = offered < cap and m["completed"] > 0 and not _drift(x, tr, job.sim.warmup)
    m = {**base, **m, "stable": stable}
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
                     sm: ServiceModel) -> ServeResult:
    from accelsim.serving.stream import simulate_stream

    m, reps = simulate_stream(job, sm, rate_qps, seed)
    if "_drift" not in m:  # refused before simulating: offered load above capacity
        return ServeResult({"engine": eng, **m}, reps)
    drift, cap, offered = m.pop("_drift"), m.pop("_capacity_qps"), m.pop("_offered_qps")
    stable = offered < cap and m["completed"] > 0 and not drift
    m = {"engine": eng, "capacity_qps": cap, "offered_qps": offered, **m, "stable": stable}
    if job.slo is not None:
        m["slo_p99_ms"] = job.slo.p99_ms
        m["p99_ms_counting_drops"] = m["p99_ms"]  # the fast engine drops nothing
        m["meets_slo"] = bool(stable and m["p99_ms"] <= job.slo.p99_ms)
    return ServeResult(m, reps)


def capacity(job: ServeJob, engine: str | None = None, rel_tol: float = 0.002,
             service: ServiceModel | None = None) -> dict[str, Any]:
    """Latency-bounded throughput: the highest rate with p99 <= SLO (mean and 95 % CI)."""
    sm = service or build_service(job)
    if job.slo is None:
        raise AccelsimError.single(sm.file, "slo.p99_ms", "capacity search needs an SLO")
    check_memory(job, where=sm.file)
    slo = job.slo.p99_ms
    eng = pick_engine(job, engine)
    found, cap = [], float("nan")
    for r in range(job.sim.replications):
        d = draw(job, job.sim.seed + r, sm)  # once per replication; bisection rescales
        cap_r = _saturated(job, d)
        if r == 0:
            cap = cap_r

        def ok(rate: float, d: Draws = d, cap_r: float = cap_r) -> bool:
            return _meets(job, eng, at_rate(job, d, rate), cap_r, slo)

        lo, hi = 0.0, cap_r
        if not ok(cap_r * 1e-3):
            found.append(0.0)
            continue
        lo = cap_r * 1e-3
        while hi - lo > rel_tol * hi:
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        found.append(0.5 * (lo + hi))
    arr = np.asarray(found)
    mean = float(arr.mean())
    if len(arr) > 1:
        half = float(stats.t.ppf(0.975, len(arr) - 1) * arr.std(ddof=1) / np.sqrt(len(arr)))
    else:
        half = float("nan")
    return {"max_qps_at_slo": mean, "ci95_low_qps": mean - half, "ci95_high_qps": mean + half,
            "replications": len(arr), "per_replication_qps": arr.tolist(),
            "capacity_qps": cap, "slo_p99_ms": slo, "engine": eng}

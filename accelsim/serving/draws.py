"""One replication's random inputs of a recommendation-serving run, drawn once at unit rate
(common random numbers): :func:`draw`, then :func:`at_rate` maps them to a rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim import units
from accelsim.serving.engines import Inputs
from accelsim.serving.job import ServeJob
from accelsim.serving.service import ServiceModel, build_service
from accelsim.traffic import nhpp_times, read_trace, sample, shape_function


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
        t, sizes = read_trace(a.trace or "", sm.file)
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
                 dict(rng.bit_generator.state), sm)


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

"""Long runs in bounded memory: inputs drawn in chunks, the FIFO recursion resumed chunk after
chunk, statistics accumulated as they go. Memory is O(chunk), not O(requests).

Used by :func:`accelsim.serving.sim.simulate` for a shared-queue run on the fast engine
without ``keep_trace`` when it has more than :data:`CHUNK` requests (shorter runs keep the
exact one-shot path, whose draws and percentiles this path reproduces up to the histogram).

* Inputs: chunk k draws its unit-rate Poisson points, query sizes, service draws and
  routing choices from the run's one generator, in that order within the chunk (one
  chunk is exactly the one-shot order). A daily profile or bursts are laid out once over
  the expected horizon, ``(N + 10 sqrt(N) + 100) / rate``, from a generator of their own.
* Queue: the engine's FIFO batching recursion (:func:`accelsim.serving.engines.batch_queue`)
  stops before a batch whose closing needs arrivals not drawn yet; those requests are
  carried into the next chunk, so the result equals one uninterrupted run.
* Latency and service-time quantiles come from a log-spaced histogram with bins of relative
  width :data:`BIN_RATIO` - 1: each order statistic is the geometric centre of its bin,
  within :data:`QUANTILE_REL_ERROR` (0.05 %) of the exact one, interpolated as
  ``np.quantile`` does. Queue lengths seen by
  arrivals are integers, counted exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from accelsim import units
from accelsim.serving.engines import batch_queue

CHUNK = 2**18
BIN_RATIO = 1.001
QUANTILE_REL_ERROR = math.sqrt(BIN_RATIO) - 1
_LOG_LOW = math.log(1e-9)  # 1 ns; below is the first bin
_N_BINS = math.ceil((math.log(1e6) - _LOG_LOW) / math.log(BIN_RATIO)) + 2


class LogHistogram:
    """Counts of positive values in log-spaced bins (relative width ``BIN_RATIO - 1``)."""

    def __init__(self) -> None:
        self.counts = np.zeros(_N_BINS, dtype=np.int64)

    def add(self, x: np.ndarray) -> None:
        b = np.floor((np.log(np.maximum(x, 1e-300)) - _LOG_LOW) / math.log(BIN_RATIO))
        self.counts += np.bincount(np.clip(b, 0, _N_BINS - 1).astype(np.int64),
                                   minlength=_N_BINS)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0-1) as ``np.quantile`` (linear between the order statistics
        of ranks floor and ceil of q (n - 1)), each order statistic taken as the geometric
        centre of its bin."""
        n = self.n
        if n == 0:
            return float("nan")
        pos = q * (n - 1)
        lo = math.floor(pos)
        cum = np.cumsum(self.counts)

        def centre(rank: int) -> float:
            b = int(np.searchsorted(cum, rank + 1))
            return math.exp(_LOG_LOW + (b + 0.5) * math.log(BIN_RATIO))

        a = centre(lo)
        return float(a + (pos - lo) * (centre(min(lo + 1, n - 1)) - a))


class _Stats:
    """Everything :func:`accelsim.serving.sim.summarise` reports, accumulated by chunk."""

    def __init__(self, n: int, warmup: int, c: int, x0: Any) -> None:
        self.n, self.warmup, self.c = n, warmup, c
        self.lat = LogHistogram()
        self.svc = LogHistogram()
        self.sum_lat = self.sum_wait = 0.0
        self.completed = 0
        self.t0 = self.t1 = self.a_first = self.a_last = float("nan")
        self.busy = np.zeros(c)
        self.batches = np.zeros(c, dtype=np.int64)
        self.items = np.zeros(c)
        measured = n - warmup
        self.third = measured // 3
        self.third_sum = np.zeros(3)
        self.third_n = np.zeros(3, dtype=np.int64)
        self.q_counts = np.zeros(1024, dtype=np.int64)
        self.suffix = np.empty(0)  # starts not yet below every later arrival (sorted)
        self.below = 0  # starts already below every later arrival
        self.x0 = x0  # latency and period tables, for the busy time pipelining hides

    def add(self, g0: int, arr: np.ndarray, items: np.ndarray, start: np.ndarray,
            finish: np.ndarray, server: np.ndarray) -> None:
        """Requests with global indices g0 .. g0 + len(arr) - 1, all served."""
        g = g0 + np.arange(len(arr))
        if g0 == 0:
            self.a_first = float(arr[0])
        self.a_last = float(arr[-1])
        if np.isnan(self.t0) and self.warmup < g[-1] + 1:
            self.t0 = float(arr[self.warmup - g0]) if self.warmup >= g0 else self.t0
        self.svc.add(finish - start)
        sel = g >= self.warmup
        lat, wait = (finish - arr)[sel], (start - arr)[sel]
        self.lat.add(lat)
        self.sum_lat += float(lat.sum())
        self.sum_wait += float(wait.sum())
        self.completed += int(sel.sum())
        if sel.any():
            t1 = float(finish[sel].max())
            self.t1 = t1 if np.isnan(self.t1) else max(self.t1, t1)
            # thirds of the measured requests, by index (the drift test)
            part = np.minimum((g[sel] - self.warmup) // max(self.third, 1), 2)
            self.third_sum += np.bincount(part, weights=wait, minlength=3)[:3]
            self.third_n += np.bincount(part, minlength=3)[:3]
        # batches: consecutive requests with the same start and server
        new = np.ones(len(arr), dtype=bool)
        new[1:] = (server[1:] != server[:-1]) | (start[1:] != start[:-1])
        bid = np.cumsum(new) - 1
        tot = np.bincount(bid, weights=items)
        srv, st = server[new], start[new]
        held = (finish - start)[new]
        table, period = self.x0
        if period is not None:
            k = np.minimum(tot, table.shape[1] - 1).astype(int)
            held = held - (table[srv, k] - period[srv, k])
        win = st >= self.t0  # False while t0 is not known (NaN): warm-up batches
        self.busy += np.bincount(srv[win], weights=held[win], minlength=self.c)
        self.batches += np.bincount(srv[win], minlength=self.c)
        self.items += np.bincount(server[sel], weights=items[sel], minlength=self.c)
        # queue seen by each arrival: earlier requests not yet started (FIFO: starts sorted)
        starts = np.concatenate([self.suffix, start])
        ahead = self.below + np.searchsorted(starts, arr, side="left")
        q = (g - ahead)[sel]
        if len(q):
            top = int(q.max())
            if top >= len(self.q_counts):
                grown = np.zeros(max(top + 1, 2 * len(self.q_counts)), dtype=np.int64)
                grown[:len(self.q_counts)] = self.q_counts
                self.q_counts = grown
            self.q_counts += np.bincount(q, minlength=len(self.q_counts))
        keep = int(np.searchsorted(starts, arr[-1], side="left"))
        self.below += keep
        self.suffix = starts[keep:]


def _count_quantile(counts: np.ndarray, q: float) -> float:
    """``np.percentile`` (linear) of the integers whose counts are ``counts``."""
    n = int(counts.sum())
    cum = np.cumsum(counts)
    pos = q / 100 * (n - 1)
    lo = int(np.floor(pos))
    v_lo = int(np.searchsorted(cum, lo + 1))
    v_hi = int(np.searchsorted(cum, min(lo + 2, n)))
    return float(v_lo + (pos - lo) * (v_hi - v_lo))


def simulate_stream(job: Any, sm: Any, rate_qps: float | None, seed: int | None,
                    progress: Any = None) -> tuple[dict[str, Any], Any]:
    """Summary metrics and per-replica table of one run (see the module docstring);
    ``progress(done, total)`` after each chunk of requests."""
    import pandas as pd

    from accelsim.serving.summary import PERCENTILES, SaturatedMix, waits_growing
    from accelsim.traffic import nhpp_times, sample, shape_function

    n, warmup = job.sim.requests, job.sim.warmup
    a = job.arrivals
    rng = np.random.default_rng(job.sim.seed if seed is None else seed)
    rate = rate_qps or a.rate_qps or 1.0
    shaped = a.profile is not None or a.bursts is not None
    if shaped:
        horizon = (n + 10 * math.sqrt(n) + 100) / rate
        t_b, m_b = shape_function(a, horizon, np.random.default_rng(
            [job.sim.seed if seed is None else seed, 1]), sm.file)
    B = float(job.batching.max_batch_items)
    tmo = job.batching.timeout_ms * units.MS
    c = sm.table_s.shape[0]
    free = np.zeros(c)
    servers = np.arange(c)
    carry: dict[str, np.ndarray] = {}
    unit_end = 0.0
    g_next = 0  # global index of the first carried request
    stats: _Stats | None = None
    cap = float("nan")
    for k0 in range(0, n, CHUNK):
        m = min(CHUNK, n - k0)
        unit = unit_end + np.cumsum(rng.exponential(1.0, m))
        unit_end = float(unit[-1])
        sizes = sample(job.queries.size, rng, m, integer=True)
        sm = sm.covering(max(float(sizes.max()), job.batching.max_batch_items))
        draws = sample(sm.draw_dist, rng, m) if sm.draw_dist is not None else np.zeros(m)
        first = rng.integers(0, c, m)  # routing choices: drawn to keep the stream's order
        rng.integers(1, max(c, 2), m)
        del first
        arr = nhpp_times(unit, rate, t_b, m_b, sm.file) if shaped else unit / rate
        if stats is None:
            stats = _Stats(n, warmup, c, (sm.table_s, sm.period_s))
            cap = SaturatedMix.of(sizes, job.batching.max_batch_items).capacity_qps(
                sm.busy_s, draws, sm.scale)
            offered = (m - 1) / (arr[-1] - arr[0]) if m > 1 else 0.0
            if offered >= cap:
                return {"stable": False, "capacity_qps": cap, "offered_qps": offered,
                        "utilization": offered / cap,
                        "message": f"offered {offered:.4g} qps exceeds capacity "
                                   f"{cap:.4g} qps"}, pd.DataFrame(
                    {"replica": range(c), "device": sm.replica_devices})
        cat = {key: np.concatenate([carry.get(key, np.empty(0)), val]) for key, val in
               (("arr", arr), ("items", sizes.astype(float)), ("draws", draws))}
        cnt = len(cat["arr"])
        start, finish = np.empty(cnt), np.empty(cnt)
        server = np.empty(cnt, dtype=np.int64)
        last = k0 + m >= n
        done = batch_queue(cat["arr"], cat["items"], cat["draws"], sm.table_s, sm.busy_s,
                           sm.scale, servers, free, B, tmo, start, finish, server, 0, 1, cnt,
                           last)
        if done:
            stats.add(g_next, cat["arr"][:done], cat["items"][:done], start[:done],
                      finish[:done], server[:done])
        g_next += done
        carry = {key: val[done:] for key, val in cat.items()}
        if progress:
            progress(k0 + m, n)
    assert stats is not None
    window = max(stats.t1 - stats.t0, 1e-12)
    measured = n - warmup
    m_out: dict[str, Any] = {
        "requests": measured, "completed": stats.completed, "dropped": 0,
        "mean_latency_ms": stats.sum_lat / max(stats.completed, 1) / units.MS,
        "mean_wait_ms": stats.sum_wait / max(stats.completed, 1) / units.MS,
    }
    for key, q in PERCENTILES.items():
        m_out[key] = stats.lat.quantile(q / 100) / units.MS
    m_out["drop_rate"] = 0.0
    m_out["offered_qps"] = measured / max(stats.a_last - stats.t0, 1e-12)
    m_out["throughput_qps"] = stats.completed / window
    util = stats.busy / window
    m_out["utilization"] = float(util.mean())
    m_out["mean_batch_items"] = float(stats.items.sum() / max(stats.batches.sum(), 1))
    m_out["mean_queue_len"] = stats.sum_wait / window
    m_out["p99_queue_len"] = _count_quantile(stats.q_counts, 99)
    m_out["max_queue_len"] = int(np.flatnonzero(stats.q_counts)[-1]) if stats.q_counts.any() \
        else 0
    m_out["quantile_rel_error"] = QUANTILE_REL_ERROR
    mid = stats.third_sum[1] / max(stats.third_n[1], 1)
    end = stats.third_sum[2] / max(stats.third_n[2], 1)
    m_out["_drift"] = waits_growing(mid, end, stats.svc.quantile(0.5), measured)
    m_out["_capacity_qps"] = cap
    m_out["_offered_qps"] = (n - 1) / max(stats.a_last - stats.a_first, 1e-12)
    reps = pd.DataFrame({"replica": np.arange(c), "device": sm.replica_devices,
                         "utilization": util, "batches": stats.batches,
                         "mean_batch_items": stats.items / np.maximum(stats.batches, 1)})
    return m_out, reps

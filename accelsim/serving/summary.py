"""What a recommendation-serving run measured: latency percentiles, throughput, utilisation
and queues (:func:`summarise`), the saturated capacity of a batch mix (:class:`SaturatedMix`)
and the overload rule (:func:`waits_growing`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from accelsim import units

if TYPE_CHECKING:  # imported by summarise (a capacity search needs no pandas)
    import pandas as pd

    from accelsim.serving.engines import Inputs, Trace

PERCENTILES = {"p50_ms": 50, "p95_ms": 95, "p99_ms": 99, "p999_ms": 99.9}
# The overload rule (:func:`waits_growing`): how many measured requests it needs, and by how
# many median service times the last third's mean wait must outgrow twice the middle's.
DRIFT_MIN_REQUESTS = 300
DRIFT_SERVICE_TIMES = 50.0


@dataclass(frozen=True)
class SaturatedMix:
    """The batches a replica forms when its queue never empties: every batch is a greedy
    FIFO pack of the drawn query sizes (the same packing as the engines)."""

    first: np.ndarray  # index of each batch's first query
    items: np.ndarray  # items in each batch (int)
    queries_per_batch: float

    @classmethod
    def of(cls, items: np.ndarray, max_batch_items: int) -> SaturatedMix:
        # the compiled engines (numba) load here, not where a cached or returned
        # evaluation holding a SaturatedMix is unpickled (a fleet command's caller)
        from accelsim.serving.engines import saturated_batches

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
    import pandas as pd

    reps = pd.DataFrame({"replica": np.arange(c), "device": names, "utilization": util,
                         "batches": n_b,
                         "mean_batch_items": items_done / np.maximum(n_b, 1)})
    return m, reps


def waits_growing(mid_wait_s: float, last_wait_s: float, median_service_s: float,
                  measured: int) -> bool:
    """The overload rule, the one copy: a run of at least :data:`DRIFT_MIN_REQUESTS` measured
    requests whose mean wait over their last third exceeds twice the middle third's by more
    than :data:`DRIFT_SERVICE_TIMES` median service times is still filling its queue."""
    return bool(measured >= DRIFT_MIN_REQUESTS
                and last_wait_s > 2 * mid_wait_s + DRIFT_SERVICE_TIMES * median_service_s)


def drift(x: Inputs, tr: Trace, warmup: int) -> bool:
    """Overload seen in a trace (:func:`waits_growing` over the measured requests)."""
    wait = tr.start_s - x.arrival_s
    w = wait[warmup:]
    w = w[np.isfinite(w)]
    if len(w) < DRIFT_MIN_REQUESTS:
        return False
    third = len(w) // 3
    mid, last = w[third:2 * third].mean(), w[2 * third:].mean()
    return waits_growing(float(mid), float(last), float(np.nanmedian(tr.finish_s - tr.start_s)),
                         len(w))


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

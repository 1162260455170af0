"""The bounded-memory path: chunked inputs, the resumed FIFO recursion, streamed statistics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from accelsim.serving import stream
from accelsim.serving.draws import draw_inputs
from accelsim.serving.engines import batch_queue, simulate_fast
from accelsim.serving.job import ServeJob
from accelsim.serving.sim import simulate
from accelsim.serving.summary import summarise


def _job(n, B=8, tmo=0.2, rate=3200.0, c=4, arrivals=None, **extra):
    return ServeJob.model_validate({
        "arrivals": arrivals or {"process": "poisson", "rate_qps": rate},
        "queries": {"size": {"dist": "lognormal", "mean": 3, "cv": 1.5, "max": 40}},
        "service": {"synthetic": {"dist": "exponential", "mean_ms": 1.0,
                                  "per_item_ms": 0.01}},
        "replicas": c, "routing": "shared_queue",
        "batching": {"max_batch_items": B, "timeout_ms": tmo},
        "slo": {"p99_ms": 25}, "sim": {"requests": n, "warmup": n // 10, "seed": 3}, **extra})


def _chunked(x, size):
    """Run the batching recursion, resumed, over ``x`` in chunks of ``size`` new requests."""
    n, c = len(x.arrival_s), x.table_s.shape[0]
    start, finish = np.empty(n), np.empty(n)
    server = np.empty(n, dtype=np.int64)
    free = np.zeros(c)
    g = 0
    for k0 in range(0, n, size):
        end = min(k0 + size, n)
        s, f, v = np.empty(end - g), np.empty(end - g), np.empty(end - g, dtype=np.int64)
        done = batch_queue(x.arrival_s[g:end], x.items[g:end].astype(float),
                           x.draw_s[g:end], x.table_s, x.busy_s, x.scale, np.arange(c), free,
                           float(x.max_batch_items), x.timeout_s, s, f, v, 0, 1, end - g,
                           end == n)
        start[g:g + done], finish[g:g + done], server[g:g + done] = s[:done], f[:done], v[:done]
        g += done
    assert g == n
    return start, finish, server


@pytest.mark.parametrize("B,tmo", [(1, 0.0), (8, 0.2), (32, 2.0)])
def test_the_resumed_recursion_equals_one_uninterrupted_run(B, tmo):
    x = draw_inputs(_job(20_000, B, tmo))
    whole = simulate_fast(x)
    for size in (97, 1000, 7777):
        start, finish, server = _chunked(x, size)
        np.testing.assert_array_equal(start, whole.start_s)
        np.testing.assert_array_equal(finish, whole.finish_s)
        np.testing.assert_array_equal(server, whole.server)


def test_streamed_statistics_equal_the_one_shot_summary():
    j = _job(30_000)
    x = draw_inputs(j)
    tr = simulate_fast(x)
    exact, reps = summarise(x, tr, j.sim.warmup, ["r"] * 4)
    st = stream._Stats(len(x.arrival_s), j.sim.warmup, 4, (x.table_s, x.period_s))
    n = len(x.arrival_s)
    new = np.ones(n, dtype=bool)  # chunks end at batch boundaries, as the resumed run's do
    new[1:] = (tr.server[1:] != tr.server[:-1]) | (tr.start_s[1:] != tr.start_s[:-1])
    cuts = [0, *sorted({int(np.flatnonzero(new[:k + 1])[-1]) for k in range(4096, n, 4096)}),
            n]
    for a, b in itertools.pairwise(cuts):
        st.add(a, x.arrival_s[a:b], x.items[a:b].astype(float), tr.start_s[a:b],
               tr.finish_s[a:b], tr.server[a:b])
    window = st.t1 - st.t0
    assert st.completed == exact["completed"]
    assert st.sum_wait / st.completed / 1e-3 == pytest.approx(exact["mean_wait_ms"], rel=1e-9)
    assert st.sum_lat / st.completed / 1e-3 == pytest.approx(exact["mean_latency_ms"],
                                                            rel=1e-9)
    assert st.completed / window == pytest.approx(exact["throughput_qps"], rel=1e-9)
    assert float((st.busy / window).mean()) == pytest.approx(exact["utilization"], rel=1e-9)
    assert stream._count_quantile(st.q_counts, 99) == exact["p99_queue_len"]
    assert int(np.flatnonzero(st.q_counts)[-1]) == exact["max_queue_len"]
    for key, q in (("p50_ms", 0.5), ("p99_ms", 0.99), ("p999_ms", 0.999)):
        assert st.lat.quantile(q) / 1e-3 == pytest.approx(
            exact[key], rel=2 * stream.QUANTILE_REL_ERROR + 1e-4)
    np.testing.assert_array_equal(st.batches, reps["batches"])


def test_histogram_quantiles_are_within_their_stated_bound():
    x = np.random.default_rng(1).lognormal(-7, 1.5, 200_000)
    h = stream.LogHistogram()
    for part in np.array_split(x, 7):
        h.add(part)
    for q in (0.01, 0.5, 0.9, 0.99, 0.999):
        exact = np.quantile(x, q)
        assert h.quantile(q) == pytest.approx(exact, rel=stream.QUANTILE_REL_ERROR * 1.01)


def test_long_runs_stream_in_bounded_memory(monkeypatch):
    import tracemalloc

    monkeypatch.setattr(stream, "CHUNK", 5_000)

    def peak(n):
        tracemalloc.start()
        m = simulate(_job(n), engine="fast").metrics
        p = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert m["stable"] and "quantile_rel_error" in m  # the streamed path ran
        return p

    small, big = peak(40_000), peak(160_000)
    assert big < 1.25 * small  # 4x the requests, about the same memory


def test_streamed_run_agrees_with_the_one_shot_run_statistically(monkeypatch):
    j = _job(60_000)
    one = simulate(j, engine="fast").metrics
    monkeypatch.setattr(stream, "CHUNK", 8_192)
    many = simulate(j, engine="fast").metrics  # different draws (chunk order), same law
    for k in ("mean_latency_ms", "p99_ms", "throughput_qps", "utilization"):
        assert many[k] == pytest.approx(one[k], rel=0.05), k


@pytest.mark.parametrize("shape", [
    {"profile": {"hourly": [1.0] * 12 + [2.0] * 12, "day_s": 20.0}},
    {"bursts": {"multiplier": 1.5, "mean_burst_s": 0.05, "mean_gap_s": 0.2}},
])
def test_streamed_runs_with_a_daily_profile_or_bursts_agree_statistically(monkeypatch, shape):
    j = _job(80_000, arrivals={"process": "poisson", "rate_qps": 3000, **shape})
    one = simulate(j, engine="fast").metrics
    monkeypatch.setattr(stream, "CHUNK", 10_000)
    many = simulate(j, engine="fast").metrics
    assert many["stable"] and "quantile_rel_error" in many
    for k in ("throughput_qps", "p99_ms", "mean_wait_ms", "utilization"):
        assert many[k] == pytest.approx(one[k], rel=0.05), k

"""The fast engine reproduces the simpy reference exactly on small cases and statistically
on large ones; both are deterministic for a seed."""

import numpy as np
import pytest

from accelsim.serving.draws import draw_inputs
from accelsim.serving.engines import simulate_fast, simulate_simpy
from accelsim.serving.job import ServeJob
from accelsim.serving.sim import simulate

CASES = [
    ("shared_queue", 1, 0.0, 1), ("shared_queue", 1, 0.0, 4), ("shared_queue", 8, 0.5, 3),
    ("shared_queue", 32, 2.0, 4), ("round_robin", 1, 0.0, 3), ("round_robin", 4, 0.2, 3),
]


def _job(routing, B, tmo, c, n=3000, seed=5, rate=2500.0, **extra):
    return ServeJob.model_validate({
        "arrivals": {"process": "poisson", "rate_qps": rate},
        "queries": {"size": {"dist": "lognormal", "mean": 3, "cv": 1.5, "max": 40}},
        "service": {"synthetic": {"dist": "lognormal", "mean_ms": 1.0, "cv": 0.5,
                                  "per_item_ms": 0.05}},
        "replicas": c, "routing": routing,
        "batching": {"max_batch_items": B, "timeout_ms": tmo},
        "sim": {"requests": n, "warmup": 100, "seed": seed}, **extra})


@pytest.mark.parametrize("routing,B,tmo,c", CASES)
def test_fast_equals_simpy_per_request(routing, B, tmo, c):
    x = draw_inputs(_job(routing, B, tmo, c))
    a, b = simulate_fast(x), simulate_simpy(x)
    np.testing.assert_allclose(a.start_s, b.start_s, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.finish_s, b.finish_s, rtol=1e-12, atol=1e-12)
    assert np.array_equal(a.server, b.server)


def test_device_model_service_engines_agree():
    j = ServeJob.model_validate({
        "arrivals": {"process": "poisson", "rate_qps": 20000},
        "queries": {"size": {"dist": "truncnormal", "mean": 200, "std": 80, "max": 1024}},
        "service": {"device": "h20", "model": "rmc2"}, "replicas": 4,
        "batching": {"max_batch_items": 1024, "timeout_ms": 1.0},
        "sim": {"requests": 4000, "warmup": 200, "seed": 2}})
    x = draw_inputs(j)
    np.testing.assert_allclose(simulate_fast(x).finish_s, simulate_simpy(x).finish_s,
                               rtol=1e-12, atol=1e-12)


def test_large_runs_agree_statistically():
    j = _job("shared_queue", 16, 1.0, 4, n=60_000, seed=9, rate=3000.0)
    f = simulate(j, engine="fast").metrics
    s = simulate(j, engine="simpy").metrics
    for k in ("mean_latency_ms", "p99_ms", "throughput_qps", "utilization"):
        assert f[k] == pytest.approx(s[k], rel=1e-9)


def test_same_seed_same_result_and_seed_matters():
    a = simulate(_job("shared_queue", 4, 0.5, 2)).metrics
    b = simulate(_job("shared_queue", 4, 0.5, 2)).metrics
    c = simulate(_job("shared_queue", 4, 0.5, 2, seed=6)).metrics
    assert a == b and a["p99_ms"] != c["p99_ms"]


def test_jsq_beats_round_robin_and_p2c_between():
    base = dict(c=8, n=40_000, rate=7000.0)
    rr = simulate(_job("round_robin", 1, 0.0, **base), engine="simpy").metrics
    p2 = simulate(_job("power_of_two", 1, 0.0, **base)).metrics
    jsq = simulate(_job("jsq", 1, 0.0, **base)).metrics
    assert p2["engine"] == "simpy"
    assert jsq["mean_wait_ms"] < p2["mean_wait_ms"] < rr["mean_wait_ms"]


def test_deadlines_drop_requests():
    j = _job("jsq", 1, 0.0, 2, n=20_000, rate=2500.0, deadline_ms=2.0)
    m = simulate(j).metrics
    assert m["capacity_qps"] < 2500  # overloaded: the deadline keeps it bounded
    assert m["dropped"] > 0 and m["completed"] + m["dropped"] == m["requests"]
    assert m["mean_wait_ms"] <= 2.0


def test_fast_engine_refuses_what_it_cannot_do():
    from accelsim.errors import AccelsimError

    with pytest.raises(AccelsimError, match="fast engine"):
        simulate(_job("jsq", 1, 0.0, 2), engine="fast")


def test_batching_raises_throughput_under_load():
    lo = simulate(_job("shared_queue", 1, 0.0, 1, n=20_000, rate=500.0)).metrics
    hi = simulate(_job("shared_queue", 64, 1.0, 1, n=20_000, rate=500.0)).metrics
    assert hi["capacity_qps"] > lo["capacity_qps"]
    assert hi["mean_batch_items"] > lo["mean_batch_items"]


def test_heavy_tailed_queries_are_priced_in_full():
    """Unbounded lognormal sizes beyond the default table: the table widens, nothing clamps."""
    j = ServeJob.model_validate({
        "arrivals": {"process": "poisson", "rate_qps": 50},
        "queries": {"size": {"dist": "lognormal", "mean": 10, "cv": 4.0}},
        "service": {"synthetic": {"dist": "fixed", "value_ms": 0.1, "per_item_ms": 0.01}},
        "sim": {"requests": 20_000, "warmup": 100, "seed": 3}})
    x = draw_inputs(j)
    assert x.items.max() > 10 * 50  # beyond the default width (mean x 50)
    tr = simulate_fast(x)
    big = int(np.argmax(x.items))
    alone = tr.start_s == tr.start_s[big]
    assert x.items[alone].sum() == x.items[big]  # batch size 1: it was served alone
    assert tr.finish_s[big] - tr.start_s[big] == pytest.approx(1e-4 + 1e-5 * (x.items[big] - 1))


def test_overload_with_deadlines_is_unstable_and_reports_drops_and_goodput():
    j = _job("jsq", 1, 0.0, 2, n=20_000, rate=2500.0, deadline_ms=2.0, slo={"p99_ms": 50.0})
    m = simulate(j).metrics
    assert m["offered_qps"] > m["capacity_qps"]
    assert m["stable"] is False and "dropped at the 2 ms deadline" in m["message"]
    assert 0.05 < m["drop_rate"] == m["dropped"] / m["requests"]
    assert m["goodput_qps"] < m["throughput_qps"] < m["offered_qps"]
    # the served ones are fast (p99 of completed is tiny) but the SLO counts the drops
    assert m["p99_ms"] < 50 and m["p99_ms_counting_drops"] == float("inf")
    assert m["meets_slo"] is False


def test_a_light_load_with_a_loose_deadline_drops_nothing_and_is_unchanged():
    a = simulate(_job("jsq", 1, 0.0, 2, n=20_000, rate=800.0, deadline_ms=500.0)).metrics
    assert a["stable"] is True and a["dropped"] == 0 and a["drop_rate"] == 0
    assert a["goodput_qps"] == pytest.approx(a["throughput_qps"])


def test_quantile_with_drops():
    from accelsim.serving.summary import quantile_with_drops

    lat = np.random.default_rng(1).exponential(1.0, 1000)
    for q in (50, 90, 99, 99.9):
        assert quantile_with_drops(lat, 0, q) == pytest.approx(np.percentile(lat, q))
        with_infs = np.concatenate([lat, np.full(5, np.inf)])
        with np.errstate(invalid="ignore"):  # numpy interpolates inf - inf
            want = np.percentile(with_infs, q)
        got = quantile_with_drops(lat, 5, q)
        assert got == want or (np.isinf(got) and not np.isfinite(want))
    assert quantile_with_drops(lat, 20, 99) == float("inf")  # 2 % dropped > 1 %


def test_capacity_at_the_slo_counts_drops():
    from accelsim.serving.sim import capacity

    def job(**extra):
        j = _job("jsq", 1, 0.0, 2, n=6000, rate=1000.0, slo={"p99_ms": 20.0}, **extra)
        return j.model_copy(update={"sim": j.sim.model_copy(update={"replications": 2})})

    loose = capacity(job(), engine="simpy")
    tight = capacity(job(deadline_ms=1.0), engine="simpy")
    # a 1 ms deadline drops requests long before the 20 ms SLO binds
    assert tight["max_qps_at_slo"] < 0.9 * loose["max_qps_at_slo"]


def test_pipelined_replicas_take_the_next_batch_after_the_period():
    from dataclasses import replace

    from accelsim.serving.service import build_service
    from accelsim.serving.summary import capacity_estimate

    j = ServeJob.model_validate({
        "arrivals": {"process": "poisson", "rate_qps": 30000},
        "queries": {"size": {"dist": "fixed", "value": 256}},
        "service": {"device": "h100-sxm", "model": "dlrm-mlperf"}, "replicas": 1,
        "batching": {"max_batch_items": 65536, "timeout_ms": 0.5},
        "sim": {"requests": 20000, "warmup": 1000, "seed": 3}})
    sm = build_service(j)
    serial = replace(sm, period_s=None)  # one batch at a time
    assert np.all(sm.period_s <= sm.table_s) and np.any(sm.period_s < sm.table_s)
    x, xs = draw_inputs(j, service=sm), draw_inputs(j, service=serial)
    assert capacity_estimate(x) > 1.2 * capacity_estimate(xs)
    a, b = simulate_fast(x), simulate_simpy(x)  # both engines pipeline the same way
    np.testing.assert_allclose(a.finish_s, b.finish_s, rtol=1e-12, atol=1e-12)
    # a batch's requests still take the full latency
    lat = a.finish_s - a.start_s
    assert np.all(lat >= sm.table_s[0, 256] - 1e-12)

import numpy as np
import pytest

from accelsim.errors import AccelsimError
from accelsim.serving.draws import draw_inputs
from accelsim.serving.job import ServeJob
from accelsim.serving.sim import simulate


def _job(arrivals, **extra):
    return ServeJob.model_validate({
        "arrivals": arrivals, "service": {"synthetic": {"dist": "fixed", "value_ms": 0.1}},
        "sim": {"requests": 50_000, "warmup": 100, "seed": 4}, **extra})


def test_poisson_rate_and_scaling_keeps_the_sample_path():
    a = draw_inputs(_job({"process": "poisson", "rate_qps": 1000}))
    b = draw_inputs(_job({"process": "poisson", "rate_qps": 2000}))
    assert len(a.arrival_s) / a.arrival_s[-1] == pytest.approx(1000, rel=0.02)
    np.testing.assert_allclose(a.arrival_s, 2 * b.arrival_s)  # common random numbers


def test_daily_profile_shapes_the_rate():
    hourly = [1.0] * 12 + [3.0] * 12
    x = draw_inputs(_job({"process": "poisson", "rate_qps": 100,
                          "profile": {"hourly": hourly, "day_s": 240.0}}))
    whole = x.arrival_s[x.arrival_s < 240.0 * np.floor(x.arrival_s[-1] / 240.0)]
    t = whole % 240.0
    ratio = np.sum(t >= 120) / np.sum(t < 120)
    assert ratio == pytest.approx(3.0, rel=0.05)


def test_bursts_keep_the_mean_rate_but_raise_the_tail():
    plain = simulate(_job({"process": "poisson", "rate_qps": 6000})).metrics
    burst = simulate(_job({"process": "poisson", "rate_qps": 6000,
                           "bursts": {"multiplier": 1.6, "mean_burst_s": 0.05,
                                      "mean_gap_s": 0.1}})).metrics
    assert burst["offered_qps"] == pytest.approx(6000, rel=0.1)
    assert burst["p99_ms"] > plain["p99_ms"]


def test_trace_replay(tmp_path):
    p = tmp_path / "trace.csv"
    p.write_text("arrival_s,items\n0.0,1\n0.001,2\n0.0015,1\n0.004,3\n")
    j = _job({"trace": str(p)})  # a trace alone implies process: trace
    x = draw_inputs(j)
    assert list(x.items[:4]) == [1, 2, 1, 3]
    assert x.arrival_s[1] == pytest.approx(0.001)


def test_bad_trace_is_a_clear_error(tmp_path):
    p = tmp_path / "trace.csv"
    p.write_text("time\n1\n2\n")
    with pytest.raises(AccelsimError, match="arrival_s: missing column"):
        draw_inputs(_job({"process": "trace", "trace": str(p)}))


@pytest.mark.parametrize("size", [
    {"dist": "fixed", "value": 5},
    {"dist": "truncnormal", "mean": 200, "std": 80, "max": 1024},
    {"dist": "lognormal", "mean": 100, "cv": 2.0},
    {"dist": "empirical", "values": [1, 10, 100], "weights": [0.5, 0.3, 0.2]},
])
def test_query_sizes_are_whole_items_with_the_right_mean(size):
    x = draw_inputs(_job({"process": "poisson", "rate_qps": 10}, queries={"size": size}))
    assert np.all(x.items >= 1) and np.all(x.items == np.rint(x.items))
    expect = {"fixed": 5, "truncnormal": 200, "lognormal": 100,
              "empirical": 0.5 + 3 + 20}[size["dist"]]
    assert x.items.mean() == pytest.approx(expect, rel=0.05)


def test_sizes_and_service_draws_do_not_depend_on_the_rate_even_with_bursts():
    arr = {"process": "poisson", "bursts": {"multiplier": 2.0, "mean_burst_s": 0.01,
                                            "mean_gap_s": 0.05}}
    a = draw_inputs(_job({**arr, "rate_qps": 1000}))
    b = draw_inputs(_job({**arr, "rate_qps": 3000}))
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.draw_s, b.draw_s)


@pytest.mark.parametrize("cells,line,want", [
    ("0,1\n0.1,abc\n0.2,3\n", "items (line 3)", "expected a finite number, got 'abc'"),
    ("0,1\n0.1,\n0.2,3\n", "items (line 3)", "expected a finite number, got an empty cell"),
    ("0,1\nnan,1\n0.2,3\n", "arrival_s (line 3)", "expected a finite number, got 'nan'"),
    ("0,1\n0.1,2.5\n", "items (line 3)", "expected whole items >= 1, got '2.5'"),
    ("0,1\n0.1,inf\n", "items (line 3)", "expected a finite number, got 'inf'"),
])
def test_trace_cells_that_are_not_numbers_name_their_line(tmp_path, cells, line, want):
    """... after the job that names the trace (here the placeholder ``job``)."""
    p = tmp_path / "trace.csv"
    p.write_text("arrival_s,items\n" + cells)
    with pytest.raises(AccelsimError) as e:
        draw_inputs(_job({"trace": str(p)}))
    assert str(e.value) == f"job: arrivals.trace: {p}: {line}: {want}"


@pytest.mark.parametrize("arrivals,field", [
    ({"process": "poisson", "rate_qps": 1e-6,
      "bursts": {"multiplier": 5, "mean_burst_s": 0.01, "mean_gap_s": 0.01}}, "arrivals.bursts"),
    ({"process": "poisson", "rate_qps": 1e-6,
      "profile": {"hourly": [1.0] * 24, "day_s": 1.0}}, "arrivals.profile.day_s"),
])
def test_a_tiny_rate_with_short_segments_is_refused_not_a_hang(arrivals, field):
    from accelsim.serving.service import build_service

    j = _job(arrivals)
    with pytest.raises(AccelsimError) as e:
        draw_inputs(j, service=build_service(j, "tiny.yaml"))
    assert str(e.value).startswith(f"tiny.yaml: {field}: the run spans ")


def test_burst_switches_are_seeded_and_cover_the_run():
    from accelsim.traffic import shape_function

    a = _job({"process": "poisson", "rate_qps": 100,
              "bursts": {"multiplier": 3, "mean_burst_s": 0.5, "mean_gap_s": 2.0}}).arrivals
    t1, m1 = shape_function(a, 1000.0, np.random.default_rng(5))
    t2, m2 = shape_function(a, 1000.0, np.random.default_rng(5))
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(m1, m2)
    assert t1[0] == 0 and t1[-1] >= 1000.0 * 1.5 and np.all(np.diff(t1) > 0)
    # alternating gap/burst levels keep the long-run mean at 1: 0.8 * base + 0.2 * 3 * base
    base = 1 / (1 + 0.2 * 2)
    assert set(np.round(m1, 12)) == {round(base, 12), round(3 * base, 12)}
    dur = np.diff(t1)
    frac = dur[m1[:-1] > 1].sum() / dur.sum()
    assert frac == pytest.approx(0.2, abs=0.03)


@pytest.mark.parametrize("how", ["keep_trace", "simpy", "round_robin"])
def test_runs_that_hold_every_request_and_would_exhaust_memory_are_refused_up_front(how):
    """Runs that keep per-request arrays (a trace, the simpy engine, per-replica queues);
    a streamed run (tests/serving/test_stream.py) needs no such limit."""
    from accelsim.serving.service import BYTES_PER_REQUEST, _physical_memory

    n = int(_physical_memory() / BYTES_PER_REQUEST)  # twice the half that is allowed
    extra = {"replicas": 2, "routing": "round_robin"} if how == "round_robin" else {}
    j = _job({"process": "poisson", "rate_qps": 10}, sim={"requests": n, "warmup": 0}, **extra)
    with pytest.raises(AccelsimError) as e:
        simulate(j, engine="simpy" if how == "simpy" else None,
                 keep_trace=how == "keep_trace")
    msg = str(e.value)
    assert "sim.requests" in msg and "GB; this machine has" in msg and "expected at most" in msg


def test_a_service_table_that_would_not_fit_in_memory_is_refused():
    from accelsim.serving.service import build_service

    j = _job({"process": "poisson", "rate_qps": 10}, replicas=100_000,
             batching={"max_batch_items": 1_000_000, "timeout_ms": 1.0})
    with pytest.raises(AccelsimError) as e:
        build_service(j, "big.yaml")
    assert str(e.value).startswith("big.yaml: replicas: 100,000 replicas x 1,000,002 batch "
                                   "sizes need a 800.0 GB service-time table")


@pytest.mark.parametrize("arrivals", [
    {"process": "poisson", "rate_qps": 1000},
    {"process": "poisson", "rate_qps": 1000,
     "profile": {"hourly": [1.0] * 12 + [2.0] * 12, "day_s": 30.0},
     "bursts": {"multiplier": 2, "mean_burst_s": 0.2, "mean_gap_s": 1.0}},
])
def test_drawing_once_and_rescaling_equals_drawing_at_each_rate(arrivals):
    from accelsim.serving.draws import at_rate, draw

    j = _job(arrivals)
    d = draw(j, seed=11)
    for rate in (300.0, 1000.0, 5000.0):
        whole = draw_inputs(j, rate, seed=11)
        once = at_rate(j, d, rate)
        np.testing.assert_array_equal(whole.arrival_s, once.arrival_s)
        np.testing.assert_array_equal(whole.items, once.items)
        np.testing.assert_array_equal(whole.choices, once.choices)

"""The capacity search's cheaper probes give the answers of the plain ones: a judged run
(stopped once its verdict is certain) has the verdict of the whole run's goodput, at every
rate, for one replica and a routed pool, with and without output tokens to judge on TPOT;
the misses allowed are exactly those the goodput fraction tolerates; a search that cannot
win stops and returns None, one that can answers as without a rival; a bracketed search
lands within the plain one's 1 % resolution."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.bisection import drive
from accelsim.llm import search as S
from accelsim.llm.draws import draw
from accelsim.llm.job import LLMJob
from accelsim.llm.pool import models


def _job(count: int = 1, **kw) -> LLMJob:
    base = {
        "replicas": [{"device": "h100-sxm", "model": "llama2-70b", "tp": 4, "count": count}],
        "arrivals": {"rate_qps": 1.0},
        "prompt_tokens": {"dist": "lognormal", "mean": 900, "cv": 1.0, "max": 6000},
        "output_tokens": {"dist": "lognormal", "mean": 150, "cv": 1.0, "max": 1500},
        "slo": {"ttft_ms": 1500, "tpot_ms": 60, "attainment": 0.95},
        "sim": {"requests": 1200, "warmup": 100, "seed": 3, "replications": 2},
    }
    base.update(kw)
    return LLMJob.model_validate(base)


@pytest.mark.parametrize("count", [1, 3])
def test_a_judged_probe_has_the_whole_runs_verdict_at_every_rate(count):
    job = _job(count)
    rms = models(job)
    d = draw(job, job.sim.seed)
    cap = S._cap(job, rms, d)
    verdicts = []
    for f in np.linspace(0.01, 2.0, 41):
        whole = S._attains(job, f * cap, d, rms, "t") >= job.slo.attainment
        assert S._passes(job, f * cap, d, rms, "t") == whole, f
        verdicts.append(whole)
    assert any(verdicts) and not all(verdicts)  # the grid crosses the capacity


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 100_000), st.floats(0.5, 1.0))
def test_the_misses_allowed_are_what_the_goodput_fraction_tolerates(n, target):
    m = S.slo_budget(n, target)
    if n == 0:
        assert m == -1
        return
    ok = np.zeros(n, dtype=bool)
    ok[m:] = True  # m misses
    assert float(ok.mean()) >= target
    if m < n:
        ok[m] = False  # one more
        assert not float(ok.mean()) >= target


def test_a_search_that_cannot_win_stops_and_one_that_can_answers_as_alone():
    job = _job()
    plain = S.capacity(job)
    assert S.search(job, loses=lambda m: m <= 1.2 * plain["max_rps_at_slo"]) is None
    rival = S.search(job, loses=lambda m: m <= 0.8 * plain["max_rps_at_slo"])
    assert rival == plain


def test_a_bracketed_search_lands_within_the_plain_ones_resolution():
    job = _job()
    plain = S.capacity(job)
    for guess in (0.7, 1.0, 1.3):
        near = S.capacity(job, guess=guess * plain["max_rps_at_slo"])
        for a, b in zip(near["per_replication_rps"], plain["per_replication_rps"],
                        strict=True):
            assert a == pytest.approx(b, rel=0.021)


def _plain_order(cap: float):
    """The bisection as it was, probing 1 % of saturation second (the reference)."""
    lo, hi = 0.01 * cap, 2.0 * cap
    if (yield hi):
        return hi
    if not (yield lo):
        return 0.0
    while hi - lo > 0.01 * hi:
        mid = 0.5 * (lo + hi)
        if (yield mid):
            lo = mid
        else:
            hi = mid
    return lo


@pytest.mark.parametrize("slo", [{"ttft_ms": 1500, "tpot_ms": 60, "attainment": 0.95},
                                 {"ttft_ms": 1500, "tpot_ms": 60, "attainment": 0.999},
                                 {"ttft_ms": 300, "tpot_ms": 60, "attainment": 0.99},
                                 {"ttft_ms": 60, "tpot_ms": 20, "attainment": 0.99}])
def test_the_bisection_answers_as_the_plain_order_with_fewer_whole_runs(slo):
    """Deferring the 1 % probe (made only when no higher rate passed) gives the plain
    order's answer per replication, with an SLO the replica meets near saturation, one it
    meets far below it, and one it never meets (answer 0)."""
    job = _job(slo=slo)
    rms = models(job)
    for rep in range(job.sim.replications):
        d = draw(job, job.sim.seed + rep)
        cap = S._cap(job, rms, d)
        asked: list[float] = []

        def passes(rate, d=d, asked=asked):
            asked.append(rate)
            return S._passes(job, rate, d, rms, "t")

        new = drive(S._bisection(cap), passes)
        n_new = len(asked)
        asked.clear()
        assert new == drive(_plain_order(cap), passes)
        assert n_new <= len(asked) + 2  # at most two more probes when none passes
        if new > S.FLOOR_BY * cap:  # a rate passed first: the 1 % probe was not needed
            assert n_new == len(asked) - 1


def test_the_interval_uses_scipy_stats_t_quantile():
    """The 95 % interval's Student t quantile (scipy.special.stdtrit, to spare importing
    scipy.stats) is scipy.stats.t.ppf's exactly."""
    from scipy import special, stats

    for df in range(1, 60):
        assert special.stdtrit(df, 0.975) == stats.t.ppf(0.975, df)


def _driver(job, rms, d):
    """A function that runs a bisection coroutine on replication draw ``d`` (each rate
    judged once, its verdict kept) and gives its answer and the probes it asked for."""
    verdicts: dict[float, bool] = {}

    def passes(rate):
        if rate not in verdicts:
            verdicts[rate] = S._passes(job, rate, d, rms, "t")
        return verdicts[rate]

    def run(gen):
        asked: list[float] = []

        def judged(rate):
            asked.append(rate)
            return passes(rate)

        return drive(gen, judged), len(asked)

    return run


def _replications(slo):
    """Per replication of a job with ``slo``: its saturated rate, a driver
    (:func:`_driver`) and the plain bisection's answer and probe count."""
    job = _job(slo=slo)
    rms = models(job)
    for rep in range(job.sim.replications):
        d = draw(job, job.sim.seed + rep)
        cap = S._cap(job, rms, d)
        run = _driver(job, rms, d)
        yield (cap, run, *run(S._bisection(cap)))


@pytest.mark.parametrize("slo", [{"ttft_ms": 1500, "tpot_ms": 60, "attainment": 0.95},
                                 {"ttft_ms": 300, "tpot_ms": 60, "attainment": 0.99}])
def test_a_guided_bisection_answers_as_the_plain_one(slo):
    """Guided by a guess of the answer (right, 10 % off either way, or far off), with or
    without the pivot below it, the bisection gives the plain one's answer per
    replication; a right guess saves probes."""
    for cap, run, plain, n_plain in _replications(slo):
        for f in (1.0, 0.9, 1.1, 0.3, 1.9):
            for below in (True, False):
                got, n = run(S._guided(cap, f * plain / cap if plain else f, below))
                assert got == plain, (f, below)
                if f == 1.0 and below and plain > 0.1 * cap:
                    assert n < n_plain


def test_a_search_guided_by_a_ratio_answers_as_the_plain_one():
    job = _job()
    plain = S.capacity(job)
    r = plain["max_rps_at_slo"] / S._cap(job, models(job), draw(job, job.sim.seed))
    for f in (0.8, 1.0, 1.25):
        assert S.search(job, ratio=f * r) == plain
        rival = S.search(job, loses=lambda m: m <= 0.8 * plain["max_rps_at_slo"],
                         ratio=f * r)
        assert rival == plain


def test_a_rivals_bar_probed_first_gives_the_same_answer_or_stops_sooner():
    """A rival search told the rate it must beat (``bar``, probed first in every
    replication) answers as without it when it can win, and stops (None) when it cannot,
    after fewer probes than without the bar."""
    job = _job()
    plain = S.capacity(job)
    m = plain["max_rps_at_slo"]
    probes: list[float] = []
    judged = S._passes

    def counted(job, rate, d, rms, file):
        probes.append(rate)
        return judged(job, rate, d, rms, file)

    S._passes = counted
    try:
        for f, ratio in ((0.8, None), (0.8, 1.0), (1.2, None), (1.2, 0.9)):
            runs = {}
            for bar in (None, f * m):
                probes.clear()
                got = S.search(job, loses=lambda x, f=f: x <= f * m, ratio=ratio, bar=bar)
                runs[bar] = (got, len(probes))
            (alone, n_alone), (with_bar, n_bar) = runs[None], runs[f * m]
            assert with_bar == alone, (f, ratio)
            assert (with_bar is None) == (f > 1)
            if f > 1:  # the bar fails in every replication: one probe each
                assert n_bar == job.sim.replications < n_alone
    finally:
        S._passes = judged


@pytest.mark.parametrize("slo", [{"ttft_ms": 1500, "tpot_ms": 60, "attainment": 0.95},
                                 {"ttft_ms": 300, "tpot_ms": 60, "attainment": 0.99}])
def test_a_bisection_with_a_first_probe_answers_as_the_plain_one(slo):
    """Any first probe (below, at, above the answer, outside the bracket), with or without
    a guess, leaves each replication's answer the plain bisection's."""
    for cap, run, plain, _ in _replications(slo):
        for first in (0.005, 0.3, 0.9, 1.0, 1.1, 2.5):
            for ratio in (None, 1.0, 0.5):
                got, _ = run(S._guided(cap, ratio, False, first * (plain or cap)))
                assert got == plain, (first, ratio)

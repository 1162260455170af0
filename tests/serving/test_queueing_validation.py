"""The simulator against closed forms. Tolerances follow from the sample size: with
~2e5 requests at rho <= 0.8 the batch-means standard error of the mean wait is ~1-2 %,
so 5 % (about 3 sigma) on means and 8 % on tail quantiles."""

import math

import numpy as np
import pytest

from accelsim.serving import queueing as Q
from accelsim.serving.job import ServeJob
from accelsim.serving.sim import capacity, simulate

N = 200_000


def job(service: dict, rate: float, replicas: int = 1, seed: int = 11, **extra) -> ServeJob:
    return ServeJob.model_validate({
        "arrivals": {"process": "poisson", "rate_qps": rate},
        "service": {"synthetic": service}, "replicas": replicas,
        "sim": {"requests": N, "warmup": 20_000, "seed": seed}, **extra})


def run(j: ServeJob, engine: str = "fast") -> dict:
    return simulate(j, engine=engine, keep_trace=True).metrics


def test_mm1_mean_wait_and_p99():
    lam, mu = 700.0, 1000.0
    r = simulate(job({"dist": "exponential", "mean_ms": 1.0}, lam), keep_trace=True)
    assert r.metrics["mean_wait_ms"] == pytest.approx(Q.mm1_wait_mean(lam, mu) * 1e3, rel=0.05)
    tr = r.trace.iloc[20_000:]
    wait = (tr.start_s - tr.arrival_s).to_numpy()
    assert np.quantile(wait, 0.99) == pytest.approx(Q.mm1_wait_quantile(lam, mu, 0.99), rel=0.08)
    # sojourn time of M/M/1 is exponential with rate mu - lam
    assert r.metrics["p99_ms"] == pytest.approx(math.log(100) / (mu - lam) * 1e3, rel=0.08)


def test_md1_mean_and_quantile():
    lam, d = 800.0, 1e-3
    r = simulate(job({"dist": "deterministic", "value_ms": 1.0}, lam), keep_trace=True)
    assert r.metrics["mean_wait_ms"] == pytest.approx(Q.md1_wait_mean(lam, d) * 1e3, rel=0.05)
    tr = r.trace.iloc[20_000:]
    wait = (tr.start_s - tr.arrival_s).to_numpy()
    assert np.quantile(wait, 0.95) == pytest.approx(Q.md1_wait_quantile(lam, d, 0.95), rel=0.08)


def test_mg1_pollaczek_khinchine_lognormal():
    lam, mean, cv = 600.0, 1e-3, 1.5
    es2 = mean**2 * (1 + cv**2)
    r = run(job({"dist": "lognormal", "mean_ms": 1.0, "cv": cv}, lam))
    assert r["mean_wait_ms"] == pytest.approx(Q.mg1_wait_mean(lam, mean, es2) * 1e3, rel=0.07)


@pytest.mark.parametrize("c,rho", [(4, 0.75), (16, 0.85)])
def test_mmc_erlang_c(c, rho):
    mu = 1000.0
    lam = rho * c * mu
    r = simulate(job({"dist": "exponential", "mean_ms": 1.0}, lam, replicas=c), keep_trace=True)
    assert r.metrics["mean_wait_ms"] == pytest.approx(Q.mmc_wait_mean(lam, mu, c) * 1e3,
                                                      rel=0.06)
    tr = r.trace.iloc[20_000:]
    wait = (tr.start_s - tr.arrival_s).to_numpy()
    t = 0.5e-3
    assert np.mean(wait > t) == pytest.approx(Q.mmc_p_wait_gt(t, lam, mu, c), rel=0.06)


def test_littles_law_on_the_trace():
    """Time-average number in system, measured by sweeping events, equals lambda * W."""
    r = simulate(job({"dist": "lognormal", "mean_ms": 1.0, "cv": 1.0}, 2500, replicas=3),
                 keep_trace=True)
    tr = r.trace
    events = np.concatenate([tr.arrival_s, tr.finish_s])
    delta = np.concatenate([np.ones(len(tr)), -np.ones(len(tr))])
    order = np.argsort(events, kind="stable")
    t, d = events[order], delta[order]
    in_system = np.cumsum(d)
    t0, t1 = tr.arrival_s.iloc[0], tr.arrival_s.iloc[-1]
    seg = np.diff(t)
    mask = (t[:-1] >= t0) & (t[1:] <= t1)
    L = np.sum(in_system[:-1][mask] * seg[mask]) / (t1 - t0)
    lam = len(tr) / (t1 - t0)
    W = (tr.finish_s - tr.arrival_s).mean()
    assert L == pytest.approx(lam * W, rel=0.01)


def test_capacity_search_matches_mm1_theory():
    # M/M/1 sojourn p99 = ln(100)/(mu - lam) = SLO  ->  lam* = mu - ln(100)/SLO
    j = job({"dist": "exponential", "mean_ms": 1.0}, 500, slo={"p99_ms": 25})
    j = j.model_copy(update={"sim": j.sim.model_copy(update={"requests": 100_000,
                                                             "warmup": 10_000})})
    c = capacity(j)
    theory = 1000 - math.log(100) / 0.025
    assert c["max_qps_at_slo"] == pytest.approx(theory, rel=0.03)
    assert c["ci95_low_qps"] <= c["max_qps_at_slo"] <= c["ci95_high_qps"]


def test_overload_is_detected_not_simulated():
    r = simulate(job({"dist": "exponential", "mean_ms": 1.0}, 1500))
    assert r.metrics["stable"] is False
    assert r.metrics["capacity_qps"] == pytest.approx(1000, rel=0.01)  # 1 / mean of the draws

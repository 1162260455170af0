"""Closed-form queueing results used to validate the simulator (and handy in notebooks).

All times in seconds; ``lam`` arrival rate (1/s), ``mu`` service rate per server (1/s).
References: Kleinrock, Queueing Systems Vol. 1 (1975); Gross & Harris, Fundamentals of
Queueing Theory; Erlang's M/D/1 waiting-time distribution (Crommelin 1932 form).
"""

from __future__ import annotations

import math

from scipy.optimize import brentq


def mm1_wait_mean(lam: float, mu: float) -> float:
    """M/M/1 mean wait in queue: rho / (mu - lam)."""
    rho = lam / mu
    return rho / (mu - lam)


def mm1_wait_quantile(lam: float, mu: float, q: float) -> float:
    """P(W > t) = rho exp(-(mu - lam) t)  ->  t_q = ln(rho / (1 - q)) / (mu - lam)."""
    rho = lam / mu
    if rho <= 1 - q:
        return 0.0
    return math.log(rho / (1 - q)) / (mu - lam)


def mg1_wait_mean(lam: float, es: float, es2: float) -> float:
    """Pollaczek-Khinchine: W_q = lam E[S^2] / (2 (1 - rho))."""
    rho = lam * es
    return lam * es2 / (2 * (1 - rho))


def md1_wait_mean(lam: float, d: float) -> float:
    return mg1_wait_mean(lam, d, d * d)


def md1_wait_cdf(t: float, lam: float, d: float) -> float:
    """Erlang: P(W <= t) = (1-rho) sum_{k=0}^{floor(t/d)} (lam(kd - t))^k / k! e^{-lam(kd - t)}."""
    rho = lam * d
    if t < 0:
        return 0.0
    total = 0.0
    for k in range(math.floor(t / d) + 1):
        x = lam * (k * d - t)  # <= 0
        total += x**k / math.factorial(k) * math.exp(-x)
    return (1 - rho) * total


def md1_wait_quantile(lam: float, d: float, q: float) -> float:
    if md1_wait_cdf(0.0, lam, d) >= q:
        return 0.0
    hi = d
    while md1_wait_cdf(hi, lam, d) < q:
        hi *= 2
    return float(brentq(lambda t: md1_wait_cdf(t, lam, d) - q, 0.0, hi, xtol=1e-12))


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in M/M/c with offered load a = lam/mu (a < c)."""
    term, s = 1.0, 1.0
    for k in range(1, c):
        term *= a / k
        s += term
    last = term * a / c * c / (c - a)
    return last / (s + last)


def mmc_wait_mean(lam: float, mu: float, c: int) -> float:
    """W_q = C(c, a) / (c mu - lam)."""
    return erlang_c(c, lam / mu) / (c * mu - lam)


def mmc_p_wait_gt(t: float, lam: float, mu: float, c: int) -> float:
    """P(W > t) = C(c, a) exp(-(c mu - lam) t)."""
    return erlang_c(c, lam / mu) * math.exp(-(c * mu - lam) * t)

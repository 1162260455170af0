"""Seeded request streams for the scheduler tests: Poisson arrivals, lognormal prompt and
output lengths (at least one token)."""

import numpy as np


def stream(n: int, rate: float, seed: int, pmean: float = 600, omean: float = 120,
           sigma: float = 0.8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    arr = np.cumsum(rng.exponential(1 / rate, n))
    p = np.maximum(rng.lognormal(np.log(pmean), sigma, n).astype(np.int64), 1)
    o = np.maximum(rng.lognormal(np.log(omean), sigma, n).astype(np.int64), 1)
    return arr, p, o

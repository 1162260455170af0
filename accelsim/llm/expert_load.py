"""The busiest device's load in an expert-parallel MoE layer.

An iteration's T tokens each pick top-k of the S expert slots; the slots sit on G devices
(expert parallelism). A balanced placement (EPLB, deepseek-ai/EPLB README at d52c72d:
replicas of heavy experts packed so the devices' *estimated* loads are equal, the loads
predicted from "moving average of historical statistics"; DeepSeek-V3, arXiv 2412.19437
section 3.4: redundant experts chosen from online load statistics and adjusted
periodically) equalises the devices' loads in expectation only: the tokens of one
iteration are a sample, and each device's count of the T k routed copies is multinomial
with mean and standard deviation

    mu = T k / G,    sigma = sqrt(mu (1 - 1/G)).

The layer waits for its busiest device (the combine all-to-all completes when the last
device's experts finish), whose expected load is, by the normal approximation of the
counts (treated as independent),

    E[max] ~ mu + z_G sigma,   z_G = E[max of G standard normals]

(z_2 = 1/sqrt(pi), z_3 = 3 / (2 sqrt(pi)); z_G ~ sqrt(2 ln G) for large G, which
overstates it at G in the hundreds: z_160 = 2.67, sqrt(2 ln 160) = 3.2). Huawei's
CloudMatrix384 paper (Zuo et al., arXiv 2506.12708v2, Table 3) measures the cost of an
imbalanced placement (default EPLB 5,655 against perfect 6,688 prefill tokens/s per NPU);
this module is only the floor that sampling leaves under a perfect one.

ASSUMPTION: routing is random at the placement's expected loads (each copy lands on a
device uniformly and independently). Rows published as "perfect EPLB" / "simulated
perfectly balanced" routing balance the expected loads; they still carry this per-iteration
sampling noise unless the benchmark forces an exactly even split per iteration, which
none of the sources says. Correlated routing (similar tokens, node-limited routing) would
add to it; it is not modelled.

Without expert parallelism (a tensor-parallel MoE layer: every device runs every expert's
tokens) no device waits for another, but the grouped GEMM tiles each expert's rows
separately, so an expert's sampled count m pays its own partial tile: the layer computes
sum_e ceil(m_e / tile) row tiles, E[ceil(m / tile)] per expert for m ~ Binomial(T, k/S)
(:func:`expected_row_tiles`), not the tiles of the mean count.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def expected_max_std_normal(g: int) -> float:
    """E[max of g independent standard normals]: the integral of x d/dx Phi(x)^g, by the
    trapezoid rule on [-10, 10] in steps of 0.01 (exact to ~1e-9 for g up to thousands; 0
    for g = 1, 1/sqrt(pi) for g = 2)."""
    if g <= 1:
        return 0.0
    x = np.linspace(-10.0, 10.0, 2001)
    phi = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    dens = g * phi * cdf ** (g - 1)
    f = x * dens
    return float(np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(x)))


def busiest_device_load(mean: np.ndarray | float, devices: int) -> np.ndarray:
    """Expected load of the busiest of ``devices`` devices whose counts of routed token
    copies have mean ``mean`` each (multinomial over equal shares): mean + z_G sqrt(mean
    (1 - 1/G)) (module docstring), never more than all G x mean copies."""
    mu = np.asarray(mean, dtype=float)
    if devices <= 1:
        return mu.copy()
    sigma = np.sqrt(np.maximum(mu, 0.0) * (1.0 - 1.0 / devices))
    return np.minimum(mu + expected_max_std_normal(devices) * sigma, devices * mu)


def expected_row_tiles(tokens: np.ndarray | float, share: float,
                       tile: np.ndarray | float) -> np.ndarray:
    """Expected output-row tiles of one expert in a grouped GEMM, E[ceil(m / tile)], when
    each of ``tokens`` tokens routes a copy to it with probability ``share`` (top-k of S
    slots: k / S), so that its count m is Binomial(tokens, share).

    A grouped GEMM cuts each expert's rows into tiles of its own (TensorRT-LLM's MoE
    grouped GEMM: ceil(m_e / tile_m) row tiles per expert; vLLM's fused_moe pads each
    expert's rows to a multiple of BLOCK_SIZE_M in moe_align_block_size), so the layer
    computes sum_e ceil(m_e / tile) tiles: with m_e at its mean the rounding is that of
    the mean alone, with m_e drawn per iteration every expert pays its own partial tile.
    E[ceil(m / t)] = sum_{j >= 0} P(m > j t); the normal approximation with continuity
    correction where sd(m) >= 6, the binomial's exact sum below (within 5e-3 tiles of
    the exact sum everywhere). 0 at 0 tokens; the
    probability an expert is touched, 1 - (1 - share)^tokens, at tile >= tokens. ``tile``:
    one height, or one per element of ``tokens``."""
    T = np.atleast_1d(np.asarray(tokens, dtype=float))
    t = np.broadcast_to(np.asarray(tile, dtype=float), T.shape)
    mu = T * share
    sd = np.sqrt(mu * (1.0 - share))
    j0 = np.floor(np.maximum(mu - 8.0 * sd, 0.0) / t)
    width = int(np.ceil(16.0 * float(np.max(sd / t, initial=0.0)))) + 2
    edge = (j0[:, None] + np.arange(width)[None, :]) * t[:, None]
    tail = normal_sf((edge + 0.5 - mu[:, None]) / np.maximum(sd[:, None], 1e-12))
    out = j0 + tail.sum(axis=1)
    small = sd < 6.0
    if small.any():
        out[small] = _exact_row_tiles(T[small], share, t[small])
    return out


def _exact_row_tiles(T: np.ndarray, share: float, tile: np.ndarray) -> np.ndarray:
    """E[ceil(m / tile)] = sum_j P(m > j tile) from the binomial's pmf, by the recursion
    pmf(m + 1) = pmf(m) (T - m) / (m + 1) p / (1 - p) from (1 - p)^T, up to the mean plus
    60 (these rows have sd < 6: the tail beyond ten of them is below 1e-20) and one tile."""
    if share >= 1.0:
        return np.ceil(T / tile)
    top = int(np.ceil(float(np.max(T * share)))) + 60 + int(np.max(tile))
    m = np.arange(top + 1, dtype=float)
    ratio = np.maximum(T[:, None] - m[None, :-1], 0.0) / (m[None, 1:]) * (share / (1.0 - share))
    pmf = np.concatenate([np.ones((len(T), 1)), np.cumprod(ratio, axis=1)], axis=1)
    pmf *= ((1.0 - share) ** T)[:, None]
    cdf = np.cumsum(pmf, axis=1)
    out = np.zeros(len(T))
    for j in range(int(np.ceil(top / float(np.min(tile)))) + 1):
        x = j * tile
        inside = x <= top
        idx = np.minimum(x, top).astype(int)
        out += np.where(inside, np.maximum(1.0 - cdf[np.arange(len(T)), idx], 0.0), 0.0)
    return out


def normal_sf(z: np.ndarray) -> np.ndarray:
    """P(Z > z) for a standard normal, 0.5 erfc(z / sqrt 2), by Abramowitz and Stegun's
    7.1.26 for erfc (absolute error under 1.5e-7), in numpy alone."""
    x = np.abs(np.asarray(z, dtype=float)) / math.sqrt(2.0)
    u = 1.0 / (1.0 + 0.3275911 * x)
    poly = u * (0.254829592 + u * (-0.284496736 + u * (1.421413741 + u * (-1.453152027
                                                                        + u * 1.061405429))))
    half = 0.5 * poly * np.exp(-x * x)
    return np.where(np.asarray(z) >= 0.0, half, 1.0 - half)

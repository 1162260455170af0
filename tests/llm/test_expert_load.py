"""The busiest device's sampled load in an expert-parallel layer
(:mod:`accelsim.llm.expert_load`): the normal order statistic by hand, against a seeded
Monte-Carlo of multinomial routing, and its place in the EP layer's cost; the expected
row tiles of a grouped GEMM's experts against the binomial's exact sum, and their place in
the tensor-parallel MoE layer's cost."""

import math

import numpy as np
import pytest

from accelsim.devices import load_device
from accelsim.llm.expert_load import (
    busiest_device_load,
    expected_max_std_normal,
    expected_row_tiles,
)
from accelsim.llm.job import Replica
from accelsim.llm.perf import _layer_costs, _routing
from accelsim.transformer.model import load_model


def test_expected_max_of_normals_by_hand():
    """E[max(Z1, Z2)] = 1/sqrt(pi), E[max(Z1, Z2, Z3)] = 3 / (2 sqrt(pi)) (closed forms);
    one device has no excess; Harter's table (1961) gives 1.16296 for 5 and 1.53875 for 10;
    for large G it grows like, and stays below, sqrt(2 ln G)."""
    assert expected_max_std_normal(1) == 0.0
    assert expected_max_std_normal(2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-7)
    assert expected_max_std_normal(3) == pytest.approx(1.5 / math.sqrt(math.pi), rel=1e-7)
    assert expected_max_std_normal(5) == pytest.approx(1.16296, abs=1e-5)
    assert expected_max_std_normal(10) == pytest.approx(1.53875, abs=1e-5)
    zs = [expected_max_std_normal(g) for g in (8, 32, 160, 1000)]
    assert zs == sorted(zs)
    for g, z in zip((8, 32, 160, 1000), zs, strict=True):
        assert 0.65 * math.sqrt(2 * math.log(g)) < z < math.sqrt(2 * math.log(g))


def test_busiest_load_by_hand():
    """Two devices, 200 copies: mu = 100, sigma = sqrt(100 x 1/2) = 7.07, E[max] = 100 +
    7.07 / sqrt(pi) = 103.99; never above all the copies; one device carries the mean."""
    assert float(busiest_device_load(100.0, 2)) == pytest.approx(
        100 + math.sqrt(50) / math.sqrt(math.pi), rel=1e-9)
    assert float(busiest_device_load(1e-4, 160)) <= 160 * 1e-4
    assert float(busiest_device_load(7.0, 1)) == 7.0


@pytest.mark.parametrize("tokens,k,devices", [(2560, 8, 160), (35840, 8, 160),
                                              (18432, 8, 72), (4096, 8, 32), (400, 8, 16)])
def test_busiest_load_against_multinomial_monte_carlo(tokens, k, devices):
    """Seeded Monte-Carlo: the T k copies multinomial over G equal devices, 4,000
    iterations; the formula's expected maximum within 2 % of the sampled mean maximum (its
    normal approximation neglects the counts' skew, 1/sqrt(mu), and their negative
    correlation, -1/G; both are small at these loads), and the excess over the mean within
    12 %."""
    rng = np.random.default_rng(20261207)
    n = tokens * k
    counts = rng.multinomial(n, np.full(devices, 1.0 / devices), size=4000)
    sampled = counts.max(axis=1).mean()
    mu = n / devices
    model = float(busiest_device_load(mu, devices))
    assert model == pytest.approx(sampled, rel=0.02)
    assert model - mu == pytest.approx(sampled - mu, rel=0.12)


def test_ep_layer_waits_for_the_busiest_device(monkeypatch):
    """With tokens routed over 16 devices (dp 16) the expert GEMMs run the busiest device's
    copies, (mu + z_16 sigma) / mu times the even spread's at T = 4,096, and the all-to-all
    carries its excess: both cost more than with the sampling switched off (every device at
    the mean). Under pure tensor parallelism (dp 1, no all-to-all) nothing changes."""
    from accelsim.llm import perf

    ds = load_model("deepseek-v3")
    h100 = load_device("h100-sxm").spec
    T = np.array([4096.0])
    S, k = ds.moe.experts + 32, ds.moe.top_k
    even, slots = _routing(T, S, k, 16, None)
    busy, slots2 = _routing(T, S, k, 16, None, sampled=True)
    mu = 4096 * k / 16
    ratio = (mu + expected_max_std_normal(16) * math.sqrt(mu * 15 / 16)) / mu
    assert busy[0] / even[0] == pytest.approx(ratio, rel=1e-12)
    assert slots2[0] == slots[0]

    base = {"device": "h100-sxm", "model": "deepseek-v3", "weights": "fp8",
            "redundant_experts": 32, "max_batched_tokens": 4096, "max_seqs": 4096}
    args = (h100, ds, h100.flops("fp8"), h100.flops("bf16"), 1.0)
    ep_layer = _layer_costs(T, Replica(**base, dp=16), *args)
    tp_layer = _layer_costs(T, Replica(**base, tp=8), *args)
    monkeypatch.setattr(perf.expert_load, "busiest_device_load",
                        lambda mean, devices: np.asarray(mean, dtype=float))
    ep_even = _layer_costs(T, Replica(**base, dp=16), *args)
    tp_even = _layer_costs(T, Replica(**base, tp=8), *args)
    assert ep_layer[2][0] > ep_even[2][0]  # experts
    assert ep_layer[3][0] > ep_even[3][0] and ep_layer[4][0] > ep_even[4][0]  # all-to-all
    assert ep_layer[1][0] == ep_even[1][0]  # attention side untouched
    for got, want in zip(tp_layer, tp_even, strict=True):
        assert got[0] == want[0]


@pytest.mark.parametrize(("share", "tile"), [(2 / 8, 128.0), (2 / 8, 64.0), (8 / 288, 128.0),
                                             (2 / 8, 256.0)])
def test_expected_row_tiles_against_the_binomial_sum(share, tile):
    """E[ceil(m / tile)] for m ~ Binomial(T, share), summed over the binomial's pmf by hand:
    within 2e-3 tiles from 0 to 20,000 tokens (the normal tail with continuity correction
    where sd >= 6, the exact sum below); 0 at no tokens."""
    from scipy.stats import binom

    T = np.array([0, 1, 7, 50, 333, 400, 875, 3500, 8192, 20000], dtype=float)
    got = expected_row_tiles(T, share, tile)
    for t, g in zip(T, got, strict=True):
        m = np.arange(int(t) + 1)
        want = float(np.sum(np.ceil(m / tile) * binom.pmf(m, int(t), share)))
        assert g == pytest.approx(want, abs=2e-3)
    assert got[0] == 0.0


def test_expected_row_tiles_limits():
    """Fewer tokens than a tile: one tile when the expert is touched, 1 - (1 - p)^T; a
    spread much wider than a tile: the integer count's remainder is uniform over the tile's
    rows, mu / tile + (tile - 1) / (2 tile); Mixtral's
    8 experts at ~3,500 tokens (875 rows each, sd 25.6): 7.20 tiles where the mean alone
    rounds to 7."""
    p = 0.25
    small = expected_row_tiles(np.array([1.0, 5.0, 20.0]), p, 128.0)
    assert small == pytest.approx(1 - (1 - p) ** np.array([1.0, 5.0, 20.0]), rel=1e-9)
    T = 400_000.0
    wide = expected_row_tiles(T, p, 16.0)[0]
    assert wide == pytest.approx(T * p / 16.0 + 15.0 / 32.0, abs=1e-3)
    assert expected_row_tiles(3500.0, p, 128.0)[0] == pytest.approx(7.2004, abs=1e-3)


def test_tp_moe_layer_runs_the_expected_tiles(monkeypatch):
    """Mixtral 8x7B at TP 1 (every expert on the device): the expert side is one grouped GEMM
    per weight over the 8 experts' padded rows, 8 x 128 x E[ceil(m / 128)]: with the
    expected 7.2 tiles a expert it costs what :func:`grouped_gemm` says of the extra rows
    over 7 whole tiles an expert, and lies between the 7- and 8-tile layers (everything else
    in the layer unchanged)."""
    from accelsim.llm import perf

    mx = load_model("mixtral-8x7b")
    h100 = load_device("h100-sxm").spec
    r = Replica(device="h100-sxm", model="mixtral-8x7b", weights="fp8", max_batched_tokens=8192,
                max_seqs=896)
    peak = h100.flops("fp8")
    args = (h100, mx, peak, h100.flops("bf16"), 1.0)
    T = np.array([3500.0])
    q = expected_row_tiles(T, 2 / 8, h100.tile_m)[0]
    real = _layer_costs(T, r, *args)
    fixed = {}
    for n in (7.0, 8.0):
        monkeypatch.setattr(perf.expert_load, "expected_row_tiles",
                            lambda tokens, share, tile, n=n: np.full(len(tokens), n))
        fixed[n] = _layer_costs(T, r, *args)

    def experts(tiles: float) -> float:
        rows = np.array([8 * 128 * tiles])
        return float(perf.grouped_gemm(rows, 8.0, 4096, 2 * 14336, 1.0, peak, h100)[0]
                     + perf.grouped_gemm(rows, 8.0, 14336, 4096, 1.0, peak, h100)[0])

    assert real[2][0] - fixed[7.0][2][0] == pytest.approx(experts(q) - experts(7.0), rel=1e-9)
    assert fixed[8.0][2][0] > real[2][0] > fixed[7.0][2][0]
    assert real[1][0] == fixed[7.0][1][0]


def test_moe_row_tile_follows_the_batch():
    """The grouped GEMM's row tile: the power of two at or above twice an expert's mean
    rows, within [16, the device tile] (vLLM's tuned fused_moe configs for Mixtral on H100:
    BLOCK_SIZE_M 64 at 128 tokens, 128 from 256; top-2 of 8 gives an expert a quarter of
    the tokens); and the expected tiles take one tile height per token count."""
    from accelsim.llm.perf import moe_row_tile

    tokens = np.array([0.0, 8.0, 128.0, 256.0, 3500.0])
    assert list(moe_row_tile(tokens / 4, 128.0)) == [16.0, 16.0, 64.0, 128.0, 128.0]
    tiles = moe_row_tile(tokens / 4, 128.0)
    one_by_one = [expected_row_tiles(t, 0.25, h)[0] for t, h in zip(tokens, tiles, strict=True)]
    assert expected_row_tiles(tokens, 0.25, tiles) == pytest.approx(one_by_one, abs=1e-12)

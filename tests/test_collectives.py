import numpy as np
import pytest

from accelsim import collectives as c


def test_ring_allreduce_formula():
    # 2 (n-1)/n M/bw + 2 (n-1) alpha
    assert c.ring_allreduce(8e9, 8, 100e9, 5e-6) == pytest.approx(2 * 7 / 8 * 0.08 + 14 * 5e-6)


def test_reduce_scatter_plus_all_gather_is_all_reduce():
    M, n, bw, a = 3e8, 16, 50e9, 1e-5
    assert c.reduce_scatter(M, n, bw, a) + c.all_gather(M, n, bw, a) == pytest.approx(
        c.ring_allreduce(M, n, bw, a))


def test_single_rank_costs_nothing():
    for f in (c.ring_allreduce, c.tree_allreduce, c.reduce_scatter, c.all_to_all):
        assert f(1e9, 1, 1e9, 1e-5) == 0.0


def test_tree_beats_ring_on_latency_for_small_messages():
    assert c.tree_allreduce(1e3, 1024, 25e9, 1e-5) < c.ring_allreduce(1e3, 1024, 25e9, 1e-5)


def test_hierarchical_uses_fast_link_inside_domain():
    # 64 ranks, 8 per domain: inside RS/AG at 300 GB/s, across 8 domains at 25 GB/s on M/8
    M = 1e9
    t = c.hierarchical_allreduce(M, 8, 8, 300e9, 0.0, 25e9, 0.0)
    expect = 2 * (7 / 8) * M / 300e9 + 2 * (7 / 8) * (M / 8) / 25e9
    assert t == pytest.approx(expect)
    flat = c.ring_allreduce(M, 64, 25e9, 0.0)
    assert t < flat


def test_group_inside_domain_uses_scaleup():
    t = c.group_allreduce(1e9, 8, 1, 8, 300e9, 0.0, 25e9, 0.0)
    assert t == pytest.approx(2 * 7 / 8 * 1e9 / 300e9)


def test_vectorized():
    n = np.array([1, 2, 4, 8])
    out = c.ring_allreduce(1e9, n, 1e11, 0.0)
    assert out.shape == (4,) and out[0] == 0 and np.all(np.diff(out) > 0)


def _by_primitives(M, n, stride, domain, bw_in, a_in, bw_out, a_out, bw_red=0.0, lat_red=0.0):
    """group_allreduce as its docstring states it, from the primitive collectives: inside a
    domain NCCL's all-reduce (ring, or NVLS when the fabric reduces in the switch)."""
    n = np.asarray(n, dtype=float)
    g = np.clip(np.floor(np.asarray(domain, dtype=float) / stride), 1.0, n)
    k = np.ceil(n / g)
    local = c.ring_allreduce(M, n, bw_in, a_in)
    if bw_red > 0:
        local = np.minimum(local, c.in_switch_allreduce(M, n, bw_red, lat_red))
    flat = np.minimum(c.ring_allreduce(M, n, bw_out, a_out),
                      c.tree_allreduce(M, n, bw_out, a_out))
    hier = c.hierarchical_allreduce(M, g, k, bw_in, a_in, bw_out, a_out)
    return np.where(k <= 1, local, np.minimum(flat, hier))


def test_group_terms_give_group_allreduce_bit_for_bit():
    """Terms of a group computed once and reused for several buffers (the batch API's dense
    and expert gradients): the same numbers as the ring, tree and hierarchical all-reduces
    group_allreduce chooses among, on arrays and on floats; group_allreduce is the same."""
    rng = np.random.default_rng(3)
    n = rng.choice([1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 512.0], 200)
    stride = rng.choice([1.0, 2.0, 4.0, 8.0], 200)
    domain = rng.choice([8.0, 72.0, 384.0], 200)
    a_in, a_out = 2e-6, rng.uniform(5e-6, 2e-5, 200)
    gt = c.GroupTerms(n, stride, domain, a_in, a_out)
    for M in (rng.uniform(1e6, 1e11, 200), 3e9):
        want = _by_primitives(M, n, stride, domain, 4e11, a_in, 5e10, a_out)
        assert np.array_equal(c.group_allreduce_terms(M, gt, 4e11, 5e10), want)
        assert np.array_equal(c.group_allreduce(M, n, stride, domain, 4e11, a_in, 5e10, a_out),
                              want)
    for i in range(0, 200, 17):
        one = c.GroupTerms(float(n[i]), float(stride[i]), float(domain[i]), a_in,
                           float(a_out[i]))
        want = float(_by_primitives(2e9, float(n[i]), float(stride[i]), float(domain[i]),
                                    4e11, a_in, 5e10, float(a_out[i])))
        assert c.group_allreduce_terms(2e9, one, 4e11, 5e10) == want


def test_group_terms_with_in_switch_reduction_bit_for_bit():
    """With NVLS on the scale-up fabric, group_allreduce inside a domain is nccl_allreduce
    (the faster of ring and NVLS: the serving engines' and the topologies' model), across
    domains unchanged."""
    rng = np.random.default_rng(5)
    n = rng.choice([1.0, 2.0, 4.0, 8.0, 16.0, 64.0], 100)
    stride = rng.choice([1.0, 2.0, 4.0, 8.0], 100)
    domain = rng.choice([8.0, 72.0], 100)
    a_in, a_out = 2.25e-6, rng.uniform(5e-6, 2e-5, 100)
    gt = c.GroupTerms(n, stride, domain, a_in, a_out)
    M = rng.uniform(1e5, 1e10, 100)
    want = _by_primitives(M, n, stride, domain, 3.4e11, a_in, 5e10, a_out, 3.05e11, 72e-6)
    assert np.array_equal(c.group_allreduce_terms(M, gt, 3.4e11, 5e10, 3.05e11, 72e-6), want)
    inside = n * stride <= domain
    assert np.array_equal(want[inside], c.nccl_allreduce(M, n, 3.4e11, a_in, 3.05e11,
                                                         72e-6)[inside])
    # without in-switch reduction: the ring
    assert np.array_equal(c.nccl_allreduce(M, n, 3.4e11, a_in), c.ring_allreduce(M, n, 3.4e11,
                                                                                 a_in))

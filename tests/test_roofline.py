import numpy as np
import pytest

from accelsim.roofline import gemm_bytes, gemm_flops, gemm_time


def test_large_gemm_is_compute_bound_with_the_size_curve():
    # 8192^3 on a 312 TFLOP/s, 2 TB/s device at 70 %/80 % efficiency, F_half 0.6 GFLOP
    t = gemm_time(8192, 8192, 8192, 2, 312e12, 0.7, 0.6e9, 2e12, 0.8)
    F = gemm_flops(8192, 8192, 8192)
    assert float(t) == pytest.approx((F + 0.6e9) / (312e12 * 0.7))


def test_skinny_gemm_is_memory_bound():
    # batch 1 through a 4096 x 4096 fp32 layer: 64 MiB of weights dominate
    t = gemm_time(1, 4096, 4096, 4, 312e12, 0.7, 0.6e9, 2e12, 0.8)
    B = gemm_bytes(1, 4096, 4096, 4)
    assert float(t) == pytest.approx(B / (2e12 * 0.8))
    assert float(B) == pytest.approx(4 * (4096 + 4096 * 4096 + 4096))


def test_vectorized_and_monotone_in_batch():
    m = np.array([1, 8, 64, 512, 4096])
    t = gemm_time(m, 1024, 1024, 2, 1e15, 0.7, 1e9, 3e12, 0.8)
    assert t.shape == (5,) and np.all(np.diff(t) >= 0)
    assert np.all(np.diff(t / m) < 0)  # per-row cost falls as the batch grows

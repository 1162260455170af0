"""Roofline time of one kernel, shared by the training and serving models (numpy-vectorized).

GEMM of (m x k) @ (k x n):
  FLOPs  F = 2 m k n
  bytes  B = e (m k + k n + m n)            (inputs read once, output written once)
  time   t = max( (F + F_half) / (peak * eff_compute),  B / (mem_bw * eff_memory) )

The first term is the efficiency-vs-size curve eff(F) = eff_c * F / (F + F_half): small
GEMMs run far below peak (wave quantisation, prologue/epilogue). The second bounds GEMMs
that stream more bytes than they compute on (small batches, large weights: serving MLPs).
Williams, Waterman & Patterson, "Roofline", CACM 2009.
"""

from __future__ import annotations

from typing import Any

from accelsim import xp

# Flash-attention kernels run below cuBLAS GEMM efficiency: FlashAttention-2 reaches
# 50-73 % of A100 peak forward and up to 63 % backward, against ~80-85 % for large
# GEMMs (Dao 2023, arXiv 2307.08691, sections 4.1). Ratio taken as 0.8.
FLASH_REL_EFF = 0.8
# Flash-attention backward executes 5 matmuls of the forward's 2 (it recomputes P).
FLASH_BWD_FACTOR = 2.5
# Causal masking lets flash attention skip half of the score blocks.
FLASH_CAUSAL_FRACTION = 0.5

def gemm_flops(m: Any, k: Any, n: Any) -> Any:
    return 2.0 * xp.asarray(m, dtype=float) * k * n


def gemm_bytes(m: Any, k: Any, n: Any, elem_bytes: Any) -> Any:
    m = xp.asarray(m, dtype=float)
    return elem_bytes * (m * k + k * n + m * n)


def gemm_time(m: Any, k: Any, n: Any, elem_bytes: Any, peak_flops: Any, eff_compute: Any,
              half_flop: Any, mem_bw_Bps: Any, eff_memory: Any) -> Any:
    """Seconds for one GEMM: the slower of compute (with the size curve) and memory."""
    compute = (gemm_flops(m, k, n) + half_flop) / (peak_flops * eff_compute)
    memory = gemm_bytes(m, k, n, elem_bytes) / (mem_bw_Bps * eff_memory)
    return xp.maximum(compute, memory)


def memory_time(nbytes: Any, mem_bw_Bps: Any, eff_memory: Any) -> Any:
    """Seconds for a memory-bound kernel that moves ``nbytes``."""
    return xp.asarray(nbytes, dtype=float) / (mem_bw_Bps * eff_memory)

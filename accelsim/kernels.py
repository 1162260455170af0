"""Kernel-level time of GEMMs and flash attention on any device profile (numpy-vectorised,
or Python floats for one configuration through :mod:`accelsim.xp`).

GEMM ``C[m, n] = A[m, k] B[k, n]`` on ``U`` compute units (SMs, AI cores):

  tiles      the kernel cuts C into output tiles of tm x tn; it has ceil(m/tm) ceil(n/tn)
             of them (tile quantisation: a partial tile costs a whole one)
  waves      the tiles run U at a time: ceil(tiles / U) waves (wave quantisation: a last
             wave of a few tiles costs a whole wave)
  one tile   2 tm tn (k + K_PROLOGUE) / (r P_u) + tm tn e_out / B_u: the mainloop at the
             unit's sustained rate P_u = peak eff_c / U, slowed by r for a tile smaller than
             the device's (operand reuse tm tn / (tm + tn) below REUSE_SAT of the device
             tile's: the unit waits on its operand feed), plus the epilogue writing the
             tile at the unit's share of memory bandwidth B_u = bw eff_m / U
  split-K    with fewer tiles than units the K loop is split S = floor(U / tiles) ways
             (at most k / SPLIT_K_MIN): tiles x S work items on k / S each, plus the
             reduction of S partial fp32 outputs (2 S m n 4 bytes at bw eff_m)
  stream-K   with a library that has it (``stream_k``), the tiles' K iterations are dealt
             evenly over the units: tiles / U x one tile + one partial-tile fixup (fp32
             tile written and read, tm tn 8 bytes at B_u): no wave quantisation
             (Osama et al., "Stream-K", PPoPP 2023; CUTLASS 3's Hopper tile schedulers)
  compute    waves x one tile (+ the reduction), the best of the candidate tiles TILES,
             split or not (what a library's heuristic picks: smaller tiles for small or
             skinny GEMMs, split-K for small outputs with a long K)
  memory     e_in (m k + k n) + e_out m n bytes at bw eff_m (the roofline per shape)
  time       max(compute, memory) + launch

Flash attention (forward), per (batch, head), s_q queries against s_kv keys of head dim d:

  FLOPs      4 s_q s_kv d (half of it under a causal mask)
  rate       peak x A x [(128 + D0) / 128] d / (d + D0) x n / (n + C0) x mask: the softmax's
             exponentials cost D0 head-dims of matmul per score; each query block visits
             n key blocks (N = s_kv / ATTN_BLOCK; (N + 1) / 2 when causal) after a fixed
             cost of C0 blocks (load Q, write O); under a causal mask the diagonal blocks
             are computed whole but counted half, mask = N / (N + 1). ``A`` is the
             device's ``efficiency.attention``: the kernel's forward rate at head dim 128
             on long non-causal sequences, as a fraction of dense peak
  backward   BWD_FLOP_FACTOR x the forward FLOPs at ``efficiency.attention_backward``
             of the forward's rate

Sources: tile and wave quantisation, NVIDIA "Matrix Multiplication Background User's Guide"
(docs.nvidia.com/deeplearning/performance/dl-performance-matrix-multiplication); the
attention constants were fitted on FlashAttention-3's H100 BF16 forward sweep
(tests/data/kernels/fa3-h100-bf16-fwd.csv; Shah et al. 2024, arXiv 2407.08608, Figure 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from accelsim import xp

# Candidate tiles relative to the device's (tile_m, tile_n): the device's own, half as tall
# and twice as wide (64 x 256 on a 128 x 128 device: skinny m at full rate), half as tall or
# wide, a quarter of it (more tiles to fill the units): cuBLAS/CUTLASS/DeepGEMM heuristics
# pick among such shapes.
TILES = ((1.0, 1.0), (0.5, 2.0), (0.5, 1.0), (1.0, 0.5), (0.5, 0.5))
# A tile keeps the unit at its full rate while its operand reuse tm tn / (tm + tn) is at
# least this fraction of the device tile's (assumption: on Hopper the 64 x 256 warpgroup
# tile, wgmma m64n256, runs at the 128 x 128 tile's rate; 64 x 128 at 0.83 of it).
REUSE_SAT = 0.8
# Shortest K slice a split-K kernel gives one work item (assumption: two 128-deep k-blocks
# per slice keep the mainloop pipelined; cuBLAS and CUTLASS split into slices of this order).
SPLIT_K_MIN = 256.0
# Pipeline fill before a tile's mainloop runs at rate, in k elements (two 64-deep k-blocks
# of a multistage pipeline; assumption).
K_PROLOGUE = 128.0
# Flash attention: key block per iteration (FA2/FA3 use 64-176; 128 at head dim 128).
ATTN_BLOCK = 128.0
# Softmax cost in head-dims of matmul per score, and the per-query-block fixed cost in key
# blocks; fitted on FA3's H100 BF16 forward sweep (head dim 64 and 128, causal and not).
ATTN_D0 = 80.0
ATTN_C0 = 2.2
# Flash-attention backward runs 5 matmuls of the forward's 2 (it recomputes P): 2.5x FLOPs.
BWD_FLOP_FACTOR = 2.5


def gemm_compute_time(m: Any, n: Any, k: Any, out_bytes: Any, peak: Any, eff: Any,
                      units: Any, tile_m: Any, tile_n: Any, mem_bw: Any, eff_mem: Any,
                      stream_k: Any = 0.0) -> Any:
    """Seconds of the tiles (module docstring: tiles, waves, split-K, stream-K; the best
    candidate). Arrays: the candidates along a leading axis, one pass of numpy; floats:
    plain Python (a single estimate)."""
    if (type(m) is float and type(n) is float and type(k) is float
            and type(out_bytes) is float and type(peak) is float and type(eff) is float
            and type(units) is float and type(tile_m) is float and type(tile_n) is float
            and type(mem_bw) is float and type(eff_mem) is float
            and type(stream_k) is float):
        return _compute_one(m, n, k, out_bytes, peak, eff, units, tile_m, tile_n, mem_bw,
                            eff_mem, stream_k)
    args = (m, n, k, out_bytes, peak, eff, units, tile_m, tile_n, mem_bw, eff_mem, stream_k)
    if not any(isinstance(a, np.ndarray) for a in args):
        return _compute_one(*(float(a) for a in args))
    m, n, k, out_bytes, peak, eff, units, tile_m, tile_n, mem_bw, eff_mem, stream_k = (
        np.asarray(a, dtype=float) for a in args)
    if m.ndim == 1 and len(m) >= GROUPED_MIN and all(
            a.ndim == 0 for a in (n, k, out_bytes, peak, eff, units, tile_m, tile_n, mem_bw,
                                  eff_mem, stream_k)):
        return _compute_grouped(m, n, k, out_bytes, peak, eff, units, tile_m, tile_n, mem_bw,
                                eff_mem, stream_k)
    p_u = peak * eff / units
    b_u = mem_bw * eff_mem / units
    lead = (-1,) + (1,) * max(a.ndim for a in (m, n, k, units, tile_m, tile_n, stream_k))
    if (tile_m.ndim == 0 or tile_m.min() == tile_m.max()) and (
            tile_n.ndim == 0 or tile_n.min() == tile_n.max()):
        # one device tile (the usual batch): the candidates' constants once
        c = np.array(_candidates(float(tile_m.flat[0]), float(tile_n.flat[0])))
        tm, tn, r = (c[:, i].reshape(lead) for i in range(3))
    else:
        i0 = tile_m * tile_n / (tile_m + tile_n)
        tm, tn = tile_m * _FM.reshape(lead), tile_n * _FN.reshape(lead)  # (candidates, ...)
        r = np.minimum(tm * tn / (tm + tn) / (REUSE_SAT * i0), 1.0)
    area = tm * tn
    tiles = np.ceil(m / tm - 1e-9) * np.ceil(n / tn - 1e-9)
    per = 2.0 * area * (k + K_PROLOGUE) / (r * p_u)
    t = np.ceil(tiles / units - 1e-9) * (per + area * out_bytes / b_u)
    if (tiles < units).any():  # split-K candidates
        split = np.minimum(np.maximum(np.floor(units / np.maximum(tiles, 1.0)), 1.0),
                           np.maximum(np.floor(k / SPLIT_K_MIN), 1.0))
        t_split = (np.ceil(tiles * split / units - 1e-9)
                   * (2.0 * area * (k / split + K_PROLOGUE) / (r * p_u) + area * 4.0 / b_u)
                   + 2.0 * split * m * n * 4.0 / (mem_bw * eff_mem))
        t = np.where(split > 1, np.minimum(t, t_split), t)
    if (stream_k > 0).any():
        t_sk = tiles / units * per + area * (out_bytes + 8.0) / b_u
        t = np.where(stream_k > 0, np.minimum(t, t_sk), t)
    return t.min(axis=0)


# Arrays of m this long (one GEMM shape, a cost table's token counts) take
# :func:`_compute_grouped`.
GROUPED_MIN = 64


def _compute_grouped(m: np.ndarray, n: np.ndarray, k: np.ndarray, out_bytes: np.ndarray,
                     peak: np.ndarray, eff: np.ndarray, units: np.ndarray,
                     tile_m: np.ndarray, tile_n: np.ndarray, mem_bw: np.ndarray,
                     eff_mem: np.ndarray, stream_k: np.ndarray) -> np.ndarray:
    """:func:`gemm_compute_time` of one shape for every ``m`` of a 1-d array, equal to it
    bit for bit: the candidates' tile counts take few values over a cost table's ``m``
    (a few per tile height), and everything but split-K's reduction (linear in ``m``)
    depends on ``m`` only through them, so each value's times are computed once, with the
    same operations on the same operands, and gathered."""
    p_u = peak * eff / units
    b_u = mem_bw * eff_mem / units
    c = np.array(_candidates(float(tile_m), float(tile_n)))
    tm, tn, r = (c[:, i].reshape(-1, 1) for i in range(3))
    # the tile count along m of each distinct tile height, per m: the groups
    rows = {h: np.ceil(m / h - 1e-9) for h in np.unique(tm)}
    key = np.zeros(len(m))
    for q in rows.values():  # counts are small integers (or -0.0 at m = 0)
        key = key * (float(np.max(q, initial=0.0)) + 2.0) + (q + 1.0)
    _, first, group = np.unique(key, return_index=True, return_inverse=True)
    qm = np.stack([rows[h][first] for h in tm[:, 0]])  # (candidates, groups)
    area = tm * tn
    tiles = qm * np.ceil(n / tn - 1e-9)
    per = 2.0 * area * (k + K_PROLOGUE) / (r * p_u)
    t = np.ceil(tiles / units - 1e-9) * (per + area * out_bytes / b_u)
    if (stream_k > 0).any():
        t_sk = tiles / units * per + area * (out_bytes + 8.0) / b_u
        t = np.where(stream_k > 0, np.minimum(t, t_sk), t)
    # the min over the candidates (exact in any order) of each group's times, then of the
    # split-K times (which add the reduction, linear in m) where a candidate splits
    out = t.min(axis=0)[group]
    if not (tiles < units).any():
        return out
    split = np.minimum(np.maximum(np.floor(units / np.maximum(tiles, 1.0)), 1.0),
                       np.maximum(np.floor(k / SPLIT_K_MIN), 1.0))
    fixed = np.ceil(tiles * split / units - 1e-9) * (
        2.0 * area * (k / split + K_PROLOGUE) / (r * p_u) + area * 4.0 / b_u)
    bw = mem_bw * eff_mem
    for i in range(len(split)):
        sel = np.flatnonzero(split[i][group] > 1)
        if len(sel):
            g = group[sel]
            t_split = fixed[i][g] + 2.0 * split[i][g] * m[sel] * n * 4.0 / bw
            out[sel] = np.minimum(out[sel], t_split)
    return out


_FM = np.array([fm for fm, _ in TILES])
_FN = np.array([fn for _, fn in TILES])


@lru_cache(maxsize=64)
def _candidates(tile_m: float, tile_n: float) -> tuple[tuple[float, float, float], ...]:
    """(tm, tn, r) of each candidate tile of a device tile."""
    i0 = tile_m * tile_n / (tile_m + tile_n)
    out = []
    for fm, fn in TILES:
        tm, tn = tile_m * fm, tile_n * fn
        out.append((tm, tn, min(tm * tn / (tm + tn) / (REUSE_SAT * i0), 1.0)))
    return tuple(out)


def _compute_one(m: float, n: float, k: float, out_bytes: float, peak: float, eff: float,
                 units: float, tile_m: float, tile_n: float, mem_bw: float, eff_mem: float,
                 stream_k: float) -> float:
    """:func:`gemm_compute_time` for one GEMM on Python floats (the same formulas)."""
    p_u = peak * eff / units
    b_u = mem_bw * eff_mem / units
    k_p = k + K_PROLOGUE
    ceil = math.ceil
    best = math.inf
    for tm, tn, r in _candidates(tile_m, tile_n):
        tiles = ceil(m / tm - 1e-9) * ceil(n / tn - 1e-9)
        area = tm * tn
        per = 2.0 * area * k_p / (r * p_u)
        t = ceil(tiles / units - 1e-9) * (per + area * out_bytes / b_u)
        if tiles < units:
            split = min(max(math.floor(units / max(tiles, 1.0)), 1.0),
                        max(math.floor(k / SPLIT_K_MIN), 1.0))
            if split > 1:
                t_split = (ceil(tiles * split / units - 1e-9)
                           * (2.0 * area * (k / split + K_PROLOGUE) / (r * p_u)
                              + area * 4.0 / b_u)
                           + 2.0 * split * m * n * 4.0 / (mem_bw * eff_mem))
                if t_split < t:
                    t = t_split
        if stream_k > 0:
            t_sk = tiles / units * per + area * (out_bytes + 8.0) / b_u
            if t_sk < t:
                t = t_sk
        if t < best:
            best = t
    return best


@dataclass(frozen=True)
class GemmLines:
    """A GEMM's time for every ``m`` of an array, as lines in the device's two rates: each
    variant of the module docstring's compute (a candidate tile in whole waves, split-K,
    stream-K) takes ``a / (peak eff_c) + b / (bw eff_m)`` seconds, ``a`` and ``b`` fixed
    by the shape and the geometry (units, device tile, stream-K) alone; the bytes take
    ``moved / (bw eff_m)``. The values of ``m`` that give every candidate the same tile
    count (and no split-K, whose reduction grows with m) share a column of ``a`` and ``b``
    (variants x groups; per group only the variants on the lower envelope, the fastest at
    some rates, an empty slot repeating one of them): ``group`` maps each ``m`` to it.
    Where ``m`` <= 0 all are 0."""

    a: np.ndarray
    b: np.ndarray
    group: np.ndarray
    moved: np.ndarray

    def time(self, peak: float, eff: float, mem_bw: float, eff_mem: float) -> np.ndarray:
        """Seconds at each ``m``: max(the fastest variant, the bytes) at these rates
        (:func:`gemm_time` without the launch, equal to rounding)."""
        x, y = 1.0 / (peak * eff), 1.0 / (mem_bw * eff_mem)
        comp = (self.a * x + self.b * y).min(axis=0)
        return np.maximum(comp[self.group], self.moved * y)


def gemm_lines(m: np.ndarray, n: float, k: float, out_bytes: float, units: float,
               tile_m: float, tile_n: float, stream_k: float, moved: np.ndarray
               ) -> GemmLines:
    """The :class:`GemmLines` of ``C[m, n] = A[m, k] B[k, n]`` for every ``m`` of a 1-d
    array: :func:`gemm_compute_time`'s formulas with p_u = peak eff_c / U and
    b_u = bw eff_m / U taken out, so that a device whose peaks, efficiencies or bandwidth
    change (an uncertainty draw) reuses them; ``moved``: the bytes at each ``m``."""
    m = np.asarray(m, dtype=float)
    cand = _candidates(float(tile_m), float(tile_n))
    c = np.array(cand)
    tm, tn, r = (c[:, i].reshape(-1, 1) for i in range(3))
    k_split = max(math.floor(k / SPLIT_K_MIN), 1.0)
    # group the m's: every candidate's row tiles (one per distinct tile height), split-K
    # anywhere (then each m alone), m > 0
    rows = [np.ceil(m / h - 1e-9) for h in sorted({t[0] for t in cand})]
    tiles_all = np.ceil(m / tm - 1e-9) * np.ceil(n / tn - 1e-9)
    split_any = ((tiles_all < units)
                 & (np.floor(units / np.maximum(tiles_all, 1.0)) > 1)).any(axis=0) \
        if k_split > 1 else np.zeros(len(m), dtype=bool)
    key = np.stack([*rows, np.where(split_any, np.arange(len(m)), -1), m > 0], axis=1)
    _, first, group = np.unique(key, axis=0, return_index=True, return_inverse=True)
    mg = m[first]  # one m of each group
    tiles = tiles_all[:, first]
    area = tm * tn
    waves = np.ceil(tiles / units - 1e-9)
    a_tile = 2.0 * area * (k + K_PROLOGUE) * units / r  # one tile's mainloop, x p_u
    av = [waves * a_tile]
    bv = [np.broadcast_to(waves * area * out_bytes * units, tiles.shape)]
    if split_any.any():
        split = np.minimum(np.maximum(np.floor(units / np.maximum(tiles, 1.0)), 1.0),
                           k_split)
        w_s = np.ceil(tiles * split / units - 1e-9)
        on = split > 1
        av.append(np.where(on, w_s * 2.0 * area * (k / split + K_PROLOGUE) * units / r,
                           av[0]))
        bv.append(np.where(on, w_s * area * 4.0 * units + 2.0 * split * mg * n * 4.0, bv[0]))
    if stream_k > 0:
        av.append(tiles / units * a_tile)
        bv.append(np.broadcast_to(area * (out_bytes + 8.0) * units, tiles.shape))
    a, b = np.concatenate(av), np.concatenate(bv)
    # per group, the variants no other is at least as fast as in both terms (the first of
    # equal ones), then of those the lower envelope
    a, b = _pack(a, b, _undominated(a, b))
    a, b = _pack(a, b, _envelope(a, b))
    on = mg > 0
    return GemmLines(np.where(on, a, 0.0), np.where(on, b, 0.0), group.reshape(-1),
                     np.where(m > 0, np.asarray(moved, dtype=float), 0.0))


def _undominated(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Which lines ``a[v] x + b[v] y`` (variants x columns) no other is at least as fast
    as at every rate (no slower in both terms; of equal ones the first)."""
    v = len(a)
    aw, av, bw, bv = a[:, None], a[None], b[:, None], b[None]
    first = (np.arange(v)[:, None] < np.arange(v)[None])[..., None]
    return np.asarray(~((aw <= av) & (bw <= bv) & ((aw < av) | (bw < bv) | first)).any(axis=0))


def _pack(a: np.ndarray, b: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kept lines of each column first, as many rows as the column that keeps most;
    a column's empty slots repeat its first kept line."""
    order = np.argsort(~keep, axis=0, kind="stable")[: int(keep.sum(axis=0).max())]
    slot = np.where(np.take_along_axis(keep, order, axis=0), order, order[:1])
    return np.take_along_axis(a, slot, axis=0), np.take_along_axis(b, slot, axis=0)


def _envelope(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Which lines ``a[v] x + b[v] y`` (variants x columns) are the fastest alone at some
    rates x, y > 0 (the lower envelope in x / y; of identical lines the first): the others
    never decide the minimum."""
    v = len(a)
    da = a[:, None] - a[None]  # line v (axis 0) below line w (axis 1) where da x < db y
    db = b[None] - b[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        cut = db / da
    first = (np.arange(v)[:, None] < np.arange(v)[None])[..., None]
    lower = np.where(da < 0, cut, -np.inf)  # below w for x / y above the cut
    upper = np.where(da > 0, cut, np.inf)  # below w for x / y under the cut
    never = (da == 0) & ((db < 0) | ((db == 0) & ~first))  # parallel, never below
    upper = np.where(never, -np.inf, upper)
    itself = np.eye(v, dtype=bool)[..., None]
    lo = np.maximum(np.where(itself, -np.inf, lower).max(axis=1), 0.0)
    hi = np.where(itself, np.inf, upper).min(axis=1)
    return lo < hi


def gemm_bytes(m: Any, n: Any, k: Any, in_bytes: Any, out_bytes: Any) -> Any:
    m = xp.asarray(m, dtype=float)
    return in_bytes * (m * k + k * n) + out_bytes * m * n


def gemm_time(m: Any, n: Any, k: Any, in_bytes: Any, out_bytes: Any, peak: Any, eff: Any,
              units: Any, tile_m: Any, tile_n: Any, mem_bw: Any, eff_mem: Any,
              launch_s: Any = 0.0, stream_k: Any = 0.0) -> Any:
    """Seconds for one GEMM: max(tiles, bytes / (bw eff_m)) + launch (module docstring)."""
    comp = gemm_compute_time(m, n, k, out_bytes, peak, eff, units, tile_m, tile_n, mem_bw,
                             eff_mem, stream_k)
    mem = gemm_bytes(m, n, k, in_bytes, out_bytes) / (mem_bw * eff_mem)
    return xp.maximum(comp, mem) + launch_s


def gemm_tflops(m: Any, n: Any, k: Any, in_bytes: Any, out_bytes: Any, peak: Any, eff: Any,
                units: Any, tile_m: Any, tile_n: Any, mem_bw: Any, eff_mem: Any,
                launch_s: Any = 0.0, stream_k: Any = 0.0) -> Any:
    """Achieved TFLOP/s of one GEMM, 2 m n k / time."""
    t = gemm_time(m, n, k, in_bytes, out_bytes, peak, eff, units, tile_m, tile_n, mem_bw,
                  eff_mem, launch_s, stream_k)
    return 2.0 * xp.asarray(m, dtype=float) * n * k / t / 1e12


def attention_efficiency(s_kv: Any, head_dim: Any, causal: Any, attn: Any) -> Any:
    """Fraction of dense peak a flash-attention forward reaches (module docstring: rate)."""
    blocks = xp.maximum(xp.asarray(s_kv, dtype=float) / ATTN_BLOCK, 1.0)
    n = xp.where(causal, (blocks + 1.0) / 2.0, blocks)
    mask = xp.where(causal, blocks / (blocks + 1.0), 1.0)
    return (attn * (128.0 + ATTN_D0) / 128.0 * head_dim / (head_dim + ATTN_D0)
            * n / (n + ATTN_C0) * mask)


def attention_fwd_time(flops: Any, s_kv: Any, head_dim: Any, causal: Any, peak: Any,
                       attn: Any) -> Any:
    """Seconds of a flash-attention forward that executes ``flops`` (already halved when
    causal) over keys of length ``s_kv``."""
    return flops / (peak * attention_efficiency(s_kv, head_dim, causal, attn))


def attention_bwd_time(fwd_s: Any, attn_bwd: Any) -> Any:
    """Seconds of its backward: BWD_FLOP_FACTOR x the forward's FLOPs at ``attn_bwd`` of the
    forward's rate."""
    return BWD_FLOP_FACTOR * fwd_s / attn_bwd


def attention_tflops(s: Any, head_dim: Any, causal: Any, peak: Any, attn: Any) -> Any:
    """Achieved TFLOP/s of a forward as flash-attention benchmarks count it (causal FLOPs
    halved): peak x efficiency."""
    return peak * attention_efficiency(s, head_dim, causal, attn) / 1e12

"""The GEMM side of the kernel model against published single-device GEMM measurements it was
never fitted on (``tests/data/kernels/*.csv``, each citing its source). Measured errors and the
per-vendor gap are recorded in docs/model-kernels.md ("Published GEMM sweeps").

- ``mamf-bekman.csv``: the best matmul rate a sweep found per accelerator (MAMF), 12 rows with a
  profile (NVIDIA, AMD, Intel). The profiles' ``efficiency.compute`` is fitted at cluster scale,
  so the shipped profile must predict at most the lone device's best, and not less than half of
  it (tolerances fixed before the predictions were computed).
- ``xla-h100-bf16-cublas.csv``: XLA's cuBLAS BF16 table on sm_90, 125 shapes (256 to 4,096 in
  each of M, N, K). The level comes from another source (the H100 MAMF row), the shape
  dependence is the kernel model's. Its tolerances were set after a first look at the errors
  (they bound a regression; the physics claims are the trend tests).
- ``xla-b200-cublas.csv``: the same table's B200 BF16 and FP8 entries (125 shapes each), with
  the shipped b200 profile.
- ``swiglu-h100-fp16.csv``: K (the SwiGLU width) varied by a few elements around 10,922:
  only ratios are used (unknown H100 variant and 2024 stack).
- ``aiter-mi300x-i8-bpreshuffle.csv``: AMD aiter's tuned W8A8 GEMM times on one MI300X (32
  shapes), against the serving model's GEMM on the shipped mi300x profile.
- ``ck-mi300x-a8w8-llama3.csv``: AMD's tuned CK W8A8 GEMMs on one MI300X at the Llama 3.1
  70B/405B linear shapes, TP 1 to 8 (288 rows), against the same: level and the TP8 shapes'
  lower rate.
- ``azure-cublaslt-fp8.csv``, ``azure-stream.csv``: cuBLASLt FP8 square GEMMs and STREAM
  bandwidth on one H100 SXM and one H200 SXM, one harness on one host (Azure's AI
  benchmarking guide): the serving model's gap to a lone GPU is the same on both parts, and
  the profiles' streaming efficiency is below both parts' sustained Triad
  (docs/_notes/trtllm-perf-overview-misses.md: what the H100 TensorRT-LLM rows are not).
- ``h100-large-gemms.csv``: large BF16 GEMMs on one H100 (M up to 65,536 tokens: FBGEMM #2546 at
  500 W, with its row-wise FP8 GEMM at the same shapes; square 1,024-10,240 at 700 W): ratios
  within a source only (issue 21: what a GEMM-shape term could give the checkpointed MPT rows;
  docs/_notes/gemm-level-h100.md).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from accelsim import kernels as K
from accelsim import roofline
from accelsim.devices import DeviceSpec, load_device

DATA = Path(__file__).parent / "data" / "kernels"
IN_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0}
OUT_BYTES = 2.0  # BF16/FP16 output in every table


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, encoding="utf-8") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


def _cols(name: str) -> dict[str, np.ndarray]:
    rows = _rows(name)
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def predict_tflops(spec: DeviceSpec, dtype: str, m, n, k, batch=1.0, eff: float | None = None,
                   stream_k: float = 1.0):
    """TFLOP/s of one (batched) GEMM call on one device at its datasheet peak: the kernel model
    when the profile has compute units (the batch multiplies the tiles: M x batch rows of
    independent tiles), else the size curve of ``efficiency.gemm_half_size_GFLOP``; one launch
    (``kernel_overhead_us``) per call either way."""
    m, n, k, batch = (np.asarray(a, dtype=float) for a in (m, n, k, batch))
    peak = spec.flops(dtype)
    e = spec.eff_compute if eff is None else eff
    flops = 2.0 * batch * m * n * k
    if spec.compute_units > 0:
        # batched GEMM: batch x the tiles of one; same waves as one GEMM of batch x M rows
        # when M is a multiple of the tile height (every shape here is)
        t = K.gemm_time(batch * m, n, k, IN_BYTES[dtype], OUT_BYTES, peak, e,
                        float(spec.compute_units), spec.tile_m, spec.tile_n,
                        spec.memory_bw_Bps, spec.eff_memory, spec.kernel_overhead_s, stream_k)
    else:
        t = (batch * roofline.gemm_time(m, k, n, IN_BYTES[dtype], peak, e, spec.gemm_half_flop,
                                        spec.memory_bw_Bps, spec.eff_memory)
             + spec.kernel_overhead_s)
    return flops / t / 1e12


def _mamf() -> list[tuple[dict[str, str], float]]:
    """(row, shipped profile's prediction) for every MAMF row with a profile."""
    out = []
    for r in _rows("mamf-bekman.csv"):
        if not r["profile"]:
            continue
        spec = load_device(r["profile"]).spec
        out.append((r, float(predict_tflops(spec, r["dtype"], float(r["m"]), float(r["n"]),
                                            float(r["k"])))))
    return out


def test_mamf_bounds_the_at_scale_efficiency():
    """A lone device's best GEMM (MAMF) is an upper bound of the at-scale profile at that shape
    (clocks under a cluster's power cap, a fitted whole-run efficiency), and the gap stays
    below 2x: 0.5 MAMF <= prediction <= MAMF on every row (12 rows, NVIDIA, AMD and Intel)."""
    rows = _mamf()
    assert len(rows) == 12
    for r, pred in rows:
        measured = float(r["tflops"])
        assert 0.5 * measured <= pred <= measured, (r["accelerator"], r["dtype"], pred)


def test_mamf_orders_the_vendors_like_the_profiles():
    """What a lone device reaches of its datasheet peak ranks the vendors' at-scale
    efficiencies: MI300X < MI325X < H100 BF16 in both (the profiles were fitted on MLPerf and
    Llama 3, not on these numbers)."""
    ratio = {(r["profile"], r["dtype"]): float(r["tflops"]) / p for r, p in _mamf()}
    mamf = {(r["profile"], r["dtype"]): float(r["tflops"]) for r, _ in _mamf()}
    peak = {key: load_device(key[0]).spec.flops(key[1]) / 1e12 for key in mamf}
    frac = {key: mamf[key] / peak[key] for key in mamf}
    eff = {key: load_device(key[0]).spec.eff_compute for key in mamf}
    order = [("mi300x", "bf16"), ("mi325x", "bf16"), ("h100-sxm", "bf16")]
    assert [frac[o] for o in order] == sorted(frac[o] for o in order)
    assert [eff[o] for o in order] == sorted(eff[o] for o in order)
    assert all(v >= 1.0 for v in ratio.values())


def _lone_h100_eff() -> float:
    """H100's GEMM mainloop efficiency on a lone GPU: the MAMF BF16 row divided by the kernel
    model's own tile/wave factor at that shape (one number from one source)."""
    spec = load_device("h100-sxm").spec
    r = next(r for r in _rows("mamf-bekman.csv")
             if r["profile"] == "h100-sxm" and r["dtype"] == "bf16")
    m, n, k = float(r["m"]), float(r["n"]), float(r["k"])
    peak = spec.flops("bf16")
    rate = K.gemm_tflops(m, n, k, 2.0, 2.0, peak, 1.0, float(spec.compute_units), spec.tile_m,
                         spec.tile_n, spec.memory_bw_Bps, spec.eff_memory, 0.0, 1.0)
    q = float(rate) * 1e12 / peak
    return float(r["tflops"]) * 1e12 / (peak * q)


def _xla_errors(eff: float | None) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    spec = load_device("h100-sxm").spec
    d = _cols("xla-h100-bf16-cublas.csv")
    ours = predict_tflops(spec, "bf16", d["m"], d["n"], d["k"], eff=eff)
    return d, ours, ours / d["tflops"] - 1


def test_xla_h100_shapes_at_the_lone_device_level():
    """125 cuBLAS BF16 shapes on H100 with the mainloop efficiency of a lone GPU (from the MAMF
    row, another source): mean |error| <= 15 %, at least 80 of 125 within 15 %, none beyond
    50 % (bounds set after a first look: mean 11.8 %, 85 within 15 %, max 48 %)."""
    eff = _lone_h100_eff()
    assert 0.8 < eff < 0.9  # the MAMF row over the model's tile/wave factor 0.94 there
    _, _, err = _xla_errors(eff)
    assert np.mean(np.abs(err)) <= 0.15
    assert (np.abs(err) < 0.15).sum() >= 80
    assert np.max(np.abs(err)) < 0.50


def test_xla_h100_large_shapes_show_the_at_scale_gap():
    """With the shipped profile (efficiency.compute 0.60, fitted at 8,192 GPUs) the large
    GEMMs (>= 10 GFLOP, launch negligible) come out below the lone GPU's by the ratio of the
    two efficiencies, within 10 points: the gap is the profile's, not the shapes'."""
    spec = load_device("h100-sxm").spec
    d, _, err = _xla_errors(None)
    big = 2 * d["m"] * d["n"] * d["k"] >= 1e10
    expected = spec.eff_compute / _lone_h100_eff() - 1
    assert big.sum() == 20
    assert abs(np.median(err[big]) - expected) <= 0.10


def test_xla_h100_rate_rises_with_k_and_with_the_output():
    """The measured rate rises with K at a fixed output (launch and pipeline fill amortised)
    on most (m, n) pairs, and with the output tiles at a fixed K; the model's rank order of the
    125 shapes matches the table's (Spearman rho >= 0.95)."""
    d, ours, _ = _xla_errors(_lone_h100_eff())
    rank = lambda x: np.argsort(np.argsort(x))  # noqa: E731
    rho = np.corrcoef(rank(ours), rank(d["tflops"]))[0, 1]
    assert rho >= 0.95
    rising_meas = rising_ours = 0
    pairs = {(a, b) for a, b in zip(d["m"], d["n"], strict=True)}
    for m, n in pairs:
        sel = (d["m"] == m) & (d["n"] == n)
        order = np.argsort(d["k"][sel])
        rising_meas += bool(np.all(np.diff(d["tflops"][sel][order]) > 0))
        rising_ours += bool(np.all(np.diff(ours[sel][order]) > 0))
    assert rising_meas >= 0.8 * len(pairs)
    assert rising_ours >= 0.8 * len(pairs)


def test_swiglu_k_near_10944_is_flat_in_the_model_as_measured():
    """Varying K (the reduction dimension) by a few elements moves no tile or wave: the
    five 16-byte-aligned widths measured within 1 % of each other; the model within 1 % too.
    (The unaligned 10,922 ran at 0.68x: operand alignment, a mechanism the model lacks;
    docs/model-kernels.md.)"""
    spec = load_device("h100-sxm").spec
    d = _cols("swiglu-h100-fp16.csv")
    aligned = d["k"] % 8 == 0
    ours = predict_tflops(spec, "fp16", d["m"], d["n"], d["k"], batch=d["b"])
    meas = d["tflops"][aligned]
    assert meas.max() / meas.min() - 1 < 0.01
    assert ours[aligned].max() / ours[aligned].min() - 1 < 0.01


def _b200_errors(dtype: str) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    spec = load_device("b200").spec
    d = _cols("xla-b200-cublas.csv")
    ours = predict_tflops(spec, dtype, d["m"], d["n"], d["k"])
    return d, ours, ours / d[f"{dtype}_tflops"] - 1


def test_xla_b200_shapes_rank_and_large_shapes():
    """125 cuBLAS shapes on B200, BF16 and FP8, with the shipped b200 profile (efficiency
    0.58 from MLPerf GPT-3 at 64 GPUs against the same round's H100 row): the rank order
    matches (Spearman rho >= 0.95) and the large GEMMs (>= 10 GFLOP) come out below the
    measured ones (median in [-20 %, 0]: the at-scale efficiency under a lone GPU's)."""
    for dtype in ("bf16", "fp8"):
        d, ours, err = _b200_errors(dtype)
        rank = lambda x: np.argsort(np.argsort(x))  # noqa: E731
        assert np.corrcoef(rank(ours), rank(d[f"{dtype}_tflops"]))[0, 1] >= 0.95
        big = 2 * d["m"] * d["n"] * d["k"] >= 1e10
        assert -0.20 <= np.median(err[big]) <= 0.0


def test_xla_b200_mid_shapes_are_over_predicted_within_bounds():
    """The 0.1-10 GFLOP shapes run slower on B200 than the model's tiles say (a per-tile fixed
    latency that a 2.3x faster mainloop no longer hides; docs/model-kernels.md): bounds set
    after a first look (medians +15 % and +22 %, means 16 % and 20 %): median over-prediction
    in (0, +30 %] in BF16 and FP8, mean |error| <= 25 % over all 125 shapes."""
    for dtype in ("bf16", "fp8"):
        d, _, err = _b200_errors(dtype)
        flops = 2 * d["m"] * d["n"] * d["k"]
        mid = (flops >= 1e8) & (flops < 1e10)
        assert 0.0 < np.median(err[mid]) <= 0.30
        assert np.mean(np.abs(err)) <= 0.25


def test_aiter_mi300x_w8a8_gemms_against_the_serving_gemm():
    """aiter's tuned W8A8 GEMMs on one MI300X (``aiter-mi300x-i8-bpreshuffle.csv``, 32 shapes,
    M 64 to 40,960): its hand-written assembly kernels on pre-shuffled int8 weights, the
    fastest W8A8 GEMMs published for the part, bound the GEMM the serving model runs on the
    shipped mi300x profile (its kernel model: 304 CUs, the general libraries' tiles, at the
    efficiency fitted with vLLM's hipBLASLt FP8 GEMMs) from below: from M = 512 on the model
    is never faster, and at most 2x slower. Below M = 512 the measured kernels are
    latency-bound and the model is not held to them. (Tolerance set after a first look,
    measured 1.09-1.98x; before the mi300x profile had its kernel geometry, 0.89-1.43x.)"""
    from accelsim.llm import perf

    spec = load_device("mi300x").spec
    rows = _rows("aiter-mi300x-i8-bpreshuffle.csv")
    assert len(rows) == 32
    ratios = []
    for r in rows:
        m, n, k = float(r["m"]), float(r["n"]), float(r["k"])
        assert float(r["tflops"]) == pytest.approx(2 * m * n * k / float(r["us"]) / 1e6,
                                                   rel=0.01)
        if m < 512:
            continue
        t = float(perf._gemm(np.array([m]), k, n, 1.0, spec.flops("int8"), spec)[0])
        ratios.append((t + spec.kernel_overhead_s) / (float(r["us"]) * 1e-6))
    assert len(ratios) == 26
    assert 1.0 <= min(ratios) and max(ratios) <= 2.0, ratios


# The Llama 3.1 70B linear layers (QKV, MLP up, attention output, MLP down) as (N, K) at
# TP 1 and TP 8 (hidden 8,192, 64 query and 8 KV heads of 128, MLP 28,672).
LLAMA70B_TP = {1: ((10240, 8192), (57344, 8192), (8192, 8192), (8192, 28672)),
               8: ((1280, 8192), (7168, 8192), (8192, 1024), (8192, 3584))}


def test_ck_mi300x_w8a8_llama3_gemms_against_the_serving_gemm():
    """AMD's tuned CK W8A8 GEMMs on one MI300X at the Llama 3.1 70B/405B linear shapes, TP 1 to
    8 (``ck-mi300x-a8w8-llama3.csv``, 288 rows, M 1 to 32,768), against the serving model's GEMM
    on the shipped mi300x profile (nothing fitted on the table). (a) Level, from M = 512 on
    (every decode batch of the AMD vLLM TP8 rows and of the MLPerf rows): the measured time is
    0.8-1.45x the model's, median within 15 %. (b) Shape: tensor parallelism cuts N or K by 8,
    and the TP8 layers run at 0.72-0.84 of the TP1 layers' TFLOP/s at M 512-4,096 (fewer
    output tiles for 304 CUs, a shorter K loop behind each tile's fixed cost). The kernel
    model (tiles and waves over the profile's 304 CUs) reproduces that ratio within 0.07; the
    size curve the profile had before (efficiency from the FLOPs alone) gave 0.79-0.97, so
    it priced a TP8 decode layer 1.12-1.32x too cheap against these kernels. Tolerances set
    after a first look (median 1.07, range 0.85-1.42; shape ratios within 0.05)."""
    from accelsim.llm import perf

    spec = load_device("mi300x").spec
    assert spec.compute_units == 304
    rows = _rows("ck-mi300x-a8w8-llama3.csv")
    assert len(rows) == 288
    us = {(int(r["m"]), int(r["n"]), int(r["k"])): float(r["us"]) * 1e-6 for r in rows}

    def model(m: int, n: int, k: int) -> float:
        t = perf._gemm(np.array([float(m)]), float(k), float(n), 1.0, spec.flops("fp8"), spec)
        return float(t[0]) + spec.kernel_overhead_s

    ratios = np.array([t / model(m, n, k) for (m, n, k), t in us.items() if m >= 512])
    assert len(ratios) == 144
    assert 0.8 <= ratios.min() and ratios.max() <= 1.45
    assert 0.95 <= np.median(ratios) <= 1.15

    def rate(time, m: int, tp: int) -> float:
        shapes = LLAMA70B_TP[tp]
        return sum(2.0 * m * n * k for n, k in shapes) / sum(time(m, n, k) for n, k in shapes)

    for m in (512, 1024, 2048, 4096):
        measured = rate(lambda *s: us[s], m, 8) / rate(lambda *s: us[s], m, 1)
        predicted = rate(model, m, 8) / rate(model, m, 1)
        assert 0.7 <= measured <= 0.85
        assert predicted == pytest.approx(measured, abs=0.07), (m, measured, predicted)


def test_xla_tpu_v5e_matmul_bounds_the_v5e_profile():
    """XLA's bf16 matmul on one TPU v5e (JAX's Pallas matmul guide; the v5e profile takes TPU
    v5p's efficiency fitted on MLPerf, not these rows) is an upper bound of the shipped
    profile at the two compute-bound shapes, within the MAMF test's 2x; the 1024^3 call is
    mostly the benchmark's Python dispatch and is not compared. The measured rows also
    reproduce the guide's utilisation against the profile's datasheet peak."""
    spec = load_device("tpu-v5e").spec
    rows = _rows("xla-tpu-v5e-bf16.csv")
    assert len(rows) == 3
    for r in rows:
        m, n, k = (float(r[x]) for x in ("m", "n", "k"))
        measured = 2 * m * n * k / float(r["time_s"]) / 1e12
        assert measured / (spec.flops("bf16") / 1e12) == pytest.approx(
            float(r["utilization_pct"]) / 100, rel=1e-3)
        if m < 4096:
            continue
        pred = float(predict_tflops(spec, "bf16", m, n, k))
        assert 0.5 * measured <= pred <= measured, (m, pred, measured)


# The GEMMs of the checkpointed MPT 13B/30B/70B rows on 128/512 H100 (configs/runs/heldout/
# llm-foundry-mpt.yaml: micro-batch 16/8/8 x 2,048 tokens, hidden 5,120/7,168/8,192, MLP 4x):
# QKV, attention output, MLP up and down as (M, N, K).
MPT_CHECKPOINTED = [(m, n, k) for m, h in ((32768.0, 5120.0), (16384.0, 7168.0),
                                           (16384.0, 8192.0))
                    for n, k in ((3 * h, h), (h, h), (4 * h, h), (h, 4 * h))]


def _large(source: str, dtype: str = "bf16") -> dict[str, np.ndarray]:
    d = _cols_where("h100-large-gemms.csv", source=source, dtype=dtype)
    assert len(d["m"]) >= 3
    return d


def _cols_where(name: str, **eq: str) -> dict[str, np.ndarray]:
    rows = [r for r in _rows(name) if all(r[k] == v for k, v in eq.items())]
    return {k: np.array([float(r[k]) for r in rows]) for k in ("m", "n", "k", "tflops")}


def _at_cube(d: dict[str, np.ndarray], side: float = 8192.0) -> float:
    sel = (d["m"] == side) & (d["n"] == side) & (d["k"] == side)
    return float(d["tflops"][sel][0])


def test_large_gemms_are_on_one_plateau_measured_and_modelled():
    """Issue 21: the checkpointed MPT rows imply H100 GEMMs at 0.64-0.65 of peak where the
    profile gives 0.60. Not from the GEMMs' shape: on one H100 no large BF16 GEMM runs faster
    than 8192^3 (M = 65,536 tokens at K 7,168-8,192: 0.98 and 0.93 of it at 500 W, FBGEMM
    #2546; 10,240^3 0.90 and 4,096^3 0.99 of it at 700 W, torch-performance-test-data #79),
    and the kernel model already gives every GEMM of those rows 0.99-1.02 of its own 8192^3
    rate (bounds 0.97-1.03): there is no large-shape rate above the plateau for a shape term to add
    (docs/_notes/gemm-level-h100.md)."""
    spec = load_device("h100-sxm").spec
    for source in ("fbgemm-2546", "torchperf-79"):
        d = _large(source)
        big = np.minimum(np.minimum(d["m"], d["n"]), d["k"]) >= 3584
        assert big.sum() >= 3
        assert np.max(d["tflops"][big]) <= 1.01 * _at_cube(d)
    cube = float(predict_tflops(spec, "bf16", 8192.0, 8192.0, 8192.0))
    m, n, k = (np.array(x) for x in zip(*MPT_CHECKPOINTED, strict=True))
    ratio = predict_tflops(spec, "bf16", m, n, k) / cube
    assert np.all((ratio >= 0.97) & (ratio <= 1.03)), ratio


def test_large_m_gemms_against_8192_cubed_within_a_source():
    """FBGEMM #2546's two M = 65,536 BF16 GEMMs relative to its 8192^3 on the same H100
    (0.983 and 0.933) against the model's ratios at the same efficiency (1.003, 1.004): within
    8 points (bound set after a first look). The model does not lose the 7 % the narrow
    (N = 3,584) one measures: it would only lower what the model gives large GEMMs."""
    spec = load_device("h100-sxm").spec
    d = _large("fbgemm-2546")
    ours = predict_tflops(spec, "bf16", d["m"], d["n"], d["k"])
    cube_ours = float(predict_tflops(spec, "bf16", 8192.0, 8192.0, 8192.0))
    big_m = d["m"] == 65536
    assert big_m.sum() == 2
    meas = d["tflops"][big_m] / _at_cube(d)
    mod = ours[big_m] / cube_ours
    assert np.all(np.abs(mod - meas) <= 0.08), (mod, meas)
    assert np.all(mod >= meas - 0.01)


def test_the_model_rates_4096_cubed_below_the_plateau_it_reaches():
    """The one shape-model deficit near these sizes goes the other way: 4096^3 measures 0.99
    of 8192^3 (torch-performance-test-data #79; XLA's table has 783 TFLOP/s at 4096^3, the
    MAMF sweep's best 795), the model 0.945 of it (each tile's pipeline fill and epilogue,
    which Hopper's persistent kernels overlap). Bounded, not fixed: pricing 4096-deep GEMMs
    faster raises the calibration rows' tensor-parallel GEMMs (K or N split 4-8 ways) and
    lowers the refit efficiency (0.600 -> 0.584 with the pipeline fill removed), away from
    the MPT rows."""
    spec = load_device("h100-sxm").spec
    d = _large("torchperf-79")
    meas = _at_cube(d, 4096.0) / _at_cube(d)
    mod = float(predict_tflops(spec, "bf16", 4096.0, 4096.0, 4096.0)
                / predict_tflops(spec, "bf16", 8192.0, 8192.0, 8192.0))
    assert meas > 0.97
    assert meas - 0.10 <= mod < meas


def test_fp8_gemms_reach_the_bf16_fraction_of_their_peak_at_500_w():
    """The profile prices an FP8 GEMM at the BF16 GEMM's fraction of its (2x) peak. FBGEMM
    #2546 on one 500 W H100, same shapes: its row-wise FP8 GEMM reaches 0.94-1.04 of the
    BF16 GEMM's fraction (0.962, 0.941, 1.045); the model 0.99-1.0, within 7 points of each
    (bound set after a first look).
    At 700 W the best-of-sweep figures (MAMF, Bekman) give 0.88 (FP8 0.709, BF16 0.803 of
    peak; torch._scaled_mm without fast accumulation, as Transformer Engine's backward GEMMs
    run): a device FP8 factor of 0.88, on every FP8 GEMM or on the backward ones, refit on the
    H100 rows (20 of 22 FP8) was tried and not kept (docs/_notes/gemm-level-h100.md)."""
    spec = load_device("h100-sxm").spec
    bf, f8 = _large("fbgemm-2546"), _large("fbgemm-2546", "fp8")
    assert np.array_equal(bf["m"], f8["m"]) and np.array_equal(bf["k"], f8["k"])
    meas = (f8["tflops"] / spec.flops("fp8")) / (bf["tflops"] / spec.flops("bf16"))
    mod = ((predict_tflops(spec, "fp8", f8["m"], f8["n"], f8["k"]) / (spec.flops("fp8") / 1e12))
           / (predict_tflops(spec, "bf16", bf["m"], bf["n"], bf["k"])
              / (spec.flops("bf16") / 1e12)))
    assert np.all((meas > 0.9) & (meas < 1.1))
    assert np.all(np.abs(mod - meas) <= 0.07), (mod, meas)


def test_cublaslt_fp8_gap_is_the_same_on_h100_and_h200():
    """cuBLASLt FP8 GEMMs with every dimension at least 4,096 on one H100 and one H200 (same
    harness and host; the 1,024-2,048 cubes are launch-bound, the 802,816 x 192 x 768 one
    skinny): the shipped profiles (efficiency.compute 0.60, fitted at cluster scale) price them
    at 0.82-0.92 of the lone GPU's measured rate on both parts, and the two parts' ratios
    agree within 3 points at every shape (same GH100 die and clocks). So the H100
    TensorRT-LLM rows' shortfall against their H200 twins is not a GEMM-rate difference
    between the parts (docs/_notes/trtllm-perf-overview-misses.md)."""
    ratio: dict[tuple[str, str, str, str], float] = {}
    for r in _rows("azure-cublaslt-fp8.csv"):
        m, n, k = float(r["m"]), float(r["n"]), float(r["k"])
        if min(m, n, k) < 4096:
            continue
        spec = load_device(r["device"]).spec
        ratio[(r["device"], r["m"], r["n"], r["k"])] = float(
            predict_tflops(spec, "fp8", m, n, k)) / float(r["tflops"])
    assert len(ratio) == 10
    assert all(0.82 <= v <= 0.92 for v in ratio.values()), ratio
    for (dev, *shape), v in ratio.items():
        if dev == "h100-sxm":
            assert abs(ratio[("h200", *shape)] - v) <= 0.03, shape


def test_streaming_efficiency_is_below_the_sustained_triad():
    """The profiles' efficiency.memory (an assumption, 0.85) is at most the share of the
    datasheet bandwidth STREAM Triad sustains on the same part (H100 2.97 of 3.35 TB/s =
    0.887, H200 4.15 of 4.8 = 0.865): decode kernels stream below it (FlashMLA on an H100
    2.79-2.83 TB/s, DeepGEMM's small-M FP8 weight reads on an H800 at most 2.67 TB/s). The
    H200 sustains a smaller share than the H100 in Copy, Triad and Dot alike (by 1.6-3.1
    points): the one bandwidth difference between the parts the data shows."""
    got = {(r["device"], r["kernel"]): float(r["TBps"]) for r in _rows("azure-stream.csv")}
    share = {}
    for dev in ("h100-sxm", "h200"):
        spec = load_device(dev).spec
        bw = spec.memory_bw_Bps / 1e12
        share[dev] = {k: got[(dev, k)] / bw for k in ("copy", "triad", "dot")}
        assert spec.eff_memory <= share[dev]["triad"], (dev, share[dev])
    for k in ("copy", "triad", "dot"):
        assert 0.01 <= share["h100-sxm"][k] - share["h200"][k] <= 0.035, k


def test_h200_streaming_efficiency_is_the_h100s_scaled_by_the_measured_share():
    """The H200 profile's efficiency.memory is the H100's scaled by the ratio of the shares of
    nominal bandwidth the two parts sustain in one harness on one host (Azure's STREAM: Triad
    0.865 / 0.887 = 0.975, so 0.85 -> 0.83), and the Copy and Dot ratios (0.964, 0.983) bracket
    it. Only the device ratio is taken from the measurement; the H100's level stays the
    assumption it is (docs/_notes/h200-vs-h100.md)."""
    got = {(r["device"], r["kernel"]): float(r["TBps"]) for r in _rows("azure-stream.csv")}
    h100, h200 = load_device("h100-sxm").spec, load_device("h200").spec
    ratio = {k: (got[("h200", k)] / (h200.memory_bw_Bps / 1e12))
             / (got[("h100-sxm", k)] / (h100.memory_bw_Bps / 1e12))
             for k in ("copy", "triad", "dot")}
    assert h200.eff_memory / h100.eff_memory == pytest.approx(ratio["triad"], abs=0.005)
    assert ratio["copy"] <= h200.eff_memory / h100.eff_memory <= ratio["dot"]
    # the H200's achieved streaming rate still rises by the published ratio's share of the
    # datasheet's 1.43x: 4.8 x 0.83 / (3.35 x 0.85) = 1.40 against Triad's 4.15 / 2.97 = 1.40
    achieved = (h200.memory_bw_Bps * h200.eff_memory) / (h100.memory_bw_Bps * h100.eff_memory)
    assert achieved == pytest.approx(got[("h200", "triad")] / got[("h100-sxm", "triad")], rel=0.01)


def test_the_500w_hbm2e_h100_takes_the_measured_power_ratio():
    """Meta's Grand Teton H100 (96 GB HBM2e at 2.4 TB/s, run at 500 W: torchtitan's H100
    benchmarks) is h100-sxm but for what the power limit and the memory change: its
    tensor-core efficiencies (GEMM and attention) are h100-sxm's times the single-GPU cuBLAS
    BF16 8192^3 rate at 500 W over 700 W (FBGEMM #2546 585.2 / torch-performance-test-data #79
    797.5 = 0.734), within the profile's two-digit rounding; nothing fitted on its rows
    (configs/runs/heldout/torchtitan-h100.yaml, docs/_notes/titanh100.md)."""
    ratio = _at_cube(_large("fbgemm-2546")) / _at_cube(_large("torchperf-79"))
    assert ratio == pytest.approx(0.734, abs=0.001)
    sxm, gt = load_device("h100-sxm"), load_device("h100-hbm2e-500w")
    assert gt.efficiency.compute.value == pytest.approx(sxm.efficiency.compute.value * ratio,
                                                        abs=0.005)
    assert gt.efficiency.attention.value == pytest.approx(
        sxm.efficiency.attention.value * ratio, abs=0.005)
    assert gt.efficiency.attention_fa2.value == sxm.efficiency.attention_fa2.value
    assert gt.memory.memory_bandwidth_GBps.value == 2400
    assert gt.compute.bf16_tflops.value == sxm.compute.bf16_tflops.value
    assert gt.power.tdp_W.value == 500

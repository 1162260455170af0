"""The iteration cost against closed forms: decode against the memory roofline, prefill
against compute, KV capacity and KV bytes by hand."""

import pytest

from accelsim import collectives as coll
from accelsim.devices import load_device
from accelsim.errors import AccelsimError
from accelsim.llm.job import Replica
from accelsim.llm.perf import (
    KERNELS_PER_LAYER,
    kv_bytes_per_token,
    replica_model,
)
from accelsim.precision import BYTES
from accelsim.runtime import RUNTIME_RESERVE_BYTES
from accelsim.transformer.model import load_model

L70 = load_model("llama2-70b")
H100 = load_device("h100-sxm").spec


def _linear_weights(m) -> float:
    """Weights a forward pass streams: every layer's matrices and the LM head (the input
    embedding is only indexed)."""
    h, ffn, a, kv = m.hidden, m.ffn_hidden, m.heads, m.n_kv_heads
    hd = h // a
    per_layer = h * (a * hd + 2 * kv * hd) + a * hd * h + 3 * h * ffn
    return m.layers * per_layer + h * m.vocab


def test_decode_at_batch_one_is_the_weight_read_plus_fixed_costs():
    tp = 4
    rm = replica_model(Replica(device="h100-sxm", model="llama2-70b", tp=tp))
    mem = H100.memory_bw_Bps * H100.eff_memory
    read = _linear_weights(L70) * BYTES["bf16"] / tp / mem
    # TensorRT-LLM's one-shot all-reduce of one token's activations (MIN_LATENCY at <= 128
    # tokens): (tp - 1) x the message, one latency step
    bw = H100.scaleup_bw_Bps * H100.eff_comm
    one_shot = (tp - 1) * L70.hidden * 2.0 / bw + H100.scaleup_latency_s
    fixed = L70.layers * (KERNELS_PER_LAYER * H100.kernel_overhead_s + 2 * one_shot)
    # one token: the weights dominate; activations and per-token traffic add < 1 %
    assert float(rm.linear_s[1]) == pytest.approx(read + fixed, rel=0.01)


def test_long_prefill_is_compute_bound():
    tp, T = 4, 8192
    rm = replica_model(Replica(device="h100-sxm", model="llama2-70b", tp=tp))
    flops = 2 * _linear_weights(L70) * T / tp
    compute = flops / (H100.flops("bf16") * H100.eff_compute)
    allreduce = L70.layers * 2 * coll.ring_allreduce(
        T * L70.hidden * 2.0, tp, H100.scaleup_bw_Bps * H100.eff_comm, H100.scaleup_latency_s)
    t = float(rm.linear_s[T])
    # GEMM FLOPs at the compute roofline plus the TP all-reduces (not overlapped in vLLM);
    # norms, activation and residual traffic (10 h + 3 ffn / tp elements per token and
    # layer, memory-bound) add 8 %; the kernel model (accelsim.kernels) adds each output
    # tile's prologue (K_PROLOGUE of k = 8,192 and 28,672 / 4) and epilogue: 1-3 % more
    mem = H100.memory_bw_Bps * H100.eff_memory
    traffic = L70.layers * T * 2.0 * (10 * L70.hidden + 3 * L70.ffn_hidden / tp) / mem
    closed = compute + allreduce + traffic
    assert closed < t < 1.03 * closed


def test_kv_capacity_by_hand():
    tp = 4
    rm = replica_model(Replica(device="h100-sxm", model="llama2-70b", tp=tp))
    per_token = 2 * (8 / tp) * 128 * 80 * 2  # K and V, 2 of 8 KV heads, head 128, 80 layers
    assert rm.kv_bytes_per_token == per_token
    from accelsim.transformer.params import model_params

    weights = model_params(L70) * 2 / tp
    h, ffn = L70.hidden, L70.ffn_hidden
    workspace = 8192 * 2 * (4 * h + 2 * ffn * 2 / tp) + 256 * L70.vocab / tp * 4
    free = H100.memory_bytes * 0.9 - weights - workspace - RUNTIME_RESERVE_BYTES
    assert rm.kv_blocks == int(free // (per_token * 16))


def test_kv_share_of_free_memory_by_hand():
    """TensorRT-LLM's kv_cache_free_gpu_mem_fraction (memory_share_of: free) takes its share
    of what the weights, activations and runtime leave, (total - held) x fraction; vLLM's
    gpu_memory_utilization bounds them all, total x fraction - held. The two differ by
    (1 - fraction) x held: more KV cache the more the weights take."""
    tp, frac = 4, 0.95
    kw = dict(device="h100-sxm", model="llama2-70b", tp=tp, memory_utilization=frac)
    total = replica_model(Replica(**kw))
    free = replica_model(Replica(**kw, memory_share_of="free"))
    per_block = total.kv_bytes_per_token * 16
    h, ffn = L70.hidden, L70.ffn_hidden
    from accelsim.transformer.params import model_params

    held = (model_params(L70) * 2 / tp + 8192 * 2 * (4 * h + 2 * ffn * 2 / tp)
            + 256 * L70.vocab / tp * 4 + RUNTIME_RESERVE_BYTES)
    assert free.kv_blocks == int((H100.memory_bytes - held) * frac // per_block)
    assert total.kv_blocks == int((H100.memory_bytes * frac - held) // per_block)
    gained = (free.kv_blocks - total.kv_blocks) * per_block
    assert gained == pytest.approx((1 - frac) * held, abs=per_block)
    # the iteration's cost does not depend on how the KV cache was sized
    assert (free.linear_s == total.linear_s).all() and free.c_kv == total.c_kv


def test_h200_prefills_at_the_h100_rate():
    """The H200 is the H100's compute die with more HBM: its prefill attention runs at the
    H100's published kernel rate (the profile's efficiency.attention), not the fallback
    FLASH_REL_EFF x efficiency.compute; decode, a memory read, is faster by the bandwidth it
    sustains (datasheet ratio times the measured ratio of streaming shares, 0.83 / 0.85)."""
    from accelsim.llm.perf import attention_rate

    h200 = load_device("h200").spec
    for s in (2048, 8192, 20000):
        assert attention_rate(h200, s, 128, True) == attention_rate(H100, s, 128, True)
    kw = dict(model="llama3-8b", weights="fp8", kv_cache="fp8")
    a, b = (replica_model(Replica(device=d, **kw)) for d in ("h100-sxm", "h200"))
    assert a.c_pf == pytest.approx(b.c_pf, rel=1e-12)
    assert b.c_kv_read == pytest.approx(a.c_kv_read * (3350 * H100.eff_memory)
                                        / (4800 * h200.eff_memory), rel=1e-9)


def test_mla_caches_the_latent():
    ds = load_model("deepseek-v3")
    assert kv_bytes_per_token(ds, 8, "fp8") == (512 + 64) * 61 * 1
    # GQA with more TP ranks than KV heads replicates a head per rank
    assert kv_bytes_per_token(L70, 16, "bf16") == 2 * 1 * 128 * 80 * 2


def test_a_model_that_does_not_fit_names_the_replica():
    with pytest.raises(AccelsimError, match=r"replicas\[0\]\.tp.*does not fit"):
        replica_model(Replica(device="h20", model="llama3-405b", tp=1))
    with pytest.raises(AccelsimError, match="exceeds the scale-up domain"):
        replica_model(Replica(device="h100-sxm", model="llama2-70b", tp=16))
    with pytest.raises(AccelsimError, match="does not support fp8"):
        replica_model(Replica(device="a100-80gb-sxm", model="llama2-70b", tp=4, weights="fp8"))


def test_faster_memory_decodes_faster_and_fp8_halves_the_weight_read():
    bf = replica_model(Replica(device="h100-sxm", model="llama2-70b", tp=4))
    f8 = replica_model(Replica(device="h100-sxm", model="llama2-70b", tp=4, weights="fp8",
                               kv_cache="fp8"))
    assert f8.kv_tokens > 2 * bf.kv_tokens * 0.99  # half the bytes per token, more room
    assert f8.decode_step_s(1, 512) < bf.decode_step_s(1, 512)


# DeepGEMM's measured FP8 GEMMs on H800 (github.com/deepseek-ai/DeepGEMM README, "Normal
# GEMMs for dense models", Feb 2025: every DeepSeek-V3 inference shape, NVCC 12.8):
# (M, N, K, TFLOP/s)
DEEPGEMM_H800 = [
    (64, 2112, 7168, 206), (64, 24576, 1536, 289), (64, 32768, 512, 219),
    (64, 7168, 16384, 336), (64, 4096, 7168, 287), (64, 7168, 2048, 295),
    (128, 2112, 7168, 352), (128, 24576, 1536, 535), (128, 32768, 512, 358),
    (128, 7168, 16384, 645), (128, 4096, 7168, 533), (128, 7168, 2048, 510),
    (4096, 2112, 7168, 1058), (4096, 24576, 1536, 990), (4096, 32768, 512, 590),
    (4096, 7168, 16384, 1358), (4096, 4096, 7168, 1304), (4096, 7168, 2048, 1025)]


def test_gemm_roofline_against_measured_fp8_kernels():
    """A GEMM costs its roofline plus one kernel's launch (the layer model counts one per
    GEMM): against the 18 measured shapes, from weight-bound M = 64 to compute-bound
    M = 4,096, the median time ratio is within 10 % and 15 of 18 shapes within 20 %.
    The three others: the two smallest GEMMs (N 7,168, K 2,048 at M 64 and 128: 6-7 us in
    all), where a whole 4 us launch is too much (CUDA graphs and programmatic launch hide
    part of it), and K 512 at M 4,096, whose 268 MB bf16 output the kernel writes at
    under half the streaming bandwidth."""
    import numpy as np

    from accelsim.llm.perf import _gemm

    h800 = load_device("h800").spec
    peak = h800.flops("fp8")
    ratios = []
    for m, n, k, tflops in DEEPGEMM_H800:
        ours = _gemm(np.array([float(m)]), k, n, 1.0, peak, h800)[0] + h800.kernel_overhead_s
        ratios.append(ours / (2 * m * n * k / (tflops * 1e12)))
    r = np.asarray(ratios)
    assert abs(np.median(r) - 1) < 0.10
    assert (abs(r - 1) < 0.20).sum() >= 15


def _drawn(spec, rng):
    """The spec with its rates moved as an uncertainty draw moves them (peaks, compute
    and memory efficiency, memory bandwidth), its geometry kept."""
    import dataclasses

    f = lambda: float(rng.uniform(0.6, 1.4))  # noqa: E731
    return dataclasses.replace(
        spec, peak_flops={p: v * f() for p, v in spec.peak_flops.items()},
        eff_compute=min(spec.eff_compute * f(), 1.0),
        eff_memory=min(spec.eff_memory * f(), 1.0), memory_bw_Bps=spec.memory_bw_Bps * f())


@pytest.mark.parametrize("device, model, tp, dp, weights", [
    ("h100-sxm", "llama2-70b", 4, 1, "bf16"),   # dense, stream-K, 132 units
    ("h20", "deepseek-v3", 1, 16, "fp8"),       # MoE, wide EP: split-K on the experts
    ("ascend-910c", "deepseek-v3", 2, 16, "int8"),  # 128 x 256 device tile, no stream-K
    ("ascend-910b", "llama2-70b", 8, 1, "int8"),
    ("mlu370-x8", "llama2-70b", 8, 1, "int8"),  # no compute units: the size curve
])
def test_gemm_lines_hold_to_the_kernel_model_across_draws(device, model, tp, dp, weights):
    """The fast path's cost tables (GEMM lines kept per shape and geometry, built the
    second time a geometry is asked for) equal the full ones to rounding, at the profile
    and at drawn rates, with the two micro-batch overlap where the model has MoE layers."""
    import numpy as np

    from accelsim.llm import perf

    base = load_device(device).spec
    mod = load_model(model)
    r = Replica(device=device, model=model, tp=tp, dp=dp, weights=weights,
                overlap_ep_comm=mod.moe is not None, max_seqs=64)
    rng = np.random.default_rng(7)
    perf._LINES.clear()
    perf._ASKED.clear()
    for spec in [base] + [_drawn(base, rng) for _ in range(4)]:
        full = replica_model(r, spec=spec, model=mod)
        for _ in range(2):  # the first asks for the lines, the second builds and uses them
            fast = replica_model(r, spec=spec, model=mod, lines=True)
            np.testing.assert_allclose(fast.linear_s, full.linear_s, rtol=1e-12, atol=0)
            assert (fast.c_kv, fast.c_pf, fast.c_head, fast.kv_blocks) == (
                full.c_kv, full.c_pf, full.c_head, full.kv_blocks)
    assert bool(perf._LINES) == (base.compute_units > 0)


def test_gemm_lines_equal_gemm_compute_time_on_odd_shapes():
    """Lines against the kernel model on fractional m (tokens per expert), tiny and large
    shapes, a short K (no split-K) and stream-K on and off."""
    import numpy as np

    from accelsim import kernels

    m = np.concatenate([[0.0], np.linspace(0.3, 40, 97), np.arange(41.0, 9000.0, 7.0)])
    for n, k, units, tm, tn, sk in [(7168, 2048, 132, 128, 128, 1.0),
                                    (576, 7168, 78, 128, 128, 1.0),
                                    (256, 7168, 48, 128, 256, 0.0),
                                    (28672, 8192, 24, 128, 256, 0.0),
                                    (1024, 200, 132, 128, 128, 1.0)]:
        moved = 2.0 * (m * k + m * n) + k * n
        lines = kernels.gemm_lines(m, n, k, 2.0, units, tm, tn, sk, moved)
        for peak, eff, bw, eff_m in [(989e12, 0.7, 3.35e12, 0.8), (148e12, 0.5, 4.0e12, 0.9),
                                     (2e15, 0.9, 1e12, 0.5)]:
            comp = kernels.gemm_compute_time(m, n, k, 2.0, peak, eff, units, tm, tn, bw,
                                             eff_m, sk)
            want = np.where(m > 0, np.maximum(comp, moved / (bw * eff_m)), 0.0)
            np.testing.assert_allclose(lines.time(peak, eff, bw, eff_m), want, rtol=1e-12,
                                       atol=0)


def test_moe_routing_bytes_by_hand():
    """Mixtral 8x7B (h 4096, 8 experts, top-2), bf16 rows: top-k softmax 4 x 8 + 8 x 2 =
    48 bytes; expansion (1 + 2) x 4096 x 2 = 24,576; finalize the same: 49,200 per token."""
    from accelsim.llm.perf import moe_routing_bytes

    assert moe_routing_bytes(4096, 8, 2) == pytest.approx(48 + 2 * 24576, rel=1e-12)
    # DeepSeek-V3 (h 7168, 256 experts, top-8): 4 x 256 + 64 + 2 x 9 x 7168 x 2
    assert moe_routing_bytes(7168, 256, 8) == pytest.approx(1088 + 258048, rel=1e-12)


def test_tp_moe_layer_pays_its_routing_and_the_dp_one_its_all_to_all(monkeypatch):
    """A tensor-parallel MoE layer (dp 1) costs its routing passes over all T tokens on
    every rank, T x moe_routing_bytes / (bw eff_m) + MOE_ROUTING_KERNELS launches, on top
    of its expert GEMMs; with attention data parallelism the dispatch and combine do it and
    the expert side has no routing term."""
    import numpy as np

    from accelsim.llm import perf

    mix = load_model("mixtral-8x7b")
    r = Replica(device="h100-sxm", model="mixtral-8x7b", tp=2, weights="fp8")
    T = np.array([0.0, 1.0, 512.0, 4096.0])
    wb = BYTES["fp8"]
    pw, pa = H100.flops("fp8"), H100.flops("bf16")
    ds = load_model("deepseek-v3")
    rd = Replica(device="h100-sxm", model="deepseek-v3", tp=1, dp=8, weights="fp8")
    _, _, ex, _, _ = perf._layer_costs(T, r, H100, mix, pw, pa, wb)
    _, _, exd, _, _ = perf._layer_costs(T, rd, H100, ds, pw, pa, wb)
    monkeypatch.setattr(perf, "MOE_ROUTING_KERNELS", 0.0)
    monkeypatch.setattr(perf, "moe_routing_bytes", lambda *a: 0.0)
    _, _, ex0, _, _ = perf._layer_costs(T, r, H100, mix, pw, pa, wb)
    _, _, exd0, _, _ = perf._layer_costs(T, rd, H100, ds, pw, pa, wb)
    mem = H100.memory_bw_Bps * H100.eff_memory
    want = T * 49200.0 / mem + 5.0 * H100.kernel_overhead_s
    np.testing.assert_allclose((ex - ex0)[1:], want[1:], rtol=1e-9)
    assert ex[0] == 0.0
    np.testing.assert_array_equal(exd, exd0)

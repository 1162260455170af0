"""The serving engines' tensor-parallel all-reduce (:func:`accelsim.llm.perf.serving_allreduce`):
the stack's rule between its own kernel and NCCL, by hand, against the nccl-tests rows of
tests/data/collectives/nccl.csv, and inside the replica's cost table."""

import csv
from pathlib import Path

import pytest

from accelsim import collectives as coll
from accelsim import stacks
from accelsim.devices import load_device
from accelsim.llm.job import Replica
from accelsim.llm.perf import nccl_allreduce, replica_model, serving_allreduce

DATA = Path(__file__).resolve().parents[1] / "data" / "collectives"
H100 = load_device("h100-sxm").spec
BW = H100.scaleup_bw_Bps * H100.eff_comm  # 0.75 x 450 GB/s
A = H100.scaleup_latency_s  # 5 us
BW_RED = H100.scaleup_bw_Bps * H100.eff_reduction  # 0.677 x 450 GB/s
LAT_RED = H100.reduction_latency_s  # 126 us
TRT = stacks.allreduce_rule(stacks.load_stack("tensorrt-llm"))
VLLM = stacks.allreduce_rule(stacks.load_stack("vllm"))
H405 = 16384 * 2.0  # one token of Llama 3 405B in bf16
H70 = 8192 * 2.0


def _direct(M: float, n: int) -> float:
    return 2 * (n - 1) / n * M / BW + 2 * A


def _oneshot(M: float, n: int) -> float:
    return (n - 1) * M / BW + A


def _nccl(M: float, n: int) -> float:
    ring = 2 * (n - 1) / n * M / BW + 2 * (n - 1) * A
    nvls = (n + 1) / n * M / BW_RED + LAT_RED
    return min(ring, nvls)


def _ar(M: float, tokens: float, n: int, rule=TRT) -> float:
    return float(serving_allreduce(M, tokens, n, BW, A, rule, BW_RED, LAT_RED))


def test_stack_rules_as_the_engines_sources_state():
    """TensorRT-LLM: 16 MB of workspace at tp <= 2 with no token limit, 8 MB and 128 tokens
    above; vLLM: below 8 MiB on 2, 4, 6 or 8 GPUs; MindIE states none."""
    assert TRT is not None and VLLM is not None
    assert TRT.custom_ok(16e6, 10_000, 2) and not TRT.custom_ok(16e6 + 1, 1, 2)
    assert TRT.custom_ok(8e6, 128, 8) and not TRT.custom_ok(8e6, 129, 8)
    assert not TRT.custom_ok(8e6 + 1, 1, 8) and TRT.custom_ok(1e6, 100, 4)
    assert VLLM.custom_ok(8 * 2**20 - 16, 100_000, 8)
    assert not VLLM.custom_ok(8 * 2**20 + 16, 1, 8) and not VLLM.custom_ok(1e3, 1, 3)
    assert stacks.allreduce_rule(stacks.load_stack("mindie")) is None


def test_tensorrt_llm_tp8_by_hand():
    """Llama 3 405B at tp 8: its kernel up to 128 tokens, the one-shot (7 M over the links,
    one step); NCCL above (its ring at 2 (n-1) steps or NVLS at 126 us + 9/8 M / 305 GB/s,
    the faster), even where the message would fit the 8 MB workspace (244 tokens)."""
    for T in (1, 64, 128):
        assert _ar(T * H405, T, 8) == pytest.approx(_oneshot(T * H405, 8), rel=1e-12)
    for T in (129, 200, 244, 245, 2048, 8192):
        assert _ar(T * H405, T, 8) == pytest.approx(_nccl(T * H405, 8), rel=1e-12)
    # the engine's rule, not the faster: past 128 tokens NCCL costs more than its kernel
    assert _ar(200 * H405, 200, 8) > 2 * _direct(200 * H405, 8)
    # 64 MB: ring 70 us + 1.75 M / 337.5 GB/s = 410 us; NVLS 126 + 1.125 M / 304.65 = 374 us
    M = 2048 * H405
    assert _ar(M, 2048, 8) == pytest.approx(126e-6 + 1.125 * M / (0.677 * 450e9), rel=1e-9)
    assert _ar(M, 2048, 8) < float(coll.ring_allreduce(M, 8, BW, A))


def test_tensorrt_llm_tp2_takes_its_kernel_up_to_16_mb():
    """Llama 3 70B at tp 2: 976 tokens are 15.99 MB (its kernel), 977 are 16.01 MB (NCCL:
    at two ranks the ring's M / bw + 2 alpha beats NVLS's 3/2 M / bw_red + 126 us)."""
    assert _ar(976 * H70, 976, 2) == pytest.approx(_direct(976 * H70, 2), rel=1e-12)
    assert _ar(128 * H70, 128, 2) == pytest.approx(_oneshot(128 * H70, 2), rel=1e-12)
    assert _ar(129 * H70, 129, 2) == pytest.approx(_direct(129 * H70, 2), rel=1e-12)
    M = 977 * H70
    assert _ar(M, 977, 2) == pytest.approx(M / BW + 2 * A, rel=1e-12)


def test_tensorrt_llm_min_latency_kernel_is_the_one_shot_up_to_128_tokens():
    """allreduceOp.cpp (4bb1ef88) runFusionAllReduce: MIN_LATENCY takes the one-shot Lamport
    kernel when seq_len <= kOneShotMaxToken (128), whose every rank writes its whole input
    into every rank's buffer (allReduceFusionKernels.cu); at tp > 2 MIN_LATENCY only runs up
    to 128 tokens, so there it is always the one-shot. At tp 8 it moves 7 M against the
    two-shot's 1.75 M and saves one latency step: cheaper below ~0.34 MB (10 tokens of the
    405B), dearer above. The 405B at tp 8 in the 20000/2000 rows decodes ~38 (H100) and ~125
    (H200) sequences: 1.2 and 4.1 MB, 2 x 126 all-reduces a step cost 3.6 and 14.8 ms more
    than the two-shot would. vLLM's rule states no one-shot token threshold (its one-stage
    kernel is chosen by bytes, below 256-512 KB, where the two prices are within a latency)."""
    assert TRT is not None and VLLM is not None
    assert TRT.oneshot_max_tokens == 128 and VLLM.oneshot_max_tokens == 0
    cross = A / (5.25 / BW)  # 7 M / bw + A = 1.75 M / bw + 2 A
    assert _ar(0.9 * cross, 8, 8) < _direct(0.9 * cross, 8)
    assert _ar(1.1 * cross, 12, 8) > _direct(1.1 * cross, 8)
    for T, extra_ms in ((38, 3.6), (125, 14.8)):
        M = T * H405
        gap = 2 * 126 * (_ar(M, T, 8) - _direct(M, 8))
        assert gap * 1e3 == pytest.approx(extra_ms, abs=0.1)
    # vLLM at the same message: its two-shot price
    assert _ar(38 * H405, 38, 8, VLLM) == pytest.approx(_direct(38 * H405, 8), rel=1e-12)


def test_the_replica_cost_table_takes_the_one_shot_up_to_128_tokens():
    """405B FP8 at tp 8 on H100: up to 128 tokens each layer's two all-reduces take the
    one-shot; with the stack's threshold at 0 (the two-shot) the table moves by exactly
    126 x 2 x (one-shot - two-shot) there and not above."""
    r = Replica(device="h100-sxm", model="llama3-405b", tp=8, weights="fp8", kv_cache="fp8",
                max_batched_tokens=512, max_seqs=64)
    rm = replica_model(r)
    with stacks.overridden({"tensorrt-llm": {"allreduce.oneshot_max_tokens": 0}}):
        two = replica_model(r)
    for T in (1, 38, 128):
        gap = 126 * 2 * (_oneshot(T * H405, 8) - _direct(T * H405, 8))
        assert float(rm.linear_s[T] - two.linear_s[T]) == pytest.approx(gap, rel=1e-9)
    for T in (129, 512):
        assert float(rm.linear_s[T]) == float(two.linear_s[T])


def test_vllm_has_no_token_limit_but_a_world_size_list():
    M = 200 * H405  # 6.6 MB, 200 tokens: vLLM's kernel, TensorRT-LLM's NCCL
    assert _ar(M, 200, 8, VLLM) == pytest.approx(_direct(M, 8), rel=1e-12)
    assert _ar(M, 200, 8, TRT) == pytest.approx(_nccl(M, 8), rel=1e-12)
    assert _ar(M, 200, 6, VLLM) == pytest.approx(_direct(M, 6), rel=1e-12)


def test_nvls_against_nccl_tests_on_8_h100():
    """NCCL's NVLS on the H100 profile's fabric against the six 8 x H100 all_reduce_perf
    sizes (128 MiB to 4 GiB; the latency is their intercept, the bandwidth their slope):
    bus bandwidth within 6 % at every size, and NVLS is what NCCL runs there."""
    rows = [r for r in csv.DictReader(open(DATA / "nccl.csv", newline=""))
            if r["system"] == "hgx-h100-8"]
    assert len(rows) == 6
    for r in rows:
        M, n = float(r["size_B"]), int(r["n"])
        t = float(nccl_allreduce(M, n, BW, A, BW_RED, LAT_RED))
        assert t == pytest.approx(float(coll.in_switch_allreduce(M, n, BW_RED, LAT_RED)))
        busbw = M / t * 2 * (n - 1) / n
        assert busbw == pytest.approx(float(r["measured_GBps"]) * 1e9, rel=0.06), r["id"]


def test_without_a_rule_the_fastest_of_ring_tree_and_direct():
    """No stack rule (MindIE, no serving stack): small messages take the direct kernel's 2
    latency steps (ring 2 (n-1), tree 2 log2 n); large ones move 2 (n-1)/n M whichever runs;
    at n = 2 the ring is already two steps."""
    small, big = H405, 8192 * H405
    assert _ar(small, 1, 8, None) == pytest.approx(_direct(small, 8), rel=1e-12)
    assert _ar(small, 1, 8, None) < float(coll.tree_allreduce(small, 8, BW, A))
    assert _ar(big, 8192, 8, None) == pytest.approx(
        float(coll.ring_allreduce(big, 8, BW, A)), rel=0.05)
    for M in (small, big):
        assert _ar(M, 1, 2, None) == pytest.approx(
            float(coll.ring_allreduce(M, 2, BW, A)), rel=1e-12)


def test_the_replica_cost_table_switches_at_128_tokens():
    """405B FP8 at tp 8 on H100 (TensorRT-LLM, NVIDIA's default serving stack): at 129 to
    244 tokens each layer's two all-reduces run on NCCL, and would run on the kernel with no
    token limit (the workspace's 8 MB then binds); nothing else in the table moves."""
    r = Replica(device="h100-sxm", model="llama3-405b", tp=8, weights="fp8", kv_cache="fp8",
                max_batched_tokens=512, max_seqs=64)
    rm = replica_model(r)
    with stacks.overridden({"tensorrt-llm": {"allreduce.max_tokens": 1e6}}):
        free = replica_model(r)
    for T in (1, 128, 245, 512):
        assert float(rm.linear_s[T]) == float(free.linear_s[T])
    for T in (129, 200, 244):
        gap = 126 * 2 * (_nccl(T * H405, 8) - _direct(T * H405, 8))
        assert float(rm.linear_s[T] - free.linear_s[T]) == pytest.approx(gap, rel=1e-9)


def test_vllm_on_rocm_takes_its_kernel_below_8_mib_and_rccl_above():
    """AMD's default serving stack is vLLM on ROCm: its custom all-reduce runs over the
    xGMI mesh (fully connected) below 8 MiB at tp 2, 4, 6, 8 and RCCL above; QuickReduce is
    off by default. Llama 3.1 70B at tp 8 on MI300X: 512 tokens of 16 KiB are 8 MiB, so up
    to 512 tokens each layer's two all-reduces take the direct kernel's 2 latency steps and
    past it RCCL's ring, 2 (n - 1) steps: the cost table moves by 80 x 2 x 12 alpha there
    and nowhere else."""
    st = stacks.default_stack("AMD", "serving")
    assert st is not None and st.name == "vllm-rocm"
    rule = stacks.allreduce_rule(st)
    assert rule is not None
    assert rule.custom_ok(8 * 2**20 - 16, 100_000, 8) and not rule.custom_ok(8 * 2**20 + 16, 1, 8)
    mi = load_device("mi300x").spec
    bw, a = mi.scaleup_bw_Bps * mi.eff_comm, mi.scaleup_latency_s
    M = 600 * H70
    assert float(serving_allreduce(M, 600, 8, bw, a, rule)) == pytest.approx(
        float(coll.ring_allreduce(M, 8, bw, a)), rel=1e-12)
    r = Replica(device="mi300x", model="llama3-70b", tp=8, weights="fp8", kv_cache="fp8",
                max_batched_tokens=1024, max_seqs=64)
    rm = replica_model(r)
    with stacks.overridden({"vllm-rocm": {"allreduce.max_MB": 1e6}}):
        free = replica_model(r)
    for T in (1, 256, 512):
        assert float(rm.linear_s[T]) == float(free.linear_s[T])
    for T in (513, 1000):
        gap = 80 * 2 * (2 * 7 - 2) * a
        assert float(rm.linear_s[T] - free.linear_s[T]) == pytest.approx(gap, rel=1e-9)


def _azure(device: str) -> list[tuple[float, int, float]]:
    """(bytes, ranks, measured seconds) of Azure's NVLS all-reduce curve on 8 GPUs."""
    with open(DATA / "azure-nvls-allreduce.csv", newline="") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    out = []
    for r in rows:
        if r["device"] == device:
            M, n = float(r["size_B"]), int(r["n"])
            out.append((M, n, M / (float(r["busbw_GBps"]) * 1e9 * n / (2 * (n - 1)))))
    return out


def test_nccl_at_decode_sizes_against_a_full_nvls_curve():
    """The serving NCCL price (the faster of the ring and NVLS at the #290 intercept and slope)
    against a full all_reduce_perf curve on 8 x H100 (Azure's AI benchmarking guide, 1 MiB to
    8 GiB, not fitted on): within 5 % from 256 MiB up, where the profile's two numbers come
    from, but 1.1-1.4x the measured time at 8-64 MiB, the messages of a TP8 decode step of a
    16k-hidden model at 128-2,048 sequences (NCCL's NVLS ramps its bandwidth with size; a
    latency-plus-bandwidth line cannot hold both ends). Pricing the measured curve there moves
    the 405B TensorRT-LLM decode rows on H100 and H200 up by 4-14 points alike (to +12 %),
    which the rows do not support (docs/_notes/trtllm-perf-overview-misses.md), so it is
    recorded, not applied. The
    8 x H200 curve of the same guide is within 6 % of the H100's from 8 MiB up (same NVSwitch
    generation): the fabric is not what separates the twins."""
    h100 = _azure("h100-sxm")
    assert len(h100) == 14
    for M, n, t in h100:
        ours = float(nccl_allreduce(M, n, BW, A, BW_RED, LAT_RED))
        if M >= 256 * 2**20:
            assert ours == pytest.approx(t, rel=0.05), M
        elif 8 * 2**20 <= M <= 64 * 2**20:
            assert 1.10 <= ours / t <= 1.40, M
    h200 = {M: t for M, _, t in _azure("h200")}
    for M, _, t in h100:
        if M >= 8 * 2**20:
            assert h200[M] == pytest.approx(t, rel=0.06), M

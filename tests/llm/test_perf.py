"""The iteration cost against closed forms: decode against the memory roofline, prefill
against compute, KV capacity and KV bytes by hand."""

import pytest

from accelsim.devices import load_device
from accelsim.errors import AccelsimError
from accelsim.llm.job import Replica
from accelsim.llm.perf import KERNELS_PER_LAYER, kv_bytes_per_token, replica_model
from accelsim.precision import BYTES
from accelsim.training import collectives as coll
from accelsim.training.job import load_model
from accelsim.training.perf import RUNTIME_RESERVE_BYTES

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
    fixed = L70.layers * (KERNELS_PER_LAYER * H100.kernel_overhead_s + 2 * coll.ring_allreduce(
        L70.hidden * 2.0, tp, H100.scaleup_bw_Bps * H100.eff_comm, H100.scaleup_latency_s))
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
    # layer, memory-bound) add 8 %
    mem = H100.memory_bw_Bps * H100.eff_memory
    traffic = L70.layers * T * 2.0 * (10 * L70.hidden + 3 * L70.ffn_hidden / tp) / mem
    assert t == pytest.approx(compute + allreduce + traffic, rel=0.01)


def test_kv_capacity_by_hand():
    tp = 4
    rm = replica_model(Replica(device="h100-sxm", model="llama2-70b", tp=tp))
    per_token = 2 * (8 / tp) * 128 * 80 * 2  # K and V, 2 of 8 KV heads, head 128, 80 layers
    assert rm.kv_bytes_per_token == per_token
    from accelsim.training.perf import model_params

    weights = model_params(L70) * 2 / tp
    h, ffn = L70.hidden, L70.ffn_hidden
    workspace = 8192 * 2 * (4 * h + 2 * ffn * 2 / tp) + 256 * L70.vocab / tp * 4
    free = H100.memory_bytes * 0.9 - weights - workspace - RUNTIME_RESERVE_BYTES
    assert rm.kv_blocks == int(free // (per_token * 16))


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

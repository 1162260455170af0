"""DP attention and wide expert parallelism (SGLang, DeepSeek, CloudMatrix-Infer): the KV
cache spread over the groups, the all-to-all by hand, the two-micro-batch overlap, MLA's
absorbed decode against GQA's, multi-token prediction's step, and the scheduler on a wide
replica (compiled equals simpy)."""

from dataclasses import replace

import numpy as np
import pytest

from accelsim.devices import load_device
from accelsim.llm.engine import run_fast
from accelsim.llm.engine_simpy import run_simpy
from accelsim.llm.job import Replica
from accelsim.llm.perf import _layer_costs, replica_model
from accelsim.precision import BYTES
from accelsim.transformer.model import load_model
from tests.llm.streams import stream

DS = load_model("deepseek-v3")
H100 = load_device("h100-sxm").spec


def _wide(**kw) -> Replica:
    base = {"device": "h100-sxm", "model": "deepseek-v3", "dp": 16, "weights": "fp8",
            "redundant_experts": 32, "max_batched_tokens": 4096, "max_seqs": 4096}
    return Replica(**{**base, **kw})


def test_dp_attention_memory_by_hand():
    """Each of 16 devices holds every non-expert weight (DP attention; the embedding table
    and LM head in bf16, the rest in fp8) and 288 / 16 = 18 expert slots per MoE layer; what
    is left of 90 % of memory, less the iteration's profiling peak and the runtime reserve,
    holds its own sequences' latent KV. Tensor parallelism instead replicates the latent on
    each device of a group."""
    from accelsim.runtime import RUNTIME_RESERVE_BYTES
    from accelsim.transformer.params import model_params

    r = _wide()
    dp = replica_model(r)
    e, h = DS.moe, DS.hidden
    one_expert = 3 * h * e.ffn_hidden
    routed = DS.n_moe_layers * e.experts * one_expert
    weights = (model_params(DS) - routed + DS.n_moe_layers * 18 * one_expert) * 1.0
    # the FP8 checkpoint keeps its (untied) embedding table and LM head in bf16: 1 byte more
    weights += DS.vocab * h * (1 if DS.tied_embeddings else 2) * 1.0
    ws = (r.max_batched_tokens / 16 * 2.0 * (4 * h + 2 * e.ffn_hidden * e.top_k * 2)
          + r.max_seqs / 16 * DS.vocab * 4.0)
    # vLLM's rule: the profiling peak is the larger of the forward and the sampler pass
    # (top-k/top-p over each group's 256 sequences x the full vocabulary, 40 bytes a logit,
    # beside the forward pass's output rows, which profile_run deletes after sampling)
    ws = max(ws, r.max_seqs / 16 * DS.vocab * 40.0 + r.max_batched_tokens / 16 * h * 2.0)
    free = H100.memory_bytes * 0.9 - weights - ws - RUNTIME_RESERVE_BYTES
    kv_tok = (DS.mla.kv_lora_rank + DS.mla.rope_head_dim) * DS.layers * 2.0
    assert dp.weights_bytes == pytest.approx(weights, rel=1e-12)
    assert dp.kv_blocks == 16 * int(free // (kv_tok * 16))
    tp = replica_model(_wide(dp=2, tp=8))
    assert tp.kv_bytes_per_token == dp.kv_bytes_per_token == kv_tok  # replicated under TP
    assert tp.kv_blocks % 2 == 0 and tp.devices == 16


def test_all_to_all_by_hand():
    """Two nodes of 8: half of the busiest device's dispatch (fp8) and combine (bf16)
    leaves the node on the 400 Gb/s NIC at the DeepEP efficiency; each op pays one
    scale-out latency. The busiest device holds mu + z_16 sigma of the copies (mu = T k /
    16, sigma = sqrt(mu 15/16), :mod:`accelsim.llm.expert_load`)."""
    from accelsim.llm.expert_load import expected_max_std_normal

    r = _wide()
    T = np.array([4096.0])
    _, _, _, disp, comb = _layer_costs(T, r, H100, DS, H100.flops("fp8"), H100.flops("bf16"),
                                       BYTES["fp8"])
    ep, k, h = 16, DS.moe.top_k, DS.hidden
    mu = T[0] * k / ep
    busiest = (mu + expected_max_std_normal(16) * (mu * 15 / 16) ** 0.5) / mu
    per_dev = T[0] / ep * busiest * k * h * (1 + 2) * (1 - 1 / ep)
    out = 0.5 * per_dev / (H100.scaleout_bw_Bps * H100.eff_a2a)
    assert H100.eff_a2a == pytest.approx(0.79)
    assert disp[0] + comb[0] == pytest.approx(out + 2 * H100.scaleout_latency_s, rel=1e-12)
    assert comb[0] - H100.scaleout_latency_s == pytest.approx(
        2 * (disp[0] - H100.scaleout_latency_s), rel=1e-12)  # bf16 back, 8-bit out


def test_prefill_sends_a_token_once_per_remote_node():
    """DeepEP's normal (prefill) kernels cross the network once per node a token needs, at
    most max_nodes (4) of 4 nodes; decode kernels send every expert copy."""
    T = np.array([16384.0])
    args = (H100, DS, H100.flops("fp8"), H100.flops("bf16"), BYTES["fp8"])
    dec = _layer_costs(T, _wide(dp=32, role="decode"), *args)
    pre = _layer_costs(T, _wide(dp=32, role="prefill"), *args)
    n_dom, k = 4, DS.moe.top_k
    hit = n_dom * (1 - (1 - 1 / n_dom) ** k)
    ratio = min(DS.moe.max_nodes, hit) * (n_dom - 1) / n_dom / (k * (n_dom - 1) / n_dom)
    lat = 2 * H100.scaleout_latency_s
    assert (pre[3][0] + pre[4][0] - lat) == pytest.approx(
        ratio * (dec[3][0] + dec[4][0] - lat), rel=1e-12)


def test_two_micro_batches_never_slower_and_hide_the_all_to_all_at_scale():
    plain = replica_model(_wide(max_batched_tokens=65536))
    tbo = replica_model(_wide(max_batched_tokens=65536, overlap_ep_comm=True))
    assert np.all(tbo.linear_s <= plain.linear_s * (1 + 1e-12))
    assert tbo.linear_s[65536] < 0.8 * plain.linear_s[65536]
    # one decode token per device: halves re-read the weights, nothing to gain
    assert tbo.linear_s[16] == pytest.approx(plain.linear_s[16], rel=1e-12)


def test_prefill_overlap_pays_for_the_sms_the_all_to_all_holds():
    """DeepEP's prefill kernels hold 24 of 132 SMs: a prefill replica's overlapped phases
    take max(x, c + 0.18 x) instead of max(x, c); decode kernels hold none."""
    assert H100.a2a_compute_share == pytest.approx(0.18)
    T = 65536
    r = _wide(max_batched_tokens=T, overlap_ep_comm=True, role="prefill")
    pre = replica_model(r)
    free = replica_model(r, spec=replace(H100, a2a_compute_share=0.0))
    args = (H100, DS, H100.flops("fp8"), H100.flops("bf16"), BYTES["fp8"])
    half = np.array([T / 2])
    _, a2, e2, d2, c2 = _layer_costs(half, _wide(role="prefill"), *args)
    f = 0.18
    tbo = (max(d2[0], a2[0] + f * d2[0]) + max(d2[0], e2[0] + f * d2[0])
           + max(c2[0], e2[0] + f * c2[0]) + max(c2[0], a2[0] + f * c2[0]))
    dense, at, ex, di, co = _layer_costs(np.array([float(T)]), _wide(role="prefill"), *args)
    n_moe, L = DS.n_moe_layers, DS.layers
    head = DS.hidden * DS.vocab * 1.0 / (H100.memory_bw_Bps * H100.eff_memory)
    expect = (L - n_moe) * dense[0] + n_moe * min(at[0] + ex[0] + di[0] + co[0], tbo) + head
    assert pre.linear_s[T] == pytest.approx(expect, rel=1e-12)
    assert pre.linear_s[T] > free.linear_s[T]
    assert replica_model(_wide(role="decode", overlap_ep_comm=True)).linear_s[4096] == \
        pytest.approx(replica_model(_wide(role="decode", overlap_ep_comm=True),
                                    spec=replace(H100, a2a_compute_share=0.0)).linear_s[4096],
                      rel=1e-12)


def test_mla_decode_is_compute_bound_and_gqa_memory_bound():
    """Absorbed MLA: 128 heads score and sum over one 576-wide latent per key, 2 x 128 x
    (2 x 512 + 64) FLOPs per key per layer against 576 bytes read; GQA's 8 KV heads of
    Llama 2 70B read 2 x 8 x 128 bytes per key for 4 x 64 x 128 FLOPs."""
    mla = replica_model(_wide(kv_cache="bf16"))
    gqa = replica_model(Replica(device="h100-sxm", model="llama2-70b", tp=4))
    assert mla.c_kv_flop > 1.2 * mla.c_kv_read
    assert gqa.c_kv_read > 2 * gqa.c_kv_flop
    flops = 2 * DS.heads * (2 * DS.mla.kv_lora_rank + DS.mla.rope_head_dim) * DS.layers
    from accelsim.roofline import FLASH_REL_EFF
    assert mla.c_kv_flop == pytest.approx(
        flops / (H100.flops("bf16") * H100.eff_compute * FLASH_REL_EFF) / 16, rel=1e-12)


def test_multi_token_prediction_step_by_hand():
    """One draft: 2 tokens per sequence through the linear layers and the LM head, one KV
    read against twice the FLOPs, the MTP module's layer on top; 1.7 tokens per step."""
    rm = replica_model(_wide(mtp_tokens=1, mtp_acceptance=0.7))
    plain = replica_model(_wide())
    B, ctx = 512, 3000
    by_hand = (float(rm.linear_s[2 * B]) + max(rm.c_kv_read, 2 * rm.c_kv_flop) * B * ctx
               + rm.c_head * 2 * B) * (1 + DS.mtp_layers / DS.layers)
    assert rm.decode_step_s(B, ctx) == pytest.approx(by_hand, rel=1e-12)
    assert rm.tokens_per_step == pytest.approx(1.7)
    one = plain.decode_step_s(B, ctx)
    assert one < rm.decode_step_s(B, ctx) < 2 * one
    with pytest.raises(Exception, match="no multi-token prediction"):
        replica_model(Replica(device="h100-sxm", model="llama2-70b", tp=4, mtp_tokens=1))


def test_mtp_in_the_scheduler_gains_its_mean_and_engines_agree():
    """A lone 1,000-token decode takes 1 + 999 / 1.7 iterations, not 1,000 (the
    deterministic acceptance keeps the mean exact); the compiled and simpy schedulers
    agree request by request with drafts, preemptions included."""
    rm = replace(replica_model(_wide(max_batched_tokens=2048, max_seqs=64, mtp_tokens=1,
                                     mtp_acceptance=0.7)), kv_blocks=400)
    a = run_fast(np.array([0.0]), np.array([100]), np.array([1000]), rm)
    assert a.iterations == 1 + int(np.ceil(999 / 1.7))
    arr, p, o = stream(300, 20.0, 9, pmean=500, omean=150, sigma=0.7)
    f, s = run_fast(arr, p, o, rm), run_simpy(arr, p, o, rm)
    assert f.preemptions.sum() > 0
    assert np.array_equal(f.preemptions, s.preemptions)
    assert np.allclose(f.done_s, s.done_s, rtol=1e-12, atol=0)
    assert f.iterations == s.iterations


def test_scheduler_on_a_wide_replica_compiled_equals_simpy():
    rm = replace(replica_model(_wide(max_batched_tokens=2048, max_seqs=64,
                                     overlap_ep_comm=True)), kv_blocks=600)
    arr, p, o = stream(300, 20.0, 5, pmean=500, omean=100, sigma=0.7)
    a, b = run_fast(arr, p, o, rm), run_simpy(arr, p, o, rm)
    assert np.allclose(a.done_s, b.done_s, rtol=1e-12, atol=0)
    assert a.iterations == b.iterations

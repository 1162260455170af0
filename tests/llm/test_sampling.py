"""A serving stack's cost per sequence that samples a token (:func:`accelsim.llm.perf.head_seconds`,
the stack's ``iteration`` block): the LM head's row, the logits' all-gather over the TP ranks,
the sampler's HBM passes over the vocabulary each rank samples and the host time per sequence,
by hand; a stack without the block keeps the shard-only read; the replica's ``c_head`` takes
the vendor's default serving stack's terms, and a stack override moves them."""

import pytest

from accelsim import stacks, units
from accelsim.devices import load_device
from accelsim.llm.job import Replica
from accelsim.llm.perf import head_seconds, replica_model
from accelsim.transformer.model import load_model

MI300X = load_device("mi300x").spec
H100 = load_device("h100-sxm").spec
L70 = load_model("llama3-70b")
VLLM_ROCM = stacks.iteration_terms(stacks.load_stack("vllm-rocm"))


def _terms(gather: bool = True, sampler_bytes: float = 56.0, host_us: float = 1.1):
    return stacks.IterationTerms(gather, sampler_bytes, host_us * units.US)


def test_without_a_stack_each_rank_reads_its_shard_once():
    h, V, tp = L70.hidden, L70.vocab, 8
    peak = MI300X.flops("fp8")
    mem = MI300X.memory_bw_Bps * MI300X.eff_memory
    by_hand = 2 * h * V / tp / (peak * MI300X.eff_compute) + 8.0 * V / tp / mem
    assert head_seconds(h, V, tp, 1, peak, MI300X, None) == pytest.approx(by_hand, rel=1e-12)


def test_gathered_logits_are_sent_and_sampled_whole_on_every_rank():
    h, V, tp = L70.hidden, L70.vocab, 8
    peak = MI300X.flops("fp8")
    mem = MI300X.memory_bw_Bps * MI300X.eff_memory
    link = MI300X.scaleup_bw_Bps * MI300X.eff_comm
    gemm = 2 * h * V / tp / (peak * MI300X.eff_compute)
    by_hand = gemm + 7 / 8 * 2.0 * V / link + 56.0 * V / mem + 1.1e-6
    assert head_seconds(h, V, tp, 1, peak, MI300X, _terms()) == pytest.approx(by_hand,
                                                                              rel=1e-12)
    # without the gather a rank samples its shard and sends nothing
    shard = gemm + 56.0 * V / tp / mem + 1.1e-6
    assert head_seconds(h, V, tp, 1, peak, MI300X, _terms(gather=False)) == pytest.approx(
        shard, rel=1e-12)


def test_the_sampler_and_host_are_not_divided_over_the_tp_ranks():
    """What a rank does per sequence with gathered logits does not shrink with tp: only the
    LM head's GEMM row does; at tp 1 nothing is sent."""
    h, V = L70.hidden, L70.vocab
    peak = MI300X.flops("fp8")
    it = _terms()
    mem = MI300X.memory_bw_Bps * MI300X.eff_memory
    gemm = 2 * h * V / (peak * MI300X.eff_compute)
    one = head_seconds(h, V, 1, 1, peak, MI300X, it)
    assert one == pytest.approx(gemm + 56.0 * V / mem + 1.1e-6, rel=1e-12)
    eight = head_seconds(h, V, 8, 1, peak, MI300X, it)
    assert eight - gemm / 8 > one - gemm  # the same sampling plus the all-gather


def test_attention_groups_share_the_sequences():
    h, V = L70.hidden, L70.vocab
    peak = MI300X.flops("fp8")
    one = head_seconds(h, V, 8, 1, peak, MI300X, _terms())
    assert head_seconds(h, V, 8, 4, peak, MI300X, _terms()) == pytest.approx(one / 4, rel=1e-12)


def test_vllm_rocm_terms_in_si_units():
    assert VLLM_ROCM == stacks.IterationTerms(True, 56.0, pytest.approx(21.5e-6, rel=1e-12))
    # TensorRT-LLM's block keeps the shard-only read and adds only an overlapped host
    # (tests/llm/test_trtllm_host.py): its c_head is the no-stack price
    trt = stacks.iteration_terms(stacks.load_stack("tensorrt-llm"))
    assert trt is not None and trt.host_seq_s == 0.0
    h, V, peak = L70.hidden, L70.vocab, H100.flops("fp8")
    assert head_seconds(h, V, 2, 1, peak, H100, trt) == pytest.approx(
        head_seconds(h, V, 2, 1, peak, H100, None), rel=1e-12)
    q = stacks.load_stack("vllm-rocm").quantities()
    assert q["iteration.sampler_bytes"].value == 56.0
    assert q["iteration.host_seq_us"].value == 21.5


def test_the_replica_takes_its_vendors_serving_stack():
    r = Replica(device="mi300x", model="llama3-70b", tp=8, weights="fp8", kv_cache="fp8")
    rm = replica_model(r)
    h, V = L70.hidden, L70.vocab
    assert rm.c_head == pytest.approx(
        head_seconds(h, V, 8, 1, MI300X.flops("fp8"), MI300X, VLLM_ROCM), rel=1e-12)
    # TP8 Llama 3 70B on MI300X, ~24 us a sequence: the sampler's 56 B x 128k at 4.24 TB/s
    # 1.7 us, the all-gather 0.8 us, V1's host gap 21.5 us, the LM head's row 0.2 us
    assert 23.5e-6 < rm.c_head < 25e-6
    # NVIDIA's default serving stack (TensorRT-LLM) gives no iteration block: unchanged
    rn = replica_model(Replica(device="h100-sxm", model="llama3-70b", tp=8, weights="fp8",
                               kv_cache="fp8"))
    assert rn.c_head == pytest.approx(
        head_seconds(h, V, 8, 1, H100.flops("fp8"), H100, None), rel=1e-12)


def test_a_stack_override_moves_the_host_time():
    r = Replica(device="mi300x", model="llama3-70b", tp=8, weights="fp8", kv_cache="fp8")
    base = replica_model(r).c_head
    with stacks.overridden({"vllm-rocm": {"iteration.host_seq_us": 31.5}}):
        more = replica_model(r).c_head
    assert more - base == pytest.approx(10e-6, rel=1e-9)
    assert replica_model(r).c_head == base


def test_multi_step_scheduling_pays_the_host_once_per_round():
    """vLLM V0's num_scheduler_steps (AMD's MLPerf harness: 7-13) runs the host's work per
    sequence once per n decode steps: 1/n of it per step; the device terms are unchanged."""
    r = Replica(device="mi300x", model="llama3-70b", tp=8, weights="fp8", kv_cache="fp8")
    one = replica_model(r).c_head
    eleven = replica_model(r.model_copy(update={"scheduler_steps": 11})).c_head
    host = VLLM_ROCM.host_seq_s
    assert one - eleven == pytest.approx(host * (1 - 1 / 11), rel=1e-9)
    assert replica_model(r.model_copy(update={"scheduler_steps": 1})).c_head == one

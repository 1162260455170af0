"""The serving engines' memory-profiling peak (accelsim/llm/perf.py ``profiling_peak_bytes``)
against a published vLLM breakdown."""

from __future__ import annotations

import pytest

from accelsim import units
from accelsim.llm.perf import profiling_peak_bytes, sampler_peak_bytes
from accelsim.transformer.model import load_model

# vllm-project/vllm#10511 (youkaichao, 2024-12-14, H100, vLLM V0 defaults: max_num_seqs 256,
# max_num_batched_tokens = max_model_len 8192): `vllm serve meta-llama/Meta-Llama-3-8B` at
# TP1 and TP2 both log "PyTorch activation peak memory 1.26GiB".
PUBLISHED_PEAK_GIB = {1: 1.26, 2: 1.26}


@pytest.mark.parametrize("tp", sorted(PUBLISHED_PEAK_GIB))
def test_vllm_profiling_peak_matches_the_published_breakdown(tp):
    m = load_model("llama3-8b")
    peak = profiling_peak_bytes(m.hidden, m.ffn_hidden * 2, m.vocab, tp, 8192, 256, True)
    assert peak / units.GiB == pytest.approx(PUBLISHED_PEAK_GIB[tp], rel=0.05)


def test_the_tp_independent_peak_is_the_sampler():
    # the forward pass alone halves its MLP share at TP2 and misses the published TP2 peak;
    # the sampler pass (full vocabulary on every rank) is what keeps it at 1.26 GiB
    m = load_model("llama3-8b")
    forward = profiling_peak_bytes(m.hidden, m.ffn_hidden * 2, m.vocab, 2, 8192, 256, False)
    assert forward / units.GiB < 0.8 * PUBLISHED_PEAK_GIB[2]
    assert sampler_peak_bytes(256, m.vocab) > forward


def test_fp8_checkpoint_holds_its_embeddings_in_bf16():
    # NVIDIA/TensorRT-LLM#6294 (TensorRT-LLM 0.20.0, trtllm-bench, one H100,
    # nvidia/Llama-3.1-8B-Instruct-FP8): "Rank 0 uses 8.46 GB for model weights" (GiB: the
    # linear layers in fp8, the embedding table and LM head in bf16); all of it in fp8 would
    # be 7.48 GiB
    from accelsim.llm.job import Replica
    from accelsim.llm.perf import replica_model

    r = Replica(model="llama3-8b", device="h100-sxm", tp=1, weights="fp8", kv_cache="fp8",
                memory_share_of="free")
    assert replica_model(r).weights_bytes / units.GiB == pytest.approx(8.46, rel=0.01)
    bf16 = Replica(model="llama3-8b", device="h100-sxm", tp=1, weights="bf16")
    m = load_model("llama3-8b")
    assert replica_model(bf16).weights_bytes == pytest.approx(
        2 * (m.vocab * m.hidden * 2 + 6_979_588_096), rel=0.01)


def test_vllm_sampler_pass_holds_the_forward_output_beside_it():
    # vLLM's profile_run deletes hidden_states ([max_num_batched_tokens, h]) only after
    # _dummy_sampler_run: at TP2 the published 1.26 GiB (vllm-project/vllm#10511) is the
    # sampler's 256 x 128,256 x 40 B plus those 8,192 bf16 rows of 4,096, within 3 %
    m = load_model("llama3-8b")
    peak = profiling_peak_bytes(m.hidden, m.ffn_hidden * 2, m.vocab, 2, 8192, 256, True)
    rows = 8192 * m.hidden * 2
    assert peak == pytest.approx(sampler_peak_bytes(256, m.vocab) + rows)
    assert peak / units.GiB == pytest.approx(PUBLISHED_PEAK_GIB[2], rel=0.03)


def test_amd_vllm_rows_profile_the_published_token_budget():
    # AMD's throughput command (ROCm/vllm docs/dev-docker/README.md, --max-num-batched-tokens
    # 131072): the profiling forward pass of the 405B at TP8 holds 131,072 tokens of
    # full-width rows (22.5 GiB per GPU) and no longer the sampler pass (9.6 GiB at
    # max_num_seqs 2,000): the KV cache of the MI300X row loses ~12.9 GiB per GPU
    from accelsim.runs.file import heldout_dir, load_runs

    for run in load_runs(heldout_dir() / "amd-vllm-mi300x.yaml").runs:
        assert run.replica.max_batched_tokens == 131072, run.id
    m = load_model("llama3-405b")
    peak = profiling_peak_bytes(m.hidden, m.ffn_hidden * 2, m.vocab, 8, 131072, 2000, True)
    forward = 131072 * 2 * (4 * m.hidden + 2 * m.ffn_hidden * 2 / 8)
    assert peak == pytest.approx(forward + 2000 * m.vocab / 8 * 4.0)
    assert peak / units.GiB == pytest.approx(22.6, rel=0.01)


def test_sglang_static_fraction_holds_weights_and_kv_pool_only():
    # SGLang's ModelRunner.profile_max_num_token: rest_memory = available_after_weights -
    # total_before * (1 - mem_fraction_static): the KV pool is fraction x (memory less the
    # runtime) less the weights, whatever max_seqs and the chunk (activations live outside)
    from accelsim.llm.job import Replica
    from accelsim.llm.perf import replica_model
    from accelsim.runtime import RUNTIME_RESERVE_BYTES

    def rm(**kw):
        return replica_model(Replica(model="llama3-70b", device="h200", tp=4, block_tokens=1,
                                     memory_utilization=0.85, memory_share_of="static", **kw))

    a = rm(max_seqs=256, max_batched_tokens=2048)
    b = rm(max_seqs=4096, max_batched_tokens=16384)
    assert a.kv_tokens == b.kv_tokens
    pool = (a.spec.memory_bytes - RUNTIME_RESERVE_BYTES) * 0.85 - a.weights_bytes
    assert a.kv_tokens == int(pool // a.kv_bytes_per_token)
    total = replica_model(Replica(model="llama3-70b", device="h200", tp=4, block_tokens=1,
                                  memory_utilization=0.85, max_seqs=4096,
                                  max_batched_tokens=16384))
    assert total.kv_tokens < b.kv_tokens  # vLLM's reading also takes the profiling peak out

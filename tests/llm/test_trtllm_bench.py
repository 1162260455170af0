"""trtllm-bench's scheduler limits (tensorrt_llm/bench/build/tuning.py) and the PyTorch
backend's memory-profiling pass (tensorrt_llm/_torch/pyexecutor/_util.py KvCacheCreator)
against the code's own formula and a published trtllm-bench log."""

from __future__ import annotations

import pytest

from accelsim import units
from accelsim.llm import trtllm_bench
from accelsim.llm.job import Replica
from accelsim.llm.perf import replica_model


@pytest.mark.parametrize(("requests", "isl", "osl", "expected"), [
    # tuning.py finetune_setting's branches: min batch 64, 32/128/256 steps below 256 /
    # 1024 / above, the 4096 cap; tokens at least 2048, 256/512/1024 steps, 32768 cap
    (46.57, 20000, 2000, (64, 2048)),
    (300.0, 128, 2048, (384, 2048)),
    (1100.0, 1000, 1000, (1280, 2304)),
    (5000.0, 128, 128, (4096, 8192)),
    (5000.0, 2048, 128, (4096, 32768)),
    (700.0, 5000, 500, (768, 8192)),
])
def test_finetune_setting_follows_tuning_py(requests, isl, osl, expected):
    assert trtllm_bench.finetune_setting(requests, isl, osl) == expected


def test_405b_h100_tp8_20k_row_gets_64_and_isl_plus_batch():
    # Llama 3.1 405B FP8 on eight H100 (NVML 79.65 GiB), ISL/OSL 20000/2000: the KV cache of
    # 0.95 x (8 x 79.65 - 378.0 GiB) holds 46.6 requests of 22,000 FP8 tokens at 126 layers x
    # 8 KV heads x 128 x 2 bytes; batch 64, tokens max(2048, 20000 + 64) without chunking
    bs, tokens = trtllm_bench.engine_setting(
        405.85e9, 126, 8, 128, 1.0, 1.0, 79.65 * units.GiB, 8, 20000, 2000, 20000)
    assert (bs, tokens) == (64, 20064)
    # chunked prefill keeps the tuned tokens
    assert trtllm_bench.engine_setting(405.85e9, 126, 8, 128, 1.0, 1.0, 79.65 * units.GiB, 8,
                                       20000, 2000, 20000, chunked_prefill=True) == (64, 2048)


def test_dummy_requests_fill_max_num_tokens():
    # NVIDIA/TensorRT-LLM#6294's run: max_seq_len 157, max_num_tokens 23,552 -> 151 requests
    # (150 of 156 tokens and one of 152); a 20k prompt at 20,064 tokens: one request
    assert trtllm_bench.dummy_requests(23552, 157) == 151
    assert trtllm_bench.dummy_requests(20064, 22000) == 1
    assert trtllm_bench.dummy_requests(8192, 256) == 33


def test_kv_capacity_matches_the_published_trtllm_bench_log():
    # NVIDIA/TensorRT-LLM#6294 (TensorRT-LLM 0.20.0, trtllm-bench, one H100,
    # nvidia/Llama-3.1-8B-Instruct-FP8, free_gpu_memory_fraction 0.8): "max_seq_len=157,
    # max_num_requests=4096, max_num_tokens=23552" and KV max_tokens 860,308 (52.51 GiB at
    # 64 KiB a token). The profiling pass's logits are one row per dummy request (151), not
    # one per max_num_requests (4,096 x 128,256 x 4 B = 1.96 GiB more held)
    r = Replica(model="llama3-8b", device="h100-sxm", tp=1, weights="fp8", kv_cache="fp8",
                memory_share_of="free", memory_utilization=0.8, max_seqs=4096,
                max_batched_tokens=23552, max_seq_len=157, block_tokens=32)
    m = replica_model(r)
    assert m.kv_blocks * m.block_tokens == pytest.approx(860_308, rel=0.01)
    per_seq = replica_model(r.model_copy(update={"max_seq_len": None}))
    assert per_seq.kv_blocks * per_seq.block_tokens < 0.98 * 860_308


def test_run_limits_come_from_the_tuning_formula():
    from accelsim.runs.llm_offline import LLMOfflineRun

    run = LLMOfflineRun.model_validate({
        "id": "x", "kind": "llm_offline", "source": "s", "metric": "output_tokens_per_s",
        "published": {"value": 345, "unit": "output tokens/s"},
        "replica": {"model": "llama3-405b", "device": "h100-sxm", "tp": 8, "weights": "fp8",
                    "kv_cache": "fp8", "memory_utilization": 0.95, "memory_share_of": "free",
                    "kv_admission": "reserve"},
        "input_tokens": 20000, "output_tokens": 2000, "requests": 1000,
        "limits": "trtllm-bench"})
    r = run.engine("job")
    assert (r.max_seqs, r.max_batched_tokens, r.max_seq_len) == (64, 20064, 22000)
    given = run.model_copy(update={"limits": "given"}).engine("job")
    assert given.max_seq_len is None

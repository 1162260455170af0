"""FP8 context attention (TensorRT-LLM's ``use_fp8_context_fmha``, replica
``fp8_context_attention``): the FP8 / BF16 forward ratio is FlashAttention-3's on H100
(tests/data/kernels/fa3-h100-fp8-fwd.csv over fa3-h100-bf16-fwd.csv, arXiv 2407.08608 Figures 7
and 5, head dim 128, no causal mask; never fitted), and the flag scales only the prefill
attention term of the replica's cost table."""

import csv
from pathlib import Path

import numpy as np
import pytest

from accelsim.llm.job import Replica
from accelsim.llm.perf import FP8_ATTN_SEQ, FP8_ATTN_SPEEDUP, fp8_attention_speedup, replica_model

DATA = Path(__file__).resolve().parents[1] / "data" / "kernels"


def _fa3(name: str, col: str) -> dict[int, float]:
    with open(DATA / name, encoding="utf-8") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return {int(r["seq_len"]): float(r[col]) for r in rows
                if r["head_dim"] == "128" and r["causal"] == "0"}


def test_ratio_is_the_papers():
    fp8 = _fa3("fa3-h100-fp8-fwd.csv", "fa3")
    bf16 = _fa3("fa3-h100-bf16-fwd.csv", "tflops")
    assert sorted(fp8) == [int(s) for s in FP8_ATTN_SEQ]
    for s, ratio in zip(FP8_ATTN_SEQ, FP8_ATTN_SPEEDUP, strict=True):
        assert ratio == pytest.approx(fp8[int(s)] / bf16[int(s)])
        assert fp8_attention_speedup(s) == pytest.approx(ratio)
    # between the points linear in log2 of the key length; held at the ends
    assert fp8_attention_speedup(2560) == pytest.approx(1.258, abs=0.002)
    assert fp8_attention_speedup(100) == pytest.approx(FP8_ATTN_SPEEDUP[0])
    assert fp8_attention_speedup(1e6) == pytest.approx(FP8_ATTN_SPEEDUP[-1])
    # the kernel's FP8 gain grows with the keys (1.56 at 16k: the abstract's ~1.2 PFLOP/s
    # against 740 TFLOP/s is head dim 256's)
    assert list(FP8_ATTN_SPEEDUP) == sorted(FP8_ATTN_SPEEDUP)


def _r405(fp8: bool) -> Replica:
    # closed/*/configs/*H200*/Server/llama3_1-405b.py (MLPerf Inference v5.1)
    return Replica(model="llama3-405b", device="h200", tp=8, weights="fp8", kv_cache="fp8",
                   max_batched_tokens=2560, max_seqs=64, memory_utilization=0.9,
                   memory_share_of="free", block_tokens=32, gemm_allreduce=True,
                   fp8_context_attention=fp8)


def test_only_the_prefill_attention_moves():
    assert Replica(model="llama3-8b", device="h200").fp8_context_attention is False
    off, on = replica_model(_r405(False)), replica_model(_r405(True))
    assert on.c_pf == pytest.approx(off.c_pf / fp8_attention_speedup(2560))
    assert np.array_equal(on.linear_s, off.linear_s)
    assert (on.c_kv, on.c_head, on.kv_blocks) == (off.c_kv, off.c_head, off.kv_blocks)

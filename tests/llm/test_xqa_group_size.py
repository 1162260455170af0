"""TensorRT-LLM's generation attention (XQA) at the Llama 3 group sizes, against its code
(docs/_notes/xqa-group-size.md).

On Hopper with an FP8 KV cache TensorRT-LLM decodes GQA with the XQA "QGMMA" kernel
(``cpp/kernels/xqa/mha_sm90.cu``): one CTA per (KV head, sequence, KV split) holds the whole
query-head group, so the KV cache is read once per KV head whatever the group size, and its two
GEMMs run on the tensor cores with the group as the GMMA's N, padded to a multiple of 8. The
kernel is eligible up to 32 query heads per KV head. The model prices decode attention as the
roofline of one KV read against the group's FLOPs (``ReplicaModel.c_kv``); these tests hold it
to those facts for the 8B (group 4), 70B (8) and 405B (16).
"""

from __future__ import annotations

import math

import pytest

from accelsim.llm.job import Replica
from accelsim.llm.perf import replica_model
from accelsim.transformer.model import load_model

# NVIDIA/TensorRT-LLM cpp/tensorrt_llm/kernels/decoderMaskedMultiheadAttention/
# decoderXQAImplJIT/kernelUtils.cpp (@602593ac) supportConfigQGMMA: SM 90, fp16/bf16 input,
# head_size % 16 == 0 and 16..256, and `head_grp_size * beam_width > 32` -> not supported.
XQA_QGMMA_MAX_GROUP = 32
# cpp/kernels/xqa/mha_sm90.cu (@014dadcd): decode (no SPEC_DEC) sets SWAP_AB, and
# `ctaNbQHeads = roundUp(headGrpSize * beamWidth, swapAB ? 8U : 64U)` is the GEMMs' N.
XQA_QGMMA_COLUMN_PAD = 8

CASES = [("llama3-8b", "h100-sxm", 1), ("llama3-8b", "h200", 1),
         ("llama3-70b", "h100-sxm", 2), ("llama3-70b", "h200", 1),
         ("llama3-405b", "h100-sxm", 8), ("llama3-405b", "h200", 8)]


@pytest.mark.parametrize(("name", "device", "tp"), CASES)
def test_llama3_group_sizes_are_in_xqa_qgmma_and_decode_attention_is_read_bound(
        name: str, device: str, tp: int) -> None:
    model = load_model(name)
    group = model.heads // model.n_kv_heads
    assert group == {"llama3-8b": 4, "llama3-70b": 8, "llama3-405b": 16}[name]
    assert group <= XQA_QGMMA_MAX_GROUP  # no fallback to the per-head MMHA kernel
    rm = replica_model(Replica(model=name, device=device, tp=tp, weights="fp8",
                               kv_cache="fp8"))
    # the KV cache is read once per KV head: the read bounds the step
    assert rm.c_kv == rm.c_kv_read
    # the kernel's tensor-core work is the padded group; at the model's decode-attention
    # FLOP rate (bf16, below the FP8 GMMA the kernel runs) it stays under half the read
    padded = math.ceil(group / XQA_QGMMA_COLUMN_PAD) * XQA_QGMMA_COLUMN_PAD
    assert rm.c_kv_flop * padded / group < 0.5 * rm.c_kv_read

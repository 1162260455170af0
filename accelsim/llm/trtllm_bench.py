"""TensorRT-LLM's trtllm-bench: the scheduler limits ``trtllm-bench throughput`` gives the
PyTorch backend when the command line gives none (the TensorRT-LLM perf overview's runs), and
the memory-profiling pass those limits make.

Limits (``tensorrt_llm/bench/benchmark/utils/general.py`` ``get_settings`` ->
``bench/build/build.py`` ``get_benchmark_engine_settings`` -> ``bench/build/tuning.py``
``calc_engine_setting`` and ``finetune_setting``, the v1.0 line of
NVIDIA/TensorRT-LLM, mid-2025)::

    bytes/token   = 2 x layers x max(tp, kv heads) x head_dim x KV bytes    (GiB units)
    engine        = parameters x weight bytes                               (GiB)
    requests      = fraction x (NVML memory x tp x pp - engine) / (bytes/token x (ISL + OSL))
    raw_bs        = min(requests, 4096) / pp
    raw_tokens    = min(raw_bs x (1 + ISL / OSL), 32768)
    max_batch     = max(64, 32 ceil(raw_bs / 32))   raw_bs < 256
                    128 ceil(raw_bs / 128)          raw_bs < 1024
                    256 ceil(raw_bs / 256)          otherwise
    max_tokens    = max(2048, 256 ceil(raw / 256))  raw < 4096
                    512 ceil(raw / 512)             raw < 8192
                    1024 ceil(raw / 1024)           otherwise
    no chunked prefill (trtllm-bench's default): max_tokens = max(max_tokens, max ISL + max_batch)

ISL and OSL are the dataset's averages, NVML memory the device total ``nvmlDeviceGetMemoryInfo``
reports in GiB (``bench/build/utils.py`` ``get_device_memory``), the parameters the checkpoint's
safetensors count and weight/KV bytes ``BYTES_PER_ELEM`` (FP8 1, unquantised 2). The run's
``max_seq_len`` is the dataset's longest prompt + output (trtllm-bench's dataset metadata).

Profiling pass (``tensorrt_llm/_torch/pyexecutor/_util.py`` ``KvCacheCreator``, same line): the
dummy requests are context requests of ``min(max_num_tokens, max_seq_len - 1)`` random tokens,
as many as fill ``max_num_tokens`` (one forward pass), each with ``max_tokens=1`` and a default
``OutputConfig`` (no context logits). The model engine gathers context logits only for requests
that ask for them (``py_executor`` ``gather_context_logits = any(r.py_return_context_logits
...)``), so the ``LogitsProcessor`` keeps the last token of each request, ``lm_head`` (column
parallel, ``gather_output=True``: every rank holds the full vocabulary) and ``.float()``: one
bf16 and one fp32 row of the full vocabulary per dummy request (:func:`dummy_requests`).
"""

from __future__ import annotations

import math

from accelsim import units

KV_FRACTION = 0.95
"""trtllm-bench's ``kv_cache_free_gpu_mem_fraction`` in the perf overview's runs ("we also use a
higher KV cache percentage by setting --kv_cache_free_gpu_mem_fraction 0.95"); the tuning
formula takes the same fraction (``get_settings`` passes it to ``calc_engine_setting``)."""
MAX_BATCH_CAP = 4096
"""``finetune_setting``: "Cap total batch size to avoid decoder buffer size becoming too large"."""
MAX_TOKENS_CAP = 32768
"""``finetune_setting``: "Cap num tokens to avoid TRT activation buffer becoming too large"."""
LOGIT_ROW_BYTES = 2.0 + 4.0
"""Bytes per vocabulary entry of a profiled request's logits: the gathered bf16 row and its
fp32 copy (``LogitsProcessor``: ``lm_head(hidden_states)`` then ``.float()``)."""


def finetune_setting(requests: float, isl: float, osl: float, pp: int = 1) -> tuple[int, int]:
    """``tuning.py`` ``finetune_setting`` (optimistic tuning): (max_batch_size,
    max_num_tokens) from the requests the KV cache holds (module docstring)."""
    raw_bs = min(requests, MAX_BATCH_CAP) / pp
    raw_token = min(raw_bs * (1 + isl / osl), MAX_TOKENS_CAP)
    if raw_bs < 256:
        bs = max(64, 32 * math.ceil(raw_bs / 32))
    elif raw_bs < 1024:
        bs = 128 * math.ceil(raw_bs / 128)
    else:
        bs = 256 * math.ceil(raw_bs / 256)
    if raw_token < 4096:
        tok = max(2048, 256 * math.ceil(raw_token / 256))
    elif raw_token < 8192:
        tok = 512 * math.ceil(raw_token / 512)
    else:
        tok = 1024 * math.ceil(raw_token / 1024)
    return bs, tok


def engine_setting(params: float, layers: int, kv_heads: int, head_dim: int, weight_bytes: float,
                   kv_bytes: float, nvml_bytes: float, tp: int, isl: float, osl: float,
                   max_isl: int, pp: int = 1, fraction: float = KV_FRACTION,
                   chunked_prefill: bool = False) -> tuple[int, int]:
    """(max_batch_size, max_num_tokens) trtllm-bench gives a run (``calc_engine_setting``,
    ``finetune_setting`` and ``get_settings``' no-chunking floor; module docstring).
    ``nvml_bytes``: one device's NVML total."""
    per_token = 2 * layers * max(tp, kv_heads) * head_dim * kv_bytes / units.GiB
    engine = params * weight_bytes / units.GiB
    available = nvml_bytes / units.GiB * tp * pp - engine
    requests = available * fraction / (per_token * (isl + osl))
    if requests < 1:
        raise ValueError("trtllm-bench: the KV cache holds no request (tuning.py raises)")
    bs, tok = finetune_setting(requests, isl, osl, pp)
    if not chunked_prefill:
        tok = max(tok, max_isl + bs)
    return bs, tok


def dummy_requests(max_num_tokens: int, max_seq_len: int) -> int:
    """Dummy context requests of the profiling pass: ``max_num_tokens`` filled with requests
    of ``min(max_num_tokens, max_seq_len - 1)`` tokens (``_create_dummy_context_requests``)."""
    length = max(1, min(max_num_tokens, max_seq_len - 1))
    return math.ceil(max_num_tokens / length)

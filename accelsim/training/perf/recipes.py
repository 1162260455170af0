"""Training recipes: what each training precision stores at which width, what the optimizer
moves, and what overlapped communication costs the compute beside it."""

from __future__ import annotations

from accelsim.precision import BYTES

# Storage format of each tensor class per training precision. FP8 training (Transformer
# Engine recipes) casts to fp8 inside the GEMMs but keeps activations and weights in bf16.
# Gradients as reduced: bf16 and fp8 training accumulate and all-reduce fp32 main grads
# (Megatron requires --accumulate-allreduce-grads-in-fp32 with bf16); fp16 mixed precision
# reduces fp16 grads (Megatron-LM's default, Micikevicius et al. 2018 loss scaling).
ACT_DTYPE = {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16", "fp8": "bf16"}
WEIGHT_DTYPE = ACT_DTYPE
GRAD_DTYPE = {"fp32": "fp32", "bf16": "fp32", "fp16": "fp16", "fp8": "fp32"}
# Optimizer state in fp32 values: Adam m, v, plus an fp32 master copy in mixed precision.
OPT_STATES = {"fp32": 2, "bf16": 3, "fp16": 3, "fp8": 3}
ACT_BYTES = {p: BYTES[d] for p, d in ACT_DTYPE.items()}
WEIGHT_BYTES = {p: BYTES[d] for p, d in WEIGHT_DTYPE.items()}
GRAD_BYTES = {p: BYTES[d] for p, d in GRAD_DTYPE.items()}
OPT_BYTES = {p: n * BYTES["fp32"] for p, n in OPT_STATES.items()}

# Adam with fp32 master weights: read param, grad, m, v (16 B), write param, m, v (12 B)
# and the 16-bit copy (2 B) -> 30 bytes of HBM traffic per parameter (assumption).
OPTIMIZER_BYTES_PER_PARAM = 30.0

# FP8 training (Transformer Engine recipes; DeepSeek-V3, arXiv 2412.19437 section 3.3): the
# linear layers' GEMMs run in FP8; attention, embedding, LM head, router and norms stay BF16.
# Each FP8 GEMM input is held for the backward pass as FP8 (1 B); producing it costs extra
# HBM traffic: forward, the transposed FP8 copy for the weight-gradient GEMM (TE's
# cast_transpose, the cast itself fused into the norm or activation kernel): 2 B per input
# element; backward, the gradient of each GEMM output is cast and transposed: read 2 B,
# write 2 x 1 B per element (assumption from TE's kernel design).
FP8_CAST_FWD_BYTES = 2.0
FP8_CAST_BWD_BYTES = 4.0

# FP8 current scaling (Transformer Engine's Float8CurrentScaling; Megatron-Bridge's FP8-CS
# recipes) needs a tensor's amax before its cast: Float8CurrentScalingQuantizer::quantize_impl
# runs nvte_compute_amax (one more read of the bf16 tensor) before the cast. The norms
# cannot write FP8 themselves (pytorch/csrc/extensions/normalization.cpp: force_unfused_kernel
# unless the quantizer is delayed scaling's): the bf16 norm output is read for the amax and
# again for the cast, 4 B per element more than the fused kernel. The activation computes its
# amax as it writes the bf16 output (activation.cpp FUSED_ACTIVATION_AMAX_FP8), and is read
# again for the cast: 2 B. The attention output, cast by the linear layer under either
# recipe, adds its amax read: 2 B. Backward, each GEMM output's gradient: its amax read, 2 B.
FP8_CS_NORM_BYTES = 4.0
FP8_CS_ACT_BYTES = 2.0
FP8_CS_OUT_BYTES = 2.0
FP8_CS_BWD_BYTES = 2.0

# A flash-attention wrapper that removes padding before the kernel and restores it after
# (flash-attn's bert_padding, as llm-foundry's flash_attn_fn calls it: unpad_input on q, k
# and v, pad_input on the output) moves each element of those tensors this many times over
# HBM (activation-width passes, read or write): forward, each unpad a gather (read, write:
# 2) and the pad a zero-fill and an index put (3); backward, each unpad's scatter into zeros
# (3) and the pad's gather (2). flash-attn v2.4.2 flash_attn/bert_padding.py
# (IndexFirstAxis, IndexPutFirstAxis).
UNPAD_PASSES_QKV = (2.0, 3.0)  # forward, backward
UNPAD_PASSES_OUT = (3.0, 2.0)

# Communication overlapped with compute is not free: collective kernels occupy SMs and
# HBM bandwidth. Overlapped comm costs this fraction of its duration (assumption; NCCL
# runs on ~8-16 of 108-132 SMs, and overlap studies report 5-20 % GEMM slowdown).
OVERLAP_TAX = 0.1

# Megatron's distributed data parallel with FP8 parameters (fp8_param_gather): parameters are
# bucketed in reverse order (the backward's) into buckets of this many elements, NVIDIA's
# MLPerf NeMo recipes' bucket_size (training_results_v5.1 at 441d65f4445c, NVIDIA/benchmarks/
# llama31_8b/implementations/nemo/conf/custom.yaml line 165: 134,217,728; Megatron-LM
# megatron/core/distributed/param_and_grad_buffer.py bucketing, lines 636-655); the last FP8
# bucket, layer 0's, is at most this (docs/_notes/mlperf-training-v5.md, branch dpwidths).
FP8_PARAM_BUCKET = 134_217_728.0

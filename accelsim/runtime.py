"""What the software runtime adds on any device, whatever the workload: the one home of the
constants the training, LLM-serving and recommendation-serving models share.
"""

from __future__ import annotations

from accelsim import units

# CUDA/CANN context, communicator buffers and allocator fragmentation beyond the tensors a
# model holds, out of the device total its tool reports (memory.memory_GiB; assumption:
# PyTorch + NCCL typically reserve 1.5-3 GiB). Published parts on one H100: the driver keeps
# 0.43 GiB of nvidia-smi's 79.65 (vLLM sees total_gpu_memory 79.22 GiB) and vLLM measures
# 1.79 GiB of non-torch memory at TP1, 3.58 at TP2 (vllm-project/vllm#10511): 2.2 GiB at TP1.
RUNTIME_RESERVE_BYTES = 2.0 * units.GiB
# Kernels per transformer layer and forward pass: 4 GEMMs, attention, 2 norms, activation,
# 2 dropout-residual, rotary/bias (assumption); a backward pass launches twice as many.
KERNELS_PER_LAYER = 11.0

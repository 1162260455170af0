"""What the software runtime adds on any device, whatever the workload: the one home of the
constants the training, LLM-serving and recommendation-serving models share.
"""

from __future__ import annotations

from accelsim import units

# CUDA/CANN context, communicator buffers and allocator fragmentation beyond the tensors a
# model holds (assumption: PyTorch + NCCL typically reserve 1.5-3 GiB).
RUNTIME_RESERVE_BYTES = 2.0 * units.GiB
# Kernels per transformer layer and forward pass: 4 GEMMs, attention, 2 norms, activation,
# 2 dropout-residual, rotary/bias (assumption); a backward pass launches twice as many.
KERNELS_PER_LAYER = 11.0

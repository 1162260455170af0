"""What a training software stack adds to the tensors a model holds (:mod:`accelsim.training
.perf.memory`): the framework's memory terms as batch-API columns (``mem_*``). A stack
profile (``configs/stacks``, its ``memory`` block, :func:`accelsim.stacks.memory_terms`)
sets them; a job whose stack has none gets :data:`DEFAULTS` (Megatron-Core's, the stack
most published NVIDIA rows ran).

  mem_logit_bytes     bytes per logit element live at the loss's peak
  mem_frag            the allocator's (reserved - allocated) / reserved with memory to spare
                      (0: a compiler-planned buffer assignment, nothing cached)
  mem_workspace       GEMM library workspace held per device, bytes
  mem_z3_live         ZeRO-3/FSDP units gathered at once (the one computing, the prefetched)
  mem_z3_tensor       the gathered unit: 0 a transformer layer (FSDP wrapping a block),
                      1 one weight tensor (GSPMD: each dot's operand gathered on its own)
  mem_z3_pp_hold      1: with pipelining, the stage's weights stay gathered between
                      micro-batches and its unsharded gradients accumulate until the last
                      one's reduce-scatter (every layer of the stage, not mem_z3_live)
  mem_z3_grad_bytes   bytes per element of an unsharded gradient before its reduce-scatter
                      (0: the job's gradient bytes)
  mem_phase_max       1: the loss's transient tensors and a layer backward's share memory
                      (liveness-planned buffers: the peak is the larger); 0: their sum
  mem_weight_copy     1: a low-precision copy of the weights is held beside the optimizer's
                      fp32 master; 0: the fp32 parameters only, cast at each use
"""

from __future__ import annotations

from dataclasses import dataclass

from accelsim import units


@dataclass(frozen=True)
class StackMemory:
    """A stack's memory terms (module docstring)."""

    name: str
    logit_bytes: float
    zero3_live: float
    fragmentation: float
    workspace_bytes: float
    zero3_tensor: bool = False
    zero3_grad_bytes: float = 0.0
    weight_copy: bool = True
    phase_max: bool = False
    zero3_pp_hold: bool = False

    def columns(self) -> dict[str, float]:
        """The batch API's ``mem_*`` columns."""
        return {"mem_logit_bytes": self.logit_bytes, "mem_frag": self.fragmentation,
                "mem_workspace": self.workspace_bytes, "mem_z3_live": self.zero3_live,
                "mem_z3_tensor": float(self.zero3_tensor),
                "mem_z3_grad_bytes": self.zero3_grad_bytes,
                "mem_weight_copy": float(self.weight_copy),
                "mem_phase_max": float(self.phase_max),
                "mem_z3_pp_hold": float(self.zero3_pp_hold)}


# Megatron-LM / Megatron-Core (NeMo, Megatron-Bridge): the loss is
# ``vocab_parallel_cross_entropy(logits.float(), labels)`` (megatron/core/models/gpt/
# gpt_model.py), whose softmax is computed in place in the fp32 copy and saved for the
# backward pass: the bf16 head output (2 B) beside the fp32 copy (4 B). Distributed optimizer
# buffers: states per parameter 6 + 12/d bytes with bf16 params and fp32 grads (Megatron-LM
# docs/source/api-guide/dist_optimizer.md), which ``zero`` 1 already is; gradients reduce
# in place in the contiguous grad buffer (no bucket copies). Transformer Engine's cuBLASLt
# workspace: 32 MiB per GEMM stream on Hopper (transformer_engine/pytorch/module/base.py
# get_workspace), two streams with communication overlap (assumption). ZeRO-3/FSDP: two
# gathered layers as PyTorch FSDP2 (assumption for Megatron-Core's FSDP). The allocator is
# PyTorch's caching allocator: fragmentation 15 % on average (up to 33 %) over eight LLMs
# trained on A100-80GB (Guo et al., GMLake, ASPLOS 2024, arXiv 2401.08156, abstract and
# section 2); the rest of the memory it holds is cache. configs/stacks/megatron-core.yaml
# and nemo.yaml carry the same block (a test holds them equal).
MEGATRON = StackMemory("megatron", logit_bytes=6.0, zero3_live=2.0,
                       fragmentation=0.15, workspace_bytes=2 * 32 * units.MiB)
# The other stacks' terms are in their profiles (configs/stacks/*.yaml, the memory block:
# torchtitan for PyTorch FSDP2, maxtext for JAX/XLA), read by accelsim.stacks.memory_terms.
DEFAULT = MEGATRON  # the published runs' stack (configs/runs: Megatron and NeMo)
DEFAULTS = DEFAULT.columns()

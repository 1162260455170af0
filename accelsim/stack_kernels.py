"""The kernel factors a training software stack gives the training model (:mod:`accelsim
.training.perf`), as batch-API columns. A stack profile (``configs/stacks``,
:func:`accelsim.stacks.kernel_factors`) sets them; a job without one gets :data:`DEFAULTS`
(the stacks the device efficiencies were calibrated with).

  stack_gemm, stack_attn, stack_attn_bwd
                  factors on the GEMMs and on flash attention's forward and backward (1: none)
  stack_fa2       1: the stack runs FlashAttention-2-generation kernels, its factors relative
                  to the device's eff_attn_fa2
  stack_gemm8     factor on the linear GEMMs of 8-bit training (1: none)
  stack_unpad     1: its attention wrapper's padding copies
  fp8_cs          1: FP8 current scaling's amax passes
  pp_scatter      1: pipeline sends scattered over the TP ranks (Megatron's)
  stream_k        1: its GEMM library has stream-K (0: wave quantisation)
  tp_async        1: Megatron's asynchronous TP backward (0: every backward collective exposed)
  cp_allgather    1: K/V all-gathered for context parallelism, exposed (0: the ring overlapped)
  unit_gap_s      GPU-idle seconds at each FSDP unit's all-gather (0: none)
  unit_grad_bytes bytes per parameter its gradient hook moves per micro-batch (0: none)
  unit_gather_bytes
                  bytes per parameter its FSDP copies out of each all-gather's buffer on the
                  compute stream, per all-gather (0: none, gathered in place)
  metric_passes   cross-entropy passes over the logits per micro-batch outside the loss, no
                  gradient (training metrics; 0: none)
  host_ops_rank   host-issued operations per rank of the job per step on an idle GPU,
                  kernel_overhead each (0: none)
  step_gap_s      seconds per step the GPU waits for the host after the step's host
                  synchronisation (0: none)
  moe_host_op_s   host seconds per eagerly issued operation of a dropless MoE layer (0: the
                  host always ahead of the GPU; :mod:`accelsim.training.perf.moe`)
  attn_syncs      host synchronisations of its flash-attention wrapper per forward,
                  unit_gap_s each (0: none)
  unit_ring       1: its ZeRO all-gathers and reduce-scatters are per-unit rings (0: one
                  aggregated collective's latency)
  unit_edges      1: with unit_ring, the first unit's all-gather per micro-batch and pass
                  and the last unit's reduce-scatter are exposed (0: hidden)
  rc_early_stop   1: full recomputation stops at the layer's last saved tensor (the down
                  projection's GEMM and the residual add after it are not recomputed)
  gc_layer_s      a rank's seconds in unaligned automatic garbage collections per layer and
                  micro-batch (0: aligned or none; :mod:`accelsim.training.perf.gc_pauses`)
  gc_pause_s      one such collection's pause, seconds (0: the rare limit, every pause apart)
  dp_grad_bytes   bytes per gradient element of its data-parallel reduction (0: the
                  training precision's, ``recipes.GRAD_BYTES``: fp32 main grads under bf16
                  and fp8)
  dp_fp8_gather   1: with FP8 training and the distributed optimizer, its parameter
                  all-gather moves the FP8 linear weights at 1 B and the rest (embedding,
                  output layer, norms, routers) at the weight width (0: every weight at the
                  weight width)
  dp_fp8_edge     1: with dp_fp8_gather, Megatron-Core's last bucket group (the non-FP8
                  buffer and the last FP8 bucket) exposed at the step's edges (0: staged
                  with the rest)
"""

from __future__ import annotations

DEFAULTS: dict[str, float] = {
    "stack_gemm": 1.0, "stack_attn": 1.0, "stack_attn_bwd": 1.0, "stack_fa2": 0.0,
    "stack_gemm8": 1.0, "stack_unpad": 0.0, "fp8_cs": 0.0, "pp_scatter": 1.0,
    "stream_k": 0.0, "tp_async": 0.0, "cp_allgather": 0.0, "unit_gap_s": 0.0,
    "unit_grad_bytes": 0.0, "unit_gather_bytes": 0.0, "attn_syncs": 0.0, "metric_passes": 0.0,
    "moe_host_op_s": 0.0,
    "host_ops_rank": 0.0, "step_gap_s": 0.0, "unit_ring": 0.0, "unit_edges": 0.0,
    "rc_early_stop": 0.0, "gc_layer_s": 0.0, "gc_pause_s": 0.0,
    "dp_grad_bytes": 0.0, "dp_fp8_gather": 0.0,
    "dp_fp8_edge": 0.0}

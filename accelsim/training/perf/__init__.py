"""Analytic step-time and memory model of transformer training, vectorized over a table of
configurations.

One micro-batch on one pipeline stage is a sequence of operators; each gets FLOPs and bytes
and a roofline time from the device profile:

  GEMM           the kernel model (:mod:`accelsim.kernels`: tiles, waves, split-K or
                 stream-K over the device's compute units, against bytes / (bw eff_memory)),
                 at the stack's GEMM efficiency x the device's; profiles without compute
                 units: max((F + F_half) / (peak eff_compute), bytes / (bw eff_memory))
  attention      flash at the published kernel's rate by sequence and head dim
  memory-bound   t = bytes / (memory_bw * eff_memory)
  every kernel   + kernel_overhead
  collectives    alpha-beta on the link the group lives on (:mod:`accelsim.collectives`)

Stage times build the 1F1B / interleaved pipeline (bubble (p-1)/(v m) of the steady state,
Narayanan et al. SC'21), then the DP gradient reduction overlapped with the last backward,
then the optimizer step. Memory follows Korthikanti et al. 2022 (arXiv 2205.05198)
generalised to GQA, gated MLPs, MoE and flash attention.

Modules, in the order the model runs: :mod:`.recipes` (what each precision stores),
:mod:`.columns` (the batch API's inputs), :mod:`.layer` (a dense layer), :mod:`.moe` (a MoE
layer), :mod:`.step` (stages, pipeline, data parallelism, optimizer), :mod:`.memory`,
:mod:`.flops`, :mod:`.estimate` (the batch API and one job).
"""

from accelsim.training.perf.columns import (
    DEVICE_COLUMNS,
    INPUT_COLUMNS,
    JOB_COLUMNS,
    LAYOUT_COLUMNS,
    OPTIONAL_COLUMNS,
    PEAK_ACT,
    device_columns,
    job_columns,
    job_row,
)
from accelsim.training.perf.estimate import (
    Estimate,
    OpCost,
    StagePieces,
    TrainResult,
    estimate,
    estimate_arrays,
    estimate_columns,
    estimate_frame,
)
from accelsim.training.perf.recipes import (
    ACT_BYTES,
    ACT_DTYPE,
    GRAD_BYTES,
    OPT_BYTES,
    WEIGHT_BYTES,
)
from accelsim.transformer.params import MODEL_COLUMNS, model_columns, model_params

__all__ = ["ACT_BYTES", "ACT_DTYPE", "DEVICE_COLUMNS", "GRAD_BYTES", "INPUT_COLUMNS",
           "JOB_COLUMNS", "LAYOUT_COLUMNS", "MODEL_COLUMNS", "OPTIONAL_COLUMNS", "OPT_BYTES",
           "PEAK_ACT", "WEIGHT_BYTES", "Estimate", "OpCost", "StagePieces", "TrainResult",
           "device_columns", "estimate", "estimate_arrays", "estimate_columns",
           "estimate_frame", "job_columns", "job_row", "model_columns", "model_params"]

"""Parameter sweeps: vary inputs by dotted path, evaluate every point, write results as they go.

A sweep file names a base (a fleet scenario, a training job, a serving job or an LLM serving
job: any kind :mod:`accelsim.kinds` can sweep), the parameters to vary and the metrics to
record::

    base: ../../configs/fleet.yaml
    parameters:
      devices.inhouse-asic.perf_scale: {low: 0.25, high: 2.0, num: 8}
      devices.inhouse-asic.price_usd: {values: [3000, 6000, 12000]}
    sampling: {method: grid}            # grid | lhs (samples, seed) | oat (one at a time)
    metrics:
      - device.inhouse-asic.serving.throughput_per_usd
      - "device.inhouse-asic.serving.throughput_per_usd / device.h20.serving.throughput_per_usd"

Paths: ``devices.<device>[,<device>...].<field>`` overrides a profile number (``bf16_tflops``,
``efficiency.compute``, ``price_usd``...; the value's provenance becomes "sweep") or a
pseudo-field: ``perf_scale`` (all peaks and memory bandwidth), ``compute_scale``,
``bandwidth_scale``, ``cuda_parity`` (0 = the profile's efficiencies, 1 = the
``h100-sxm`` CUDA stack's). ``fleets.<fleet>.share.<device>`` moves that fraction of the
fleet's spend to the device, the rest spread over the others in proportion. Any other
path is a key of the base file (``supply.h20.max_units``, ``budget.pools.domestic.usd``,
``parallelism.tp``...).

Scenario points are evaluated at *fast fidelity*: per device, the training throughput is
the best of the base run's top layouts re-estimated with the point's device (vectorized),
the serving capacity at the SLO is the saturated capacity recomputed from the point's
service-time table on the base run's batch mix, times the base run's SLO-to-saturation
ratio (from the full simulation); TCO, fleets and the optimiser are exact. Job bases
(training, serving, LLM serving) run the full models per point.

Results go to a folder of Parquet parts, one per finished batch (atomic rename), with the
sweep's fingerprint; ``resume`` skips every point already written.
"""

from typing import TYPE_CHECKING

import accelsim.sweep.kind  # noqa: F401  (registers the sweep file kind)
from accelsim.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    **dict.fromkeys(["evaluate_batch", "evaluate_point"], "accelsim.sweep.evaluate"),
    **dict.fromkeys(["apply_device", "apply_mapping"], "accelsim.sweep.overrides"),
    **dict.fromkeys(["SweepRun", "read_results", "run_sweep"], "accelsim.sweep.run"),
    **dict.fromkeys(["Param", "Sampling", "SweepSpec", "fingerprint", "load_sweep", "points"],
                    "accelsim.sweep.spec"),
})

if TYPE_CHECKING:
    from accelsim.sweep.evaluate import evaluate_batch, evaluate_point
    from accelsim.sweep.overrides import apply_device, apply_mapping
    from accelsim.sweep.run import SweepRun, read_results, run_sweep
    from accelsim.sweep.spec import Param, Sampling, SweepSpec, fingerprint, load_sweep, points

__all__ = ["Param", "Sampling", "SweepRun", "SweepSpec", "apply_device", "apply_mapping",
           "evaluate_batch", "evaluate_point", "fingerprint", "load_sweep", "points",
           "read_results", "run_sweep"]

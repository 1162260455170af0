"""Training as a fleet workload: tokens/s per device at the best layout on a cluster.

Full fidelity: :func:`accelsim.training.search.search_layouts` over every valid layout of
``cluster_devices`` chips. Fast fidelity (sweeps): the same batch model
(:func:`accelsim.training.perf.estimate_columns`) on the base run's ``TOP_LAYOUTS`` best
layouts with the point's device. Demand: ``tokens / deadline``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from accelsim import refs, units
from accelsim.config import Strict
from accelsim.devices import DeviceProfile
from accelsim.errors import AccelsimError, Problem
from accelsim.goodput import Goodput, checkpoint_seconds, goodput
from accelsim.precision import TrainPrecision
from accelsim.workloads.base import DeviceEval, EvalContext, Workload, WorkloadSpec, register

# Layouts re-estimated per sweep point (the base run's best, in order).
TOP_LAYOUTS = 24


class Resilience(Strict):
    """What interrupts a large synchronous job besides its accelerators, and what it costs.
    Defaults from the Llama 3 405B run (Dubey et al. 2024, arXiv 2407.21783, section 3.3.4
    and Table 5: 16,384 H100s, 54 days, 419 unexpected interruptions of which 220 GPU/HBM)."""

    other_failures_per_device_year: float = Field(default=0.082, ge=0, le=10)
    """Interruptions per device-year from everything but the accelerator (host, NIC, switch,
    cable, software): Llama 3's 199 non-GPU/HBM interruptions / 16,384 GPUs x 365/54 days."""
    checkpoint_bandwidth_GBps: float = Field(default=2000.0, gt=0, le=1e6)
    """Sustained storage write bandwidth the job's checkpoint gets, GB/s: Llama 3's Tectonic
    file system, 2 TB/s sustained (7 TB/s peak)."""
    restart_s: float = Field(default=600.0, ge=0, le=86_400)
    """Seconds from a failure to training again from the last checkpoint (detection, a hot
    spare swapped in, relaunch, checkpoint read). Assumption: ~10 min with automated
    recovery (Llama 3: all but three of 466 interruptions handled by automation)."""


class TrainingSpec(WorkloadSpec):
    """Train ``model`` on ``tokens`` within ``deadline_days``; per-device throughput is taken
    at the best layout on ``cluster_devices`` chips."""

    kind: Literal["training"] = "training"
    """Workload kind: training."""
    model: str
    """Transformer model: catalog name or path (relative to the scenario)."""
    tokens: float = Field(gt=0, le=1e18)
    """Tokens to train in the planning period."""
    deadline_days: float = Field(gt=0, le=36_500)
    """Days within which the tokens must be trained."""
    cluster_devices: int = Field(default=1024, ge=8, le=10_000_000)
    """Devices per training job; per-device throughput is taken at the best layout on this many."""
    global_batch: int | None = Field(default=None, ge=1, le=1_000_000_000)
    """Sequences per step (default ~4 Mi tokens)."""
    precision: TrainPrecision = "bf16"
    """Training precision: fp32, bf16, fp16 or fp8."""
    resilience: Resilience = Resilience()
    """Failures besides the devices', checkpoint bandwidth and restart time: per-device
    throughput is multiplied by the job's goodput (:mod:`accelsim.goodput`)."""
    stacks: dict[str, str] = Field(default_factory=dict)
    """Software stack per device (device name -> ``configs/stacks`` name, e.g.
    ``{h20: megatron-core, ascend-910c: mindspeed}``): its kernel rates, overlaps and
    schedules; a device not named runs its vendor's default stack. Each key a device of the
    budget pools, each a training stack that lists the device's vendor (one error naming
    the field otherwise)."""


@dataclass(frozen=True)
class _Layouts:
    """The base run's best layouts as input columns of the batch model (per device ref),
    and the model's parameter count (its checkpoint)."""

    columns: dict[str, Any] | None
    reason: str | None
    params: float = 0.0


def checkpoint_s(spec: TrainingSpec, params: float) -> float:
    """Seconds to write the job's checkpoint: every parameter's weights and optimizer state
    (the training recipe's bytes) at the block's storage bandwidth."""
    from accelsim.training.perf import OPT_BYTES, WEIGHT_BYTES

    return checkpoint_seconds(params, WEIGHT_BYTES[spec.precision] + OPT_BYTES[spec.precision],
                              spec.resilience.checkpoint_bandwidth_GBps * units.GB)


def job_goodput(spec: TrainingSpec, device: DeviceProfile, params: float) -> Goodput:
    """The training job's goodput on ``cluster_devices`` of ``device``: the device's annual
    failure rate plus the block's other failures, its checkpoint at the storage bandwidth."""
    r = spec.resilience
    delta = checkpoint_s(spec, params)
    return goodput(spec.cluster_devices, device.reliability.annual_failure_rate.value,
                   r.other_failures_per_device_year, delta, r.restart_s)


@register
class Training(Workload[TrainingSpec]):
    kind = "training"
    unit = "tokens/s"
    role = "volume"
    spec_model = TrainingSpec
    cost = 0.1  # about 0.01 s a device on the seed (layout search on numpy columns)
    compiled = False  # plain numpy (the layout search on columns, the goodput optimum)
    device_fields = frozenset({"model", "cluster_devices", "global_batch", "precision",
                               "resilience"})  # resilience: the goodput per device

    def resolve(self, spec: TrainingSpec, relative_to: str | Path) -> TrainingSpec:
        return spec.model_copy(update={"model": refs.normalize(spec.model, relative_to)})

    def check(self, spec: TrainingSpec, file: str, field: str) -> list[Problem]:
        from accelsim.stacks import named_problems

        try:
            self._model(spec, file, field)
            probs: list[Problem] = []
        except AccelsimError as e:
            probs = list(e.problems)
        # each stack loads and is a training stack (the vendor: check_devices)
        return probs + named_problems(spec.stacks, "training", file, field)

    def check_devices(self, spec: TrainingSpec, devices: dict[str, DeviceProfile], file: str,
                      field: str) -> list[Problem]:
        """Each key of ``stacks`` a pool device, each training stack one that lists the
        device's vendor (:func:`accelsim.stacks.device_problems`)."""
        from accelsim.stacks import device_problems

        return device_problems(spec.stacks, devices, "training", file, field)

    def input_files(self, spec: TrainingSpec) -> list[Path]:
        """The model file, then the files of the stacks the block names."""
        from accelsim.stacks import named_files

        return [refs.find(spec.model, "models", family="training", what="training model"),
                *named_files(spec.stacks)]

    def _model(self, spec: TrainingSpec, file: str = "scenario", field: str = "") -> Any:
        from accelsim.transformer.model import load_model

        return load_model(spec.model, where=file, field=f"{field}.model" if field else "model")

    def demand(self, spec: TrainingSpec) -> float:
        """Tokens/s that finish ``tokens`` by the deadline."""
        return spec.tokens / (spec.deadline_days * units.DAY)

    def evaluate(self, spec: TrainingSpec, device: DeviceProfile, ctx: EvalContext
                 ) -> DeviceEval:
        from accelsim.training.search import default_global_batch, search_layouts

        model = self._model(spec, ctx.file)
        gb = spec.global_batch or default_global_batch(model)
        try:
            res = search_layouts(model, device.spec, spec.cluster_devices, gb, spec.precision,
                                 stack=spec.stacks.get(device.name))
        except AccelsimError as e:
            msg = e.problems[0].message
            return DeviceEval(0.0, note=msg, reason=msg, state=_Layouts(None, msg))
        if res.best is None:
            msg = f"no layout fits on {spec.cluster_devices} devices"
            return DeviceEval(0.0, note=msg, reason=msg, state=_Layouts(None, msg))
        from accelsim.transformer.params import model_params

        top = {k: v[:TOP_LAYOUTS] for k, v in res.columns.items()}
        params = model_params(model)
        state = _Layouts(_layout_columns(top, model, spec.precision, gb), None, params)
        par = res.best.parallelism
        g = job_goodput(spec, device, params)
        note = (f"tp{par.tp} pp{par.pp} dp{par.dp} mb{par.micro_batch} v{par.virtual_stages} "
                f"{par.recompute} zero{par.zero}; MFU {float(top['mfu'][0]):.2f}; "
                f"{g.note()}")
        details = {"tp": par.tp, "pp": par.pp, "dp": par.dp, "micro_batch": par.micro_batch,
                   "virtual_stages": par.virtual_stages, "recompute": str(par.recompute),
                   "zero": par.zero, "mfu": float(top["mfu"][0]),
                   "goodput_fraction": g.fraction, "mtbf_s": g.mtbf_s,
                   "checkpoint_interval_s": g.interval_s}
        return DeviceEval(float(top["tokens_per_s"][0]) / spec.cluster_devices * g.fraction,
                          1.0, note, None, state, details)

    def prepare_fast(self, spec: TrainingSpec, base: dict[str, DeviceEval], ctx: EvalContext
                     ) -> dict[str, _Layouts]:
        return {ref: ev.state for ref, ev in base.items()}

    def evaluate_fast(self, spec: TrainingSpec, ref: str, device: DeviceProfile,
                      state: dict[str, _Layouts], ctx: EvalContext) -> DeviceEval:
        return self.evaluate_fast_many(spec, [(ref, device)], state, ctx)[0]

    def evaluate_fast_many(self, spec: TrainingSpec, items: list[tuple[str, DeviceProfile]],
                           state: dict[str, _Layouts], ctx: EvalContext) -> list[DeviceEval]:
        """The base run's best layouts of each ref on each point's device, every pair's
        rows through one call of the batch model (the formulas are elementwise: a row's
        numbers do not depend on the others)."""
        from accelsim.training.perf import device_columns, estimate_columns

        out: list[DeviceEval | None] = [None] * len(items)
        groups: dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]] = {}
        for i, (ref, device) in enumerate(items):
            lay = state[ref]
            if lay.columns is None:
                out[i] = DeviceEval(0.0, note=lay.reason or "", reason=lay.reason)
                continue
            dev = device.spec
            if spec.precision not in dev.peak_flops:
                msg = f"device '{dev.name}' does not support {spec.precision}"
                out[i] = DeviceEval(0.0, note=msg, reason=msg)
                continue
            cols = {**lay.columns, **device_columns(dev, spec.precision),
                    **_stack_columns(spec, dev.name)}
            groups.setdefault(tuple(sorted(cols)), []).append((i, cols))
        for keys, part in groups.items():
            rows = [len(c["tp"]) for _, c in part]
            est = estimate_columns({k: _stacked([c[k] for _, c in part], rows)
                                    for k in keys})
            fits = np.asarray(est["fits_memory"], dtype=bool)
            tps_all = np.asarray(est["tokens_per_s"], dtype=float)
            start = 0
            for (i, _), n in zip(part, rows, strict=True):
                ok, tps = fits[start:start + n], tps_all[start:start + n]
                start += n
                if not ok.any():
                    msg = f"none of the base run's best {TOP_LAYOUTS} layouts fits"
                    out[i] = DeviceEval(0.0, note=msg, reason=msg)
                    continue
                ref, device = items[i]
                per = float(tps[ok].max()) / spec.cluster_devices
                out[i] = DeviceEval(per * job_goodput(spec, device, state[ref].params).fraction,
                                    1.0)
        return [o for o in out if o is not None]

    def fleet_metrics(self, name: str, spec: TrainingSpec, capacity: float,
                      whole_fleet: float) -> dict[str, float]:
        """Tokens/day after capacity workloads are covered, the whole fleet's, and the days
        to train ``tokens`` (``days_to_train`` for the block named ``training``)."""
        per_day = capacity * units.DAY
        return {f"{name}_tokens_per_day": per_day,
                f"{name}_tokens_per_day_whole_fleet": whole_fleet * units.DAY,
                _days_key(name): spec.tokens / per_day if per_day > 0 else float("inf")}

    def fleet_columns(self, name: str) -> dict[str, str]:
        return {f"{name} tokens/day, allocated": f"{name}_tokens_per_day",
                f"{name} days to train": _days_key(name)}


def _stacked(values: list[Any], rows: list[int]) -> Any:
    """One input column of many pairs' rows: a number all pairs share stays a number, a
    number per pair is repeated over its rows, arrays are joined."""
    if all(np.ndim(v) == 0 for v in values):
        if all(v == values[0] for v in values):
            return values[0]
        return np.repeat(np.asarray(values, dtype=float), rows)
    return np.concatenate([np.broadcast_to(v, (n,)) for v, n in zip(values, rows, strict=True)])


def _stack_columns(spec: TrainingSpec, device: str) -> dict[str, float]:
    """The columns of the stack the block names for ``device`` (none: the default's, which
    device_columns holds)."""
    from accelsim.stacks import load_stack, search_columns

    name = spec.stacks.get(device)
    return search_columns(load_stack(name)) if name else {}


def _days_key(name: str) -> str:
    """``days_to_train`` for the block named ``training``, ``<name>_days_to_train`` else."""
    return "days_to_train" if name == "training" else f"{name}_days_to_train"


def _layout_columns(lay: Any, model: Any, precision: str, global_batch: int) -> dict[str, Any]:
    """Model and layout input columns of the batch model (device columns come per point)."""
    from accelsim.training.job import RECOMPUTE_CODE
    from accelsim.training.perf import job_columns, model_columns

    cols: dict[str, Any] = {k: np.asarray(lay[k], dtype=float) for k in (
        "tp", "pp", "dp", "cp", "ep", "micro_batch", "virtual_stages", "zero")}
    cols["recompute"] = np.array([RECOMPUTE_CODE[r] for r in lay["recompute"]], dtype=float)
    cols["sequence_parallel"] = (cols["tp"] > 1).astype(float)
    cols.update({k: float(v) for k, v in model_columns(model).items()})
    cols.update({k: float(v) for k, v in job_columns(precision).items()})
    cols["global_batch"] = float(global_batch)
    return cols

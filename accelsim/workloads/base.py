"""The workload protocol and its registry.

A workload kind (training, recommendation serving, ...) is one class that knows:
its scenario block (a pydantic model), the demand it puts on a fleet, how to evaluate a
device at full fidelity (search, simulation) and fast for sweeps (the same formulas on
a state kept from the full run), and which fleet metrics it reports. The fleet, the
optimiser, sweeps and the CLI dispatch through :func:`get` and never name a kind.

Roles in a fleet: ``capacity`` workloads (serving) must cover a peak and are allocated
first; ``volume`` workloads (training) take what is left and finish sooner with more.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar

import numpy as np
from pydantic import Field, field_validator

from accelsim import units
from accelsim.config import Strict, Weight, validate
from accelsim.devices import DeviceProfile
from accelsim.errors import AccelsimError, Problem

Role = Literal["capacity", "volume"]


class WorkloadSpec(Strict):
    """Base of every workload's scenario block; subclasses fix ``kind`` to a literal."""

    kind: str = Field(min_length=1)


class CapacitySpec(WorkloadSpec):
    """Base of the serving blocks (capacity workloads): a daily load profile that sets the
    mean load (energy) and the repair time that sets the share of replicas up."""

    daily_profile: list[Weight] | None = Field(default=None, min_length=24, max_length=24)
    """24 hourly load multipliers; their mean/peak sets the energy use."""
    repair_days: float = Field(default=3.0, ge=0, le=365)
    """Days a failed replica is out of service before its server is repaired or replaced
    (assumption: next-business-day parts and re-imaging); with the device's annual failure
    rate it sets the share of replicas down at any time (:meth:`availability`)."""

    @field_validator("daily_profile")
    @classmethod
    def _some_load(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and max(v) <= 0:
            raise ValueError("expected at least one hour with load > 0 (all are 0)")
        return v

    @property
    def mean_to_peak(self) -> float:
        if not self.daily_profile:
            return 1.0
        p = np.asarray(self.daily_profile, dtype=float)
        return float(p.mean() / p.max())

    def availability(self, device: DeviceProfile) -> float:
        """Expected share of a device's replicas in service: ``1 - afr x repair_days / 365``
        (failures per device-year times the years each one is out). Capacity at the SLO is
        counted on the replicas up, so the fleet is sized with the spares this implies."""
        afr = device.reliability.annual_failure_rate.value
        return max(0.0, 1.0 - afr * self.repair_days * units.DAY / units.YEAR)


@dataclass(frozen=True)
class DeviceEval:
    """One device on one workload. ``throughput`` is per device in the workload's unit;
    ``utilization`` (0..1) is the mean busy fraction that drives energy; ``reason`` says
    why the throughput is 0 (no layout fits, precision unsupported...), never hidden;
    ``state`` is what the fast path keeps from a full evaluation; ``details``: what
    ``note`` says for people, as fields for a spreadsheet (the layout, MFU, goodput, MTBF,
    confidence interval...; SI units, the unit in the name), None at fast fidelity."""

    throughput: float
    utilization: float = 1.0
    note: str = ""
    reason: str | None = None
    state: Any = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class EvalContext:
    """What a workload needs to know of the scenario around it."""

    server_chips: int = 8
    file: str = "scenario"


S = TypeVar("S", bound=WorkloadSpec)


class Workload(ABC, Generic[S]):
    """One workload kind over its scenario block ``S``. Subclasses set the class attributes
    and implement the methods."""

    kind: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()  # block names that imply this kind
    unit: ClassVar[str]  # of throughput and demand, e.g. "tokens/s"
    role: ClassVar[Role]
    spec_model: ClassVar[type[WorkloadSpec]]  # the class of S
    # fields of the block that change a device's throughput (the rest only the demand)
    device_fields: ClassVar[frozenset[str]] = frozenset()
    # relative CPU time of one device's full evaluation: a worker pool takes the longest
    # tasks first (accelsim.fleet.evaluation.evaluate_full); the kinds' own values are
    # their seed-scenario timings, in tenths of a second
    cost: ClassVar[float] = 1.0
    # whether a full evaluation runs compiled simulators (numba): such evaluations go to
    # worker processes, forked after numba's set-up; the others run in the calling process
    # while the workers do (accelsim.fleet.evaluation.evaluate_full)
    compiled: ClassVar[bool] = True

    def resolve(self, spec: S, relative_to: str | Path) -> S:
        """The block with file references made absolute from the scenario's folder."""
        return spec

    def check(self, spec: S, file: str, field: str) -> list[Problem]:
        """Cross-file checks (a model exists); one Problem per issue."""
        return []

    def check_devices(self, spec: S, devices: dict[str, DeviceProfile], file: str,
                      field: str) -> list[Problem]:
        """Checks against the scenario's pool devices (profile name -> profile), e.g. a
        stack named per device lists its vendor; one Problem per issue."""
        return []

    def input_files(self, spec: S) -> list[Path]:
        """Files the evaluation reads (sweeps fingerprint them)."""
        return []

    @abstractmethod
    def demand(self, spec: S) -> float:
        """Throughput the fleet must deliver, in :attr:`unit`."""

    @abstractmethod
    def evaluate(self, spec: S, device: DeviceProfile, ctx: EvalContext) -> DeviceEval:
        """Full fidelity: throughput per device on ``device``."""

    @abstractmethod
    def prepare_fast(self, spec: S, base: dict[str, DeviceEval], ctx: EvalContext) -> Any:
        """State for :meth:`evaluate_fast` from the full evaluations of every device ref."""

    @abstractmethod
    def evaluate_fast(self, spec: S, ref: str, device: DeviceProfile, state: Any,
                      ctx: EvalContext) -> DeviceEval:
        """Fast fidelity for sweeps: the same formulas as :meth:`evaluate` on the kept
        state; equal to it at the base point."""

    def evaluate_fast_many(self, spec: S, items: list[tuple[str, DeviceProfile]], state: Any,
                           ctx: EvalContext) -> list[DeviceEval]:
        """:meth:`evaluate_fast` of many ``(ref, device)`` pairs (a chunk of uncertainty
        draws), in order: one at a time unless a kind batches them."""
        return [self.evaluate_fast(spec, ref, device, state, ctx) for ref, device in items]

    def warm_fast(self, spec: S, state: Any, ctx: EvalContext) -> None:
        """Build ahead what :meth:`evaluate_fast` would build on first use (in ``state``);
        nothing by default."""

    def fleet_metrics(self, name: str, spec: S, capacity: float, whole_fleet: float
                      ) -> dict[str, float]:
        """Flat per-fleet metrics (``fleet.<mix>.<key>`` in sweeps)."""
        return {f"{name}_capacity": capacity, f"{name}_capacity_whole_fleet": whole_fleet}

    def fleet_columns(self, name: str) -> dict[str, str]:
        """``{column label: fleet metric key}`` for the compare table."""
        return {f"{name} {self.unit}, allocated": f"{name}_capacity"}


_REGISTRY: dict[str, Workload[Any]] = {}


def register(cls: type[Workload[Any]]) -> type[Workload[Any]]:
    """Class decorator: make a workload kind available to scenarios (by kind and aliases)."""
    inst = cls()
    for key in (cls.kind, *cls.aliases):
        _REGISTRY[key] = inst
    return cls


def unregister(kind: str) -> None:
    """Remove a kind (tests that register a toy workload clean up with this)."""
    for key in [k for k, w in _REGISTRY.items() if w.kind == kind]:
        del _REGISTRY[key]


def kinds() -> list[str]:
    return sorted({w.kind for w in _REGISTRY.values()})


def get(kind: str, where: str = "scenario", field: str = "kind") -> Workload[Any]:
    if kind not in _REGISTRY:
        raise AccelsimError.single(where, field, f"unknown workload kind '{kind}'; expected "
                                   f"one of: {', '.join(kinds())}")
    return _REGISTRY[kind]


def of(spec: WorkloadSpec) -> Workload[Any]:
    """The workload kind that owns a parsed block."""
    return get(spec.kind)


def parse(name: str, block: Any, file: str) -> WorkloadSpec:
    """Validate one named block of a scenario's ``workloads`` with its kind's model. The kind
    is the block's ``kind`` key or, without one, its name (``training``, ``serving``)."""
    field = f"workloads.{name}"
    if isinstance(block, WorkloadSpec):
        return block
    if not isinstance(block, dict):
        raise AccelsimError.single(file, field, f"expected a mapping, got {block!r}")
    kind = block.get("kind", name)
    if not isinstance(kind, str) or kind not in _REGISTRY:
        raise AccelsimError.single(
            file, f"{field}.kind", f"unknown workload kind {kind!r}; expected one of: "
            f"{', '.join(kinds())} (or name the block after its kind)")
    w = _REGISTRY[kind]
    return validate(w.spec_model, {**block, "kind": w.kind}, file, prefix=field)

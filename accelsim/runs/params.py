"""The registry of calibratable numbers: every number of every profile kind that holds
them (devices, software stacks), with an address ``<kind>:<profile>:<section.key>``, the
rows it was fitted on (``fitted_on``), its bounds, how to predict with another value (an
override context) and which profiles a published run reads (:mod:`accelsim.runs.calibration`
fits and cross-validates them)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from accelsim.runs.base import KINDS

# ------------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class Param:
    """One number of one profile: its address, value, the rows it was fitted on, its bounds
    and what decides which profiles are comparable (``match`` equal; nearest ``order``)."""

    kind: str
    name: str
    field: str
    value: float
    fitted_on: tuple[str, ...]
    low: float
    high: float
    file: str
    match: tuple[str, ...] = ()
    order: float = 0.0
    against: tuple[tuple[str, str], ...] = ()
    """(row, reference row) pairs of ``fitted_against``."""

    @property
    def address(self) -> str:
        return f"{self.kind}:{self.name}:{self.field}"


@dataclass(frozen=True)
class ParamKind:
    """A config kind holding calibrated numbers.

    ``params()`` lists every number of every profile (calibrated or not: the priors come
    from the others); ``overridden({name: {field: value}})`` is a context in which predictions
    use those values; ``uses(run, file)`` names the profiles of this kind a run reads."""

    name: str
    params: Callable[[], list[Param]]
    overridden: Callable[[Mapping[str, Mapping[str, float]]], AbstractContextManager[None]]
    uses: Callable[[Any, str], set[str]]


PARAM_KINDS: dict[str, ParamKind] = {}


def register_params(kind: ParamKind) -> ParamKind:
    PARAM_KINDS[kind.name] = kind
    return kind


def _device_params() -> list[Param]:
    from accelsim.devices import catalog

    out = []
    for name, prof in sorted(catalog().items()):
        for fld, q in prof.quantities().items():
            if not isinstance(q.value, (int, float)):
                continue  # 'unsupported'
            lo, hi = (q.range if q.range else _admissible(type(q)))
            out.append(Param("device", name, fld, float(q.value), tuple(q.fitted_on or ()),
                             float(lo), float(hi), f"configs/devices/{name}.yaml",
                             (prof.vendor, prof.kind), float(prof.year),
                             tuple(sorted((q.fitted_against or {}).items()))))
    return out


def _admissible(cls: Any) -> tuple[float, float]:
    """A field's admissible interval as fit bounds (an open end moved in by a hair)."""
    lo = cls.low if math.isfinite(cls.low) else -1e12
    hi = cls.high if math.isfinite(cls.high) else 1e12
    if cls.low_open:
        lo = lo + max(abs(lo), 1.0) * 1e-3
    return lo, hi


def _run_devices(run: Any, file: str) -> list[Any]:
    """The device profiles a run's files name."""
    from accelsim.devices import load_device

    return [load_device(ref, where=file, field=fld, relative_to=file)
            for fld, ref, load in KINDS[run.kind].files(run) if load is load_device]


def _device_uses(run: Any, file: str) -> set[str]:
    return {d.name for d in _run_devices(run, file)}


def _device_overridden(values: Mapping[str, Mapping[str, float]]) -> AbstractContextManager[None]:
    from accelsim.devices import overridden

    return overridden(values)


register_params(ParamKind("device", _device_params, _device_overridden, _device_uses))


def _stack_params() -> list[Param]:
    from accelsim import refs
    from accelsim.stacks import catalog_names, defined_in, load_stack

    out = []
    for name in catalog_names():
        st = load_stack(name)
        path = refs.find(name, "stacks", what="stack")
        for fld, q in st.quantities().items():
            lo, hi = (q.range if q.range else _admissible(type(q)))
            # an inherited number is the base's: named by the file that states it
            file = refs.shown(defined_in(path, fld)) if st.base else refs.shown(path)
            out.append(Param("stack", st.name, fld, float(q.value), tuple(q.fitted_on or ()),
                             float(lo), float(hi), file,
                             (st.role, *st.vendors), 0.0,
                             tuple(sorted((q.fitted_against or {}).items()))))
    return out


def _stack_uses(run: Any, file: str) -> set[str]:
    """The stack a training run names, else its device vendor's default training stack; the
    serving stack an LLM run's replica names, else its vendor's default serving stack."""
    from accelsim import stacks

    if run.kind.startswith("training"):
        named, role = getattr(run, "stack", None), "training"
    elif run.kind.startswith("llm"):
        named, role = run.replica.stack, "serving"
    else:
        return set()
    if named:
        return {stacks.load_stack(named, where=file, relative_to=file).name}
    vendor = next(iter(_device_vendors(run, file)), None)
    st = stacks.default_stack(vendor, role) if vendor else None
    return {st.name} if st else set()


def _device_vendors(run: Any, file: str) -> set[str]:
    return {d.vendor for d in _run_devices(run, file)}


def _stack_overridden(values: Mapping[str, Mapping[str, float]]) -> AbstractContextManager[None]:
    from accelsim.stacks import overridden

    return overridden(values)


register_params(ParamKind("stack", _stack_params, _stack_overridden, _stack_uses))


def all_params() -> list[Param]:
    """Every number of every registered kind's profiles."""
    return [p for k in PARAM_KINDS.values() for p in k.params()]


def calibrated() -> list[Param]:
    """The numbers that name rows they were fitted on."""
    return [p for p in all_params() if p.fitted_on]

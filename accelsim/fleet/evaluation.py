"""Evaluating a scenario's devices on its workloads, through the workload registry.

Full fidelity (``compare``, ``optimize``): every workload's ``evaluate`` on every pool
device. Fast fidelity (scenario sweeps): :class:`FastEvaluator` keeps each workload's
state from a full run and calls ``evaluate_fast`` per point. Both produce the same device
table (:mod:`.pricing`), so everything downstream is one code path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from accelsim import workloads
from accelsim.devices import DeviceProfile, load_device
from accelsim.fleet.pricing import priced_rows
from accelsim.fleet.scenario import Scenario
from accelsim.workloads import DeviceEval

Progress = Callable[[str], None]
# Profile sections that change a device's throughput (power and cost only its price).
PERF_SECTIONS = {"compute", "memory", "interconnect", "efficiency", "reliability"}


def resolve_devices(sc: Scenario, file: str = "scenario") -> dict[str, DeviceProfile]:
    """Every pool device's profile, resolved once."""
    return {ref: load_device(ref, where=file) for ref in sc.pool_of()}


def evaluate_full(sc: Scenario, progress: Progress | None = None,
                  profiles: dict[str, DeviceProfile] | None = None, file: str = "scenario"
                  ) -> tuple[pd.DataFrame, dict[str, dict[str, DeviceEval]]]:
    """The device table and every evaluation (by workload name, then device reference)."""
    ctx = sc.context(file)
    profiles = profiles or resolve_devices(sc, file)
    evals: dict[str, dict[str, DeviceEval]] = {name: {} for name in sc.workloads}
    rows: list[dict[str, Any]] = []
    for ref, pool in sc.pool_of().items():
        dev = profiles[ref]
        per = {}
        for name, spec in sc.workloads.items():
            if progress:
                progress(f"{name} {dev.name}")
            per[name] = evals[name][ref] = workloads.of(spec).evaluate(spec, dev, ctx)
        rows += priced_rows(sc, ref, pool, dev.spec, per)
    return pd.DataFrame(rows), evals


def evaluate_devices(sc: Scenario, progress: Progress | None = None,
                     profiles: dict[str, DeviceProfile] | None = None) -> pd.DataFrame:
    """One row per device x workload: throughput per device, USD/hour, per USD, per watt."""
    return evaluate_full(sc, progress, profiles)[0]


class FastEvaluator:
    """Device tables at fast fidelity for many variants of one base scenario.

    Each workload's fast state comes from a full evaluation on the base profiles and is
    kept by the block's ``device_fields`` (and ``server_chips``): a point that changes
    them (another model, another SLO) gets one full evaluation of that workload first.
    Device evaluations are cached by the profile's performance sections.
    """

    def __init__(self, base: Scenario, profiles: dict[str, DeviceProfile],
                 evals: dict[str, dict[str, DeviceEval]] | None = None,
                 file: str = "scenario") -> None:
        self.profiles = profiles
        self.file = file
        self._states: dict[tuple[str, str], Any] = {}
        self._cache: dict[tuple[str, str, str, str], DeviceEval] = {}
        for name, by_ref in (evals or {}).items():
            spec = base.workloads[name]
            self._states[(name, self._key(base, spec))] = workloads.of(spec).prepare_fast(
                spec, by_ref, base.context(file))

    @staticmethod
    def _key(sc: Scenario, spec: Any) -> str:
        fields = workloads.of(spec).device_fields | {"kind"}
        return f"{sc.server_chips}:{spec.model_dump_json(include=set(fields))}"

    def _state(self, sc: Scenario, name: str, spec: Any, skey: str) -> Any:
        key = (name, skey)
        if key not in self._states:
            w, ctx = workloads.of(spec), sc.context(self.file)
            base = {ref: w.evaluate(spec, self.profiles[ref], ctx) for ref in sc.pool_of()}
            self._states[key] = w.prepare_fast(spec, base, ctx)
        return self._states[key]

    def device_records(self, sc: Scenario, profiles: dict[str, DeviceProfile]
                       ) -> list[dict[str, Any]]:
        """The device table of ``sc`` with ``profiles`` (the point's devices), as records."""
        ctx = sc.context(self.file)
        skeys = {name: self._key(sc, spec) for name, spec in sc.workloads.items()}
        rows: list[dict[str, Any]] = []
        for ref, pool in sc.pool_of().items():
            dev = profiles[ref]
            dkey = dev.model_dump_json(include=PERF_SECTIONS)
            per = {name: self._evaluate(sc, name, skeys[name], ref, dev, dkey, ctx)
                   for name in sc.workloads}
            rows += priced_rows(sc, ref, pool, dev.spec, per)
        return rows

    def _evaluate(self, sc: Scenario, name: str, skey: str, ref: str, device: DeviceProfile,
                  dkey: str, ctx: workloads.EvalContext) -> DeviceEval:
        """One device on one workload, cached by the block's key and the device's
        performance sections."""
        key = (name, skey, ref, dkey)
        if key not in self._cache:
            if len(self._cache) > 50_000:
                self._cache.clear()
            spec = sc.workloads[name]
            state = self._state(sc, name, spec, skey)
            self._cache[key] = workloads.of(spec).evaluate_fast(spec, ref, device, state, ctx)
        return self._cache[key]

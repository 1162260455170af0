"""Evaluating sweep points: the per-worker context (the base, its kind and what the kind
prepares once), each point built and evaluated through its kind's hooks (:mod:`accelsim.kinds`:
scenarios at fast fidelity through the fleet's one evaluation path, jobs at full fidelity),
uncertainty draws, the worker entry.

A point that evaluates but cannot deliver (no layout fits, no feasible fleet, a ratio
over zero) keeps its row: the metric is NaN and the ``reason`` column says why. Input
errors (an unknown metric or field) stop the sweep with one line.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.config import read_yaml
from accelsim.devices import DeviceProfile, device_from_dict, load_device
from accelsim.errors import AccelsimError, Problem
from accelsim.kinds import KINDS, Kind, detect
from accelsim.sweep.overrides import apply_device, apply_mapping
from accelsim.sweep.spec import SweepSpec

# ------------------------------------------------------------------------------ context


@dataclass
class Context:
    """Everything a worker computes once per sweep: the base, its kind, its resolved devices
    and what the kind prepares for every point (a scenario's base evaluation)."""

    kind: Kind
    base_path: str
    base_data: dict[str, Any]
    profiles: dict[str, dict[str, Any]]  # device ref -> profile mapping
    base_profiles: dict[str, DeviceProfile]
    state: Any = None
    cache: dict[str, Any] = field(default_factory=dict)


_CONTEXTS: dict[str, Context] = {}


def base_kind(data: dict[str, Any], file: str) -> Kind:
    """The base's kind: one a sweep can vary."""
    kind = detect(data, file)
    if kind.sweep is None:
        can = ", ".join(k.description for k in KINDS.values() if k.sweep is not None)
        raise AccelsimError.single(file, "base", f"base must be one of: {can}; got a "
                                   f"{kind.description} file")
    return kind


def base_inputs(base_path: str | Path) -> list[Path]:
    """Every file a sweep over this base reads besides the base itself (device profiles,
    model files, traces): the resume fingerprint covers them."""
    data = read_yaml(base_path)
    kind = base_kind(data, str(base_path))
    return kind.input_files(kind.from_data(data, base_path, str(base_path), True))


def base_context(base_path: str) -> Context:
    """The base's mapping and its resolved devices, without evaluating anything."""
    data = read_yaml(base_path)
    kind = base_kind(data, base_path)
    base = kind.from_data(copy.deepcopy(data), base_path, base_path, True)
    profiles = {r: load_device(r, where=base_path) for r in kind.devices(base)}
    ctx = Context(kind, base_path, data, {r: p.model_dump(mode="json") for r, p in
                                          profiles.items()}, profiles)
    ctx.cache["base"] = base
    return ctx


def context(key: str, base_path: str, metrics: list[str] | None = None) -> Context:
    """The worker's context, built once per sweep (with what the kind prepares for
    ``metrics``: None, everything)."""
    if key in _CONTEXTS:
        return _CONTEXTS[key]
    ctx = base_context(base_path)
    assert ctx.kind.sweep is not None
    ctx.state = ctx.kind.sweep.prepare(ctx.cache["base"], ctx.base_profiles, base_path,
                                       metrics)
    _CONTEXTS[key] = ctx
    return ctx


# ------------------------------------------------------------------------------ checks

# Values of one parameter tried by :func:`check_sweep` (its grid, thinned to this many).
CHECK_VALUES = 9


def check_sweep(spec: SweepSpec, where: str, base_path: str) -> None:
    """Before any point runs: every parameter applies to the base (a device field or a key
    the base file's schema knows) and gives a valid input at some of its values (a value
    that fails only at some points is that point's ``reason``), and every metric names a
    value the base produces. One line per problem."""
    ctx = base_context(base_path)
    probs: list[Problem] = []
    for path, param in spec.parameters.items():
        grid = param.grid()
        tried = [grid[i] for i in np.unique(np.linspace(0, len(grid) - 1, CHECK_VALUES
                                                        ).round().astype(int))]
        problem: str | None = None
        for v in tried:
            try:
                _point_inputs(ctx, {path: float(v)}, where, check=True)
                problem = None
                break
            except AccelsimError as e:
                problem = problem or "; ".join(
                    f"{x.field}: {x.message}" if x.field and not x.field.startswith(
                        "parameters") else x.message for x in e.problems)
        if problem is not None:
            shown = ", ".join(f"{float(v):g}" for v in tried)
            probs.append(Problem(where, f"parameters.{path}",
                                 f"{problem} (at every value tried: {shown})"))
    known = metric_names(ctx, spec.metrics, where)
    for m in spec.metrics:
        for name in (x.strip() for x in m.split(" / ")):
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
                probs.append(Problem(where, "metrics", f"unknown metric '{name}'; expected e.g. "
                                     + ", ".join(close or sorted(known)[:4])))
    if probs:
        raise AccelsimError(probs)


def metric_names(ctx: Context, metrics: list[str], where: str) -> set[str]:
    """Every metric a point of this base produces (the names :func:`evaluate_point` fills)."""
    assert ctx.kind.sweep is not None
    return ctx.kind.sweep.metric_names(copy.deepcopy(ctx.base_data), ctx.base_path,
                                       ctx.base_profiles, metrics, where)


# ------------------------------------------------------------------------------ evaluation


def tree_copy(x: Any) -> Any:
    """A copy of a YAML tree (mappings and lists copied, leaves shared: they are
    immutable), several times faster than ``copy.deepcopy`` on a scenario."""
    if type(x) is dict:
        return {k: tree_copy(v) for k, v in x.items()}
    if type(x) is list:
        return [tree_copy(v) for v in x]
    return x


def _split(params: dict[str, float], where: str) -> tuple[dict[str, dict[str, float]],
                                                          dict[str, float]]:
    dev: dict[str, dict[str, float]] = {}
    other: dict[str, float] = {}
    for path, v in params.items():
        if path.startswith("devices."):
            parts = path.split(".", 2)
            if len(parts) < 3:
                raise AccelsimError.single(where, f"parameters.{path}",
                                           "expected devices.<device>.<field>")
            for name in parts[1].split(","):  # devices.a,b.field moves several together
                dev.setdefault(name, {})[parts[2]] = v
        else:
            other[path] = v
    return dev, other


def _profiles_for(ctx: Context, dev_over: dict[str, dict[str, float]], where: str,
                  draws: dict[str, dict[str, float]] | None = None) -> dict[str, DeviceProfile]:
    out = {}
    for ref, base in ctx.profiles.items():
        over = dev_over.get(ref) or dev_over.get(base["name"]) or {}
        if not over and not (draws or {}).get(ref):
            out[ref] = ctx.base_profiles[ref]
            continue
        prof = tree_copy(base)
        for fld, v in (draws or {}).get(ref, {}).items():
            sec, key = fld.split(".")
            prof[sec][key]["value"] = v
        for fld, v in over.items():
            apply_device(prof, fld, v, where)
        out[ref] = device_from_dict(prof, f"{where}: devices.{base['name']}")
    unknown = set(dev_over) - set(ctx.profiles) - {p["name"] for p in ctx.profiles.values()}
    if unknown:
        known = ", ".join(p["name"] for p in ctx.profiles.values())
        raise AccelsimError.single(where, "parameters",
                                   f"device(s) {', '.join(sorted(unknown))} not in the base; "
                                   f"expected one of: {known}")
    return out


def _point_inputs(ctx: Context, params: dict[str, float], where: str,
                  draws: dict[str, dict[str, float]] | None = None, check: bool = False
                  ) -> tuple[Any, dict[str, DeviceProfile]]:
    """The point's validated input (of the base's kind) and its devices."""
    dev_over, other = _split(params, where)
    profiles = _profiles_for(ctx, dev_over, where, draws)
    same = f"unchanged:{check}:{where}"  # a point that changes devices only: the base's input
    if not other and same in ctx.cache:
        obj = ctx.cache[same]
    else:
        data = tree_copy(ctx.base_data)
        for path, v in other.items():
            apply_mapping(data, path, v, where)
        obj = ctx.kind.from_data(data, ctx.base_path, where, check)
        if not other:
            ctx.cache[same] = obj
    missing = [r for r in ctx.kind.devices(obj) if r not in profiles]
    if missing:
        raise AccelsimError.single(where, "parameters", f"device(s) {', '.join(missing)} not "
                                   "in the base; expected the base's devices")
    return obj, profiles


def evaluate_point(ctx: Context, params: dict[str, float], metrics: list[str], where: str,
                   draws: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """The point's metrics, and ``reason``: why any of them could not be delivered. A point
    whose values make an invalid input (a layout that does not divide, a fractional count)
    keeps its row with NaN metrics and the problem as its reason."""
    reasons: list[str] = []
    try:
        inputs, profiles = _point_inputs(ctx, params, where, draws)
        assert ctx.kind.sweep is not None
        values = ctx.kind.sweep.evaluate(inputs, profiles, metrics, where, ctx.state, reasons)
    except AccelsimError as e:
        msg = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in e.problems)
        return {**dict.fromkeys(metrics, float("nan")), "reason": msg}
    out: dict[str, Any] = {m: _metric(values, m, where, reasons) for m in metrics}
    out["reason"] = "; ".join(dict.fromkeys(reasons))
    return out


def _metric(values: dict[str, Any], name: str, where: str, reasons: list[str]) -> float:
    if " / " in name:
        a, b = name.split(" / ", 1)
        den = _metric(values, b.strip(), where, reasons)
        num = _metric(values, a.strip(), where, reasons)
        if den == 0:
            reasons.append(f"'{name}': {b.strip()} is 0")
            return float("nan")
        return num / den
    if name not in values:
        # every metric was checked against the base before the sweep ran (check_sweep): a
        # point without it could not measure it (an unstable queue has no percentiles)
        reasons.append(f"{name}: not measured at this point")
        return float("nan")
    v = values[name]
    return float(v) if v is not None else float("nan")


# ------------------------------------------------------------------------------ uncertainty


def uncertainty_draws(ctx: Context, n: int, seed: int) -> list[dict[str, dict[str, float]]]:
    """n draws of every ranged device field (:func:`accelsim.uncertainty.draws`: triangular,
    comonotonic where numbers share a cause)."""
    from accelsim.uncertainty import draws

    return draws(ctx.profiles, n, seed)


def evaluate_batch(payload: dict[str, Any], batch: list[tuple[int, dict[str, float]]]
                   ) -> list[dict[str, Any]]:
    """Worker entry point: evaluate a batch of (point id, params) -> result rows."""
    spec = SweepSpec.model_validate(payload["spec"])
    ctx = context(payload["key"], payload["base_path"], spec.metrics)
    where = payload["sweep_path"]
    samples = payload["samples"]
    draws = uncertainty_draws(ctx, samples, payload["seed"]) if samples else None
    rows = []
    for pid, params in batch:
        row: dict[str, Any] = {"point_id": pid, **params}
        if draws is None:
            row.update(evaluate_point(ctx, params, spec.metrics, where))
        else:
            vals = [evaluate_point(ctx, params, spec.metrics, where, d) for d in draws]
            for m in spec.metrics:
                arr = np.array([v[m] for v in vals], dtype=float)
                row[m] = float(np.nanmedian(arr)) if np.isfinite(arr).any() else float("nan")
                row[f"{m} [p05]"] = (float(np.nanpercentile(arr, 5))
                                     if np.isfinite(arr).any() else float("nan"))
                row[f"{m} [p95]"] = (float(np.nanpercentile(arr, 95))
                                     if np.isfinite(arr).any() else float("nan"))
            row["reason"] = "; ".join(dict.fromkeys(r for v in vals for r in
                                                    v["reason"].split("; ") if r))
        rows.append(row)
    return rows

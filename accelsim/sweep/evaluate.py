"""Evaluating sweep points: the per-worker context (the base run and its caches), scenario
points through the fleet's one evaluation path at fast fidelity, job points at full
fidelity, uncertainty draws, the worker entry.

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

from accelsim.config import read_yaml, validate
from accelsim.devices import DeviceProfile, device_from_dict, load_device
from accelsim.errors import AccelsimError, Problem
from accelsim.sweep.overrides import apply_device, apply_mapping
from accelsim.sweep.spec import SweepSpec

# ------------------------------------------------------------------------------ context


@dataclass
class Context:
    """Everything a worker computes once per sweep: the base run and its caches."""

    kind: str  # scenario | train-job | serve-job (accelsim.schemas kinds)
    base_path: str
    base_data: dict[str, Any]
    profiles: dict[str, dict[str, Any]]  # device ref -> profile mapping
    base_profiles: dict[str, DeviceProfile]
    fast: Any = None  # fleet.FastEvaluator for scenarios
    cache: dict[str, Any] = field(default_factory=dict)


_CONTEXTS: dict[str, Context] = {}
BASE_KINDS = ("scenario", "train-job", "serve-job")


def base_kind(data: dict[str, Any], file: str) -> str:
    from accelsim.schemas import detect

    kind = detect(data, file).name
    if kind not in BASE_KINDS:
        raise AccelsimError.single(file, "base", f"base must be a scenario, training job or "
                                                 f"serving job, got a {kind} file")
    return kind


def _serve_refs(job: Any) -> list[str]:
    svc = job.service
    return [m.device for m in svc.pool] if svc.pool else ([svc.device] if svc.device else [])


def base_inputs(base_path: str | Path) -> list[Path]:
    """Every file a sweep over this base reads besides the base itself (device profiles,
    model files, traces): the resume fingerprint covers them."""
    from accelsim import refs

    data = read_yaml(base_path)
    kind = base_kind(data, str(base_path))
    if kind == "scenario":
        from accelsim.fleet import load_scenario

        return load_scenario(base_path).input_files()
    if kind == "train-job":
        from accelsim.training import load_job

        return [refs.find(load_job(base_path).device, "devices")]
    from accelsim.serving import load_serve_job

    job = load_serve_job(base_path)
    files = [refs.find(r, "devices") for r in _serve_refs(job)]
    if job.service.model:
        files.append(refs.find(job.service.model, "models", family="recsys"))
    if job.arrivals.trace:
        files.append(Path(job.arrivals.trace))
    return files


def base_context(base_path: str) -> Context:
    """The base's mapping and its resolved devices, without evaluating anything."""
    data = read_yaml(base_path)
    kind = base_kind(data, base_path)
    if kind == "scenario":
        from accelsim.fleet import load_scenario
        from accelsim.fleet.evaluation import resolve_devices

        profiles = resolve_devices(load_scenario(base_path), base_path)
    elif kind == "train-job":
        from accelsim.training import load_job

        job = load_job(base_path)
        profiles = {job.device: load_device(job.device, where=base_path, field="device")}
    else:
        from accelsim.serving import load_serve_job

        sjob = load_serve_job(base_path)
        profiles = {r: load_device(r, where=base_path) for r in _serve_refs(sjob)}
    return Context(kind, base_path, data, {r: p.model_dump(mode="json") for r, p in
                                           profiles.items()}, profiles)


def context(key: str, base_path: str) -> Context:
    """The worker's context, built once per sweep: for a scenario, the base run at full
    fidelity and the fast evaluator built on it."""
    if key in _CONTEXTS:
        return _CONTEXTS[key]
    ctx = base_context(base_path)
    if ctx.kind == "scenario":
        from accelsim.fleet import FastEvaluator, evaluate_full, load_scenario

        sc = load_scenario(base_path)
        _, evals = evaluate_full(sc, profiles=ctx.base_profiles, file=base_path)
        ctx.fast = FastEvaluator(sc, ctx.base_profiles, evals, file=base_path)
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
    if ctx.kind == "scenario":
        from accelsim.fleet.pricing import priced_rows
        from accelsim.fleet.scenario import scenario_from
        from accelsim.workloads import DeviceEval

        sc = scenario_from(copy.deepcopy(ctx.base_data), ctx.base_path, check=False, where=where)
        placeholder = DeviceEval(1.0, 0.5)  # names only: priced like any evaluation
        records = [r for ref, pool in sc.pool_of().items() for r in priced_rows(
            sc, ref, pool, ctx.base_profiles[ref].spec, dict.fromkeys(sc.workloads, placeholder))]
        return set(_scenario_values(sc, records, metrics, [], solve=False))
    if ctx.kind == "train-job":
        return set(_eval_train(copy.deepcopy(ctx.base_data), ctx.base_profiles, where))
    data = copy.deepcopy(ctx.base_data)
    data["sim"] = {**data.get("sim", {}), "requests": 200, "warmup": 0, "replications": 1}
    from accelsim.serving.sim import CAPACITY_KEYS

    return set(_eval_serve(data, ctx.base_profiles, [], where)) | set(CAPACITY_KEYS)


# ------------------------------------------------------------------------------ evaluation


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
        prof = copy.deepcopy(base)
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
    """The point's validated input (a Scenario, TrainJob or ServeJob) and its devices."""
    dev_over, other = _split(params, where)
    profiles = _profiles_for(ctx, dev_over, where, draws)
    data = copy.deepcopy(ctx.base_data)
    for path, v in other.items():
        apply_mapping(data, path, v, where)
    if ctx.kind == "scenario":
        from accelsim.fleet.scenario import scenario_from

        return scenario_from(data, ctx.base_path, check=check, where=where), profiles
    if ctx.kind == "train-job":
        from accelsim.training.job import TrainJob, check_job

        job = validate(TrainJob, data, where)
        if check:
            check_job(job, where)
        return job, profiles
    from accelsim.serving.job import ServeJob

    return validate(ServeJob, data, where), profiles


def evaluate_point(ctx: Context, params: dict[str, float], metrics: list[str], where: str,
                   draws: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """The point's metrics, and ``reason``: why any of them could not be delivered. A point
    whose values make an invalid input (a layout that does not divide, a fractional count)
    keeps its row with NaN metrics and the problem as its reason."""
    reasons: list[str] = []
    try:
        inputs, profiles = _point_inputs(ctx, params, where, draws)
        if ctx.kind == "scenario":
            values = _eval_scenario(ctx, inputs, profiles, metrics, where, reasons)
        elif ctx.kind == "train-job":
            values = _eval_train(inputs, profiles, where)
        else:
            values = _eval_serve(inputs, profiles, metrics, where)
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
        close = [k for k in values if k.split(".")[-1] == name.split(".")[-1]][:3]
        raise AccelsimError.single(where, "metrics", f"unknown metric '{name}'"
                                   + (f"; e.g. {', '.join(close)}" if close else ""))
    v = values[name]
    return float(v) if v is not None else float("nan")


_DEVICE_METRICS = ("throughput", "usd_per_hour", "throughput_per_usd", "throughput_per_watt",
                   "tco_usd_per_year")


def _eval_scenario(ctx: Context, sc: Any, profiles: dict[str, DeviceProfile],
                   metrics: list[str], where: str, reasons: list[str]) -> dict[str, Any]:
    for ref in sc.pool_of():
        if ref not in profiles:
            raise AccelsimError.single(where, "parameters", f"device '{ref}' not in the base")
    return _scenario_values(sc, ctx.fast.device_records(sc, profiles), metrics, reasons)


def _scenario_values(sc: Any, records: list[dict[str, Any]], metrics: list[str],
                     reasons: list[str], solve: bool = True) -> dict[str, Any]:
    """Every metric name of a scenario point and its value: ``device.<name>.<workload>.*``,
    ``fleet.<fleet>.*``, ``optimum.*`` (the MILP only when a metric asks and ``solve``)."""
    from accelsim.fleet import device_rows, evaluate_fleet, mix_problem

    values: dict[str, Any] = {}
    for r in records:
        for fld in _DEVICE_METRICS:
            values[f"device.{r['device']}.{r['workload']}.{fld}"] = r[fld]
        if r["reason"]:
            reasons.append(f"device.{r['device']}.{r['workload']}: {r['reason']}")
    rows = device_rows(records)
    for mix in sc.fleets:
        f = evaluate_fleet(sc, mix, rows)
        for k, v in f.items():
            if isinstance(v, (int, float, bool)):
                values[f"fleet.{mix.name}.{k}"] = float(v)
        values[f"fleet.{mix.name}.n_violations"] = float(len(f["violations"]))
    if not solve or any(m.startswith("optimum.") or " optimum." in m for m in metrics):
        from accelsim.optimize import solve as solve_milp

        p = mix_problem(sc, rows)
        o = None
        if solve:
            try:
                o = solve_milp(p, marginals=False)  # sweeps record the optimum only
            except AccelsimError as e:
                reasons.append(f"optimum: {e.problems[0].message}")
            if o is not None and not o["feasible"]:  # its mix answers another objective
                reasons.append(f"optimum: {o['reason']}")
                o = None
        nan = float("nan")
        for d in p.devices:
            values[f"optimum.units.{d}"] = nan if o is None else 0.0
        for k in ("objective", "capex_usd", "tco_usd_per_year", "power_MW"):
            values[f"optimum.{k}"] = nan if o is None else o[k]
        for w in p.workloads:
            values[f"optimum.served_fraction.{w}"] = nan if o is None else o["served_fraction"][w]
        for k in sc.budget.pools:
            values[f"optimum.pool_spend_usd.{k}"] = (nan if o is None
                                                     else o["pool_spend_usd"][k])
        for d, ws in (o or {}).get("units", {}).items():
            values[f"optimum.units.{d}"] = float(sum(ws.values()))
    return values


def _eval_train(job: Any, profiles: dict[str, DeviceProfile], where: str) -> dict[str, Any]:
    from accelsim.training.job import TrainJob
    from accelsim.training.perf import estimate

    if not isinstance(job, TrainJob):
        job = validate(TrainJob, job, where)
    r = estimate(job, next(iter(profiles.values())).spec, file=where).to_dict()
    out = {k: v for k, v in r.items() if isinstance(v, (int, float, bool))}
    out.update({f"breakdown.{k}": v for k, v in r["breakdown"].items()})
    return out


def _eval_serve(job: Any, profiles: dict[str, DeviceProfile],
                metrics: list[str], where: str) -> dict[str, Any]:
    from accelsim.serving.job import ServeJob
    from accelsim.serving.service import build_service
    from accelsim.serving.sim import capacity, simulate

    if not isinstance(job, ServeJob):
        job = validate(ServeJob, job, where)
    sm = build_service(job, where, {ref: p.spec for ref, p in profiles.items()})
    out = dict(simulate(job, service=sm).metrics)
    if any("max_qps_at_slo" in m or "ci95" in m for m in metrics):
        out.update(capacity(job, service=sm))
    return {k: v for k, v in out.items() if isinstance(v, (int, float, bool))}


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
    ctx = context(payload["key"], payload["base_path"])
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

"""Evaluating sweep points: the per-worker context (the base run and its caches), the
fast-fidelity scenario evaluation, job evaluation, uncertainty draws, the worker entry."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from accelsim.config import read_yaml, validate
from accelsim.devices import DeviceProfile, DeviceSpec, device_from_dict, load_device
from accelsim.errors import AccelsimError
from accelsim.sweep.overrides import _DEVICE_SECTIONS, apply_device, apply_mapping
from accelsim.sweep.spec import SweepSpec

TOP_LAYOUTS = 24

# ------------------------------------------------------------------------------ context


@dataclass
class Context:
    """Everything a worker computes once per sweep: the base run and its caches."""

    kind: str  # scenario | train-job | serve-job
    base_path: str
    base_data: dict[str, Any]
    profiles: dict[str, dict[str, Any]]  # device ref -> profile mapping
    extra: dict[str, Any]


_CONTEXTS: dict[str, Context] = {}


def _kind(data: dict[str, Any]) -> str:
    if "fleets" in data and "workloads" in data:
        return "scenario"
    if "parallelism" in data:
        return "train-job"
    if "arrivals" in data:
        return "serve-job"
    raise AccelsimError.single("sweep", "base", "base must be a scenario, training or serving job")


def context(key: str, base_path: str) -> Context:
    if key in _CONTEXTS:
        return _CONTEXTS[key]
    data = read_yaml(base_path)
    kind = _kind(data)
    profiles: dict[str, dict[str, Any]] = {}
    extra: dict[str, Any] = {}
    if kind == "scenario":
        from accelsim.fleet import evaluate_devices, load_scenario

        sc = load_scenario(base_path)
        for ref in sc.pool_of():
            profiles[ref] = load_device(ref).model_dump(mode="json")
        table = evaluate_devices(sc)
        extra = _scenario_caches(sc, table)
    elif kind == "train-job":
        from accelsim.training import load_job

        job = load_job(base_path)
        profiles[job.device] = load_device(job.device).model_dump(mode="json")
    else:
        from accelsim.serving import load_serve_job

        job = load_serve_job(base_path)
        refs = [m.device for m in job.service.pool] if job.service.pool else (
            [job.service.device] if job.service.device else [])
        for r in refs:
            profiles[str(r)] = load_device(str(r)).model_dump(mode="json")
    ctx = Context(kind, base_path, data, profiles, extra)
    _CONTEXTS[key] = ctx
    return ctx


def _scenario_caches(sc: Any, table: pd.DataFrame) -> dict[str, Any]:
    """Top layouts per device and the serving SLO ratio + batch mix from the full base run."""
    from accelsim.serving.engines import saturated_batches
    from accelsim.serving.workload import sample

    extra: dict[str, Any] = {"slo_ratio": {}}
    wl = sc.workloads
    if wl.training is not None:
        from accelsim.fleet import _training_model
        from accelsim.training.search import default_global_batch, search_layouts

        model = _training_model(wl.training)
        extra["train_model"] = model
        extra["train_global_batch"] = wl.training.global_batch or default_global_batch(model)
        for ref in sc.pool_of():
            try:
                res = search_layouts(model, ref, wl.training.cluster_devices,
                                     wl.training.global_batch, wl.training.precision)
                lay = res.table.head(TOP_LAYOUTS)
                extra.setdefault("layout_cols", {})[ref] = _layout_columns(
                    lay, model, wl.training.precision, extra["train_global_batch"])
            except AccelsimError:
                extra.setdefault("layout_cols", {})[ref] = None
    if wl.serving is not None:
        from accelsim.serving.recsys import load_model

        extra["rec_model"] = load_model(wl.serving.model)
        rng = np.random.default_rng(wl.serving.sim.seed)
        sizes = sample(wl.serving.query_size, rng, wl.serving.sim.requests, integer=True)
        first, total = saturated_batches(sizes, wl.serving.batching.max_batch_items)
        extra["batch_items"] = total.astype(np.int64)
        extra["queries_per_batch"] = len(sizes) / len(first)
        rows = table[table.workload == "serving"].set_index("ref")
        for ref in sc.pool_of():
            sat = _saturated_qps(extra, load_device(ref).spec, sc)
            qps = float(rows.at[ref, "throughput"])
            extra["slo_ratio"][ref] = qps / sat if sat > 0 else 0.0
    return extra


def _layout_columns(lay: pd.DataFrame, model: Any, precision: str, global_batch: int
                    ) -> dict[str, Any]:
    """Model and layout input columns of the batch model (device columns come per point)."""
    from accelsim.training.perf import job_columns, model_columns

    cols: dict[str, Any] = {k: lay[k].to_numpy(dtype=float) for k in (
        "tp", "pp", "dp", "cp", "ep", "micro_batch", "virtual_stages", "zero")}
    cols["recompute"] = lay["recompute"].map({"none": 0, "selective": 1, "full": 2}).to_numpy(
        dtype=float)
    cols["sequence_parallel"] = (cols["tp"] > 1).astype(float)
    cols.update({k: float(v) for k, v in model_columns(model).items()})
    cols.update({k: float(v) for k, v in job_columns(precision).items()})
    cols["global_batch"] = float(global_batch)
    return cols


def _saturated_qps(extra: dict[str, Any], spec: DeviceSpec, sc: Any) -> float:
    """Queries/s of one device when its queue never empties (same packing as the simulator)."""
    from accelsim.serving import recsys

    items = extra["batch_items"]
    try:
        t = recsys.service_time(extra["rec_model"], spec, np.unique(items))["total_s"]
    except AccelsimError:
        return 0.0
    lookup = dict(zip(np.unique(items).tolist(), np.asarray(t, dtype=float).tolist(),
                      strict=True))
    mean_svc = float(np.mean([lookup[i] for i in items.tolist()]))
    return extra["queries_per_batch"] / mean_svc


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
            out[ref] = _base_profile(ctx, ref)
            continue
        prof = copy.deepcopy(base)
        for field, v in (draws or {}).get(ref, {}).items():
            sec, key = field.split(".")
            prof[sec][key]["value"] = v
        for field, v in over.items():
            apply_device(prof, field, v, where)
        out[ref] = device_from_dict(prof, f"{where}: devices.{base['name']}")
    unknown = set(dev_over) - set(ctx.profiles) - {p["name"] for p in ctx.profiles.values()}
    if unknown:
        known = ", ".join(p["name"] for p in ctx.profiles.values())
        raise AccelsimError.single(where, "parameters",
                                   f"device(s) {', '.join(sorted(unknown))} not in the base; "
                                   f"expected one of: {known}")
    return out


def _base_profile(ctx: Context, ref: str) -> DeviceProfile:
    cache = ctx.extra.setdefault("_profiles", {})
    if ref not in cache:
        cache[ref] = device_from_dict(ctx.profiles[ref], f"devices.{ref}")
    return cache[ref]  # type: ignore[no-any-return]


def evaluate_point(ctx: Context, params: dict[str, float], metrics: list[str], where: str,
                   draws: dict[str, dict[str, float]] | None = None) -> dict[str, float]:
    dev_over, other = _split(params, where)
    profiles = _profiles_for(ctx, dev_over, where, draws)
    data = copy.deepcopy(ctx.base_data)
    for path, v in other.items():
        apply_mapping(data, path, v, where)
    if ctx.kind == "scenario":
        values = _eval_scenario(ctx, data, profiles, metrics, where)
    elif ctx.kind == "train-job":
        values = _eval_train(ctx, data, profiles, where)
    else:
        values = _eval_serve(ctx, data, profiles, metrics, where)
    return {m: _metric(values, m, where) for m in metrics}


def _metric(values: dict[str, Any], name: str, where: str) -> float:
    if " / " in name:
        a, b = name.split(" / ", 1)
        den = _metric(values, b.strip(), where)
        return _metric(values, a.strip(), where) / den if den else float("nan")
    if name not in values:
        close = [k for k in values if k.split(".")[-1] == name.split(".")[-1]][:3]
        raise AccelsimError.single(where, "metrics", f"unknown metric '{name}'"
                                   + (f"; e.g. {', '.join(close)}" if close else ""))
    v = values[name]
    return float(v) if v is not None else float("nan")


def _eval_scenario(ctx: Context, data: dict[str, Any], profiles: dict[str, DeviceProfile],
                   metrics: list[str], where: str) -> dict[str, Any]:
    from accelsim.fleet import Scenario, device_rows, evaluate_fleet, priced_rows

    sc = validate(Scenario, data, where)
    ex = ctx.extra
    wl = sc.workloads
    values: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    for ref, pool in sc.pool_of().items():
        if ref not in profiles:
            raise AccelsimError.single(where, "parameters", f"device '{ref}' not in the base")
        tps, sat = _device_throughput(ctx, sc, ref, profiles[ref])
        records += priced_rows(
            sc, ref, pool, profiles[ref].spec,
            (tps, "") if wl.training is not None else None,
            (sat * ex["slo_ratio"].get(ref, 0.0), sat, "") if wl.serving is not None else None)
    for r in records:
        for field in ("throughput", "usd_per_hour", "throughput_per_usd", "throughput_per_watt",
                      "tco_usd_per_year"):
            values[f"device.{r['device']}.{r['workload']}.{field}"] = r[field]
    rows = device_rows(records)
    for mix in sc.fleets:
        f = evaluate_fleet(sc, mix, rows)
        for k, v in f.items():
            if isinstance(v, (int, float, bool)):
                values[f"fleet.{mix.name}.{k}"] = float(v)
        values[f"fleet.{mix.name}.n_violations"] = float(len(f["violations"]))
    if any(m.startswith("optimum.") or " optimum." in m for m in metrics):
        from accelsim.optimize import problem_from_scenario, solve

        p = problem_from_scenario(sc, rows)
        try:
            o = solve(p)
            values["optimum.objective"] = o["objective"]
            values["optimum.capex_usd"] = o["capex_usd"]
            values["optimum.tco_usd_per_year"] = o["tco_usd_per_year"]
            values["optimum.power_MW"] = o["power_MW"]
            for w, v in o["served_fraction"].items():
                values[f"optimum.served_fraction.{w}"] = v
            for k, v in o["pool_spend_usd"].items():
                values[f"optimum.pool_spend_usd.{k}"] = v
            for d, ws in o["units"].items():
                values[f"optimum.units.{d}"] = float(sum(ws.values()))
            for d in p.devices:
                values.setdefault(f"optimum.units.{d}", 0.0)
        except AccelsimError:
            values["optimum.objective"] = float("nan")
    return values


def _device_throughput(ctx: Context, sc: Any, ref: str, prof: DeviceProfile
                       ) -> tuple[float, float]:
    """(training tokens/s per device, saturated serving QPS per device) at fast fidelity,
    cached by the profile fields that drive performance."""
    from accelsim.training.perf import device_columns, estimate_arrays

    ex = ctx.extra
    key = (ref, json.dumps(prof.model_dump(mode="json", include={
        "compute", "memory", "interconnect", "efficiency"}), sort_keys=True))
    cache = ex.setdefault("_thr", {})
    if key in cache:
        return cache[key]  # type: ignore[no-any-return]
    spec = prof.spec
    wl = sc.workloads
    tps = sat = 0.0
    cols = ex.get("layout_cols", {}).get(ref)
    if wl.training is not None and cols is not None and wl.training.precision in spec.peak_flops:
        est = estimate_arrays({**cols, **device_columns(spec, wl.training.precision)})
        ok = np.asarray(est["fits_memory"], dtype=bool)
        if ok.any():
            tps = float(np.asarray(est["tokens_per_s"])[ok].max()) / wl.training.cluster_devices
    if wl.serving is not None:
        sat = _saturated_qps(ex, spec, sc)
    if len(cache) > 50_000:
        cache.clear()
    cache[key] = (tps, sat)
    return tps, sat


def _eval_train(ctx: Context, data: dict[str, Any], profiles: dict[str, DeviceProfile],
                where: str) -> dict[str, Any]:
    from accelsim.training.job import TrainJob
    from accelsim.training.perf import estimate

    job = validate(TrainJob, data, where)
    spec = next(iter(profiles.values())).spec
    r = estimate(job, file=where, spec=spec).to_dict()
    out = {k: v for k, v in r.items() if isinstance(v, (int, float, bool))}
    out.update({f"breakdown.{k}": v for k, v in r["breakdown"].items()})
    return out


def _eval_serve(ctx: Context, data: dict[str, Any], profiles: dict[str, DeviceProfile],
                metrics: list[str], where: str) -> dict[str, Any]:
    from accelsim.serving.job import ServeJob
    from accelsim.serving.sim import build_service, capacity, simulate

    job = validate(ServeJob, data, where)
    sm = build_service(job, where, {r: p.spec for r, p in profiles.items()})
    out = dict(simulate(job, service=sm).metrics)
    if any("max_qps_at_slo" in m or "ci95" in m for m in metrics):
        out.update(capacity(job, service=sm))
    return {k: v for k, v in out.items() if isinstance(v, (int, float, bool))}


# ------------------------------------------------------------------------------ uncertainty


def uncertainty_draws(ctx: Context, n: int, seed: int) -> list[dict[str, dict[str, float]]]:
    """n draws of every ranged device field: triangular(low, nominal, high)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        d: dict[str, dict[str, float]] = {}
        for ref, prof in ctx.profiles.items():
            for sec in _DEVICE_SECTIONS:
                for key, q in prof[sec].items():
                    r = q.get("range")
                    if r and q["value"] != "unsupported" and r[1] > r[0]:
                        mode = min(max(float(q["value"]), r[0]), r[1])
                        d.setdefault(ref, {})[f"{sec}.{key}"] = float(
                            rng.triangular(r[0], mode, r[1]))
        out.append(d)
    return out


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
                row[m] = float(np.nanmedian(arr))
                row[f"{m} [p05]"] = float(np.nanpercentile(arr, 5))
                row[f"{m} [p95]"] = float(np.nanpercentile(arr, 95))
        rows.append(row)
    return rows



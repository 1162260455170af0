"""Parameter sweeps: vary inputs by dotted path, evaluate every point, write results as they go.

A sweep file names a base (a fleet scenario, a training job or a serving job), the
parameters to vary and the metrics to record::

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
ratio (from the full simulation); TCO, fleets and the optimiser are exact. Training and
serving job bases run the full models per point.

Results go to a folder of Parquet parts, one per finished batch (atomic rename), with the
sweep's fingerprint; ``resume`` skips every point already written.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from accelsim import units
from accelsim.config import Strict, read_yaml, validate
from accelsim.devices import DeviceProfile, DeviceSpec, device_from_dict, load_device
from accelsim.errors import AccelsimError

PSEUDO = ("perf_scale", "compute_scale", "bandwidth_scale", "cuda_parity")
CUDA_REFERENCE = "h100-sxm"
TOP_LAYOUTS = 24


class Param(Strict):
    """Values of one parameter: a list, or ``low``/``high`` (with ``num`` for a grid, ``log``)."""

    values: list[float] | None = None
    low: float | None = None
    high: float | None = None
    num: int = Field(default=5, ge=1, le=10_000)
    log: bool = False

    @model_validator(mode="after")
    def _one(self) -> Param:
        if (self.values is None) == (self.low is None or self.high is None):
            raise ValueError("give values, or low and high")
        if self.values is not None and not self.values:
            raise ValueError("values must not be empty")
        if self.low is not None and self.high is not None:
            if self.high < self.low:
                raise ValueError("high must be >= low")
            if self.log and self.low <= 0:
                raise ValueError("log spacing needs low > 0")
        return self

    def grid(self) -> list[float]:
        if self.values is not None:
            return list(self.values)
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.log:
            return list(np.geomspace(lo, hi, self.num))
        return list(np.linspace(lo, hi, self.num))

    def at(self, q: float) -> float:
        """Value at quantile q in [0, 1) (LHS)."""
        if self.values is not None:
            return float(self.values[min(int(q * len(self.values)), len(self.values) - 1)])
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.log:
            return float(math.exp(math.log(lo) + q * (math.log(hi) - math.log(lo))))
        return lo + q * (hi - lo)

    def nominal(self) -> float:
        g = self.grid()
        if self.values is not None:
            return float(g[len(g) // 2])
        return 0.5 * (float(self.low) + float(self.high))  # type: ignore[arg-type]


class Sampling(Strict):
    method: Literal["grid", "lhs", "oat"] = "grid"
    samples: int = Field(default=100, ge=1, le=1_000_000)
    seed: int = Field(default=1, ge=0)


class SweepSpec(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    base: str
    parameters: dict[str, Param] = Field(min_length=1)
    sampling: Sampling = Sampling()
    metrics: list[str] = Field(min_length=1)
    batch_size: int | None = Field(default=None, ge=1)

    def check(self, file: str = "sweep") -> None:
        """The base file exists (relative to the sweep file)."""
        load_sweep(file)


def load_sweep(path: str | Path) -> tuple[SweepSpec, Path]:
    """The sweep and its base file's absolute path (relative to the sweep file)."""
    spec = validate(SweepSpec, read_yaml(path), path)
    base = Path(spec.base)
    if not base.is_absolute():
        base = (Path(path).resolve().parent / base).resolve()
    if not base.is_file():
        raise AccelsimError.single(str(path), "base", f"base file not found: {base}")
    return spec, base


# ------------------------------------------------------------------------------ points


def points(spec: SweepSpec) -> list[dict[str, float]]:
    """Deterministic list of parameter assignments (the index is the point id)."""
    names = list(spec.parameters)
    s = spec.sampling
    if s.method == "grid":
        grids = [spec.parameters[n].grid() for n in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grids)]
    if s.method == "lhs":
        from scipy.stats import qmc

        u = qmc.LatinHypercube(d=len(names), seed=s.seed).random(s.samples)
        return [{n: spec.parameters[n].at(float(u[i, j])) for j, n in enumerate(names)}
                for i in range(s.samples)]
    nominal = {n: spec.parameters[n].nominal() for n in names}
    out = [dict(nominal)]
    for n in names:
        g = spec.parameters[n].grid()
        for v in (g[0], g[-1]):
            out.append({**nominal, n: float(v)})
    return out


def fingerprint(spec: SweepSpec, base_text: str, samples: int) -> str:
    payload = json.dumps({"spec": spec.model_dump(), "base": base_text, "samples": samples},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------ overrides

_DEVICE_SECTIONS = ("compute", "memory", "interconnect", "power", "cost", "efficiency",
                    "reliability")


def _device_field(profile: dict[str, Any], field: str, where: str) -> tuple[str, str]:
    """Resolve ``bf16_tflops`` or ``efficiency.compute`` to (section, key)."""
    if "." in field:
        sec, key = field.split(".", 1)
        if sec in _DEVICE_SECTIONS and key in profile[sec]:
            return sec, key
    hits = [(sec, field) for sec in _DEVICE_SECTIONS if field in profile[sec]]
    if len(hits) != 1:
        raise AccelsimError.single(
            where, "parameters",
            f"'{field}' is not a device field (e.g. bf16_tflops, efficiency.compute, "
            f"price_usd) nor one of {', '.join(PSEUDO)}")
    return hits[0]


def _set_q(q: dict[str, Any], value: float) -> None:
    q["value"] = float(value)
    q["range"] = None  # the sweep moves the value outside its sourced range on purpose
    q["source"] = "sweep"
    q["confidence"] = "assumption"
    q["note"] = "set by a parameter sweep"


def apply_device(profile: dict[str, Any], field: str, value: float, where: str) -> None:
    """Apply one override (a field or a pseudo-field) to a profile mapping in place."""
    if field in ("perf_scale", "compute_scale"):
        for q in profile["compute"].values():
            if q["value"] != "unsupported":
                _set_q(q, float(q["value"]) * value)
    if field in ("perf_scale", "bandwidth_scale"):
        q = profile["memory"]["memory_bandwidth_GBps"]
        _set_q(q, float(q["value"]) * value)
    if field in ("perf_scale", "compute_scale", "bandwidth_scale"):
        return
    if field == "cuda_parity":
        ref = load_device(CUDA_REFERENCE).model_dump(mode="json")["efficiency"]
        for key in ("compute", "memory", "communication", "random_access"):
            own = float(profile["efficiency"][key]["value"])
            _set_q(profile["efficiency"][key],
                   own + value * (float(ref[key]["value"]) - own))
        return
    sec, key = _device_field(profile, field, where)
    _set_q(profile[sec][key], value)


def apply_mapping(data: dict[str, Any], path: str, value: float, where: str) -> None:
    """Set a dotted key of a config mapping (lists by index); ints stay ints."""
    parts = path.split(".")
    if parts[0] == "fleets" and len(parts) == 4 and parts[2] == "share":
        _apply_share(data, parts[1], parts[3], value, where)
        return
    node: Any = data
    for p in parts[:-1]:
        if isinstance(node, list):
            node = node[int(p)]
        elif isinstance(node, dict):
            if p not in node:
                node[p] = {}
            node = node[p]
        else:
            raise AccelsimError.single(where, "parameters", f"cannot set '{path}'")
    last = parts[-1]
    old = node.get(last) if isinstance(node, dict) else None
    v: Any = value
    if (isinstance(old, int) and not isinstance(old, bool)) or (
            old is None and float(value).is_integer() and last in ("max_units", "tp", "pp", "dp",
                                                                   "cp", "ep", "replicas")):
        v = round(value)
    if isinstance(node, list):
        node[int(last)] = v
    else:
        node[last] = v


def _apply_share(data: dict[str, Any], fleet: str, device: str, share: float, where: str) -> None:
    for f in data.get("fleets", []):
        if f.get("name") == fleet:
            spend = f.get("spend_usd")
            if not spend:
                raise AccelsimError.single(where, "parameters",
                                           f"fleet '{fleet}' needs spend_usd for a share")
            total = sum(spend.values())
            others = {d: v for d, v in spend.items() if d != device}
            rest = sum(others.values())
            new = {device: share * total}
            for d, v in others.items():
                new[d] = (1 - share) * total * (v / rest if rest > 0 else 1 / len(others))
            f["spend_usd"] = new
            return
    raise AccelsimError.single(where, "parameters", f"no fleet named '{fleet}'")


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
    from accelsim.training.perf import ACT_BYTES, GRAD_BYTES, OPT_BYTES, WEIGHT_BYTES
    from accelsim.training.search import model_columns

    cols: dict[str, Any] = {k: lay[k].to_numpy(dtype=float) for k in (
        "tp", "pp", "dp", "cp", "ep", "micro_batch", "virtual_stages", "zero")}
    cols["recompute"] = lay["recompute"].map({"none": 0, "selective": 1, "full": 2}).to_numpy(
        dtype=float)
    cols["sequence_parallel"] = (cols["tp"] > 1).astype(float)
    cols.update({k: float(v) for k, v in model_columns(model).items()})
    cols.update({"global_batch": float(global_batch), "act_bytes": ACT_BYTES[precision],
                 "weight_bytes": WEIGHT_BYTES[precision], "grad_bytes": GRAD_BYTES[precision],
                 "opt_bytes": OPT_BYTES[precision], "flash": 1.0, "straggler": 1.0,
                 "overlap_dp": 1.0})
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
    names = {load_device(r).name: r for r in ctx.profiles} if dev_over else {}
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
    unknown = set(dev_over) - set(ctx.profiles) - set(names)
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
    from accelsim.cost import HOURS_PER_YEAR, tco
    from accelsim.fleet import DeviceRow, Scenario, evaluate_fleet

    sc = validate(Scenario, data, where)
    ex = ctx.extra
    wl = sc.workloads
    values: dict[str, Any] = {}
    rows: dict[str, DeviceRow] = {}
    for ref, pool in sc.pool_of().items():
        if ref not in profiles:
            raise AccelsimError.single(where, "parameters", f"device '{ref}' not in the base")
        spec = profiles[ref].spec
        region = sc.regions[sc.budget.pools[pool].region]
        thr, opex, tco_y, watt = {}, {}, {}, {}
        tps, sat = _device_throughput(ctx, sc, ref, profiles[ref])
        if wl.training is not None:
            c = tco(spec, region, sc.finance, 1.0)
            thr["training"], opex["training"] = tps, float(c["opex_usd_per_year"])
            tco_y["training"], watt["training"] = float(c["tco_usd_per_year"]), float(
                c["wall_power_W"])
        if wl.serving is not None:
            qps = sat * ex["slo_ratio"].get(ref, 0.0)
            util = (qps / sat) * wl.serving.mean_to_peak if sat > 0 else 0.0
            c = tco(spec, region, sc.finance, util)
            thr["serving"], opex["serving"] = qps, float(c["opex_usd_per_year"])
            tco_y["serving"], watt["serving"] = float(c["tco_usd_per_year"]), float(
                c["wall_power_W"])
        sup = sc.supply.get(ref)
        rows[ref] = DeviceRow(
            device=spec.name, pool=pool,
            capex_usd=spec.price_usd + spec.server_overhead_usd + spec.network_usd,
            available_from=(sup.available_from if sup and sup.available_from
                            else spec.available_from),
            max_units=float(sup.max_units) if sup and sup.max_units is not None else math.inf,
            throughput=thr, opex_usd_per_year=opex, tco_usd_per_year=tco_y, wall_power_W=watt)
        for w in thr:
            uph = tco_y[w] / HOURS_PER_YEAR
            base = f"device.{spec.name}.{w}"
            values[f"{base}.throughput"] = thr[w]
            values[f"{base}.usd_per_hour"] = uph
            values[f"{base}.throughput_per_usd"] = thr[w] * units.HOUR / uph
            values[f"{base}.throughput_per_watt"] = thr[w] / watt[w]
            values[f"{base}.tco_usd_per_year"] = tco_y[w]
    for mix in sc.fleets:
        f = evaluate_fleet(sc, mix, rows)
        for k, v in f.items():
            if isinstance(v, (int, float, bool)):
                values[f"fleet.{mix.name}.{k}"] = float(v)
        values[f"fleet.{mix.name}.n_violations"] = float(len(f["violations"]))
    if any(m.startswith("optimum.") or " optimum." in m for m in metrics):
        from accelsim.fleet import demand
        from accelsim.optimize import MixProblem, solve

        need = demand(sc)
        refs = list(rows)
        W = list(need)
        p = MixProblem(
            devices=[rows[r].device for r in refs], workloads=W,
            capex=np.array([rows[r].capex_usd for r in refs]),
            tco=np.array([[rows[r].tco_usd_per_year.get(w, 0.0) for w in W] for r in refs]),
            power=np.array([[rows[r].wall_power_W.get(w, 0.0) for w in W] for r in refs]),
            thr=np.array([[rows[r].throughput.get(w, 0.0) for w in W] for r in refs]),
            demand=np.array([need[w] for w in W]), pool_of=[rows[r].pool for r in refs],
            pool_usd={k: v.usd for k, v in sc.budget.pools.items()},
            total_usd=sc.budget.total_usd,
            max_units=np.array([0.0 if rows[r].available_from > sc.year else rows[r].max_units
                                for r in refs]),
            power_cap_W=sc.power_cap_mw * 1e6 if sc.power_cap_mw else None,
            server=sc.server_chips, objective=sc.objective)
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
            for d in (rows[r].device for r in refs):
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


# ------------------------------------------------------------------------------ results on disk


def _meta_path(out: Path) -> Path:
    return out / "_sweep.json"


def done_ids(out: Path) -> set[int]:
    if not out.exists():
        return set()
    ids: set[int] = set()
    for part in sorted(out.glob("part-*.parquet")):
        ids.update(pd.read_parquet(part, columns=["point_id"])["point_id"].tolist())
    return ids


def read_results(out: str | Path) -> pd.DataFrame:
    """All rows written so far, in point order."""
    p = Path(out)
    if p.is_file():
        return pd.read_csv(p) if p.suffix == ".csv" else pd.read_parquet(p)
    parts = sorted(p.glob("part-*.parquet"))
    if not parts:
        raise AccelsimError.single(str(p), "", "no results here (expected part-*.parquet files)")
    df = pd.concat([pd.read_parquet(x) for x in parts], ignore_index=True)
    return df.sort_values("point_id").reset_index(drop=True)


def _write_part(out: Path, rows: list[dict[str, Any]]) -> None:
    first = min(r["point_id"] for r in rows)
    name = out / f"part-{first:09d}-{os.getpid()}-{len(rows)}.parquet"
    tmp = name.with_suffix(".tmp")
    pd.DataFrame(rows).to_parquet(tmp, index=False)
    os.replace(tmp, name)  # atomic: a crash never leaves a half-written part


# ------------------------------------------------------------------------------ running


Batch = list[tuple[int, dict[str, float]]]


def _execute(executor: str, workers: int, scheduler: str | None, payload: dict[str, Any],
             batches: list[Batch]) -> Iterator[list[dict[str, Any]]]:
    """Evaluate batches and yield their rows as each finishes (in completion order)."""
    if executor == "dask":
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_completed

        cluster = None
        if scheduler:
            client = Client(scheduler)
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)
            client = Client(cluster)
        try:
            futs = [client.submit(evaluate_batch, payload, b, pure=False) for b in batches]
            for fut in dask_completed(futs):
                yield fut.result()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    elif workers <= 1:
        for b in batches:
            yield evaluate_batch(payload, b)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pfuts = [pool.submit(evaluate_batch, payload, b) for b in batches]
            for pf in as_completed(pfuts):
                yield pf.result()


@dataclass
class SweepRun:
    out: Path
    total: int
    skipped: int
    computed: int


def _batches(todo: Batch, size: int) -> Iterator[Batch]:
    for i in range(0, len(todo), size):
        yield todo[i:i + size]


def run_sweep(sweep_path: str | Path, out: str | Path, workers: int = 2,
              executor: Literal["local", "dask"] = "local", scheduler: str | None = None,
              resume: bool = False, samples: int = 0, batch_size: int | None = None,
              progress: Callable[[int, int], None] | None = None,
              limit: int | None = None, params: dict[str, Param] | None = None) -> SweepRun:
    """Evaluate every point (or the first ``limit``) and write results as batches finish.
    ``params`` replaces parameters' values (e.g. coarser grids for a quick run)."""
    spec, base = load_sweep(sweep_path)
    if params:
        spec = spec.model_copy(update={"parameters": {**spec.parameters, **params}})
    base_text = base.read_text(encoding="utf-8")
    fp = fingerprint(spec, base_text, samples)
    outp = Path(out)
    if outp.exists() and any(outp.iterdir()):
        meta = json.loads(_meta_path(outp).read_text()) if _meta_path(outp).exists() else {}
        if not resume:
            raise AccelsimError.single(str(outp), "", "results already exist; use --resume to "
                                                      "continue or choose another --out")
        if meta.get("fingerprint") != fp:
            raise AccelsimError.single(str(outp), "", "these results come from a different "
                                                      "sweep or base file; cannot resume")
    outp.mkdir(parents=True, exist_ok=True)
    pts = points(spec)
    if limit is not None:
        pts = pts[:limit]
    _meta_path(outp).write_text(json.dumps({"fingerprint": fp, "name": spec.name,
                                            "sweep": str(Path(sweep_path).resolve()),
                                            "points": len(pts), "samples": samples,
                                            "parameters": list(spec.parameters),
                                            "metrics": spec.metrics}, indent=2))
    done = done_ids(outp)
    todo = [(i, p) for i, p in enumerate(pts) if i not in done]
    payload = {"spec": spec.model_dump(), "key": fp, "base_path": str(base),
               "sweep_path": str(sweep_path), "samples": samples, "seed": spec.sampling.seed}
    size = batch_size or spec.batch_size or max(1, min(256, math.ceil(len(todo) /
                                                                      max(4 * workers, 1))))
    batches = list(_batches(todo, size))
    finished = len(done)
    if progress:
        progress(finished, len(pts))
    if not batches:
        return SweepRun(outp, len(pts), len(done), 0)
    for rows in _execute(executor, workers, scheduler, payload, batches):
        _write_part(outp, rows)
        finished += len(rows)
        if progress:
            progress(finished, len(pts))
    return SweepRun(outp, len(pts), len(done), len(todo))

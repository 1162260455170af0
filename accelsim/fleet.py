"""Fleet scenarios: a budget split into pools, regions, supply caps, workload demand, and the
candidate fleet mixes to compare. ``compare(scenario)`` prices every device for every
workload and every mix against the demand.

Per device x workload: the best training layout's tokens/s per device (``train-search``)
and the serving capacity per device at the p99 SLO (``serve --capacity`` on one server),
both from the performance models, never re-derived here; USD per device-hour from
:mod:`accelsim.cost`.

Per fleet mix: units from spend (``floor(spend / capex)``) or given directly; capex,
opex, TCO per year; devices go to serving first in order of comparative advantage
(serving capacity relative to training throughput) until peak QPS is covered, the rest
train; whether demand is met; budget, supply, availability and power violations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from accelsim import units
from accelsim.config import Strict, read_yaml, validate
from accelsim.cost import Finance, Region, capex_usd, tco
from accelsim.devices import load_device, resolve_ref
from accelsim.errors import AccelsimError, Problem
from accelsim.serving.job import Batching
from accelsim.serving.workload import Dist, Fixed

WORKLOADS = ("training", "serving")


class Pool(Strict):
    usd: float = Field(gt=0)
    devices: list[str] = Field(min_length=1)
    region: str


class Budget(Strict):
    total_usd: float = Field(gt=0)
    pools: dict[str, Pool] = Field(min_length=1)


class Supply(Strict):
    max_units: int | None = Field(default=None, ge=0)
    available_from: int | None = Field(default=None, ge=2010, le=2040)


class TrainingDemand(Strict):
    """Train ``model`` on ``tokens`` within ``deadline_days``; per-device throughput is taken
    at the best layout on ``cluster_devices`` chips."""

    model: str
    tokens: float = Field(gt=0)
    deadline_days: float = Field(gt=0)
    cluster_devices: int = Field(default=1024, ge=8)
    global_batch: int | None = Field(default=None, ge=1)
    precision: Literal["fp32", "bf16", "fp16", "fp8"] = "bf16"


class ServingSim(Strict):
    requests: int = Field(default=40_000, ge=1000)
    warmup: int = Field(default=2_000, ge=0)
    replications: int = Field(default=3, ge=1, le=50)
    seed: int = Field(default=1, ge=0)


class ServingDemand(Strict):
    """Serve ``peak_qps`` of ``model`` with p99 <= ``slo_p99_ms``; ``daily_profile`` (24 hourly
    multipliers) sets the mean load that drives energy."""

    model: str
    peak_qps: float = Field(gt=0)
    slo_p99_ms: float = Field(gt=0)
    query_size: Dist = Fixed(dist="fixed", value=1)
    batching: Batching = Batching()
    daily_profile: list[float] | None = Field(default=None, min_length=24, max_length=24)
    sim: ServingSim = ServingSim()

    @property
    def mean_to_peak(self) -> float:
        if not self.daily_profile:
            return 1.0
        p = np.asarray(self.daily_profile, dtype=float)
        return float(p.mean() / p.max())


class Workloads(Strict):
    training: TrainingDemand | None = None
    serving: ServingDemand | None = None

    @model_validator(mode="after")
    def _any(self) -> Workloads:
        if self.training is None and self.serving is None:
            raise ValueError("give at least one workload: training or serving")
        return self


class FleetMix(Strict):
    name: str = Field(min_length=1)
    year: int | None = Field(default=None, ge=2010, le=2040)
    description: str = ""
    spend_usd: dict[str, float] | None = None
    units: dict[str, int] | None = None

    @model_validator(mode="after")
    def _one(self) -> FleetMix:
        if (self.spend_usd is None) == (self.units is None):
            raise ValueError("give exactly one of spend_usd or units")
        vals = list((self.spend_usd or self.units or {}).values())
        if any(v < 0 for v in vals):
            raise ValueError("spend and units must be >= 0")
        return self


class Scenario(Strict):
    name: str
    description: str = ""
    year: int = Field(ge=2010, le=2040)
    objective: Literal["served_demand", "min_cost"] = "served_demand"
    finance: Finance = Finance()
    budget: Budget
    regions: dict[str, Region] = Field(min_length=1)
    supply: dict[str, Supply] = Field(default_factory=dict)
    power_cap_mw: float | None = Field(default=None, gt=0)
    server_chips: int = Field(default=8, ge=1)
    workloads: Workloads
    fleets: list[FleetMix] = Field(default_factory=list)

    def check(self, file: str = "scenario") -> None:
        """Cross-references: devices exist, pools name known regions, fleets use pool devices."""
        probs: list[Problem] = []
        owner: dict[str, str] = {}
        for pname, pool in self.budget.pools.items():
            if pool.region not in self.regions:
                probs.append(Problem(file, f"budget.pools.{pname}.region",
                                     f"unknown region '{pool.region}'; expected one of: "
                                     + ", ".join(self.regions)))
            for i, dev in enumerate(pool.devices):
                try:
                    load_device(dev, where=file)
                except AccelsimError as e:
                    probs.append(Problem(file, f"budget.pools.{pname}.devices[{i}]",
                                         e.problems[0].message))
                if dev in owner:
                    probs.append(Problem(file, f"budget.pools.{pname}.devices[{i}]",
                                         f"'{dev}' is already in pool '{owner[dev]}'"))
                owner[dev] = pname
        for dev in self.supply:
            if dev not in owner:
                probs.append(Problem(file, f"supply.{dev}", "device is in no budget pool"))
        for i, f in enumerate(self.fleets):
            for dev in (f.spend_usd or f.units or {}):
                if dev not in owner:
                    key = "spend_usd" if f.spend_usd is not None else "units"
                    probs.append(Problem(file, f"fleets[{i}].{key}.{dev}",
                                         "device is in no budget pool; expected one of: "
                                         + ", ".join(owner)))
        if probs:
            raise AccelsimError(probs)

    def pool_of(self) -> dict[str, str]:
        return {d: p for p, pool in self.budget.pools.items() for d in pool.devices}


def load_scenario(path: str | Path) -> Scenario:
    data = read_yaml(path)
    sc = validate(Scenario, data, path)
    # device and model paths inside the file resolve from the file's folder
    pools = {k: p.model_copy(update={"devices": [resolve_ref(d, path) for d in p.devices]})
             for k, p in sc.budget.pools.items()}
    wl = sc.workloads
    upd: dict[str, Any] = {}
    if wl.training:
        upd["training"] = wl.training.model_copy(
            update={"model": resolve_ref(wl.training.model, path)})
    if wl.serving:
        upd["serving"] = wl.serving.model_copy(
            update={"model": resolve_ref(wl.serving.model, path)})
    sc = sc.model_copy(update={"budget": sc.budget.model_copy(update={"pools": pools}),
                               "workloads": wl.model_copy(update=upd)})
    sc.check(str(path))
    return sc


# ------------------------------------------------------------------------------ devices

Progress = Callable[[str], None]


def _training_model(td: TrainingDemand) -> Any:
    from accelsim.training.job import load_model

    s = td.model
    if not s.endswith((".yaml", ".yml")) and "/" not in s:
        from accelsim.devices import catalog_dir

        s = str(catalog_dir().parent / "models" / f"{s}.yaml")
    return load_model(s)


def training_throughput(td: TrainingDemand, device: str) -> tuple[float, str]:
    """Tokens/s per device at the best layout that fits (0 and a note if none does)."""
    from accelsim.training.search import search_layouts

    model = _training_model(td)
    try:
        res = search_layouts(model, device, td.cluster_devices, td.global_batch, td.precision)
    except AccelsimError as e:
        return 0.0, e.problems[0].message
    if res.best is None:
        return 0.0, f"no layout fits on {td.cluster_devices} devices"
    r = res.table.iloc[0]
    par = res.best.parallelism
    note = (f"tp{par.tp} pp{par.pp} dp{par.dp} mb{par.micro_batch} v{par.virtual_stages} "
            f"{par.recompute} zero{par.zero}; MFU {r.mfu:.2f}")
    return float(r.tokens_per_s) / td.cluster_devices, note


def serving_throughput(sd: ServingDemand, device: str, server_chips: int) -> tuple[float, float,
                                                                                    str]:
    """(QPS at the SLO per device, saturated QPS per device, note) on one server."""
    from accelsim.serving.job import ServeJob
    from accelsim.serving.sim import build_service, capacity

    job = ServeJob.model_validate({
        "arrivals": {"process": "poisson", "rate_qps": 1.0},
        "queries": {"size": sd.query_size.model_dump()},
        "service": {"device": device, "model": sd.model},
        "replicas": server_chips, "routing": "shared_queue",
        "batching": sd.batching.model_dump(), "slo": {"p99_ms": sd.slo_p99_ms},
        "sim": {**sd.sim.model_dump(), "engine": "auto"},
    })
    try:
        sm = build_service(job)
        c = capacity(job, service=sm)
    except AccelsimError as e:
        return 0.0, 0.0, e.problems[0].message
    note = f"{c['max_qps_at_slo']:.4g} qps/server [{c['ci95_low_qps']:.4g}, " \
           f"{c['ci95_high_qps']:.4g}]"
    return c["max_qps_at_slo"] / server_chips, c["capacity_qps"] / server_chips, note


def evaluate_devices(sc: Scenario, progress: Progress | None = None) -> pd.DataFrame:
    """One row per device x workload: throughput per device, USD/hour, per USD, per watt."""
    rows = []
    wl = sc.workloads
    for dev, pool in sc.pool_of().items():
        spec = load_device(dev).spec
        training = serving = None
        if wl.training is not None:
            if progress:
                progress(f"training {spec.name}")
            training = training_throughput(wl.training, dev)
        if wl.serving is not None:
            if progress:
                progress(f"serving {spec.name}")
            serving = serving_throughput(wl.serving, dev, sc.server_chips)
        rows += priced_rows(sc, dev, pool, spec, training, serving)
    return pd.DataFrame(rows)


def priced_rows(sc: Scenario, ref: str, pool: str, spec: Any,
                training: tuple[float, str] | None,
                serving: tuple[float, float, str] | None) -> list[dict[str, Any]]:
    """A device's rows of the device table from its throughputs: training (tokens/s per
    device, note) at full utilisation; serving (QPS at the SLO and saturated QPS per device,
    note) with energy at the mean load, utilisation = (qps / saturated) * mean/peak."""
    region = sc.regions[sc.budget.pools[pool].region]
    sup = sc.supply.get(ref, Supply())
    base = {"device": spec.name, "ref": ref, "pool": pool,
            "region": sc.budget.pools[pool].region, "capex_usd": capex_usd(spec),
            "available_from": sup.available_from or spec.available_from,
            "max_units": sup.max_units}
    rows = []
    if training is not None:
        thr, note = training
        rows.append(_row(base, "training", thr, "tokens/s", tco(spec, region, sc.finance, 1.0),
                         note))
    if serving is not None:
        qps, sat, note = serving
        util = (qps / sat) * sc.workloads.serving.mean_to_peak if sat > 0 else 0.0  # type: ignore[union-attr]
        rows.append(_row(base, "serving", qps, "qps at SLO",
                         tco(spec, region, sc.finance, util), note))
    return rows


def _row(base: dict[str, Any], workload: str, thr: float, unit: str,
         cost: dict[str, Any], note: str) -> dict[str, Any]:
    uph = float(cost["usd_per_hour"])
    return {**base, "workload": workload, "throughput": thr, "throughput_unit": unit,
            "usd_per_hour": uph,
            "throughput_per_usd": thr * units.HOUR / uph if uph > 0 else 0.0,
            "throughput_per_watt": thr / float(cost["wall_power_W"]),
            "tco_usd_per_year": float(cost["tco_usd_per_year"]),
            "opex_usd_per_year": float(cost["opex_usd_per_year"]),
            "wall_power_W": float(cost["wall_power_W"]), "note": note}


# ------------------------------------------------------------------------------ fleets


def demand(sc: Scenario) -> dict[str, float]:
    """Required throughput per workload: tokens/s to finish by the deadline, peak QPS."""
    out = {}
    if sc.workloads.training:
        t = sc.workloads.training
        out["training"] = t.tokens / (t.deadline_days * units.DAY)
    if sc.workloads.serving:
        out["serving"] = sc.workloads.serving.peak_qps
    return out


@dataclass(frozen=True)
class DeviceRow:
    """One device's figures for the fleet arithmetic (plain floats: this runs per sweep point)."""

    device: str
    pool: str
    capex_usd: float
    available_from: int
    max_units: float  # inf if uncapped
    throughput: dict[str, float]
    opex_usd_per_year: dict[str, float]
    tco_usd_per_year: dict[str, float]
    wall_power_W: dict[str, float]


def device_rows(dev: pd.DataFrame | list[dict[str, Any]] | dict[str, DeviceRow]
                ) -> dict[str, DeviceRow]:
    """Index the device table (a DataFrame or its records) by reference once."""
    if isinstance(dev, dict):
        return dev
    records = dev.to_dict(orient="records") if isinstance(dev, pd.DataFrame) else dev
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(str(r["ref"]), []).append(r)
    out: dict[str, DeviceRow] = {}
    for ref, g in groups.items():
        first = g[0]
        mx = first["max_units"]
        by = {r["workload"]: r for r in g}
        out[ref] = DeviceRow(
            device=str(first["device"]), pool=str(first["pool"]),
            capex_usd=float(first["capex_usd"]), available_from=int(first["available_from"]),
            max_units=float("inf") if mx is None or pd.isna(mx) else float(mx),
            throughput={w: float(r["throughput"]) for w, r in by.items()},
            opex_usd_per_year={w: float(r["opex_usd_per_year"]) for w, r in by.items()},
            tco_usd_per_year={w: float(r["tco_usd_per_year"]) for w, r in by.items()},
            wall_power_W={w: float(r["wall_power_W"]) for w, r in by.items()},
        )
    return out


def fleet_units(mix: FleetMix, rows: dict[str, DeviceRow]) -> dict[str, int]:
    if mix.units is not None:
        return {d: int(u) for d, u in mix.units.items()}
    return {d: int(np.floor(usd / rows[d].capex_usd)) for d, usd in (mix.spend_usd or {}).items()}


def allocate(units_by_dev: dict[str, int], rows: dict[str, DeviceRow], need: dict[str, float]
             ) -> dict[str, dict[str, float]]:
    """Devices to serving first, by comparative advantage (serving relative to training
    throughput), until peak QPS is covered; the rest train."""
    alloc = {d: {"training": 0.0, "serving": 0.0} for d in units_by_dev}
    if "serving" not in need or "training" not in need:
        only = "serving" if "serving" in need else "training"
        for d, u in units_by_dev.items():
            alloc[d][only] = float(u)
        return alloc

    def advantage(d: str) -> float:
        s, t = rows[d].throughput["serving"], rows[d].throughput["training"]
        return s / t if t > 0 else np.inf

    remaining = need["serving"]
    for d in sorted(units_by_dev, key=advantage, reverse=True):
        u = float(units_by_dev[d])
        q = rows[d].throughput["serving"]
        take = min(u, float(np.ceil(remaining / q))) if q > 0 and remaining > 0 else 0.0
        alloc[d]["serving"] = take
        alloc[d]["training"] = u - take
        remaining -= take * q
    return alloc


def evaluate_fleet(sc: Scenario, mix: FleetMix, dev: pd.DataFrame | dict[str, DeviceRow]
                   ) -> dict[str, Any]:
    rows = device_rows(dev)
    year = mix.year or sc.year
    need = demand(sc)
    units_by_dev = fleet_units(mix, rows)
    alloc = allocate(units_by_dev, rows, need)
    capex = sum(u * rows[d].capex_usd for d, u in units_by_dev.items())
    pool_spend: dict[str, float] = {p: 0.0 for p in sc.budget.pools}
    for d, u in units_by_dev.items():
        pool_spend[rows[d].pool] += u * rows[d].capex_usd
    cap = {"training": 0.0, "serving": 0.0}
    opex = tco_y = power = 0.0
    for d, a in alloc.items():
        r = rows[d]
        for w, u in a.items():
            if u <= 0 or w not in r.throughput:
                continue
            cap[w] += u * r.throughput[w]
            opex += u * r.opex_usd_per_year[w]
            tco_y += u * r.tco_usd_per_year[w]
            power += u * r.wall_power_W[w]
    violations = []
    for p, spent in pool_spend.items():
        if spent > sc.budget.pools[p].usd * (1 + 1e-9):
            violations.append(f"pool {p}: {spent / 1e9:.2f} B USD > "
                              f"{sc.budget.pools[p].usd / 1e9:.2f} B")
    if capex > sc.budget.total_usd * (1 + 1e-9):
        violations.append(f"total: {capex / 1e9:.2f} B USD > {sc.budget.total_usd / 1e9:.2f} B")
    for d, u in units_by_dev.items():
        r = rows[d]
        if u > r.max_units:
            violations.append(f"supply {r.device}: {u:,} > {int(r.max_units):,} units")
        if u > 0 and r.available_from > year:
            violations.append(f"{r.device} not available before {r.available_from} "
                              f"(fleet year {year})")
    if sc.power_cap_mw is not None and power > sc.power_cap_mw * 1e6:
        violations.append(f"power: {power / 1e6:.1f} MW > {sc.power_cap_mw:.1f} MW")
    tokens_day = cap["training"] * units.DAY
    # what the whole fleet could do on one workload alone (for comparing fleets)
    full = {w: sum(u * rows[d].throughput.get(w, 0.0) for d, u in units_by_dev.items())
            for w in WORKLOADS}
    out: dict[str, Any] = {
        "name": mix.name, "year": year,
        "units": {rows[d].device: u for d, u in units_by_dev.items()},
        "capex_usd": capex, "pool_spend_usd": pool_spend,
        "opex_usd_per_year": opex, "tco_usd_per_year": tco_y, "power_MW": power / 1e6,
        "training_tokens_per_day": tokens_day,
        "serving_qps_at_slo": cap["serving"],
        "training_tokens_per_day_whole_fleet": full["training"] * units.DAY,
        "serving_qps_whole_fleet": full["serving"],
        "allocation": {rows[d].device: a for d, a in alloc.items()},
        "violations": violations,
    }
    if sc.workloads.training:
        out["days_to_train"] = (sc.workloads.training.tokens / tokens_day
                                if tokens_day > 0 else float("inf"))
    met = [cap[w] >= need[w] * (1 - 1e-9) for w in need]
    out["meets_demand"] = bool(all(met))
    out["served_fraction"] = float(np.mean([min(1.0, cap[w] / need[w]) for w in need]))
    if sc.objective == "served_demand":
        out["objective"] = out["served_fraction"]
    else:
        out["objective"] = tco_y if out["meets_demand"] else float("inf")
    return out


@dataclass
class Comparison:
    devices: pd.DataFrame
    fleets: list[dict[str, Any]]
    demand: dict[str, float]


def compare(sc: Scenario, progress: Progress | None = None,
            dev_table: pd.DataFrame | None = None) -> Comparison:
    table = dev_table if dev_table is not None else evaluate_devices(sc, progress)
    rows = device_rows(table)
    fleets = [evaluate_fleet(sc, mix, rows) for mix in sc.fleets]

    def key(f: dict[str, Any]) -> tuple[bool, float, float]:
        # feasible first; then the objective (max served fraction / min TCO); then lower TCO
        obj = -f["objective"] if sc.objective == "served_demand" else f["objective"]
        return (bool(f["violations"]), obj, f["tco_usd_per_year"])

    for rank, f in enumerate(sorted(fleets, key=key), start=1):
        f["rank"] = rank
    return Comparison(table, fleets, demand(sc))

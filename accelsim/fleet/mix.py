"""Fleet-mix arithmetic: units bought, allocation to workloads, capacity, cost, violations.

  units          given, or floor(spend / capex per device)
  allocation     capacity workloads (serving) first, in file order: devices by comparative
                 advantage (throughput on this workload over the device's share of the
                 volume workloads' demand) until the peak is covered; the rest goes to the
                 volume workloads (training) so that each serves the same fraction of its
                 demand (with one volume workload: all of it). ``optimize`` does this exactly.
                 A chatbot routed by request size or offered PD units takes its units from
                 the routing programme instead (:mod:`accelsim.fleet.routing`), with the
                 same comparative worth as each unit's price, rounded up to whole units.
  capacity       sum of allocated units x throughput per device (a routed workload: the
                 largest multiple of its demand mix its units serve routed, x demand)
  served         mean over workloads of min(1, capacity / demand)

Rented capacity (the scenario's ``rentals``, rented by a fleet's ``rent``) is one more row
per offer, keyed ``rent:<offer>``: the rented device's throughput; p x 8766 USD a year per
device held all year (opex, no capex); no power in our regions (the cloud's facility, paid
for in the price); the offer's ``max_units`` as its supply limit; the year's rent counted
against the budget pool of the offer's region and the total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from accelsim import workloads
from accelsim.fleet.loan import fleet_loan
from accelsim.fleet.scenario import FleetMix, Scenario, rental_pool
from accelsim.units import HOURS_PER_YEAR

# Seconds in the 8,760-hour year capacity per USD counts (compare's per-USD columns).
SECONDS_PER_YEAR = 3600 * 8760


def demand(sc: Scenario) -> dict[str, float]:
    """Required throughput per named workload, in each workload's unit."""
    return {name: workloads.of(spec).demand(spec) for name, spec in sc.workloads.items()}


def roles(sc: Scenario) -> dict[str, str]:
    return {name: workloads.of(spec).role for name, spec in sc.workloads.items()}


@dataclass(frozen=True)
class DeviceRow:
    """One device's figures for the fleet arithmetic (plain floats: this runs per sweep point).
    Per-workload dicts are keyed by workload name."""

    device: str
    pool: str
    capex_usd: float
    available_from: int
    max_units: float  # inf if uncapped
    throughput: dict[str, float]
    opex_usd_per_year: dict[str, float]
    tco_usd_per_year: dict[str, float]
    wall_power_W: dict[str, float]
    buckets: dict[str, tuple[float, ...]] = field(default_factory=dict)
    """Per routed workload, throughput per device on each request-size bucket alone
    (:mod:`accelsim.fleet.routing`)."""
    pd: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    """Per disaggregated workload, the PD units whose prefill side is this device
    (:class:`accelsim.fleet.pd.PDUnit` as dicts)."""


def device_rows(dev: pd.DataFrame | list[dict[str, Any]] | dict[str, DeviceRow]
                ) -> dict[str, DeviceRow]:
    """Index the device table (a DataFrame or its records) by reference once."""
    if isinstance(dev, dict):
        return dev
    records: list[dict[str, Any]] = ([{str(k): v for k, v in r.items()}
                                      for r in dev.to_dict(orient="records")]
                                     if isinstance(dev, pd.DataFrame) else dev)
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
            buckets={w: tuple(float(x) for x in r["bucket_throughput"]) for w, r in by.items()
                     if isinstance(r.get("bucket_throughput"), list | tuple)},
            pd={w: tuple(r["pd_units"]) for w, r in by.items()
                if isinstance(r.get("pd_units"), list | tuple)},
        )
    return out


RENT = "rent:"
"""Prefix of a rental offer's key in the device rows."""


def rental_rows(sc: Scenario, rows: dict[str, DeviceRow]) -> dict[str, DeviceRow]:
    """One row per rental offer whose device the table prices (a sweep may price only
    some), keyed ``rent:<offer>`` (module docstring)."""
    out = {}
    for name, offer in sc.rentals.items():
        dev = rows.get(offer.device)
        pool = rental_pool(sc, offer.region)
        if dev is None or pool is None:
            continue
        usd_y = offer.usd_per_device_hour * HOURS_PER_YEAR
        out[RENT + name] = DeviceRow(
            device=RENT + name, pool=pool, capex_usd=0.0,
            available_from=offer.available_from or dev.available_from,
            max_units=float("inf") if offer.max_units is None else float(offer.max_units),
            throughput=dict(dev.throughput),
            opex_usd_per_year=dict.fromkeys(dev.throughput, usd_y),
            tco_usd_per_year=dict.fromkeys(dev.throughput, usd_y),
            wall_power_W=dict.fromkeys(dev.throughput, 0.0), buckets=dict(dev.buckets))
    return out


@dataclass(frozen=True)
class Violation:
    """A rule a fleet breaks: ``value`` against ``limit`` (in ``unit``) for ``subject``."""

    kind: Literal["budget_pool", "budget_total", "supply", "availability", "power",
                  "region_power"]
    subject: str  # pool, device, "total" or "power"
    limit: float
    value: float
    unit: str

    def __str__(self) -> str:
        if self.kind == "budget_pool":
            return (f"pool {self.subject}: {self.value / 1e9:.2f} B USD > "
                    f"{self.limit / 1e9:.2f} B")
        if self.kind == "budget_total":
            return f"total: {self.value / 1e9:.2f} B USD > {self.limit / 1e9:.2f} B"
        if self.kind == "supply":
            return f"supply {self.subject}: {int(self.value):,} > {int(self.limit):,} units"
        if self.kind == "availability":
            return (f"{self.subject} not available before {int(self.limit)} "
                    f"(fleet year {int(self.value)})")
        if self.kind == "region_power":
            return (f"power in {self.subject}: {self.value / 1e6:.1f} MW > "
                    f"{self.limit / 1e6:.1f} MW")
        return f"power: {self.value / 1e6:.1f} MW > {self.limit / 1e6:.1f} MW"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "limit": self.limit,
                "value": self.value, "unit": self.unit}


def fleet_units(mix: FleetMix, rows: dict[str, DeviceRow]) -> dict[str, int]:
    if mix.units is not None:
        return {d: int(u) for d, u in mix.units.items()}
    return {d: int(np.floor(usd / rows[d].capex_usd)) for d, usd in (mix.spend_usd or {}).items()}


# Price of a unit worth nothing to the other workloads, in a routed allocation (over the
# largest worth): fewer such units at equal worth.
PRICE_FLOOR = 1e-7


def allocate(units_by_dev: dict[str, int], rows: dict[str, DeviceRow], need: dict[str, float],
             role: dict[str, str], routes: dict[str, Any] | None = None,
             plans: dict[str, Any] | None = None) -> dict[str, dict[str, float]]:
    """Units of each device per workload (see the module docstring). ``routes``: routed
    workloads (:func:`accelsim.fleet.routing.routings`), whose units come from the routing
    programme (:func:`accelsim.fleet.routing.route`) priced by the same comparative worth,
    rounded up to whole units; ``plans`` (when given) gets each one's
    ``(devices, Routed)``."""
    alloc = {d: dict.fromkeys(need, 0.0) for d in units_by_dev}
    left = {d: float(u) for d, u in units_by_dev.items()}
    capacity = [w for w in need if role[w] == "capacity"]
    volume = [w for w in need if role[w] == "volume"]

    def thr(d: str, w: str) -> float:
        return rows[d].throughput.get(w, 0.0)

    for w in capacity:
        rest = volume or [v for v in capacity if v != w]

        def advantage(d: str, w: str = w, rest: list[str] = rest) -> float:
            other = sum(thr(d, v) / need[v] for v in rest)
            return thr(d, w) / other if other > 0 else np.inf

        if routes and w in routes:
            got = _route_units(w, units_by_dev, rows, need, rest, routes[w], left, alloc)
            if plans is not None:
                plans[w] = (list(units_by_dev), got)
            continue
        remaining = need[w]
        for d in sorted(units_by_dev, key=advantage, reverse=True):
            q = thr(d, w)
            take = min(left[d], float(np.ceil(remaining / q))) if q > 0 and remaining > 0 else 0.0
            alloc[d][w] += take
            left[d] -= take
            remaining -= take * q
    # the rest: volume workloads (or, without any, the capacity ones) at equal served fraction
    sinks = volume or capacity
    cap = {w: sum(left[d] * thr(d, w) for d in left) for w in sinks}
    runnable = [w for w in sinks if cap[w] > 0]
    weight = {w: need[w] / cap[w] for w in runnable} or {sinks[0]: 1.0}  # idle units still cost
    total = sum(weight.values())
    for d in left:
        for w, wt in weight.items():
            alloc[d][w] += left[d] * (wt / total)
    return alloc


def _route_units(w: str, units_by_dev: dict[str, int], rows: dict[str, DeviceRow],
                 need: dict[str, float], rest: list[str], routing: Any,
                 left: dict[str, float], alloc: dict[str, dict[str, float]]) -> Any:
    """A routed capacity workload's units (:func:`allocate`): the routing programme over
    the units left, each device's worth to the ``rest`` its price; whole units."""
    from accelsim.fleet.routing import route

    devs = list(units_by_dev)
    other = np.array([sum(rows[d].throughput.get(v, 0.0) / need[v] for v in rest
                          if need[v] > 0) for d in devs])
    price = (other / other.max() if other.max() > 0 else np.ones(len(devs))) + PRICE_FLOOR
    cap, whole, pairs, _ = routing.problem(w, devs, rows)
    got = route(need[w], routing.shares, cap, whole, np.array([left[d] for d in devs]), price,
                pairs)
    for i, d in enumerate(devs):
        u = float(got.units[i])
        if u <= 1e-9:
            continue
        take = min(left[d], float(np.ceil(u - 1e-9 * max(1.0, u))))
        alloc[d][w] += take
        left[d] -= take
    return got


def capacities(alloc: dict[str, dict[str, float]], rows: dict[str, DeviceRow],
               need: dict[str, float], routes: dict[str, Any] | None = None
               ) -> dict[str, float]:
    """Capacity of each workload on its allocated units: their throughputs summed; a routed
    workload's, the largest multiple of its demand mix the units serve routed
    (:func:`accelsim.fleet.routing.most_served`) times the demand."""
    out = {w: sum(a.get(w, 0.0) * rows[d].throughput.get(w, 0.0) for d, a in alloc.items())
           for w in need}
    for w, r in (routes or {}).items():
        out[w] = routed_capacity({d: a.get(w, 0.0) for d, a in alloc.items()}, rows, w,
                                 need[w], r)
    return out


def routed_capacity(units: dict[str, float], rows: dict[str, DeviceRow], w: str, need: float,
                    routing: Any) -> float:
    """Requests/s of the demand mix ``units`` serve routed, at most (no cap at the demand)."""
    from accelsim.fleet.routing import most_served

    devs = [d for d, u in units.items() if u > 0]
    if not devs or need <= 0:
        return 0.0
    cap, whole, pairs, _ = routing.problem(w, devs, rows)
    got = most_served(need, routing.shares, cap, whole,
                      np.array([units[d] for d in devs], dtype=float), cap_at_one=False,
                      pairs=pairs)
    return got.lam * need


def route_report(w: str, routing: Any, plan: Any, units_by_dev: dict[str, int],
                 alloc: dict[str, dict[str, float]], rows: dict[str, DeviceRow],
                 need: dict[str, float], role: dict[str, str], unrouted_whole: float,
                 tco_usd_per_year: float) -> dict[str, Any]:
    """A routed workload in a fleet: each bucket's share of requests; each device's
    throughput per device on the whole distribution and on each bucket alone; which
    device serves which sizes and how many PD units of each pairing (``plan``: the routing
    programme's units, before whole units are rounded up); and against whole-distribution
    serving on colocated replicas with the same units: the whole fleet's capacity and per
    USD of the fleet's TCO, and the units the workload takes."""

    devs, got = plan
    _, _, pairs, pair_labels = routing.problem(w, devs, rows)
    by_device: dict[str, dict[str, float]] = {}
    for i, d in enumerate(devs):
        per = {lab: float(got.y[i, b]) for b, lab in enumerate(routing.labels)
               if routing.sized and got.y[i, b] > 1e-6}
        whole_mix = float(got.z[i] + (0.0 if routing.sized else got.y[i].sum()))
        if whole_mix > 1e-6:
            per["whole mix"] = whole_mix
        if per:
            by_device[rows[d].device] = per
    whole = routed_capacity({d: float(u) for d, u in units_by_dev.items()}, rows, w, need[w],
                            routing)
    plain = allocate(units_by_dev, rows, need, role)
    per_usd = SECONDS_PER_YEAR / tco_usd_per_year if tco_usd_per_year > 0 else 0.0
    out: dict[str, Any] = {}
    if routing.sized:
        out["shares"] = {lab: float(x) for lab, x in zip(routing.labels, routing.shares,
                                                         strict=True)}
    out["per_device"] = {rows[d].device: {
        "whole": rows[d].throughput.get(w, 0.0),
        **({lab: float(c) for lab, c in zip(routing.labels, rows[d].buckets[w], strict=True)}
           if routing.sized else {})} for d, u in units_by_dev.items() if u > 0}
    out["units_by_bucket"] = by_device
    if routing.pd:
        out["pd_units"] = {lab: {"units": float(got.w[k]), "rps_per_unit": pairs[k][4],
                                 "prefill_devices": pairs[k][2], "decode_devices": pairs[k][3]}
                           for k, lab in enumerate(pair_labels)}
    out.update({
        "capacity_whole_fleet": whole, "capacity_whole_fleet_unrouted": unrouted_whole,
        "capacity_per_usd": whole * per_usd,
        "capacity_per_usd_unrouted": unrouted_whole * per_usd,
        "gain": whole / unrouted_whole - 1.0 if unrouted_whole > 0 else float("inf"),
        "units": float(sum(a.get(w, 0.0) for a in alloc.values())),
        "units_unrouted": float(sum(a.get(w, 0.0) for a in plain.values()))})
    return out


# A rule binds when what the fleet uses is within this share of its limit.
BINDS_WITHIN = 0.02


def rules(sc: Scenario, pool_spend: dict[str, float], spend: float,
          units_by_dev: dict[str, int], rows: dict[str, DeviceRow], power: float,
          region_power: dict[str, float], cap: dict[str, float], need: dict[str, float]
          ) -> list[dict[str, Any]]:
    """Every rule a fleet is held to, with what it uses against the limit: ``status`` is
    ``broken`` (over), ``binds`` (within :data:`BINDS_WITHIN` of the limit) or ``slack``.
    Demand is the other way round: capacity must reach it (``short`` when it does not)."""
    out: list[dict[str, Any]] = []

    def add(rule: str, value: float, limit: float, unit: str) -> None:
        status = ("broken" if value > limit * (1 + 1e-9) else
                  "binds" if value >= limit * (1 - BINDS_WITHIN) else "slack")
        out.append({"rule": rule, "value": value, "limit": limit, "unit": unit,
                    "slack": limit - value, "status": status})

    for pool, spent in pool_spend.items():
        add(f"budget pool {pool}", spent, sc.budget.pools[pool].usd, "USD")
    add("budget total", spend, sc.budget.total_usd, "USD")
    for d, u in units_by_dev.items():
        if u > 0 and np.isfinite(rows[d].max_units):
            add(f"supply {rows[d].device}", float(u), rows[d].max_units, "units")
    if sc.power_cap_mw is not None:
        add("power cap", power, sc.power_cap_mw * 1e6, "W")
    for name, reg in sc.regions.items():
        if reg.power_capacity_mw is not None:
            add(f"power in {name}", region_power[name], reg.power_capacity_mw * 1e6, "W")
    for w in need:
        short = cap[w] < need[w] * (1 - 1e-9)
        status = "short" if short else ("binds" if cap[w] <= need[w] * (1 + BINDS_WITHIN)
                                        else "slack")
        out.append({"rule": f"demand {w}", "value": cap[w], "limit": need[w],
                    "unit": workloads.of(sc.workloads[w]).unit, "slack": cap[w] - need[w],
                    "status": status})
    return out


def evaluate_fleet(sc: Scenario, mix: FleetMix, dev: pd.DataFrame | dict[str, DeviceRow],
                   loan: bool = True) -> dict[str, Any]:
    """Units, spend, capacity per workload, cost, power, violations and the objective.
    ``loan``: also price the serving troughs lent to training (``loan_*``; always when the
    scenario shares them, since they then count towards training)."""
    rows = device_rows(dev)
    year = mix.year or sc.year
    need = demand(sc)
    units_by_dev = fleet_units(mix, rows)
    owned = dict(units_by_dev)
    if mix.rent:
        rows = {**rows, **rental_rows(sc, rows)}
        units_by_dev.update({RENT + o: int(u) for o, u in mix.rent.items() if RENT + o in rows})
    from accelsim.fleet.routing import routings

    routes = routings(sc, rows)
    plans: dict[str, Any] = {}
    alloc = allocate(units_by_dev, rows, need, roles(sc), routes, plans)
    capex = sum(u * rows[d].capex_usd for d, u in units_by_dev.items())
    rent = {d[len(RENT):]: u * sc.rentals[d[len(RENT):]].usd_per_device_hour * HOURS_PER_YEAR
            for d, u in units_by_dev.items() if d not in owned}
    pool_spend: dict[str, float] = {p: 0.0 for p in sc.budget.pools}
    for d, u in units_by_dev.items():
        pool_spend[rows[d].pool] += (u * rows[d].capex_usd if d in owned
                                     else rent[d[len(RENT):]])
    spend = capex + sum(rent.values())
    cap = dict.fromkeys(need, 0.0)
    opex = tco_y = power = 0.0
    region_power = dict.fromkeys(sc.regions, 0.0)
    for d, a in alloc.items():
        r = rows[d]
        for w, share in a.items():
            if share <= 0 or w not in r.throughput:
                continue
            cap[w] += share * r.throughput[w]
            opex += share * r.opex_usd_per_year[w]
            tco_y += share * r.tco_usd_per_year[w]
            power += share * r.wall_power_W[w]
            region_power[sc.budget.pools[r.pool].region] += share * r.wall_power_W[w]
    cap.update({w: c for w, c in capacities(alloc, rows, need, routes).items() if w in routes})
    lent = (fleet_loan(sc, {d: a for d, a in alloc.items() if d in owned},
                       {d: rows[d].throughput for d in owned})
            if loan or sc.sharing == "shared" else {})
    if sc.sharing == "shared" and lent["workload"] is not None:
        cap[lent["workload"]] += lent["tokens_per_s"]
    violations = []
    for p, spent in pool_spend.items():
        if spent > sc.budget.pools[p].usd * (1 + 1e-9):
            violations.append(Violation("budget_pool", p, sc.budget.pools[p].usd, spent, "USD"))
    if spend > sc.budget.total_usd * (1 + 1e-9):
        violations.append(Violation("budget_total", "total", sc.budget.total_usd, spend, "USD"))
    for d, u in units_by_dev.items():
        r = rows[d]
        if u > r.max_units:
            violations.append(Violation("supply", r.device, r.max_units, u, "units"))
        if u > 0 and r.available_from > year:
            violations.append(Violation("availability", r.device, r.available_from, year,
                                        "year"))
    if sc.power_cap_mw is not None and power > sc.power_cap_mw * 1e6:
        violations.append(Violation("power", "power", sc.power_cap_mw * 1e6, power, "W"))
    for name, reg in sc.regions.items():
        if reg.power_capacity_mw is not None and (
                region_power[name] > reg.power_capacity_mw * 1e6 * (1 + 1e-9)):
            violations.append(Violation("region_power", name, reg.power_capacity_mw * 1e6,
                                        region_power[name], "W"))
    # what the whole fleet could do on one workload alone (for comparing fleets)
    full = {w: sum(u * rows[d].throughput.get(w, 0.0) for d, u in units_by_dev.items())
            for w in need}
    routed = {w: route_report(w, r, plans[w], units_by_dev, alloc, rows, need, roles(sc),
                              full[w], tco_y)
              for w, r in routes.items()}
    full.update({w: v["capacity_whole_fleet"] for w, v in routed.items()})
    served = {w: min(1.0, cap[w] / need[w]) for w in need}
    out: dict[str, Any] = {
        "name": mix.name, "year": year,
        "units": {rows[d].device: u for d, u in owned.items()},
        "capex_usd": capex, "pool_spend_usd": pool_spend,
        "opex_usd_per_year": opex, "tco_usd_per_year": tco_y, "power_MW": power / 1e6,
        "power_MW_by_region": {k: v / 1e6 for k, v in region_power.items()},
    }
    for name, spec in sc.workloads.items():
        out.update(workloads.of(spec).fleet_metrics(name, spec, cap[name], full[name]))
    out["workloads"] = {w: {"unit": workloads.of(sc.workloads[w]).unit,
                            "role": workloads.of(sc.workloads[w]).role, "demand": need[w],
                            "capacity": cap[w], "capacity_whole_fleet": full[w],
                            "served_fraction": served[w]} for w in need}
    out["allocation"] = {rows[d].device: a for d, a in alloc.items()}
    if routed:
        out["routing"] = routed
    if mix.rent:
        out["rented"] = {o: units_by_dev.get(RENT + o, 0) for o in mix.rent}
        out["rent_usd_per_year"] = sum(rent.values())
    out["sharing"] = sc.sharing
    out.update({k: v for k, v in lent.items() if k.startswith("loan_")})
    out["violations"] = violations
    out["rules"] = rules(sc, pool_spend, spend, units_by_dev, rows, power, region_power, cap,
                         need)
    out["meets_demand"] = bool(all(cap[w] >= need[w] * (1 - 1e-9) for w in need))
    out["served_fraction"] = float(np.mean(list(served.values())))
    if sc.objective == "served_demand":
        out["objective"] = out["served_fraction"]
    else:
        out["objective"] = tco_y if out["meets_demand"] else float("inf")
    return out

"""Pricing a device's throughputs: one row of the device table per device x workload.

  usd_per_hour        TCO per device-hour (:func:`accelsim.cost.tco`) at the workload's
                      utilisation (energy follows the load)
  throughput_per_usd  throughput x 3600 / usd_per_hour
  throughput_per_watt throughput / facility power (peak device + host + network x PUE)

Rental offers (:func:`rental_table`): per offer, the rented device's throughput per USD at
the offer's price, against owning it in its pool's region (:func:`accelsim.rental.rent_vs_buy`).
"""

from __future__ import annotations

from typing import Any

from accelsim import units, workloads
from accelsim.cost import capex_usd, tco
from accelsim.devices import DeviceSpec
from accelsim.fleet.scenario import Scenario, Supply
from accelsim.rental import rent_vs_buy
from accelsim.workloads import DeviceEval


def priced_rows(sc: Scenario, ref: str, pool: str, spec: DeviceSpec,
                evals: dict[str, DeviceEval]) -> list[dict[str, Any]]:
    """A device's rows from its evaluation on each named workload."""
    region = sc.regions[sc.budget.pools[pool].region]
    sup = sc.supply.get(ref, Supply())
    base = {"device": spec.name, "ref": ref, "pool": pool,
            "region": sc.budget.pools[pool].region, "capex_usd": capex_usd(spec),
            "available_from": sup.available_from or spec.available_from,
            "max_units": sup.max_units}
    rows = []
    for name, ev in evals.items():
        cost = tco(spec, region, sc.finance, ev.utilization)
        uph = float(cost["usd_per_hour"])
        thr = ev.throughput
        rows.append({
            **base, "workload": name, "throughput": thr,
            "throughput_unit": workloads.of(sc.workloads[name]).unit, "usd_per_hour": uph,
            "throughput_per_usd": thr * units.HOUR / uph if uph > 0 else 0.0,
            "throughput_per_watt": thr / float(cost["wall_power_W"]),
            "tco_usd_per_year": float(cost["tco_usd_per_year"]),
            "opex_usd_per_year": float(cost["opex_usd_per_year"]),
            "wall_power_W": float(cost["wall_power_W"]), "note": ev.note,
            "details": dict(ev.details or {}), "reason": ev.reason})
    return rows


def rental_table(sc: Scenario, devices: Any) -> list[dict[str, Any]]:
    """One record per rental offer: its price and term, rent versus buy (owned USD per
    device-hour at full use, break-even utilisation and horizon at full use), and per
    workload the rented and owned throughput per USD (``per_usd``: {workload: [rented,
    owned]}). ``devices``: the device table (a DataFrame)."""
    from accelsim.devices import load_device

    if not sc.rentals:
        return []
    recs = devices.to_dict(orient="records")
    out = []
    for name, offer in sc.rentals.items():
        mine = [r for r in recs if r["ref"] == offer.device]
        if not mine:
            continue
        spec = load_device(offer.device).spec
        pool = sc.budget.pools[mine[0]["pool"]]
        rb = rent_vs_buy(offer, spec, sc.regions[pool.region], sc.finance)
        out.append({
            "offer": name, "device": spec.name, "region": offer.region, "term": offer.term,
            "commitment_months": offer.commitment_months,
            "usd_per_device_hour": offer.usd_per_device_hour, "max_units": offer.max_units,
            "owned_region": pool.region, **rb,
            "per_usd": {r["workload"]: [r["throughput"] * units.HOUR / offer.usd_per_device_hour,
                                        r["throughput_per_usd"]] for r in mine},
            "confidence": offer.confidence, "source": offer.source})
    return out

"""Pricing a device's throughputs: one row of the device table per device x workload.

  usd_per_hour        TCO per device-hour (:func:`accelsim.cost.tco`) at the workload's
                      utilisation (energy follows the load)
  throughput_per_usd  throughput x 3600 / usd_per_hour
  throughput_per_watt throughput / facility power (peak device + host + network x PUE)
"""

from __future__ import annotations

from typing import Any

from accelsim import units, workloads
from accelsim.cost import capex_usd, tco
from accelsim.devices import DeviceSpec
from accelsim.fleet.scenario import Scenario, Supply
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
            "reason": ev.reason})
    return rows

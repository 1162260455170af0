"""Building the MILP's arrays from plain data: device rows, demand, budgets, caps.

Takes no scenario object: the fleet (or any caller) passes the numbers. A device not
available in ``year`` gets a supply cap of 0.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from accelsim.optimize.milp import MixProblem


def build_problem(rows: Mapping[str, Any], demand: Mapping[str, float],
                  pool_usd: Mapping[str, float], total_usd: float,
                  power_cap_W: float | None, server: int, objective: str, year: int,
                  region_of_pool: Mapping[str, str] | None = None,
                  region_caps_W: Mapping[str, float] | None = None,
                  min_lot: int = 0, max_types: int | None = None,
                  rented: Collection[str] = ()) -> MixProblem:
    """``rows``: per device, objects with ``device, pool, capex_usd, available_from,
    max_units`` and per-workload dicts ``throughput, tco_usd_per_year, wall_power_W``
    (:class:`accelsim.fleet.DeviceRow`); ``demand``: per workload, in its unit; ``rented``:
    the keys of ``rows`` that are rental offers (their ``capex_usd`` a year of rent)."""
    workloads = list(demand)
    devs = list(rows.values())

    def per(field: str) -> np.ndarray:
        return np.array([[getattr(d, field).get(w, 0.0) for w in workloads] for d in devs])

    return MixProblem(
        devices=[d.device for d in devs], workloads=workloads,
        capex=np.array([d.capex_usd for d in devs]), tco=per("tco_usd_per_year"),
        power=per("wall_power_W"), thr=per("throughput"),
        demand=np.array([demand[w] for w in workloads]),
        pool_of=[d.pool for d in devs], pool_usd=dict(pool_usd), total_usd=total_usd,
        max_units=np.array([0.0 if d.available_from > year else d.max_units for d in devs]),
        power_cap_W=power_cap_W, server=server, objective=objective,
        region_of=[(region_of_pool or {}).get(d.pool, "") for d in devs],
        region_caps_W=dict(region_caps_W or {}), min_lot=min_lot,
        max_types=max_types, rented=[k in rented for k in rows])

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
                  rented: Collection[str] = (),
                  loan: Mapping[str, Mapping[str, float]] | None = None,
                  loan_to: str | None = None,
                  routed: Mapping[str, Any] | None = None) -> MixProblem:
    """``rows``: per device, objects with ``device, pool, capex_usd, available_from,
    max_units`` and per-workload dicts ``throughput, tco_usd_per_year, wall_power_W``
    (:class:`accelsim.fleet.DeviceRow`); ``demand``: per workload, in its unit; ``rented``:
    the keys of ``rows`` that are rental offers (their ``capex_usd`` a year of rent);
    ``loan``: per key of ``rows``, per serving workload, the throughput of ``loan_to`` one
    unit lends through its troughs (a shared fleet); ``routed``: per workload routed by size,
    its bucket ``shares`` and ``labels`` (:class:`accelsim.fleet.routing.Routing`; rows then
    hold ``buckets``): one column per bucket, named ``<workload>[<label>]``."""
    real = list(demand)
    sized = {w: r for w, r in (routed or {}).items() if getattr(r, "sized", False)}
    extra = [(w, b, f"{w}[{lab}]") for w, r in sized.items() for b, lab in enumerate(r.labels)]
    workloads = real + [name for _, _, name in extra]
    devs = list(rows.values())
    source = {name: (w, b) for w, b, name in extra}

    def per(field: str) -> np.ndarray:
        return np.array([[getattr(d, field).get(source.get(w, (w, 0))[0], 0.0)
                          for w in workloads] for d in devs])

    thr = per("throughput")
    for c, (w, b, _) in enumerate(extra, start=len(real)):
        thr[:, c] = [d.buckets.get(w, ())[b] if w in d.buckets else 0.0 for d in devs]
    buckets = {}
    for w, r in sized.items():
        i = real.index(w)
        M = np.zeros((len(r.labels), len(devs), len(workloads)))
        for c, (w2, b, _) in enumerate(extra, start=len(real)):
            if w2 == w:
                M[b, :, i] = thr[:, i]  # the whole mix serves share_b of each bucket
                M[b, :, c] = thr[:, c] / r.shares[b]
        buckets[i] = M

    return MixProblem(
        devices=[d.device for d in devs], workloads=workloads,
        capex=np.array([d.capex_usd for d in devs]), tco=per("tco_usd_per_year"),
        power=per("wall_power_W"), thr=thr,
        demand=np.array([demand[w] for w in real]),
        pool_of=[d.pool for d in devs], pool_usd=dict(pool_usd), total_usd=total_usd,
        max_units=np.array([0.0 if d.available_from > year else d.max_units for d in devs]),
        power_cap_W=power_cap_W, server=server, objective=objective,
        region_of=[(region_of_pool or {}).get(d.pool, "") for d in devs],
        region_caps_W=dict(region_caps_W or {}), min_lot=min_lot,
        max_types=max_types, rented=[k in rented for k in rows],
        loan_thr=(np.array([[(loan.get(k) or {}).get(w, 0.0) for w in workloads] for k in rows])
                  if loan and loan_to in workloads else None),
        loan_to=workloads.index(loan_to) if loan and loan_to in workloads else None,
        buckets=buckets or None)

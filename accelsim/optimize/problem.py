"""Building the MILP's arrays from plain data: device rows, demand, budgets, caps.

Takes no scenario object: the fleet (or any caller) passes the numbers. A device not
available in ``year`` gets a supply cap of 0.

Two kinds of serving columns beyond one server of one device on one workload, shared by
``optimize`` and ``plan``:

- :class:`BucketColumns` (request-size routing, :mod:`accelsim.fleet.routing`): one column
  ``<workload>[<label>]`` per routed workload and prompt-size bucket, a device's servers
  serving that bucket alone at its capacity on it, ``c[d, b]``; the workload's demand is
  one row per bucket, ``sum_d c[d, b] n[d, w_b] + s_b sum_d c[d] n[d, w] >= s_b D``.
- :class:`PDColumn` (prefill/decode disaggregation, :mod:`accelsim.fleet.pd`): one column
  per PD unit offered (a pairing at one ratio), a lot of whole units taking
  ``servers[d]`` servers of its prefill and decode devices and serving ``rps`` requests/s
  of the whole mix (a share ``s_b`` of every bucket when the workload is routed).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from accelsim.optimize.milp import MixProblem


@dataclass(frozen=True)
class BucketColumns:
    """Per routed workload and prompt-size bucket, one column after the workloads:
    ``names[c]`` (``chatbot[< 2000]``) serves bucket ``bucket[c]`` of workload
    ``parent[c]`` alone, ``thr[d, c]`` requests/s per device (``rows[d].buckets``)."""

    names: list[str]
    parent: list[str]
    bucket: list[int]
    shares: dict[str, np.ndarray]  # per routed workload, each bucket's share of requests
    thr: np.ndarray  # [d, c] requests/s per device on the bucket alone

    @classmethod
    def of(cls, rows: Mapping[str, Any], routed: Mapping[str, Any] | None) -> BucketColumns:
        """The columns of the workloads of ``routed`` routed by size
        (:class:`accelsim.fleet.routing.Routing` with ``sized``); none without."""
        sized = {w: r for w, r in (routed or {}).items() if getattr(r, "sized", False)}
        cols = [(w, b, f"{w}[{lab}]") for w, r in sized.items() for b, lab in enumerate(r.labels)]
        thr = np.array([[d.buckets[w][b] if w in d.buckets else 0.0 for w, b, _ in cols]
                        for d in rows.values()]).reshape(len(rows), len(cols))
        return cls([n for _, _, n in cols], [w for w, _, _ in cols], [b for _, b, _ in cols],
                   {w: np.asarray(r.shares, dtype=float) for w, r in sized.items()}, thr)

    def rows_of(self, w: str, real: list[str], whole: np.ndarray) -> np.ndarray:
        """Workload ``w``'s demand rows as ``M[b, d, c]`` over the columns ``real`` +
        :attr:`names`: the requests/s of bucket ``b``'s demand (over its share ``s_b``) a
        server of device ``d`` on column ``c`` serves: the whole mix ``whole[d]`` (it serves
        ``s_b`` of each bucket), a bucket column ``c[d, b] / s_b`` (``w``: a routed
        workload, a key of :attr:`shares`)."""
        shares = self.shares[w]
        M = np.zeros((len(shares), len(whole), len(real) + len(self.names)))
        i = real.index(w)
        for c, (w2, b) in enumerate(zip(self.parent, self.bucket, strict=True)):
            if w2 == w:
                M[b, :, i] = whole
                M[b, :, len(real) + c] = self.thr[:, c] / shares[b]
        return M


@dataclass(frozen=True)
class PDColumn:
    """One prefill/decode unit offered to a workload (:class:`accelsim.fleet.pd.PDUnit`) as
    a MILP column: a *lot* of ``lot`` units, the fewest that take whole servers of both
    devices, ``lot x prefill_devices / server`` servers of ``prefill`` and
    ``lot x decode_devices / server`` of ``decode`` (keys of the device rows), serving
    ``lot x rps`` requests/s of the whole request mix."""

    workload: str
    prefill: str
    decode: str
    p: int
    q: int
    prefill_devices: int  # per unit
    decode_devices: int
    rps: float  # per unit, at the SLO, replicas up counted
    lot: int  # units per column unit

    @property
    def label(self) -> str:
        return f"PD {self.p}:{self.q} {self.prefill} -> {self.decode}"

    def servers(self, server: int) -> dict[str, float]:
        """Servers of each device one lot takes (one entry when both sides are one type)."""
        out = {self.prefill: self.lot * self.prefill_devices / server}
        out[self.decode] = out.get(self.decode, 0.0) + self.lot * self.decode_devices / server
        return out


def _lot(server: int, na: int, nb: int) -> int:
    """Fewest units whose ``na`` and ``nb`` devices each fill whole ``server``-device
    servers: lcm(S / gcd(S, na), S / gcd(S, nb))."""
    return math.lcm(server // math.gcd(server, na), server // math.gcd(server, nb))


def pd_columns(rows: Mapping[str, Any], routed: Mapping[str, Any] | None, server: int
               ) -> list[PDColumn]:
    """One column per PD unit of every workload of ``routed`` that offers them
    (``Routing.pd``; the rows of the prefill devices hold the units, ``rows[d].pd``) whose
    two devices are both rows and whose requests/s is positive."""
    out = []
    for w, r in (routed or {}).items():
        if not getattr(r, "pd", False):
            continue
        for ref, row in rows.items():
            for u in row.pd.get(w, ()):
                if u["decode"] not in rows or u["rps"] <= 0:
                    continue
                na, nb = int(u["prefill_devices"]), int(u["decode_devices"])
                out.append(PDColumn(w, ref, str(u["decode"]), int(u["p"]), int(u["q"]), na,
                                    nb, float(u["rps"]), _lot(server, na, nb)))
    return out


def pd_arrays(rows: Mapping[str, Any], routed: Mapping[str, Any] | None, server: int,
              workloads: list[str]) -> tuple[tuple[PDColumn, ...], np.ndarray | None, list[int]]:
    """:func:`pd_columns` as the MILPs take them: the columns with their sides by device
    name, the servers of each device (row) one lot takes ``[k, d]`` (None without PD
    units) and the index in ``workloads`` of the workload each serves."""
    pd = pd_columns(rows, routed, server)
    keys = list(rows)
    use = np.zeros((len(pd), len(keys)))
    for k, col in enumerate(pd):
        for ref, n in col.servers(server).items():
            use[k, keys.index(ref)] += n
    return (tuple(replace(c, prefill=rows[c.prefill].device, decode=rows[c.decode].device)
                  for c in pd), use if pd else None, [workloads.index(c.workload) for c in pd])


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
    unit lends through its troughs (a shared fleet); ``routed``: per routed workload its
    :class:`accelsim.fleet.routing.Routing`: size buckets become :class:`BucketColumns`
    (rows then hold ``buckets``), PD units :class:`PDColumn` (rows then hold ``pd``)."""
    real = list(demand)
    cols = BucketColumns.of(rows, routed)
    workloads = real + cols.names
    devs = list(rows.values())
    source = dict(zip(cols.names, cols.parent, strict=True))

    def per(field: str) -> np.ndarray:
        return np.array([[getattr(d, field).get(source.get(w, w), 0.0) for w in workloads]
                         for d in devs])

    thr = per("throughput")
    thr[:, len(real):] = cols.thr
    buckets = {real.index(w): cols.rows_of(w, real, thr[:, real.index(w)])
               for w in cols.shares}
    pd, pd_use, pd_workload = pd_arrays(rows, routed, server, real)

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
        buckets=buckets or None,
        pd=pd, pd_use=pd_use, pd_workload=pd_workload)

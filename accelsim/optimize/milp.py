"""Budget-constrained fleet optimisation as a mixed-integer linear program (scipy HiGHS).

Decision variables: ``n[d, w]``, integer servers (``server_chips`` devices each) of device
``d`` running workload ``w``; for the ``served_demand`` objective also ``s[w]`` in [0, 1],
the served fraction of each workload's demand.

  pools      sum_{d in pool, w} capex_d S n[d,w]     <= pool budget
  total      sum_{d, w} capex_d S n[d,w]             <= total budget
  supply     sum_w S n[d,w]                          <= max_units_d   (0 if not available)
  power      sum_{d, w} P_{d,w} S n[d,w]             <= power cap (wall power, W)
  demand     served_demand:  s[w] <= sum_d thr_{d,w} S n[d,w] / demand_w
             min_cost:       sum_d thr_{d,w} S n[d,w] >= demand_w

  maximise sum_w s[w] (ties: lower TCO)      or      minimise sum TCO_{d,w} S n[d,w]

Request-size routing (``buckets``, :mod:`accelsim.fleet.routing`): a routed workload ``w``
has one more column per size bucket ``b`` after the workloads (``n[d, w_b]``: servers
serving that bucket alone, at the device's capacity on it) and one demand row per bucket
instead of its one, ``s[w] <= sum_{d,c} M_b[d, c] S n[d, c] / demand_w`` with
``M_b[d, w] = thr_{d,w}`` (the whole mix) and ``M_b[d, w_b] = c_{d,b} / share_b``; the
bucket columns count in budgets, supply and power as the workload's own.

Prefill/decode units (``pd``, :class:`accelsim.optimize.problem.PDColumn`) are integer
columns ``v[k]`` after the servers: a lot of PD units taking ``pd_use[k, d]`` servers of
each of its two devices (in the budget, supply, power and lot rows, at each device's TCO
and power on the workload) and serving ``lot x rps`` requests/s of the whole mix (in every
bucket row of a routed workload, its share of that bucket).

A shared fleet (``loan_to``) adds to the training workload's demand row the training each
serving unit lends through its workload's troughs, ``sum_{d,w} L_{d,w} S n[d,w]``
(:func:`accelsim.fleet.loan.unit_loan_rates`, linear in units).

Rented capacity (a scenario's ``rentals``) is one more device per offer (``rented[d]``): its
``capex_d`` is a year of rent (what the budget pays), its TCO the same, its power 0 (the
cloud's facility), its supply cap the offer's availability limit.

Shadow prices are the duals of the LP relaxation (HiGHS marginals): the change in the
objective per unit of a constraint's right-hand side (per USD of a pool, per device of
a supply cap, per W of the power cap).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from accelsim.errors import AccelsimError


@dataclass(frozen=True)
class MixProblem:
    """Arrays of one instance. d = device index, w = workload index."""

    devices: list[str]
    workloads: list[str]
    capex: np.ndarray  # [d] USD per device
    tco: np.ndarray  # [d, w] USD per device-year
    power: np.ndarray  # [d, w] wall W per device
    thr: np.ndarray  # [d, w] throughput per device (0: cannot run)
    demand: np.ndarray  # [w]
    pool_of: list[str]  # [d]
    pool_usd: dict[str, float]
    total_usd: float
    max_units: np.ndarray  # [d], inf if uncapped, 0 if unavailable
    power_cap_W: float | None
    server: int = 8
    objective: str = "served_demand"
    region_of: list[str] | None = None  # [d] region of each device's pool
    region_caps_W: dict[str, float] | None = None  # facility power each region can supply
    min_lot: int = 0  # fewest servers of a device bought if any is (0: no minimum)
    max_types: int | None = None  # most device types bought (None: no limit)
    rented: list[bool] | None = None  # [d] a rental offer (capex: a year of its rent)
    loan_thr: np.ndarray | None = None  # [d, w] loan_to's throughput a device serving w lends
    loan_to: int | None = None  # the workload the serving troughs train (sharing: shared)
    # routed workloads (index among the first len(demand) columns): [B, d, columns] each
    buckets: dict[int, np.ndarray] | None = None
    # prefill/decode units (accelsim.optimize.problem.PDColumn, its sides by device name)
    pd: tuple[Any, ...] = ()
    pd_use: np.ndarray | None = None  # [k, d] servers of device d one lot of column k takes
    pd_workload: list[int] | None = None  # [k] the workload (index) each serves

    @property
    def switches(self) -> bool:
        """Whether the MILP has a buy-or-not switch per device (a lot or a type count)."""
        return bool(self.min_lot) or self.max_types is not None


@dataclass(frozen=True)
class Columns:
    """The MILP's integer columns: ``n[d, w]`` (servers of device d on workload w, index
    ``d * W + w``), then one lot of each PD column; per column unit, each device's servers
    ``use[d, c]``, USD of capex ``spend[d, c]``, wall W ``watts[d, c]`` and USD/yr of TCO
    ``tco[d, c]``."""

    nx: int
    use: np.ndarray  # [D, nc]
    spend: np.ndarray
    watts: np.ndarray
    tco: np.ndarray
    pd_thr: np.ndarray  # [K] requests/s of one PD lot

    @property
    def n(self) -> int:
        return self.use.shape[1]


def columns(p: MixProblem) -> Columns:
    D, W = len(p.devices), len(p.workloads)
    nx, K = D * W, len(p.pd)
    use = np.zeros((D, nx + K))
    watts = np.zeros((D, nx + K))
    tco = np.zeros((D, nx + K))
    for d in range(D):
        use[d, d * W:(d + 1) * W] = 1.0
        watts[d, d * W:(d + 1) * W] = p.power[d] * p.server
        tco[d, d * W:(d + 1) * W] = p.tco[d] * p.server
    if K:
        assert p.pd_use is not None and p.pd_workload is not None
        wk = np.asarray(p.pd_workload, dtype=int)
        use[:, nx:] = p.pd_use.T
        watts[:, nx:] = p.pd_use.T * p.power[:, wk] * p.server
        tco[:, nx:] = p.pd_use.T * p.tco[:, wk] * p.server
    return Columns(nx, use, use * p.capex[:, None] * p.server, watts, tco,
                   np.array([c.lot * c.rps for c in p.pd], dtype=float))


def _rows(p: MixProblem) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]], Columns]:
    D = len(p.devices)
    R = len(p.demand)  # workloads; columns beyond them serve routed size buckets
    col = columns(p)
    nc = col.n
    nsv = R if p.objective == "served_demand" else 0
    ns = nsv + (D if p.switches else 0)  # served fractions, then buy-or-not switches
    rows, rhs, names = [], [], []

    def add(coef: np.ndarray, limit: float, name: str, unit: str) -> None:
        r = np.zeros(nc + ns)
        r[:nc] = coef
        rows.append(r)
        rhs.append(limit)
        names.append((name, unit))

    for pool, usd in p.pool_usd.items():
        mask = np.array([p.pool_of[d] == pool for d in range(D)], dtype=bool)
        add(col.spend[mask].sum(axis=0), usd, f"budget pool {pool}", "USD")
    add(col.spend.sum(axis=0), p.total_usd, "budget total", "USD")
    for d in range(D):
        if np.isfinite(p.max_units[d]):
            add(col.use[d] * p.server, p.max_units[d], f"supply {p.devices[d]}", "device")
    if p.power_cap_W is not None:
        add(col.watts.sum(axis=0), p.power_cap_W, "power cap", "W")
    for region, cap in (p.region_caps_W or {}).items():
        mask = np.array([p.region_of is not None and p.region_of[d] == region
                         for d in range(D)], dtype=bool)
        add(col.watts[mask].sum(axis=0), cap, f"power region {region}", "W")
    W = len(p.workloads)
    for w in range(R):
        per_bucket = (p.buckets or {}).get(w)
        served = ([-(M * p.server).ravel() / p.demand[w] for M in per_bucket]
                  if per_bucket is not None else [-(p.thr[:, w, None] * np.eye(W)[w]
                                                    * p.server).ravel() / p.demand[w]])
        for b, coef in enumerate(served):
            r = np.zeros(nc + ns)
            r[:col.nx] = coef
            if w == p.loan_to and p.loan_thr is not None:  # serving units' troughs train
                r[:col.nx] -= (p.loan_thr * p.server).ravel() / p.demand[w]
            for k, wk in enumerate(p.pd_workload or []):  # PD lots serve the whole mix
                if wk == w:
                    r[col.nx + k] = -col.pd_thr[k] / p.demand[w]
            if nsv:
                r[nc + w] = 1.0
                rhs.append(0.0)
            else:
                rhs.append(-1.0)
            rows.append(r)
            names.append((f"demand {_row_name(p, w, b, per_bucket)}", "fraction of demand"))
    if p.switches:  # none of a device or at least a lot: n_d >= L y_d, n_d <= U_d y_d
        first = nc + nsv
        for d in range(D):
            if p.min_lot:
                r = np.zeros(nc + ns)
                r[:nc] = -col.use[d]
                r[first + d] = p.min_lot
                rows.append(r)
                rhs.append(0.0)
                names.append((f"minimum lot {p.devices[d]}", "lot"))
            r = np.zeros(nc + ns)
            r[:nc] = col.use[d]
            r[first + d] = -_most_servers(p, d)
            rows.append(r)
            rhs.append(0.0)
            names.append((f"lot chosen {p.devices[d]}", "lot"))
        if p.max_types is not None:
            r = np.zeros(nc + ns)
            r[first:first + D] = 1.0
            rows.append(r)
            rhs.append(float(p.max_types))
            names.append(("device types", "types"))
    return np.vstack(rows), np.asarray(rhs), names, col


def _row_name(p: MixProblem, w: int, b: int, per_bucket: np.ndarray | None) -> str:
    """A demand row's workload: its name, or its bucket column's (``chatbot[< 2000]``)."""
    if per_bucket is None:
        return p.workloads[w]
    cols = [c for c in range(len(p.demand), len(p.workloads)) if per_bucket[b, :, c].any()]
    return p.workloads[cols[0]] if cols else f"{p.workloads[w]}[bucket {b + 1}]"


def _most_servers(p: MixProblem, d: int) -> float:
    """Most servers of device ``d`` the budget and its supply cap allow."""
    cap = np.floor(p.max_units[d] / p.server) if np.isfinite(p.max_units[d]) else np.inf
    return float(min(cap, np.floor(p.total_usd / (p.capex[d] * p.server))))


_QUIET = threading.Lock()  # guards the redirection below, shared by the solving threads
_quiet: list[int] = []  # the saved stdout descriptor while any thread is inside, and a count


@contextmanager
def quiet_solver() -> Iterator[None]:
    """Silence what the HiGHS library writes to the process's stdout (some versions print
    debug lines from C), which would corrupt ``--json`` output. File descriptor 1 belongs
    to the whole process, so threads solving at once share one redirection: the first in
    saves stdout, the last out restores it (each saving and restoring its own would leave
    the process's stdout on /dev/null when their blocks overlap: the second saved the
    first's /dev/null)."""
    with _QUIET:
        if not _quiet:
            sys.stdout.flush()
            saved = os.dup(1)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.close(null)
            _quiet[:] = [saved, 0]
        _quiet[1] += 1
    try:
        yield
    finally:
        with _QUIET:
            _quiet[1] -= 1
            if not _quiet[1]:
                os.dup2(_quiet[0], 1)
                os.close(_quiet[0])
                _quiet.clear()


# Seconds the MILP may take; past it the best mix found so far is returned, said unproven.
TIME_LIMIT_S = 30.0
# Served fraction (summed over workloads) the TCO stage of served_demand may give up.
SERVED_TOL = 1e-7
# A PD lot's TCO is weighed this much more than its servers' in the MILP's objective (not
# in what is reported): a PD unit is bought only where it saves more than this share.
PD_TIE = 1e-6
# A dual or marginal this small in its reported unit (per B USD, per MW...) is 0.
ZERO = 1e-9
# Finite-difference step of a binding constraint: this share of its right-hand side.
MARGINAL_STEP = 0.02
# How a marginal value is reported, by the constraint's unit: (scale, label).
MARGINAL_UNITS = {"USD": (1e9, "per B USD"), "device": (1e3, "per 1,000 devices"),
                  "W": (1e6, "per MW"), "fraction of demand": (0.01, "per 1 % more demand"),
                  "types": (1.0, "per device type more")}


def _relaxed(p: MixProblem, name: str, step: float) -> MixProblem | None:
    """The problem with the constraint ``name`` loosened by ``step`` of its right-hand side
    (its own units; demand: a share more of it); None for rows that are not a resource."""
    if name.startswith("budget pool "):
        pool = name.removeprefix("budget pool ")
        return replace(p, pool_usd={**p.pool_usd, pool: p.pool_usd[pool] + step})
    if name == "budget total":
        return replace(p, total_usd=p.total_usd + step)
    if name == "device types" and p.max_types is not None:
        return replace(p, max_types=p.max_types + 1)
    if name.startswith("supply "):
        d = p.devices.index(name.removeprefix("supply "))
        caps = p.max_units.copy()
        caps[d] += step
        return replace(p, max_units=caps)
    if name == "power cap" and p.power_cap_W is not None:
        return replace(p, power_cap_W=p.power_cap_W + step)
    if name.startswith("power region ") and p.region_caps_W:
        region = name.removeprefix("power region ")
        return replace(p, region_caps_W={**p.region_caps_W,
                                         region: p.region_caps_W[region] + step})
    if name.startswith("demand "):
        w = p.workloads.index(name.removeprefix("demand ").split("[")[0])
        dem = p.demand.copy()
        dem[w] *= 1 + step  # a share of the demand
        return replace(p, demand=dem)
    return None


def _keeps_all_served(p: MixProblem, name: str, unit: str, served: np.ndarray,
                      cap: np.ndarray) -> bool:
    """Whether loosening the binding rule ``name`` (as :func:`_marginal` does) provably
    leaves a served_demand optimum at its maximum, every workload served: the mix found
    (servers ``n``, ``s = 1``) stays feasible, so the re-solved optimum is 1 again and the
    marginal value 0 (to the TCO stage's :data:`SERVED_TOL`, which :func:`_marginal` reads
    as no change). A budget, supply, power or type limit loosened only widens the feasible
    set; a demand grown by :data:`MARGINAL_STEP` keeps ``s_w = 1`` feasible where the mix's
    capacity (its scarcest demand row, ``cap``) already covers the larger demand."""
    if p.objective != "served_demand" or not np.all(served == 1.0):
        return False
    if unit != "fraction of demand":
        return True
    w = p.workloads.index(name.removeprefix("demand ").split("[")[0])
    return bool(cap[w] >= p.demand[w] * (1 + MARGINAL_STEP) * (1 + 1e-9))


def _marginal(p: MixProblem, base: dict[str, float], name: str, rhs: float, unit: str,
              all_served: bool = False) -> dict[str, float | None]:
    """Objective change per unit of the constraint (USD/yr of TCO for min_cost, served
    fraction for served_demand), by re-solving the MILP with the constraint loosened by
    :data:`MARGINAL_STEP` of its right-hand side (at least ten servers of a supply cap):
    the LP dual of an integer programme is often degenerate (0 or 1e-16 although the
    constraint binds). 0 means loosening it does not improve the objective (a served-demand
    objective already at 1: only its TCO tie-breaker moves, which the solver's gap does not
    resolve). Reported per the unit's scale (:data:`MARGINAL_UNITS`). ``all_served``: the
    re-solve is known to keep every workload served (:func:`_keeps_all_served`), so the
    value is 0 without it."""
    frac = unit == "fraction of demand"
    if frac:
        step = MARGINAL_STEP
    elif unit == "types":
        step = 1.0
    elif unit == "device":
        step = max(abs(rhs) * MARGINAL_STEP, 10.0 * p.server)
    else:
        step = max(abs(rhs) * MARGINAL_STEP, 1.0)
    q = _relaxed(p, name, step)
    if q is None:
        return {"marginal": None}
    if all_served:
        return {"marginal": 0.0}
    if p.objective == "served_demand" and base["objective"] >= 1 - SERVED_TOL:
        # every workload served: if the loosened problem's first solve serves everything
        # too (to its gap), the full re-solve's TCO stage keeps that to SERVED_TOL and
        # the value is 0 as below; only otherwise is the TCO stage needed
        most = _most_served(q)
        if most is not None and most >= 1 - 1e-9:
            return {"marginal": 0.0}
    try:
        other = solve(q, marginals=False)
    except AccelsimError:
        return {"marginal": None}
    if not other["feasible"]:
        return {"marginal": None}
    scale = MARGINAL_UNITS.get(unit, (1.0, unit))[0]
    diff = other["objective"] - base["objective"]
    if p.objective == "served_demand" and abs(diff) <= 2 * SERVED_TOL * len(p.workloads):
        diff = 0.0  # within what the TCO stage may give up: no change
    value = float(diff / step * scale)
    return {"marginal": 0.0 if abs(value) < ZERO else value}


@dataclass(frozen=True)
class _Program:
    """The MILP's arrays: rows ``A x <= b`` (named), the first solve's objective ``c``
    (served_demand: the served fractions; min_cost: ``cost``), the TCO ``cost`` with its
    PD tie-breaker, the LP relaxation's ``c_lp``, variable upper bounds and integrality."""

    A: np.ndarray
    b: np.ndarray
    names: list[tuple[str, str]]
    col: Columns
    c: np.ndarray
    cost: np.ndarray
    c_lp: np.ndarray
    ub: np.ndarray
    integrality: np.ndarray
    nsv: int  # served fractions (served_demand), after the integer columns


def _program(p: MixProblem) -> _Program:
    D, W = len(p.devices), len(p.workloads)
    R = len(p.demand)
    A, b, names, col = _rows(p)
    nx, nc = col.nx, col.n
    ns = A.shape[1] - nc
    nsv = R if p.objective == "served_demand" else 0
    nl = ns - nsv  # lot switches (binary)
    cost = np.concatenate([col.tco.sum(axis=0), np.zeros(ns)])
    c_lp = cost  # the LP relaxation's (and the reported) TCO: the true one
    # ties: at equal TCO plain servers, not PD lots (no KV transfer, no pairing to keep)
    cost = cost * np.concatenate([np.ones(nx), np.full(nc - nx, 1 + PD_TIE), np.ones(ns)])
    if p.objective == "served_demand":
        # lexicographic, in two solves: the most served fraction, then the lowest TCO that
        # keeps it (one weighted objective leaves the TCO below the solver's gap: an
        # arbitrary mix, e.g. a few servers of a third vendor)
        c = c_lp = np.concatenate([np.zeros(nc), -np.ones(nsv), np.zeros(nl)])
    else:
        c = cost
    # servers that cannot run a workload, or are not available, are fixed at zero
    ub = np.full(nc + ns, np.inf)
    cap_servers = np.where(np.isfinite(p.max_units), np.floor(p.max_units / p.server), np.inf)
    for d in range(D):
        for w in range(W):
            ub[d * W + w] = 0.0 if p.thr[d, w] <= 0 else cap_servers[d]
    if ns:
        ub[nc:] = 1.0
    # finite bounds help branch-and-bound: no more servers than the total budget buys
    # (a PD lot: than each of its devices' supply and the budget allow)
    with np.errstate(divide="ignore", invalid="ignore"):
        budget_ub = np.floor(p.total_usd / col.spend.sum(axis=0))
        supply_ub = np.where(col.use > 0, cap_servers[:, None] / col.use, np.inf).min(axis=0)
    ub[:nc] = np.minimum(ub[:nc], budget_ub)
    ub[nx:nc] = np.minimum(ub[nx:nc], np.floor(supply_ub[nx:] + 1e-9))
    integrality = np.concatenate([np.ones(nc), np.zeros(nsv), np.ones(nl)])
    return _Program(A, b, names, col, c, cost, c_lp, ub, integrality, nsv)


def _first_solve(pr: _Program) -> Any:
    """The first MILP: the most served demand (served_demand) or the least TCO (min_cost)."""
    return milp(pr.c, constraints=LinearConstraint(pr.A, -np.inf, pr.b),
                integrality=pr.integrality, bounds=Bounds(np.zeros(len(pr.ub)), pr.ub),
                options={"time_limit": TIME_LIMIT_S, "mip_rel_gap": 1e-9})


def _most_served(p: MixProblem) -> float | None:
    """A served_demand problem's most served fraction (mean over workloads), from the first
    solve alone (None if it has no solution)."""
    with quiet_solver():
        res = _first_solve(_program(p))
    return None if res.x is None else float(-res.fun / len(p.demand))


def solve(p: MixProblem, marginals: bool = True) -> dict[str, Any]:
    """Solve the MILP and its LP relaxation; report the mix, the binding constraints with
    their LP duals and finite-difference marginal values (``marginals``)."""
    D, W = len(p.devices), len(p.workloads)
    R = len(p.demand)
    pr = _program(p)
    A, b, names, col, cost, c_lp, ub, integrality, nsv = (
        pr.A, pr.b, pr.names, pr.col, pr.cost, pr.c_lp, pr.ub, pr.integrality, pr.nsv)
    nx, nc = col.nx, col.n
    ns = A.shape[1] - nc
    with quiet_solver():
        res = _first_solve(pr)
        if res.x is not None and nsv:
            keep = np.zeros(nc + ns)
            keep[nc:nc + nsv] = -1.0
            second = milp(cost, constraints=[LinearConstraint(A, -np.inf, b), LinearConstraint(
                keep, -np.inf, float(res.fun) + SERVED_TOL)], integrality=integrality,
                bounds=Bounds(np.zeros(nc + ns), ub),
                options={"time_limit": TIME_LIMIT_S, "mip_rel_gap": 1e-6})
            if second.x is not None:
                res = second if res.status == 0 else res
    if res.x is None:
        if p.objective == "min_cost" and res.status == 2:  # infeasible: demand cannot be met
            best = solve(replace(p, objective="served_demand"))
            short = ", ".join(f"{w} {f:.1%}" for w, f in best["served_fraction"].items()
                              if f < 1 - 1e-9)
            return {**best, "feasible": False,
                    "reason": f"no fleet meets the whole demand within the budget, supply and "
                              f"power rules; the mix shown serves the most ({short} served)"}
        raise AccelsimError.single(
            "optimize", "scenario",
            f"no feasible fleet: {res.message} (min_cost needs a budget that can meet demand)")
    xc = np.round(res.x[:nc])
    x = xc[:nx].reshape(D, W)
    v = xc[nx:]  # PD lots
    lp = linprog(c_lp, A_ub=A, b_ub=b, bounds=list(zip(np.zeros(nc + ns), ub, strict=True)),
                 method="highs")
    duals = lp.ineqlin.marginals if lp.status == 0 else np.full(len(b), np.nan)
    lhs = A @ np.concatenate([xc, np.round(res.x[nc:nc + nsv], 12),
                              np.round(res.x[nc + nsv:])])
    binding: list[dict[str, Any]] = []
    for i, ((name, unit), rhs_i) in enumerate(zip(names, b, strict=True)):
        if unit == "lot" or (unit == "types" and lhs[i] < b[i] - 0.5):
            continue
        slack = rhs_i - lhs[i]
        scale = max(abs(rhs_i), 1.0)
        step = np.max(np.abs(A[i, :nx])) if np.any(A[i, :nx]) else 0.0
        # integer servers: a constraint binds when less than one server's worth is left
        if slack <= max(step, 1e-9 * scale):
            # linprog minimises; report the gain in the maximised/minimised objective
            sp = -float(duals[i]) if p.objective == "served_demand" else float(duals[i])
            if abs(sp * MARGINAL_UNITS.get(unit, (1.0, unit))[0]) < ZERO:
                sp = 0.0  # the solver's rounding (4.9e-16), not a value
            if rhs_i == 0 and sp == 0 and unit == "device":
                continue  # a device not available (banned, not yet made): no choice
            binding.append({"constraint": name, "slack": float(slack),
                            "shadow_price": sp, "per": unit, "_rhs": float(rhs_i)})
    rent = np.array(p.rented or [False] * D, dtype=bool)
    pd_units, pd_servers = _pd_readout(p, col, v)
    units: dict[str, dict[str, int]] = {}
    rented: dict[str, dict[str, int]] = {}
    for d in range(D):
        per = {p.workloads[w]: int(x[d, w] * p.server) for w in range(W) if x[d, w] > 0}
        per.update({k: round(float(n) * p.server) for k, n in pd_servers[d].items()})
        if per:
            (rented if rent[d] else units)[p.devices[d]] = per
    spend = col.spend @ xc  # [d]
    capex = float(np.sum(spend[~rent]))
    pool_spend = {pool: float(sum(spend[d] for d in range(D) if p.pool_of[d] == pool))
                  for pool in p.pool_usd}
    cap = (x * p.thr * p.server).sum(axis=0)[:R]
    for k, wk in enumerate(p.pd_workload or []):
        cap[wk] += v[k] * col.pd_thr[k]
    for w, per_bucket in (p.buckets or {}).items():  # the bucket served least bounds it
        pd_w = sum(v[k] * col.pd_thr[k] for k, wk in enumerate(p.pd_workload or []) if wk == w)
        cap[w] = min(float(np.sum(M * x) * p.server) for M in per_bucket) + pd_w
    lent = float(np.sum(x * p.loan_thr * p.server)) if p.loan_thr is not None else 0.0
    if p.loan_to is not None:
        cap[p.loan_to] += lent
    served = np.minimum(1.0, cap / p.demand)
    tco_y = float(col.tco.sum(axis=0) @ xc)
    objective = float(served.mean()) if p.objective == "served_demand" else tco_y
    rhs = [bnd.pop("_rhs") for bnd in binding]
    if marginals and binding:
        # one re-solve per binding rule (but those known to keep every workload served),
        # independent of each other: HiGHS releases the GIL, so two threads run them on
        # both cores (the same answers, in the rules' order)
        from concurrent.futures import ThreadPoolExecutor

        kept = [_keeps_all_served(p, b["constraint"], b["per"], served, cap) for b in binding]
        with ThreadPoolExecutor(min(2, len(binding) - sum(kept)) or 1) as ex:
            got = list(ex.map(lambda b, r, k: _marginal(p, {"objective": objective},
                                                        b["constraint"], r, b["per"], k),
                              binding, rhs, kept))
        for bnd, m in zip(binding, got, strict=True):
            bnd.update(m)
            bnd["marginal_per"] = MARGINAL_UNITS.get(bnd["per"], (1.0, bnd["per"]))[1]
    return {
        "objective_kind": p.objective,
        "objective": objective,
        "units": units, "capex_usd": capex, "pool_spend_usd": pool_spend,
        **({"rented": rented, "rent_usd_per_year": float(np.sum(spend[rent]))}
           if rent.any() else {}),
        "tco_usd_per_year": tco_y,
        **({"loan_capacity": lent} if p.loan_to is not None else {}),
        "capacity": {p.workloads[w]: float(cap[w]) for w in range(R)},
        "served_fraction": {p.workloads[w]: float(served[w]) for w in range(R)},
        **({"pd_units": pd_units} if p.pd else {}),
        "power_MW": float(col.watts.sum(axis=0) @ xc / 1e6),
        "binding_constraints": binding,
        "lp_relaxation_objective": (float(-(lp.fun or 0.0) / R
                                          if p.objective == "served_demand" else lp.fun or 0.0)
                                    if lp.status == 0 else None),
        "solver": res.message, "feasible": True, "reason": None,
        "proven_optimal": bool(res.status == 0),
        "mip_gap": float(getattr(res, "mip_gap", 0.0) or 0.0),
    }


def _pd_readout(p: MixProblem, col: Columns, v: np.ndarray
                ) -> tuple[list[dict[str, Any]], list[dict[str, float]]]:
    """The PD lots bought as ``pd_units`` (one entry per column with units: its label,
    workload, units = lots x lot, servers and devices of each device, requests/s) and, per
    device, the servers they take keyed ``<workload> PD`` (for ``units``)."""
    out: list[dict[str, Any]] = []
    per_dev: list[dict[str, float]] = [{} for _ in p.devices]
    for k, c in enumerate(p.pd):
        if v[k] <= 0:
            continue
        assert p.pd_use is not None and p.pd_workload is not None
        w = p.workloads[p.pd_workload[k]]
        servers = {p.devices[d]: float(v[k] * p.pd_use[k, d]) for d in range(len(p.devices))
                   if p.pd_use[k, d] > 0}
        for d in range(len(p.devices)):
            if p.pd_use[k, d] > 0:
                per_dev[d][f"{w} PD"] = per_dev[d].get(f"{w} PD", 0.0) + v[k] * p.pd_use[k, d]
        out.append({"pair": c.label, "workload": w,
                    "prefill": c.prefill, "decode": c.decode,
                    "p": c.p, "q": c.q, "units": int(v[k] * c.lot),
                    "servers": {d: round(float(n)) for d, n in servers.items()},
                    "devices": {d: round(float(n) * p.server) for d, n in servers.items()},
                    "rps_per_unit": c.rps, "capacity": float(v[k] * col.pd_thr[k])})
    return out, per_dev

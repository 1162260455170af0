"""A multi-year purchase plan: which devices to buy in which quarter, as one MILP.

The scenario's ``plan`` block gives the horizon (quarters from a start year), the budget of
each year, how fast each workload's demand grows, and when and how fast each device can be
delivered (supply ramps, a device available from a date, an export rule ending deliveries).
Per-device throughput, TCO and power come from the fleet's one evaluation (``compare``'s
device table), so the plan prices devices as every other command does.

Variables: ``x[d, w, q]``, whole servers of device d for workload w delivered in quarter q,
and ``u[w, q]`` in [0, 1], the share of workload w's demand left unserved in quarter q.
Installed in q: every server delivered up to q (the horizon is shorter than a device's life).

  minimise  sum_q disc(q) [capex of x(q) - residual of x(q) at the end + opex of installed(q)]
            + PENALTY x sum_{w,q} u[w, q] x (the annual TCO that demand would need)
  subject to, every quarter q:
    capacity_w(installed(q)) + u[w, q] demand_w(q) >= demand_w(q)     (each workload)
    units delivered of device d in q <= its deliveries that quarter     (supply ramp, bans)
    facility power of installed(q) <= power cap, per region             (the scenario's rules)
    facility power in region r <= built_r + builds of r started by q - B_r  (build time)
  and every year: capex of its deliveries <= its budget (pools in the scenario's proportions).

disc(q) = (1 + r)^(-q/4) at the cost of capital; residual value is straight-line over
``finance.years``. A region with ``facility_built_mw`` owns its data centres: what is built
is sunk, a new build ``b[r, q]`` (facility W, continuous) costs
``facility_capex_usd_per_mw / PUE`` per facility MW when started, less its straight-line
residual over ``finance.facility_years``, and its devices' opex drops the annualised
facility capex that ``compare`` charges (no double count). Other regions rent by the kW.
Unserved demand costs ``PENALTY`` times what serving it would, so it is
used only when nothing else can serve it. The plan is solved to within :data:`MIP_GAP`
(0.1 %) of the optimum; the solver has a time limit, and a plan stopped by it is reported as
unproven with its gap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple

import numpy as np
from pydantic import Field

from accelsim.config import YEARS, Strict
from accelsim.errors import AccelsimError

# Unserved demand costs this many times the annual TCO of the capacity it lacks.
PENALTY = 20.0
TIME_LIMIT_S = 60.0
# Relative gap at which the plan counts as solved: 0.1 % of the present cost (far inside
# the uncertainty of its inputs).
MIP_GAP = 1e-3
_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


def quarter_index(label: str, start: int) -> int:
    """``2026Q1`` -> quarters after the first quarter of ``start``."""
    m = _QUARTER.match(label)
    if not m:
        raise ValueError(f"expected a quarter like 2026Q1, got {label!r}")
    return (int(m.group(1)) - start) * 4 + int(m.group(2)) - 1


class Deliveries(Strict):
    """How many units of a device can be delivered per quarter, and between which dates."""

    units_per_quarter: float = Field(ge=0, le=100_000_000)
    """Units deliverable each quarter (a supply ramp: the fab's or the vendor's allocation)."""
    start: str | None = Field(default=None, pattern=_QUARTER.pattern)
    """First quarter with deliveries (e.g. 2026Q1: the in-house ASIC's mass production)."""
    end: str | None = Field(default=None, pattern=_QUARTER.pattern)
    """Last quarter with deliveries (e.g. an export rule taking effect after it)."""


class PlanSpec(Strict):
    """The scenario's ``plan`` block."""

    start: int = Field(ge=YEARS[0], le=YEARS[1])
    """Year of the first quarter."""
    quarters: int = Field(default=12, ge=1, le=80)
    """Quarters planned."""
    budget_usd_per_year: dict[int, Annotated[float, Field(ge=0, le=1e13)]] = Field(
        min_length=1)
    """Capital budget of each calendar year, USD (split over the pools in the scenario's
    proportions)."""
    demand_growth_per_quarter: dict[str, Annotated[float, Field(ge=-0.5, le=10)]] = Field(
        default_factory=dict)
    """Per workload, the growth of its demand each quarter (0.15 = +15 %); the scenario's
    demand is the first quarter's."""
    deliveries: dict[str, Deliveries] = Field(default_factory=dict)
    """Per device reference, its deliveries; a device not listed gets its scenario supply
    cap per quarter from its availability year."""


class Build(NamedTuple):
    """A region that owns its data centres (facility W are wall power: IT x PUE)."""

    built_W: float  # built and powered at the plan's start
    cap_W: float | None  # the grid allowance builds may reach
    lag_q: int  # quarters from starting a build to power
    usd_per_W: float  # build cost per facility W


@dataclass(frozen=True)
class PlanProblem:
    devices: list[str]
    workloads: list[str]
    capex: np.ndarray  # [d] USD per device
    opex: np.ndarray  # [d, w] USD per device-year
    tco: np.ndarray  # [d, w] USD per device-year
    power: np.ndarray  # [d, w] facility W per device
    thr: np.ndarray  # [d, w]
    demand: np.ndarray  # [w, q]
    supply: np.ndarray  # [d, q] units deliverable
    pool_of: list[str]
    pool_share: dict[str, float]  # pool -> share of each year's budget
    budget: np.ndarray  # [q] budget of the year the quarter is in (for grouping, by year)
    year_of: np.ndarray  # [q] calendar year
    region_of: list[str]
    region_caps_W: dict[str, float]
    power_cap_W: float | None
    server: int
    rate: float  # cost of capital
    life_years: float
    builds: dict[str, Build]  # regions that own their facilities
    facility_years: float


def build(sc: Any, dev: Any, spec: PlanSpec, where: str = "plan") -> PlanProblem:
    """The plan's arrays from a scenario and its device table (``compare``'s)."""
    from accelsim.fleet import demand, device_rows

    rows = device_rows(dev)
    need = demand(sc)
    W, Q = list(need), spec.quarters
    refs = list(rows)
    for ref in spec.deliveries:
        if ref not in rows:
            raise AccelsimError.single(where, f"plan.deliveries.{ref}",
                                       "device is in no budget pool; expected one of: "
                                       + ", ".join(refs))
    for w in spec.demand_growth_per_quarter:
        if w not in need:
            raise AccelsimError.single(where, f"plan.demand_growth_per_quarter.{w}",
                                       "unknown workload; expected one of: " + ", ".join(W))
    years = spec.start + np.arange(Q) // 4
    missing = sorted({int(y) for y in years} - set(spec.budget_usd_per_year))
    if missing:
        raise AccelsimError.single(where, "plan.budget_usd_per_year",
                                   f"no budget for {', '.join(map(str, missing))}; expected "
                                   "one per year of the horizon")
    supply = np.zeros((len(refs), Q))
    for i, ref in enumerate(refs):
        r = rows[ref]
        d = spec.deliveries.get(ref)
        if d is None:
            per_q = r.max_units if np.isfinite(r.max_units) else 1e12
            first = (r.available_from - spec.start) * 4
            supply[i] = np.where(np.arange(Q) >= first, per_q, 0.0)
            continue
        try:
            lo = quarter_index(d.start, spec.start) if d.start else -(10**6)
            hi = quarter_index(d.end, spec.start) if d.end else 10**6
        except ValueError as exc:
            raise AccelsimError.single(where, f"plan.deliveries.{ref}", str(exc)) from None
        lo = max(lo, (r.available_from - spec.start) * 4)
        q = np.arange(Q)
        supply[i] = np.where((q >= lo) & (q <= hi), d.units_per_quarter, 0.0)
    growth = np.array([spec.demand_growth_per_quarter.get(w, 0.0) for w in W])
    dem = np.array([need[w] for w in W])[:, None] * (1 + growth[:, None]) ** np.arange(Q)
    total_pools = sum(p.usd for p in sc.budget.pools.values())

    def per(field: str) -> np.ndarray:
        return np.array([[getattr(rows[r], field).get(w, 0.0) for w in W] for r in refs])

    from accelsim.cost import capital_recovery_factor

    region_of = [sc.budget.pools[rows[r].pool].region for r in refs]
    builds = {k: Build(reg.facility_built_mw * 1e6,
                       reg.power_capacity_mw * 1e6 if reg.power_capacity_mw else None,
                       reg.facility_build_quarters,
                       reg.facility_capex_usd_per_mw / 1e6 / reg.pue)
              for k, reg in sc.regions.items() if reg.facility_built_mw is not None}
    crf = float(capital_recovery_factor(sc.finance.cost_of_capital, sc.finance.facility_years))
    wall = per("wall_power_W")
    # Owned facilities are paid by the build variables, not by the devices' opex.
    owned_per_W = np.array([builds[g].usd_per_W * crf if g in builds else 0.0 for g in region_of])
    opex = per("opex_usd_per_year") - wall * owned_per_W[:, None]
    tco = per("tco_usd_per_year") - wall * owned_per_W[:, None]
    return PlanProblem(
        devices=[rows[r].device for r in refs], workloads=W,
        capex=np.array([rows[r].capex_usd for r in refs]), opex=opex,
        tco=tco, power=wall, thr=per("throughput"),
        demand=dem, supply=supply, pool_of=[rows[r].pool for r in refs],
        pool_share={k: p.usd / total_pools for k, p in sc.budget.pools.items()},
        budget=np.array([spec.budget_usd_per_year[int(y)] for y in years]), year_of=years,
        region_of=region_of,
        region_caps_W={k: reg.power_capacity_mw * 1e6 for k, reg in sc.regions.items()
                       if reg.power_capacity_mw is not None},
        power_cap_W=sc.power_cap_mw * 1e6 if sc.power_cap_mw else None,
        server=sc.server_chips, rate=sc.finance.cost_of_capital,
        life_years=sc.finance.years, builds=builds, facility_years=sc.finance.facility_years)


def solve_plan(p: PlanProblem, time_limit_s: float | None = None) -> dict[str, Any]:
    """Solve the plan MILP (see the module docstring)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import lil_matrix

    from accelsim.optimize.milp import quiet_solver

    D, W, Q = len(p.devices), len(p.workloads), p.demand.shape[1]
    R = list(p.builds)
    nx, nu, nb = D * W * Q, W * Q, len(R) * Q
    n = nx + nu + nb

    def xi(d: int, w: int, q: int) -> int:
        return (d * W + w) * Q + q

    def ui(w: int, q: int) -> int:
        return nx + w * Q + q

    def bi(r: int, q: int) -> int:
        return nx + nu + r * Q + q

    disc = (1 + p.rate) ** (-np.arange(Q) / 4)
    age_end = (Q - np.arange(Q)) / 4  # years each delivery has aged at the horizon's end
    residual = np.clip(1 - age_end / p.life_years, 0, 1) * (1 + p.rate) ** (-Q / 4)
    c = np.zeros(n)
    for d in range(D):
        for w in range(W):
            for q in range(Q):
                # capex now, residual back at the end, opex of every later quarter
                later = disc[q:].sum() / 4
                c[xi(d, w, q)] = p.server * (p.capex[d] * (disc[q] - residual[q])
                                             + p.opex[d, w] * later)
    unit_tco = np.where(p.thr > 0, p.tco / np.maximum(p.thr, 1e-300), np.inf)
    for w in range(W):
        best = float(np.min(unit_tco[:, w])) if np.isfinite(unit_tco[:, w]).any() else 1.0
        for q in range(Q):
            c[ui(w, q)] = PENALTY * best * p.demand[w, q] * disc[q] / 4
    facility_residual = (np.clip(1 - age_end / p.facility_years, 0, 1)
                         * (1 + p.rate) ** (-Q / 4))
    for r, region in enumerate(R):  # a build is paid when started, less its residual value
        c[[bi(r, q) for q in range(Q)]] = p.builds[region].usd_per_W * (disc - facility_residual)
    lb: list[float] = []
    ub_rows: list[float] = []
    A = lil_matrix((W * Q + D * Q + Q * (1 + len(p.region_caps_W)) + len(set(p.year_of))
                    * (1 + len(p.pool_share)) + len(R) * (Q + 1), n))
    k = 0
    for w in range(W):  # demand every quarter
        for q in range(Q):
            for d in range(D):
                if p.thr[d, w] > 0:
                    for q2 in range(q + 1):
                        A[k, xi(d, w, q2)] = p.thr[d, w] * p.server
            A[k, ui(w, q)] = p.demand[w, q]
            lb.append(p.demand[w, q])
            ub_rows.append(np.inf)
            k += 1
    for d in range(D):  # deliveries
        for q in range(Q):
            for w in range(W):
                A[k, xi(d, w, q)] = p.server
            lb.append(-np.inf)
            ub_rows.append(p.supply[d, q])
            k += 1
    caps = ([("power cap", None, p.power_cap_W)] if p.power_cap_W is not None else []) + [
        (f"power in {r}", r, cap) for r, cap in p.region_caps_W.items()]
    for q in range(Q):  # facility power of the installed fleet
        for _, region, cap in caps:
            for d in range(D):
                if region is None or p.region_of[d] == region:
                    for w in range(W):
                        for q2 in range(q + 1):
                            A[k, xi(d, w, q2)] = p.power[d, w] * p.server
            lb.append(-np.inf)
            ub_rows.append(cap)
            k += 1
    for r, region in enumerate(R):  # owned facilities: what is built and powered by q
        built, cap, lag, _ = p.builds[region]
        for q in range(Q):
            for d in range(D):
                if p.region_of[d] == region:
                    for w in range(W):
                        for q2 in range(q + 1):
                            A[k, xi(d, w, q2)] = p.power[d, w] * p.server
            for q2 in range(q - lag + 1):
                A[k, bi(r, q2)] = -1.0
            lb.append(-np.inf)
            ub_rows.append(built)
            k += 1
        for q in range(Q):
            A[k, bi(r, q)] = 1.0
        lb.append(0.0)
        ub_rows.append(np.inf if cap is None else max(cap - built, 0.0))
        k += 1
    for y in sorted(set(p.year_of)):  # yearly budgets, total and per pool
        qs = [q for q in range(Q) if p.year_of[q] == y]
        budget = float(p.budget[qs[0]])
        for pool in [None, *p.pool_share]:
            for d in range(D):
                if pool is None or p.pool_of[d] == pool:
                    for w in range(W):
                        for q in qs:
                            A[k, xi(d, w, q)] = p.capex[d] * p.server
            lb.append(-np.inf)
            ub_rows.append(budget if pool is None else budget * p.pool_share[pool])
            k += 1
    A = A[:k].tocsr()
    ub = np.full(n, np.inf)
    ub[nx:nx + nu] = 1.0
    for d in range(D):
        for w in range(W):
            for q in range(Q):
                if p.thr[d, w] <= 0 or p.supply[d, q] <= 0:
                    ub[xi(d, w, q)] = 0.0
                else:
                    ub[xi(d, w, q)] = np.floor(p.supply[d, q] / p.server)
    integrality = np.concatenate([np.ones(nx), np.zeros(nu + nb)])
    with quiet_solver():
        res = milp(c, constraints=LinearConstraint(A, np.asarray(lb), np.asarray(ub_rows)),
                   integrality=integrality, bounds=Bounds(np.zeros(n), ub),
                   options={"time_limit": time_limit_s or TIME_LIMIT_S,
                            "mip_rel_gap": MIP_GAP})
    if res.x is None:
        raise AccelsimError.single("plan", "plan", f"no plan found: {res.message}")
    x = np.round(res.x[:nx]).reshape(D, W, Q)
    u = res.x[nx:nx + nu].reshape(W, Q)
    b = res.x[nx + nu:].reshape(len(R), Q)
    installed = np.cumsum(x, axis=2)
    cap = np.einsum("dwq,dw->wq", installed, p.thr) * p.server
    quarters = []
    for q in range(Q):
        year, qq = int(p.year_of[q]), q % 4 + 1
        quarters.append({
            "quarter": f"{year}Q{qq}",
            "delivered": {p.devices[d]: int(x[d, :, q].sum() * p.server) for d in range(D)
                          if x[d, :, q].sum() > 0},
            "installed": {p.devices[d]: int(installed[d, :, q].sum() * p.server)
                          for d in range(D) if installed[d, :, q].sum() > 0},
            "demand": {w: float(p.demand[i, q]) for i, w in enumerate(p.workloads)},
            "capacity": {w: float(cap[i, q]) for i, w in enumerate(p.workloads)},
            "served_fraction": {w: float(min(1.0, cap[i, q] / p.demand[i, q]))
                                for i, w in enumerate(p.workloads)},
            "capex_usd": float(np.sum(x[:, :, q].sum(axis=1) * p.capex) * p.server),
            "power_MW": float(np.sum(installed[:, :, q] * p.power) * p.server / 1e6),
            "region_power_MW": {g: float(sum(np.sum(installed[d, :, q] * p.power[d])
                                             for d in range(D) if p.region_of[d] == g)
                                         * p.server / 1e6) for g in dict.fromkeys(p.region_of)},
            "facility_started_MW": {g: float(b[r, q] / 1e6) for r, g in enumerate(R)
                                    if b[r, q] > 1e-3},
            "facility_MW": {g: float(p.builds[g].built_W / 1e6
                                     + b[r, :max(q - p.builds[g].lag_q + 1, 0)].sum() / 1e6)
                            for r, g in enumerate(R)},
        })
    spend = {int(y): float(sum(qt["capex_usd"] for qt, yy in zip(quarters, p.year_of,
                                                                     strict=True) if yy == y))
             for y in sorted(set(p.year_of))}
    return {
        "quarters": quarters, "capex_usd_by_year": spend,
        "cost_pv_usd": float(c[:nx] @ res.x[:nx] + c[nx + nu:] @ res.x[nx + nu:]),
        "objective_usd": float(res.fun),  # the present cost plus the unserved penalty
        "facility_capex_usd": {g: float(b[r].sum() * p.builds[g].usd_per_W)
                               for r, g in enumerate(R)},
        "unserved_quarters": sum(1 for q in range(Q) if u[:, q].max() > 1e-6),
        "solver": res.message, "proven_optimal": bool(res.status == 0),
        "mip_gap": float(getattr(res, "mip_gap", 0.0) or 0.0),
        "variables": int(n),
    }

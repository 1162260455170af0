"""Solving the plan MILP (:mod:`accelsim.plan`): the objective, the constraint rows, HiGHS,
and the plan read back quarter by quarter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.plan.problem import PENALTY, PlanProblem

__all__ = ["MIP_GAP", "PENALTY", "TIME_LIMIT_S", "solve_plan"]

TIME_LIMIT_S = 60.0
# Relative gap at which the plan counts as solved: 0.1 % of the present cost (far inside
# the uncertainty of its inputs).
MIP_GAP = 1e-3


@dataclass(frozen=True)
class Index:
    """Where each variable sits: servers x[d, c, q] delivered for column c (a workload, or
    a routed workload's size bucket: ``C`` columns, the ``W`` workloads first), unserved
    shares u[w, q], builds b[r, q], servers o[d, c, q] powered off in q, rental contracts
    z[k, w, q] (servers of offer k for workload w taken from quarter q for the offer's
    term; whole servers), PD lots v[k, q] delivered in q (whole) and pv[k, q] powered off
    in q."""

    D: int
    W: int
    Q: int
    R: int
    K: int = 0
    C: int = 0  # server columns (0: the workloads)
    P: int = 0  # PD columns

    @property
    def nc(self) -> int:
        return self.C or self.W

    @property
    def nx(self) -> int:
        return self.D * self.nc * self.Q

    @property
    def nu(self) -> int:
        return self.W * self.Q

    @property
    def nb(self) -> int:
        return self.R * self.Q

    @property
    def nz(self) -> int:
        return self.K * self.W * self.Q

    @property
    def nv(self) -> int:
        return self.P * self.Q

    @property
    def n(self) -> int:
        return self.nx + self.nu + self.nb + self.nx + self.nz + 2 * self.nv

    def x(self, d: int, w: int, q: int) -> int:
        return (d * self.nc + w) * self.Q + q

    def u(self, w: int, q: int) -> int:
        return self.nx + w * self.Q + q

    def b(self, r: int, q: int) -> int:
        return self.nx + self.nu + r * self.Q + q

    def o(self, d: int, w: int, q: int) -> int:
        return self.nx + self.nu + self.nb + (d * self.nc + w) * self.Q + q

    def z(self, k: int, w: int, q: int) -> int:
        return 2 * self.nx + self.nu + self.nb + (k * self.W + w) * self.Q + q

    def v(self, k: int, q: int) -> int:
        return 2 * self.nx + self.nu + self.nb + self.nz + k * self.Q + q

    def pv(self, k: int, q: int) -> int:
        return 2 * self.nx + self.nu + self.nb + self.nz + self.nv + k * self.Q + q

    @property
    def integer(self) -> np.ndarray:
        """Whether each variable is integer: servers, rental contracts and PD lots."""
        out = np.zeros(self.n, dtype=bool)
        out[:self.nx] = True
        out[2 * self.nx + self.nu + self.nb:2 * self.nx + self.nu + self.nb + self.nz
            + self.nv] = True
        return out


def index(p: PlanProblem) -> Index:
    return Index(len(p.devices), len(p.workloads), p.demand.shape[1], len(p.builds),
                 len(p.rentals.offers) if p.rentals is not None else 0, len(p.columns),
                 len(p.pd))


def held(p: PlanProblem, k: int, q: int) -> range:
    """Quarters whose contracts of offer ``k`` are held in ``q`` (a term of ``term_q``)."""
    assert p.rentals is not None
    return range(max(0, q - int(p.rentals.term_q[k]) + 1), q + 1)


def objective(p: PlanProblem, ix: Index) -> np.ndarray:
    """Present cost per unit of every variable: a server's capex when delivered less its
    residual at the horizon's end plus its opex every later quarter; a quarter of unserved
    demand at its workload's penalty multiple (``plan.unserved_penalty``, else
    :data:`PENALTY`) x a quarter of the TCO it would take on the cheapest device the plan
    can be delivered; a build when started less its residual; a server powered off for a
    quarter less a quarter of the energy it saves (``off_saving``)."""
    Q = ix.Q
    disc = (1 + p.rate) ** (-np.arange(Q) / 4)
    age_end = (Q - np.arange(Q)) / 4  # years each delivery has aged at the horizon's end
    residual = np.clip(1 - age_end / p.life_years, 0, 1) * (1 + p.rate) ** (-Q / 4)
    c = np.zeros(ix.n)
    for d in range(ix.D):
        for w in range(ix.nc):
            for q in range(Q):
                later = disc[q:].sum() / 4
                c[ix.x(d, w, q)] = p.server * (p.capex[d] * (disc[q] - residual[q])
                                               + p.opex[d, w] * later)
    thr, tco = p.thr[:, :ix.W], p.tco[:, :ix.W]  # whole-mix serving
    unit_tco = np.where(thr > 0, tco / np.maximum(thr, 1e-300), np.inf)
    # the cheapest device the plan can get at all (a banned device is no yardstick)
    unit_tco[p.supply.sum(axis=1) <= 0] = np.inf
    mult = p.penalty if p.penalty is not None else np.full(ix.W, PENALTY)
    for w in range(ix.W):
        best = float(np.min(unit_tco[:, w])) if np.isfinite(unit_tco[:, w]).any() else 1.0
        for q in range(Q):
            c[ix.u(w, q)] = mult[w] * best * p.demand[w, q] * disc[q] / 4
    facility_residual = (np.clip(1 - age_end / p.facility_years, 0, 1)
                         * (1 + p.rate) ** (-Q / 4))
    for r, region in enumerate(p.builds):
        c[[ix.b(r, q) for q in range(Q)]] = p.builds[region].usd_per_W * (disc - facility_residual)
    if p.off_saving is not None:
        for d in range(ix.D):
            for w in range(ix.nc):
                c[[ix.o(d, w, q) for q in range(Q)]] = -p.server * p.off_saving[d, w] * disc / 4
    for k in range(ix.P):  # a PD lot: its servers' capex less residual, opex, energy saved
        assert p.pd_use is not None and p.pd_workload is not None
        use, w = p.pd_use[k] * p.server, p.pd_workload[k]
        for q in range(Q):
            later = disc[q:].sum() / 4
            c[ix.v(k, q)] = float(use @ (p.capex * (disc[q] - residual[q])
                                         + p.opex[:, w] * later))
            if p.off_saving is not None:
                c[ix.pv(k, q)] = -float(use @ p.off_saving[:, w]) * disc[q] / 4
    if p.rentals is not None:  # a contract pays every quarter of its term, past the horizon too
        for k in range(ix.K):
            L = int(p.rentals.term_q[k])
            for q in range(Q):
                paid = ((1 + p.rate) ** (-np.arange(q, q + L) / 4)).sum() / 4
                for w in range(ix.W):
                    c[ix.z(k, w, q)] = p.server * p.rentals.usd_per_year[k] * paid
    return c


def constraints(p: PlanProblem, ix: Index) -> tuple[Any, np.ndarray, np.ndarray]:
    """(A, lower, upper) of every constraint row: demand, deliveries, power caps, owned
    facilities and yearly budgets (module docstring of :mod:`accelsim.plan`)."""
    return named_constraints(p, ix)[:3]


def _when(p: PlanProblem, q: int) -> str:
    return f"{int(p.year_of[q])}Q{q % 4 + 1}"


def named_constraints(p: PlanProblem, ix: Index
                      ) -> tuple[Any, np.ndarray, np.ndarray, list[tuple[str, str, str]]]:
    """:func:`constraints` and each row's (rule, quarter or year, unit of its right-hand
    side: USD, units, W or the workload's demand)."""
    D, W, Q, R, NC = ix.D, ix.W, ix.Q, list(p.builds), ix.nc
    lb: list[float] = []
    ub: list[float] = []
    names: list[tuple[str, str, str]] = []
    served = {w: _demand_rows(p, w) for w in range(W)}
    A = _RowWriter(ix.n)
    rent = p.rentals
    k = 0

    def row(lo: float, hi: float, rule: str, when: str, unit: str) -> None:
        nonlocal k
        lb.append(lo)
        ub.append(hi)
        names.append((rule, when, unit))
        A.close_row()
        k += 1

    def installed(d: int, q: int, coef: np.ndarray) -> None:  # servers of d on in q
        for w in range(NC):
            for q2 in range(q + 1):
                A[k, ix.x(d, w, q2)] = coef[w]
            A[k, ix.o(d, w, q)] = -coef[w]
        for j in range(ix.P):  # and in the PD lots on (coef: per server on their workload)
            assert p.pd_use is not None and p.pd_workload is not None
            if p.pd_use[j, d] > 0:
                lots_on(j, q, p.pd_use[j, d] * coef[p.pd_workload[j]])

    def lots_on(j: int, q: int, coef: float) -> None:  # PD lots of column j on in q
        for q2 in range(q + 1):
            A[k, ix.v(j, q2)] += coef
        A[k, ix.pv(j, q)] -= coef

    # demand every quarter (a routed workload: each size bucket's)
    for w, rule, M in [(i, rule, M) for i in range(W) for rule, M in served[i]]:
        for q in range(Q):
            for d in range(D):
                for c_ in map(int, np.flatnonzero(M[d] > 0)):
                    for q2 in range(q + 1):
                        A[k, ix.x(d, c_, q2)] = M[d, c_] * p.server
                    A[k, ix.o(d, c_, q)] = -M[d, c_] * p.server
            if w == p.loan_to and p.loan_thr is not None:  # serving units' troughs train
                for d in range(D):
                    for w2 in range(NC):
                        lend = p.loan_thr[d, w2] * p.server
                        if lend > 0:
                            for q2 in range(q + 1):
                                A[k, ix.x(d, w2, q2)] += lend
                            A[k, ix.o(d, w2, q)] -= lend
            for j in range(ix.P):  # PD lots on serve the whole mix
                assert p.pd_workload is not None
                if p.pd_workload[j] == w:
                    lots_on(j, q, p.pd[j].lot * p.pd[j].rps)
            for r_ in range(ix.K):  # rented servers held in q
                if rent is not None and rent.thr[r_, w] > 0:
                    for q2 in held(p, r_, q):
                        A[k, ix.z(r_, w, q2)] = rent.thr[r_, w] * p.server
            A[k, ix.u(w, q)] = p.demand[w, q]
            row(p.demand[w, q], np.inf, rule, _when(p, q), "demand")
    for d in range(D):  # deliveries
        for q in range(Q):
            for w in range(NC):
                A[k, ix.x(d, w, q)] = p.server
            for j in range(ix.P):
                assert p.pd_use is not None
                if p.pd_use[j, d] > 0:
                    A[k, ix.v(j, q)] += p.pd_use[j, d] * p.server
            row(-np.inf, p.supply[d, q], f"deliveries {p.devices[d]}", _when(p, q), "units")
    for r_ in range(ix.K):  # rentals: the offer's limit on devices held at once
        assert rent is not None
        for q in range(Q):
            for w in range(W):
                for q2 in held(p, r_, q):
                    A[k, ix.z(r_, w, q2)] = p.server
            row(-np.inf, rent.supply[r_, q], f"rental {rent.offers[r_]}", _when(p, q), "units")
    caps = ([("power cap", None, p.power_cap_W)] if p.power_cap_W is not None else []) + [
        (f"power in {r}", r, cap) for r, cap in p.region_caps_W.items()]
    for q in range(Q):  # facility power of the installed fleet
        for label, region, cap in caps:
            for d in range(D):
                if region is None or p.region_of[d] == region:
                    installed(d, q, p.power[d] * p.server)
            row(-np.inf, cap, label, _when(p, q), "W")
    for r, region in enumerate(R):  # owned facilities: what is built and powered by q
        built, cap_W, lag, _ = p.builds[region]
        for q in range(Q):
            for d in range(D):
                if p.region_of[d] == region:
                    installed(d, q, p.power[d] * p.server)
            for q2 in range(q - lag + 1):
                A[k, ix.b(r, q2)] = -1.0
            row(-np.inf, built, f"facility online in {region}", _when(p, q), "W")
        for q in range(Q):
            A[k, ix.b(r, q)] = 1.0
        row(0.0, np.inf if cap_W is None else max(cap_W - built, 0.0),
            f"grid allowance for builds in {region}", "horizon", "W")
    for d in range(D):  # a server powered off is one delivered
        for w in range(NC):
            for q in range(Q):
                for q2 in range(q + 1):
                    A[k, ix.x(d, w, q2)] = 1.0
                A[k, ix.o(d, w, q)] = -1.0
                row(0.0, np.inf, f"powered off {p.devices[d]}", _when(p, q), "servers")
    for j in range(ix.P):  # a PD lot powered off is one delivered
        for q in range(Q):
            lots_on(j, q, 1.0)
            row(0.0, np.inf, f"powered off {p.pd[j].label}", _when(p, q), "servers")
    for y in sorted(set(p.year_of)):  # yearly budgets, total and per pool
        qs = [q for q in range(Q) if p.year_of[q] == y]
        budget = float(p.budget[qs[0]])
        for pool in [None, *p.pool_share]:
            for d in range(D):
                if pool is None or p.pool_of[d] == pool:
                    for w in range(NC):
                        for q in qs:
                            A[k, ix.x(d, w, q)] = p.capex[d] * p.server
                    for j in range(ix.P):
                        assert p.pd_use is not None
                        if p.pd_use[j, d] > 0:
                            for q in qs:
                                A[k, ix.v(j, q)] += p.pd_use[j, d] * p.capex[d] * p.server
            for r_ in range(ix.K):  # the rent of the year's quarters, from the offer's pool
                assert rent is not None
                if pool is None or rent.pool_of[r_] == pool:
                    for w in range(W):
                        for q in qs:
                            for q2 in held(p, r_, q):
                                A[k, ix.z(r_, w, q2)] += rent.usd_per_year[r_] / 4 * p.server
            row(-np.inf, budget if pool is None else budget * p.pool_share[pool],
                "budget total" if pool is None else f"budget pool {pool}", str(int(y)), "USD")
    return A.tocsr(), np.asarray(lb), np.asarray(ub), names


class _RowWriter:
    """The constraint matrix written one row at a time as ``A[k, j] = v`` and
    ``A[k, j] += v`` (``k`` the row being written), then as CSR: a dict per row instead of
    scipy's lil_matrix, whose every item costs microseconds (11,000 items on the seed
    plan). Entries that end at 0 are left out, as lil_matrix leaves them."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.row: dict[int, float] = {}
        self.indptr = [0]
        self.indices: list[int] = []
        self.data: list[float] = []

    def __getitem__(self, kj: tuple[int, int]) -> float:
        return self.row.get(kj[1], 0.0)

    def __setitem__(self, kj: tuple[int, int], value: float) -> None:
        self.row[kj[1]] = value

    def close_row(self) -> None:
        for j in sorted(self.row):
            if self.row[j] != 0:
                self.indices.append(j)
                self.data.append(self.row[j])
        self.indptr.append(len(self.indices))
        self.row = {}

    def tocsr(self) -> Any:
        from scipy.sparse import csr_matrix

        return csr_matrix((np.asarray(self.data, dtype=float),
                           np.asarray(self.indices, dtype=np.int32),
                           np.asarray(self.indptr, dtype=np.int32)),
                          shape=(len(self.indptr) - 1, self.n))


def _demand_rows(p: PlanProblem, w: int) -> list[tuple[str, np.ndarray]]:
    """Workload ``w``'s demand rows as (rule, throughput per server column [d, c]): one,
    ``demand <w>``, its own column at ``thr``; a routed workload one per size bucket,
    ``demand <w>[<bucket>]``, at :meth:`accelsim.optimize.problem.BucketColumns.rows_of`
    (the whole mix serves its share of the bucket; rentals serve the whole mix)."""
    M = (p.demand_rows or {}).get(w)
    if M is None:
        return [(f"demand {p.workloads[w]}", p.thr * np.eye(p.thr.shape[1])[w])]
    assert p.buckets is not None
    names = [n for n, w2 in zip(p.buckets.names, p.buckets.parent, strict=True)
             if w2 == p.workloads[w]]
    return [(f"demand {n}", M[b]) for b, n in enumerate(names)]


def bounds(p: PlanProblem, ix: Index) -> np.ndarray:
    """Upper bound of every variable: servers by the quarter's deliveries (none where a
    device gives a workload nothing), unserved shares 1 (0 for the min_cost objective),
    builds free, servers powered off by those delivered (none before the device's first
    delivery)."""
    ub = np.full(ix.n, np.inf)
    ub[ix.nx:ix.nx + ix.nu] = 1.0
    for d in range(ix.D):
        for w in range(ix.nc):
            for q in range(ix.Q):
                if p.thr[d, w] <= 0 or p.supply[d, q] <= 0:
                    ub[ix.x(d, w, q)] = 0.0
                else:
                    ub[ix.x(d, w, q)] = np.floor(p.supply[d, q] / p.server)
                if p.thr[d, w] <= 0 or p.supply[d, :q + 1].sum() <= 0:
                    ub[ix.o(d, w, q)] = 0.0
    for k in range(ix.K):
        assert p.rentals is not None
        for w in range(ix.W):
            for q in range(ix.Q):
                if p.rentals.thr[k, w] <= 0 or p.rentals.supply[k, q] <= 0:
                    ub[ix.z(k, w, q)] = 0.0
    for k in range(ix.P):  # PD lots: by each side's deliveries; off: none before the first
        assert p.pd_use is not None
        sides = p.pd_use[k] > 0
        for q in range(ix.Q):
            ub[ix.v(k, q)] = np.floor(np.min(p.supply[sides, q] / (p.pd_use[k, sides]
                                                                  * p.server)) + 1e-9)
        first = np.cumsum(ub[[ix.v(k, q) for q in range(ix.Q)]])
        ub[[ix.pv(k, q) for q in range(ix.Q)]] = np.where(first > 0, np.inf, 0.0)
    if p.objective == "min_cost":  # every workload served in every quarter
        ub[ix.nx:ix.nx + ix.nu] = 0.0
    return ub


# served_demand: the second solve keeps the first's mean unserved share to within this.
SERVED_TOL = 1e-7


def _milp(c: np.ndarray, A: Any, lb: np.ndarray, ub: np.ndarray, var_ub: np.ndarray,
          ix: Index, time_limit_s: float | None) -> Any:
    from scipy.optimize import Bounds, LinearConstraint, milp

    from accelsim.optimize.milp import quiet_solver

    with quiet_solver():
        return milp(c, constraints=LinearConstraint(A, lb, ub),
                    integrality=ix.integer.astype(float), bounds=Bounds(np.zeros(ix.n), var_ub),
                    options={"time_limit": time_limit_s or TIME_LIMIT_S, "mip_rel_gap": MIP_GAP})


def solve_plan(p: PlanProblem, time_limit_s: float | None = None) -> dict[str, Any]:
    """Solve the plan MILP with HiGHS to within :data:`MIP_GAP`; the plan by quarter, the
    spend by year and the present cost. The objective (``p.objective``): ``penalty``, the
    present cost plus the unserved demand at its penalty (:func:`objective`);
    ``served_demand``, lexicographic in two solves: the least mean unserved share over
    workloads and quarters, then the least present cost keeping it (to
    :data:`SERVED_TOL`; a row ``served floor``); ``min_cost``, the least present cost with
    no demand unserved (where that is infeasible: served_demand's plan, ``feasible``
    false and the reason). ``objective_usd`` is the penalty objective's value whatever
    the objective (plans under different objectives compare on it)."""
    from dataclasses import replace

    from scipy.sparse import csr_matrix, vstack

    ix = index(p)
    c_pen = objective(p, ix)
    us = slice(ix.nx, ix.nx + ix.nu)
    c = c_pen.copy()
    if p.objective != "penalty":
        c[us] = 0.0  # present cost only: unserved demand is ruled out or held by a row
    A, lb, ub_rows, names = named_constraints(p, ix)
    var_ub = bounds(p, ix)
    if p.objective == "served_demand":
        mean_u = np.zeros(ix.n)
        mean_u[us] = 1.0 / ix.nu
        first = _milp(mean_u, A, lb, ub_rows, var_ub, ix, time_limit_s)
        if first.x is None:
            raise AccelsimError.single("plan", "plan", f"no plan found: {first.message}")
        A = vstack([A, csr_matrix(mean_u[None, :])]).tocsr()
        lb = np.append(lb, -np.inf)
        ub_rows = np.append(ub_rows, float(first.fun) + SERVED_TOL)
        names = [*names, ("served floor", "horizon", "served")]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as beside:
        # the LP relaxation the binding rules read needs no MILP solution: it runs on
        # another thread meanwhile (HiGHS releases the GIL)
        duals = beside.submit(binding_duals, p, ix, c, A, lb, ub_rows)
        res = _milp(c, A, lb, ub_rows, var_ub, ix, time_limit_s)
    if res.x is None:
        if p.objective == "min_cost" and res.status == 2:  # infeasible: some demand short
            best = solve_plan(replace(p, objective="served_demand"), time_limit_s)
            short = sorted({f"{q['quarter']} {w} {f:.1%}" for q in best["quarters"]
                            for w, f in q["served_fraction"].items() if f < 1 - 1e-4})
            return {**best, "feasible": False,
                    "reason": "no plan serves every workload in every quarter within the "
                              "budgets, deliveries and power rules; the plan shown serves "
                              "the most (" + ", ".join(short[:6])
                              + (", ..." if len(short) > 6 else "") + " served)"}
        raise AccelsimError.single("plan", "plan", f"no plan found: {res.message}")
    res = polish(c, A, lb, ub_rows, var_ub, ix, res)
    out = readout(p, ix, c, res)
    out["objective_kind"] = p.objective
    out["objective_usd"] = float(c_pen @ res.x)  # the present cost plus the unserved penalty
    out["served_fraction_mean"] = float(np.mean([f for q in out["quarters"]
                                                 for f in q["served_fraction"].values()]))
    out["feasible"], out["reason"] = True, None
    out["binding"] = binding_rules(p, ix, c, A, lb, ub_rows, names, res.x, duals.result())
    for q in out["quarters"]:
        year = q["quarter"][:4]
        q["binds"] = [b["rule"] for b in out["binding"] if b["when"] in (q["quarter"], year)
                      and b["status"] != "short"]
        q["short"] = {b["rule"].removeprefix("demand "): b["unserved_fraction"]
                      for b in out["binding"] if b["when"] == q["quarter"]
                      and b["status"] == "short"}
    return out


def polish(c: np.ndarray, A: Any, lb: np.ndarray, ub: np.ndarray, var_ub: np.ndarray,
           ix: Index, res: Any) -> Any:
    """The MILP's servers (bought and rented) kept, its continuous variables (unserved
    shares, builds, servers powered off) re-solved as an LP to optimality: within the MIP
    gap the solver may power off half a server and leave 1e-5 of a workload unserved; the
    LP given the servers does not. ``res`` with ``x`` and ``fun`` replaced (unchanged if
    the LP fails)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    from accelsim.optimize.milp import quiet_solver

    lo = np.zeros(ix.n)
    hi = var_ub.copy()
    whole = ix.integer  # servers, rental contracts and PD lots
    lo[whole] = hi[whole] = np.round(res.x[whole])
    with quiet_solver():
        lp = milp(c, constraints=LinearConstraint(A, lb, ub), bounds=Bounds(lo, hi))
    if lp.x is None or lp.fun > res.fun + 1e-9 * abs(res.fun):
        return res
    res.x, res.fun = lp.x, lp.fun
    return res


# How a marginal value is reported, by the unit of its rule's right-hand side: (scale,
# label). Demand is per 1 % more of that quarter's demand.
MARGINAL_UNITS = {"USD": (1.0, "USD per USD"), "units": (1e3, "USD per 1,000 units"),
                  "W": (1e6, "USD per MW"), "demand": (0.01, "USD per 1 % more demand"),
                  "served": (0.01, "USD per 1 % less of the mean served share")}
# A dual this small (in its reported unit) is the solver's rounding, printed as 0.
ZERO = 1e-9


def lp_duals(c: np.ndarray, A: Any, lb: np.ndarray, ub: np.ndarray, var_ub: np.ndarray
             ) -> np.ndarray:
    """d(objective)/d(right-hand side) of every row, from the LP relaxation (HiGHS duals;
    the plan's integers are thousands of servers, so the relaxation is the MILP to within
    its gap): for a <= row the (negative) change when its limit rises by one, for a >= row
    the (positive) change when its requirement does. NaN when the LP has no solution."""
    from scipy.optimize import linprog
    from scipy.sparse import diags

    upper = np.isfinite(ub)
    sign = np.where(upper, 1.0, -1.0)
    rhs = np.where(upper, ub, -lb)
    lp = linprog(c, A_ub=(diags(sign) @ A).toarray(), b_ub=rhs,
                 bounds=list(zip(np.zeros(len(c)), var_ub, strict=True)), method="highs")
    if lp.status != 0:
        return np.full(len(rhs), np.nan)
    return np.asarray(lp.ineqlin.marginals) * sign


def binding_duals(p: PlanProblem, ix: Index, c: np.ndarray, A: Any, lb: np.ndarray,
                  ub: np.ndarray) -> np.ndarray:
    """:func:`lp_duals` of the plan's LP relaxation with the rows, not the servers' and PD
    lots' bounds, binding (what :func:`binding_rules` reads)."""
    var_ub = bounds(p, ix)
    var_ub[:ix.nx] = np.where(var_ub[:ix.nx] > 0, np.inf, 0.0)  # rows, not bounds, bind
    lots = slice(ix.v(0, 0), ix.v(0, 0) + ix.nv)  # PD lots: their deliveries rows too
    var_ub[lots] = np.where(var_ub[lots] > 0, np.inf, 0.0)
    return lp_duals(c, A, lb, ub, var_ub)


def binding_rules(p: PlanProblem, ix: Index, c: np.ndarray, A: Any, lb: np.ndarray,
                  ub: np.ndarray, names: list[tuple[str, str, str]], x: np.ndarray,
                  duals: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Every rule the plan runs into, with its marginal value: a limit with less than one
    server's worth left or a nonzero marginal value (``binds``), a demand partly unserved
    (``short``). ``marginal_usd``
    is the present cost the objective would save per unit of the limit loosened (per
    1 % more demand: what it would cost), from the LP relaxation's duals
    (:func:`binding_duals`, unless given); an absolute value below :data:`ZERO` in the
    reported unit is 0."""
    if duals is None:
        duals = binding_duals(p, ix, c, A, lb, ub)
    xi = np.concatenate([np.round(x[:ix.nx]), x[ix.nx:]])
    lhs = A @ xi
    # per row: its largest coefficient on servers (one server's worth), and the W its
    # owned facility has online (built + builds done; the build columns' terms)
    ones = abs(A[:, :ix.nx]).max(axis=1).toarray().ravel()
    builds = slice(ix.nx + ix.nu, ix.nx + ix.nu + ix.nb)
    onlines = -(A[:, builds] @ xi[builds]) + 0.0  # (+ 0.0: no -0.0)
    out: list[dict[str, Any]] = []
    for i, (rule, when, unit) in enumerate(names):
        if unit == "servers":
            continue  # bookkeeping: a server powered off is one delivered
        one = float(ones[i])
        scale, per = MARGINAL_UNITS[unit]
        if unit == "demand":
            w, q = p.workloads.index(_workload_of(p, rule.removeprefix("demand "))), _q(p, when)
            short = float(xi[ix.u(w, q)])
            if short <= 1e-6:
                continue
            value = float(duals[i]) * scale * lb[i]
            status, limit, used = "short", float(lb[i]), float(lhs[i] - short * lb[i])
        else:
            online = float(onlines[i])  # owned facilities: installed W against it
            limit, used = float(ub[i] + online), float(lhs[i] + online)
            value = -float(duals[i]) * scale
            if abs(value) < ZERO:
                value = 0.0
            if limit == 0 and value == 0:
                continue  # nothing deliverable that quarter (not yet available, banned)
            if limit - used > max(one, 1e-6 * abs(limit)) and not value:
                continue
            status, short = "binds", 0.0
        out.append({"rule": rule, "when": when, "status": status, "used": used,
                    "limit": limit, "unit": unit, "unserved_fraction": short,
                    "marginal_usd": value if np.isfinite(value) else None,
                    "marginal_per": per})
    return out


def _workload_of(p: PlanProblem, column: str) -> str:
    """The workload a server column serves (a size bucket's: its routed workload)."""
    if p.buckets is not None and column in p.buckets.names:
        return p.buckets.parent[p.buckets.names.index(column)]
    return column


def _q(p: PlanProblem, when: str) -> int:
    return (int(when[:4]) - int(p.year_of[0])) * 4 + int(when[-1]) - 1


def _routed(p: PlanProblem, ix: Index, installed: np.ndarray, rented: np.ndarray,
            cap: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per routed workload, per quarter: each size bucket's share of requests, demand,
    capacity (requests/s of that bucket the servers on serve: ``s_b x sum_{d,c} M_b[d, c]
    S on[d, c]`` plus ``s_b`` of the rented servers' and PD lots' whole-mix requests/s) and
    served share; the devices on each bucket alone or on the whole mix (rented:
    ``rent:<offer>``; PD units are in the quarter's ``pd_units``). Sets
    ``cap[w]`` to the demand mix's capacity: the scarcest bucket's, ``min_b capacity_b /
    s_b``."""
    out: dict[str, dict[str, Any]] = {}
    if p.buckets is None:
        return out
    for w, M in (p.demand_rows or {}).items():
        name = p.workloads[w]
        # rented servers and PD lots on: what cap[w] holds beyond the workload's servers
        rent = cap[w] - np.einsum("dq,d->q", installed[:, w], p.thr[:, w]) * p.server
        mine = [c for c, w2 in enumerate(p.buckets.parent) if w2 == name]
        labels = [p.buckets.names[c][len(name) + 1:-1] for c in mine]
        shares = p.buckets.shares[name]
        per_b = np.einsum("bdc,dcq->bq", M, installed) * p.server + rent  # mix rate, bucket b
        cap[w] = per_b.min(axis=0)
        out[name] = {
            "buckets": {lab: {"share": np.full(ix.Q, shares[b]),
                              "demand": shares[b] * p.demand[w],
                              "capacity": shares[b] * per_b[b],
                              "served_fraction": np.minimum(1.0, per_b[b] / p.demand[w])}
                        for b, lab in enumerate(labels)},
            "devices": {p.devices[d]: {
                "whole mix": installed[d, w] * p.server,
                **{lab: installed[d, ix.W + c] * p.server for lab, c in zip(labels, mine,
                                                                            strict=True)}}
                for d in range(ix.D)}
            | {f"rent:{o}": {"whole mix": rented[k, w] * p.server}
               for k, o in enumerate(p.rentals.offers if p.rentals is not None else [])}}
    return out


def readout(p: PlanProblem, ix: Index, c: np.ndarray, res: Any) -> dict[str, Any]:
    """The solved plan: per quarter deliveries, installed base, demand, capacity, served
    share, capex, power and facility builds; spend by year; present cost."""
    D, Q, R = ix.D, ix.Q, list(p.builds)
    nx, nu = ix.nx, ix.nu
    x = np.round(res.x[:nx]).reshape(D, ix.nc, Q)
    u = res.x[nx:nx + nu].reshape(ix.W, Q)
    b = res.x[nx + nu:nx + nu + ix.nb].reshape(len(R), Q)
    off = res.x[nx + nu + ix.nb:2 * nx + nu + ix.nb].reshape(D, ix.nc, Q)
    delivered = np.cumsum(x, axis=2)
    installed = delivered - off  # powered on
    cap = np.einsum("dwq,dw->wq", installed, p.thr) * p.server  # per server column
    if p.loan_to is not None and p.loan_thr is not None:  # powered-on serving units lend
        cap[p.loan_to] += np.einsum("dwq,dw->q", installed, p.loan_thr) * p.server
    z = np.round(res.x[2 * nx + nu + ix.nb:2 * nx + nu + ix.nb + ix.nz]).reshape(ix.K, ix.W, Q)
    # PD lots delivered, and on, per quarter; the servers of each device they hold
    first = 2 * nx + nu + ix.nb + ix.nz
    v = np.round(res.x[first:first + ix.nv]).reshape(ix.P, Q)
    lots_on = np.cumsum(v, axis=1) - res.x[first + ix.nv:first + 2 * ix.nv].reshape(ix.P, Q)
    use = p.pd_use if p.pd_use is not None else np.zeros((0, D))
    wk = np.asarray(p.pd_workload or [], dtype=int)
    rps = np.array([c.lot * c.rps for c in p.pd])
    pd_watts = (use * p.power[:, wk].T).T * p.server  # [d, k] W of one lot on, per device
    for k in range(ix.P):
        cap[wk[k]] += lots_on[k] * rps[k]
    srv_new = x.sum(axis=1) + use.T @ v  # [d, q] servers delivered
    srv_off = off.sum(axis=1) + use.T @ (np.cumsum(v, axis=1) - lots_on)
    pd_on_W = pd_watts @ lots_on  # [d, q]
    pd_capex = (use @ p.capex) * p.server @ v if ix.P else np.zeros(Q)  # [q]
    rented = np.zeros((ix.K, ix.W, Q))  # servers held in each quarter
    rent_usd = np.zeros(Q)
    for k in range(ix.K):
        assert p.rentals is not None
        for q in range(Q):
            rented[k, :, q] = z[k][:, list(held(p, k, q))].sum(axis=1)
            rent_usd[q] += rented[k, :, q].sum() * p.server * p.rentals.usd_per_year[k] / 4
        cap[:ix.W] += np.einsum("wq,w->wq", rented[k], p.rentals.thr[k]) * p.server
    routed = _routed(p, ix, installed, rented, cap)  # a routed workload's: its scarcest bucket
    quarters: list[dict[str, Any]] = []
    for q in range(Q):
        year, qq = int(p.year_of[q]), q % 4 + 1
        quarters.append({
            "quarter": f"{year}Q{qq}",
            "delivered": {p.devices[d]: int(srv_new[d, q] * p.server) for d in range(D)
                          if srv_new[d, q] > 0},
            "installed": {p.devices[d]: int(srv_new[d, :q + 1].sum() * p.server)
                          for d in range(D) if srv_new[d, :q + 1].sum() > 0},
            "powered_off": {p.devices[d]: int(np.rint(srv_off[d, q] * p.server))
                            for d in range(D) if srv_off[d, q] * p.server >= 0.5},
            "demand": {w: float(p.demand[i, q]) for i, w in enumerate(p.workloads)},
            "capacity": {w: float(cap[i, q]) for i, w in enumerate(p.workloads)},
            "served_fraction": {w: float(min(1.0, cap[i, q] / p.demand[i, q]))
                                for i, w in enumerate(p.workloads)},
            "rented": {p.rentals.offers[k]: int(np.rint(rented[k, :, q].sum() * p.server))
                       for k in range(ix.K) if p.rentals is not None
                       and rented[k, :, q].sum() * p.server >= 0.5},
            **({"routed": {w: {"buckets": {lab: {k: float(v[q]) for k, v in per.items()}
                                           for lab, per in r["buckets"].items()},
                               "devices": {dev: {lab: round(float(n[q])) for lab, n
                                                 in per.items() if n[q] >= 0.5}
                                           for dev, per in r["devices"].items()
                                           if any(n[q] >= 0.5 for n in per.values())}}
                           for w, r in routed.items()}} if routed else {}),
            "rent_usd": float(rent_usd[q]),
            "capex_usd": float(np.sum(x[:, :, q].sum(axis=1) * p.capex) * p.server
                               + pd_capex[q]),
            "power_MW": float(np.sum(installed[:, :, q] * p.power) * p.server / 1e6
                              + pd_on_W[:, q].sum() / 1e6),
            "region_power_MW": {g: float(sum(np.sum(installed[d, :, q] * p.power[d])
                                             * p.server + pd_on_W[d, q]
                                             for d in range(D) if p.region_of[d] == g) / 1e6)
                                for g in dict.fromkeys(p.region_of)},
            **({"pd_units": {c.label: {
                "delivered": int(v[k, q] * c.lot), "installed": int(v[k, :q + 1].sum() * c.lot),
                "on": float(lots_on[k, q] * c.lot),
                "devices_on": {p.devices[d]: float(lots_on[k, q] * use[k, d] * p.server)
                               for d in range(D) if use[k, d] > 0},
                "rps_per_unit": c.rps, "capacity": float(lots_on[k, q] * rps[k])}
                for k, c in enumerate(p.pd) if v[k, :q + 1].sum() > 0}} if ix.P else {}),
            "facility_started_MW": {g: float(b[r, q] / 1e6) for r, g in enumerate(R)
                                    if b[r, q] > 1e-3},
            "facility_MW": {g: float(p.builds[g].built_W / 1e6
                                     + b[r, :max(q - p.builds[g].lag_q + 1, 0)].sum() / 1e6)
                            for r, g in enumerate(R)},
        })
    spend = {int(y): float(sum(qt["capex_usd"] for qt, yy in zip(quarters, p.year_of,
                                                                     strict=True) if yy == y))
             for y in sorted(set(p.year_of))}
    rent_by_year = {int(y): float(sum(rent_usd[q] for q in range(Q) if p.year_of[q] == y))
                    for y in sorted(set(p.year_of))}
    return {
        "quarters": quarters, "capex_usd_by_year": spend,
        **({"rent_usd_by_year": rent_by_year} if ix.K else {}),
        "cost_pv_usd": float(c[:nx] @ res.x[:nx] + c[nx + nu:] @ res.x[nx + nu:]),
        "objective_usd": float(res.fun),  # the present cost plus the unserved penalty
        "facility_capex_usd": {g: float(b[r].sum() * p.builds[g].usd_per_W)
                               for r, g in enumerate(R)},
        "unserved_quarters": sum(1 for q in range(Q) if u[:, q].max() > 1e-6),
        "solver": res.message, "proven_optimal": bool(res.status == 0),
        "mip_gap": float(getattr(res, "mip_gap", 0.0) or 0.0),
        "variables": int(ix.n),
    }

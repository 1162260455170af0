"""The plan's arrays (:class:`PlanProblem`) from a scenario and its device table
(``compare``'s), checked against the scenario's pools and workloads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.optimize.problem import BucketColumns, PDColumn, pd_arrays
from accelsim.plan.spec import PlanSpec, plan_problems, quarter_index
from accelsim.units import HOURS_PER_YEAR

# Unserved demand costs this many times what serving it would (a workload's default; the
# scenario's plan.unserved_penalty sets it per workload).
PENALTY = 20.0


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
    penalty: np.ndarray | None = None  # [w] unserved-demand multiple (None: PENALTY each)
    # [d, w] USD per device-year a powered-off server saves (its energy; None: nothing)
    off_saving: np.ndarray | None = None
    rentals: Rentals | None = None  # cloud capacity (None: none)
    loan_thr: np.ndarray | None = None  # [d, w] loan_to's throughput a server of w lends
    loan_to: int | None = None  # the workload serving troughs train (sharing: shared)
    # request-size routing (accelsim.optimize.problem.BucketColumns): its columns follow
    # the workloads in thr, opex, tco, power, off_saving and loan_thr ([d, W + C]), and
    # per routed workload (index) its demand rows M[b, d, W + C] (None: no routing)
    buckets: BucketColumns | None = None
    demand_rows: dict[int, np.ndarray] | None = None
    # prefill/decode units (accelsim.optimize.problem.PDColumn, sides by device name): lots
    # of whole servers, pd_use[k, d] servers of device d a lot of column k takes, serving
    # its workload pd_workload[k] (index) at lot x rps
    pd: tuple[PDColumn, ...] = ()
    pd_use: np.ndarray | None = None
    pd_workload: list[int] | None = None
    # penalty, served_demand or min_cost (accelsim.plan.spec.PlanSpec.objective)
    objective: str = "penalty"

    @property
    def columns(self) -> list[str]:
        """The server columns: the workloads, then each routed workload's size buckets."""
        return self.workloads + (self.buckets.names if self.buckets is not None else [])


@dataclass(frozen=True)
class Rentals:
    """The scenario's rental offers (:mod:`accelsim.rental`), o = offer index: rented
    servers are held quarter by quarter, for whole terms, and draw no power of ours."""

    offers: list[str]
    thr: np.ndarray  # [o, w] throughput per device (the rented device's)
    usd_per_year: np.ndarray  # [o] rent per device held a year (price x 8766)
    term_q: np.ndarray  # [o] quarters a contract runs (1 on demand; reserved: its term)
    supply: np.ndarray  # [o, q] most devices held at once (0 before the offer exists)
    pool_of: list[str]  # [o] budget pool that pays


def build(sc: Any, dev: Any, spec: PlanSpec, where: str = "plan") -> PlanProblem:
    """The plan's arrays from a scenario and its device table (``compare``'s)."""
    from accelsim.fleet import demand, device_rows

    rows = device_rows(dev)
    need = demand(sc)
    W, Q = list(need), spec.quarters
    refs = list(rows)
    probs = plan_problems(spec, refs, W, where)
    if probs:
        raise AccelsimError(probs)
    years = spec.start + np.arange(Q) // 4
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

    # request-size routing: the routed workloads' bucket columns after the workloads
    # (their opex, TCO and power the workload's), as optimize (accelsim.optimize.problem)
    from accelsim.fleet.routing import routings

    routed = routings(sc, rows)
    cols = BucketColumns.of(rows, routed)
    parent = W + cols.parent

    def per(field: str) -> np.ndarray:
        return np.array([[getattr(rows[r], field).get(w, 0.0) for w in parent] for r in refs])

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
    capex = np.array([rows[r].capex_usd for r in refs])
    # A powered-off server still pays its maintenance and the facility it sits in (rent by
    # the kW is contracted); it saves its energy: opex less those two.
    rent_per_W = np.array([(sc.regions[g].facility_usd_per_kw_year / 1e3
                            + (0.0 if g in builds else
                               sc.regions[g].facility_capex_usd_per_mw / 1e6 * crf))
                           / sc.regions[g].pue for g in region_of])
    off_saving = np.clip(opex - sc.finance.maintenance_fraction * capex[:, None]
                         - wall * rent_per_W[:, None], 0.0, None)
    thr = per("throughput")
    thr[:, len(W):] = cols.thr
    demand_rows = {W.index(w): cols.rows_of(w, W, thr[:, W.index(w)]) for w in cols.shares}
    loan = _loan(sc, rows, refs, W)
    if "loan_thr" in loan:  # bucket columns lend nothing (as in optimize)
        loan["loan_thr"] = np.pad(loan["loan_thr"], ((0, 0), (0, len(cols.names))))
    return PlanProblem(
        devices=[rows[r].device for r in refs], workloads=W,
        capex=capex, opex=opex,
        tco=tco, power=wall, thr=thr,
        demand=dem, supply=supply, pool_of=[rows[r].pool for r in refs],
        pool_share={k: p.usd / total_pools for k, p in sc.budget.pools.items()},
        budget=np.array([spec.budget_usd_per_year[int(y)] for y in years]), year_of=years,
        region_of=region_of,
        region_caps_W={k: reg.power_capacity_mw * 1e6 for k, reg in sc.regions.items()
                       if reg.power_capacity_mw is not None},
        power_cap_W=sc.power_cap_mw * 1e6 if sc.power_cap_mw else None,
        server=sc.server_chips, rate=sc.finance.cost_of_capital,
        life_years=sc.finance.years, builds=builds, facility_years=sc.finance.facility_years,
        penalty=np.array([spec.unserved_penalty.get(w, PENALTY) for w in W]),
        off_saving=off_saving, rentals=rentals_of(sc, rows, W, years), **loan,
        buckets=cols if cols.names else None, demand_rows=demand_rows or None,
        **_pd_fields(pd_arrays(rows, routed, sc.server_chips, W)), objective=spec.objective)


def _pd_fields(arrays: tuple[Any, ...]) -> dict[str, Any]:
    """:func:`pd_arrays` as the problem's ``pd``, ``pd_use`` and ``pd_workload`` fields."""
    return dict(zip(("pd", "pd_use", "pd_workload"), arrays, strict=True))


def _loan(sc: Any, rows: dict[str, Any], refs: list[str], W: list[str]) -> dict[str, Any]:
    """A shared fleet's credit: per device and serving workload, the training a unit lends
    through its troughs (:func:`accelsim.fleet.loan.unit_loan_rates`, as ``optimize``)."""
    if sc.sharing != "shared":
        return {}
    from accelsim.fleet.loan import unit_loan_rates

    tw, rates = unit_loan_rates(sc, {r: rows[r].throughput for r in refs})
    if tw is None or tw not in W:
        return {}
    return {"loan_thr": np.array([[rates[r].get(w, 0.0) for w in W] for r in refs]),
            "loan_to": W.index(tw)}


def rentals_of(sc: Any, rows: dict[str, Any], W: list[str], years: np.ndarray
               ) -> Rentals | None:
    """The plan's rental offers from the scenario's ``rentals`` and the device table."""
    from accelsim.fleet.mix import RENT, rental_rows

    rent = rental_rows(sc, rows)
    if not rent:
        return None
    names = [k.removeprefix(RENT) for k in rent]
    offers = [sc.rentals[n] for n in names]
    return Rentals(
        offers=names,
        thr=np.array([[rent[RENT + n].throughput.get(w, 0.0) for w in W] for n in names]),
        usd_per_year=np.array([o.usd_per_device_hour * HOURS_PER_YEAR for o in offers]),
        term_q=np.array([max(1, -(-o.commitment_months // 3)) for o in offers]),
        supply=np.array([[0.0 if rent[RENT + n].available_from > y else
                          (rent[RENT + n].max_units if np.isfinite(rent[RENT + n].max_units)
                           else 1e12) for y in years] for n in names]),
        pool_of=[rent[RENT + n].pool for n in names])

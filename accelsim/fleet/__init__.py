"""Fleet scenarios: a budget split into pools, regions, supply caps, named workloads and
the candidate fleet mixes. ``compare(scenario)`` prices every device for every workload
and ranks every mix against the demand; ``optimal_mix`` solves the MILP.

Modules: :mod:`.scenario` (schema, loading), :mod:`.evaluation` (devices x workloads,
full and fast, through :mod:`accelsim.workloads`), :mod:`.pricing` (TCO rows),
:mod:`.mix` (units, allocation, violations), :mod:`.ranking` (compare).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from accelsim.lazy import exports

_NAMES = {
    **dict.fromkeys(["FastEvaluator", "evaluate_devices", "evaluate_full"],
                    "accelsim.fleet.evaluation"),
    **dict.fromkeys(["DeviceRow", "Violation", "allocate", "demand", "device_rows",
                     "evaluate_fleet", "fleet_units"], "accelsim.fleet.mix"),
    "priced_rows": "accelsim.fleet.pricing",
    **dict.fromkeys(["Comparison", "compare", "rank"], "accelsim.fleet.ranking"),
    **dict.fromkeys(["Budget", "FleetMix", "Pool", "Scenario", "Supply", "load_scenario",
                     "parse_scenario"], "accelsim.fleet.scenario"),
}
__getattr__, _dir = exports(__name__, _NAMES)


def __dir__() -> list[str]:
    return sorted([*_dir(), "mix_problem", "purchase_year"])


if TYPE_CHECKING:
    from accelsim.fleet.evaluation import FastEvaluator, evaluate_devices, evaluate_full
    from accelsim.fleet.mix import (
        DeviceRow,
        Violation,
        allocate,
        demand,
        device_rows,
        evaluate_fleet,
        fleet_units,
    )
    from accelsim.fleet.pricing import priced_rows
    from accelsim.fleet.ranking import Comparison, compare, rank
    from accelsim.fleet.scenario import (
        Budget,
        FleetMix,
        Pool,
        Scenario,
        Supply,
        load_scenario,
        parse_scenario,
    )


def purchase_year(sc: Scenario, year: int | None = None, where: str = "optimize") -> int:
    """The year devices are bought in: ``year`` or the scenario's, within the years a
    scenario may name."""
    from accelsim.config import YEARS
    from accelsim.errors import AccelsimError

    if year is not None and not YEARS[0] <= year <= YEARS[1]:
        raise AccelsimError.single(where, "--year", f"expected a year in {YEARS[0]}-{YEARS[1]}, "
                                   f"got {year}")
    return year or sc.year


def mix_problem(sc: Scenario, dev: Any, year: int | None = None, where: str = "optimize"
                ) -> Any:
    """The scenario's MILP as plain data for :func:`accelsim.optimize.solve`."""
    from dataclasses import replace

    from accelsim.fleet.mix import RENT, demand, device_rows, rental_rows
    from accelsim.fleet.routing import routings
    from accelsim.optimize import build_problem
    from accelsim.units import HOURS_PER_YEAR

    year = purchase_year(sc, year, where)
    rows = device_rows(dev)
    # a rented device's budget cost is a year of its rent (accelsim.optimize.milp)
    rent = {k: replace(r, capex_usd=sc.rentals[k.removeprefix(RENT)].usd_per_device_hour
                       * HOURS_PER_YEAR) for k, r in rental_rows(sc, rows).items()}
    loan_to, loan = None, None
    if sc.sharing == "shared":  # owned serving units lend their troughs to training
        from accelsim.fleet.loan import unit_loan_rates

        loan_to, loan = unit_loan_rates(sc, {k: r.throughput for k, r in rows.items()})
    return build_problem(
        {**rows, **rent}, demand(sc), rented=set(rent),
        pool_usd={k: v.usd for k, v in sc.budget.pools.items()},
        total_usd=sc.budget.total_usd,
        power_cap_W=sc.power_cap_mw * 1e6 if sc.power_cap_mw else None,
        server=sc.server_chips, objective=sc.objective, year=year,
        region_of_pool={k: v.region for k, v in sc.budget.pools.items()},
        region_caps_W={k: r.power_capacity_mw * 1e6 for k, r in sc.regions.items()
                       if r.power_capacity_mw is not None},
        min_lot=sc.min_lot_servers, max_types=sc.max_device_types, loan=loan, loan_to=loan_to,
        routed=routings(sc, {**rows, **rent}))


__all__ = ["Budget", "Comparison", "DeviceRow", "FastEvaluator", "FleetMix", "Pool",
           "Scenario", "Supply", "Violation", "allocate", "compare", "demand", "device_rows",
           "evaluate_devices", "evaluate_fleet", "evaluate_full", "fleet_units", "load_scenario",
           "mix_problem", "parse_scenario", "priced_rows", "purchase_year", "rank"]

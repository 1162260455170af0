"""The scenario's ``plan`` block: the horizon, the budget of each year, demand growth and
deliveries per device (:mod:`accelsim.plan` solves it)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from accelsim.config import YEARS, Strict
from accelsim.errors import Problem

_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


def quarter_index(label: str, start: int) -> int:
    """``2026Q1`` -> quarters after the first quarter of ``start``."""
    m = _QUARTER.match(label)
    if not m:
        raise ValueError(f"expected a quarter like 2026Q1, got {label!r}")
    return (int(m.group(1)) - start) * 4 + int(m.group(2)) - 1


class Deliveries(Strict):
    """How many units of a device can be delivered per quarter, and between which dates."""

    units_per_quarter: int = Field(ge=0, le=100_000_000)
    """Whole units deliverable each quarter (a supply ramp: the fab's or the vendor's
    allocation)."""
    start: str | None = Field(default=None, pattern=_QUARTER.pattern)
    """First quarter with deliveries (e.g. 2026Q1: the in-house ASIC's mass production)."""
    end: str | None = Field(default=None, pattern=_QUARTER.pattern)
    """Last quarter with deliveries (e.g. an export rule taking effect after it)."""

    @model_validator(mode="after")
    def _order(self) -> Deliveries:
        if self.start and self.end and quarter_index(self.end, 0) < quarter_index(self.start, 0):
            raise ValueError(f"start ({self.start}) is after end ({self.end}): no quarter "
                             "would get deliveries; expected start <= end")
        return self


# The plan's objectives (``plan.objective``, ``accelsim plan --objective``).
PLAN_OBJECTIVES = ("penalty", "served_demand", "min_cost")


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
    unserved_penalty: dict[str, Annotated[float, Field(ge=0, le=1e4)]] = Field(
        default_factory=dict)
    """Per workload, what a quarter of its demand left unserved costs, as a multiple of
    what serving it for that quarter would cost on the cheapest device the plan can get
    (its TCO per unit of throughput); a workload not listed gets
    :data:`accelsim.plan.solve.PENALTY`. It stands for the value of the demand (ad revenue
    of a ranked feed, users of a chatbot, a model shipped later): a high multiple makes the
    plan serve the workload whenever the budget and deliveries allow."""
    deliveries: dict[str, Deliveries] = Field(default_factory=dict)
    """Per device reference, its deliveries; a device not listed gets its scenario supply
    cap per quarter from its availability year."""
    objective: Literal["penalty", "served_demand", "min_cost"] = "penalty"
    """penalty: least present cost plus the unserved demand at ``unserved_penalty``;
    served_demand: the most demand served (mean over workloads and quarters) the budgets,
    deliveries and power allow, then the least present cost that serves it; min_cost: the
    least present cost serving every workload in every quarter (infeasible where no plan
    can: the plan shown is then served_demand's). The scenario's top-level ``objective``
    is compare's and optimize's."""


def plan_problems(spec: PlanSpec, devices: list[str], workloads: list[str], file: str
                  ) -> list[Problem]:
    """What the plan block names exists in its scenario (``devices``: the pools' device
    references; ``workloads``: its workload names), every year of the horizon has a budget,
    and every delivery window meets the horizon. Run by ``validate`` and by every command
    that loads the scenario (:func:`accelsim.fleet.scenario.check_scenario`)."""
    probs: list[Problem] = []
    for ref in spec.deliveries:
        if ref not in devices:
            probs.append(Problem(file, f"plan.deliveries.{ref}", "device is in no budget "
                                 "pool; expected one of: " + ", ".join(devices)))
    for w in spec.demand_growth_per_quarter:
        if w not in workloads:
            probs.append(Problem(file, f"plan.demand_growth_per_quarter.{w}", "unknown "
                                 "workload; expected one of: " + ", ".join(workloads)))
    for w in spec.unserved_penalty:
        if w not in workloads:
            probs.append(Problem(file, f"plan.unserved_penalty.{w}", "unknown workload; "
                                 "expected one of: " + ", ".join(workloads)))
    years = range(spec.start, spec.start + (spec.quarters + 3) // 4)
    missing = [y for y in years if y not in spec.budget_usd_per_year]
    if missing:
        probs.append(Problem(file, "plan.budget_usd_per_year", f"no budget for "
                             f"{', '.join(map(str, missing))}; expected one per year of the "
                             "horizon"))
    last = f"{spec.start + (spec.quarters - 1) // 4}Q{(spec.quarters - 1) % 4 + 1}"
    for ref, d in spec.deliveries.items():
        lo = quarter_index(d.start, spec.start) if d.start else 0
        hi = quarter_index(d.end, spec.start) if d.end else spec.quarters - 1
        if hi < 0 or lo > spec.quarters - 1:
            probs.append(Problem(file, f"plan.deliveries.{ref}", f"deliveries "
                                 f"{d.start or '...'}-{d.end or '...'} fall outside the "
                                 f"plan's horizon ({spec.start}Q1-{last}); expected a window "
                                 "that meets it (units_per_quarter 0 for none)"))
    return probs

"""The scenario's ``plan`` block: the horizon, the budget of each year, demand growth and
deliveries per device (:mod:`accelsim.plan` solves it)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from accelsim.config import YEARS, Strict

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

"""Comparing fleet mixes: evaluate each against the demand and rank them.

Rank: fleets without violations first; then the objective (highest served fraction of
demand, or lowest TCO among fleets that meet demand); then lower TCO per year.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from accelsim.fleet.evaluation import Progress, evaluate_devices
from accelsim.fleet.mix import demand, device_rows, evaluate_fleet
from accelsim.fleet.pricing import rental_table
from accelsim.fleet.scenario import Scenario


@dataclass
class Comparison:
    devices: pd.DataFrame
    fleets: list[dict[str, Any]]
    demand: dict[str, float]
    rentals: list[dict[str, Any]] = field(default_factory=list)
    """Rent versus buy per rental offer (:func:`accelsim.fleet.pricing.rental_table`)."""


def rank(sc: Scenario, fleets: list[dict[str, Any]]) -> None:
    """Set ``rank`` (1 = best) on every fleet result."""

    def key(f: dict[str, Any]) -> tuple[bool, float, float]:
        obj = -f["objective"] if sc.objective == "served_demand" else f["objective"]
        return (bool(f["violations"]), obj, f["tco_usd_per_year"])

    for i, f in enumerate(sorted(fleets, key=key), start=1):
        f["rank"] = i


def compare(sc: Scenario, progress: Progress | None = None,
            dev_table: pd.DataFrame | None = None) -> Comparison:
    """Price every device for every workload and rank every fleet mix against the demand."""
    table = dev_table if dev_table is not None else evaluate_devices(sc, progress)
    rows = device_rows(table)
    fleets = [evaluate_fleet(sc, mix, rows) for mix in sc.fleets]
    rank(sc, fleets)
    return Comparison(table, fleets, demand(sc), rental_table(sc, table))

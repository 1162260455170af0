"""Total cost of ownership per device-hour, from a device profile and a region.

  capex            = price + server/host overhead + network            (per device, USD)
  annual capex     = capex * CRF(r, n),  CRF = r (1+r)^n / ((1+r)^n - 1)   (r = 0: capex / n)
  power            = idle + u * (TDP - idle)                              (W, u = utilisation)
  annual energy    = power * PUE * 8766 h * USD/kWh / 1000
  annual maint.    = maintenance_fraction * capex
  annual facility  = facility_usd_per_kw_year * TDP * PUE / 1000
  USD per hour     = (annual capex + energy + maintenance + facility) / 8766

Default constants and their sources (shared/reference/device_specs.md, "Cost constants"):
depreciation 5-6 years (10-K filings of Microsoft, Alphabet, Amazon, Meta); PUE 1.58 global
average (Uptime Institute 2023), < 1.3 for new large Chinese data centres (policy);
electricity ~USD 0.056/kWh in western Chinese hubs, ~0.091 US average (EIA).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from accelsim.config import Strict
from accelsim.devices import DeviceSpec
from accelsim.errors import AccelsimError

HOURS_PER_YEAR = 8766.0  # 365.25 days


class Region(Strict):
    """Where devices run: energy price and power usage effectiveness."""

    usd_per_kwh: float = Field(gt=0, le=2.0)
    """Electricity price, USD/kWh."""
    pue: float = Field(ge=1.0, le=3.0)
    """Power usage effectiveness: facility power over IT power."""
    facility_usd_per_kw_year: float = Field(default=0.0, ge=0, le=100_000)
    """Facility cost per kW of IT load per year (space, cooling), USD."""
    source: str = ""
    """Where the region's numbers come from."""


class Finance(Strict):
    years: float = Field(default=5.0, gt=0, le=20)
    """Depreciation period of the hardware, years."""
    cost_of_capital: float = Field(default=0.0, ge=0, le=1)
    """Annual cost of capital; capex is annualised with the capital recovery factor."""
    maintenance_fraction: float = Field(default=0.03, ge=0, le=1)
    """Maintenance and support per year, as a fraction of capex."""


def capital_recovery_factor(rate: Any, years: Any) -> Any:
    """Annual payment per dollar of capex: r (1+r)^n / ((1+r)^n - 1); 1/n when r = 0."""
    r = np.asarray(rate, dtype=float)
    n = np.asarray(years, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (1 + r) ** n
        crf = np.where(r > 0, r * g / (g - 1), 1.0 / n)
    return crf


def capex_usd(spec: DeviceSpec) -> float:
    return spec.price_usd + spec.server_overhead_usd + spec.network_usd


def tco(spec: DeviceSpec, region: Region, finance: Finance, utilization: Any = 1.0
        ) -> dict[str, Any]:
    """Per-device annual costs (USD/year) and USD per device-hour, with the breakdown.
    ``utilization`` (0..1) may be an array; the result broadcasts."""
    u = np.asarray(utilization, dtype=float)
    if np.any(u < 0) or np.any(u > 1 + 1e-9):
        raise AccelsimError.single("cost", "utilization",
                                   f"expected a fraction in [0, 1], got {u.min():g}..{u.max():g}")
    u = np.minimum(u, 1.0)  # rounding only
    capex = capex_usd(spec)
    annual_capex = capex * capital_recovery_factor(finance.cost_of_capital, finance.years)
    power_W = spec.idle_W + u * (spec.tdp_W - spec.idle_W)
    energy = power_W * region.pue * HOURS_PER_YEAR * region.usd_per_kwh / 1000.0
    maint = finance.maintenance_fraction * capex
    facility = region.facility_usd_per_kw_year * spec.tdp_W * region.pue / 1000.0
    annual = annual_capex + energy + maint + facility
    return {
        "capex_usd": capex,
        "annual_capex_usd": annual_capex,
        "energy_usd_per_year": energy,
        "maintenance_usd_per_year": maint,
        "facility_usd_per_year": facility,
        "opex_usd_per_year": energy + maint + facility,
        "tco_usd_per_year": annual,
        "usd_per_hour": annual / HOURS_PER_YEAR,
        "power_W": power_W,
        "wall_power_W": power_W * region.pue,
    }

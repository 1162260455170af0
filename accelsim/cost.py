"""Total cost of ownership per device-hour, from a device profile and a region.

  capex            = price + server/host overhead + network            (per device, USD)
  annual capex     = capex * CRF(r, n),  CRF = r (1+r)^n / ((1+r)^n - 1)   (r = 0: capex / n)
  IT power         = idle + u * (TDP - idle) + host + network             (W, u = utilisation)
  peak IT power    = TDP + host + network        (what the facility is built and connected for)
  facility power   = peak IT power * PUE         (the MW a fleet needs from the grid)
  annual energy    = IT power * PUE * 8766 h * USD/kWh / 1000
  annual maint.    = maintenance_fraction * capex
  annual facility  = (facility_capex_usd_per_mw * CRF(r, facility_years) / 1000
                      + facility_usd_per_kw_year) * peak IT power / 1000
  USD per hour     = (annual capex + energy + maintenance + facility) / 8766

Default constants and their sources (shared/reference/device_specs.md, "Cost constants"):
depreciation 5-6 years (10-K filings of Microsoft, Alphabet, Amazon, Meta); PUE 1.58 global
average (Uptime Institute 2023), < 1.3 for new large Chinese data centres (policy);
electricity ~USD 0.056/kWh in western Chinese hubs, ~0.091 US average (EIA).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, model_validator

from accelsim.config import Strict
from accelsim.devices import DeviceSpec
from accelsim.errors import AccelsimError
from accelsim.units import HOURS_PER_YEAR


class Region(Strict):
    """Where devices run: energy price and power usage effectiveness."""

    usd_per_kwh: float = Field(gt=0, le=2.0)
    """Electricity price, USD/kWh."""
    pue: float = Field(ge=1.0, le=3.0)
    """Power usage effectiveness: facility power over IT power."""
    facility_usd_per_kw_year: float = Field(default=0.0, ge=0, le=100_000)
    """Facility operating cost per kW of IT capacity per year (staff, upkeep), USD."""
    facility_capex_usd_per_mw: float = Field(default=0.0, ge=0, le=1e9)
    """Cost to build a data centre per MW of IT capacity (shell, power and cooling plant),
    USD; annualised over ``finance.facility_years`` at the cost of capital."""
    power_capacity_mw: float | None = Field(default=None, gt=0, le=100_000)
    """Facility power the region can supply (grid connections), MW; a fleet drawing more
    there breaks the rule."""
    facility_built_mw: float | None = Field(default=None, ge=0, le=100_000)
    """Facility power already built and powered at a plan's start, MW (``accelsim plan``
    only). The plan may build more, up to ``power_capacity_mw``: a build started in a
    quarter powers on ``facility_build_quarters`` later and is paid for when started. Not
    given: the region is rented by the kW (facility capex annualised into every device's
    TCO, as ``compare`` does) and has no build delay."""
    facility_build_quarters: int = Field(default=0, ge=0, le=40)
    """Quarters from starting a data-centre build to first power (``accelsim plan``)."""
    source: str = ""
    """Where the region's numbers come from."""

    @model_validator(mode="after")
    def _built_within_capacity(self) -> Region:
        if (self.facility_built_mw is not None and self.power_capacity_mw is not None
                and self.facility_built_mw > self.power_capacity_mw):
            raise ValueError(f"facility_built_mw ({self.facility_built_mw:g}) must not exceed "
                             f"power_capacity_mw ({self.power_capacity_mw:g})")
        return self


class Finance(Strict):
    years: float = Field(default=5.0, gt=0, le=20)
    """Depreciation period of the hardware, years."""
    cost_of_capital: float = Field(default=0.0, ge=0, le=1)
    """Annual cost of capital; capex is annualised with the capital recovery factor."""
    maintenance_fraction: float = Field(default=0.03, ge=0, le=1)
    """Maintenance and support per year, as a fraction of capex."""
    facility_years: float = Field(default=15.0, gt=0, le=60)
    """Life of a data centre's power and cooling plant over which its capex is annualised,
    years (assumption: 15; buildings last longer, plant less)."""


def capital_recovery_factor(rate: Any, years: Any) -> Any:
    """Annual payment per dollar of capex: r (1+r)^n / ((1+r)^n - 1); 1/n when r = 0.
    ``(1+r)^n - 1`` is computed as ``expm1(n log1p(r))``, exact for tiny rates too."""
    r = np.asarray(rate, dtype=float)
    n = np.asarray(years, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.expm1(n * np.log1p(r))
        crf = np.where(r > 0, r * (1 + growth) / growth, 1.0 / n)
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
    overhead_W = spec.host_W + spec.network_W
    power_W = spec.idle_W + u * (spec.tdp_W - spec.idle_W) + overhead_W
    peak_W = spec.tdp_W + overhead_W
    energy = power_W * region.pue * HOURS_PER_YEAR * region.usd_per_kwh / 1000.0
    maint = finance.maintenance_fraction * capex
    build = region.facility_capex_usd_per_mw / 1000.0 * float(
        capital_recovery_factor(finance.cost_of_capital, finance.facility_years))
    facility = (build + region.facility_usd_per_kw_year) * peak_W / 1000.0
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
        "peak_it_power_W": peak_W,
        "wall_power_W": peak_W * region.pue,
    }


def network_cost(spec: DeviceSpec) -> dict[str, float]:
    """The fabric's capex per device (USD) and power (W), by part: priced per tier from the
    topology the device was placed in (:func:`accelsim.devices.topology.network_breakdown`: NICs,
    switch ports and optics of each scale-out tier, the scale-up share), or the profile's
    one ``network_usd`` / ``network_W`` when it sits in none (today's model, unchanged)."""
    from accelsim.devices import topology  # the topology module reads DeviceSpec

    fabric = topology.of(spec)
    if fabric is None:
        return {"network_usd": spec.network_usd, "network_W": spec.network_W}
    return {"network_usd": spec.network_usd, **topology.network_breakdown(fabric)}

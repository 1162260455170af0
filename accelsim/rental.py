"""Rent or buy: cloud capacity at an hourly price against owning the device.

An offer rents devices of a profile at ``p`` USD per device-hour, on demand (paid for the
hours used) or reserved for a term (paid for every hour of the term). The price covers the
host, network, power and the building: the cloud's, not ours.

Owning costs, per device-hour over the device's life (:func:`accelsim.cost.tco`), a fixed
part ``a`` (capex annualised with the CRF, maintenance, facility, idle and host power) and
``b`` per busy hour (the extra energy from idle to full power): ``a + b u`` at utilisation
``u``, the share of the hours the device is needed.

  cost per useful device-hour   owned  a / u + b
                                rented p (on demand),  p / u (reserved)
  break-even utilisation        u* = a / (p - b)  (on demand; renting wins below u*,
                                never breaks even when p <= b)
  break-even horizon            capacity needed for T years at utilisation u, owned without
                                resale: capex C paid up front, opex O(u) a year; rented R(u)
                                = p u 8766 (on demand) or p 8766 (reserved) a year.
                                C CRF(i, T) + O = R  ->  T* = C / (R - O)           (i = 0)
                                                         T* = -ln(1 - i C / (R - O)) / ln(1 + i)
                                Renting wins for horizons below T*; T* = inf when R - O <= i C
                                (owning never pays back). At T = the depreciation life the
                                left side is the TCO, so T* = life exactly when R equals it.

No resale value at the horizon (assumption: conservative for owning); reserved terms are
not prorated below their commitment.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from accelsim.config import YEARS, Strict
from accelsim.cost import Finance, Region, tco
from accelsim.devices import DeviceSpec
from accelsim.units import HOURS_PER_YEAR


class RentalOffer(Strict):
    """Cloud capacity of one device profile at a published hourly price."""

    device: str = Field(min_length=1)
    """The device rented: a device of the scenario's budget pools (its profile gives the
    throughput; whether it may be bought is the ``supply`` block's business)."""
    usd_per_device_hour: float = Field(gt=0, le=1000)
    """Price per device (accelerator) hour, USD, everything included."""
    term: Literal["on_demand", "reserved"] = "on_demand"
    """on_demand: paid for the hours used (AWS Capacity Blocks, booked by the day, count as
    on demand at the planner's time steps); reserved: paid for every hour of the term."""
    commitment_months: int = Field(default=0, ge=0, le=120)
    """Length of a reserved term, months (0 on demand)."""
    max_units: int | None = Field(default=None, ge=0, le=100_000_000)
    """Most devices the offer can supply at once (the cloud's availability limit)."""
    region: str
    """Region (a key of ``regions``) where the capacity sits; its spend comes from the budget
    pool of that region (export rules: a device may be rentable where it may not be bought)."""
    available_from: int | None = Field(default=None, ge=YEARS[0], le=YEARS[1])
    """First year the offer exists (default: the device's)."""
    source: str = Field(min_length=1)
    """Where the price and limit come from (URL, date)."""
    confidence: Literal["A", "B", "assumption"] = "assumption"
    """A: the provider's own price list; B: secondary report; assumption (see ``note``)."""
    note: str = ""
    """Free text: what is assumed."""

    @model_validator(mode="after")
    def _term(self) -> RentalOffer:
        if self.term == "reserved" and self.commitment_months == 0:
            raise ValueError("a reserved offer needs commitment_months > 0")
        if self.term == "on_demand" and self.commitment_months != 0:
            raise ValueError("an on_demand offer has commitment_months 0")
        return self


def owned_rate(spec: DeviceSpec, region: Region, finance: Finance) -> tuple[float, float]:
    """``(a, b)``: owning costs ``a + b u`` USD per device-hour at utilisation ``u``
    (:func:`accelsim.cost.tco` at u = 0 and u = 1; it is linear in u)."""
    per_hour = tco(spec, region, finance, np.array([0.0, 1.0]))["usd_per_hour"]
    a = float(per_hour[0])
    return a, float(per_hour[1]) - a


def owned_usd_per_useful_hour(a: float, b: float, utilization: Any) -> Any:
    """Owned USD per useful device-hour: (a + b u) / u (inf at u = 0)."""
    u = np.asarray(utilization, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(u > 0, a / np.where(u > 0, u, 1.0) + b, np.inf)


def rented_usd_per_useful_hour(price: float, term: str, utilization: Any) -> Any:
    """Rented USD per useful device-hour: p on demand, p / u reserved."""
    u = np.asarray(utilization, dtype=float)
    if term == "on_demand":
        return np.full_like(u, price)
    with np.errstate(divide="ignore"):
        return np.where(u > 0, price / np.where(u > 0, u, 1.0), np.inf)


def break_even_utilization(a: float, b: float, price: float) -> float:
    """On demand: the utilisation where owning and renting cost the same, a / (p - b);
    renting wins below it (above 1: renting wins at any load; inf: p <= b)."""
    return a / (price - b) if price > b else math.inf


def rent_usd_per_year(price: float, term: str, utilization: float) -> float:
    """Rent for one device's worth of need for a year: p u 8766 on demand, p 8766 reserved."""
    return price * HOURS_PER_YEAR * (utilization if term == "on_demand" else 1.0)


def break_even_horizon_years(capex_usd: float, opex_usd_per_year: float,
                             rent_per_year: float, rate: float) -> float:
    """Years of need above which buying beats renting (module docstring): C / (R - O) at
    rate 0, -ln(1 - i C / (R - O)) / ln(1 + i) above; inf when owning never pays back."""
    margin = rent_per_year - opex_usd_per_year
    if margin <= 0:
        return math.inf
    if rate <= 0:
        return capex_usd / margin
    x = rate * capex_usd / margin
    if x >= 1:
        return math.inf
    return -math.log1p(-x) / math.log1p(rate)


def rent_vs_buy(offer: RentalOffer, spec: DeviceSpec, region: Region, finance: Finance,
                utilization: float = 1.0) -> dict[str, float]:
    """The offer against owning the device in ``region`` (where it would be bought): owned
    USD per device-hour at full use, rent over owned, break-even utilisation (on demand;
    nan for reserved terms, paid whether used or not) and break-even horizon at
    ``utilization`` (years; renting wins below)."""
    a, b = owned_rate(spec, region, finance)
    cost = tco(spec, region, finance, utilization)
    rent_y = rent_usd_per_year(offer.usd_per_device_hour, offer.term, utilization)
    horizon = break_even_horizon_years(float(cost["capex_usd"]),
                                       float(cost["opex_usd_per_year"]), rent_y,
                                       finance.cost_of_capital)
    owned_full = a + b
    return {
        "owned_usd_per_hour": owned_full,
        "rent_over_owned": offer.usd_per_device_hour / owned_full,
        "break_even_utilization": (break_even_utilization(a, b, offer.usd_per_device_hour)
                                   if offer.term == "on_demand" else math.nan),
        "break_even_horizon_years": horizon,
    }

"""The fleet scenario file: a budget split into pools, regions, supply caps, named
workloads (any kinds from :mod:`accelsim.workloads`) and the candidate fleet mixes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from accelsim import refs, workloads
from accelsim.config import YEARS, Strict, read_yaml, validate
from accelsim.cost import Finance, Region
from accelsim.devices import load_device
from accelsim.errors import AccelsimError, Problem
from accelsim.plan.spec import PlanSpec, plan_problems
from accelsim.rental import RentalOffer
from accelsim.workloads.base import EvalContext


class Pool(Strict):
    usd: float = Field(gt=0, le=1e13)
    """Budget of this pool, USD."""
    devices: list[str] = Field(min_length=1)
    """Devices this pool may buy (catalog names or paths)."""
    region: str
    """Region (a key of regions) where the pool's devices run."""


class Budget(Strict):
    total_usd: float = Field(gt=0, le=1e13)
    """Total budget over all pools, USD."""
    pools: dict[str, Pool] = Field(min_length=1)
    """Named budget pools (e.g. domestic, overseas)."""


class Supply(Strict):
    max_units: int | None = Field(default=None, ge=0, le=100_000_000)
    """Most units that can be bought (0 = banned)."""
    available_from: int | None = Field(default=None, ge=YEARS[0], le=YEARS[1])
    """First year the device can be bought (overrides the profile's)."""


class FleetMix(Strict):
    name: str = Field(min_length=1)
    """Unique name of the fleet mix."""
    year: int | None = Field(default=None, ge=YEARS[0], le=YEARS[1])
    """Purchase year (default: the scenario's)."""
    description: str = ""
    """Free text."""
    spend_usd: dict[str, float] | None = None
    """USD spent on each device (units = spend / unit capex); or give units."""
    units: dict[str, int] | None = None
    """Units of each device; or give spend_usd."""
    rent: dict[str, int] = Field(default_factory=dict)
    """Devices rented from each offer of ``rentals`` (by offer name), held all year."""

    @model_validator(mode="after")
    def _one(self) -> FleetMix:
        if (self.spend_usd is None) == (self.units is None):
            raise ValueError("give exactly one of spend_usd or units")
        vals = list((self.spend_usd or self.units or {}).values())
        if any(v < 0 for v in [*vals, *self.rent.values()]):
            raise ValueError("spend, units and rent must be >= 0")
        return self


class Scenario(Strict):
    """``workloads`` maps a name to a block of any registered kind: ``kind: training`` or
    ``kind: recsys_serving`` (a block named after its kind, or ``serving``, may omit it)."""

    name: str
    """Name of the scenario."""
    description: str = ""
    """Free text."""
    year: int = Field(ge=YEARS[0], le=YEARS[1])
    """Purchase year of the fleets (availability and supply rules)."""
    objective: Literal["served_demand", "min_cost"] = "served_demand"
    """served_demand (fraction of demand met; ties: lower TCO) or min_cost (TCO meeting all
    demand)."""
    finance: Finance = Finance()
    """Depreciation, cost of capital, maintenance."""
    budget: Budget
    """Total budget and its pools."""
    regions: dict[str, Region] = Field(min_length=1)
    """Where devices run: energy price, PUE, facility cost."""
    supply: dict[str, Supply] = Field(default_factory=dict)
    """Caps and availability per device."""
    power_cap_mw: float | None = Field(default=None, gt=0, le=100_000)
    """Most facility power the fleet may draw, MW."""
    server_chips: int = Field(default=8, ge=1, le=1024)
    """Accelerators per server (the optimiser buys whole servers)."""
    sharing: Literal["dedicated", "shared"] = "dedicated"
    """dedicated: training runs on its own devices only; shared: it also runs preemptibly on
    the serving units idle in each hour of the daily profiles (:mod:`accelsim.sharing`),
    paying a checkpoint and a restart for every resize. Either way ``compare`` reports what
    the troughs are worth (``loan_*`` fields)."""
    sharing_min_devices: int = Field(default=1, ge=1, le=1_000_000)
    """Fewest devices a loaned training job runs on (one data-parallel replica of its layout:
    a smaller job cannot hold the model); an hour with fewer idle serving units of a device
    type lends nothing. 1: no minimum (assumption: a scenario states its model's replica;
    the seed's GPT-3 175B is tensor-parallel 8 x pipeline-parallel 16 = 128 GPUs a replica,
    Narayanan et al., SC21, arXiv 2104.04473, Table 1)."""
    min_lot_servers: int = Field(default=32, ge=0, le=100_000)
    """Fewest servers of a device ``optimize`` buys if it buys any (0: no minimum). 32:
    NVIDIA builds clusters from scalable units of 32 eight-GPU nodes (HGX AI Factory
    reference architecture, 32/64/128-node design points,
    docs.nvidia.com/reference-architectures/hgx-ai-factory-h100-h200-b200); the same lot
    for other vendors is an assumption: below it a device's support contract, spares and
    software port serve a handful of servers."""
    max_device_types: int | None = Field(default=None, ge=1, le=100)
    """Most device types ``optimize`` buys (a vendor count: each type brings its software
    port, support and spares); None: no limit."""
    workloads: dict[str, Any] = Field(min_length=1)
    """Named workloads, each a block of a registered kind (training, recsys_serving)."""
    rentals: dict[str, RentalOffer] = Field(default_factory=dict)
    """Cloud capacity at hourly prices, by offer name (:mod:`accelsim.rental`): another
    supply, with its own availability limit, rented by fleets (``rent``)."""
    fleets: list[FleetMix] = Field(default_factory=list)
    """Candidate fleet mixes compared by 'compare'."""
    plan: PlanSpec | None = None
    """Optional multi-year plan: horizon, budget per year, demand growth, deliveries
    (``accelsim plan``)."""

    @field_validator("workloads")
    @classmethod
    def _workloads(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        file = (info.context or {}).get("file", "scenario")
        return {str(name): workloads.parse(str(name), block, file) for name, block in v.items()}

    @field_validator("fleets")
    @classmethod
    def _unique_fleets(cls, v: list[FleetMix]) -> list[FleetMix]:
        names = [f.name for f in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"fleet names must be unique; repeated: {', '.join(dup)}")
        return v

    def pool_of(self) -> dict[str, str]:
        """Device reference -> its budget pool, in the file's order."""
        return {d: p for p, pool in self.budget.pools.items() for d in pool.devices}

    def context(self, file: str = "scenario") -> EvalContext:
        return workloads.EvalContext(server_chips=self.server_chips, file=file)

    def input_files(self) -> list[Path]:
        """Every file an evaluation of this scenario reads: device profiles, their vendors'
        default stacks, model files and the stacks the workloads name."""
        from accelsim import stacks

        files = [refs.find(ref, "devices") for ref in self.pool_of()]
        vendors = sorted({load_device(ref).spec.vendor for ref in self.pool_of()})
        files += [f for v in vendors for f in stacks.default_files(v)]
        for spec in self.workloads.values():
            files += workloads.of(spec).input_files(spec)
        return files


def check_scenario(sc: Scenario, file: str = "scenario") -> None:
    """Cross-references: devices exist, pools name known regions, fleets use pool
    devices, every workload's own files exist."""
    probs: list[Problem] = []
    owner: dict[str, str] = {}
    named: dict[str, str] = {}  # profile name -> the reference that gave it
    profiles: dict[str, Any] = {}  # profile name -> profile
    for pname, pool in sc.budget.pools.items():
        if pool.region not in sc.regions:
            probs.append(Problem(file, f"budget.pools.{pname}.region",
                                 f"unknown region '{pool.region}'; expected one of: "
                                 + ", ".join(sc.regions)))
        for i, dev in enumerate(pool.devices):
            field = f"budget.pools.{pname}.devices[{i}]"
            try:
                prof = load_device(dev, where=file, field=field)
                name = prof.name
            except AccelsimError as e:
                probs.append(Problem(file, field, e.problems[0].message))
            else:
                profiles.setdefault(name, prof)
                if name in named and named[name] != dev:
                    probs.append(Problem(file, field, f"'{dev}' is a second profile named "
                                         f"'{name}' (also '{named[name]}'); expected "
                                         "device names unique within a scenario"))
                named.setdefault(name, dev)
            if dev in owner:
                probs.append(Problem(file, field, f"'{dev}' is already in pool '{owner[dev]}'"))
            owner[dev] = pname
    for dev in sc.supply:
        if dev not in owner:
            probs.append(Problem(file, f"supply.{dev}", "device is in no budget pool"))
    for i, f in enumerate(sc.fleets):
        for dev in (f.spend_usd or f.units or {}):
            if dev not in owner:
                key = "spend_usd" if f.spend_usd is not None else "units"
                probs.append(Problem(file, f"fleets[{i}].{key}.{dev}",
                                     "device is in no budget pool; expected one of: "
                                     + ", ".join(owner)))
    for name, offer in sc.rentals.items():
        if offer.device not in owner:
            probs.append(Problem(file, f"rentals.{name}.device", f"'{offer.device}' is in no "
                                 "budget pool; expected one of: " + ", ".join(owner)))
        if offer.region not in sc.regions:
            probs.append(Problem(file, f"rentals.{name}.region", f"unknown region "
                                 f"'{offer.region}'; expected one of: " + ", ".join(sc.regions)))
        elif rental_pool(sc, offer.region) is None:
            probs.append(Problem(file, f"rentals.{name}.region", f"expected the region of "
                                 f"exactly one budget pool (its rent is paid from it), got "
                                 f"'{offer.region}'"))
    for i, f in enumerate(sc.fleets):
        for offer_name in f.rent:
            if offer_name not in sc.rentals:
                probs.append(Problem(file, f"fleets[{i}].rent.{offer_name}", "unknown offer; "
                                     "expected one of: " + (", ".join(sc.rentals) or
                                                            "(no rentals block)")))
    for name, spec in sc.workloads.items():
        probs += workloads.of(spec).check(spec, file, f"workloads.{name}")
        probs += workloads.of(spec).check_devices(spec, profiles, file, f"workloads.{name}")
    from accelsim.fleet.pd import pd_problems

    probs += pd_problems(sc, file)
    if sc.plan is not None:
        probs += plan_problems(sc.plan, list(owner), list(sc.workloads), file)
    if probs:
        raise AccelsimError(probs)


def rental_pool(sc: Scenario, region: str) -> str | None:
    """The budget pool that pays for rentals in ``region``: the one pool there, else None."""
    pools = [p for p, pool in sc.budget.pools.items() if pool.region == region]
    return pools[0] if len(pools) == 1 else None


def parse_scenario(data: dict[str, Any], file: str | Path) -> Scenario:
    """Validate a scenario mapping (no file reads beyond its workloads' kinds)."""
    return validate(Scenario, data, file)


def scenario_from(data: dict[str, Any], path: str | Path, check: bool = True,
                  where: str | None = None) -> Scenario:
    """Validate a scenario mapping read from ``path``: references to devices and models
    resolve from the file's folder; ``check`` also opens every file they name."""
    sc = parse_scenario(data, where or path)
    pools = {k: p.model_copy(update={"devices": [refs.normalize(d, path) for d in p.devices]})
             for k, p in sc.budget.pools.items()}
    wl = {name: workloads.of(spec).resolve(spec, path) for name, spec in sc.workloads.items()}
    plan = sc.plan and sc.plan.model_copy(update={"deliveries": {
        refs.normalize(d, path): v for d, v in sc.plan.deliveries.items()}})
    rentals = {k: o.model_copy(update={"device": refs.normalize(o.device, path)})
               for k, o in sc.rentals.items()}
    sc = sc.model_copy(update={"budget": sc.budget.model_copy(update={"pools": pools}),
                               "workloads": wl, "plan": plan, "rentals": rentals})
    if check:
        check_scenario(sc, str(where or path))
    return sc


def load_scenario(path: str | Path) -> Scenario:
    """Read, validate and cross-check a scenario file."""
    return scenario_from(read_yaml(path), path)

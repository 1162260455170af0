"""Fabric topology: the scale-up domain a device sits in, the scale-out tiers above it,
what the network costs per tier, and the device as the performance models see it placed
in one (:func:`apply`).

A :class:`Topology` is a YAML file in ``configs/topologies/`` (every number a
:class:`~accelsim.devices.Quantity` with its source). The bandwidths and collective times
of its fabric are in :mod:`accelsim.devices.fabric` (re-exported here: ``topology.allreduce_s``
and the rest work as before).

Network capex per device (:func:`network_capex_usd`): NICs, scale-up share, and for each
scale-out tier the switch ports and optics its links need. A rank's NIC link enters tier 1;
tier i's up-links carry 1/oversubscription of its down-links:
  links_1 = nics,  links_{i+1} = links_i / o_i;   ports = links_1 + 2 sum_{i>1} links_i;
  optics = 2 sum links (the first link copper when ``copper_first_link``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from accelsim import refs
from accelsim.config import Strict, read_yaml, validate
from accelsim.devices import Count, DeviceSpec, Fraction, NonNegative, Positive, Quantity
from accelsim.devices.fabric import (  # noqa: F401 (re-exported: topology.<name>)
    US,
    a2a_bottleneck_Bps,
    all_gather_s,
    all_to_all_s,
    allreduce_s,
    busbw_all_to_all,
    busbw_allreduce,
    crosses,
    crossings,
    domain_ranks,
    nic_Bps,
    oversubscription,
    p2p_s,
    reduce_scatter_s,
    scaleup_Bps,
)
from accelsim.errors import AccelsimError

Fabric = Literal["switch", "mesh", "torus"]


class AtLeastOne(Quantity):
    """A ratio of at least 1 (oversubscription)."""

    low = 1.0
    low_open = False


class ScaleUp(Strict):
    """The scale-up domain: devices sharing one memory-semantic fabric."""

    fabric: Fabric
    """switch (NVSwitch, UB Clos), mesh (direct links to every peer), torus (ICI)."""
    domain: Count
    """Devices in one domain."""
    links: Count
    """Scale-up links per device."""
    link_GBps: Positive
    """Bandwidth of one link, one direction, GB/s."""
    dims: list[Annotated[int, Field(ge=1, le=1024)]] | None = None
    """Torus shape (product = domain); only for fabric: torus."""
    ranks_per_device: int = Field(default=1, ge=1, le=8)
    """Collective ranks one device exposes (910C: its two dies are two ranks)."""
    latency_us: NonNegative
    """Per-step latency of a collective inside the domain (alpha), microseconds."""
    efficiency: Fraction
    """Achieved fraction of B in ring/tree collectives (bus bandwidth / link bandwidth)."""
    reduction_efficiency: Fraction | None = None
    """In-switch reduction (NVLink SHARP): its achieved fraction of B. Not given: none."""
    reduction_latency_us: NonNegative | None = None
    """Fixed time of one in-switch (NVLS) all-reduce call, microseconds; required with
    ``reduction_efficiency`` (:func:`accelsim.collectives.nccl_allreduce`)."""
    a2a_efficiency: Fraction
    """Achieved fraction of B per rank in all-to-all (MoE dispatch/combine kernels)."""
    a2a_peer_latency_us: NonNegative | None = None
    """Cost per peer of an all-to-all kernel (handshakes, per-peer queues), microseconds.
    Not given: ``latency_us``."""
    usd_per_device: NonNegative
    """Scale-up switches, cables and optics per device, USD."""
    W_per_device: NonNegative
    """Their power per device, W."""

    @model_validator(mode="after")
    def _dims(self) -> ScaleUp:
        if (self.reduction_efficiency is None) != (self.reduction_latency_us is None):
            raise ValueError("reduction_efficiency and reduction_latency_us go together "
                             "(the in-switch all-reduce's bandwidth and fixed time)")
        if self.fabric == "torus":
            if not self.dims:
                raise ValueError("a torus needs dims (its shape, e.g. [4, 4, 4])")
            if math.prod(self.dims) != int(self.domain.value):
                raise ValueError(f"dims {self.dims} multiply to {math.prod(self.dims)}, not the "
                                 f"domain ({self.domain.value:g})")
        elif self.dims:
            raise ValueError(f"dims apply to a torus only, not to fabric '{self.fabric}'")
        return self


class Tier(Strict):
    """One scale-out switching tier (leaf, spine, core)."""

    name: str = Field(min_length=1)
    """The tier's name (leaf, spine, core)."""
    reach: Count
    """Devices whose traffic meets in this tier (a leaf: its down-ports); with a
    rail-optimised layout, domains (:attr:`ScaleOut.rail_optimized`)."""
    oversubscription: AtLeastOne
    """Down-link to up-link bandwidth ratio at this tier's switches (1: non-blocking)."""


class ScaleOut(Strict):
    """The scale-out network: NICs per device and the switching tiers above them."""

    nic_Gbps: Positive
    """Line rate of one NIC port, Gb/s."""
    nics_per_device: Positive
    """NIC ports per device (a 910C: one 400 Gb/s port shared by its two dies)."""
    efficiency: Fraction
    """Achieved fraction of line rate in collectives (NCCL bus bandwidth per NIC)."""
    a2a_efficiency: Fraction
    """Achieved fraction of line rate per rank in all-to-all kernels."""
    latency_us: NonNegative
    """Per-step latency across the network (NIC, switch hops, software), microseconds."""
    rail_optimized: bool = True
    """Rank i of every domain on its own rail of leaves: same-rail traffic of tier-1 reach
    domains stays in tier 1 (a leaf's reach counts domains, not devices)."""
    tiers: list[Tier] = Field(min_length=1, max_length=4)
    """Switching tiers, leaf first."""
    nic_usd: NonNegative
    """One NIC port (adapter share), USD."""
    switch_port_usd: NonNegative
    """One switch port (a switch's price over its ports), USD."""
    optic_usd: NonNegative
    """One transceiver, USD."""
    copper_first_link: bool = False
    """The NIC-to-leaf link is copper (no optics)."""
    W_per_port: NonNegative
    """Power of one switch port with its share of the switch, W."""
    W_per_optic: NonNegative
    """Power of one transceiver, W."""


class Topology(Strict):
    """A system's fabric: the scale-up domain, the scale-out network, their sources."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    """Catalog name: lower case, digits, '.', '_' or '-' (how device profiles name it)."""
    description: str = ""
    """Free text: the system it describes."""
    sources: dict[str, str] = Field(default_factory=dict)
    """Citation keys used in the fields' sources, with the full citation."""
    scaleup: ScaleUp
    """The scale-up domain."""
    scaleout: ScaleOut
    """The scale-out network."""


# ---------------------------------------------------------------------------
# loading

def topologies_dir() -> Path:
    return refs.configs_dir() / "topologies"


def topology_names() -> list[str]:
    return sorted(p.stem for p in topologies_dir().glob("*.yaml"))


def load_topology(name_or_path: str | Path) -> Topology:
    """A catalog name (``hgx-h20-8``) or a path to a topology YAML."""
    s = str(name_or_path)
    p = Path(s) if refs.is_path(s) else topologies_dir() / f"{s}.yaml"
    if not p.is_file():
        raise AccelsimError.single(s, "topology", "topology not found; expected one of "
                                   + ", ".join(topology_names()) + " or a path")
    return _load(str(p.resolve()), p.stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _load(path: str, mtime_ns: int) -> Topology:
    return validate(Topology, read_yaml(path), refs.shown(Path(path)))


# cost and power per tier

def tier_links(t: Topology) -> list[float]:
    """Links per device entering each tier: the NICs, then 1/oversubscription of them."""
    so = t.scaleout
    links = [so.nics_per_device.value]
    for tier in so.tiers[:-1]:
        links.append(links[-1] / tier.oversubscription.value)
    return links


def network_breakdown(t: Topology) -> dict[str, float]:
    """Per-device network capex (USD) and power (W) by part (module docstring), and each
    tier's switch ports and optics (``tier.<name>.usd``: its down-ports, its up-ports and
    the optics of the links entering it)."""
    so = t.scaleout
    links = tier_links(t)
    ports = links[0] + 2 * sum(links[1:])
    optics = 2 * sum(links) - (2 * links[0] if so.copper_first_link else 0.0)
    per_tier = {}
    for i, tier in enumerate(so.tiers):  # tier i: its down-ports, the up-ports to i + 1, link i
        up = links[i + 1] if i + 1 < len(links) else 0.0
        optics_i = 0.0 if (i == 0 and so.copper_first_link) else 2 * links[i]
        per_tier[f"tier.{tier.name}.usd"] = ((links[i] + up) * so.switch_port_usd.value
                                             + optics_i * so.optic_usd.value)
    return {
        **per_tier,
        "nic_usd": links[0] * so.nic_usd.value,
        "switch_usd": ports * so.switch_port_usd.value,
        "optics_usd": optics * so.optic_usd.value,
        "scaleup_usd": t.scaleup.usd_per_device.value,
        "switch_ports": ports,
        "optics": optics,
        "network_W": ports * so.W_per_port.value + optics * so.W_per_optic.value
        + t.scaleup.W_per_device.value,
    }


def network_capex_usd(t: Topology) -> float:
    b = network_breakdown(t)
    return b["nic_usd"] + b["switch_usd"] + b["optics_usd"] + b["scaleup_usd"]


# ---------------------------------------------------------------------------
# the device's view

def of_spec(spec: DeviceSpec) -> Topology:
    """Today's one-number view of a device as a topology: a switched domain of
    ``scaleup_domain`` devices at ``scaleup_bw_Bps``, one NIC at ``scaleout_bw_Bps``, the
    profile's efficiencies, one non-blocking tier, the profile's ``network_usd`` and
    ``network_W`` as the NIC's price and power (so :func:`apply` gives the spec back)."""
    note = "the device profile's own numbers"

    def q(v: float, cls: type = NonNegative) -> Any:
        return cls(value=v, source="device profile", confidence="A", note=note)

    return Topology(
        name=f"{spec.name}-profile",
        description=f"{spec.name} as its profile states it (no topology)",
        scaleup=ScaleUp(
            fabric="switch", domain=q(spec.scaleup_domain, Count), links=q(1, Count),
            link_GBps=q(spec.scaleup_bw_Bps / 1e9, Positive),
            latency_us=q(spec.scaleup_latency_s / US), efficiency=q(spec.eff_comm, Fraction),
            reduction_efficiency=(q(spec.eff_reduction, Fraction) if spec.eff_reduction > 0
                                  else None),
            reduction_latency_us=(q(spec.reduction_latency_s / US) if spec.eff_reduction > 0
                                  else None),
            a2a_efficiency=q(spec.eff_a2a, Fraction), usd_per_device=q(0.0),
            W_per_device=q(0.0)),
        scaleout=ScaleOut(
            nic_Gbps=q(spec.scaleout_bw_Bps * 8 / 1e9, Positive),
            nics_per_device=q(1, Positive), efficiency=q(spec.eff_comm, Fraction),
            a2a_efficiency=q(spec.eff_a2a, Fraction), latency_us=q(spec.scaleout_latency_s / US),
            tiers=[Tier(name="flat", reach=q(1, Count), oversubscription=q(1.0, AtLeastOne))],
            nic_usd=q(spec.network_usd), switch_port_usd=q(0.0), optic_usd=q(0.0),
            copper_first_link=True, W_per_port=q(spec.network_W), W_per_optic=q(0.0)),
    )


def apply(spec: DeviceSpec, t: Topology, span: int | None = None,
          home: Topology | None = None) -> DeviceSpec:
    """``spec`` placed in topology ``t``, in the scalar view the performance models read:
    the domain (in devices), scale-up bandwidth per device and its efficiencies, the
    scale-out rate per device derated by the oversubscription a group of ``span`` ranks
    meets (not given: the whole network's worst) with the ratio of the two efficiencies
    folded in (the call sites multiply both links by ``eff_comm``), the latencies, and the
    fabric's capex and power per device from its tiers and its scale-up share. The
    all-to-all efficiency stays the profile's (its kernels' measured fraction, decode
    kernels included); the topology's own is for :func:`all_to_all_s`.
    A profile's ``server_overhead_usd`` holds the scale-up
    fabric it was priced with (an HGX baseboard's NVSwitches, CloudMatrix's UB): name that
    topology as ``home`` to take its share out, so the fabric is counted once.
    ``apply(s, of_spec(s))`` is ``s``."""
    su, so = t.scaleup, t.scaleout
    r = su.ranks_per_device
    e_in = su.efficiency.value
    over = float(oversubscription(t, span if span is not None else 1e18))
    out_bw = nic_Bps(t) * r * so.efficiency.value / e_in / over
    b = network_breakdown(t)
    overhead = spec.server_overhead_usd
    if home is not None:
        overhead = max(overhead - home.scaleup.usd_per_device.value, 0.0)
    return replace(
        spec,
        scaleup_bw_Bps=scaleup_Bps(t) * r,
        scaleup_domain=int(su.domain.value),
        scaleout_bw_Bps=out_bw,
        scaleup_latency_s=su.latency_us.value * US,
        scaleout_latency_s=so.latency_us.value * US,
        eff_comm=e_in,
        eff_reduction=su.reduction_efficiency.value if su.reduction_efficiency else 0.0,
        reduction_latency_s=(su.reduction_latency_us.value * US if su.reduction_latency_us
                             else spec.reduction_latency_s),  # unused without reduction
        server_overhead_usd=overhead,
        network_usd=network_capex_usd(t),
        network_W=b["network_W"],
        topology=_register(t),
    )


_APPLIED: dict[str, Topology] = {}


def _register(t: Topology) -> str:
    """Remember ``t`` under its name, so a spec can carry the name (plain data, for cache
    keys) and the physics can find the topology again (:func:`of`)."""
    _APPLIED[t.name] = t
    return t.name


def of(spec: DeviceSpec) -> Topology | None:
    """The topology ``spec`` was placed in by :func:`apply`, or None (today's model)."""
    if spec.topology is None:
        return None
    return _APPLIED.get(spec.topology) or load_topology(spec.topology)


def device_view(spec: DeviceSpec, topology: str | Path | Topology | None) -> DeviceSpec:
    """``spec`` in the named topology, or unchanged when none is named (today's model)."""
    if topology is None:
        return spec
    t = topology if isinstance(topology, Topology) else load_topology(topology)
    return apply(spec, t)

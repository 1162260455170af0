"""Fabric topology: the scale-up domain a device sits in, the scale-out tiers above it, the
collectives each runs and what the network costs per tier.

A :class:`Topology` is a YAML file in ``configs/topologies/`` (every number a
:class:`~accelsim.devices.Quantity` with its source). The functions here are pure and take
numpy arrays (:mod:`accelsim.xp`); all sizes are bytes, times seconds, bandwidths bytes/s
per rank and per direction.

Scale-up fabrics (B = links x link bandwidth per rank, e the achieved fraction, alpha the
per-step latency; Hockney's alpha-beta model, :mod:`accelsim.collectives`):

  switch   every rank reaches every other at B (NVSwitch, the Unified Bus's Clos):
           ring all-reduce 2 (n-1)/n M / (B e) + 2 (n-1) alpha, or with in-switch reduction
           (NVLink SHARP) each rank sends its buffer once and gets the result once:
           (n+1)/n M / (B e_red) + 2 alpha; all-to-all (n-1)/n M / (B e_a2a) + (n-1) a_peer
  mesh     direct links to each of the D-1 other ranks of the domain, B/(D-1) each (Gaudi's
           on-chip RoCE, 910B's HCCS): a group of n < D ranks uses (n-1)/(D-1) of B; the
           all-reduce is a direct reduce-scatter and all-gather, 2 steps of alpha
  torus    k-ary n-cube with wrap-around (TPU ICI): multi-dimensional rings use every link
           the group spans; all-to-all is bounded by the bisection: each rank's M/2 crosses
           2 N / d_max links each way, t >= M d_max / (8 L e) (L one link's bandwidth)

Across domains (scale-out, per rank ``nics x line rate x e_out / oversubscription`` of the
tiers crossed):

  ring     one flat ring whose every channel crosses the boundary through the g ranks' NICs
           of a domain: 2 (n-1)/n M / min(B_in, g B_out)
  tree     NCCL's two-level tree, pipelined: a chain inside each domain (every rank sends
           M up and M down: 2 M / B_in) overlapped with an all-reduce of M between the k
           domains on their g NICs (2 (k-1)/k M / (g B_out))
  the better of the two is taken (NCCL's tuner does the same); all-to-all sends the share
  (n-g)/n of its bytes out on the NIC and (g-1)/n inside, the slower bounds.

What crosses a domain boundary: a group of n ranks at stride s (TP innermost, then CP, EP,
DP; PP outermost) spans n s ranks; it stays inside when n s <= D (:func:`crosses`).

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

from accelsim import refs, xp
from accelsim.config import Strict, read_yaml, validate
from accelsim.devices import Count, DeviceSpec, Fraction, NonNegative, Positive, Quantity
from accelsim.errors import AccelsimError

Fabric = Literal["switch", "mesh", "torus"]
ArrayLike = Any


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


# ---------------------------------------------------------------------------
# per-rank bandwidths

US = 1e-6


def scaleup_Bps(t: Topology) -> float:
    """Raw scale-up bandwidth per rank, one direction, bytes/s."""
    su = t.scaleup
    return su.links.value * su.link_GBps.value * 1e9 / su.ranks_per_device


def nic_Bps(t: Topology) -> float:
    """Raw NIC line rate per rank, one direction, bytes/s."""
    so = t.scaleout
    return so.nics_per_device.value * so.nic_Gbps.value / 8 * 1e9 / t.scaleup.ranks_per_device


def domain_ranks(t: Topology) -> int:
    return int(t.scaleup.domain.value) * t.scaleup.ranks_per_device


def crosses(t: Topology, n: ArrayLike, stride: ArrayLike = 1) -> Any:
    """Whether a group of n ranks at ``stride`` leaves one scale-up domain."""
    return xp.asarray(n, dtype=float) * xp.asarray(stride, dtype=float) > domain_ranks(t)


def crossings(t: Topology, tp: int = 1, cp: int = 1, ep: int = 1, dp: int = 1,
              pp: int = 1) -> dict[str, bool]:
    """Which parallel groups of a layout leave one scale-up domain, in Megatron's order
    (TP innermost, then CP, then DP with EP inside it, PP outermost): a group of n ranks at
    stride s leaves it when n s exceeds the domain's ranks."""
    strides = {"tp": (tp, 1), "cp": (cp, tp), "ep": (ep, tp * cp), "dp": (dp, tp * cp),
               "pp": (pp, tp * cp * dp)}
    return {k: bool(n > 1 and crosses(t, n, s)) for k, (n, s) in strides.items()}


def oversubscription(t: Topology, span: ArrayLike) -> Any:
    """Bandwidth derating of traffic spanning ``span`` ranks: the product of the
    oversubscription of every tier below the one whose reach covers the span."""
    span = xp.asarray(span, dtype=float)
    D = domain_ranks(t)
    tiers = t.scaleout.tiers
    below = [math.prod(x.oversubscription.value for x in tiers[:i]) for i in range(len(tiers))]
    out = span * 0.0 + below[-1] * tiers[-1].oversubscription.value  # beyond every tier
    for tier, b in zip(reversed(tiers), reversed(below), strict=True):
        reach = tier.reach.value * t.scaleup.ranks_per_device
        if t.scaleout.rail_optimized and tier is tiers[0]:
            reach *= D  # one rail leaf per domain rank: a leaf's reach counts domains
        out = xp.where(span <= reach, b, out)
    return xp.where(span <= D, 1.0, out)


def _group(t: Topology, n: Any, stride: Any) -> tuple[Any, Any]:
    """(g, k): group members sharing a domain and domains the group spans."""
    D = domain_ranks(t)
    g = xp.clip(xp.floor(D / stride), 1.0, n)
    return g, xp.ceil(n / g)


def _inside_bw(t: Topology, g: Any, eff: float) -> Any:
    """Achieved per-rank bandwidth of a group of g ranks inside one domain."""
    su = t.scaleup
    B = scaleup_Bps(t) * eff
    D = domain_ranks(t)
    if su.fabric == "mesh" and D > 1:
        return B * xp.minimum((g - 1.0) / (D - 1.0), 1.0)
    if su.fabric == "torus" and su.dims:
        # the group fills the torus dims in order; rings run on the dims it spans
        spanned = g * 0.0
        rest = g
        for d in su.dims:
            spanned = spanned + (rest > 1)
            rest = xp.ceil(rest / d)
        return B * xp.maximum(spanned, 1.0) / len(su.dims)
    return B + 0.0 * g


def _out_bw(t: Topology, n: Any, stride: Any, eff: float) -> Any:
    return nic_Bps(t) * eff / oversubscription(t, n * stride)


# ---------------------------------------------------------------------------
# collectives

def allreduce_s(t: Topology, M: ArrayLike, n: ArrayLike, stride: ArrayLike = 1) -> Any:
    """All-reduce of M bytes over n ranks spaced ``stride`` apart (module docstring)."""
    M = xp.asarray(M, dtype=float)
    n = xp.asarray(n, dtype=float)
    stride = xp.asarray(stride, dtype=float)
    su, so = t.scaleup, t.scaleout
    a_in, a_out = su.latency_us.value * US, so.latency_us.value * US
    g, k = _group(t, n, stride)
    B_in = _inside_bw(t, g, su.efficiency.value)
    frac = (n - 1.0) / xp.maximum(n, 1.0)
    steps_tree = xp.where(n > 1, xp.ceil(xp.log2(xp.maximum(n, 1.0))), 0.0)
    ring_in = 2 * frac * M / B_in + 2 * (n - 1) * a_in
    tree_in = 2 * frac * M / B_in + 2 * steps_tree * a_in
    local = xp.minimum(ring_in, tree_in)
    if su.fabric == "mesh":  # direct reduce-scatter and all-gather: every peer at once
        local = 2 * frac * M / B_in + 2 * a_in
    if su.reduction_efficiency is not None and su.fabric == "switch":
        B_red = scaleup_Bps(t) * su.reduction_efficiency.value
        local = xp.minimum(local, xp.where(n > 1, (n + 1) / n * M / B_red + 2 * a_in, 0.0))
    B_out = _out_bw(t, n, stride, so.efficiency.value)
    B_ring = xp.where(g > 1, xp.minimum(B_in, g * B_out), B_out)
    ring = 2 * frac * M / B_ring + 2 * (n - 1) * a_out
    k_frac = (k - 1.0) / xp.maximum(k, 1.0)
    steps_k = xp.where(k > 1, xp.ceil(xp.log2(xp.maximum(k, 1.0))), 0.0)
    intra = xp.where(g > 1, 2 * M / B_in, 0.0)
    intra_steps = 2 * (g - 1)
    if su.fabric == "mesh":  # the domain's part as direct reduce-scatter + all-gather
        intra = 2 * (g - 1) / g * M / B_in
        intra_steps = xp.where(g > 1, 2.0, 0.0)
    inter = 2 * k_frac * M / (g * B_out)
    tree = xp.maximum(intra, inter) + intra_steps * a_in + 2 * steps_k * a_out
    flat = xp.minimum(2 * frac * M / B_out + 2 * steps_tree * a_out, ring)  # g = 1: tree
    across = xp.minimum(xp.where(g > 1, tree, flat), ring)
    out = xp.where(k <= 1, local, across)
    return xp.where(n > 1, out, 0.0)


def reduce_scatter_s(t: Topology, M: ArrayLike, n: ArrayLike, stride: ArrayLike = 1) -> Any:
    """Half an all-reduce's traffic (ring reduce-scatter; all-gather the same)."""
    return 0.5 * allreduce_s(t, M, n, stride)


all_gather_s = reduce_scatter_s


def all_to_all_s(t: Topology, M: ArrayLike, n: ArrayLike, stride: ArrayLike = 1) -> Any:
    """All-to-all where each rank sends M bytes in all, M/n to each of the n ranks (module
    docstring): per-peer latency plus the slower of the in-domain and out-of-domain shares;
    on a torus the bisection bounds the in-domain share."""
    M = xp.asarray(M, dtype=float)
    n = xp.asarray(n, dtype=float)
    stride = xp.asarray(stride, dtype=float)
    su, so = t.scaleup, t.scaleout
    a_peer = (su.a2a_peer_latency_us or su.latency_us).value * US
    g, k = _group(t, n, stride)
    B_in = _inside_bw(t, g, su.a2a_efficiency.value)
    t_in = (g - 1.0) / xp.maximum(n, 1.0) * M / B_in
    if su.fabric == "torus" and su.dims:
        L = su.link_GBps.value * 1e9 * su.a2a_efficiency.value
        shape = _sub_torus(su.dims, g)
        d_max = xp.maximum(shape, 2.0)
        t_in = xp.maximum(t_in, xp.where(g > 2, M * d_max / (8 * L), 0.0))
    B_out = _out_bw(t, n, stride, so.a2a_efficiency.value)
    t_out = (n - g) / xp.maximum(n, 1.0) * M / B_out
    lat = (n - 1.0) * a_peer + xp.where(k > 1, so.latency_us.value * US, 0.0)
    return xp.where(n > 1, xp.maximum(t_in, t_out) + lat, 0.0)


def _sub_torus(dims: list[int], g: Any) -> Any:
    """Largest ring length of the sub-torus g ranks fill, dims in order."""
    g = xp.asarray(g, dtype=float)
    longest = g * 0.0 + 1.0
    rest = g
    for d in dims:
        longest = xp.maximum(longest, xp.minimum(rest, d))
        rest = xp.ceil(rest / d)
    return longest


def p2p_s(t: Topology, M: ArrayLike, cross: ArrayLike) -> Any:
    """Point-to-point send of M bytes; ``cross``: between domains (on the NIC)."""
    su, so = t.scaleup, t.scaleout
    up = M / (scaleup_Bps(t) * su.efficiency.value) + su.latency_us.value * US
    out = M / (nic_Bps(t) * so.efficiency.value) + so.latency_us.value * US
    return xp.where(xp.asarray(cross, dtype=bool), out, up)


def busbw_allreduce(t: Topology, M: ArrayLike, n: ArrayLike, stride: ArrayLike = 1) -> Any:
    """nccl-tests' bus bandwidth of an all-reduce: M / time x 2 (n-1)/n, bytes/s."""
    n = xp.asarray(n, dtype=float)
    return xp.asarray(M, dtype=float) / allreduce_s(t, M, n, stride) * 2 * (n - 1) / n


# ---------------------------------------------------------------------------
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


def a2a_bottleneck_Bps(t: Topology, M: ArrayLike, n: ArrayLike, stride: ArrayLike = 1) -> Any:
    """DeepEP's "bottleneck bandwidth" of an all-to-all: the bytes on the binding link (the
    NIC when the group leaves the domain, else the scale-up link) over the whole time."""
    M = xp.asarray(M, dtype=float)
    n = xp.asarray(n, dtype=float)
    g, k = _group(t, n, xp.asarray(stride, dtype=float))
    on_link = xp.where(k > 1, (n - g) / n * M, (g - 1) / n * M)
    return on_link / all_to_all_s(t, M, n, stride)


def busbw_all_to_all(t: Topology, M: ArrayLike, n: ArrayLike, stride: ArrayLike = 1) -> Any:
    """nccl-tests' bus bandwidth of an all-to-all: M / time x (n-1)/n, bytes/s (M: the
    bytes each rank sends in all)."""
    n = xp.asarray(n, dtype=float)
    return xp.asarray(M, dtype=float) / all_to_all_s(t, M, n, stride) * (n - 1) / n

"""A fabric's bandwidths and collective times: what a group of ranks in a
:class:`~accelsim.devices.topology.Topology` gets per rank, whether it leaves its scale-up
domain, and how long its all-reduce, all-to-all and point-to-point sends take. The
functions are pure and take numpy arrays (:mod:`accelsim.xp`); all sizes are bytes, times
seconds, bandwidths bytes/s per rank and per direction. Reached as ``topology.<name>``
too (:mod:`accelsim.devices.topology` re-exports them).

Scale-up fabrics (B = links x link bandwidth per rank, e the achieved fraction, alpha the
per-step latency; Hockney's alpha-beta model, :mod:`accelsim.collectives`):

  switch   every rank reaches every other at B (NVSwitch, the Unified Bus's Clos):
           NCCL's all-reduce (:func:`accelsim.collectives.nccl_allreduce`, the serving and
           training paths' too): ring 2 (n-1)/n M / (B e) + 2 (n-1) alpha, or with in-switch
           reduction (NVLink SHARP) each rank sends its buffer once and gets the result once:
           (n+1)/n M / (B e_red) + lat_red (one call's fixed time), the faster;
           all-to-all (n-1)/n M / (B e_a2a) + (n-1) a_peer
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
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from accelsim import collectives as coll
from accelsim import xp

if TYPE_CHECKING:
    from accelsim.devices.topology import Topology

ArrayLike = Any


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
    if su.fabric == "switch":  # NCCL's ring, or NVLS with in-switch reduction (the one model)
        red = su.reduction_efficiency
        B_red = scaleup_Bps(t) * red.value if red is not None else 0.0
        lat_red = su.reduction_latency_us.value * US if su.reduction_latency_us else 0.0
        local = coll.nccl_allreduce(M, n, B_in, a_in, B_red, lat_red)
    elif su.fabric == "mesh":  # direct reduce-scatter and all-gather: every peer at once
        local = 2 * frac * M / B_in + 2 * a_in
    else:  # the faster of the ring and the tree
        ring_in = 2 * frac * M / B_in + 2 * (n - 1) * a_in
        tree_in = 2 * frac * M / B_in + 2 * steps_tree * a_in
        local = xp.minimum(ring_in, tree_in)
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

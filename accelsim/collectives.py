"""Alpha-beta cost of collectives (Hockney model), vectorized over numpy arrays.

``M`` is the logical buffer size in bytes (the whole tensor being reduced or
gathered), ``n`` the group size, ``bw`` the achieved per-rank, per-direction
bandwidth in bytes/s, ``alpha`` the per-step latency in seconds.

Ring formulas (Thakur, Rabenseifner & Gropp 2005; NCCL's "bus bandwidth" notes):
  all-reduce      2 (n-1)/n * M/bw + 2 (n-1) alpha
  reduce-scatter  (n-1)/n * M/bw + (n-1) alpha      (all-gather the same; alpha per step
                  inside or across the scale-up domains: :func:`ring_latency`)
  all-to-all      (n-1)/n * M/bw + (n-1) alpha      (M = bytes each rank sends in all)
  point-to-point  M/bw + alpha
Tree all-reduce (double binary tree) moves the same bytes with 2 log2(n) latency steps.
Direct all-reduce (a reduce-scatter and an all-gather with every peer at once: a full mesh,
or an engine's kernel through the peers' mapped buffers): the ring's bytes in 2 steps,
  2 (n-1)/n * M/bw + 2 alpha
One-shot all-reduce (every rank writes its whole buffer into every peer's, one barrier:
TensorRT-LLM's MIN_LATENCY kernel up to 128 tokens): (n-1) * M/bw + alpha
In-switch all-reduce (NVLink SHARP, NCCL's NVLS): each rank sends its buffer once and
receives the result once, at the switch-reduction bandwidth ``bw_red``, one call's fixed time:
  (n+1)/n * M/bw_red + latency
NCCL's all-reduce inside one scale-up domain (:func:`nccl_allreduce`, the one model the
serving engines, the training step and the topologies share): the faster of the ring and,
on a fabric with in-switch reduction, NVLS; not the tree (NCCL's intra-node tree is a
chain, and the published 8-GPU curves show the ring's 2 (n-1) steps, not log2 n:
docs/_notes/collectives-one-model.md). Its inputs per device/interconnect: ``bw`` (link x
the ring's efficiency), ``alpha`` (the ring's step latency), ``bw_red`` (link x the NVLS
efficiency) and ``lat_red`` (one NVLS call's fixed time).
Hierarchical all-reduce over ``g`` ranks per scale-up domain and ``k`` domains:
  reduce-scatter inside, all-reduce of M/g across domains (every rank's NIC in parallel),
  all-gather inside.
"""

from __future__ import annotations

from typing import Any

from accelsim import xp

# A value of the physics: a float for one configuration, a numpy array for many (accelsim.xp).
ArrayLike = Any
Arr = Any



def _steps(n: ArrayLike) -> Arr:
    return xp.maximum(xp.asarray(n, dtype=float) - 1.0, 0.0)


def _frac(n: ArrayLike) -> Arr:
    n = xp.asarray(n, dtype=float)
    return _steps(n) / xp.maximum(n, 1.0)


def ring_allreduce(M: ArrayLike, n: ArrayLike, bw: ArrayLike, alpha: ArrayLike) -> Arr:
    return 2.0 * _frac(n) * xp.asarray(M) / bw + 2.0 * _steps(n) * alpha


def tree_allreduce(M: ArrayLike, n: ArrayLike, bw: ArrayLike, alpha: ArrayLike) -> Arr:
    n = xp.asarray(n, dtype=float)
    steps = xp.where(n > 1, xp.ceil(xp.log2(xp.maximum(n, 1.0))), 0.0)
    return 2.0 * _frac(n) * xp.asarray(M) / bw + 2.0 * steps * alpha


def direct_allreduce(M: ArrayLike, n: ArrayLike, bw: ArrayLike, alpha: ArrayLike) -> Arr:
    return 2.0 * _frac(n) * xp.asarray(M) / bw + 2.0 * xp.minimum(_steps(n), 1.0) * alpha


def oneshot_allreduce(M: ArrayLike, n: ArrayLike, bw: ArrayLike, alpha: ArrayLike) -> Arr:
    """A one-shot all-reduce through the peers' mapped buffers: every rank pushes its whole
    ``M`` bytes to each of the other n - 1 ranks and reduces the n copies locally, one
    synchronisation step: (n - 1) M / bw + alpha (the two-shot kernel,
    :func:`direct_allreduce`, moves 2 (n - 1)/n M in two steps; the two agree at n = 2 but
    for one latency, and at n = 8 the one-shot moves 4x the bytes)."""
    return _steps(n) * xp.asarray(M) / bw + xp.minimum(_steps(n), 1.0) * alpha


def in_switch_allreduce(M: ArrayLike, n: ArrayLike, bw_red: ArrayLike,
                        latency: ArrayLike) -> Arr:
    n = xp.asarray(n, dtype=float)
    t = (n + 1.0) / xp.maximum(n, 1.0) * xp.asarray(M) / bw_red + latency
    return xp.where(n > 1, t, 0.0)


def nccl_allreduce(M: ArrayLike, n: ArrayLike, bw: ArrayLike, alpha: ArrayLike,
                   bw_red: ArrayLike = 0.0, lat_red: ArrayLike = 0.0) -> Arr:
    """NCCL's all-reduce of ``M`` bytes over ``n`` ranks of one scale-up domain: its ring,
    2 (n-1)/n M / bw + 2 (n-1) alpha, or on a fabric with in-switch reduction (``bw_red`` >
    0: NVLink SHARP) its NVLS algorithm, (n+1)/n M / bw_red + lat_red, whichever is faster
    (NCCL's tuner picks the algorithm of least modelled time, ``src/graph/tuning.cc``; its
    intra-node tree is a chain, 2 (n-1) steps, no faster than the ring). The faster of two
    alpha-beta lines is the size-dependent achieved bandwidth: the ring's lower latency
    below a few MiB, NVLS's higher bandwidth above (tests/test_collectives_published.py
    holds it to the published nccl-tests curves)."""
    return _ring_or_nvls(ring_allreduce(M, n, bw, alpha), M, n, bw_red, lat_red)


def _ring_or_nvls(ring: Arr, M: ArrayLike, n: ArrayLike, bw_red: ArrayLike,
                  lat_red: ArrayLike) -> Arr:
    """``ring``, or the in-switch all-reduce where it is faster and the fabric has one
    (``bw_red`` > 0): the choice :func:`nccl_allreduce` and :func:`group_allreduce_terms`
    share."""
    bw_red = xp.asarray(bw_red, dtype=float)
    if xp.never(bw_red > 0):
        return ring
    nvls = in_switch_allreduce(M, n, xp.where(bw_red > 0, bw_red, 1.0), lat_red)
    return xp.where(bw_red > 0, xp.minimum(ring, nvls), ring)


def reduce_scatter(M: ArrayLike, n: ArrayLike, bw: ArrayLike, alpha: ArrayLike) -> Arr:
    return _frac(n) * xp.asarray(M) / bw + _steps(n) * alpha


all_gather = reduce_scatter


def ring_latency(n: ArrayLike, per_domain: ArrayLike, alpha_in: ArrayLike,
                 alpha_out: ArrayLike) -> Arr:
    """Latency of a ring all-gather or reduce-scatter over ``n`` ranks, ``per_domain`` of
    them on each scale-up domain: of its n - 1 steps, k - 1 cross between the k domains and
    n - k stay inside (NCCL's tuning model, src/graph/tuning.cc: nsteps = nRanks - 1,
    nInterSteps = nNodes - 1)."""
    n = xp.asarray(n, dtype=float)
    g = xp.clip(xp.asarray(per_domain, dtype=float), 1.0, xp.maximum(n, 1.0))
    k = xp.ceil(n / g)
    return xp.where(k > 1, (n - k) * alpha_in + (k - 1) * alpha_out, _steps(n) * alpha_in)


def all_to_all(M: ArrayLike, n: ArrayLike, bw: ArrayLike, alpha: ArrayLike) -> Arr:
    return _frac(n) * xp.asarray(M) / bw + _steps(n) * alpha


def p2p(M: ArrayLike, bw: ArrayLike, alpha: ArrayLike) -> Arr:
    return xp.asarray(M) / bw + alpha


def hierarchical_allreduce(M: ArrayLike, g: ArrayLike, k: ArrayLike, bw_in: ArrayLike,
                           alpha_in: ArrayLike, bw_out: ArrayLike, alpha_out: ArrayLike) -> Arr:
    """RS inside the domain, AR of M/g across k domains (tree or ring, the faster), AG inside."""
    M = xp.asarray(M, dtype=float)
    g = xp.asarray(g, dtype=float)
    inside = 2.0 * reduce_scatter(M, g, bw_in, alpha_in)
    shard = M / xp.maximum(g, 1.0)
    across = _ring_or_tree(*_ring_tree_terms(shard, k), bw_out, alpha_out)
    return inside + across


def _ring_tree_terms(M: ArrayLike, n: ArrayLike) -> tuple[Arr, Arr, Arr]:
    """The terms ring_allreduce and tree_allreduce share: 2 (n-1)/n M, and twice each one's
    latency steps."""
    n = xp.asarray(n, dtype=float)
    return (2.0 * _frac(n) * xp.asarray(M), *_latency_steps(n))


def _latency_steps(n: Arr) -> tuple[Arr, Arr]:
    """Twice the ring's and the tree's latency steps over n (a float array or float)."""
    tree_steps = xp.where(n > 1, xp.ceil(xp.log2(xp.maximum(n, 1.0))), 0.0)
    return 2.0 * _steps(n), 2.0 * tree_steps


def _ring_or_tree(vol: Arr, ring_lat: Arr, tree_lat: Arr, bw: ArrayLike, alpha: ArrayLike
                  ) -> Arr:
    """min(ring_allreduce, tree_allreduce) from their shared terms (the same arithmetic)."""
    v = vol / bw
    return xp.minimum(v + ring_lat * alpha, v + tree_lat * alpha)


def group_allreduce(M: ArrayLike, n: ArrayLike, stride: ArrayLike, domain: ArrayLike,
                    bw_in: ArrayLike, alpha_in: ArrayLike, bw_out: ArrayLike,
                    alpha_out: ArrayLike, bw_red: ArrayLike = 0.0,
                    lat_red: ArrayLike = 0.0) -> Arr:
    """All-reduce over ``n`` ranks spaced ``stride`` apart, placed on scale-up domains of
    ``domain`` chips: inside one domain when n*stride <= domain (:func:`nccl_allreduce`:
    the ring, or NVLS when ``bw_red`` > 0, the faster), otherwise the best of a
    flat ring/tree on the scale-out network and the hierarchical algorithm
    (min(ring_allreduce, tree_allreduce) on each network, :func:`hierarchical_allreduce`;
    computed through :class:`GroupTerms`, which tests hold to those bit for bit)."""
    return group_allreduce_terms(M, GroupTerms(n, stride, domain, alpha_in, alpha_out),
                                 bw_in, bw_out, bw_red, lat_red)


class GroupTerms:
    """What :func:`group_allreduce` computes from the group alone (its size, stride, domain
    and latencies), to reuse for several buffers over the same group
    (:func:`group_allreduce_terms`)."""

    def __init__(self, n: ArrayLike, stride: ArrayLike, domain: ArrayLike, alpha_in: ArrayLike,
                 alpha_out: ArrayLike) -> None:
        n = xp.asarray(n, dtype=float)
        self.n = n
        stride = xp.asarray(stride, dtype=float)
        domain = xp.asarray(domain, dtype=float)
        g = xp.clip(xp.floor(domain / stride), 1.0, n)  # group members sharing a domain
        k = xp.ceil(n / g)
        self.inside = k <= 1
        # the flat ring/tree over n ranks (_ring_tree_terms, _ring_or_tree)
        ring_lat, tree_lat = _latency_steps(n)
        self.two_frac_n = 2.0 * _frac(n)
        self.lat_in = (ring_lat * alpha_in, tree_lat * alpha_in)
        self.lat_out = (ring_lat * alpha_out, tree_lat * alpha_out)
        # the hierarchical algorithm: reduce-scatter over g, ring/tree of M/g over k domains
        g = xp.asarray(g, dtype=float)
        self.frac_g = _frac(g)
        self.rs_lat = _steps(g) * alpha_in
        self.g1 = xp.maximum(g, 1.0)
        k = xp.asarray(k, dtype=float)
        ring_k, tree_k = _latency_steps(k)
        self.two_frac_k = 2.0 * _frac(k)
        self.lat_k = (ring_k * alpha_out, tree_k * alpha_out)


def group_allreduce_terms(M: ArrayLike, gt: GroupTerms, bw_in: ArrayLike,
                          bw_out: ArrayLike, bw_red: ArrayLike = 0.0,
                          lat_red: ArrayLike = 0.0) -> Arr:
    """:func:`group_allreduce` of ``M`` over the group of ``gt``: the operations of
    nccl_allreduce, ring_allreduce, tree_allreduce and hierarchical_allreduce on the same
    operands, in the same order, so the same numbers."""
    vol = gt.two_frac_n * xp.asarray(M)
    v_in, v_out = vol / bw_in, vol / bw_out
    # NCCL's all-reduce inside the domain (nccl_allreduce): the ring, or NVLS where faster
    local = _ring_or_nvls(v_in + gt.lat_in[0], M, gt.n, bw_red, lat_red)
    flat = xp.minimum(v_out + gt.lat_out[0], v_out + gt.lat_out[1])
    Mf = xp.asarray(M, dtype=float)
    inside = 2.0 * (gt.frac_g * xp.asarray(Mf) / bw_in + gt.rs_lat)
    shard = Mf / gt.g1
    v = gt.two_frac_k * xp.asarray(shard) / bw_out
    across = xp.minimum(v + gt.lat_k[0], v + gt.lat_k[1])
    return xp.where(gt.inside, local, xp.minimum(flat, inside + across))


def group_bandwidth(n: ArrayLike, stride: ArrayLike, domain: ArrayLike, bw_in: ArrayLike,
                    bw_out: ArrayLike) -> tuple[Arr, Arr]:
    """(bandwidth, fraction of traffic leaving the domain) for a group of n ranks at stride."""
    n = xp.asarray(n, dtype=float)
    span = n * xp.asarray(stride, dtype=float)
    inside = span <= xp.asarray(domain, dtype=float)
    g = xp.clip(xp.floor(xp.asarray(domain, dtype=float) / stride), 1.0, n)
    out_frac = xp.where(inside, 0.0, 1.0 - (g - 1.0) / xp.maximum(n - 1.0, 1.0))
    # traffic splits between links; the slower share bounds the time
    t_per_byte = xp.maximum((1.0 - out_frac) / bw_in, out_frac / bw_out)
    return 1.0 / t_per_byte, out_frac

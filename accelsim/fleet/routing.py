"""Request-size routing across device types (Melange: Griggs et al. 2024, "Melange: Cost
Efficient LLM Serving by Exploiting GPU Heterogeneity", arXiv 2404.14527).

A chatbot block's ``routing: {edges}`` cuts its prompt length distribution into buckets
``b`` of share ``s_b`` (of requests). Each device type ``d`` is evaluated on each bucket
alone through the ordinary LLM serving path (:func:`bucket_spec`: the block with its
prompts drawn from the bucket): ``c[d, b]`` requests/s per device at the SLO, beside its
whole-distribution capacity ``c[d]``. A fleet's units then serve the demand ``D`` as a
linear programme (:func:`route`) over ``y[d, b]`` (units of ``d`` serving bucket ``b``
only) and ``z[d]`` (units serving the whole mix, as without routing):

  bucket b     sum_d c[d, b] y[d, b] + s_b sum_d c[d] z[d]  >=  lambda s_b D
  units        sum_b y[d, b] + z[d]                          <=  n_d
  first        maximise lambda (<= 1): the share of every bucket served, alike for all
               sizes (long prompts are not dropped to serve more short ones)
  then         minimise sum_d p_d (sum_b y[d, b] + z[d]) at that lambda, p_d what a unit of
               ``d`` is worth to the other workloads (:func:`accelsim.fleet.mix.allocate`)

Whole-distribution serving (``y = 0``) is a feasible point, so routing never serves less
than it on the same units, nor uses more units for the same demand. With one bucket (or
one device type whose bucket capacities all equal its whole one) it is today's answer.
The ``z`` columns keep a device's mixed serving when a bucket split would be worse for it.
Prefill/decode units (:mod:`accelsim.fleet.pd`) are further columns ``w[k]`` serving the
whole mix, each taking devices of two types (``na`` of one, ``nb`` of the other) in the
units rows; a block with ``disaggregation`` and no ``routing`` is one bucket, ``all``.
``optimize`` and ``plan`` take the size buckets and the PD units as MILP columns
(:class:`accelsim.optimize.problem.BucketColumns`, :class:`~accelsim.optimize.problem.PDColumn`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

import numpy as np

from accelsim.workloads.prompt_sizes import (  # noqa: F401  (re-exported)
    SAMPLE,
    SAMPLE_SEED,
    bucket_shares,
    default_edges,
)
from accelsim.workloads.prompt_sizes import sorted_draws as _sorted_draws

# Values of a bucket's prompt histogram (quantile midpoints of its draws, equal weights).
QUANTILES = 100
# Separator of a bucket's pseudo-workload name in the evaluation: ``chatbot#0``.
SEP = "#"


def bucket_labels(edges: list[int] | tuple[int, ...]) -> list[str]:
    """``< 1000``, ``1000-2999``, ``>= 3000`` prompt tokens."""
    out = [f"< {edges[0]}"]
    out += [f"{a}-{b - 1}" for a, b in pairwise(edges)]
    return [*out, f">= {edges[-1]}"]


def bucket_dist(dist: Any, edges: tuple[int, ...], i: int) -> dict[str, Any]:
    """Bucket ``i``'s prompt distribution: an empirical histogram of :data:`QUANTILES`
    quantile midpoints of the draws that fall in it, equal weights."""
    x = _sorted_draws(dist)
    cut = np.searchsorted(x, np.asarray(edges, dtype=float), side="left")
    lo = 0 if i == 0 else int(cut[i - 1])
    hi = len(x) if i == len(edges) else int(cut[i])
    part = x[lo:hi]
    q = np.quantile(part, (np.arange(QUANTILES) + 0.5) / QUANTILES, method="inverted_cdf")
    return {"dist": "empirical", "values": [float(v) for v in q]}


def bucket_spec(spec: Any, i: int) -> Any:
    """The chatbot block serving bucket ``i`` alone: its prompts from :func:`bucket_dist`,
    no routing, and a nominal demand (a device's capacity does not depend on it, and the
    evaluation cache then holds across demand what-ifs)."""
    data = spec.model_dump(mode="json")
    edges = tuple(spec.routing.edges)
    data.update({"prompt_tokens": bucket_dist(spec.prompt_tokens, edges, i), "routing": None,
                 "demand": None, "peak_rps": 1.0})
    return type(spec).model_validate(data)


def routed_specs(workloads: dict[str, Any]) -> dict[str, Any]:
    """Every routed block's bucket blocks, named ``<workload>#<i>`` (empty when no block
    routes)."""
    out = {}
    for name, spec in workloads.items():
        r = getattr(spec, "routing", None)
        if r is None:
            continue
        for i in range(len(r.edges) + 1):
            out[f"{name}{SEP}{i}"] = bucket_spec(spec, i)
    return out


@dataclass(frozen=True)
class Routing:
    """One routed workload in a fleet's arithmetic: bucket ``shares`` and ``labels``
    (one bucket, ``all``, when only disaggregated), whether the buckets are sizes
    (``sized``: each device row holds its throughput per bucket), and whether PD units
    are offered (``pd``: the rows of their prefill devices hold them)."""

    shares: np.ndarray
    labels: list[str]
    sized: bool = True
    pd: bool = False

    def problem(self, w: str, devs: list[str], rows: dict[str, Any]
                ) -> tuple[np.ndarray, np.ndarray, tuple[PairColumn, ...], list[str]]:
        """The programme's inputs over the devices ``devs``: throughput per device per
        bucket and on the whole mix, the PD units whose both devices are among them, and
        those units' labels."""
        whole = np.array([rows[d].throughput.get(w, 0.0) for d in devs])
        cap = (np.array([rows[d].buckets[w] for d in devs]) if self.sized
               else whole[:, None].copy())
        pairs: list[PairColumn] = []
        labels = []
        where = {d: i for i, d in enumerate(devs)}
        for d in devs if self.pd else []:
            for u in rows[d].pd.get(w, ()):
                if u["decode"] in where and u["rps"] > 0:
                    pairs.append((where[d], where[u["decode"]], float(u["prefill_devices"]),
                                  float(u["decode_devices"]), float(u["rps"])))
                    labels.append(f"PD {u['p']}:{u['q']} {rows[d].device} -> "
                                  f"{rows[u['decode']].device}")
        return cap, whole, tuple(pairs), labels


def routings(sc: Any, rows: dict[str, Any]) -> dict[str, Routing]:
    """The scenario's routed workloads (``routing`` or ``disaggregation``) whose full
    evaluation the device rows hold (a fast evaluation, :class:`~accelsim.fleet.FastEvaluator`,
    holds the bucket capacities and the point's PD units, :mod:`accelsim.fleet.pd_fast`)."""
    out = {}
    for name, spec in sc.workloads.items():
        r = getattr(spec, "routing", None)
        dis = getattr(spec, "disaggregation", None)
        sized = r is not None and bool(rows) and all(name in row.buckets
                                                     for row in rows.values())
        pd = dis is not None and any(name in row.pd for row in rows.values())
        if sized:
            assert r is not None
            out[name] = Routing(bucket_shares(spec.prompt_tokens, tuple(r.edges)),
                                bucket_labels(r.edges), True, pd)
        elif pd:
            out[name] = Routing(np.ones(1), ["all"], False, True)
    return out


# A composite column (prefill/decode disaggregation, :mod:`accelsim.fleet.pd`): one unit
# takes ``na`` devices of device index ``ia`` and ``nb`` of ``ib`` and serves ``rps``
# requests/s of the whole mix.
PairColumn = tuple[int, int, float, float, float]


@dataclass(frozen=True)
class Routed:
    """A routing's answer: ``lam`` the share of demand served (alike in every bucket),
    ``y[d, b]`` units of each device serving each bucket alone, ``z[d]`` units serving
    the whole mix, ``w[k]`` units of each pair column and ``use[d]`` the devices they
    take."""

    lam: float
    y: np.ndarray
    z: np.ndarray
    w: np.ndarray
    use: np.ndarray

    @property
    def units(self) -> np.ndarray:
        return self.y.sum(axis=1) + self.z + self.use


def _columns(need: float, shares: np.ndarray, cap: np.ndarray, whole: np.ndarray,
             pairs: tuple[PairColumn, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Served share of each bucket per unit of each column (``y``, ``z``, pair units):
    [B, D*B + D + K], and the devices each column takes: [D, D*B + D + K]."""
    D, B = cap.shape
    K = len(pairs)
    n = D * B + D + K
    A = np.zeros((B, n))
    U = np.zeros((D, n))
    for d in range(D):
        U[d, d * B:(d + 1) * B] = 1.0
        U[d, D * B + d] = 1.0
    for k, (ia, ib, na, nb, _) in enumerate(pairs):
        U[ia, D * B + D + k] += na
        U[ib, D * B + D + k] += nb
    for b in range(B):
        if shares[b] <= 0:
            continue
        A[b, np.arange(D) * B + b] = cap[:, b] / (need * shares[b])
        A[b, D * B:D * B + D] = whole / need
        A[b, D * B + D:] = [p[4] / need for p in pairs]
    return A, U


def _answer(lam: float, x: np.ndarray, D: int, B: int, U: np.ndarray) -> Routed:
    w = x[D * B + D:]
    return Routed(lam, x[:D * B].reshape(D, B), x[D * B:D * B + D], w,
                  U[:, D * B + D:] @ w if len(w) else np.zeros(D))


def _none(D: int, B: int, K: int, lam: float = 0.0) -> Routed:
    return Routed(lam, np.zeros((D, B)), np.zeros(D), np.zeros(K), np.zeros(D))


def most_served(need: float, shares: np.ndarray, cap: np.ndarray, whole: np.ndarray,
                units: np.ndarray, cap_at_one: bool = True,
                pairs: tuple[PairColumn, ...] = ()) -> Routed:
    """The largest ``lambda`` (at most 1 with ``cap_at_one``) of the demand mix the units
    serve (module formula), with one assignment reaching it."""
    from scipy.optimize import linprog

    D, B = cap.shape
    if need <= 0:
        return _none(D, B, len(pairs), 1.0)
    A, U = _columns(need, shares, cap, whole, pairs)
    n = A.shape[1]
    live = shares > 0
    # variables: columns, then lambda; rows: lambda - A x <= 0; units
    A_ub = np.vstack([np.hstack([-A[live], np.ones((int(live.sum()), 1))]),
                      np.hstack([U, np.zeros((D, 1))])])
    b_ub = np.concatenate([np.zeros(int(live.sum())), np.asarray(units, dtype=float)])
    c = np.zeros(n + 1)
    c[-1] = -1.0
    res = linprog(c, A_ub=A_ub, b_ub=b_ub,
                  bounds=[(0, None)] * n + [(0, 1.0 if cap_at_one else None)], method="highs")
    if res.status != 0:
        return _none(D, B, len(pairs))
    x = np.asarray(res.x)
    return _answer(float(x[-1]), x[:n], D, B, U)


# The share of lambda the cheapest assignment may give up (the solver's tolerance) when
# the units cannot serve the whole demand; when they can, the share of demand it serves
# beyond it, so that whole units re-solved still reach the demand (HiGHS's feasibility
# tolerance is 1e-7).
LAM_TOL = 1e-9
MARGIN = 1e-6


def route(need: float, shares: np.ndarray, cap: np.ndarray, whole: np.ndarray,
          units: np.ndarray, price: np.ndarray, pairs: tuple[PairColumn, ...] = ()
          ) -> Routed:
    """The module's programme: the most of the demand the ``units`` serve, then the
    assignment of least ``price``-weighted units (a pair column: the devices it takes)
    that serves it."""
    from scipy.optimize import linprog

    best = most_served(need, shares, cap, whole, units, cap_at_one=False, pairs=pairs)
    if best.lam <= 0:
        return replace(best, lam=0.0)
    target = min(best.lam, 1.0 + MARGIN) if best.lam >= 1.0 else best.lam * (1 - LAM_TOL)
    D, B = cap.shape
    A, U = _columns(need, shares, cap, whole, pairs)
    A = A[shares > 0]
    c = np.asarray(price, dtype=float) @ U
    res = linprog(c, A_ub=np.vstack([-A, U]),
                  b_ub=np.concatenate([np.full(len(A), -target),
                                       np.asarray(units, dtype=float)]),
                  bounds=[(0, None)] * A.shape[1], method="highs")
    if res.status != 0:
        return replace(best, lam=min(best.lam, 1.0))
    return _answer(min(target, 1.0), np.asarray(res.x), D, B, U)


def routing_tables(sc: Any, devices: Any, fleets: list[dict[str, Any]]
                   ) -> dict[str, list[dict[str, Any]]]:
    """compare's routing tables (empty when no workload routes): per routed workload, each
    device's requests/s per device on each bucket alone beside the whole distribution, each
    PD unit's requests/s, and per fleet the units serving each bucket or PD pairing and the
    whole fleet's capacity (and per USD of TCO) routed against whole-distribution serving
    on colocated replicas."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, spec in sc.workloads.items():
        r = getattr(spec, "routing", None)
        dis = getattr(spec, "disaggregation", None)
        if r is None and dis is None:
            continue
        mine = [d for d in devices.itertuples() if d.workload == name]
        if r is not None and "bucket_throughput" in devices:
            labels = bucket_labels(r.edges)
            shares = bucket_shares(spec.prompt_tokens, tuple(r.edges))
            out[f"{name} by {r.by} (share of requests): req/s at SLO per device, each bucket "
                "served alone (Melange routing, accelsim.fleet.routing)"] = [
                {"device": d.device, "whole": f"{d.throughput:,.3g}",
                 **{f"{lab} ({100 * s:.0f} %)": f"{v:,.3g}" for lab, s, v in
                    zip(labels, shares, d.bucket_throughput, strict=True)}}
                for d in mine if isinstance(d.bucket_throughput, list | tuple)]
        if dis is not None and "pd_units" in devices:
            units = [u for d in mine if isinstance(d.pd_units, list) for u in d.pd_units]
            name_of = {d.ref: d.device for d in mine}
            out[f"{name} prefill/decode units (accelsim.fleet.pd): p prefill + q decode "
                f"replicas, KV over {dis.kv_transfer}; req/s at SLO per unit and per device"
                ] = [{"unit": f"{u['p']}:{u['q']} {name_of.get(u['prefill'], u['prefill'])}"
                      f" -> {name_of.get(u['decode'], u['decode'])}",
                      "devices": f"{u['prefill_devices']} + {u['decode_devices']}",
                      "req/s": f"{u['rps']:,.3g}",
                      "per device": _per_device(u),
                      "KV ms": f"{u['kv_transfer_ms']:.1f}"} for u in units]
        fl = []
        for f in fleets:
            rt = (f.get("routing") or {}).get(name)
            if rt is None:
                continue
            serves = [f"{dev} " + ", ".join(f"{lab} {u:,.0f}" for lab, u in per.items())
                      for dev, per in rt["units_by_bucket"].items()]
            serves += [f"{lab} x {v['units']:,.0f}" for lab, v in rt.get("pd_units", {}).items()
                       if v["units"] >= 0.5]
            fl.append({"fleet": f["name"], "units serving": "; ".join(serves) or "-",
                       "whole fleet req/s": f"{rt['capacity_whole_fleet']:,.0f}",
                       "unrouted": f"{rt['capacity_whole_fleet_unrouted']:,.0f}",
                       "gain": f"{100 * rt['gain']:+.1f} %",
                       "units": f"{rt['units']:,.0f}",
                       "unrouted units": f"{rt['units_unrouted']:,.0f}"})
        out[f"{name} routed in each fleet: units serving each bucket or PD pairing; the "
            "whole fleet's requests/s routed and on colocated whole-distribution replicas "
            f"(per USD of TCO alike: same ratio); {name} units needed, routed and not"] = fl
    return out


def _per_device(u: dict[str, Any]) -> str:
    return f"{u['rps'] / (u['prefill_devices'] + u['decode_devices']):.3g}"

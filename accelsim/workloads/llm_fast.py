"""The chatbot's fast path (sweeps, uncertainty draws): a point's capacity at the SLO scaled
from the base point through the same physics, re-searched only where the scaling's own
error bound says it must.

Time dilation. If every iteration of a replica takes k times as long (every part of its
cost model, :class:`accelsim.llm.perf.ReplicaModel`, times k), its run at rate r / k is the
base run at rate r with every time k times longer: arrivals are unit-rate points divided by
the rate and the scheduler only compares times. TTFT and TPOT are k times the base's, so
the highest rate meeting the SLO is ``cap'(SLO) = cap(SLO / k) / k``, with ``cap`` the
base's capacity as a function of the SLO. Scaling by the saturated rate alone (``cap / k``)
misses the SLO's share: a device that meets its TTFT target only just (the H20 on long
prompts) gains far more than its speed from a faster prefill.

The base's SLO curve (:class:`Curve`, per replica size of the base device, built once and
cached): the full search's job (its replications, its requests) run at a grid of rates
around each replication's answer (:data:`GRID`; for a size that met no rate at the base,
from the search's own first low probe, 1 % of the saturated rate, up: :data:`LOW_GRID`).
Per run, every counted request's smallest scale of both targets it meets,
``max(TTFT / ttft_ms, TPOT / tpot_ms)``, gives ``q``: the scale of the SLO at which that
rate meets the attainment. A replication's ``cap(s)`` is then what its search would find at
SLO x s: the rate where ``q`` (made non-decreasing) crosses ``s``, linear between grid
rates (0 below the low probe's ``q``); ``cap`` is the mean over replications, like the
search's answer.

A point's replica of each size is compared with the base's: ``k`` is the base's saturated
rate over the point's (at the base's KV cache: the dilation over the mix of iterations a
loaded replica runs), and its estimate is ``scale * cap(1 / k) / k`` requests/s per
replica, ``scale`` the full search's answer over ``cap(1)`` at the base's best size (1 to
within the search's 1 % resolution; the two agree at the base point). The estimate is
exact, up to the grid's interpolation and the search's resolution, for a uniform dilation
with the KV cache binding alike (a device faster or slower in every part: ``perf_scale``);
the efficiencies an uncertainty draw moves dilate compute-bound and memory-bound parts
differently, and the saturated rate weighs them as a loaded replica does. The point's
replica is searched again (the full search, each replication bracketed around the
estimate) where the scaling's error bound is not met:

- the size has no base curve (not a size of the base device);
- ``1 / k`` takes the crossing outside the curve's grid (no extrapolation);
- the dilation is far from uniform: the largest over the smallest ratio of the cost
  model's parts (the linear layers at every token count, KV read, prefill attention, LM
  head) exceeds ``1 +`` :data:`SPREAD` (beyond what the fidelity tests cover);
- the KV cache differs and the runs that decide the estimate asked for more blocks than
  the smaller cache holds (a cache that refuses a request changes the schedule; one that
  never does, does not).

A size the point's device shares with the base is estimated only if its base curve reaches
a share of the best size (``accelsim.workloads.llm.NEAR_CURVE``), so a draw does not build
the cost model of a size that cannot win. How close the fast path stays to the full search
on the seed scenario's uncertainty draws is measured in docs/model-llm.md and held by
``tests/fleet/test_fidelity.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from accelsim import units

# Rates of a base curve, as multiples of each replication's answer at the base point.
GRID = (0.5, 0.7, 0.85, 0.93, 1.0, 1.07, 1.15, 1.3, 1.5)
# Rates of the curve of a size that met no rate at the base (its TTFT breaks at low load):
# multiples of the saturated rate.
LOW_GRID = (0.02, 0.04, 0.08, 0.15, 0.3, 0.5, 0.8)
# SLO scales a curve resolves: a run that misses more than the attainment allows at
# SLO x S_MAX stops early (its q is only known to exceed it).
S_MAX = 2.5
# Largest non-uniformity of the dilation the scaling is trusted with (see module).
SPREAD = 2.0


@dataclass(frozen=True)
class Rep:
    """One replication's curve: ``rates`` and their ``q`` made non-decreasing (inf: above
    :data:`S_MAX`), ``kv_high`` the most KV blocks each run asked for; ``floor``: the
    first rate is the search's own first low probe (1 % of the saturated rate), below
    whose ``q`` the search finds no rate (a size that met none at the base point)."""

    rates: np.ndarray
    q: np.ndarray
    kv_high: np.ndarray
    floor: bool = False

    def capacity(self, s: float) -> tuple[float, int] | None:
        """What this replication's search finds at SLO x s (the crossing of ``q``; 0 below
        the floor), and the most KV blocks the runs deciding it asked for; None outside
        the grid."""
        q, r, kv = self.q, self.rates, self.kv_high
        if s < q[0]:
            return (0.0, int(kv[0])) if self.floor else None
        if s >= q[-1]:
            return None
        i = int(np.searchsorted(q, s, side="right"))  # q[i - 1] <= s < q[i]
        lo, hi = q[i - 1], q[i]
        x = r[i - 1] + (r[i] - r[i - 1]) * ((s - lo) / (hi - lo) if np.isfinite(hi) else 0.0)
        return float(x), int(kv[i - 1:i + 1].max())


@dataclass(frozen=True)
class Curve:
    """One replica size's SLO curve at the base point (one :class:`Rep` per replication),
    and the base replica's KV blocks, saturated rate and cost-model parts, which a point's
    replica is compared with."""

    tp: int
    reps: tuple[Rep, ...]
    kv_blocks: int
    sat_rps: float
    parts: np.ndarray

    def upper(self, s: float) -> float:
        """A rate the search at SLO x s does not exceed: where it lies below a grid, its
        lowest rate; inf where it lies above."""
        out = []
        for r in self.reps:
            got = r.capacity(s)
            out.append(got[0] if got is not None else
                       float(r.rates[0]) if s < r.q[0] else float("inf"))
        return float(np.mean(out))

    def capacity(self, s: float) -> tuple[float, int] | None:
        """The mean over replications of what the search finds at SLO x s, and the most KV
        blocks the deciding runs asked for (None outside a replication's grid)."""
        got = [r.capacity(s) for r in self.reps]
        ok = [g for g in got if g is not None]
        if len(ok) < len(got):
            return None
        return float(np.mean([g[0] for g in ok])), max(g[1] for g in ok)


@dataclass
class FastState:
    """What the fast path keeps: each device's base result, its curves (built on first
    use), and the full-over-curve ratio of its best size."""

    base: dict[str, Any]
    curves: dict[tuple[str, int], Curve] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    far: dict[str, set[int]] = field(default_factory=dict)
    skipped: dict[str, set[int]] = field(default_factory=dict)
    draws: list[Any] = field(default_factory=list)  # the full search's random inputs
    longest: int = 0  # their longest request, tokens
    sizes: dict[str, dict[int, Any]] = field(default_factory=dict)  # base devices' sizes
    jobs: dict[tuple[str, int], Any] = field(default_factory=dict)  # replica jobs
    model: Any = None  # the block's model (read once)


def parts(rm: Any) -> np.ndarray:
    """A replica's cost-model parts whose ratios give its dilation against another's (each
    times the MTP modules' factor, which scales the whole iteration), and its overlapped
    host's seconds per emitting sequence (the iteration's floor, which dilates with them
    only when its ratio is the same)."""
    return np.concatenate([np.asarray(rm.linear_s[1:], dtype=float) * float(rm.mtp_scale),
                           np.array([rm.c_kv, rm.c_pf, rm.c_head]) * float(rm.mtp_scale),
                           [float(rm.host_overlap_s)]])


def spread(a: np.ndarray, b: np.ndarray) -> float:
    """Largest over smallest ratio of matching parts, minus 1 (0: a uniform dilation);
    inf when they cannot be compared."""
    if a.shape != b.shape or np.any((a > 0) != (b > 0)):
        return float("inf")
    both = a > 0
    k = a[both] / b[both]
    return float(k.max() / k.min() - 1.0) if len(k) else 0.0


def saturated_rps(rm: Any, prompt: float, output: float) -> float:
    """Requests/s of a replica kept full at the block's mean lengths."""
    from accelsim.llm.sim import saturated_tokens_per_s

    return saturated_tokens_per_s(rm, prompt, output) / output


def scale_of(job: Any, rate: float, d: Any, rm: Any) -> tuple[float, int]:
    """``(q, kv_high)`` of one run: the scale of both SLO targets at which it meets the
    attainment (from every counted request's ``max(TTFT / ttft, TPOT / tpot)``; inf when
    it misses at :data:`S_MAX` x the SLO, where the run stops early) and the most KV
    blocks it asked for."""
    from accelsim.llm.engine import Judge, run_judged
    from accelsim.llm.sim import arrival_times, slo_budget

    arr = arrival_times(job, d, rate, "fast path")
    n, warm = len(arr), job.sim.warmup
    budget = slo_budget(n - warm, job.slo.attainment)
    ttft, tpot = job.slo.ttft_ms * units.MS, job.slo.tpot_ms * units.MS
    tr, v = run_judged(arr, d.prompt, d.output, rm, Judge(
        np.arange(n) >= warm, ttft * S_MAX, tpot * S_MAX, budget, last=False))
    if v.stopped == 1:
        return float("inf"), tr.kv_high
    keep = slice(warm, None)
    out = d.output[keep]
    need = np.maximum((tr.first_s - arr)[keep] / ttft, np.where(
        out > 1, (tr.done_s - tr.first_s)[keep] / np.maximum(out - 1, 1), 0.0) / tpot)
    need.sort()
    return float(need[len(need) - 1 - budget]), tr.kv_high


def build_curve(job: Any, rm: Any, answers: list[float], prompt: float, output: float
                ) -> Curve:
    """The SLO curve of the full search's ``job`` on one replica (one replica kind, count
    1): per replication, a grid around ``answers`` (each replication's answer at the base
    point, or a guess of it), and the search's first two probes; ``prompt``, ``output``:
    the block's mean lengths (of the saturated rate)."""
    from accelsim.llm.search import _cap
    from accelsim.llm.sim import draw

    reps = []
    for rep, found in enumerate(answers):
        d = draw(job, job.sim.seed + rep, "fast path")
        cap = _cap(job, [rm], d)
        # around the answer; a size that met no rate at the base, from the search's own
        # first low probe (1 % of saturation) up
        floor = found <= 0
        rates = (np.concatenate([[0.01 * cap], cap * np.asarray(LOW_GRID)]) if floor
                 else found * np.asarray(GRID))
        got = [scale_of(job, float(x), d, rm) for x in rates]
        reps.append(Rep(rates, np.maximum.accumulate(np.array([g[0] for g in got])),
                        np.array([g[1] for g in got]), floor))
    return Curve(rm.tp, tuple(reps), rm.kv_blocks, saturated_rps(rm, prompt, output),
                 parts(rm))


def estimate(curve: Curve | None, rm: Any, prompt: float, output: float
             ) -> tuple[float | None, str | None, float]:
    """The point replica's requests/s at the SLO on the curve's scale (before ``scale``;
    None where the curve cannot tell), why it must be searched again (None when it need
    not: the module's list), and a rate its search does not exceed (inf when unknown), on
    the same scale."""
    if curve is None:
        return None, "no base curve for this size", float("inf")
    sat = saturated_rps(replace(rm, kv_blocks=curve.kv_blocks), prompt, output)
    if sat <= 0:
        return None, "saturates at no rate", float("inf")
    k = curve.sat_rps / sat
    got = curve.capacity(1.0 / k)
    upper = curve.upper(1.0 / k) / k
    if got is None:
        return None, "the dilation takes it outside the curve's grid", upper
    cap, kv = got
    why = None
    if spread(parts(rm), curve.parts) > SPREAD:
        why = "the dilation is not uniform"
    elif rm.kv_blocks != curve.kv_blocks and kv > min(rm.kv_blocks, curve.kv_blocks):
        why = "the KV cache binds otherwise"
    return cap / k, why, (upper if why is None else float("inf"))

"""The highest request rate an LLM job serves within its SLO: bisection on common random
numbers per seeded replication, each probe judged as it runs and stopped once its verdict
is certain, with a 95 % confidence interval over the replications."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import numpy as np

from accelsim import units
from accelsim.bisection import drive, guided
from accelsim.errors import AccelsimError
from accelsim.llm.draws import Draws, arrival_times, check_fits, draw
from accelsim.llm.job import LLMJob
from accelsim.llm.perf import ReplicaModel
from accelsim.llm.pool import models, route_groups, run, saturated_tokens_per_s
from accelsim.llm.summary import summarize


def _attains(job: LLMJob, rate: float, d: Draws, rms: list[ReplicaModel], file: str) -> float:
    arr, traces, groups = run(job, rate, d, rms, job.sim.engine, file)
    return float(summarize(job, rate, d, arr, traces, groups, rms).metrics[
        "goodput_fraction"])


def slo_budget(n: int, target: float) -> int:
    """The most of ``n`` counted requests that may miss the SLO while the goodput fraction
    ``(n - m) / n`` (as :func:`summarize` computes it, in floating point) stays >= target;
    -1 when none may (``n`` 0)."""
    if n <= 0:
        return -1
    m = min(n, max(0, math.floor((1.0 - target) * n) + 1))
    while m >= 0 and not ((n - m) / n >= target):
        m -= 1
    while m < n and (n - m - 1) / n >= target:
        m += 1
    return m


def _passes(job: LLMJob, rate: float, d: Draws, rms: list[ReplicaModel], file: str) -> bool:
    """Whether ``rate`` meets the SLO: ``_attains(...) >= slo.attainment`` exactly, with
    each replica's run judged as it goes (:func:`accelsim.llm.engine.run_judged`) and
    stopped once more requests missed than the attainment allows (a rate past capacity is
    known within its first seconds) or once none can miss any more."""
    assert job.slo is not None
    n, warm = len(d.prompt), job.sim.warmup
    budget = slo_budget(n - warm, job.slo.attainment)
    if job.disaggregated or job.sim.engine != "fast" or budget < 0:
        return _attains(job, rate, d, rms, file) >= job.slo.attainment
    from accelsim.llm.engine import Judge, run_judged

    arr = arrival_times(job, d, rate, file)
    kinds = [k for k, r in enumerate(job.replicas) for _ in range(r.count)]
    mp, mo = float(d.prompt.mean()), float(d.output.mean())
    per_kind = {k: saturated_tokens_per_s(rms[k], mp, mo) for k in set(kinds)}
    groups = route_groups(len(arr), [per_kind[k] for k in kinds])
    counted = np.arange(len(arr)) >= warm
    ttft, tpot = job.slo.ttft_ms * units.MS, job.slo.tpot_ms * units.MS
    for i, (g, k) in enumerate(zip(groups, kinds, strict=True)):
        _, v = run_judged(arr[g], d.prompt[g], d.output[g], rms[k],
                          Judge(counted[g], ttft, tpot, budget, i == len(groups) - 1))
        if v.stopped == 1:
            return False
        if v.stopped == 2:
            return True
        budget -= v.misses
    return budget >= 0


def _cap(job: LLMJob, rms: list[ReplicaModel], d: Draws) -> float:
    """Requests/s of the whole pool kept saturated at the draws' mean lengths."""
    mp, mo = float(d.prompt.mean()), float(d.output.mean())
    return sum(saturated_tokens_per_s(rms[k], mp, mo) * r.count / mo
               for k, r in enumerate(job.replicas))


def capacity(job: LLMJob, file: str = "job", rms: list[ReplicaModel] | None = None,
             guess: float | None = None) -> dict[str, Any]:
    """Highest request rate whose goodput fraction meets ``slo.attainment``:
    :func:`search` without a rival."""
    out = search(job, file, rms, None, guess)
    assert out is not None
    return out


def search(job: LLMJob, file: str = "job", rms: list[ReplicaModel] | None = None,
           loses: Callable[[float], bool] | None = None, guess: float | None = None,
           ratio: float | None = None, bar: float | None = None) -> dict[str, Any] | None:
    """Highest request rate whose goodput fraction meets ``slo.attainment``, per
    replication (bisection on common random numbers, 1 % resolution), with the mean and a
    95 % confidence interval (Student t) over ``sim.replications`` seeds.

    Each probe stops as soon as its verdict is certain (:func:`_passes`: the same verdict
    as the whole run's goodput). ``loses(upper)``: a caller comparing several searches
    says whether a mean of at most ``upper`` requests/s can still win; once the search's
    bound on its mean (the answers so far, the current upper end of the bisection, and the
    starting upper end of the replications to come) cannot, it stops and returns None.
    Neither changes the answer. ``guess`` (fast searches only; it moves the answer within
    the 1 % resolution): the first replication's bisection starts from a bracket around
    it, each later one from a bracket around the one before's answer.

    ``ratio`` (a likely answer over the saturated rate, e.g. another replica size's) and,
    without a rival, the replications already answered guide each bisection
    (:func:`_guided`): the same answer, from fewer probes. ``bar`` (with ``loses``): the
    rate each replication must exceed for the mean to win (``loses(bar)``), probed first in
    every replication: a size that cannot win is then known from one short, failing run
    per replication; one that passes it goes on as before, to the same answer."""
    if job.slo is None:
        raise AccelsimError.single(file, "slo", "--capacity needs slo.ttft_ms and slo.tpot_ms")
    rms = rms or models(job, file)
    target = job.slo.attainment
    reps = range(job.sim.replications)
    draws = [draw(job, job.sim.seed + rep, file) for rep in reps]
    for d in draws:  # every replication's requests fit before any is searched
        check_fits(job, rms, d, file)
    caps = [_cap(job, rms, d) for d in draws]
    # each replication's search is a coroutine that yields rates and gets verdicts; they
    # advance in turn (plain searches) so that the bound on the mean tightens on all at once
    upper = [2.0 * c for c in caps]  # each replication's answer is at most this
    found: list[float] = []
    if loses is not None and loses(float(np.mean(upper))):
        return None
    if guess is not None:  # sequential: each starts around the answer before it
        for rep, (d, cap) in enumerate(zip(draws, caps, strict=True)):
            found.append(_drive(_bisection(cap, guess if rep == 0 else found[-1]),
                                job, d, rms, file))
    elif loses is None:  # sequential: each guided by the answers before it
        for d, cap in zip(draws, caps, strict=True):
            done = [f / c for f, c in zip(found, caps, strict=False) if f > 0]
            r = float(np.mean(done)) if done else ratio
            found.append(_drive(_guided(cap, r) if r else _bisection(cap), job, d, rms, file))
    else:
        # against a rival, only the failing pivot (a bound that may stop the search early)
        gens = [_guided(cap, ratio, False, bar) if ratio or bar else _bisection(cap)
                for cap in caps]
        rates: list[float | None] = [next(g) for g in gens]
        result = [0.0] * len(gens)
        while any(r is not None for r in rates):
            for rep, g in enumerate(gens):
                r = rates[rep]
                if r is None:
                    continue
                ok = _passes(job, r, draws[rep], rms, file)
                if not ok:
                    upper[rep] = min(upper[rep], r)
                try:
                    rates[rep] = g.send(ok)
                except StopIteration as stop:
                    rates[rep] = None
                    result[rep] = upper[rep] = stop.value
                if not ok and loses is not None and loses(float(np.mean(upper))):
                    return None
        found = result
    x = np.asarray(found)
    half = 0.0
    if len(x) > 1:
        from scipy.special import stdtrit  # scipy.stats.t.ppf's own (importing stats: 0.3 s)

        half = float(stdtrit(len(x) - 1, 0.975) * x.std(ddof=1) / math.sqrt(len(x)))
    out = {"max_rps_at_slo": float(x.mean()), "ci95_low_rps": max(float(x.mean() - half), 0.0),
           "ci95_high_rps": float(x.mean() + half), "per_replication_rps": x.tolist(),
           "slo_ttft_ms": job.slo.ttft_ms, "slo_tpot_ms": job.slo.tpot_ms,
           "attainment": target}
    if not x.any():
        out["reason"] = (f"no rate meets the SLO: even at 1 % of saturation fewer than "
                         f"{100 * target:g} % of requests get a TTFT <= {job.slo.ttft_ms:g} ms "
                         f"and TPOT <= {job.slo.tpot_ms:g} ms")
    return out


# First half-width of a bracket around a guess (then doubled until it holds the answer).
BRACKET = 0.02

Search = Generator[float, bool, float]

# The plain search's 1 % probe is made once the bisection's upper end falls to this share of
# the saturated rate with no rate passed (after two failed midpoints), as the answer 0 then
# becomes likely; if a rate passes before, it is never made.
FLOOR_BY = 0.6


def _drive(gen: Search, job: LLMJob, d: Draws, rms: list[ReplicaModel], file: str
           ) -> float:
    """Run one replication's search to its answer (:func:`accelsim.bisection.drive`)."""
    return drive(gen, lambda rate: _passes(job, rate, d, rms, file))


def _bisection(cap: float, start: float | None = None) -> Search:
    """One replication's search for the highest rate that meets the SLO, as a coroutine
    (yields a rate, is sent whether it passes, returns the answer): twice the saturated
    rate ``cap`` passes (answer: it), 1 % of it fails (answer 0; requests barely queue
    there, so a long prompt's prefill alone breaks the TTFT), else bisection to 1 %. With
    ``start``, the bracket comes from widening +-:data:`BRACKET` around it instead.

    The 1 % probe (a whole run: at that load every request must be judged before it can
    pass) is made only when the bisection needs its verdict: when no rate above it passed
    (once :data:`FLOOR_BY` says none may, or at the end).
    A rate that meets the SLO is taken to mean that 1 % of saturation meets it too (the
    same requests, spread 100x or more further apart; tests hold the answers to the plain
    order's, which probes it second)."""
    lo, hi = 0.01 * cap, 2.0 * cap
    floor_known = True  # whether ``lo`` is known to meet the SLO
    if start is not None and lo < start < hi:
        lo, hi = yield from _bracket(start, lo, hi)
    else:
        if (yield hi):
            return hi
        floor_known = False
    while hi - lo > 0.01 * hi:
        if not floor_known and hi <= FLOOR_BY * cap:  # likely none passes: settle it now
            if not (yield lo):
                return 0.0
            floor_known = True
        mid = 0.5 * (lo + hi)
        if (yield mid):
            lo, floor_known = mid, True
        else:
            hi = mid
    if not floor_known and not (yield lo):
        return 0.0
    return lo


# A guided bisection's pivots: the plain path's rates predicted to pass at most 1 - PIVOT
# of the guessed answer, or to fail at least 1 + PIVOT of it (replications of the seed
# chatbot differ by about 2 % in answer over saturated rate).
PIVOT = 0.03


def _guided(cap: float, ratio: float | None, below: bool = True,
            first: float | None = None) -> Search:
    """:func:`_bisection`'s answer from fewer probes (:func:`accelsim.bisection.guided`):
    guided by the answer it would have if it were ``ratio x cap``, first probing the
    highest rate of the plain path predicted to pass below 1 - :data:`PIVOT` of it and
    the lowest predicted to fail above 1 + :data:`PIVOT` (each a probe the plain search
    makes when the guess is right), then walking the plain path, probing only the rates
    neither settles. ``below`` False: no pivot below the guess. ``first``: a rate probed
    before anything else (a rival's bar, :func:`search`; only within the plain search's
    range, 1 % to twice ``cap``); ``ratio`` None: no guess, only ``first``."""
    if first is not None and not 0.01 * cap < first < 2.0 * cap:
        first = None
    return guided(lambda: _bisection(cap), None if ratio is None else ratio * cap, PIVOT,
                  below, first)


def _bracket(start: float, floor: float, top: float) -> Generator[float, bool,
                                                                   tuple[float, float]]:
    """``(lo, hi)`` around ``start``: ``lo`` meets the SLO and ``hi`` does not, found by
    widening a bracket of +-:data:`BRACKET` geometrically; ``floor`` (1 % of saturation)
    and ``top`` (twice saturation) end it as in the plain search (``lo = hi = 0`` when
    ``floor`` fails, ``lo = hi = top`` when ``top`` passes)."""
    w = BRACKET
    if (yield start):
        lo = start
        while True:
            up = min(start * (1 + w), top)
            if not (yield up):
                return lo, up
            if up >= top:
                return top, top
            lo, w = up, 2 * w
    hi = start
    while True:
        down = max(start * (1 - w), floor)
        if (yield down):
            return down, hi
        if down <= floor:
            return 0.0, 0.0
        hi, w = down, 2 * w

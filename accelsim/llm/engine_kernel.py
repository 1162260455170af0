"""The compiled scheduler loop of :mod:`accelsim.llm.engine` (numba), in a module of its own so
that importing the engine does not import numba: a small run takes the plain-Python event
engine (:mod:`accelsim.llm.engine_events`) and never loads it."""

from __future__ import annotations

import numpy as np
from numba import njit

from accelsim.llm.job import EST_DECAY, EST_INIT, EST_MIN, EST_RETRACT_STEPS

Arr = np.ndarray  # the compiled kernels' arrays (numba infers their element types)


@njit(cache=True)
def _evict(v: int, ctx: Arr, npre: Arr, wq: Arr, wh: int,
           B: int) -> tuple[int, int]:  # pragma: no cover - compiled
    """Preempt request v: free its blocks (returned), drop its KV, put it at the head of
    the waiting deque (whose new head index is returned)."""
    freed = (ctx[v] + B - 1) // B
    ctx[v] = 0
    npre[v] += 1
    wq[wh - 1] = v
    return freed, wh - 1


@njit(cache=True)
def _room(nrun: int, running: Arr, out: Arr, gen: Arr, ratio: float, free: int,
          B: int) -> float:  # pragma: no cover - compiled
    """SGLang's PrefillAdder budget (``kv_admission: estimate``): the free tokens less each
    running request's remaining output times ``ratio`` (the simpy engine's ``room``)."""
    resv = 0.0
    for i in range(nrun):
        resv += (out[running[i]] - gen[running[i]]) * ratio
    return free * B - resv


@njit(cache=True, inline="never")
def _crossing(dt: float, nrun: int, tokens: Arr, running: Arr, ctx: Arr, target: Arr,
              cross: Arr, c_pfx: float) -> float:  # pragma: no cover - compiled
    """The iteration's ``dt`` raised to the longest crossing of the pipeline of a prefill
    chunk scheduled in it (:meth:`accelsim.llm.perf.ReplicaModel.crossing_s`; a newly
    admitted one from context 0): a call of its own, which a replica without pipeline
    stages never makes."""
    for i in range(nrun):
        q = tokens[i]
        r = running[i]
        if q > 0 and ctx[r] < target[r]:
            x = cross[q] + c_pfx * (q * (ctx[r] + (q + 1) / 2.0))
            if x > dt:
                dt = x
    return dt


@njit(cache=True)
def _run(arr: Arr, prompt: Arr, out: Arr, ready: Arr, linear: Arr, c_kv: float, c_pf: float,
         c_head: float, host_s: float, blocks: int, B: int, budget: int, max_seqs: int,
         chunk: int, cross: Arr, c_pfx: float, reserve: int, pfirst: int, est: int,
         draft: int, extra: float, scale: float, counted: Arr, ttft_lim: float,
         tpot_lim: float, allowed: int, last: int
         ) -> tuple[Arr, Arr, Arr, float, float, int, float, int, int, int, int
                    ]:  # pragma: no cover - compiled
    """The scheduler's loop (module docstring), one compiled function: split into one per
    phase (even inlined) it runs the one-hour-day benchmark 35-60 % slower.

    ``chunk``: a request's most prompt tokens per iteration; ``cross`` (empty: none) and
    ``c_pfx``: with pipeline stages, a prefill chunk's crossing of the pipeline, the least
    its iteration takes (:meth:`accelsim.llm.perf.ReplicaModel.crossing_s`).

    With ``allowed`` >= 0 the run also judges every ``counted`` request against the SLO as
    soon as its outcome is known (:func:`judge`) and stops once the verdict is certain:
    ``stopped`` 1 when more than ``allowed`` requests missed, 2 (only with ``last``) when
    no more than ``allowed`` can miss whatever the rest does. ``kv_high``: the most KV
    blocks any admission, prefill chunk or decode asked to have in use, granted or not
    (at most ``blocks`` when the cache never refused one)."""
    n = len(arr)
    judging = allowed >= 0
    judged = np.zeros(n, np.int8)
    misses = 0
    good = 0
    to_judge = 0
    if judging:
        for i in range(n):
            to_judge += counted[i]
    late = 0  # requests before it were checked against the TTFT deadline
    stopped = 0
    kv_high = 0  # most blocks any KV check asked to have in use (granted or not)
    acc = np.zeros(n)  # accepted drafts so far (a running sum of ``extra`` per step)
    step = 1 + draft  # tokens a decoding sequence puts through the model per iteration
    first = np.full(n, np.nan)
    done = np.full(n, np.nan)
    npre = np.zeros(n, np.int64)
    ctx = np.zeros(n, np.int64)  # tokens in the KV cache
    gen = ready.copy()  # output tokens emitted (a prefilled arrival has its first)
    kvh = ready.copy()  # the request arrives with its prompt's KV (disaggregated decode)
    target = np.zeros(n, np.int64)  # tokens to prefill at (re)admission
    # waiting: a deque in an array of 2n slots (preempted requests go to the front)
    wq = np.empty(2 * n + 1, np.int64)
    wh = n
    wt = n
    running = np.empty(max_seqs, np.int64)
    nrun = 0
    nxt = 0
    free = blocks
    t = 0.0
    busy = 0.0
    kvint = 0.0
    iters = 0
    finished = 0
    tokens = np.empty(max_seqs, np.int64)  # tokens scheduled per running slot this iteration
    ncross = len(cross)
    ratio = EST_INIT  # est: the share of its remaining output a running request reserves
    while finished < n:
        while nxt < n and arr[nxt] <= t:
            wq[wt] = nxt
            wt += 1
            nxt += 1
        if judging:
            # a request still without its first token past the TTFT target has missed
            while late < nxt and (t - arr[late]) > ttft_lim:
                if counted[late] and not judged[late] and np.isnan(first[late]):
                    judged[late] = 1
                    misses += 1
                late += 1
            if misses > allowed:
                stopped = 1
                break
        if nrun == 0 and wh == wt:
            t = arr[nxt]
            continue
        left = budget
        dctx = 0.0
        pairs = 0.0
        emit = 0
        # prefill first: an iteration that can prefill (a running sequence's next chunk, or
        # the first waiting request's admission) runs no decodes
        hold = 0
        if pfirst:
            for i in range(nrun):
                if ctx[running[i]] < target[running[i]]:
                    hold = 1
                    break
            if hold == 0 and wh < wt and nrun < max_seqs and not kvh[wq[wh]]:
                r = wq[wh]
                q = min(prompt[r] + gen[r], budget, chunk)
                need = (prompt[r] + out[r] + B - 1) // B if reserve else (q + B - 1) // B
                if need <= free:
                    hold = 1
                    if est and (prompt[r] + gen[r] + (out[r] - gen[r]) * ratio
                                > _room(nrun, running, out, gen, ratio, free, B)):
                        hold = 0
            if hold:
                for i in range(nrun):
                    tokens[i] = 0
        # 1. decodes (in admission order); preempt from the back when blocks run out
        evicted = 0
        i = 0
        while i < nrun and hold == 0:
            r = running[i]
            tokens[i] = 0
            if ctx[r] >= target[r] and left >= step:
                # tokens it gains: one, plus the drafts accepted (deterministic, mean extra)
                if draft == 0:
                    adv = 1
                    need = 1 if ctx[r] % B == 0 else 0
                else:
                    adv = min(1 + int(np.floor(acc[r] + extra) - np.floor(acc[r])),
                              out[r] - gen[r])
                    need = (ctx[r] + adv + B - 1) // B - (ctx[r] + B - 1) // B
                if reserve == 0 and need > 0:
                    kv_high = max(kv_high, blocks - free + need)
                    while free < need and nrun - 1 > i:
                        freed, wh = _evict(running[nrun - 1], ctx, npre, wq, wh, B)
                        free += freed
                        nrun -= 1
                        evicted += 1
                    if free < need:
                        # no one left to preempt but itself: it waits for a block
                        freed, wh = _evict(r, ctx, npre, wq, wh, B)
                        free += freed
                        evicted += 1
                        for j in range(i, nrun - 1):
                            running[j] = running[j + 1]
                        nrun -= 1
                        continue
                    free -= need
                tokens[i] = adv
                dctx += ctx[r]
                left -= step
                emit += step
            i += 1
        if est and hold == 0:
            if evicted > 0:
                # SGLang's retract_decode: the ratio the remaining batch has shown, plus
                # retract_decode_steps tokens each, over their whole outputs (at most 1)
                dec = 0.0
                tot = 0.0
                for i in range(nrun):
                    dec += gen[running[i]]
                    tot += out[running[i]]
                if tot > 0:
                    ratio = min(1.0, (dec + EST_RETRACT_STEPS * nrun) / tot)
            elif emit > 0:
                ratio = max(EST_MIN, ratio - EST_DECAY)
        # 2. running prefills take their next chunk
        for i in range(nrun):
            r = running[i]
            if ctx[r] < target[r] and left > 0:
                q = min(target[r] - ctx[r], left)
                if q > chunk:
                    q = chunk
                have = (ctx[r] + B - 1) // B
                need = 0 if reserve else (ctx[r] + q + B - 1) // B - have
                kv_high = max(kv_high, blocks - free + need)
                if need > free:
                    q = free * B + have * B - ctx[r]
                    need = free
                if q > 0:
                    free -= need
                    tokens[i] = q
                    pairs += q * (ctx[r] + (q + 1) / 2.0)
                    left -= q
                    if ctx[r] + q == target[r]:
                        emit += 1
        # 3. admissions
        took_kv = 0
        # SGLang's PrefillAdder: free tokens less the running requests' estimate
        rem = _room(nrun, running, out, gen, ratio, free, B) if est else 0.0
        while wh < wt and nrun < max_seqs and left > 0:
            r = wq[wh]
            if kvh[r]:
                # its KV was computed by a prefill replica: hold it and decode from the
                # next iteration, no compute now
                tg = prompt[r] + gen[r] - 1
                need = (prompt[r] + out[r] + B - 1) // B if reserve else (tg + B - 1) // B
                kv_high = max(kv_high, blocks - free + need)
                if need > free:
                    break
                wh += 1
                kvh[r] = 0
                target[r] = tg
                ctx[r] = tg
                free -= need
                running[nrun] = r
                tokens[nrun] = 0
                nrun += 1
                took_kv += 1
                continue
            tg = prompt[r] + gen[r]
            q = min(tg, left)
            if q > chunk:
                q = chunk
            # reserve: the whole sequence's blocks at admission (no eviction later)
            need = (prompt[r] + out[r] + B - 1) // B if reserve else (q + B - 1) // B
            kv_high = max(kv_high, blocks - free + need)
            if need > free:
                break
            if est:
                cost = tg + (out[r] - gen[r]) * ratio
                if cost > rem:
                    break
                rem -= cost
            wh += 1
            target[r] = tg
            free -= need
            running[nrun] = r
            tokens[nrun] = q
            nrun += 1
            pairs += q * (q + 1) / 2.0
            left -= q
            if q == tg:
                emit += 1
        total = budget - left
        if total == 0 and took_kv > 0:
            continue  # only arrivals with their KV were admitted: they decode next
        if total == 0:
            # every block is held by prefills that cannot grow: preempt the latest admitted
            # (the caller checks that one request alone always fits)
            freed, wh = _evict(running[nrun - 1], ctx, npre, wq, wh, B)
            free += freed
            nrun -= 1
            continue
        dt = linear[total] + c_kv * dctx + c_pf * pairs + c_head * emit
        if ncross > 0:  # pipeline stages: each prefill chunk crosses them in the round
            dt = _crossing(dt, nrun, tokens, running, ctx, target, cross, c_pfx)
        dt = dt * scale
        if host_s * emit > dt:  # the overlapped host's share of the iteration binds
            dt = host_s * emit
        kvint += (blocks - free) * dt
        t += dt
        busy += dt
        iters += 1
        # 4. apply the iteration
        k = 0
        for i in range(nrun):
            r = running[i]
            q = tokens[i]
            keep = True
            if q > 0:
                if ctx[r] >= target[r]:  # a decode
                    ctx[r] += q
                    gen[r] += q
                    if draft:
                        acc[r] += extra
                else:
                    ctx[r] += q
                    if ctx[r] == target[r]:
                        if gen[r] == 0:
                            first[r] = t
                            if judging and counted[r] and not judged[r] and not (
                                    (t - arr[r]) <= ttft_lim):
                                judged[r] = 1
                                misses += 1
                        gen[r] += 1
                if gen[r] >= out[r]:
                    done[r] = t
                    if judging and counted[r] and not judged[r]:
                        judged[r] = 1
                        # the TPOT of summarize: (done - first) / (out - 1), out > 1
                        if out[r] > 1 and not ((t - first[r]) / (out[r] - 1) <= tpot_lim):
                            misses += 1
                        else:
                            good += 1
                    free += ((prompt[r] + out[r] + B - 1) // B if reserve
                             else (ctx[r] + B - 1) // B)
                    finished += 1
                    keep = False
            if keep:
                running[k] = r
                k += 1
        nrun = k
        if judging:
            if misses > allowed:
                stopped = 1
                break
            if last and to_judge - good <= allowed:
                stopped = 2  # even if every request not yet judged misses, it passes
                break
    return first, done, npre, busy, kvint, iters, t, misses, good, stopped, kv_high

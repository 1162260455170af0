"""The scheduler of one replica, iteration by iteration: vLLM-style continuous batching with a
paged KV cache, chunked prefill and preemption by recomputation (Kwon et al., SOSP'23).

Each iteration, with a budget of ``max_batched_tokens`` tokens and ``max_seqs`` sequences:

0. a request that arrives with its KV cache (the decode pool of a disaggregated
   deployment) is admitted like any other, holding its context's blocks, and decodes
   from the next iteration;
1. every running sequence past its prefill decodes one token (with multi-token
   prediction, 1 + d tokens go through the model and the sequence gains one plus the
   accepted drafts: a running sum of the mean acceptance, so deterministic with the right
   mean); a sequence whose KV cache needs a new block when none is free preempts the most
   recently admitted running sequence (its blocks are freed; it returns to the head of
   the queue and later re-prefills its prompt and the tokens it had generated);
2. running sequences still prefilling take the next chunk of their prompt;
3. waiting requests are admitted in arrival order while the budget, ``max_seqs`` and free
   blocks allow (head-of-line: the first that does not fit stops admission); with
   ``kv_admission: reserve`` (TensorRT-LLM's GUARANTEED_NO_EVICT) a request is admitted
   only when the blocks of its whole sequence (prompt + output) are free, and they are
   held until it leaves, so nothing is ever preempted;
4. the iteration takes :meth:`accelsim.llm.perf.ReplicaModel.iteration_s` of its tokens; a
   sequence finishing its prefill emits its first token at the end of the iteration (its
   TTFT); each decode emits one token; a sequence with all its output tokens leaves.

:func:`run_fast` is the compiled recursion; :func:`run_simpy` the same policy written as
simpy processes over Python lists (the reference; tests check they agree exactly).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numba import njit


@dataclass(frozen=True)
class ReplicaTrace:
    """Per request (in arrival order): first-token and completion times, preemptions;
    per run: busy seconds, the time integral of KV blocks in use, iterations."""

    first_s: np.ndarray
    done_s: np.ndarray
    preemptions: np.ndarray
    busy_s: float
    kv_block_s: float
    iterations: int
    end_s: float
    kind: int = -1  # the replica kind (index in the job's replicas) that produced it


@njit(cache=True)
def _evict(v, ctx, npre, wq, wh, B):  # pragma: no cover - compiled
    """Preempt request v: free its blocks (returned), drop its KV, put it at the head of
    the waiting deque (whose new head index is returned)."""
    freed = (ctx[v] + B - 1) // B
    ctx[v] = 0
    npre[v] += 1
    wq[wh - 1] = v
    return freed, wh - 1


@njit(cache=True)
def _run(arr, prompt, out, ready, linear, c_kv, c_pf, c_head, blocks, B, budget,
         max_seqs, reserve, draft, extra, scale):  # pragma: no cover - compiled
    n = len(arr)
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
    while finished < n:
        while nxt < n and arr[nxt] <= t:
            wq[wt] = nxt
            wt += 1
            nxt += 1
        if nrun == 0 and wh == wt:
            t = arr[nxt]
            continue
        left = budget
        dctx = 0.0
        pairs = 0.0
        emit = 0
        # 1. decodes (in admission order); preempt from the back when blocks run out
        i = 0
        while i < nrun:
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
                    while free < need and nrun - 1 > i:
                        freed, wh = _evict(running[nrun - 1], ctx, npre, wq, wh, B)
                        free += freed
                        nrun -= 1
                    if free < need:
                        # no one left to preempt but itself: it waits for a block
                        freed, wh = _evict(r, ctx, npre, wq, wh, B)
                        free += freed
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
        # 2. running prefills take their next chunk
        for i in range(nrun):
            r = running[i]
            if ctx[r] < target[r] and left > 0:
                q = min(target[r] - ctx[r], left)
                have = (ctx[r] + B - 1) // B
                need = 0 if reserve else (ctx[r] + q + B - 1) // B - have
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
        while wh < wt and nrun < max_seqs and left > 0:
            r = wq[wh]
            if kvh[r]:
                # its KV was computed by a prefill replica: hold it and decode from the
                # next iteration, no compute now
                tg = prompt[r] + gen[r] - 1
                need = (prompt[r] + out[r] + B - 1) // B if reserve else (tg + B - 1) // B
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
            # reserve: the whole sequence's blocks at admission (no eviction later)
            need = (prompt[r] + out[r] + B - 1) // B if reserve else (q + B - 1) // B
            if need > free:
                break
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
        dt = (linear[total] + c_kv * dctx + c_pf * pairs + c_head * emit) * scale
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
                        gen[r] += 1
                if gen[r] >= out[r]:
                    done[r] = t
                    free += ((prompt[r] + out[r] + B - 1) // B if reserve
                             else (ctx[r] + B - 1) // B)
                    finished += 1
                    keep = False
            if keep:
                running[k] = r
                k += 1
        nrun = k
    return first, done, npre, busy, kvint, iters, t


def _ready(n: int, ready: np.ndarray | None) -> np.ndarray:
    return np.zeros(n, np.int64) if ready is None else ready.astype(np.int64)


def run_fast(arr: np.ndarray, prompt: np.ndarray, out: np.ndarray, rm: object,
             ready: np.ndarray | None = None) -> ReplicaTrace:
    """One replica's requests (arrival-sorted) through the compiled scheduler; ``ready``
    marks requests that arrive with their prompt's KV cache and first token (the decode
    pool of a disaggregated deployment)."""
    first, done, npre, busy, kvint, iters, end = _run(
        np.ascontiguousarray(arr, dtype=np.float64), prompt.astype(np.int64),
        out.astype(np.int64), _ready(len(arr), ready), rm.linear_s, rm.c_kv, rm.c_pf, rm.c_head,  # type: ignore[attr-defined]
        rm.kv_blocks, rm.block_tokens, rm.max_batched_tokens, rm.max_seqs,  # type: ignore[attr-defined]
        int(rm.reserve), int(rm.draft_tokens), float(rm.draft_extra),  # type: ignore[attr-defined]
        float(rm.mtp_scale))  # type: ignore[attr-defined]
    return ReplicaTrace(first, done, npre, float(busy), float(kvint), int(iters), float(end))


def run_simpy(arr: np.ndarray, prompt: np.ndarray, out: np.ndarray, rm: object,
              ready: np.ndarray | None = None) -> ReplicaTrace:
    """The same policy as simpy processes: an arrival process fills the queue and wakes
    the replica, whose process runs iterations while there is work (reference engine)."""
    import simpy

    B, blocks = rm.block_tokens, rm.kv_blocks  # type: ignore[attr-defined]
    budget, max_seqs = rm.max_batched_tokens, rm.max_seqs  # type: ignore[attr-defined]
    reserve = bool(rm.reserve)  # type: ignore[attr-defined]
    extra = float(rm.draft_extra)  # type: ignore[attr-defined]
    step = 1 + int(rm.draft_tokens)  # type: ignore[attr-defined]
    n = len(arr)
    acc = [0.0] * n
    first = [float("nan")] * n
    done = [float("nan")] * n
    npre = [0] * n
    ctx = [0] * n
    gen = [int(x) for x in _ready(n, ready)]
    kvh = list(gen)
    target = [0] * n
    waiting: deque[int] = deque()
    running: list[int] = []
    state = {"free": blocks, "busy": 0.0, "kv": 0.0, "iters": 0, "finished": 0}
    env = simpy.Environment()
    wake = [env.event()]

    def arrivals() -> object:
        for i in range(n):
            yield env.timeout(max(arr[i] - env.now, 0.0))
            waiting.append(i)
            if not wake[0].triggered:
                wake[0].succeed()

    def blocks_of(c: int) -> int:
        return -(-c // B)

    def evict(v: int) -> None:
        """Preempt v: free its blocks, drop its KV, back to the head of the queue."""
        state["free"] += blocks_of(ctx[v])
        ctx[v] = 0
        npre[v] += 1
        waiting.appendleft(v)

    def replica() -> object:
        while state["finished"] < n:
            if not running and not waiting:
                wake[0] = env.event()
                yield wake[0]
                continue
            left, dctx, pairs, emit = budget, 0.0, 0.0, 0
            sched: dict[int, int] = {}
            i = 0
            while i < len(running):
                r = running[i]
                if ctx[r] >= target[r] and left >= step:
                    adv = min(1 + int(math.floor(acc[r] + extra) - math.floor(acc[r])),
                              out[r] - gen[r])
                    need = blocks_of(ctx[r] + adv) - blocks_of(ctx[r])
                    if not reserve and need > 0:
                        while state["free"] < need and len(running) - 1 > i:
                            evict(running.pop())
                        if state["free"] < need:
                            evict(running.pop(i))
                            continue
                        state["free"] -= need
                    sched[r] = adv
                    dctx += ctx[r]
                    left -= step
                    emit += step
                i += 1
            for r in running:
                if ctx[r] < target[r] and left > 0:
                    q = min(target[r] - ctx[r], left)
                    have = blocks_of(ctx[r])
                    need = 0 if reserve else blocks_of(ctx[r] + q) - have
                    if need > state["free"]:
                        q = state["free"] * B + have * B - ctx[r]
                        need = state["free"]
                    if q > 0:
                        state["free"] -= need
                        sched[r] = q
                        pairs += q * (ctx[r] + (q + 1) / 2.0)
                        left -= q
                        if ctx[r] + q == target[r]:
                            emit += 1
            took_kv = 0
            while waiting and len(running) < max_seqs and left > 0:
                r = waiting[0]
                if kvh[r]:
                    tg = prompt[r] + gen[r] - 1
                    need = blocks_of(prompt[r] + out[r]) if reserve else blocks_of(tg)
                    if need > state["free"]:
                        break
                    waiting.popleft()
                    kvh[r] = 0
                    target[r] = tg
                    ctx[r] = tg
                    state["free"] -= need
                    running.append(r)
                    took_kv += 1
                    continue
                tg = prompt[r] + gen[r]
                q = min(tg, left)
                need = blocks_of(prompt[r] + out[r]) if reserve else blocks_of(q)
                if need > state["free"]:
                    break
                waiting.popleft()
                target[r] = tg
                state["free"] -= need
                running.append(r)
                sched[r] = q
                pairs += q * (q + 1) / 2.0
                left -= q
                if q == tg:
                    emit += 1
            total = budget - left
            if total == 0 and took_kv > 0:
                continue
            if total == 0:
                evict(running.pop())
                continue
            dt = float(rm.iteration_s(total, dctx, pairs, emit))  # type: ignore[attr-defined]
            state["kv"] += (blocks - state["free"]) * dt
            state["busy"] += dt
            state["iters"] += 1
            yield env.timeout(dt)
            kept = []
            for r in running:
                q = sched.get(r, 0)
                if q > 0:
                    if ctx[r] >= target[r]:
                        ctx[r] += q
                        gen[r] += q
                        acc[r] += extra
                    else:
                        ctx[r] += q
                        if ctx[r] == target[r]:
                            if gen[r] == 0:
                                first[r] = env.now
                            gen[r] += 1
                    if gen[r] >= out[r]:
                        done[r] = env.now
                        state["free"] += (blocks_of(prompt[r] + out[r]) if reserve
                                          else blocks_of(ctx[r]))
                        state["finished"] += 1
                        continue
                kept.append(r)
            running[:] = kept

    env.process(arrivals())
    env.process(replica())
    env.run()
    return ReplicaTrace(np.array(first), np.array(done), np.array(npre), state["busy"],
                        state["kv"], state["iters"], env.now)

"""The scheduler of :mod:`accelsim.llm.engine` in plain Python, for small runs: the compiled
loop costs nothing per request but about 0.45 s to load numba and its CPU target in a new
process, more than a small job's whole run here.

It is the same loop with the same floating-point operations in the same order, so its
results equal the compiled loop's bit for bit (``tests/llm/test_engine_events.py``), but
it does not visit every running sequence every iteration. Between a sequence's admission
and its last prefill chunk it is handled one by one, as in the compiled loop; once it
decodes, every iteration adds one token to its context and one to its output, so its
context is ``base + iteration`` and the decoding sequences are kept as aggregates:

- the context sum an iteration's attention reads (``c_kv * sum of contexts``):
  ``sum(base) + decoding x iteration``;
- the blocks the iteration's decodes ask for (a sequence needs one when its context is a
  multiple of the block size ``B``): the count of bases congruent to ``-iteration`` mod ``B``;
- the completions: a heap of the iterations at which each sequence's output is complete.

An iteration without prefills or waiting requests is then a few operations, whatever the
batch. The engine covers what a plain chatbot replica does: one token per decode (no
multi-token prediction), blocks on demand (not ``kv_admission: reserve``), no request
arriving with its KV cache, and ``max_seqs <= max_batched_tokens`` (every running
sequence decodes every iteration). A run that would preempt a sequence (the KV cache
full) is abandoned and runs compiled (:class:`Budget`).
"""

from __future__ import annotations

import heapq
import math
import sys
from typing import Any

import numpy as np

from accelsim.llm.engine import ReplicaTrace, run_fast

# A job's fast-engine runs take this engine while they are small: at most MAX_REQUESTS
# requests in all and MAX_ITERATIONS iterations over its replicas (a run past what is left
# is abandoned and it and the rest run compiled). Measured (Llama 2 70B on 4 x H100, 2,000
# requests a replica): 0.3 us per iteration without prefills or waiting requests, 1-2 us
# with, and about 3 us per request for its admission, prefill and completion (8.5 us a
# request at 8 requests/s, 10 iterations each; 48 us at 0.5/s, 160 each), against about
# 0.5 s to load the compiled loop in a new process (numba, its CPU target with the
# scipy.linalg import of its BLAS check, the cached machine code) and then 2 us a request.
# The bounds cost at most about 0.15 s when a run is abandoned.
MAX_REQUESTS = 20_000
MAX_ITERATIONS = 400_000


def prefer(requests: int) -> bool:
    """Whether a job's fast-engine runs of ``requests`` requests should try this engine:
    few enough, and the compiled loop not loaded already (numba not imported)."""
    return requests <= MAX_REQUESTS and "numba" not in sys.modules


class Budget:
    """The iterations left to a job's runs on this engine (:data:`MAX_ITERATIONS`); its
    :meth:`run` is a runner of :func:`accelsim.llm.pool.run_pool`."""

    def __init__(self, iterations: int = MAX_ITERATIONS) -> None:
        self.left = iterations

    def run(self, arr: np.ndarray, prompt: np.ndarray, out: np.ndarray, rm: Any,
            ready: np.ndarray | None = None) -> ReplicaTrace:
        """:func:`accelsim.llm.engine.run_fast`'s trace: from this engine while the budget
        lasts and it covers the run (:func:`covers`; the run does not preempt), else from
        the compiled loop (and every later run too once one is abandoned)."""
        if self.left > 0 and covers(rm, ready):
            tr = run_events(arr, prompt, out, rm, self.left)
            if tr is not None:
                self.left -= tr.iterations
                return tr
            self.left = 0
        return run_fast(arr, prompt, out, rm, ready)


def covers(rm: Any, ready: np.ndarray | None = None) -> bool:
    """Whether this engine runs replicas of model ``rm`` (module docstring)."""
    return (int(rm.draft_tokens) == 0 and not rm.reserve and not rm.prefill_first
            and not rm.estimate
            and rm.max_seqs <= rm.max_batched_tokens
            and (ready is None or not ready.any()))


def run_events(arr: np.ndarray, prompt: np.ndarray, out: np.ndarray, rm: Any,
               max_iterations: int = 2**62) -> ReplicaTrace | None:
    """One replica's requests (arrival-sorted) through the scheduler (module docstring);
    None when the run leaves this engine's scope (a preemption) or takes more than
    ``max_iterations`` iterations (checked between events: a stretch of decodes without an
    arrival or a completion runs whole, so it may run up to that stretch more)."""
    n = len(arr)
    at = np.ascontiguousarray(arr, dtype=np.float64).tolist()
    need_tokens = prompt.astype(np.int64).tolist()
    outs = out.astype(np.int64).tolist()
    lin = np.asarray(rm.linear_s, dtype=np.float64).tolist()
    c_kv, c_pf, c_head = float(rm.c_kv), float(rm.c_pf), float(rm.c_head)
    host_s = float(rm.host_overlap_s)  # the overlapped host's seconds per emitting sequence
    scale = float(rm.mtp_scale)
    blocks, B = int(rm.kv_blocks), int(rm.block_tokens)
    budget, max_seqs = int(rm.max_batched_tokens), int(rm.max_seqs)
    chunk = int(rm.chunk)  # a request's most prompt tokens per iteration
    cross = np.asarray(rm.cross_s, dtype=np.float64).tolist()  # pipeline: a chunk's crossing
    c_pfx = float(rm.c_pf_cross)
    first = [float("nan")] * n
    done = [float("nan")] * n
    # prefilling sequences in admission order: [request, tokens in its KV cache, this
    # iteration's chunk]
    pre: list[list[int]] = []
    # decoding sequences: context = base + iteration
    ndec = 0
    base_sum = 0
    residues = [0] * B  # decoding sequences by base mod B
    ends: list[tuple[int, int, int]] = []  # (iteration its output completes, request, base)
    nxt = 0  # next arrival
    wh = 0  # head of the waiting requests: wh .. nxt-1, in arrival order
    nrun = 0
    free = blocks
    t = busy = kvint = 0.0
    iters = finished = kv_high = 0
    no_pf = c_pf * 0.0  # the prefill term of an iteration without prefills
    while finished < n:
        if iters > max_iterations:
            return None
        while nxt < n and at[nxt] <= t:
            nxt += 1
        if nrun == 0 and wh == nxt:
            t = at[nxt]
            continue
        # 1. decodes: each running sequence past its prefill, a block for those at a
        # block boundary (granted in turn, so the last asks for the most)
        cnt = residues[-iters % B] if ndec else 0
        if cnt:
            kv_high = max(kv_high, blocks - free + cnt)
            if free < cnt:
                return None  # a preemption
            free -= cnt
        dctx = float(base_sum + ndec * iters)
        left = budget - ndec
        emit = ndec
        if not pre and wh == nxt:
            # decodes only, until an arrival or a completion: the batch's linear time and
            # head term stay, its context sum grows by the batch each iteration
            lin_d, head = lin[ndec], c_head * emit
            host = host_s * emit
            next_end = ends[0][0] if ends else -1
            next_at = at[nxt] if nxt < n else math.inf
            d = base_sum + ndec * iters
            dt = max((lin_d + c_kv * dctx + no_pf + head) * scale, host)
            kvint += (blocks - free) * dt
            t += dt
            busy += dt
            iters += 1
            while iters != next_end and next_at > t:
                cnt = residues[-iters % B]
                if cnt:
                    if blocks - free + cnt > kv_high:
                        kv_high = blocks - free + cnt
                    if free < cnt:
                        return None
                    free -= cnt
                d += ndec
                dt = max((lin_d + c_kv * float(d) + no_pf + head) * scale, host)
                kvint += (blocks - free) * dt
                t += dt
                busy += dt
                iters += 1
        else:
            pairs = 0.0
            xmax = 0.0  # the longest crossing of a prefill chunk (pipeline stages)
            # 2. running prefills take their next chunk
            for s in pre:
                s[2] = 0
                if left > 0:
                    c = s[1]
                    q = min(need_tokens[s[0]] - c, left)
                    if q > chunk:
                        q = chunk
                    have = (c + B - 1) // B
                    need = (c + q + B - 1) // B - have
                    kv_high = max(kv_high, blocks - free + need)
                    if need > free:
                        q = free * B + have * B - c
                        need = free
                    if q > 0:
                        free -= need
                        s[2] = q
                        pq = q * (c + (q + 1) / 2.0)
                        pairs += pq
                        if cross:
                            x = cross[q] + c_pfx * pq
                            if x > xmax:
                                xmax = x
                        left -= q
                        if c + q == need_tokens[s[0]]:
                            emit += 1
            # 3. admissions in arrival order (head-of-line)
            while wh < nxt and nrun < max_seqs and left > 0:
                tg = need_tokens[wh]
                q = min(tg, left)
                if q > chunk:
                    q = chunk
                need = (q + B - 1) // B
                kv_high = max(kv_high, blocks - free + need)
                if need > free:
                    break
                pre.append([wh, 0, q])
                wh += 1
                free -= need
                nrun += 1
                pq = q * (q + 1) / 2.0
                pairs += pq
                if cross:
                    x = cross[q] + c_pfx * pq
                    if x > xmax:
                        xmax = x
                left -= q
                if q == tg:
                    emit += 1
            total = budget - left
            if total == 0:
                return None  # the compiled loop would preempt
            base = lin[total] + c_kv * dctx + c_pf * pairs + c_head * emit
            if xmax > base:  # a prefill chunk's micro-batch crosses the pipeline
                base = xmax
            dt = max(base * scale, host_s * emit)
            kvint += (blocks - free) * dt
            t += dt
            busy += dt
            iters += 1
            # 4. prefills that took a chunk: the last one emits the first token
            keep = []
            for s in pre:
                q = s[2]
                if q == 0:
                    keep.append(s)
                    continue
                r = s[0]
                s[1] += q
                c = s[1]
                if c != need_tokens[r]:
                    keep.append(s)
                    continue
                first[r] = t
                if outs[r] <= 1:
                    done[r] = t
                    free += (c + B - 1) // B
                    finished += 1
                    nrun -= 1
                    continue
                b = c - iters  # decodes from the next iteration: context = b + iteration
                ndec += 1
                base_sum += b
                residues[b % B] += 1
                heapq.heappush(ends, (outs[r] - 1 + iters, r, b))
            pre = keep
        # 4. decodes whose output is complete leave
        while ends and ends[0][0] == iters:
            _, r, b = heapq.heappop(ends)
            done[r] = t
            free += (b + iters + B - 1) // B
            finished += 1
            nrun -= 1
            ndec -= 1
            base_sum -= b
            residues[b % B] -= 1
    return ReplicaTrace(np.array(first), np.array(done), np.zeros(n, np.int64), busy, kvint,
                        iters, t, kv_high=kv_high)

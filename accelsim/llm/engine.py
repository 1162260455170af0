"""The scheduler of one replica, iteration by iteration: vLLM-style continuous batching with a
paged KV cache, chunked prefill and preemption by recomputation (Kwon et al., SOSP'23).

Each iteration, with a budget of ``max_batched_tokens`` tokens and ``max_seqs`` sequences:

0. a request that arrives with its KV cache (the decode pool of a disaggregated
   deployment) is admitted like any other, holding its context's blocks, and decodes
   from the next iteration;
1. every running sequence past its prefill decodes one token (with ``prefill_first``, not
   in an iteration that can prefill: a running sequence has prompt tokens left or the first
   waiting request can be admitted); (with multi-token
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
   with ``kv_admission: estimate`` (SGLang's PrefillAdder) a request is admitted only while
   its prompt plus ``ratio`` x its output fits in the free tokens less ``ratio`` x the
   running requests' remaining outputs; the ratio starts at 0.7, falls by 0.001 per decode
   pass to 0.1, and after a pass that preempted is reset to the remaining batch's decoded
   share plus 20 tokens each (SGLang's retract_decode);
   in steps 2 and 3 a request takes at most ``chunk`` prompt tokens an iteration (with
   pipeline stages one micro-batch's max_num_tokens), and its chunk's crossing of the
   pipeline is the least the iteration takes;
4. the iteration takes :meth:`accelsim.llm.perf.ReplicaModel.iteration_s` of its tokens; a
   sequence finishing its prefill emits its first token at the end of the iteration (its
   TTFT); each decode emits one token; a sequence with all its output tokens leaves.

:func:`run_fast` is the compiled recursion; :func:`accelsim.llm.engine_simpy.run_simpy` the
same policy written as simpy processes over Python lists (the reference; tests check they
agree exactly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


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
    kv_high: int = 0  # most KV blocks a check asked to have in use (granted or not)


def ready_flags(n: int, ready: np.ndarray | None) -> np.ndarray:
    """1 for each request that arrives with its KV cache (``ready``; none when None)."""
    return np.zeros(n, np.int64) if ready is None else ready.astype(np.int64)


def run_fast(arr: np.ndarray, prompt: np.ndarray, out: np.ndarray, rm: Any,
             ready: np.ndarray | None = None) -> ReplicaTrace:
    """One replica's requests (arrival-sorted) through the compiled scheduler; ``ready``
    marks requests that arrive with their prompt's KV cache and first token (the decode
    pool of a disaggregated deployment)."""
    return _call(arr, prompt, out, rm, ready, None)[0]


@dataclass(frozen=True)
class Judge:
    """What :func:`run_judged` holds each request to: ``counted`` marks the requests in the
    statistics (after the warm-up), the TTFT and TPOT targets in seconds, the misses allowed
    (``budget``) and ``last``: whether a run may stop as soon as it cannot fail."""

    counted: np.ndarray
    ttft_s: float
    tpot_s: float
    budget: int
    last: bool = True


@dataclass(frozen=True)
class Verdict:
    """The SLO outcome of a judged run: requests that missed a target and that met both,
    and ``stopped``: 0 the run finished, 1 it stopped at more than ``budget`` misses (it
    fails), 2 it stopped when it could no longer fail."""

    misses: int
    good: int
    stopped: int


def run_judged(arr: np.ndarray, prompt: np.ndarray, out: np.ndarray, rm: Any, judge: Judge
               ) -> tuple[ReplicaTrace, Verdict]:
    """:func:`run_fast` that judges each counted request as its outcome becomes known (its
    TTFT at its first token, or as soon as it waits past the target without one; its TPOT
    at completion, as :func:`accelsim.llm.sim.summarize` computes both) and stops once the
    verdict is certain. A run that stops early leaves the later requests' times NaN."""
    tr, (misses, good, stopped) = _call(arr, prompt, out, rm, None, judge)
    return tr, Verdict(misses, good, stopped)


def _call(arr: np.ndarray, prompt: np.ndarray, out: np.ndarray, rm: Any,
          ready: np.ndarray | None, judge: Judge | None
          ) -> tuple[ReplicaTrace, tuple[int, int, int]]:
    n = len(arr)
    j = judge or Judge(_NONE, 0.0, 0.0, -1, False)
    from accelsim.llm.engine_kernel import _run

    counted = (j.counted.astype(np.int8) if judge is not None else np.zeros(n, np.int8))
    (first, done, npre, busy, kvint, iters, end, misses, good, stopped, kv_high) = _run(
        np.ascontiguousarray(arr, dtype=np.float64), prompt.astype(np.int64),
        out.astype(np.int64), ready_flags(n, ready), rm.linear_s, rm.c_kv, rm.c_pf,
        rm.c_head, float(rm.host_overlap_s), rm.kv_blocks, rm.block_tokens,
        rm.max_batched_tokens, rm.max_seqs, int(rm.chunk),
        np.ascontiguousarray(rm.cross_s, dtype=np.float64), float(rm.c_pf_cross),
        int(rm.reserve), int(rm.prefill_first), int(rm.estimate), int(rm.draft_tokens),
        float(rm.draft_extra), float(rm.mtp_scale),
        counted, float(j.ttft_s), float(j.tpot_s), int(j.budget), int(j.last))
    return (ReplicaTrace(first, done, npre, float(busy), float(kvint), int(iters),
                         float(end), kv_high=int(kv_high)), (int(misses), int(good),
                                                            int(stopped)))


_NONE = np.zeros(0, np.int8)

"""Unaligned Python garbage collection: every rendezvous waits for the rank that is collecting.

CPython's cyclic garbage collector runs when a rank's own allocation counters cross their
thresholds (700 net container allocations for generation 0, every 10th for generation 1,
every 10th of those for a full collection once the objects promoted since the last full one
exceed a quarter of the long-lived ones). Each rank of a training job crosses them at its own
moments (its data loader, logging, host threads), so the pauses are unaligned: a rank that is
collecting reaches the next collective late, and every other rank of the job waits for it at
that rendezvous ("Python triggers garbage collection for rank0 during the first allgather,
rank1 during the second allgather, and so on": torchtitan issue #696). The frameworks that know
this disable the automatic collector and collect on every rank at the same step: Megatron-LM's
``--manual-gc`` (megatron/training/arguments.py, since 8552f909, 2023-10-27; off by default),
torchtitan's ``gc_freq`` (``GarbageCollection``, default every 50 steps, PR #148, 2024-03-20),
llm-foundry's ``ScheduledGarbageCollector`` callback (since 2023-05, only when a run lists it).

The cost per step, for a job of p ranks that each spend ``w`` seconds per step in automatic
collections, in pauses of ``T`` seconds each (``q = w / T`` pauses per rank and step), with R
rendezvous per step at which all ranks meet:

    stall = R T (1 - (1 - q / R)^p)

Each rendezvous interval waits for the longest pause among its p ranks, T if any of them
collected in it (the expected maximum over the ranks of a pause that is T with probability
q / R and 0 otherwise). Two limits:

  * rare pauses (p q << R): stall = p w, linear in the ranks: every rank's pause is paid by
    the whole job, and a short step (a small model, many ranks) loses the largest share;
  * frequent pauses (p q >> R): stall = R T, every interval waits for one pause (saturated).

The per-rank collection time ``w`` scales with the Python objects a step creates and keeps
alive past a young collection, taken proportional to the layer passes a rank runs per step:
``w = g L_stage m`` (g per layer and micro-batch, the stack's ``gc.unaligned_us_per_layer``).
An aligned stack pays none of it (its scheduled collection every N steps is a fraction of a
per-mille; not priced). The numbers and what they rest on: docs/_notes/gc-pauses.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accelsim import xp


def rendezvous_per_step(layers_per_stage: Any, micro_batches: Any) -> Any:
    """Synchronising collectives per step that every rank waits at (ASSUMPTION: one per
    layer and pass, forward and backward, of every micro-batch: an FSDP unit's all-gather or
    reduce-scatter, a tensor-parallel collective, a pipeline send of the layer's stage)."""
    return xp.maximum(2.0 * layers_per_stage * micro_batches, 1.0)


def unaligned_gc_stall(ranks: Any, rank_gc_s: Any, pause_s: Any, rendezvous: Any) -> Any:
    """Seconds a step waits for unaligned collections: R T (1 - (1 - q/R)^p) with
    q = rank_gc_s / pause_s (module docstring); p rank_gc_s where pause_s is 0 (the rare
    limit). 0 where rank_gc_s is 0."""
    if type(rank_gc_s) is float and rank_gc_s == 0.0:
        return 0.0
    p = xp.maximum(ranks, 1.0)
    rare = p * rank_gc_s
    T = xp.maximum(pause_s, 1e-30)
    x = xp.minimum(rank_gc_s / (T * rendezvous), 1.0)  # probability per rank and interval
    # (1 - x)^p = exp(p log1p(-x)); x = 1 saturates every interval
    sat = rendezvous * T * -np.expm1(p * np.log1p(-xp.minimum(x, 1.0 - 1e-15)))
    out = xp.where(pause_s > 0, xp.minimum(sat, rare), rare)
    return float(out) if isinstance(out, np.floating) else out

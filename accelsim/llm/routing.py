"""Routing an LLM job's requests over its replicas: weighted round robin by stride
scheduling (:func:`route`) in proportion to each replica kind's saturated decode throughput
(:func:`saturated_tokens_per_s`), so a mixed pool is loaded by its speed and every replica
runs independently (its requests are known up front)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from accelsim.llm.engine import ReplicaTrace
from accelsim.llm.perf import ReplicaModel


def saturated_tokens_per_s(rm: ReplicaModel, prompt: float, output: float) -> float:
    """Output tokens/s of a replica kept full (routing weights, the capacity search's
    bracket): ``seqs`` sequences (max_seqs, or as many as the KV cache holds) decode
    together at the mean context, gaining ``tokens_per_step`` each, and each request's
    prompt is prefilled at the cost per token of a full iteration plus its attention."""
    seqs = max(1, min(rm.max_seqs, int(rm.kv_tokens // max(prompt + output, 1.0)),
                      rm.max_batched_tokens))
    step = rm.decode_step_s(seqs, prompt + output / 2)
    full = rm.max_batched_tokens
    prefill = float(rm.linear_s[full]) / full * prompt + rm.c_pf * prompt * (prompt + 1) / 2
    per_request = output / rm.tokens_per_step * step / seqs + prefill
    return output / per_request


def route(n: int, weights: list[float]) -> np.ndarray:
    """Weighted round robin, smooth: replica j takes a share w_j / sum(w) of the n requests
    (largest remainders), its k-th at virtual time (k + 1/2) / share_j; requests go out in
    virtual-time order (stride scheduling, Waldspurger 1995), so every replica's requests
    are spread evenly over the stream."""
    w = np.asarray(weights, dtype=float)
    share = w / w.sum()
    exact = n * share
    counts = np.floor(exact).astype(np.int64)
    extra = n - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:extra]] += 1
    vt = np.concatenate([(np.arange(c) + 0.5) / s for c, s in zip(counts, share, strict=True)])
    owner = np.repeat(np.arange(len(w)), counts)
    return owner[np.argsort(vt, kind="stable")]


def route_groups(n: int, weights: list[float]) -> list[np.ndarray]:
    """The requests (indices, in arrival order) each replica serves (:func:`route`)."""
    where = route(n, weights)
    order = np.argsort(where, kind="stable")
    bounds = np.searchsorted(where[order], np.arange(len(weights) + 1))
    return [order[bounds[j]:bounds[j + 1]] for j in range(len(weights))]


def run_pool(arr: np.ndarray, prompt: np.ndarray, out: np.ndarray, rms: list[ReplicaModel],
             kinds: list[int], weights: list[float], runner: Any,
             ready: np.ndarray | None = None) -> tuple[list[ReplicaTrace], list[np.ndarray]]:
    """Route requests (arrival-sorted) over the replicas ``kinds`` by ``weights`` and run each
    replica; the traces and the requests (indices) each served."""
    groups = route_groups(len(arr), weights)
    traces = [replace(runner(arr[g], prompt[g], out[g], rms[k],
                             None if ready is None else ready[g]), kind=k)
              for g, k in zip(groups, kinds, strict=True)]
    return traces, groups

"""Prompt-size draws of a length distribution and the edges ``routing: size`` stands for
(the chatbot block's validator needs them, below the fleet layer that routes by them:
:mod:`accelsim.fleet.routing`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

# Draws behind a bucket's share and its histogram (seeded: deterministic).
SAMPLE = 200_000
SAMPLE_SEED = 20240415  # arXiv 2404.14527's month: any fixed seed


@lru_cache(maxsize=64)
def _draws(dist_json: str) -> np.ndarray:
    from pydantic import TypeAdapter

    from accelsim.traffic import Dist, sample

    dist = TypeAdapter(Dist).validate_json(dist_json)
    x = sample(dist, np.random.default_rng(SAMPLE_SEED), SAMPLE, integer=True)
    return np.sort(x)


def sorted_draws(dist: Any) -> np.ndarray:
    """:data:`SAMPLE` seeded whole-token draws of ``dist``, sorted (cached per distribution)."""
    return _draws(dist.model_dump_json())


def default_edges(dist: Any) -> list[int]:
    """``routing: size``: the median and 90th percentile of the prompt draws, to two
    significant digits (distinct, at least 2)."""
    x = sorted_draws(dist)
    out: list[int] = []
    for q in (0.5, 0.9):
        v = float(np.quantile(x, q))
        e = max(2, int(round(v, 1 - int(np.floor(np.log10(max(v, 1.0)))))))
        if not out or e > out[-1]:
            out.append(e)
    return out


def bucket_shares(dist: Any, edges: tuple[int, ...]) -> np.ndarray:
    """Share of requests in each bucket ``[edge_{i-1}, edge_i)`` of the prompt distribution
    (from :data:`SAMPLE` seeded draws, rounded to whole tokens as a run draws them)."""
    x = sorted_draws(dist)
    cut = np.searchsorted(x, np.asarray(edges, dtype=float), side="left")
    counts = np.diff(np.concatenate([[0], cut, [len(x)]]))
    return counts / len(x)

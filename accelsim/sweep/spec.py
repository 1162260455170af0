"""The sweep file: parameters (grids, ranges, Latin hypercube, one at a time) and metrics."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from accelsim.config import Strict, read_yaml, validate
from accelsim.errors import AccelsimError


class Param(Strict):
    """Values of one parameter: a list, or ``low``/``high`` (with ``num`` for a grid, ``log``)."""

    values: list[float] | None = None
    """The values to try; or give low and high."""
    low: float | None = None
    """Lowest value (with high and num)."""
    high: float | None = None
    """Highest value."""
    num: int = Field(default=5, ge=1, le=10_000)
    """Values between low and high (grid)."""
    log: bool = False
    """Space the values geometrically (low > 0)."""

    @model_validator(mode="after")
    def _one(self) -> Param:
        if (self.values is None) == (self.low is None or self.high is None):
            raise ValueError("give values, or low and high")
        if self.values is not None and not self.values:
            raise ValueError("values must not be empty")
        if self.low is not None and self.high is not None:
            if self.high < self.low:
                raise ValueError("high must be >= low")
            if self.log and self.low <= 0:
                raise ValueError("log spacing needs low > 0")
        return self

    def grid(self) -> list[float]:
        if self.values is not None:
            return list(self.values)
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.log:
            return list(np.geomspace(lo, hi, self.num))
        return list(np.linspace(lo, hi, self.num))

    def at(self, q: float) -> float:
        """Value at quantile q in [0, 1) (LHS)."""
        if self.values is not None:
            return float(self.values[min(int(q * len(self.values)), len(self.values) - 1)])
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.log:
            return float(math.exp(math.log(lo) + q * (math.log(hi) - math.log(lo))))
        return lo + q * (hi - lo)

    def nominal(self) -> float:
        g = self.grid()
        if self.values is not None:
            return float(g[len(g) // 2])
        return 0.5 * (float(self.low) + float(self.high))  # type: ignore[arg-type]


class Sampling(Strict):
    method: Literal["grid", "lhs", "oat"] = "grid"
    """grid (every combination), lhs (Latin hypercube) or oat (one at a time)."""
    samples: int = Field(default=100, ge=1, le=1_000_000)
    """Points drawn by lhs."""
    seed: int = Field(default=1, ge=0, le=2**63 - 1)
    """Seed of the lhs draws and uncertainty samples."""


class SweepSpec(Strict):
    name: str = Field(min_length=1)
    """Name of the sweep."""
    description: str = ""
    """Free text."""
    base: str
    """The scenario, training job or serving job varied (path relative to this file)."""
    parameters: dict[str, Param] = Field(min_length=1)
    """Dotted paths to vary: devices.<device>.<field>, a base-file key, or
    fleets.<fleet>.share.<device>."""
    sampling: Sampling = Sampling()
    """How points are chosen."""
    metrics: list[str] = Field(min_length=1)
    """What each point records (names, or 'a / b' ratios)."""
    batch_size: int | None = Field(default=None, ge=1, le=1_000_000)
    """Points per worker task (default: spread over 4 x workers)."""


def base_path(spec: SweepSpec, path: str | Path, where: str | None = None) -> Path:
    """The base file's absolute path (relative to the sweep file); it must exist."""
    base = Path(spec.base)
    if not base.is_absolute():
        base = (Path(path).resolve().parent / base).resolve()
    if not base.is_file():
        raise AccelsimError.single(where or str(path), "base", f"base file not found: {base}")
    return base


def load_sweep(path: str | Path) -> tuple[SweepSpec, Path]:
    """The sweep and its base file's absolute path (relative to the sweep file)."""
    spec = validate(SweepSpec, read_yaml(path), path)
    return spec, base_path(spec, path)


# Points one sweep may hold: each is a dict in memory and a row on disk (~1 kB together).
MAX_POINTS = 5_000_000


def _size(p: Param) -> int:
    return len(p.values) if p.values is not None else p.num


def count_points(spec: SweepSpec, where: str = "sweep") -> int:
    """Number of points, refused past :data:`MAX_POINTS` before any is built."""
    s = spec.sampling
    if s.method == "lhs":
        return s.samples
    sizes = [_size(p) for p in spec.parameters.values()]
    n = math.prod(sizes) if s.method == "grid" else 1 + 2 * len(sizes)
    if n > MAX_POINTS:
        raise AccelsimError.single(where, "parameters", f"the grid has "
                                   f"{' x '.join(map(str, sizes))} = {n:,} points "
                                   f"(~{n * 1e3 / 1e9:,.0f} GB to hold); expected at most "
                                   f"{MAX_POINTS:,} (fewer values, or sampling: lhs)")
    return n


def points(spec: SweepSpec, where: str = "sweep") -> list[dict[str, float]]:
    """Deterministic list of parameter assignments (the index is the point id)."""
    count_points(spec, where)
    names = list(spec.parameters)
    s = spec.sampling
    if s.method == "grid":
        grids = [spec.parameters[n].grid() for n in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grids)]
    if s.method == "lhs":
        from scipy.stats import qmc

        u = qmc.LatinHypercube(d=len(names), seed=s.seed).random(s.samples)
        return [{n: spec.parameters[n].at(float(u[i, j])) for j, n in enumerate(names)}
                for i in range(s.samples)]
    nominal = {n: spec.parameters[n].nominal() for n in names}
    out = [dict(nominal)]
    for n in names:
        g = spec.parameters[n].grid()
        for v in (g[0], g[-1]):
            out.append({**nominal, n: float(v)})
    return out


def fingerprint(spec: SweepSpec, base_text: str, samples: int,
                inputs: dict[str, str] | None = None) -> str:
    """Identity of a sweep's results: the sweep, its base file's text, the draws, and the
    text of every other file the evaluation reads (``inputs``: path -> text)."""
    payload = json.dumps({"spec": spec.model_dump(), "base": base_text, "samples": samples,
                          "inputs": inputs or {}}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]



"""Size sweeps: published training runs of one source that change only the model's size on
one machine (the same device, device count and metric), named by the runs' ``sweep`` (a
sweep may span a run file and its known misses).

The trend checked is the sign of d(utilisation) / d(size): the least-squares slope of the
figure (MFU or TFLOP/s per device) against log10 of the model's parameters over the sweep's
rows, ``b = sum((x - x_mean)(y - y_mean)) / sum((x - x_mean)^2)``, published and predicted;
a sweep *agrees* when both slopes have the same sign. Reported relative to the figure's mean,
in % per decade of parameters."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from accelsim.errors import AccelsimError, Problem

UTILISATION = ("mfu_pct", "eq3_tflops_per_gpu", "causal_tflops_per_gpu")
"""Metrics a sweep may compare (per-device utilisation; tokens/s falls with size anyway)."""


@dataclass(frozen=True)
class Sweep:
    name: str
    ids: tuple[str, ...]
    params: tuple[float, ...]
    published: tuple[float, ...]
    predicted: tuple[float, ...]

    @property
    def published_slope(self) -> float:
        """Published slope, relative to the published mean, per decade of parameters."""
        return slope(self.params, self.published)

    @property
    def predicted_slope(self) -> float:
        return slope(self.params, self.predicted)

    @property
    def agrees(self) -> bool:
        return math.copysign(1, self.published_slope) == math.copysign(1, self.predicted_slope)

    def to_dict(self) -> dict[str, Any]:
        return {"sweep": self.name, "runs": list(self.ids),
                "params": list(self.params), "published": list(self.published),
                "predicted": list(self.predicted), "published_slope": self.published_slope,
                "predicted_slope": self.predicted_slope, "agrees": self.agrees}


def slope(params: Iterable[float], values: Iterable[float]) -> float:
    """Least-squares slope of ``values`` against log10(``params``), over the values' mean."""
    x = [math.log10(p) for p in params]
    y = list(values)
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxx = sum((a - mx) ** 2 for a in x)
    return sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / sxx / my


def sweeps(results: Iterable[Any]) -> list[Sweep]:
    """The sweeps of ``results`` (:class:`accelsim.runs.file.RunResult`), each checked:
    training runs of one utilisation metric on one device and device count, at least
    two model sizes."""
    from accelsim.runs.file import load_runs
    from accelsim.transformer.params import model_params

    groups: dict[str, list[Any]] = {}
    for r in results:
        if r.sweep:
            groups.setdefault(r.sweep, []).append(r)
    runs: dict[str, dict[str, Any]] = {}
    out, probs = [], []
    for name, rs in groups.items():
        files = {r.file for r in rs}
        for f in files:
            if f not in runs:
                runs[f] = {run.id: run for run in load_runs(f).runs}
        spec = [runs[r.file][r.id] for r in rs]
        machine = {(s.kind, getattr(s, "metric", None), getattr(s, "device", None),
                    getattr(s, "devices", None)) for s in spec}
        sizes = [model_params(s.model) for s in spec if s.kind == "training"]
        why = ("its runs differ in kind, metric, device or device count" if len(machine) > 1 else
               f"its metric is not one of {', '.join(UTILISATION)}"
               if next(iter(machine))[1] not in UTILISATION else
               "it has fewer than two model sizes" if len(set(sizes)) < 2 else "")
        if why:
            probs.append(Problem(sorted(files)[0], f"sweep {name}", f"{why}; expected training "
                                 "runs of one metric, device and device count, changing the "
                                 "model's size"))
            continue
        order = sorted(range(len(rs)), key=lambda i: sizes[i])
        out.append(Sweep(name, tuple(rs[i].id for i in order),
                         tuple(sizes[i] for i in order),
                         tuple(rs[i].published for i in order),
                         tuple(rs[i].predicted for i in order)))
    if probs:
        raise AccelsimError(probs)
    return out

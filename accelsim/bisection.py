"""A bisection's answer from fewer probes, guided by a guess of it.

A capacity search (:mod:`accelsim.llm.search`, :mod:`accelsim.serving.sim`) is a coroutine
that yields a rate, is sent whether that rate meets the SLO and returns its answer; its
probes are whole simulations. :func:`guided` gives the same answer as such a plain search,
with the verdicts of the probes it would make inferred where one already made settles them:
a rate below one that met the SLO meets it, a rate above one that missed misses (the verdict
taken as monotone in the rate, as the bisection itself does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator

Search = Generator[float, bool, float]


def drive(search: Search, verdict: Callable[[float], bool]) -> float:
    """Run a search to its answer, each rate it yields judged by ``verdict``."""
    rate = next(search)
    while True:
        try:
            rate = search.send(verdict(rate))
        except StopIteration as stop:
            return float(stop.value)


def guided(plain: Callable[[], Search], guess: float | None, pivot: float,
           below: bool = True, first: float | None = None) -> Search:
    """``plain()``'s answer. It first probes two rates of the path the plain search would
    take if the answer were ``guess``: the highest predicted to pass below ``1 - pivot``
    of it and the lowest predicted to fail above ``1 + pivot`` (each a probe the plain
    search makes when the guess is right), then walks the plain path, probing only the
    rates neither settles (the passing runs far below the answer, each a whole run, are
    skipped). ``below`` False: no pivot below the guess; ``first``: a rate probed before
    anything else (a rival's bar); ``guess`` None: only ``first``."""
    passes: list[float] = []
    fails: list[float] = []
    if guess is not None:
        path = plain()
        try:
            rate = next(path)
            while True:
                ok = rate <= guess
                if ok and below and rate <= guess * (1 - pivot):
                    passes.append(rate)
                if not ok and rate >= guess * (1 + pivot):
                    fails.append(rate)
                rate = path.send(ok)
        except StopIteration:
            pass
    known_pass, known_fail = -math.inf, math.inf
    for p in (([first] if first is not None else [])
              + ([min(fails)] if fails else []) + ([max(passes)] if passes else [])):
        if known_pass < p < known_fail:
            if (yield p):
                known_pass = max(known_pass, p)
            else:
                known_fail = min(known_fail, p)
    walk = plain()
    rate = next(walk)
    while True:
        if rate <= known_pass:
            ok = True
        elif rate >= known_fail:
            ok = False
        else:
            ok = yield rate
            if ok:
                known_pass = max(known_pass, rate)
            else:
                known_fail = min(known_fail, rate)
        try:
            rate = walk.send(ok)
        except StopIteration as stop:
            return float(stop.value)

"""Monte Carlo over the device profiles' ranges: how sure is a ranking?

Every profile number with a ``[low, high]`` range is drawn from the triangular distribution
(low, value, high) by inverse transform of a uniform quantile. Numbers that share a cause
share their quantile (comonotonic draws): the software stack's achieved efficiencies of one
vendor's devices (``efficiency.compute``, ``memory``, ``communication``, ``random_access``:
all Ascend parts run CANN, all NVIDIA parts CUDA) move together, as do one vendor's
annual failure rates; every other ranged number is drawn on its own.

:func:`monte_carlo` evaluates every draw through the fleet's one fast evaluation path
(:class:`accelsim.fleet.FastEvaluator`, the sweeps' path) and ranks the fleets each time by
the scenario's rule; :func:`summarise` gives the 5-50-95 % band of every fleet metric and
``P(A beats B)``, the share of draws in which mix A ranks above mix B.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accelsim.devices import SECTIONS

# fields whose uncertainty is one cause per vendor (the software stack; the fleet's hardware)
SHARED = {"efficiency.compute", "efficiency.memory", "efficiency.communication",
          "efficiency.all_to_all", "efficiency.random_access", "reliability.annual_failure_rate"}
# Most draws one run may ask for (uncertainty --samples, sweep --samples): the draws are held
# in memory (~30 ranged numbers of ~100 B each per draw: 0.3 GB at the maximum) and each is
# one fast evaluation of the scenario (hours at the maximum: a progress bar shows the ETA).
MAX_SAMPLES = 100_000
METRICS = ("objective", "tco_usd_per_year", "capex_usd", "power_MW", "served_fraction")


def _triangular_ppf(u: float, low: float, mode: float, high: float) -> float:
    """Inverse CDF of the triangular distribution."""
    if high <= low:
        return mode
    c = (mode - low) / (high - low)
    if u < c:
        return low + float(np.sqrt(u * (high - low) * (mode - low)))
    return high - float(np.sqrt((1 - u) * (high - low) * (high - mode)))


def ranged_fields(profiles: dict[str, dict[str, Any]]) -> list[tuple[str, str, tuple[str, str]]]:
    """(device ref, 'section.key', correlation group) of every ranged number."""
    out = []
    for ref, prof in profiles.items():
        for sec in SECTIONS:
            for key, q in prof[sec].items():
                if q is None:  # an optional field left out
                    continue
                r = q.get("range")
                if r and q["value"] != "unsupported" and r[1] > r[0]:
                    field = f"{sec}.{key}"
                    group = (prof["vendor"], field) if field in SHARED else (ref, field)
                    out.append((ref, field, group))
    return out


def draws(profiles: dict[str, dict[str, Any]], n: int, seed: int, correlated: bool = True
          ) -> list[dict[str, dict[str, float]]]:
    """``n`` draws ``{ref: {'section.key': value}}`` of every ranged number (see the module
    docstring); ``correlated`` False draws every number on its own."""
    from accelsim.devices import whole_fields

    fields = ranged_fields(profiles)
    whole = whole_fields()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        u: dict[Any, float] = {}
        d: dict[str, dict[str, float]] = {}
        for ref, field, group in fields:
            key = group if correlated else (ref, field)
            if key not in u:
                u[key] = float(rng.random())
            sec, name = field.split(".")
            q = profiles[ref][sec][name]
            low, high = q["range"]
            mode = min(max(float(q["value"]), low), high)
            v = _triangular_ppf(u[key], low, mode, high)
            d.setdefault(ref, {})[field] = float(np.floor(v)) if field in whole else v
        out.append(d)
    return out


def apply(profile: dict[str, Any], values: dict[str, float]) -> dict[str, Any]:
    """A copy of a profile mapping with drawn values (provenance: the draw). The sections
    it changes are copied; the rest is shared with ``profile`` (neither is modified)."""
    prof = dict(profile)
    for field, v in values.items():
        sec, key = field.split(".")
        if prof[sec] is profile[sec]:
            prof[sec] = dict(profile[sec])
        prof[sec][key] = {**prof[sec][key], "value": v}
    return prof


# What the worker processes of :func:`monte_carlo` read (set before they are forked).
_RUN: dict[str, Any] = {}
# Draws per task of a worker process.
CHUNK = 8


def monte_carlo(sc: Any, n: int = 100, seed: int = 1, file: str = "scenario",
                progress: Any = None, full: tuple[dict[str, Any], Any] | None = None) -> Any:
    """One row per draw and fleet: the fleet metrics and its rank in that draw. ``full``:
    the base profiles and evaluations of :func:`~accelsim.fleet.evaluate_full`, when the
    caller already has them. The draws are evaluated in worker processes
    (:mod:`accelsim.parallel`) in chunks of :data:`CHUNK`; every draw's rows are the same
    whichever process evaluates it, and the table is in draw order."""
    import pandas as pd

    from accelsim import parallel
    from accelsim.fleet import FastEvaluator, evaluate_full
    from accelsim.fleet.evaluation import resolve_devices

    if full is None:
        base = resolve_devices(sc, file)
        _, evals = evaluate_full(sc, profiles=base, file=file)
    else:
        base, evals = full
    fast = FastEvaluator(sc, base, evals, file=file)
    fast.warm(sc)  # built once here, not once per worker process
    dumped = {ref: p.model_dump(mode="json") for ref, p in base.items()}
    _RUN.update(sc=sc, fast=fast, base=base, dumped=dumped, file=file,
                draws=draws(dumped, n, seed))
    try:
        tasks = [(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK)]
        got: dict[int, list[dict[str, Any]]] = {}
        done = 0
        for k, rows in parallel.imap(_draw_rows, tasks):
            got[k] = rows
            done += tasks[k][1] - tasks[k][0]
            if progress:
                progress(done, n)
    finally:
        _RUN.clear()
    return pd.DataFrame([r for k in range(len(tasks)) for r in got[k]])


def _draw_rows(start: int, stop: int) -> list[dict[str, Any]]:
    """The rows of draws ``start`` to ``stop`` (a worker process's task)."""
    from accelsim.devices import device_from_dict
    from accelsim.fleet import device_rows, evaluate_fleet, rank

    sc, fast, base, dumped, file = (_RUN[k] for k in ("sc", "fast", "base", "dumped", "file"))
    rows = []
    for i in range(start, stop):
        d = _RUN["draws"][i]
        profs = {ref: device_from_dict(apply(dumped[ref], d.get(ref, {})), f"{file}: draw {i}")
                 if ref in d else base[ref] for ref in base}
        dev = device_rows(fast.device_records(sc, profs))
        fleets = [evaluate_fleet(sc, mix, dev, loan=False) for mix in sc.fleets]
        rank(sc, fleets)
        for f in fleets:
            rows.append({"draw": i, "fleet": f["name"], "rank": f["rank"],
                         "meets_demand": f["meets_demand"],
                         "n_violations": len(f["violations"]),
                         **{m: f[m] for m in METRICS},
                         **{f"{w}_capacity": v["capacity"] for w, v in f["workloads"].items()}})
    return rows


def summarise(table: Any) -> dict[str, Any]:
    """5/50/95 % of every fleet metric, the share of draws meeting demand, and
    ``P(A beats B)`` for every ordered pair of fleets (A ranks above B in that draw)."""
    metrics = [c for c in table.columns
               if c not in ("draw", "fleet", "rank", "meets_demand", "n_violations")]
    bands: dict[str, dict[str, Any]] = {}
    for fleet, g in table.groupby("fleet", sort=False):
        bands[fleet] = {m: {"p05": float(np.percentile(g[m], 5)),
                            "p50": float(np.percentile(g[m], 50)),
                            "p95": float(np.percentile(g[m], 95))} for m in metrics}
        bands[fleet]["meets_demand_share"] = float(g["meets_demand"].mean())
        bands[fleet]["within_rules_share"] = float((g["n_violations"] == 0).mean())
    ranks = table.pivot(index="draw", columns="fleet", values="rank")
    names = list(dict.fromkeys(table["fleet"]))
    beats = {a: {b: float((ranks[a] < ranks[b]).mean()) for b in names if b != a}
             for a in names}
    return {"draws": int(table["draw"].nunique()), "bands": bands, "p_beats": beats}

"""Monte Carlo over the device profiles' ranges: how sure is a ranking?

Every profile number with a ``[low, high]`` range is drawn from the triangular distribution
(low, value, high) by inverse transform of a uniform quantile. Numbers that share a cause
share their quantile (comonotonic draws): the software stack's achieved efficiencies of one
vendor's devices (``efficiency.compute``, ``memory``, ``communication``, ``random_access``:
all Ascend parts run CANN, all NVIDIA parts CUDA) move together, as do one vendor's
annual failure rates; every other ranged number is drawn on its own. Each cause draws from
a random stream of its own (seeded by the run's seed and the cause's name), so its draws do
not move when a field or a device is added elsewhere.

:func:`monte_carlo` evaluates every draw through the fleet's one fast evaluation path
(:class:`accelsim.fleet.FastEvaluator`, the sweeps' path) and ranks the fleets each time by
the scenario's rule; :func:`summarise` gives the 5-50-95 % band of every fleet metric (with
the base case's value beside it), the share of draws in which each rule fails (a budget, a
supply cap, the power caps, each workload's demand) and ``P(A beats B)``, the share of draws
in which mix A ranks above mix B.

A fleet given as spend (``spend_usd``) is read one of two ways (``spend``,
:data:`SPEND_READINGS`). ``base-units`` (the default): bought once, at the base case's
prices: its units are ``floor(spend / capex)`` of the base profiles, frozen for every draw.
A draw then asks what that purchase delivers and costs if the profile numbers differ, not
what a different purchase would; its capex moves with the draw's prices, so a pool whose
prices draw above the base's breaks its budget (the seed's price ranges lean upward).
``what-spend-buys``: the spend is fixed and the units are re-derived in every draw,
``min(floor(spend / capex of the draw), supply cap)``: what that money buys at the draw's
prices, so the spend, and each pool's budget, holds in every draw (a cheap draw buys more
units, up to the supply cap; without the cap it broke supply rules the purchase never met).
Fleets given as units are the same under both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accelsim.devices import SECTIONS
from accelsim.fleet.compare_verdict import SECONDS_PER_YEAR

# fields whose uncertainty is one cause per vendor (the software stack; the fleet's hardware)
SHARED = {"efficiency.compute", "efficiency.memory", "efficiency.communication",
          "efficiency.all_to_all", "efficiency.random_access", "reliability.annual_failure_rate"}
# Most draws one run may ask for (uncertainty --samples, sweep --samples): the draws are held
# in memory (~30 ranged numbers of ~100 B each per draw: 0.3 GB at the maximum) and each is
# one fast evaluation of the scenario (hours at the maximum: a progress bar shows the ETA).
MAX_SAMPLES = 100_000
METRICS = ("objective", "tco_usd_per_year", "capex_usd", "power_MW", "served_fraction")
# How a spend-defined fleet is read in the draws (module docstring): the first is the default.
SPEND_READINGS = ("base-units", "what-spend-buys")
SPEND_MEANS = {
    "base-units": "spend-defined fleets keep the units their spend buys at the base case's "
                  "prices (--spend-fleets base-units)",
    "what-spend-buys": "spend-defined fleets buy what their spend buys at each draw's "
                       "prices, within supply caps (--spend-fleets what-spend-buys)"}
# The columns of :func:`monte_carlo`'s table that are not metrics.
KEYS = ("draw", "fleet", "year", "rank", "meets_demand", "n_violations", "failed")


def frozen_mixes(sc: Any, rows: Any) -> list[Any]:
    """The scenario's fleets with their units fixed at the base case's (``rows``: the base
    device table): a spend-defined fleet becomes the units that spend buys at base prices."""
    from accelsim.fleet import device_rows
    from accelsim.fleet.mix import fleet_units

    dev = device_rows(rows)
    return [mix.model_copy(update={"units": fleet_units(mix, dev), "spend_usd": None})
            for mix in sc.fleets]


def spend_mixes(sc: Any, rows: Any) -> list[Any]:
    """The scenario's fleets, a spend-defined fleet as what its spend buys at the prices of
    ``rows`` (a draw's device table): ``min(floor(spend / capex), supply cap)`` units of
    each device."""
    from accelsim.fleet import device_rows

    dev = device_rows(rows) if not isinstance(rows, dict) else rows
    return [mix if mix.spend_usd is None else mix.model_copy(update={"units": {
        d: int(min(np.floor(usd / dev[d].capex_usd), dev[d].max_units))
        for d, usd in mix.spend_usd.items()}, "spend_usd": None}) for mix in sc.fleets]


def failed_rules(f: dict[str, Any]) -> list[str]:
    """The rules an evaluated fleet breaks, by name: ``budget pool <pool>``, ``budget
    total``, ``supply <device>``, ``availability <device>``, ``power cap``, ``power in
    <region>``, and ``demand <workload>`` for each workload not fully served."""
    label = {"budget_pool": "budget pool {}", "budget_total": "budget total",
             "supply": "supply {}", "availability": "availability {}", "power": "power cap",
             "region_power": "power in {}"}
    out = [label[v.kind].format(v.subject) for v in f["violations"]]
    out += [f"demand {w}" for w, v in f["workloads"].items()
            if v["served_fraction"] < 1 - 1e-9]
    return out


def fleet_row(f: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """One fleet's metrics in a draw: :data:`METRICS`, its units, each workload's capacity,
    served fraction and capacity per USD of TCO (``<w>_per_usd``), the workload kinds' fleet
    metrics ``keys`` (tokens/day, days to
    train, QPS at the SLO...), and the rules it breaks (``failed``, joined by ``|``)."""
    row: dict[str, Any] = {m: f[m] for m in METRICS}
    row["units"] = int(sum(f["units"].values()))
    tco = f["tco_usd_per_year"]
    for w, v in f["workloads"].items():
        row[f"{w}_capacity"] = v["capacity"]
        row[f"{w}_served_fraction"] = v["served_fraction"]
        # compare's capacity_per_usd: the whole fleet's year on w per USD of TCO
        row[f"{w}_per_usd"] = (v["capacity_whole_fleet"] * SECONDS_PER_YEAR / tco
                               if tco > 0 else 0.0)
    for key in keys:
        row[key] = f[key]
    row["failed"] = "|".join(failed_rules(f))
    return row


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


def _stream(seed: int, key: tuple[str, str], n: int) -> np.ndarray:
    """``n`` uniform quantiles of one cause: a generator of its own, seeded by the run's
    seed and the cause's name (a 64-bit BLAKE2b digest), so a cause's draws do not depend
    on which other ranged numbers the profiles hold (a field added to one profile, or a
    device added to the pool, leaves every other cause's draws as they were)."""
    import hashlib

    digest = hashlib.blake2b("\x1f".join(key).encode(), digest_size=8).digest()
    return np.random.default_rng([seed, int.from_bytes(digest, "little")]).random(n)


def draws(profiles: dict[str, dict[str, Any]], n: int, seed: int, correlated: bool = True
          ) -> list[dict[str, dict[str, float]]]:
    """``n`` draws ``{ref: {'section.key': value}}`` of every ranged number (see the module
    docstring); ``correlated`` False draws every number on its own. Each cause has its own
    random stream (:func:`_stream`)."""
    from accelsim.devices import whole_fields

    fields = ranged_fields(profiles)
    whole = whole_fields()
    u: dict[tuple[str, str], np.ndarray] = {}
    out: list[dict[str, dict[str, float]]] = [{} for _ in range(n)]
    for ref, field, group in fields:
        key = group if correlated else (ref, field)
        if key not in u:
            u[key] = _stream(seed, key, n)
        sec, name = field.split(".")
        q = profiles[ref][sec][name]
        low, high = q["range"]
        mode = min(max(float(q["value"]), low), high)
        for d, ui in zip(out, u[key].tolist(), strict=True):
            v = _triangular_ppf(ui, low, mode, high)
            d.setdefault(ref, {})[field] = float(np.floor(v)) if field in whole else v
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
                progress: Any = None, full: tuple[dict[str, Any], Any] | None = None,
                spend: str = "base-units") -> Any:
    """One row per draw and fleet: the fleet metrics and its rank in that draw among the
    fleets of its purchase year. ``spend``: how spend-defined fleets are read
    (:data:`SPEND_READINGS`, module docstring). ``full``:
    the base profiles and evaluations of :func:`~accelsim.fleet.evaluate_full`, when the
    caller already has them. The draws are evaluated in worker processes
    (:mod:`accelsim.parallel`) in chunks of :data:`CHUNK`; every draw's rows are the same
    whichever process evaluates it, and the table is in draw order."""
    import pandas as pd

    from accelsim import parallel
    from accelsim.errors import AccelsimError
    from accelsim.fleet import FastEvaluator, device_rows, evaluate_fleet, evaluate_full
    from accelsim.fleet.evaluation import resolve_devices

    if spend not in SPEND_READINGS:  # else read as what-spend-buys, and summarise fails
        raise AccelsimError.single(file, "spend", "expected one of "
                                   + ", ".join(SPEND_READINGS) + f"; got {spend!r}")
    if full is None:
        base = resolve_devices(sc, file)
        _, evals = evaluate_full(sc, profiles=base, file=file, routed=False)
    else:
        base, evals = full
    fast = FastEvaluator(sc, base, evals, file=file)
    fast.warm(sc)  # built once here, not once per worker process
    dumped = {ref: p.model_dump(mode="json") for ref, p in base.items()}
    base_rows = device_rows(fast.device_records(sc, base))
    mixes = (frozen_mixes if spend == "base-units" else spend_mixes)(sc, base_rows)
    keys = metric_keys(sc)
    base_case = {}
    for mix in mixes:
        f = evaluate_fleet(sc, mix, base_rows, loan=False)
        base_case[mix.name] = {k: v for k, v in fleet_row(f, keys).items() if k != "failed"}
    _RUN.update(sc=sc, fast=fast, base=base, dumped=dumped, file=file, mixes=mixes, keys=keys,
                draws=draws(dumped, n, seed), spend=spend)
    try:
        tasks = [(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK)]
        got: dict[int, list[dict[str, Any]]] = {}
        done = 0
        for k, rows in parallel.imap(_draw_rows, tasks, compiled=True):
            got[k] = rows
            done += tasks[k][1] - tasks[k][0]
            if progress:
                progress(done, n)
    finally:
        _RUN.clear()
    table = pd.DataFrame([r for k in range(len(tasks)) for r in got[k]])
    table.attrs["base"] = base_case
    table.attrs["spend"] = spend
    return table


def metric_keys(sc: Any) -> list[str]:
    """The fleet metrics each workload's kind reports (``training_tokens_per_day``,
    ``days_to_train``, ``serving_qps_at_slo``...), in the scenario's order."""
    from accelsim import workloads

    return [k for name, spec in sc.workloads.items()
            for k in workloads.of(spec).fleet_metrics(name, spec, 1.0, 1.0)]


def _draw_rows(start: int, stop: int) -> list[dict[str, Any]]:
    """The rows of draws ``start`` to ``stop`` (a worker process's task)."""
    from accelsim.devices import device_from_dict
    from accelsim.fleet import device_rows, evaluate_fleet, rank

    sc, fast, base, dumped, file, mixes, keys = (
        _RUN[k] for k in ("sc", "fast", "base", "dumped", "file", "mixes", "keys"))
    rows = []
    points = []
    for i in range(start, stop):
        d = _RUN["draws"][i]
        points.append({ref: device_from_dict(apply(dumped[ref], d.get(ref, {})),
                                             f"{file}: draw {i}")
                       if ref in d else base[ref] for ref in base})
    records = fast.device_records_many(sc, points)
    for i in range(start, stop):
        dev = device_rows(records[i - start])
        mine = mixes if _RUN["spend"] == "base-units" else spend_mixes(sc, dev)
        fleets = [evaluate_fleet(sc, mix, dev, loan=False) for mix in mine]
        rank(sc, fleets)
        for year in {f["year"] for f in fleets}:  # ranked within its purchase year
            same = sorted((f for f in fleets if f["year"] == year), key=lambda f: f["rank"])
            for k, f in enumerate(same, start=1):
                f["rank"] = k
        for f in fleets:
            rows.append({"draw": i, "fleet": f["name"], "year": f["year"], "rank": f["rank"],
                         "meets_demand": f["meets_demand"],
                         "n_violations": len(f["violations"]),
                         **fleet_row(f, keys)})
    return rows


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def summarise(table: Any) -> dict[str, Any]:
    """5/50/95 % of every fleet metric (``None`` where it is infinite: no training
    capacity left), the base case's value (``base``), how spend-defined fleets were read
    (``spend_fleets``, ``spend_fleets_means``), the share of draws meeting demand
    and within the rules, the share of draws in which each rule fails
    (``failure_shares``, most frequent first), and ``P(A beats B)`` for every ordered pair
    of fleets bought in the same year (A ranks above B in that draw)."""
    metrics = [c for c in table.columns if c not in KEYS]
    base = table.attrs.get("base", {})
    bands: dict[str, dict[str, Any]] = {}
    for fleet, g in table.groupby("fleet", sort=False):
        bands[fleet] = {}
        for m in metrics:
            v = g[m].to_numpy(dtype=float)
            p = np.percentile(v, [5, 50, 95], method="inverted_cdf")
            bands[fleet][m] = {"p05": _finite(p[0]), "p50": _finite(p[1]),
                               "p95": _finite(p[2])}
            if m in base.get(fleet, {}):
                bands[fleet][m]["base"] = _finite(base[fleet][m])
        bands[fleet]["meets_demand_share"] = float(g["meets_demand"].mean())
        bands[fleet]["within_rules_share"] = float((g["n_violations"] == 0).mean())
        fails = g["failed"].str.split("|").explode()
        shares = fails[fails != ""].value_counts() / len(g)
        bands[fleet]["failure_shares"] = {str(k): float(v) for k, v in
                                          sorted(shares.items(), key=lambda kv: -kv[1])}
    ranks = table.pivot(index="draw", columns="fleet", values="rank")
    names = list(dict.fromkeys(table["fleet"]))
    year = dict(zip(table["fleet"], table["year"], strict=False))
    beats = {a: {b: float((ranks[a] < ranks[b]).mean()) for b in names
                 if b != a and year[b] == year[a]} for a in names}
    spend = table.attrs.get("spend", "base-units")
    return {"draws": int(table["draw"].nunique()), "spend_fleets": spend,
            "spend_fleets_means": SPEND_MEANS[spend], "bands": bands, "p_beats": beats}

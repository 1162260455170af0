"""``scenario``: a fleet scenario (:mod:`accelsim.fleet`), run by ``compare`` (and
``optimize``, ``plan``, ``uncertainty``, ``report``). A sweep evaluates the base at full
fidelity once (:class:`accelsim.fleet.FastEvaluator`) and every point at fast fidelity through
the fleet's one evaluation path; TCO, fleets and the optimiser are exact."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from accelsim.kinds.base import Kind, Sweepable, register

# The per-device metrics of a point: ``device.<name>.<workload>.<field>``.
DEVICE_METRICS = ("throughput", "usd_per_hour", "throughput_per_usd", "throughput_per_watt",
                  "tco_usd_per_year")


def from_data(data: dict[str, Any], path: str | Path, where: str, check: bool = True) -> Any:
    from accelsim.fleet.scenario import scenario_from

    return scenario_from(data, path, check=check, where=where)


def needed_devices(sc: Any, metrics: list[str] | None) -> set[str] | None:
    """The devices (by name) a point must price for ``metrics``: those the per-device
    metrics name, or every one (None) when a metric reads a fleet or the optimum."""
    if needed(sc, metrics) is None or metrics is None:
        return None
    names = [x.strip() for m in metrics for x in m.split(" / ")]
    return {n[len("device."):].rsplit(".", 2)[0] for n in names}


def needed(sc: Any, metrics: list[str] | None) -> set[str] | None:
    """The workloads a point must evaluate for ``metrics``: those named by the per-device
    metrics (``device.<name>.<workload>.<field>``), or every one (None) when a metric
    reads a fleet or the optimum (capacity workloads are allocated first, so every fleet
    figure depends on every workload)."""
    if metrics is None:
        return None
    got = _needed(tuple(sc.workloads), tuple(metrics))
    return None if got is None else set(got)


@lru_cache(maxsize=64)
def _needed(workloads: tuple[str, ...], metrics: tuple[str, ...]) -> frozenset[str] | None:
    names = [x.strip() for m in metrics for x in m.split(" / ")]
    if any(not n.startswith("device.") for n in names):
        return None
    return frozenset(w for w in workloads for n in names
                     if any(n.endswith(f".{w}.{fld}") for fld in DEVICE_METRICS))


def prepare(sc: Any, profiles: dict[str, Any], path: str, metrics: list[str] | None = None
            ) -> Any:
    """The base scenario evaluated at full fidelity, kept for the fast path: only the
    workloads ``metrics`` need (:func:`needed`)."""
    from accelsim.fleet import FastEvaluator, evaluate_full

    _, evals = evaluate_full(sc, profiles=profiles, file=path, only=needed(sc, metrics),
                             routed=False)
    return FastEvaluator(sc, profiles, evals, file=path)


def evaluate(sc: Any, profiles: dict[str, Any], metrics: list[str], where: str, fast: Any,
             reasons: list[str]) -> dict[str, Any]:
    only = needed(sc, metrics)
    return values(sc, fast.device_records(sc, profiles, only, needed_devices(sc, metrics)),
                  metrics, reasons, fleets=only is None)


def values(sc: Any, records: list[dict[str, Any]], metrics: list[str], reasons: list[str],
           solve: bool = True, fleets: bool = True) -> dict[str, Any]:
    """Every metric name of a scenario point and its value: ``device.<name>.<workload>.*``,
    ``fleet.<fleet>.*`` (with ``fleets``), ``optimum.*`` (the MILP only when a metric asks
    and ``solve``)."""
    from accelsim.fleet import device_rows, evaluate_fleet

    out: dict[str, Any] = {}
    for r in records:
        for fld in DEVICE_METRICS:
            out[f"device.{r['device']}.{r['workload']}.{fld}"] = r[fld]
        if r["reason"]:
            reasons.append(f"device.{r['device']}.{r['workload']}: {r['reason']}")
    rows = device_rows(records)
    if not fleets:
        return out
    for mix in sc.fleets:
        f = evaluate_fleet(sc, mix, rows)
        for k, v in f.items():
            if isinstance(v, (int, float, bool)):
                out[f"fleet.{mix.name}.{k}"] = float(v)
        out[f"fleet.{mix.name}.n_violations"] = float(len(f["violations"]))
    if not solve or any(m.startswith("optimum.") or " optimum." in m for m in metrics):
        out.update(_optimum(sc, rows, reasons, solve))
    return out


def _optimum(sc: Any, rows: Any, reasons: list[str], solve: bool) -> dict[str, Any]:
    """``optimum.*``: the optimal mix's units, objective, capex, TCO, power, served shares
    and pool spend, and with rental offers the devices rented from each
    (``optimum.rented.<offer>``) and their rent (NaN, with the reason, when there is none)."""
    from accelsim.errors import AccelsimError
    from accelsim.fleet import mix_problem
    from accelsim.optimize import solve as solve_milp

    p = mix_problem(sc, rows)
    o = None
    if solve:
        try:
            o = solve_milp(p, marginals=False)  # sweeps record the optimum only
        except AccelsimError as e:
            reasons.append(f"optimum: {e.problems[0].message}")
        if o is not None and not o["feasible"]:  # its mix answers another objective
            reasons.append(f"optimum: {o['reason']}")
            o = None
    nan = float("nan")
    rented = [d for d, r in zip(p.devices, p.rented or [False] * len(p.devices), strict=True)
              if r]
    out: dict[str, Any] = {f"optimum.units.{d}": nan if o is None else 0.0 for d in p.devices
                           if d not in rented}
    for k in ("objective", "capex_usd", "tco_usd_per_year", "power_MW"):
        out[f"optimum.{k}"] = nan if o is None else o[k]
    if rented:  # rental offers (rent:<offer> in the problem): devices held, and their rent
        out.update({f"optimum.rented.{d.removeprefix('rent:')}": nan if o is None else
                    float(sum(o["rented"].get(d, {}).values())) for d in rented})
        out["optimum.rent_usd_per_year"] = nan if o is None else o["rent_usd_per_year"]
    for w in p.workloads:
        out[f"optimum.served_fraction.{w}"] = nan if o is None else o["served_fraction"][w]
    for k in sc.budget.pools:
        out[f"optimum.pool_spend_usd.{k}"] = nan if o is None else o["pool_spend_usd"][k]
    for d, ws in (o or {}).get("units", {}).items():
        out[f"optimum.units.{d}"] = float(sum(ws.values()))
    return out


def metric_names(data: dict[str, Any], path: str, profiles: dict[str, Any],
                 metrics: list[str], where: str) -> set[str]:
    """The names a point fills, without evaluating anything (every device priced as a
    placeholder evaluation)."""
    from accelsim.fleet.pricing import priced_rows
    from accelsim.workloads import DeviceEval

    sc = from_data(data, path, where, check=False)
    placeholder = DeviceEval(1.0, 0.5)
    records = [r for ref, pool in sc.pool_of().items() for r in priced_rows(
        sc, ref, pool, profiles[ref].spec, dict.fromkeys(sc.workloads, placeholder))]
    return set(values(sc, records, metrics, [], solve=False))


register(Kind("scenario", "accelsim.fleet:Scenario", "budget", "fleet scenario", from_data,
              command="compare", input_files=lambda sc: sc.input_files(),
              devices=lambda sc: list(sc.pool_of()),
              sweep=Sweepable(evaluate, metric_names, prepare)))

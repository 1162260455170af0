"""What ``compare`` concludes, per purchase year: a ranking within each year, each fleet's
capacity per USD and its headroom over demand, and a one-line verdict.

  year_rank         the ranking rule (:func:`accelsim.fleet.rank`) among the fleets bought
                    in the same year (a 2026 fleet is never ranked against 2025 money)
  capacity_per_usd  per workload, what the whole fleet could do on it alone over a year per
                    USD of its TCO: capacity_whole_fleet x 3600 x 8760 / TCO per year
                    (tokens, queries, requests per USD; the device table's "per USD" for a
                    whole fleet)
  headroom          lambda - 1, lambda the largest multiple of every workload's demand the
                    fleet's units can serve at once, each device's units split freely across
                    the workloads (an LP: max lambda s.t. sum_d a_dw thr_dw >= lambda need_w,
                    sum_w a_dw <= units_d); negative when it cannot meet demand. The
                    training lent from serving troughs is not counted.

The verdict names the year's best fleet and why (the rule that ranks it first), the
runner-up and what separates them, and says when "meets demand, then lower TCO" ranks the
fleet with the most headroom below a cheaper one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SECONDS_PER_YEAR = 3600 * 8760


def headroom(units: dict[str, int], rows: dict[str, Any], need: dict[str, float]) -> float:
    """lambda - 1 (module docstring): the uniform demand growth the fleet can absorb."""
    from scipy.optimize import linprog

    refs = [r for r, u in units.items() if u > 0]
    W = list(need)
    if not refs:
        return -1.0
    D = len(refs)
    n = D * len(W) + 1  # a[d, w], then lambda
    c = np.zeros(n)
    c[-1] = -1.0
    A, b = [], []
    for j, w in enumerate(W):  # lambda need_w - sum_d a_dw thr_dw <= 0
        row = np.zeros(n)
        for i, r in enumerate(refs):
            row[i * len(W) + j] = -rows[r].throughput.get(w, 0.0)
        row[-1] = need[w]
        A.append(row)
        b.append(0.0)
    for i, r in enumerate(refs):  # sum_w a_dw <= units_d
        row = np.zeros(n)
        row[i * len(W):(i + 1) * len(W)] = 1.0
        A.append(row)
        b.append(float(units[r]))
    # scaled so the solver sees numbers near 1 (demand spans 1e3 to 1e8 across workloads)
    scale = np.array([max(need[w], 1e-300) for w in W] + [max(units[r], 1) for r in refs])
    lp = linprog(c, A_ub=np.array(A) / scale[:, None], b_ub=np.array(b) / scale,
                 bounds=[(0, None)] * n, method="highs")
    if lp.status != 0 or lp.x is None:
        return float("nan")
    return float(lp.x[-1] - 1.0)


def annotate(sc: Any, fleets: list[dict[str, Any]], dev: Any) -> None:
    """Set ``year_rank``, ``capacity_per_usd`` and ``headroom`` on every fleet result of
    ``compare`` (``dev``: its device table)."""
    from accelsim.fleet.mix import demand, device_rows, fleet_units

    rows = device_rows(dev)
    need = demand(sc)
    mixes = {m.name: m for m in sc.fleets}
    for f in fleets:
        tco = f["tco_usd_per_year"]
        f["capacity_per_usd"] = {
            w: (v["capacity_whole_fleet"] * SECONDS_PER_YEAR / tco if tco > 0 else 0.0)
            for w, v in f["workloads"].items()}
        f["headroom"] = headroom(fleet_units(mixes[f["name"]], rows), rows, need)
    for year in {f["year"] for f in fleets}:
        same = sorted((f for f in fleets if f["year"] == year), key=lambda f: f["rank"])
        for i, f in enumerate(same, start=1):
            f["year_rank"] = i


def _why(sc: Any, f: dict[str, Any]) -> str:
    if f["violations"]:
        return "breaks " + "; ".join(str(v) for v in f["violations"])
    if not f["meets_demand"]:
        short = [f"{w} {100 * v['served_fraction']:.0f} %" for w, v in f["workloads"].items()
                 if v["served_fraction"] < 1 - 1e-9]
        return "within the rules, short of demand (" + ", ".join(short) + " served)"
    return "within the rules and meets demand"


def _pct(x: float) -> str:
    return f"{100 * x:+.0f} %" if np.isfinite(x) else "n/a"


def verdicts(sc: Any, fleets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One verdict per purchase year (after :func:`annotate`): ``year``, ``best``,
    ``runner_up``, ``most_headroom`` (the fleet within the rules and meeting demand with
    the most headroom, when the rule ranks it below the best) and ``line``."""
    out = []
    for year in sorted({f["year"] for f in fleets}):
        same = sorted((f for f in fleets if f["year"] == year), key=lambda f: f["year_rank"])
        best = same[0]
        tco = best["tco_usd_per_year"] / 1e9
        line = (f"{year}: {best['name']}: {_why(sc, best)}, TCO {tco:.2f} B USD/yr, "
                f"headroom {_pct(best['headroom'])}")
        runner = same[1] if len(same) > 1 else None
        ok = [f for f in same if not f["violations"] and f["meets_demand"]
              and np.isfinite(f["headroom"])]
        roomiest = max(ok, key=lambda f: f["headroom"]) if ok else None
        demoted = (roomiest if roomiest is not None and roomiest is not best
                   and roomiest["headroom"] > best["headroom"] + 1e-6 else None)
        if runner is not None:
            gap = runner["tco_usd_per_year"] / 1e9 - tco
            if bool(runner["violations"]) != bool(best["violations"]) or (
                    runner["meets_demand"] != best["meets_demand"]):
                line += f"; next {runner['name']}: {_why(sc, runner)}"
            elif sc.objective == "served_demand" and runner["objective"] < best["objective"]:
                line += (f"; next {runner['name']} serves "
                         f"{100 * (best['objective'] - runner['objective']):.1f} points less")
            else:
                line += f"; next {runner['name']} costs {gap:+.2f} B USD/yr more"
        if demoted is not None:
            more = demoted["tco_usd_per_year"] / 1e9 - tco
            room = f"the most headroom ({_pct(demoted['headroom'])})"
            line += (f" and has {room}" if demoted is runner else
                     f"; {demoted['name']} has {room} for {more:+.2f} B USD/yr") + (
                f", ranked below by lower TCO: demand growth beyond "
                f"{_pct(best['headroom'])} would favour it")
        out.append({"year": year, "best": best["name"],
                    "runner_up": runner["name"] if runner is not None else None,
                    "most_headroom": demoted["name"] if demoted is not None else None,
                    "line": line})
    return out

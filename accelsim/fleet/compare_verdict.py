"""What ``compare`` concludes, per purchase year: a ranking within each year, each fleet's
capacity per USD and its headroom over demand, and a one-line verdict.

  year_rank         the ranking rule (:func:`accelsim.fleet.rank`) among the fleets bought
                    in the same year (a 2026 fleet is never ranked against 2025 money)
  capacity_per_usd  per workload, what the whole fleet could do on it alone over a year per
                    USD of its TCO: capacity_whole_fleet x 3600 x 8760 / TCO per year
                    (tokens, queries, requests per USD; the device table's "per USD" for a
                    whole fleet)
  headroom          lambda - 1, lambda the largest multiple of every workload's demand at
                    once that the fleet's units meet under compare's own allocation
                    (capacity workloads first by comparative advantage, the rest to the
                    volume workloads; rented devices count); negative when it cannot meet
                    demand, >= 0 exactly when compare says it does. The training lent from
                    serving troughs is not counted.

The verdict names the year's best fleet and why (the rule that ranks it first), the
runner-up and what separates them, and says when "meets demand, then lower TCO" ranks the
fleet with the most headroom below a cheaper one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accelsim.fleet.mix import SECONDS_PER_YEAR


def headroom(units: dict[str, int], rows: dict[str, Any], need: dict[str, float],
             role: dict[str, str], routes: dict[str, Any] | None = None) -> float:
    """lambda - 1 (module docstring): the uniform demand growth the fleet's units still
    meet under ``compare``'s own allocation (:func:`accelsim.fleet.allocate`), found by
    bisection on lambda between 0 and the smallest whole-fleet capacity over demand; so
    headroom >= 0 exactly when ``compare`` says the fleet meets demand. ``routes``: routed
    workloads (:func:`accelsim.fleet.routing.routings`), served as compare serves them."""
    from accelsim.fleet.mix import allocate, capacities, routed_capacity

    def meets(lam: float) -> bool:
        grown = {w: lam * v for w, v in need.items()}
        alloc = allocate(units, rows, grown, role, routes)
        cap = capacities(alloc, rows, grown, routes)
        return all(cap[w] >= grown[w] * (1 - 1e-9) for w in need)

    def whole_fleet(w: str) -> float:
        if routes and w in routes:
            return routed_capacity({d: float(u) for d, u in units.items()}, rows, w, need[w],
                                   routes[w])
        return sum(u * rows[d].throughput.get(w, 0.0) for d, u in units.items())

    whole = min(whole_fleet(w) / v for w, v in need.items() if v > 0)
    lo, hi = 0.0, float(whole)
    if hi <= 0:
        return -1.0
    if meets(hi):
        return hi - 1.0
    for _ in range(50):  # to 2^-50 of the bound
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if meets(mid) else (lo, mid)
    return lo - 1.0


def annotate(sc: Any, fleets: list[dict[str, Any]], dev: Any) -> None:
    """Set ``year_rank``, ``capacity_per_usd`` and ``headroom`` on every fleet result of
    ``compare`` (``dev``: its device table)."""
    from accelsim.fleet.mix import RENT, demand, device_rows, fleet_units, rental_rows, roles
    from accelsim.fleet.routing import routings

    rows = device_rows(dev)
    need = demand(sc)
    role = roles(sc)
    mixes = {m.name: m for m in sc.fleets}
    for f in fleets:
        tco = f["tco_usd_per_year"]
        f["capacity_per_usd"] = {
            w: (v["capacity_whole_fleet"] * SECONDS_PER_YEAR / tco if tco > 0 else 0.0)
            for w, v in f["workloads"].items()}
        mix = mixes[f["name"]]
        units, have = fleet_units(mix, rows), rows
        if mix.rent:  # rented capacity counts, as in evaluate_fleet
            have = {**rows, **rental_rows(sc, rows)}
            units.update({RENT + o: int(u) for o, u in mix.rent.items() if RENT + o in have})
        f["headroom"] = headroom(units, have, need, role, routings(sc, have))
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


def _deadlines(sc: Any, f: dict[str, Any]) -> str:
    """``, trains in 54.8 of 60 days`` for each workload with a deadline."""
    out = []
    for w, spec in sc.workloads.items():
        deadline = getattr(spec, "deadline_days", None)
        days = f.get("days_to_train" if w == "training" else f"{w}_days_to_train")
        if deadline and days is not None and np.isfinite(days):
            what = "trains" if w == "training" else f"{w} trains"
            out.append(f", {what} in {days:.1f} of {deadline:g} days")
    return "".join(out)


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
                f"headroom {_pct(best['headroom'])}{_deadlines(sc, best)}")
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

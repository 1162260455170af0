"""Human-readable formatting: the only place numbers are turned into display units.

Tables fit the terminal they are printed on (80 columns when piped): a table wider than the
terminal is printed as several tables of whole columns, each repeating the first (key)
column, so a number is never folded across lines.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

# Width a text column is given before its words wrap (numbers never wrap).
TEXT_WIDTH = 32


def fmt_num(x: Any, digits: int = 3) -> str:
    """Compact number: 3 significant digits, thousands separators for big values."""
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, (int, float)):
        if not math.isfinite(x):
            return str(x)
        if x == 0:
            return "0"
        if abs(x) >= 1e4:
            return f"{x:,.0f}"
        if abs(x) >= 10 ** digits or float(x).is_integer():
            return f"{x:.0f}"
        return f"{x:.{digits}g}"
    return str(x)


class FittedTable:
    """Rows of a table, laid out at render time for the console's width."""

    def __init__(self, title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
        self.title = title
        self.columns = columns
        self.text = [bool(rows) and isinstance(rows[0].get(c), str) for c in columns]
        self.cells = [[fmt_num(r.get(c, "")) for c in columns] for r in rows]

    def _width(self, i: int) -> int:
        """Columns a column needs: a number column its longest cell and header (neither
        wraps); a text column its longest word, up to :data:`TEXT_WIDTH` (it wraps at
        spaces, header included)."""
        cells = [row[i] for row in self.cells]
        if self.text[i]:
            words = [w for c in [*cells, self.columns[i]] for w in c.split()]
            longest_word = max((len(w) for w in words), default=1)
            return max(longest_word, min(TEXT_WIDTH, max((len(c) for c in cells), default=1)))
        return max([len(self.columns[i]), *(len(c) for c in cells)])

    def chunks(self, width: int) -> list[list[int]]:
        """Groups of column indices, each fitting ``width`` with the key column first."""
        need = [self._width(i) + 3 for i in range(len(self.columns))]  # padding + border
        out: list[list[int]] = []
        current: list[int] = [0]
        used = 1 + need[0]
        for i in range(1, len(self.columns)):
            if used + need[i] > width and len(current) > 1:
                out.append(current)
                current, used = [0], 1 + need[0]
            current.append(i)
            used += need[i]
        out.append(current)
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        groups = self.chunks(options.max_width) if self.columns else [[]]
        for n, group in enumerate(groups):
            title = self.title if n == 0 else f"(continued: {self.columns[0]} repeated)"
            t = Table(title=title or None, title_justify="left", header_style="bold")
            for i in group:
                if self.text[i]:
                    t.add_column(self.columns[i], justify="left", no_wrap=i == 0,
                                 min_width=min(self._width(i), TEXT_WIDTH))
                else:
                    t.add_column(self.columns[i], justify="right", no_wrap=True,
                                 min_width=self._width(i))
            for row in self.cells:
                t.add_row(*[row[i] for i in group])
            yield t


def table(title: str, rows: list[dict[str, Any]], columns: list[str] | None = None
          ) -> FittedTable:
    """A table from a list of dicts (columns in order of first appearance) that fits the
    console it is printed on."""
    cols = columns or list(dict.fromkeys(k for r in rows for k in r))
    return FittedTable(title, rows, cols)


# Why a number can be missing from JSON output, by key (JSON has no inf or NaN).
NULL_REASONS = {
    "days_to_train": "infinite: no capacity is allocated to this workload",
    "objective": "infinite: a min_cost fleet that does not meet demand has no finite cost",
    "ci95_low_qps": "undefined: a confidence interval needs at least 2 replications",
    "ci95_high_qps": "undefined: a confidence interval needs at least 2 replications",
    "max_units": "infinite: no supply cap",
    "shadow_price": "undefined: the LP relaxation has no dual here",
    "p99_ms_counting_drops": "infinite: more than 1 % of the requests were dropped",
    **dict.fromkeys(["latency_ms", "wait_ms", "p50_ms", "p95_ms", "p99_ms", "p999_ms"],
                    "undefined: no request completed in the measured window"),
}


def strict_json(obj: Any) -> Any:
    """``obj`` with every infinite or NaN number replaced by null, and a top-level
    ``null_reasons`` (path -> why) when any was: strict JSON that any parser reads."""
    reasons: dict[str, str] = {}

    def walk(x: Any, path: str) -> Any:
        if isinstance(x, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(x)]
        if hasattr(x, "item") and not isinstance(x, (str, bytes)):
            x = x.item()  # numpy scalars
        if isinstance(x, float) and not math.isfinite(x):
            key = path.rsplit(".", 1)[-1].split("[")[0]
            known = next((r for k, r in NULL_REASONS.items() if key.endswith(k)), None)
            reasons[path] = known or ("infinite" if math.isinf(x) else "not a number")
            return None
        return x

    out = walk(obj, "")
    if reasons and isinstance(out, dict):
        out["null_reasons"] = reasons
    return out


# ------------------------------------------------------- compare's tables (CLI and HTML)

def fmt_units(units: dict[str, Any]) -> str:
    """``{"h20": 1000, "x": 0}`` -> ``"h20 1,000"``."""
    return ", ".join(f"{d} {u:,}" for d, u in units.items() if u) or "-"


def fleet_out(f: dict[str, Any]) -> dict[str, Any]:
    """A fleet result for output: violations as text, and as records."""
    return {**f, "violations": [str(v) for v in f["violations"]],
            "violation_records": [v.to_dict() for v in f["violations"]]}


def binding(rules: list[dict[str, Any]]) -> str:
    """The rules a fleet runs into: binding ones by their share of the limit, demand short
    by the share served."""
    out = []
    for r in rules:
        if r["status"] == "binds":
            out.append(f"{r['rule']} {r['value'] / r['limit']:.0%}")
        elif r["status"] == "short":
            out.append(f"{r['rule']} {r['value'] / r['limit']:.0%} served")
    return "; ".join(out) or "-"


def ranking_rule(sc: Any) -> str:
    """How ``compare`` orders fleets after the rules (the scenario's objective)."""
    return ("served fraction of demand (mean over workloads), then lower TCO"
            if sc.objective == "served_demand" else "lower TCO among fleets meeting demand")


def device_tables(sc: Any, devices: Any) -> dict[str, list[dict[str, Any]]]:
    """Per workload, a titled table of every device's throughput and its price."""
    from accelsim import workloads

    out = {}
    for name, spec in sc.workloads.items():
        unit = workloads.of(spec).unit
        rows = [{"device": r.device, unit: r.throughput, "USD/h": r.usd_per_hour,
                 "per USD": r.throughput_per_usd, "per W": r.throughput_per_watt,
                 "layout / CI": r.note} for r in devices.itertuples() if r.workload == name]
        out[f"{name}: {unit} per device; per USD = {unit} x 3600 / USD/h; "
            f"per W = {unit} / wall W"] = rows
    return out


RENTAL_TITLE = ("rent or buy: each rental offer against owning its device in its pool's region "
                "(accelsim.rental); break-even utilisation: on demand rents cheaper below it; "
                "horizon: renting is cheaper for a need shorter than it (at full use, no resale); "
                "per USD: rented / owned")


def rental_rows(rentals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """compare's rent-or-buy table, one row per offer
    (:func:`accelsim.fleet.pricing.rental_table`)."""
    def years(x: float) -> str:
        return "never" if x == float("inf") else f"{x:.2g} y"

    return [{
        "offer": r["offer"], "device": r["device"], "region": r["region"],
        "term": r["term"] if r["term"] == "on_demand" else f"{r['commitment_months']} months",
        "USD/h rent": r["usd_per_device_hour"], "USD/h owned": r["owned_usd_per_hour"],
        "rent / own": r["rent_over_owned"],
        "break-even util.": ("-" if r["break_even_utilization"] != r["break_even_utilization"]
                             else f"{r['break_even_utilization']:.0%}"),
        "break-even horizon": years(r["break_even_horizon_years"]),
        **{f"{w} per USD": f"{fmt_num(a)} / {fmt_num(b)}" for w, (a, b) in r["per_usd"].items()},
        "max units": "-" if r["max_units"] is None else f"{r['max_units']:,}",
    } for r in rentals]


def _for_people(label: str, value: Any) -> tuple[str, Any]:
    """A fleet column in the unit people read: tokens/day in T, QPS in M."""
    if "tokens/day" in label:
        return label.replace("tokens/day", "T tokens/day"), value / 1e12
    if "QPS" in label:
        return label.replace("QPS", "M QPS"), value / 1e6
    return label, value


def fleet_tables_by_year(sc: Any, fleets: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """:func:`fleet_table` per purchase year, years in order (fleets of different years are
    not alternatives, so each year is ranked on its own)."""
    return {y: fleet_table(sc, [f for f in fleets if f["year"] == y])
            for y in sorted({f["year"] for f in fleets})}


def fleet_table(sc: Any, fleets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per fleet (output of :func:`fleet_out`, best first): units, costs, each
    workload's columns, power, demand, violations and what binds."""
    from accelsim import workloads

    columns = {label: key for name, spec in sc.workloads.items()
               for label, key in workloads.of(spec).fleet_columns(name).items()}
    return [{
        "fleet": f["name"], "rank": f.get("year_rank", f["rank"]), "year": f["year"],
        "units": fmt_units(f["units"]),
        **({"rented": fmt_units(f.get("rented", {})) or "-"} if sc.rentals else {}),
        "capex B USD": f["capex_usd"] / 1e9,
        "TCO B USD/yr": f["tco_usd_per_year"] / 1e9,
        **dict(_for_people(label, f.get(key, float("nan"))) for label, key in columns.items()),
        **({"headroom": fmt_signed_pct(f["headroom"])} if "headroom" in f else {}),
        **{f"{w} per USD": v for w, v in f.get("capacity_per_usd", {}).items()},
        "MW": f["power_MW"],
        "troughs: training B tokens/day": f.get("loan_training_tokens_per_day", 0.0) / 1e9,
        "meets demand": f["meets_demand"],
        "violations": "; ".join(f["violations"]) or "-",
        "binds / short": binding(f["rules"]),
    } for f in fleets]


def _band(b: dict[str, Any] | None, scale: float = 1.0, digits: int = 3) -> str:
    """``p05-p95 (base x)`` of a band, scaled; ``-`` when a bound is infinite."""
    if not b or b.get("p05") is None or b.get("p95") is None:
        return "-"
    lo, hi = b["p05"] / scale, b["p95"] / scale
    base = b.get("base")
    text = f"{_human(lo, digits)}-{_human(hi, digits)}"
    return text + (f" (base {_human(base / scale, digits)})" if base is not None else "")


def _human(x: float, digits: int = 3) -> str:
    """A number for people, no exponent: ``385000`` -> ``385 k``, ``1.2e7`` -> ``12 M``."""
    for scale, unit in ((1e12, " T"), (1e9, " B"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= scale:
            return f"{x / scale:.{digits}g}{unit}"
    return f"{x:.{digits}g}"


def uncertainty_tables(out: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The bands, the rules that fail and how often, the workload bands a planner reads,
    and the P(A beats B) matrix of :func:`accelsim.uncertainty.summarise`."""
    names = list(out["p_beats"])
    rows, fails, work = [], [], []
    for f in names:
        b = out["bands"][f]
        rows.append({"fleet": f, "within rules": fmt_pct(b["within_rules_share"]),
                     "meets demand": fmt_pct(b["meets_demand_share"]),
                     "objective p05": b["objective"]["p05"],
                     "p50": b["objective"]["p50"], "p95": b["objective"]["p95"],
                     "TCO B USD/yr p05-p95": _band(b["tco_usd_per_year"], 1e9),
                     "capex B USD": _band(b["capex_usd"], 1e9),
                     "MW": _band(b["power_MW"])})
        fails.append({"fleet": f, "rules failing (share of draws)": "; ".join(
            f"{rule} {fmt_pct(share)}" for rule, share in b["failure_shares"].items()) or
            "none"})
        cells: dict[str, Any] = {"fleet": f}
        for key, band in b.items():
            if not isinstance(band, dict) or "p05" not in band:
                continue
            if key == "days_to_train" or key.endswith("_days_to_train"):
                cells[key.replace("_", " ")] = _band(band)
            elif key.endswith("_tokens_per_day"):
                cells[key.removesuffix("_tokens_per_day") + " T tokens/day"] = _band(band, 1e12)
            elif key.endswith("_per_usd"):
                cells[key.removesuffix("_per_usd") + " per USD"] = _band(band)
            elif key.endswith("_served_fraction"):
                cells[key.removesuffix("_served_fraction") + " served %"] = _band(
                    {k: (100 * v if isinstance(v, float) else v) for k, v in band.items()})
        work.append(cells)
    return {
        "bands over the draws, 5-95 % (base case); " + out.get(
            "spend_fleets_means", "units fixed at the base case's"): rows,
        "rules that fail, and in what share of the draws": fails,
        "what each workload gets, 5-95 % (base case)": work,
        "P(row beats column): share of draws where the row ranks higher":
            [{"fleet": a, **{b: out["p_beats"][a].get(b, "-") for b in names}} for a in names],
    }


# The device table's columns in compare's JSON and CSV.
DEVICE_COLUMNS = ["device", "workload", "throughput", "throughput_unit", "usd_per_hour",
                  "throughput_per_usd", "throughput_per_watt", "capex_usd", "pool", "note",
                  "details"]


def device_frame(devices: Any) -> Any:
    """compare's device table for a spreadsheet: :data:`DEVICE_COLUMNS` with ``details``
    (the layout, MFU, goodput, MTBF, confidence interval of each evaluation) as dotted
    columns, ``details.mfu``, ``details.ci95_low_rps_per_replica``... (empty where a
    workload's kind has no such field)."""
    import pandas as pd

    cols = [c for c in DEVICE_COLUMNS if c != "details"]
    flat = pd.json_normalize([{"details": d if isinstance(d, dict) else {}}
                              for d in devices.get("details", [None] * len(devices))],
                             sep=".")
    return pd.concat([devices[cols].reset_index(drop=True), flat], axis=1)


def fleet_frames(devices: Any, fleets: list[dict[str, Any]]) -> dict[str, Any]:
    """compare's three CSV tables, one value per cell: ``devices``, ``fleets`` (nested
    figures as dotted columns: units.h20, workloads.serving.capacity...; a device a fleet
    does not hold has 0 units) and ``violations`` (one row per broken rule)."""
    import pandas as pd

    flat = pd.json_normalize([{k: v for k, v in f.items() if not isinstance(v, list)}
                              for f in fleets], sep=".")
    counts = [c for c in flat.columns if c.startswith(("units.", "allocation."))]
    flat[counts] = flat[counts].fillna(0)
    flat.insert(len(flat.columns), "n_violations", [len(f["violations"]) for f in fleets])
    viol = pd.DataFrame([{"fleet": f["name"], **v} for f in fleets
                         for v in f["violation_records"]],
                        columns=["fleet", "kind", "subject", "limit", "value", "unit"])
    return {"devices": device_frame(devices), "fleets": flat, "violations": viol}


# ------------------------------------------------------------------- plan's tables

def fmt_signed_pct(x: float) -> str:
    """A change as a signed percentage: ``0.37`` -> ``+37.0 %``; ``n/a`` when not finite."""
    import math

    return f"{100 * x:+.1f} %" if math.isfinite(x) else "n/a"


def fmt_pct(x: float) -> str:
    """A share as a percentage for people: ``0.462`` -> ``46.2 %``, ``1`` -> ``100 %``,
    ``0.9996`` -> ``> 99.9 %`` (never rounded up to 100)."""
    if x >= 1 - 1e-9:
        return "100 %"
    text = f"{100 * x:.1f}" if x >= 0.001 else f"{100 * x:.2g}"
    return "> 99.9 %" if text == "100.0" else f"{text} %"


def fmt_marginal(value: float | None, per: str) -> str:
    """A marginal value for people: ``6.5e6, "USD per MW"`` -> ``6.5 M USD per MW``."""
    if value is None:
        return "n/a"
    for scale, unit in ((1e9, " B"), (1e6, " M"), (1e3, " k"), (1.0, "")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit} {per}"
    return f"{value:.3g} {per}"


def _binds_text(q: dict[str, Any], values: dict[tuple[str, str], str]) -> str:
    """The rules binding a quarter (or its year) with their marginal values, then the
    workloads short."""
    when = (q["quarter"], q["quarter"][:4])
    binds = [f"{r} ({next((values[(r, w)] for w in when if (r, w) in values), 'n/a')})"
             for r in q.get("binds", [])]
    short = [f"{w} {fmt_pct(f)} unserved" for w, f in q.get("short", {}).items() if f > 1e-3]
    return "; ".join([*binds, *short]) or "-"


def plan_tables(res: dict[str, Any], budgets: dict[int, float]) -> dict[str, list[dict[str, Any]]]:
    """The plan by quarter (deliveries, served shares, spend, power, what binds), the rules
    that bind with their marginal values, and the spend by year."""
    values = {(b["rule"], b["when"]): fmt_marginal(b["marginal_usd"], b["marginal_per"])
              for b in res["binding"] if b["status"] == "binds"}
    rows = [{"quarter": q["quarter"], "delivered": fmt_units(q["delivered"]),
             "powered off": fmt_units(q.get("powered_off", {})),
             **({"rented": fmt_units(q.get("rented", {}))} if "rent_usd_by_year" in res
                else {}),
             **{f"{w} served": fmt_pct(v) for w, v in q["served_fraction"].items()},
             "capex B USD": q["capex_usd"] / 1e9, "MW": q["power_MW"],
             **({"facility MW online": sum(q["facility_MW"].values()),
                 "started": sum(q["facility_started_MW"].values())} if q["facility_MW"] else {}),
             "binds (this quarter or its year), marginal value": _binds_text(q, values)}
            for q in res["quarters"]]
    rules = [{"when": b["when"], "rule": b["rule"],
              "use / limit": (f"{fmt_pct(1 - b['unserved_fraction'])} served"
                              if b["status"] == "short" else
                              f"{fmt_pct(b['used'] / b['limit']) if b['limit'] else '-'}"),
              "marginal": b["marginal_usd"], "per": b["marginal_per"]}
             for b in res["binding"] if b["status"] == "binds" or b["unserved_fraction"] > 1e-3]
    rent = res.get("rent_usd_by_year", {})
    years = [{"year": y, "capex B USD": v / 1e9,
              **({"rent B USD": rent.get(y, 0.0) / 1e9} if rent else {}),
              "budget B USD": budgets.get(y, 0.0) / 1e9,
              "spent": (fmt_pct((v + rent.get(y, 0.0)) / budgets[y]) if budgets.get(y)
                        else "-")}
             for y, v in res["capex_usd_by_year"].items()]
    out = {
        "by quarter (served: capacity installed / demand that quarter)": rows,
        "what binds, and its marginal value: present cost (with the unserved-demand penalty) "
        "saved per unit of the rule loosened, or added per 1 % more demand (LP relaxation "
        "duals; 0 = loosening it alone changes nothing)": rules,
        "spend by year": years,
    }
    units = list(dict.fromkeys(u for q in res["quarters"] for u in q.get("pd_units", {})))
    if units:
        out["prefill/decode units (accelsim.fleet.pd): delivered, installed and powered on; "
            "capacity = units on x req/s per unit"] = [
            {"quarter": q["quarter"], "unit": u, "delivered": v["delivered"],
             "installed": v["installed"], "on": f"{v['on']:,.1f}",
             "devices on": ", ".join(f"{d} {n:,.0f}" for d, n in v["devices_on"].items()),
             "req/s per unit": f"{v['rps_per_unit']:,.3g}", "capacity": f"{v['capacity']:,.0f}"}
            for q in res["quarters"] for u, v in q.get("pd_units", {}).items()]
    for w in res["quarters"][0].get("routed", {}):
        out[f"{w} routed by prompt size (Melange): each bucket's share of requests and "
            "served share (its capacity / its demand); devices powered on serving each "
            "bucket alone or the whole mix"] = [
            {"quarter": q["quarter"],
             **{f"{lab} ({100 * b['share']:.0f} %)": fmt_pct(b["served_fraction"])
                for lab, b in q["routed"][w]["buckets"].items()},
             "devices": "; ".join(f"{d}: " + fmt_units(per)
                                  for d, per in q["routed"][w]["devices"].items()) or "-"}
            for q in res["quarters"]]
    return out


def plan_frames(res: dict[str, Any]) -> dict[str, Any]:
    """plan's CSV tables, one value per cell: ``quarters`` (nested figures as dotted
    columns: delivered.h20, served_fraction.chatbot, a routed workload's
    routed.chatbot.buckets.< 710.served_fraction...), ``binding`` (one row per rule that
    binds or demand short) and ``years``."""
    import pandas as pd

    flat = pd.json_normalize([{**{k: v for k, v in q.items() if k not in ("binds", "short")},
                               "binds": "; ".join(q.get("binds", []))}
                              for q in res["quarters"]], sep=".")
    counts = [c for c in flat.columns
              if c.startswith(("delivered.", "installed.", "powered_off.", "rented."))
              or (c.startswith("routed.") and ".devices." in c)]
    flat[counts] = flat[counts].fillna(0)
    binding = pd.DataFrame(res["binding"], columns=["when", "rule", "status", "used", "limit",
                                                     "unit", "unserved_fraction",
                                                     "marginal_usd", "marginal_per"])
    years = pd.DataFrame([{"year": y, "capex_usd": v,
                           **({"rent_usd": res["rent_usd_by_year"].get(y, 0.0)}
                              if "rent_usd_by_year" in res else {})}
                          for y, v in res["capex_usd_by_year"].items()])
    return {"quarters": flat, "binding": binding, "years": years}


def optimum_frames(res: dict[str, Any]) -> dict[str, Any]:
    """optimize's CSV tables: ``units`` (device, workload, units), ``workloads`` (capacity,
    served fraction), ``binding`` (one row per binding constraint) and, when PD units are
    bought, ``pd_units`` (one row per pairing)."""
    import pandas as pd

    units = pd.DataFrame([{"device": d, "workload": w, "units": u}
                          for d, ws in (*res["units"].items(), *res.get("rented", {}).items())
                          for w, u in ws.items()],
                         columns=["device", "workload", "units"])
    wl = pd.DataFrame([{"workload": w, "capacity": res["capacity"][w],
                        "served_fraction": res["served_fraction"][w]}
                       for w in res["capacity"]])
    binding = pd.DataFrame(res["binding_constraints"],
                           columns=["constraint", "slack", "per", "shadow_price", "marginal",
                                    "marginal_per"])
    out = {"units": units, "workloads": wl, "binding": binding}
    if res.get("pd_units"):  # one row per PD column bought, servers per device as columns
        out["pd_units"] = pd.DataFrame([
            {k: v for k, v in u.items() if k not in ("servers", "devices")}
            | {f"servers.{d}": n for d, n in u["servers"].items()}
            | {f"devices.{d}": n for d, n in u["devices"].items()} for u in res["pd_units"]])
    return out

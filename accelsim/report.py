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
        **{f"{w} per USD": f"{a:.3g} / {b:.3g}" for w, (a, b) in r["per_usd"].items()},
        "max units": "-" if r["max_units"] is None else f"{r['max_units']:,}",
    } for r in rentals]


def fleet_table(sc: Any, fleets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per fleet (output of :func:`fleet_out`, best first): units, costs, each
    workload's columns, power, demand, violations and what binds."""
    from accelsim import workloads

    columns = {label: key for name, spec in sc.workloads.items()
               for label, key in workloads.of(spec).fleet_columns(name).items()}
    return [{
        "fleet": f["name"], "rank": f["rank"], "year": f["year"],
        "units": fmt_units(f["units"]),
        **({"rented": fmt_units(f.get("rented", {})) or "-"} if sc.rentals else {}),
        "capex B USD": f["capex_usd"] / 1e9,
        "TCO B USD/yr": f["tco_usd_per_year"] / 1e9,
        **{label: f.get(key, float("nan")) for label, key in columns.items()},
        "MW": f["power_MW"],
        "troughs: training B tokens/day": f.get("loan_training_tokens_per_day", 0.0) / 1e9,
        "meets demand": f["meets_demand"],
        "violations": "; ".join(f["violations"]) or "-",
        "binds / short": binding(f["rules"]),
    } for f in fleets]


def uncertainty_tables(out: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The bands and the P(A beats B) matrix of :func:`accelsim.uncertainty.summarise`."""
    names = list(out["p_beats"])
    rows = []
    for f in names:
        b = out["bands"][f]
        rows.append({"fleet": f, "within rules": b["within_rules_share"],
                     "meets demand": b["meets_demand_share"],
                     "objective p05": b["objective"]["p05"],
                     "p50": b["objective"]["p50"], "p95": b["objective"]["p95"],
                     "TCO B USD/yr p05": b["tco_usd_per_year"]["p05"] / 1e9,
                     "TCO p95": b["tco_usd_per_year"]["p95"] / 1e9,
                     "MW p50": b["power_MW"]["p50"]})
    return {
        "bands over the draws (share of draws within the rules, meeting demand)": rows,
        "P(row beats column): share of draws where the row ranks higher":
            [{"fleet": a, **{b: out["p_beats"][a].get(b, "-") for b in names}} for a in names],
    }


# The device table's columns in compare's JSON and CSV.
DEVICE_COLUMNS = ["device", "workload", "throughput", "throughput_unit", "usd_per_hour",
                  "throughput_per_usd", "throughput_per_watt", "capex_usd", "pool", "note"]


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
    return {"devices": devices[DEVICE_COLUMNS], "fleets": flat, "violations": viol}

"""One self-contained HTML page a planner can send: the comparison, its explanations, the
cost-performance and uncertainty plots, and every assumption with its source.

Everything on the page comes from the same Python API as the CLI (``compare``'s device
table and fleets, ``uncertainty``'s draws); the figures are inline SVG and the style is
inline, so the file opens anywhere with no network. The page is deterministic: the same
scenario, samples and seed give the same bytes.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from accelsim import __version__
from accelsim.report import (
    RENTAL_TITLE,
    device_tables,
    fleet_out,
    fleet_tables_by_year,
    fmt_num,
    ranking_rule,
    rental_rows,
    uncertainty_tables,
)


def assumptions(profile: Any) -> list[dict[str, Any]]:
    """Every sourced number of a device profile: field, value, range, confidence, source."""
    rows: list[dict[str, Any]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "source" in node and "confidence" in node:
                rows.append({"field": path or "identity", "value": node.get("value", "-"),
                             "range": "-" if not node.get("range") else
                             " - ".join(fmt_num(v) for v in node["range"]),
                             "confidence": node["confidence"], "source": node["source"],
                             "note": node.get("note") or ""})
                return
            for k, v in node.items():
                if k != "sources":
                    walk(v, f"{path}.{k}" if path else k)

    walk(profile.model_dump(mode="json"), "")
    return rows


def render(sc: Any, file: str | Path, samples: int = 100, seed: int = 1,
           progress: Any = None) -> str:
    """The report page for scenario ``sc`` read from ``file``."""
    import jinja2

    from accelsim import workloads
    from accelsim.fleet import compare, evaluate_full
    from accelsim.fleet.compare_verdict import annotate, verdicts
    from accelsim.fleet.evaluation import resolve_devices
    from accelsim.fleet.routing import routing_tables
    from accelsim.plots import fleet_figure, svg, uncertainty_figure
    from accelsim.uncertainty import monte_carlo, summarise

    file = str(file)
    profiles = resolve_devices(sc, file)
    table, evals = evaluate_full(sc, profiles=profiles, file=file)  # once, for both parts
    res = compare(sc, dev_table=table)
    annotate(sc, res.fleets, res.devices)
    verdict = verdicts(sc, res.fleets)

    fleets = [fleet_out(f) for f in sorted(res.fleets, key=lambda f: (f["year"],
                                                                     f["year_rank"]))]
    unc = summarise(monte_carlo(sc, samples, seed, file, progress, full=(profiles, evals))
                    ) if sc.fleets else None
    env = jinja2.Environment(loader=jinja2.PackageLoader("accelsim", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _cell
    text = Path(file).read_bytes()
    return env.get_template("report.html.j2").render(
        version=__version__, file=file, sha256=hashlib.sha256(text).hexdigest(),
        scenario_text=text.decode("utf-8", errors="replace"), sc=sc,
        demand=[(w, v, workloads.of(sc.workloads[w]).unit) for w, v in res.demand.items()],
        rule=ranking_rule(sc), verdicts=verdict, raw_fleets=fleets,
        fleets_by_year=fleet_tables_by_year(sc, fleets),
        mix_text={m.name: m.description for m in sc.fleets},
        devices={**device_tables(sc, res.devices), **({RENTAL_TITLE: [
            {**row, "confidence": r["confidence"], "source": r["source"]}
            for row, r in zip(rental_rows(res.rentals), res.rentals, strict=True)]}
            if res.rentals else {}), **routing_tables(sc, res.devices, fleets)},
        fleet_svg=svg(fleet_figure(fleets, res.demand, f"{sc.name}: capacity vs. TCO"))
        if fleets else "",
        unc=unc, samples=samples, seed=seed,
        unc_tables=uncertainty_tables(unc) if unc else {},
        unc_svg=svg(uncertainty_figure(unc, sc.name)) if unc else "",
        profiles={ref: (p, assumptions(p)) for ref, p in profiles.items()},
        regions={k: r.model_dump(mode="json") for k, r in sc.regions.items()},
    )


def _cell(x: Any) -> str:
    """A table cell: numbers compact (``fmt_num``), NaN as a dash, text as is."""
    if isinstance(x, float) and math.isnan(x):
        return "-"
    return fmt_num(x)

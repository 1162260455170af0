"""Figures. Only the CLI and benchmarks call these (the models stay pure)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def pareto_front(cost: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Indices of points not dominated (no other point is cheaper *and* at least as good)."""
    order = np.lexsort((-value, cost))
    front, best = [], -np.inf
    for i in order:
        if value[i] > best:
            front.append(i)
            best = value[i]
    return np.asarray(front, dtype=int)


def save(fig: Any, out_dir: str | Path, stem: str) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.svg"]
    for p in paths:
        fig.savefig(p, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def svg(fig: Any) -> str:
    """The figure as an inline ``<svg>`` element (text as paths, no date, fixed ids: the same
    figure gives the same bytes)."""
    import io

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "accelsim", "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def fleet_chart(fleets: list[dict[str, Any]], demand: dict[str, float], out_dir: str | Path,
                title: str) -> list[Path]:
    """:func:`fleet_figure` as PNG and SVG in ``out_dir``."""
    return save(fleet_figure(fleets, demand, title), out_dir, "fleet_cost_performance")


def fleet_figure(fleets: list[dict[str, Any]], demand: dict[str, float], title: str) -> Any:
    """Per workload, the fleet's capacity against TCO: a ``volume`` workload (training) what is
    left after the ``capacity`` workloads (serving) are covered, which is what its demand
    sees; a capacity workload the whole fleet's (allocation would show only the demand).
    One colour and one Pareto frontier per purchase year (fleets of different years are not
    alternatives); fleets that break a rule drawn hollow; demand dashed."""
    names = list(demand)
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 5), squeeze=False)
    tco = np.array([f["tco_usd_per_year"] for f in fleets]) / 1e9
    ok = np.array([not f["violations"] for f in fleets])
    year = np.array([f.get("year") or 0 for f in fleets])
    for ax, wl in zip(axes[0], names, strict=True):
        info = [f["workloads"][wl] for f in fleets]
        whole = info[0]["role"] == "capacity"
        val = np.array([i["capacity_whole_fleet" if whole else "capacity"] for i in info],
                       dtype=float)
        scale, word = _magnitude(np.append(val, demand[wl]))
        label = f"{wl}: {'whole fleet' if whole else 'after capacity workloads'} " \
                f"({word}{info[0]['unit']})"
        for k, yr in enumerate(sorted(set(year.tolist()))):
            colour, mine = f"C{k}", year == yr
            when = f"bought {yr}" if yr else "fleets"
            front = pareto_front(np.where(ok & mine, tco, np.inf),
                                 np.where(ok & mine, val, -np.inf))
            front = front[(ok & mine)[front]]
            ax.plot(tco[front], val[front] / scale, "-", color=colour, alpha=0.5, zorder=1,
                    label=f"{when}: Pareto frontier")
            ax.scatter(tco[ok & mine], val[ok & mine] / scale, s=60, color=colour, zorder=2,
                       label=f"{when}: within rules")
            if (~ok & mine).any():
                ax.scatter(tco[~ok & mine], val[~ok & mine] / scale, s=60, facecolors="none",
                           edgecolors=colour, zorder=2, label=f"{when}: breaks a rule")
        mid = (tco.min() + tco.max()) / 2
        for f, x, y in zip(fleets, tco, val / scale, strict=True):
            right = x > mid
            ax.annotate(f["name"], (x, y), textcoords="offset points", fontsize=8,
                        xytext=(-5 if right else 5, 5), ha="right" if right else "left")
        ax.axhline(demand[wl] / scale, color="k", ls="--", lw=1, label="demand")
        ax.set_xlabel("TCO (billion USD per year)")
        ax.set_ylabel(label)
        ax.margins(x=0.08, y=0.08)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8,
               frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def _magnitude(values: np.ndarray) -> tuple[float, str]:
    """A factor and its word for numbers a person reads (thousand ... billion), so axes carry
    their unit instead of an offset exponent: the largest power of 1,000 below the maximum."""
    top = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0
    for factor, word in ((1e12, "trillion "), (1e9, "billion "), (1e6, "million "),
                         (1e3, "thousand ")):
        if top >= factor:
            return factor, word
    return 1.0, ""


def uncertainty_figure(summary: dict[str, Any], title: str) -> Any:
    """Per fleet, the 5-50-95 % band of its TCO and of each workload's allocated capacity
    over the Monte Carlo draws (:func:`accelsim.uncertainty.summarise`)."""
    bands = summary["bands"]
    names = list(bands)
    metrics = ["tco_usd_per_year", *(m for m in bands[names[0]] if m.endswith("_capacity"))]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 0.5 * len(names)
                                                        + 1.6), squeeze=False, sharey=True)
    y = np.arange(len(names))[::-1]
    for ax, m in zip(axes[0], metrics, strict=True):
        raw = np.array([[bands[f][m][q] for q in ("p05", "p50", "p95")] for f in names])
        scale, word = (1e9, "billion ") if m == "tco_usd_per_year" else _magnitude(raw)
        lo, mid, hi = (raw / scale).T
        ax.errorbar(mid, y, xerr=[mid - lo, hi - mid], fmt="o", color="C0", capsize=3)
        ax.set_xlabel("TCO (billion USD per year)" if m == "tco_usd_per_year" else
                      f"{m.removesuffix('_capacity')}: capacity allocated"
                      + (f" ({word.strip()})" if word else ""))
        ax.grid(alpha=0.3, axis="x")
    axes[0][0].set_yticks(y, names)
    fig.suptitle(f"{title}: median and 5-95 % band over {summary['draws']} draws")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ sweep plots

_UNITS = [
    ("training.throughput_per_usd", "tokens per USD"),
    ("serving.throughput_per_usd", "queries per USD"),
    ("training.throughput_per_watt", "tokens/s per W"),
    ("serving.throughput_per_watt", "queries/s per W"),
    ("training.throughput", "tokens/s per device"),
    ("serving.throughput", "queries/s per device"),
    ("tokens_per_day", "tokens/day"), ("_qps", "queries/s"), ("_usd_per_year", "USD/year"),
    ("_usd", "USD"), ("usd_per_hour", "USD/hour"), ("_ms", "ms"), ("_s", "s"),
    ("_MW", "MW"), ("_W", "W"), ("_GBps", "GB/s"), ("_GiB", "GiB"), ("_tflops", "TFLOP/s"),
    ("_gib", "GiB"),
]


def label(name: str) -> str:
    """Axis label with its unit, from the metric or parameter name."""
    if " / " in name:
        return f"{name} (ratio)"
    if name.endswith(("scale", "fraction", "parity", "mfu", "hfu", "utilization")) or \
            ".share." in name:
        return f"{name} (fraction)"
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return f"{name} ({unit})"
    return name


def sweep_plot(df: Any, out: str | Path, x: str | None = None, y: str | None = None,
               hue: str | None = None, z: str | None = None, kind: str | None = None,
               level: float = 1.0, title: str | None = None,
               labels: dict[str, str] | None = None,
               base: dict[str, float] | None = None,
               base_label: str = "seed scenario") -> list[Path]:
    """Line (with 5-95 % bands when present), Pareto scatter, break-even contour or tornado.
    ``labels`` overrides the axis label of any column. ``base`` marks the base case: a point
    where it gives both ``x`` and ``y``, a vertical line where it gives ``x`` only."""
    names = labels or {}

    def lab(col: str) -> str:
        return names.get(col) or label(col)

    out = Path(out)
    stem, folder = out.stem, out.parent
    params = [c for c in df.columns if c not in BOOKKEEPING and not _is_metric(c, df)]
    kind = kind or ("contour" if z else ("tornado" if x is None else "line"))
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    if kind == "contour":
        if not (x and y and z):
            raise ValueError("contour needs --x, --y and --z")
        piv = df.pivot_table(index=y, columns=x, values=z, aggfunc="mean")
        X, Y = np.meshgrid(piv.columns.to_numpy(dtype=float), piv.index.to_numpy(dtype=float))
        Z = piv.to_numpy(dtype=float)
        cf = ax.contourf(X, Y, Z, levels=20, cmap="RdYlGn")
        fig.colorbar(cf, ax=ax, label=lab(z))
        if np.nanmin(Z) < level < np.nanmax(Z):
            cs = ax.contour(X, Y, Z, levels=[level], colors="k", linewidths=2)
            ax.clabel(cs, fmt={level: f"break-even ({level:g})"}, fontsize=8)
        ax.set_xlabel(lab(x))
        ax.set_ylabel(lab(y))
    elif kind == "tornado":
        metric = y or next(c for c in df.columns if _is_metric(c, df))
        nominal = float(df[metric].iloc[0])
        bars = []
        for p in params:
            vals = df[p].to_numpy(dtype=float)
            others = [q for q in params if q != p]
            mask = np.ones(len(df), dtype=bool)
            for q in others:
                mask &= np.isclose(df[q].to_numpy(dtype=float), float(df[q].iloc[0]))
            sub = df[mask & ~np.isclose(vals, vals[0])]
            if len(sub) == 0:
                continue
            lo, hi = float(sub[metric].min()), float(sub[metric].max())
            bars.append((p, lo - nominal, hi - nominal))
        bars.sort(key=lambda b: abs(b[2] - b[1]))
        for i, (_name, lo, hi) in enumerate(bars):
            ax.barh(i, hi, color="C0")
            ax.barh(i, lo, color="C3")
        ax.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
        ax.axvline(0, color="k", lw=1)
        ax.set_xlabel(f"change of {lab(metric)} from the nominal point ({nominal:.4g})")
    else:
        if not (x and y):
            raise ValueError(f"{kind} needs --x and --y")
        groups = [(None, df)] if hue is None else list(df.groupby(hue))
        for key, g in groups:
            g = g.sort_values(x)
            legend = None if key is None or hue is None else (
                f"{lab(hue)} = {key:.4g}" if isinstance(key, (int, float))
                else f"{lab(hue)} = {key}")
            if kind == "scatter":
                ax.scatter(g[x], g[y], s=18, label=legend, alpha=0.8)
            else:
                ax.plot(g[x], g[y], "-o", ms=3, label=legend)
            if f"{y} [p05]" in g and f"{y} [p95]" in g:
                ax.fill_between(g[x], g[f"{y} [p05]"], g[f"{y} [p95]"], alpha=0.2,
                                label=None if legend else "5-95 % band")
        with contextlib.suppress(AttributeError):  # a categorical axis has no offset
            ax.ticklabel_format(useOffset=False)
        if kind == "scatter":
            fr = pareto_front(df[x].to_numpy(dtype=float), df[y].to_numpy(dtype=float))
            ax.plot(df[x].to_numpy()[fr], df[y].to_numpy()[fr], "-", color="k", lw=1.5,
                    label="Pareto frontier")
        ax.set_xlabel(lab(x))
        ax.set_ylabel(lab(y))
        if hue is not None or kind == "scatter" or any("[p05]" in c for c in df.columns):
            ax.legend(fontsize=8)
    if base and x in base and kind != "tornado":
        _mark_base(ax, base[x], base.get(y) if y else None, base_label)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return save(fig, folder, stem)


def _mark_base(ax: Any, x: float, y: float | None, text: str) -> None:
    """The base case on a plot: a star at (x, y), else a dashed vertical line at x; labelled
    on the side with room (left of the mark in the axis' right half)."""
    lo, hi = ax.get_xlim()
    right = x > (lo + hi) / 2
    dx, ha = (-6, "right") if right else (6, "left")
    if y is None:
        ax.axvline(x, color="k", ls="--", lw=1)
        ax.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(dx, -12),
                    textcoords="offset points", fontsize=8, ha=ha)
    else:
        ax.plot([x], [y], marker="*", ms=14, color="k", mec="w", zorder=5)
        ax.annotate(text, (x, y), xytext=(dx, 6), textcoords="offset points", fontsize=8, ha=ha,
                    bbox={"boxstyle": "round", "fc": "w", "alpha": 0.8, "lw": 0})


# Sweep result columns that are neither parameters nor metrics.
BOOKKEEPING = ("point_id", "reason")


def _is_metric(col: str, df: Any) -> bool:
    return col.startswith(("device.", "fleet.", "optimum.")) or " / " in col or "[p" in col \
        or col in ("step_time_s", "tokens_per_s", "mfu", "hfu", "p99_ms", "max_qps_at_slo") \
        or col.startswith("breakdown.")

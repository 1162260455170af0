"""Plots a planner reads: base-case marks, per-purchase-year frontiers, units without offset
exponents."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from accelsim import plots


def test_a_plot_marks_its_base_case(tmp_path):
    """``base`` puts a star at (x, y) when both are given, a dashed line at x otherwise."""
    df = pd.DataFrame({"a": [0.0, 1.0, 2.0, 0.0, 1.0, 2.0], "b": [1.0, 1.0, 1.0, 2.0, 2.0, 2.0],
                       "device.x.y": [0.5, 1.0, 1.5, 0.4, 0.9, 1.4]})
    seen = []
    real_save = plots.save
    plots.save = lambda fig, folder, stem: seen.append(fig) or []
    try:
        plots.sweep_plot(df, tmp_path / "c.png", x="a", y="b", z="device.x.y", kind="contour",
                         base={"a": 1.5, "b": 1.2})
        plots.sweep_plot(df[df.b == 1.0], tmp_path / "l.png", x="a", y="device.x.y",
                         kind="line", base={"a": 0.5})
    finally:
        plots.save = real_save
    star = [ln for ln in seen[0].axes[0].lines if ln.get_marker() == "*"]
    assert len(star) == 1 and list(star[0].get_xdata()) == [1.5] \
        and list(star[0].get_ydata()) == [1.2]
    vline = [ln for ln in seen[1].axes[0].lines if ln.get_linestyle() == "--"]
    assert len(vline) == 1 and list(vline[0].get_xdata()) == [0.5, 0.5]
    for fig in seen:
        plt.close(fig)


def _fleet(name, year, tco, cap, broken=False):
    return {"name": name, "year": year, "tco_usd_per_year": tco, "violations": ["x"] if broken
            else [], "workloads": {"training": {"role": "volume", "capacity": cap,
                                                "unit": "tokens/s"}}}


def test_the_fleet_chart_draws_one_frontier_per_purchase_year_in_readable_units():
    fleets = [_fleet("a", 2025, 2e9, 3.0e7), _fleet("b", 2025, 4e9, 6.0e7),
              _fleet("c", 2026, 2.5e9, 7.0e7), _fleet("d", 2026, 3e9, 6.5e7),
              _fleet("e", 2025, 4.5e9, 4e7, broken=True)]
    fig = plots.fleet_figure(fleets, {"training": 5.8e7}, "t")
    ax = fig.axes[0]
    frontiers = [ln for ln in ax.lines if ln.get_linestyle() == "-"]
    # 2025: a -> b (e breaks a rule); 2026: c only (d costs more for less)
    assert sorted(len(ln.get_xdata()) for ln in frontiers) == [1, 2]
    assert len({ln.get_color() for ln in frontiers}) == 2
    assert "million tokens/s" in ax.get_ylabel()
    fig.canvas.draw()
    assert ax.yaxis.get_offset_text().get_text() == ""
    assert np.nanmax([ln.get_ydata().max() for ln in frontiers]) < 1e3
    plt.close(fig)


def test_magnitude_words():
    assert plots._magnitude(np.array([3.2e10])) == (1e9, "billion ")
    assert plots._magnitude(np.array([12.0])) == (1.0, "")


def test_the_uncertainty_bands_read_in_words_not_exponents():
    band = {"p05": 2.0e7, "p50": 3.0e7, "p95": 4.0e7}
    summary = {"draws": 10, "bands": {
        "a": {"tco_usd_per_year": {"p05": 1e9, "p50": 2e9, "p95": 3e9}, "training_capacity": band},
        "b": {"tco_usd_per_year": {"p05": 2e9, "p50": 3e9, "p95": 4e9}, "training_capacity": band}}}
    fig = plots.uncertainty_figure(summary, "t")
    fig.canvas.draw()
    assert fig.axes[1].get_xlabel() == "training: capacity allocated (million)"
    assert all(ax.xaxis.get_offset_text().get_text() == "" for ax in fig.axes)
    plt.close(fig)

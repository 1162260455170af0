"""Readable output: tables that fit the terminal without folding a number, strict JSON."""

from __future__ import annotations

import io
import json
import math

from rich.console import Console

from accelsim.report import strict_json, table


def _render(t, width: int) -> list[str]:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None).print(t)
    return buf.getvalue().splitlines()


def test_a_wide_table_splits_by_whole_columns_repeating_the_key():
    rows = [{"device": f"device-{i}", **{f"metric number {j}": 123456789.0 * (i + 1) + j
                                         for j in range(9)}} for i in range(3)]
    lines = _render(table("wide", rows), 80)
    assert max(len(x) for x in lines) <= 80
    text = "\n".join(lines)
    for r in rows:  # every number appears whole, never folded across lines
        for k, v in r.items():
            if k != "device":
                assert f"{v:,.0f}" in text
    assert text.count("device-0") >= 2 and "(continued: device repeated)" in text


def test_a_narrow_table_is_one_table():
    lines = _render(table("t", [{"a": 1, "b": 2.5}]), 80)
    assert "continued" not in "\n".join(lines)


def test_text_cells_wrap_at_spaces():
    rows = [{"fleet": "f", "units": "ascend-910c 137,500, inhouse-asic 100,000, h20 247,747"}]
    text = "\n".join(_render(table("", rows), 40))
    assert "137,500" in text and "247,747" in text


def test_strict_json_turns_inf_and_nan_into_null_with_a_reason():
    obj = {"fleets": [{"objective": math.inf, "days_to_train": math.inf},
                      {"ci95_low_qps": math.nan, "x": 1.0}], "ok": 2}
    out = strict_json(obj)
    text = json.dumps(out, allow_nan=False)  # would raise on inf/nan
    back = json.loads(text)
    assert back["fleets"][0] == {"objective": None, "days_to_train": None}
    reasons = back["null_reasons"]
    assert "min_cost" in reasons["fleets[0].objective"]
    assert "no capacity" in reasons["fleets[0].days_to_train"]
    assert "2 replications" in reasons["fleets[1].ci95_low_qps"]
    assert back["ok"] == 2 and back["fleets"][1]["x"] == 1.0

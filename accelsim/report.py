"""Human-readable formatting: the only place numbers are turned into display units."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table


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


def table(title: str, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Table:
    """A rich table from a list of dicts (columns in order of first appearance)."""
    cols = columns or list(dict.fromkeys(k for r in rows for k in r))
    t = Table(title=title or None, title_justify="left", header_style="bold")
    for i, c in enumerate(cols):
        left = rows and isinstance(rows[0].get(c), str)
        t.add_column(c, justify="left" if left else "right", overflow="fold", no_wrap=i == 0)
    for r in rows:
        t.add_row(*[fmt_num(r.get(c, "")) for c in cols])
    return t

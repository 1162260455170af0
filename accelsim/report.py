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

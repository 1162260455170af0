"""``runs``: a file of published runs (:mod:`accelsim.runs`), run by ``validate-runs``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.kinds.base import Kind, register


def from_data(data: dict[str, Any], path: str | Path, where: str, check: bool = True) -> Any:
    from accelsim.config import validate
    from accelsim.runs import RunFile
    from accelsim.runs import check as check_runs

    rf = validate(RunFile, data, where)
    if check:
        check_runs(rf, where)
    return rf


register(Kind("runs", "accelsim.runs:RunFile", "runs", "published runs", from_data,
              command="validate-runs"))

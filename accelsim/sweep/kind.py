"""``sweep``: a parameter sweep over any sweepable kind's file, run by ``sweep``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.kinds.base import Kind, register


def from_data(data: dict[str, Any], path: str | Path, where: str, check: bool = True) -> Any:
    """The sweep; ``check`` also validates its base, every parameter and every metric
    against it (:func:`accelsim.sweep.evaluate.check_sweep`)."""
    from accelsim.config import validate
    from accelsim.sweep.evaluate import check_sweep
    from accelsim.sweep.spec import SweepSpec, base_path, count_points

    spec = validate(SweepSpec, data, where)
    if check:
        base = base_path(spec, path, where)
        count_points(spec, where)
        check_sweep(spec, where, str(base))
    return spec


register(Kind("sweep", "accelsim.sweep.spec:SweepSpec", "metrics", "parameter sweep",
              from_data, command="sweep"))

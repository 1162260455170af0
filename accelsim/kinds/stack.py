"""``stack``: a software-stack profile (:class:`accelsim.stacks.StackProfile`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.kinds.base import Kind, register


def from_data(data: dict[str, Any], path: str | Path, where: str, check: bool = True) -> Any:
    from accelsim.config import validate
    from accelsim.stacks import StackProfile, expand

    return validate(StackProfile, expand(data, path), where)


register(Kind("stack", "accelsim.stacks:StackProfile", "framework", "software stack profile",
              from_data))

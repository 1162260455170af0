"""``rec-model``: a recommendation model (:class:`accelsim.serving.rec_model.RecModel`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.kinds.base import Kind, register


def from_data(data: dict[str, Any], path: str | Path, where: str, check: bool = True) -> Any:
    from accelsim.config import validate
    from accelsim.serving.rec_model import RecModel

    return validate(RecModel, data, where)


register(Kind("rec-model", "accelsim.serving.rec_model:RecModel", "tables",
              "recommendation model", from_data))

"""``train-model``: a decoder-only transformer (:class:`accelsim.transformer.TransformerModel`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.kinds.base import Kind, register


def from_data(data: dict[str, Any], path: str | Path, where: str, check: bool = True) -> Any:
    from accelsim.config import validate
    from accelsim.transformer.model import TransformerModel

    return validate(TransformerModel, data, where)


register(Kind("train-model", "accelsim.transformer.model:TransformerModel", "layers",
              "transformer model", from_data, command="train-search"))

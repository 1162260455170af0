"""``device``: an accelerator profile (:class:`accelsim.devices.DeviceProfile`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.kinds.base import Kind, register


def from_data(data: dict[str, Any], path: str | Path, where: str, check: bool = True) -> Any:
    from accelsim.devices import device_from_dict

    return device_from_dict(data, where)


register(Kind("device", "accelsim.devices:DeviceProfile", "compute", "accelerator profile",
              from_data, command="devices show", input_files=lambda obj: []))

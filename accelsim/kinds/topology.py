"""``topology``: a fabric a device sits in (:class:`accelsim.devices.topology.Topology`): its
scale-up domain, scale-out tiers and their prices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.kinds.base import Kind, register


def from_data(data: dict[str, Any], path: str | Path, where: str, check: bool = True) -> Any:
    from accelsim.config import validate
    from accelsim.devices.topology import Topology

    return validate(Topology, data, where)


register(Kind("topology", "accelsim.devices.topology:Topology", "scaleup",
              "fabric topology: scale-up domain, scale-out tiers, network prices", from_data))

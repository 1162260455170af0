"""accelsim: what do we get for our money if we change the accelerator hardware?

The package's names are imported on first use, so ``accelsim --version`` and the CLI's
start-up do not pay for pydantic, numpy or pandas before a command needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "AccelsimError": "accelsim.errors",
    "DeviceProfile": "accelsim.devices",
    "DeviceSpec": "accelsim.devices",
    "catalog": "accelsim.devices",
    "load_device": "accelsim.devices",
}

if TYPE_CHECKING:
    from accelsim.devices import DeviceProfile, DeviceSpec, catalog, load_device
    from accelsim.errors import AccelsimError


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'accelsim' has no attribute {name!r}")


__all__ = ["AccelsimError", "DeviceProfile", "DeviceSpec", "__version__", "catalog", "load_device"]

"""What this machine has, for the checks that refuse a run before it starts (a module of its
own so that those checks import nothing else)."""

from __future__ import annotations

import os

from accelsim import units


def physical_memory() -> float:
    """Bytes of RAM of this machine (8 GB where the platform does not say)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * units.GB  # unknown platform: assume a small machine

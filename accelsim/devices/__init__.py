"""Device profiles: what one accelerator can do, what it costs, and where each number comes from.

A profile is a YAML file validated by :class:`DeviceProfile`. Keys carry their
unit when it is not SI (``memory_GiB``, ``bf16_tflops``); every number is a
:class:`Quantity` with a source and a confidence, or ``confidence: assumption``
with the reasoning in ``note``. :meth:`DeviceProfile.spec` converts once to SI
(:class:`DeviceSpec`), which is all the performance models see.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from functools import lru_cache
from pathlib import Path
from typing import Any

from accelsim import overrides, refs
from accelsim.config import read_yaml, validate
from accelsim.devices.profile import (
    PERF_SECTIONS,
    SECTIONS,
    Compute,
    Cost,
    DeviceProfile,
    Efficiency,
    Interconnect,
    Memory,
    Power,
    Reliability,
    whole_fields,
)
from accelsim.devices.quantity import (
    Confidence,
    Count,
    Fraction,
    NonNegative,
    Peak,
    Positive,
    Provenance,
    Quantity,
)
from accelsim.devices.spec import DeviceSpec
from accelsim.errors import AccelsimError
from accelsim.overrides import Overrides, Values

__all__ = [
    "PERF_SECTIONS", "SECTIONS", "Compute", "Confidence", "Cost", "Count", "DeviceProfile",
    "DeviceSpec",
    "Efficiency", "Fraction", "Interconnect", "Memory", "NonNegative", "Peak", "Positive",
    "Power", "Provenance", "Quantity", "Reliability", "catalog", "catalog_names",
    "device_from_dict", "load_device", "overridden", "require_spec", "whole_fields",
]


def require_spec(device: object, where: str = "device") -> DeviceSpec:
    """``device`` if it is a :class:`DeviceSpec`. The physics takes the SI view only, never
    a name or a profile: resolve names and paths once, at the boundary, with
    ``load_device(ref).spec``."""
    if isinstance(device, DeviceSpec):
        return device
    hint = "; pass its .spec" if isinstance(device, DeviceProfile) else (
        "; resolve a name or path with accelsim.load_device(...).spec first")
    raise AccelsimError.single(where, "device", f"expected a DeviceSpec, got "
                               f"{type(device).__name__} {str(device)[:40]!r}{hint}")


# ---------------------------------------------------------------------------
# catalog

def catalog_names() -> list[str]:
    return refs.names("devices")


def catalog() -> dict[str, DeviceProfile]:
    """Every profile in the shipped catalog, by name."""
    return {n: load_device(n) for n in catalog_names()}


def load_device(name_or_path: str | Path, where: str = "device", field: str = "",
                relative_to: str | Path | None = None) -> DeviceProfile:
    """A catalog name (``h20``) or a path to a YAML profile; unknown names suggest the closest.
    A file edited since it was last read is read again."""
    from accelsim.devices import anchor as devices_anchor

    path = refs.find(name_or_path, "devices", relative_to, where, field, what="device")
    st = path.stat()
    profile = _load_path(str(path), refs.shown(path), st.st_mtime_ns, st.st_size)
    mine = _OVERRIDES.of(profile.name)
    if mine:
        profile = _load_overridden(str(path), refs.shown(path), st.st_mtime_ns, st.st_size, mine)
    return devices_anchor.apply(profile)


@lru_cache(maxsize=256)
def _load_path(resolved: str, shown: str, mtime_ns: int, size: int) -> DeviceProfile:
    """Parsed profile, cached by path and the file's modification time and size."""
    return _check_topology(validate(DeviceProfile, read_yaml(resolved), shown), shown)


_OVERRIDES = Overrides("device")


def overridden(values: Mapping[str, Mapping[str, float]]) -> AbstractContextManager[None]:
    """Within the block, :func:`load_device` returns the named profiles with these numbers
    (``{'h100-sxm': {'efficiency.compute': 0.6}}``), files untouched
    (:mod:`accelsim.overrides`)."""
    return _OVERRIDES.set(values)


@lru_cache(maxsize=1024)
def _load_overridden(resolved: str, shown: str, mtime_ns: int, size: int,
                     values: Values) -> DeviceProfile:
    """The parsed profile with ``values`` set (cached like :func:`_load_path`)."""
    return overrides.apply(_load_path(resolved, shown, mtime_ns, size), values, shown)


def device_from_dict(data: dict[str, Any], file: str = "<device>") -> DeviceProfile:
    """Validate a profile given as a mapping (used by sweeps that override fields)."""
    return _check_topology(validate(DeviceProfile, data, file), file)


def _check_topology(p: DeviceProfile, file: str) -> DeviceProfile:
    """The topology a profile names must load (the loader's check, not the model's)."""
    if p.interconnect.topology is not None:
        from accelsim.devices import topology  # the topology module reads DeviceSpec

        try:
            topology.load_topology(p.interconnect.topology)
        except AccelsimError as e:
            raise AccelsimError.single(file, "interconnect.topology",
                                       e.problems[0].message) from None
    return p

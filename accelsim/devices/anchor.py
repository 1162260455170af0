"""What-if anchors: ``--anchor inhouse-asic=tpu-v5p`` gives a device the achieved-to-peak
figures (its whole ``efficiency`` section, ranges and sources included) of a published,
checked device, so "what if the ASIC reaches TPU v5p-like efficiency" is one flag.

The override lives for the command that set it (:func:`set_anchors`, called first in each
command) and is applied where every profile is loaded (:func:`apply`, from
:func:`accelsim.devices.load_device`); worker processes are forked after it is set, and the
evaluation cache keys on the resolved spec, so an anchored run never reads an unanchored
entry.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from accelsim.errors import AccelsimError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from accelsim.devices import DeviceProfile

_ANCHORS: dict[str, str] = {}


def parse(specs: list[str] | None, option: str = "--anchor") -> dict[str, str]:
    """``["inhouse-asic=tpu-v5p"]`` -> ``{"inhouse-asic": "tpu-v5p"}``; both names must be
    catalog devices (or paths), a device is anchored once and never to itself."""
    from accelsim.devices import load_device

    out: dict[str, str] = {}
    for spec in specs or []:
        target, sep, anchor = (s.strip() for s in spec.partition("="))
        if not sep or not target or not anchor:
            raise AccelsimError.single(option, "", f"expected DEVICE=ANCHOR (e.g. "
                                       f"inhouse-asic=tpu-v5p), got {spec!r}")
        if target == anchor:
            raise AccelsimError.single(option, "", f"{spec!r}: a device cannot be anchored "
                                       "to itself; expected another device")
        if target in out:
            raise AccelsimError.single(option, "", f"{target!r} is anchored twice; expected "
                                       "one anchor per device")
        for name in (target, anchor):
            load_device(name, where=option, field="")  # unknown names say the closest
        out[target] = anchor
    return out


def set_anchors(specs: list[str] | None) -> dict[str, str]:
    """Set the anchors of this command (none when ``specs`` is empty); returns them. Every
    fleet command calls it first, so a command never inherits another's anchors; a caller
    driving the CLI in-process and loading profiles itself afterwards wraps the call in
    :func:`anchored` (``with anchored(None): ...``) to get its own state back."""
    parsed = parse(specs)
    _ANCHORS.clear()
    _ANCHORS.update(parsed)
    return parsed


@contextmanager
def anchored(specs: list[str] | None) -> Iterator[dict[str, str]]:
    """The anchors within a block (library use and tests), restored after it."""
    before = dict(_ANCHORS)
    try:
        yield set_anchors(specs)
    finally:
        _ANCHORS.clear()
        _ANCHORS.update(before)


def apply(profile: DeviceProfile) -> DeviceProfile:
    """``profile`` with its efficiency section replaced by its anchor's, if it has one."""
    anchor = _ANCHORS.get(profile.name)
    if anchor is None:
        return profile
    from accelsim.devices import load_device

    saved = _ANCHORS.pop(profile.name)  # the anchor itself is loaded as published
    try:
        src = load_device(anchor)
    finally:
        _ANCHORS[profile.name] = saved
    desc = (f"{profile.description} [anchored: efficiency of {src.name} "
            f"(--anchor {profile.name}={src.name})]").strip()
    return profile.model_copy(update={"efficiency": src.efficiency, "description": desc})

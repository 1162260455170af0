"""How a sweep point changes its inputs: device fields and pseudo-fields, config keys,
fleet spend shares."""

from __future__ import annotations

from typing import Any

from accelsim.devices import SECTIONS, load_device
from accelsim.errors import AccelsimError

PSEUDO = ("perf_scale", "compute_scale", "bandwidth_scale", "cuda_parity")
CUDA_REFERENCE = "h100-sxm"


_DEVICE_SECTIONS = SECTIONS


def _device_field(profile: dict[str, Any], field: str, where: str) -> tuple[str, str]:
    """Resolve ``bf16_tflops`` or ``efficiency.compute`` to (section, key)."""
    if "." in field:
        sec, key = field.split(".", 1)
        if sec in _DEVICE_SECTIONS and key in profile[sec]:
            return sec, key
    hits = [(sec, field) for sec in _DEVICE_SECTIONS if field in profile[sec]]
    if len(hits) != 1:
        raise AccelsimError.single(
            where, "parameters",
            f"'{field}' is not a device field (e.g. bf16_tflops, efficiency.compute, "
            f"price_usd) nor one of {', '.join(PSEUDO)}")
    return hits[0]


def _set_q(q: dict[str, Any], value: float) -> None:
    q["value"] = float(value)
    q["range"] = None  # the sweep moves the value outside its sourced range on purpose
    q["source"] = "sweep"
    q["confidence"] = "assumption"
    q["note"] = "set by a parameter sweep"


def apply_device(profile: dict[str, Any], field: str, value: float, where: str) -> None:
    """Apply one override (a field or a pseudo-field) to a profile mapping in place."""
    if field in ("perf_scale", "compute_scale"):
        for key, q in profile["compute"].items():  # the peaks, not the kernel model's counts
            if key.endswith(("_tflops", "_tops")) and q["value"] != "unsupported":
                _set_q(q, float(q["value"]) * value)
    if field in ("perf_scale", "bandwidth_scale"):
        q = profile["memory"]["memory_bandwidth_GBps"]
        _set_q(q, float(q["value"]) * value)
    if field in ("perf_scale", "compute_scale", "bandwidth_scale"):
        return
    if field == "cuda_parity":
        ref = load_device(CUDA_REFERENCE).model_dump(mode="json")["efficiency"]
        eff = profile["efficiency"]
        orig = dict(eff)
        for key in ("compute", "memory", "communication", "all_to_all", "random_access"):
            mine = orig[key] or orig["communication"]  # all_to_all defaults to communication
            theirs = ref[key] or ref["communication"]
            own = float(mine["value"])
            eff[key] = dict(mine)
            _set_q(eff[key], own + value * (float(theirs["value"]) - own))
        return
    sec, key = _device_field(profile, field, where)
    if profile[sec][key] is None:  # an optional field left out: start from its default
        profile[sec][key] = dict(profile[sec]["communication"])
    _set_q(profile[sec][key], value)


def apply_mapping(data: dict[str, Any], path: str, value: float, where: str) -> None:
    """Set a dotted key of a config mapping (lists by index). A missing mapping key is
    created (``supply.<device>.max_units`` for a device without a cap); validating the
    result catches a misspelt one."""
    parts = path.split(".")
    if parts[0] == "fleets" and len(parts) == 4 and parts[2] == "share":
        _apply_share(data, parts[1], parts[3], value, where)
        return
    node: Any = data
    for p in parts[:-1]:
        if isinstance(node, list):
            node = node[_index(node, p, path, where)]
        elif isinstance(node, dict):
            if p not in node:
                node[p] = {}
            node = node[p]
        else:
            raise AccelsimError.single(where, "parameters", f"cannot set '{path}'")
    last = parts[-1]
    # a whole number is written as an int (counts); any other value stays a float, so a
    # fractional count fails validation instead of being rounded
    v: Any = int(value) if float(value).is_integer() else float(value)
    if isinstance(node, list):
        node[_index(node, last, path, where)] = v
    else:
        node[last] = v


def _index(node: list[Any], part: str, path: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise AccelsimError.single(where, f"parameters.{path}", f"'{part}' is not an index of "
                                   f"a list of {len(node)}; expected 0-{len(node) - 1}")
    return int(part)


def _apply_share(data: dict[str, Any], fleet: str, device: str, share: float, where: str) -> None:
    for f in data.get("fleets", []):
        if f.get("name") == fleet:
            spend = f.get("spend_usd")
            if not spend:
                raise AccelsimError.single(where, "parameters",
                                           f"fleet '{fleet}' needs spend_usd for a share")
            total = sum(spend.values())
            others = {d: v for d, v in spend.items() if d != device}
            rest = sum(others.values())
            new = {device: share * total}
            for d, v in others.items():
                new[d] = (1 - share) * total * (v / rest if rest > 0 else 1 / len(others))
            f["spend_usd"] = new
            return
    raise AccelsimError.single(where, "parameters", f"no fleet named '{fleet}'")



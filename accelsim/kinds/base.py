"""The registry of file kinds: what a YAML file of each kind is (its schema and the top-level
key that tells it apart), how it loads (validation, references resolved from its folder,
checks that read other files), the files and devices it names, the command that runs it, and
for the kinds a sweep can vary, how a point is evaluated and which metrics it has.

Each kind is one module of :mod:`accelsim.kinds` that calls :func:`register`; ``validate``,
``schema``, sweeps and the example tests ask this registry and never name a kind.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from accelsim.config import read_yaml
from accelsim.errors import AccelsimError


@dataclass(frozen=True)
class Sweepable:
    """What a sweep needs of a kind: ``prepare(base, profiles, base_path, metrics)`` computes
    once per sweep what every point reuses (the scenario's base evaluation of what the
    metrics need); ``evaluate(obj, profiles,
    metrics, where, state, reasons)`` returns a point's values by metric name;
    ``metric_names(data, base_path, profiles, metrics, where)`` every name a point fills."""

    evaluate: Callable[..., dict[str, Any]]
    metric_names: Callable[..., set[str]]
    prepare: Callable[..., Any] = field(default=lambda base, profiles, path, metrics=None:
                                        None)


@dataclass(frozen=True)
class Kind:
    """One kind of accelsim file."""

    name: str
    model: str  # "module:Class", imported lazily
    marker: str  # a required top-level key no other kind has
    description: str
    from_data: Callable[..., Any]  # (data, path, where, check) -> the validated object
    command: str | None = None  # the accelsim command that runs it
    input_files: Callable[[Any], list[Path]] = field(default=lambda obj: [])
    devices: Callable[[Any], list[str]] = field(default=lambda obj: [])
    sweep: Sweepable | None = None

    def cls(self) -> type[BaseModel]:
        module, attr = self.model.split(":")
        return getattr(importlib.import_module(module), attr)

    def load(self, path: str | Path, check: bool = True) -> Any:
        """Read, validate and (``check``) cross-check a file of this kind."""
        return self.from_data(read_yaml(path), path, str(path), check)


def short_run_names(from_data: Callable[..., Any], evaluate: Callable[..., dict[str, Any]],
                    capacity_keys: Callable[[], tuple[str, ...]]) -> Callable[..., set[str]]:
    """``metric_names`` of a simulated job: what a 200-request run of the base reports, and
    what its capacity search would add (``capacity_keys()``, without running it)."""

    def names(data: dict[str, Any], path: str, profiles: dict[str, Any], metrics: list[str],
              where: str) -> set[str]:
        short = {**data, "sim": {**data.get("sim", {}), "requests": 200, "warmup": 0,
                                 "replications": 1}}
        job = from_data(short, path, where)
        return set(evaluate(job, profiles, [], where, None, [])) | set(capacity_keys())

    return names


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind


def get(name: str, where: str = "schema", field: str = "KIND") -> Kind:
    if name not in KINDS:
        raise AccelsimError.single(where, field, f"unknown kind '{name}'; expected one of: "
                                   + ", ".join(sorted(KINDS)))
    return KINDS[name]


def detect(data: dict[str, Any], file: str) -> Kind:
    """The kind whose marker key the file has (exactly one: markers are unique)."""
    found = [k for k in KINDS.values() if k.marker in data]
    if len(found) == 1:
        return found[0]
    known = ", ".join(f"{k.name} (has '{k.marker}')" for k in KINDS.values())
    if found:
        raise AccelsimError.single(file, "(top level)", "has the keys of several kinds ("
                                   + ", ".join(f"'{k.marker}'" for k in found)
                                   + f"); expected one of: {known}")
    raise AccelsimError.single(file, "(top level)", "cannot tell what kind of accelsim file "
                               f"this is; expected one of: {known}")


def load_file(path: str | Path, kind: str | None = None) -> tuple[Kind, Any]:
    """Any accelsim file, of the kind it is (or the one asked for), loaded and checked."""
    if kind:
        return get(kind), require(path, kind, "--kind")
    data = read_yaml(path)
    k = detect(data, str(path))
    return k, k.from_data(data, path, str(path), True)


def require(path: str | Path, kind: str, option: str = "") -> Any:
    """A file that must be of ``kind``: loaded, or one line saying what it is instead."""
    data = read_yaml(path)
    if KINDS[kind].marker not in data:
        try:
            what = f"a {detect(data, str(path)).description} file"
        except AccelsimError:
            what = "something else"
        raise AccelsimError.single(str(path), option or KINDS[kind].marker,
                                   f"expected a {KINDS[kind].description} file (with a "
                                   f"top-level '{KINDS[kind].marker}'), got {what}")
    return KINDS[kind].from_data(data, path, str(path), True)

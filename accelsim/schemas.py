"""Every kind of accelsim config file, by name: for ``accelsim validate`` and ``accelsim schema``.

Each kind names its pydantic model and a top-level key that identifies a file of
that kind, so ``validate`` can tell what it is looking at.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from accelsim.config import read_yaml, validate
from accelsim.errors import AccelsimError


@dataclass(frozen=True)
class Kind:
    name: str
    model: str  # "module:Class", imported lazily
    marker: str  # top-level key present only in files of this kind
    description: str

    def cls(self) -> type[BaseModel]:
        module, attr = self.model.split(":")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


KINDS: dict[str, Kind] = {
    k.name: k
    for k in [
        Kind("device", "accelsim.devices:DeviceProfile", "compute", "accelerator profile"),
        Kind("train-job", "accelsim.training.job:TrainJob", "parallelism", "training job"),
        Kind("train-model", "accelsim.training.job:TransformerModel", "layers",
             "transformer model"),
        Kind("serve-job", "accelsim.serving.job:ServeJob", "arrivals", "serving job"),
        Kind("scenario", "accelsim.fleet:Scenario", "fleets", "fleet scenario"),
        Kind("sweep", "accelsim.sweep:SweepSpec", "metrics", "parameter sweep"),
        Kind("rec-model", "accelsim.serving.recsys:RecModel", "tables",
             "recommendation model"),
    ]
}



def detect(data: dict[str, Any], file: str) -> Kind:
    for kind in KINDS.values():
        if kind.marker in data:
            return kind
    raise AccelsimError.single(
        file, "(top level)",
        "cannot tell what kind of accelsim file this is; expected one of: "
        + ", ".join(f"{k.name} (has '{k.marker}')" for k in KINDS.values()),
    )


def validate_file(path: str | Path, kind: str | None = None) -> tuple[Kind, BaseModel]:
    """Validate any accelsim config file; returns its kind and the parsed model."""
    data = read_yaml(path)
    k = get_kind(kind) if kind else detect(data, str(path))
    model = validate(k.cls(), data, str(path))
    check = getattr(model, "check", None)
    if callable(check):
        check(str(path))  # cross-file checks: device names, layouts
    return k, model


def get_kind(name: str) -> Kind:
    if name not in KINDS:
        raise AccelsimError.single("schema", "KIND", f"unknown kind '{name}'; expected one of: "
                                   + ", ".join(KINDS))
    return KINDS[name]


def json_schema(name: str) -> dict[str, Any]:
    schema = get_kind(name).cls().model_json_schema()
    if name == "scenario":
        _workload_blocks(schema)
    return schema


def _workload_blocks(schema: dict[str, Any]) -> None:
    """A scenario's ``workloads`` values: any registered kind's block (its own schema)."""
    from accelsim import workloads

    defs = schema.setdefault("$defs", {})
    refs = []
    for kind in workloads.kinds():
        sub = workloads.get(kind).spec_model.model_json_schema()
        defs.update(sub.pop("$defs", {}))
        defs[sub["title"]] = sub
        refs.append({"$ref": f"#/$defs/{sub['title']}"})
    schema["properties"]["workloads"]["additionalProperties"] = {"anyOf": refs}

"""Every kind of accelsim config file, by name: for ``accelsim validate`` and ``accelsim schema``.

Each kind names its pydantic model and a top-level key that identifies a file of
that kind, so ``validate`` can tell what it is looking at.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import textwrap
import typing
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
        # before serve-job: an LLM job has arrivals too
        Kind("llm-job", "accelsim.llm.job:LLMJob", "prompt_tokens", "LLM serving job"),
        Kind("serve-job", "accelsim.serving.job:ServeJob", "arrivals", "serving job"),
        Kind("scenario", "accelsim.fleet:Scenario", "fleets", "fleet scenario"),
        Kind("sweep", "accelsim.sweep:SweepSpec", "metrics", "parameter sweep"),
        Kind("rec-model", "accelsim.serving.recsys:RecModel", "tables",
             "recommendation model"),
        Kind("runs", "accelsim.runs:RunFile", "runs", "published runs"),
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
    """JSON Schema of a kind, with every field's docstring as its description."""
    root = get_kind(name).cls()
    schema = root.model_json_schema()
    roots: list[type[BaseModel]] = [root]
    if name == "scenario":
        _workload_blocks(schema)
        from accelsim import workloads

        roots += [workloads.get(k).spec_model for k in workloads.kinds()]
    classes: dict[str, type[BaseModel]] = {}
    for r in roots:
        _models(r, classes)
    for title, sub in [(root.__name__, schema), *schema.get("$defs", {}).items()]:
        cls = classes.get(title)
        if cls is not None:
            for field, doc in _attribute_docs(cls).items():
                if field in sub.get("properties", {}):
                    sub["properties"][field].setdefault("description", doc)
    return schema


def _models(cls: type[BaseModel], out: dict[str, type[BaseModel]]) -> None:
    """Every pydantic model reachable from ``cls`` through its fields' annotations."""
    if cls.__name__ in out:
        return
    out[cls.__name__] = cls

    def visit(tp: Any) -> None:
        for arg in typing.get_args(tp):
            visit(arg)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            _models(tp, out)

    for f in cls.model_fields.values():
        visit(f.annotation)


def _attribute_docs(cls: type[BaseModel]) -> dict[str, str]:
    """Field docstrings (a string literal right under the field) of ``cls`` and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass is BaseModel:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for a, b in itertools.pairwise(body):
            if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name)
                    and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant)
                    and isinstance(b.value.value, str)):
                docs[a.target.id] = " ".join(inspect.cleandoc(b.value.value).split())
    return docs


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

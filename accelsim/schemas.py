"""``accelsim validate`` and ``accelsim schema`` over every kind of file: the registry of
:mod:`accelsim.kinds` (with the sweep kind :mod:`accelsim.sweep` registers) tells a file's kind
by its marker key, loads and cross-checks it, and gives its JSON Schema with every field's
docstring as its description.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import textwrap
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import accelsim.sweep.kind  # noqa: F401  (registers the sweep kind)
from accelsim.kinds import KINDS, Kind, detect, get, load_file

__all__ = ["KINDS", "Kind", "detect", "get", "json_schema", "validate_file"]


def validate_file(path: str | Path, kind: str | None = None) -> tuple[Kind, BaseModel]:
    """Validate any accelsim config file; returns its kind and the loaded object."""
    k, obj = load_file(path, kind)
    return k, obj


def json_schema(name: str) -> dict[str, Any]:
    """JSON Schema of a kind, with every field's docstring as its description."""
    root = get(name).cls()
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

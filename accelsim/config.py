"""YAML loading and pydantic validation with one-line, user-facing errors.

``load(Model, path)`` reads a file with ``yaml.safe_load`` and validates it;
every problem becomes ``FILE: path.to.field: what was expected``.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from accelsim.errors import AccelsimError, Problem

M = TypeVar("M", bound=BaseModel)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader (libyaml's parser when PyYAML has it: 5x faster) that also reads ``1e9``
    and ``12.3e9`` as floats (YAML 1.2 style); PyYAML's YAML 1.1 resolver would read them as
    strings."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False
                       ) -> dict[Any, Any]:
    """A mapping whose keys are unique: YAML says a repeated key is an error, PyYAML would
    silently keep the last one."""
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # ``<<: *anchor`` merges a mapping (SafeConstructor flattens it)
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (str, int, float, bool)) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first at line {seen[key] + 1})",
                key_node.start_mark)
        if isinstance(key, (str, int, float, bool)):
            seen[key] = key_node.start_mark.line
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

# Calendar years a profile, scenario or purchase may name (devices from 2010 on; plans to 2040).
YEARS = (2010, 2040)
# A config file is a few kB; anything past this is not one (e.g. /dev/zero, a data dump).
MAX_CONFIG_BYTES = 16 * 2**20
# Deeper than any accelsim file needs; PyYAML's recursive composer would overflow the stack.
MAX_DEPTH = 40
MAX_ALIASES = 100


# Items of numeric lists: relative weights and multipliers (>= 0), and layer widths.
Weight = Annotated[float, Field(ge=0, le=1e6)]
Width = Annotated[int, Field(ge=1, le=1_000_000)]


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, no type coercion, no infinite or
    NaN numbers, immutable. A field's docstring (the string under it) is its description in
    the JSON Schema (:func:`accelsim.schemas.json_schema` reads them; pydantic's own
    ``use_attribute_docstrings`` would parse every class's source at import, 60 ms)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; any failure is an :class:`AccelsimError`."""
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise AccelsimError.single(name, "", "file not found")
    if p.is_dir():
        raise AccelsimError.single(name, "", "is a directory, expected a YAML file")
    if not p.is_file():  # a FIFO or a device would block or never end
        raise AccelsimError.single(name, "", "is not a regular file, expected a YAML file")
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise AccelsimError.single(name, "", f"larger than {MAX_CONFIG_BYTES // 2**20} MiB; "
                                       "expected a YAML config file")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AccelsimError.single(name, "", f"cannot read file ({exc})") from None
    try:
        _check_depth(text, name)
        data = yaml.load(text, Loader=_Loader)
    except RecursionError:
        raise AccelsimError.single(name, "", f"nested deeper than {MAX_DEPTH} levels; "
                                   "expected a YAML config file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = (f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None
                 else "?")
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AccelsimError.single(name, where, f"invalid YAML: {what}") from None
    if data is None:
        raise AccelsimError.single(name, "", "file is empty, expected a YAML mapping")
    if not isinstance(data, dict):
        raise AccelsimError.single(
            name, "", f"expected a YAML mapping at the top level, got {type(data).__name__}"
        )
    return data


def _check_depth(text: str, name: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` before PyYAML's recursive composer sees it."""
    depth = aliases = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            aliases += 1  # each alias can double what validation walks ("billion laughs")
            if aliases > MAX_ALIASES:
                raise AccelsimError.single(name, "", f"more than {MAX_ALIASES} YAML aliases; "
                                           "expected a YAML config file")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
                raise AccelsimError.single(
                    name, where,
                    f"nested deeper than {MAX_DEPTH} levels; expected a YAML config file")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def validate(model: type[M], data: Any, file: str | Path, prefix: str = "") -> M:
    """Validate ``data`` against ``model``; pydantic errors become one line each. Validators
    that parse nested blocks themselves read the file name from the validation context."""
    try:
        return model.model_validate(data, context={"file": str(file)})
    except ValidationError as exc:
        raise AccelsimError(problems_from(exc, model, str(file), prefix, data)) from None


def load(model: type[M], path: str | Path) -> M:
    """Read and validate one YAML file."""
    return validate(model, read_yaml(path), path)


def dotted(loc: tuple[Any, ...], prefix: str = "") -> str:
    parts = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(str(item))
    out = ""
    for part in parts:
        if part.startswith("[") or not out:
            out += part
        else:
            out += "." + part
    return out or "(top level)"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the key at ``loc`` (for 'expected one of')."""
    current: Any = model
    for item in loc[:-1]:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(item))
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _unwrap(tp: Any) -> Any:
    """Strip Optional/Annotated so the owning model of a nested key can be found."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(tp) if a is not type(None)]
        models = [a for a in models if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if len(models) == 1 else tp
    return tp


def _without_tags(loc: tuple[Any, ...], data: Any) -> tuple[tuple[Any, ...], bool]:
    """Drop what a union adds to ``loc``, and say whether it did: the tag of a discriminated
    union (``runs[0].recsys_offline.x``: a key that is not in the input mapping but is one
    of its values, its ``kind``) and pydantic's name of a branch (``constrained-int``: a
    hyphenated name that is no key of the input there)."""
    out: list[Any] = []
    node = data
    dropped = False
    for item in loc:
        if isinstance(item, str) and not (isinstance(node, dict) and item in node) and (
                _BRANCH_NAME.match(item) or (isinstance(node, dict) and item in {
                    v for v in node.values() if isinstance(v, str)})):
            dropped = True
            continue
        out.append(item)
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            node = None
    return tuple(out), dropped


_BRANCH_NAME = re.compile(r"^[a-z]+(-[a-z]+)+$")
# pydantic's words for a failed branch of a union of a number and a block
_MESSAGES = {"Input should be a valid dictionary or object to extract fields from":
             "expected a mapping"}


def problems_from(
    exc: ValidationError, model: type[BaseModel], file: str, prefix: str = "",
    data: Any = None,
) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    branches: dict[str, Problem] = {}  # a field whose union branches all failed: one line
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        # pydantic adds the union branch name ('function-after[...]', 'float') to loc: drop it
        n = len(loc)
        loc = tuple(x for x in loc if not (isinstance(x, str) and ("[" in x or x in _BRANCHES)))
        loc, dropped = _without_tags(loc, data)
        dropped = dropped or len(loc) < n
        kind = err["type"]
        if dropped and isinstance(err.get("input"), dict) and kind.endswith("_type"):
            continue  # a mapping given: the branches that take a number have nothing to say
        msg = _MESSAGES.get(err["msg"], err["msg"])
        if kind == "extra_forbidden":
            owner = _model_at(model, loc)
            if owner is not None:
                allowed = sorted(owner.model_fields)
                close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                msg = f"unknown key{hint}; expected one of: {', '.join(allowed)}"
            else:
                msg = "unknown key"
        elif kind == "missing":
            msg = "required field is missing"
        elif kind == "union_tag_not_found":
            tag = str((err.get("ctx") or {}).get("discriminator", "kind")).strip("'")
            msg = f"required field '{tag}' is missing (it says which kind of block this is)"
        elif kind.startswith("value_error"):
            msg = msg.removeprefix("Value error, ")
        line = dotted(loc, prefix)
        if dropped and kind not in ("missing", "extra_forbidden") and line in branches:
            prev = branches[line]  # another branch of the same union: one line, "or"
            merged = Problem(file, line, prev.message.removesuffix(_got(err)) + " or "
                             + msg[0].lower() + msg[1:] + _got(err))
            problems[problems.index(prev)] = merged
            branches[line] = merged
            continue
        if kind not in ("missing", "extra_forbidden"):
            msg += _got(err)
        key = f"{line}: {msg}"
        if key not in seen:
            seen.add(key)
            problems.append(Problem(file, line, msg))
            if dropped:
                branches[line] = problems[-1]
    return problems


def _got(err: Any) -> str:
    return f" (got {err['input']!r})" if _is_scalar(err.get("input")) else ""


_BRANCHES = {"float", "int", "str", "bool", "list", "dict", "none", "literal"}


def _is_scalar(x: Any) -> bool:
    return isinstance(x, (int, float, str, bool)) and not (isinstance(x, str) and len(x) > 60)

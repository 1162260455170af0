"""``accelsim schema``: a JSON Schema per file kind with every field described and every
number's range, checked with a JSON Schema validator against shipped and broken files."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from accelsim.config import read_yaml
from accelsim.schemas import KINDS, json_schema
from tests.conftest import CONFIGS

# A sweep parameter's values may be any finite number (a shift, a share, a price).
FREE_NUMBERS = {("Param", "values"), ("Param", "low"), ("Param", "high")}


def _properties(schema: dict):
    """(owner title, field, property schema) of the root and every definition."""
    for owner in [schema, *schema.get("$defs", {}).values()]:
        for name, prop in owner.get("properties", {}).items():
            yield owner.get("title", "?"), name, prop


def _numbers(prop: dict):
    for sub in prop.get("anyOf", [prop]):
        if sub.get("type") in ("number", "integer") and "enum" not in sub:
            yield sub
        if sub.get("type") == "array":
            yield from _numbers(sub.get("items", {}))


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_field_has_a_description_and_every_number_a_lower_bound(kind):
    schema = json_schema(kind)
    for owner, name, prop in _properties(schema):
        assert prop.get("description"), f"{kind}: {owner}.{name} has no description"
        if (owner, name) in FREE_NUMBERS:
            continue
        for sub in _numbers(prop):
            assert "minimum" in sub or "exclusiveMinimum" in sub, f"{kind}: {owner}.{name}"


SHIPPED = {"device": "devices/*.yaml", "scenario": "fleet*.yaml", "serve-job": "jobs/serve-*.yaml",
           "train-job": "jobs/*-a100.yaml", "train-model": "models/gpt3-175b.yaml",
           "rec-model": "models/rmc*.yaml", "runs": "runs/*.yaml"}


@pytest.mark.parametrize("kind,pattern", SHIPPED.items())
def test_shipped_configs_validate_against_their_schema(kind, pattern):
    validator = jsonschema.Draft202012Validator(json_schema(kind))
    files = sorted(CONFIGS.glob(pattern))
    assert files
    for f in files:
        errors = list(validator.iter_errors(read_yaml(f)))
        assert not errors, (f, [e.message for e in errors])


BROKEN = [
    ("device", "devices/h20.yaml", ("cost", "price_usd", "value"), -1),
    ("device", "devices/h20.yaml", ("efficiency", "compute", "value"), 1.2),
    ("device", "devices/h20.yaml", ("memory", "memory_GiB", "range"), [0, 96]),
    ("device", "devices/h20.yaml", ("compute", "bf16_tflop"), {}),
    ("train-model", "models/gpt3-175b.yaml", ("layers",), 10**9),
    ("scenario", "fleet.yaml", ("budget", "pools", "domestic", "usd"), -5.5e9),
    ("scenario", "fleet.yaml", ("workloads", "serving", "peak_qps"), 0),
    ("scenario", "fleet.yaml", ("regions", "sea", "pue"), 0.9),
    ("serve-job", "jobs/serve-rmc2-h20.yaml", ("sim", "requests"), 10**12),
]


@pytest.mark.parametrize("kind,file,path,value", BROKEN, ids=[".".join(map(str, b[2]))
                                                              for b in BROKEN])
def test_an_editor_flags_out_of_range_and_unknown_fields(kind, file, path, value):
    data = copy.deepcopy(read_yaml(CONFIGS / file))
    node = data
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    errors = list(jsonschema.Draft202012Validator(json_schema(kind)).iter_errors(data))
    assert errors, path

"""Broken inputs: each gives exactly the problems expected, as 'FILE: field: expectation' lines."""

from __future__ import annotations

import copy

import pytest
import yaml
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.config import load, read_yaml
from accelsim.devices import DeviceProfile
from accelsim.errors import AccelsimError

runner = CliRunner()


def _set(d: dict, dotted: str, value: object) -> dict:
    d = copy.deepcopy(d)
    *path, last = dotted.split(".")
    node = d
    for p in path:
        node = node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return d


_DELETE = object()

BROKEN = [
    # (id, mutation, expected field, expected text)
    ("unknown-key", ("compute.bf16_tflop", {"value": 1, "source": "x", "confidence": "A"}),
     "compute.bf16_tflop", "unknown key (did you mean 'bf16_tflops'?)"),
    ("wrong-type", ("memory.memory_GiB.value", "ninety-six"), "memory.memory_GiB.value",
     "valid number"),
    ("string-number", ("year", "2024"), "year", "valid integer"),
    ("negative-bandwidth", ("memory.memory_bandwidth_GBps.value", -4000),
     "memory.memory_bandwidth_GBps", "expected a number in (0, inf)"),
    ("efficiency-above-one", ("efficiency.compute.value", 1.2), "efficiency.compute",
     "expected a number in (0, 1]"),
    ("zero-price", ("cost.price_usd.value", 0), "cost.price_usd", "expected a number in (0"),
    ("missing-field", ("power.tdp_W", _DELETE), "power.tdp_W", "required field is missing"),
    ("bad-enum", ("kind", "fpga"), "kind", "'gpu', 'npu' or 'asic'"),
    ("bad-confidence", ("compute.fp32_tflops.confidence", "certain"),
     "compute.fp32_tflops.confidence", "Input should be"),
    ("assumption-without-note", ("power.idle_W.note", _DELETE), "power.idle_W",
     "needs a 'note'"),
    ("bad-name", ("name", "H 20!"), "name", "pattern"),
    ("bool-as-string", ("export_controlled", "yes"), "export_controlled", "valid boolean"),
]


@pytest.mark.parametrize("case", BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_device_profiles(case, h20_dict, write_yaml):
    _, (field, value), expect_field, expect_text = case
    path = write_yaml(_set(h20_dict, field, value))
    with pytest.raises(AccelsimError) as e:
        load(DeviceProfile, path)
    lines = str(e.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: {expect_field}: "), lines[0]
    assert expect_text in lines[0]


def test_missing_file(tmp_path):
    with pytest.raises(AccelsimError, match=r"nope\.yaml: file not found"):
        read_yaml(tmp_path / "nope.yaml")


def test_empty_file(write_yaml):
    with pytest.raises(AccelsimError, match="file is empty"):
        read_yaml(write_yaml(""))


def test_yaml_syntax_error(write_yaml):
    path = write_yaml("name: [unclosed\nvendor: x\n")
    with pytest.raises(AccelsimError) as e:
        read_yaml(path)
    assert str(e.value).startswith(f"{path}: line ")
    assert "invalid YAML" in str(e.value)


def test_top_level_list(write_yaml):
    with pytest.raises(AccelsimError, match="expected a YAML mapping at the top level, got list"):
        read_yaml(write_yaml("- a\n- b\n"))


def test_several_problems_give_several_lines(h20_dict, write_yaml):
    d = _set(h20_dict, "memory.memory_GiB.value", -1)
    d = _set(d, "efficiency.memory.value", 2)
    with pytest.raises(AccelsimError) as e:
        load(DeviceProfile, write_yaml(d))
    assert len(str(e.value).splitlines()) == 2


@pytest.mark.parametrize("case", BROKEN[:4], ids=[c[0] for c in BROKEN[:4]])
def test_cli_validate_exits_2_with_one_line_and_no_traceback(case, h20_dict, write_yaml):
    _, (field, value), expect_field, _ = case
    path = write_yaml(_set(h20_dict, field, value))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr.strip().count("\n") == 0
    assert f"{path}: {expect_field}:" in result.stderr


def test_cli_unknown_device_suggests():
    result = runner.invoke(app, ["devices", "show", "h2O"])
    assert result.exit_code == 2
    assert "did you mean 'h20'" in result.stderr


def test_cli_validate_unknown_kind_of_file(write_yaml):
    result = runner.invoke(app, ["validate", str(write_yaml({"hello": 1}))])
    assert result.exit_code == 2
    assert "cannot tell what kind" in result.stderr


def test_safe_loader_refuses_python_objects(write_yaml):
    path = write_yaml("name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(AccelsimError, match="invalid YAML"):
        read_yaml(path)


def test_roundtrip_of_shipped_profile(h20_dict, write_yaml):
    assert load(DeviceProfile, write_yaml(yaml.safe_load(yaml.safe_dump(h20_dict)))).name == "h20"


# ------------------------------------------------------------------ classes of bad files

def _problem(path) -> str:
    with pytest.raises(AccelsimError) as e:
        read_yaml(path)
    assert len(e.value.problems) == 1
    return str(e.value.problems[0])


def test_duplicate_yaml_keys_are_an_error_not_last_wins(write_yaml):
    p = write_yaml("name: a\nyear: 2025\nname: b\n")
    assert "line 3, column 1: invalid YAML: duplicate key 'name' (first at line 1)" in _problem(p)


def test_nested_duplicate_keys_too(write_yaml):
    p = write_yaml("supply:\n  h20: {max_units: 1}\n  h20: {max_units: 2}\n")
    assert "duplicate key 'h20'" in _problem(p)


def test_merge_keys_share_a_block_and_local_keys_win(write_yaml):
    """``<<: *anchor`` (run files share a dataset's histogram this way); a key given beside
    the merge overrides the merged one, as YAML specifies."""
    p = write_yaml("base: &b {x: 1, y: 2}\nrun:\n  <<: *b\n  y: 3\n")
    assert read_yaml(p)["run"] == {"x": 1, "y": 3}


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_files_that_are_not_regular_files_are_refused_without_blocking(tmp_path, kind):
    import os

    if kind == "fifo":
        path = tmp_path / "pipe.yaml"
        os.mkfifo(path)  # opening it for reading would block forever
        want = "is not a regular file"
    elif kind == "device":
        path = "/dev/zero"  # reading it would never end
        want = "is not a regular file"
    else:
        path = tmp_path
        want = "is a directory"
    assert want in _problem(path)
    r = runner.invoke(app, ["validate", str(path)])
    assert r.exit_code == 2 and want in r.stderr


def test_huge_file_is_refused_before_it_is_parsed(tmp_path):
    from accelsim.config import MAX_CONFIG_BYTES

    p = tmp_path / "big.yaml"
    with p.open("wb") as fh:
        fh.truncate(MAX_CONFIG_BYTES + 1)  # sparse: no disk used
    assert "larger than 16 MiB" in _problem(p)


@pytest.mark.parametrize("text", ["a: " + "[" * 5000 + "]" * 5000,
                                  "a: " + "{b: " * 60 + "1" + "}" * 60])
def test_deep_nesting_is_one_line_not_a_recursion_error(write_yaml, text):
    msg = _problem(write_yaml(text))
    assert "nested deeper than" in msg or "nesting depth" in msg


def test_alias_bombs_are_refused(write_yaml):
    lines = ["a0: &a0 [x, x]"] + [f"a{i}: &a{i} [*a{i-1}, *a{i-1}]" for i in range(1, 60)]
    assert "YAML aliases" in _problem(write_yaml("\n".join(lines)))


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_infinite_or_nan_numbers_are_refused_everywhere(h20_dict, write_yaml, value):
    d = _set(h20_dict, "cost.price_usd.value", value)
    with pytest.raises(AccelsimError) as e:
        load(DeviceProfile, write_yaml(d))
    assert "cost.price_usd" in str(e.value)

from __future__ import annotations

import json

from typer.testing import CliRunner

from accelsim import __version__
from accelsim.cli import app
from accelsim.devices import catalog_names

runner = CliRunner()


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.stdout


def test_devices_list_table():
    r = runner.invoke(app, ["devices", "list"])
    assert r.exit_code == 0
    for name in ("h20", "ascend-910b", "inhouse-asic"):
        assert name in r.stdout


def test_devices_list_json_has_full_profiles_with_sources():
    r = runner.invoke(app, ["devices", "list", "--json"])
    assert r.exit_code == 0
    profiles = json.loads(r.stdout)
    assert {p["name"] for p in profiles} == set(catalog_names())
    for p in profiles:
        assert p["sources"] or p["identity"]["source"]
        assert p["compute"]["bf16_tflops"]["source"]


def test_devices_show_lists_every_field_with_source():
    r = runner.invoke(app, ["devices", "show", "h20"])
    assert r.exit_code == 0
    assert "memory.memory_bandwidth_GBps" in r.stdout
    assert "seed-004" in r.stdout


def test_validate_shipped_configs():
    from tests.conftest import CONFIGS

    for path in sorted(CONFIGS.rglob("*.yaml")):
        r = runner.invoke(app, ["validate", str(path)])
        assert r.exit_code == 0, (path, r.stderr)


def test_schema_is_json_schema():
    r = runner.invoke(app, ["schema", "device"])
    assert r.exit_code == 0
    s = json.loads(r.stdout)
    assert "compute" in s["properties"]


def test_schema_unknown_kind():
    r = runner.invoke(app, ["schema", "toaster"])
    assert r.exit_code == 2
    assert "unknown kind 'toaster'" in r.stderr

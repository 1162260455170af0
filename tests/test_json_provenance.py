"""Every fleet command's JSON says what it was computed from: the accelsim version, the
scenario's and its inputs' SHA-256, the --anchor what-ifs and the date."""

import datetime
import hashlib
import json

import pytest
from typer.testing import CliRunner

from accelsim import __version__
from accelsim.cli import app
from accelsim.fleet import load_scenario
from tests.conftest import CONFIGS

runner = CliRunner()
FLEET = CONFIGS / "fleet.yaml"


@pytest.mark.parametrize("args", [
    ["compare"], ["optimize", "--year", "2026"], ["plan"], ["uncertainty", "--samples", "2"]])
def test_json_carries_version_input_hashes_and_date(args):
    r = runner.invoke(app, [args[0], str(FLEET), *args[1:], "--json"])
    assert r.exit_code == 0, r.output
    p = json.loads(r.stdout)["provenance"]
    assert p["accelsim_version"] == __version__
    assert p["scenario_sha256"] == hashlib.sha256(FLEET.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for f in [FLEET, *load_scenario(FLEET).input_files()]:
        h.update(hashlib.sha256(f.read_bytes()).hexdigest().encode() + b"\n")
    assert p["inputs_sha256"] == h.hexdigest() and p["anchors"] == []
    when = datetime.datetime.fromisoformat(p["date"])
    assert when.tzinfo is not None
    assert abs((datetime.datetime.now(datetime.UTC) - when).total_seconds()) < 3600


def test_an_edited_input_changes_the_hash(tmp_path):
    text = FLEET.read_text().replace("power_cap_mw: 800", "power_cap_mw: 801")
    p = tmp_path / "fleet.yaml"
    p.write_text(text)
    a = json.loads(runner.invoke(app, ["compare", str(FLEET), "--json"]).stdout)
    b = json.loads(runner.invoke(app, ["compare", str(p), "--json"]).stdout)
    assert a["provenance"]["scenario_sha256"] != b["provenance"]["scenario_sha256"]
    assert a["provenance"]["inputs_sha256"] != b["provenance"]["inputs_sha256"]

"""Every shipped example runs: each job in configs/jobs through its command, every kind's
JSON Schema, and every sweep file in benchmarks/studies validates."""

import json

import pytest
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.config import read_yaml
from accelsim.schemas import KINDS, detect
from tests.conftest import CONFIGS, ROOT

runner = CliRunner()
JOBS = sorted((CONFIGS / "jobs").glob("*.yaml"))


@pytest.mark.parametrize("job", JOBS, ids=[j.stem for j in JOBS])
def test_example_job_runs(job):
    command = detect(read_yaml(job), str(job)).command  # the registry says how it runs
    assert command is not None
    r = runner.invoke(app, [*command.split(), str(job), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out.get("fits_memory", True) and out.get("stable", True)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_has_a_json_schema(kind):
    r = runner.invoke(app, ["schema", kind])
    assert r.exit_code == 0, r.output
    assert "properties" in json.loads(r.stdout)


@pytest.mark.parametrize("sweep", sorted((ROOT / "benchmarks" / "studies").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_study_sweeps_validate(sweep):
    r = runner.invoke(app, ["validate", str(sweep)])
    assert r.exit_code == 0, r.stderr
    assert "valid sweep" in r.stdout

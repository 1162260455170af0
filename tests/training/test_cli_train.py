import json

import pytest
from typer.testing import CliRunner

from accelsim.cli import app
from tests.conftest import CONFIGS

runner = CliRunner()
JOB = str(CONFIGS / "jobs" / "gpt3-175b-a100.yaml")
KEYS = {"step_time_s", "tokens_per_s", "model_tflops_per_device", "mfu", "hfu",
        "memory_per_device_gib", "fits_memory", "breakdown"}


def test_train_json_has_the_documented_keys():
    r = runner.invoke(app, ["train", JOB, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert KEYS <= set(out)
    assert {"compute_s", "tp_comm_s", "dp_comm_s", "pipeline_bubble_s", "optimizer_s"} <= set(
        out["breakdown"])
    assert 0.3 < out["mfu"] < 0.7


def test_train_des_engine():
    r = runner.invoke(app, ["train", JOB, "--json", "--engine", "des"])
    assert r.exit_code == 0
    a = json.loads(runner.invoke(app, ["train", JOB, "--json"]).stdout)
    d = json.loads(r.stdout)
    assert abs(d["step_time_s"] / a["step_time_s"] - 1) < 0.01


def test_train_bad_engine():
    r = runner.invoke(app, ["train", JOB, "--engine", "magic"])
    assert r.exit_code == 2 and "engine" in r.stderr


def test_train_search_json():
    r = runner.invoke(app, ["train-search", str(CONFIGS / "models" / "llama2-70b.yaml"),
                            "--device", "h20", "--devices", "64", "--global-batch", "128",
                            "--json", "--top", "3"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert len(out["top"]) == 3 and out["best"]["fits_memory"]
    assert out["top"][0]["tokens_per_s"] >= out["top"][1]["tokens_per_s"]


@pytest.mark.parametrize("as_json", [False, True])
def test_train_search_nothing_fits_prints_the_closest_layouts_and_exits_3(as_json):
    r = runner.invoke(app, ["train-search", str(CONFIGS / "models" / "gpt3-175b.yaml"),
                            "--device", "a100-80gb-sxm", "--devices", "8",
                            "--global-batch", "16", "--top", "2"] + (["--json"] if as_json else []))
    assert r.exit_code == 3
    assert "no layout on 8 x a100-80gb-sxm fits" in r.stderr and "GiB available" in r.stderr
    if as_json:
        out = json.loads(r.stdout)
        assert out["best"] is None and out["feasible"] == 0 and len(out["top"]) == 2
        assert out["top"][0]["memory_per_device_gib"] <= out["top"][1]["memory_per_device_gib"]
    else:
        assert "none of" in r.stdout


def test_train_model_that_does_not_fit_prints_result_and_exits_3(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text(open(JOB).read().replace("tp: 8, pp: 8, dp: 8", "tp: 1, pp: 1, dp: 512")
                 .replace("zero: 1", "zero: 0").replace("virtual_stages: 3", "virtual_stages: 1"))
    r = runner.invoke(app, ["train", str(p), "--json"])
    assert r.exit_code == 3
    out = json.loads(r.stdout)
    assert out["fits_memory"] is False and out["memory_per_device_gib"] > 80
    assert f"{p}: parallelism: needs" in r.stderr and r.stderr.count("\n") == 1

import pytest
import yaml
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.errors import AccelsimError
from accelsim.training import load_job
from tests.conftest import CONFIGS

runner = CliRunner()
BASE = yaml.safe_load((CONFIGS / "jobs" / "gpt3-175b-a100.yaml").read_text())


def _job(tmp_path, **changes):
    d = yaml.safe_load(yaml.safe_dump(BASE))
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            d[section][field] = value
        else:
            d[section] = value
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


@pytest.mark.parametrize("changes,field,text", [
    ({"parallelism__tp": 5}, "parallelism.tp", "must divide heads (96)"),
    ({"parallelism__pp": 5}, "parallelism.pp", "must divide layers (96)"),
    ({"global_batch": 1001}, "global_batch", "divisible by dp*micro_batch"),
    ({"global_batch": 1000}, "global_batch", "divisible by pp (8)"),
    ({"devices": 100}, "(top level)", "must equal tp*pp*dp*cp"),
    ({"parallelism__ep": 2}, "parallelism.ep", "needs a MoE model"),
    ({"precision": "fp8"}, "precision", "does not support fp8"),
    ({"device": "a100"}, "device", "did you mean"),
    ({"parallelism__recompute": "some"}, "parallelism.recompute", "'none', 'selective'"),
])
def test_invalid_layouts_name_the_field(tmp_path, changes, field, text):
    path = _job(tmp_path, **changes)
    with pytest.raises(AccelsimError) as e:
        load_job(path)
    assert field in str(e.value) and text in str(e.value), str(e.value)
    r = runner.invoke(app, ["train", str(path)])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_device_path_relative_to_job(tmp_path):
    dev = yaml.safe_load((CONFIGS / "devices" / "h20.yaml").read_text())
    dev["name"] = "my-h20"
    (tmp_path / "my-h20.yaml").write_text(yaml.safe_dump(dev))
    path = _job(tmp_path, device="./my-h20.yaml")
    assert load_job(path).device.endswith("my-h20.yaml")

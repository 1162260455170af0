"""A fleet chatbot names a serving stack per device (``stacks:`` of the llm_serving block,
as the training block's): the figures move with the stack, a block without it is today's,
and a bad stack is one error naming the scenario file and field (compare, validate)."""

import pytest
import yaml
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.devices import load_device
from accelsim.fleet import load_scenario
from accelsim.fleet.evaluation import evaluate_full
from accelsim.workloads.llm_spec import replica_job, replica_sizes
from tests.conftest import CONFIGS
from tests.fleet import h20_and_910c_seed

runner = CliRunner()


def _scenario(tmp_path, stacks=None, name="s.yaml"):
    """The seed cut to H20 and 910C, its chatbot alone on the dense Llama 3 8B (short
    simulation), with ``stacks`` set when given."""
    extra = {"model": "llama3-8b", "dp": 1, "weight_formats": None}
    if stacks is not None:
        extra["stacks"] = stacks
    data = h20_and_910c_seed(**extra)
    data["workloads"] = {"chatbot": data["workloads"]["chatbot"]}
    data["fleets"] = [{"name": "mixed", "spend_usd": {"ascend-910c": 5.0e9, "h20": 6.0e9}}]
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _chatbot(path):
    return {ref: ev.throughput for ref, ev in
            evaluate_full(load_scenario(path), routed=False)[1]["chatbot"].items()}


def test_vllm_on_h20_serves_less_than_the_default_tensorrt_llm(tmp_path, monkeypatch):
    """vLLM's V1 engine pays its host time per sequence in every iteration and samples the
    gathered logits (configs/stacks/vllm.yaml), TensorRT-LLM overlaps the host with the GPU:
    on H20 vLLM's replica is slower and serves fewer requests/s at the SLO. Naming the
    default (tensorrt-llm) is the default's figure; the 910C, not named, keeps its own."""
    monkeypatch.setenv("ACCELSIM_CACHE_DIR", str(tmp_path / "cache"))
    base = _chatbot(_scenario(tmp_path))
    named = _chatbot(_scenario(tmp_path, {"h20": "tensorrt-llm"}, "t.yaml"))
    vllm = _chatbot(_scenario(tmp_path, {"h20": "vllm"}, "v.yaml"))
    assert named == base
    assert vllm["ascend-910c"] == base["ascend-910c"]
    assert 0 < vllm["h20"] < base["h20"]
    # the mechanism: the same replica's decode step is longer on vLLM
    sc = load_scenario(_scenario(tmp_path, {"h20": "vllm"}, "v.yaml"))
    spec, dev = sc.workloads["chatbot"], load_device("h20")
    assert replica_job(spec, "h20", 1).replicas[0].stack == "vllm"
    plain = spec.model_copy(update={"stacks": {}})
    assert replica_job(plain, "h20", 1).replicas[0].stack is None
    v = dict(replica_sizes(spec, dev, "s.yaml"))[2]
    t = dict(replica_sizes(plain, dev, "s.yaml"))[2]
    assert v.decode_step_s(64, 1500.0) > t.decode_step_s(64, 1500.0)


@pytest.mark.parametrize(("stacks", "message"), [
    ({"h20": "mindie"}, "workloads.chatbot.stacks.h20: stack 'mindie' runs on Huawei, not on "
                        "NVIDIA (h20); expected a serving stack that lists NVIDIA"),
    ({"ascend-910c": "tensorrt-llm"}, "workloads.chatbot.stacks.ascend-910c: stack "
     "'tensorrt-llm' runs on NVIDIA, not on Huawei (ascend-910c); expected a serving stack "
     "that lists Huawei"),
    ({"h20": "megatron-core"}, "workloads.chatbot.stacks.h20: 'megatron-core' is a training "
     "stack; expected a serving stack (configs/stacks with role: serving)"),
    ({"h20": "no-such-stack"}, "workloads.chatbot.stacks.h20: unknown stack 'no-such-stack'"),
    ({"b200": "vllm"}, "workloads.chatbot.stacks.b200: 'b200' is no device of the budget "
                       "pools; expected one of: ascend-910c, h20"),
])
@pytest.mark.parametrize("command", ["validate", "compare"])
def test_a_bad_stack_is_one_error_naming_the_file_and_field(tmp_path, stacks, message,
                                                              command):
    path = _scenario(tmp_path, stacks)
    r = runner.invoke(app, [command, str(path)])
    assert r.exit_code == 2
    assert r.exception is None or isinstance(r.exception, SystemExit)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"{path}: {message}")


def test_the_example_scenario_names_the_default_stacks():
    """configs/fleet-stacks.yaml names each device's vendor default: its chatbot is the
    block without ``stacks`` (the jobs its replicas run differ only in the stack named)."""
    sc = load_scenario(CONFIGS / "fleet-stacks.yaml")
    spec = sc.workloads["chatbot"]
    assert spec.stacks == {"h20": "tensorrt-llm", "ascend-910c": "mindie"}
    for dev in ("h20", "ascend-910c"):
        named = replica_job(spec, dev, 1).replicas[0]
        plain = replica_job(spec.model_copy(update={"stacks": {}}), dev, 1).replicas[0]
        assert named.model_copy(update={"stack": None}) == plain


@pytest.mark.parametrize(("stacks", "message"), [
    ({"h20": "mindspeed"}, "workloads.training.stacks.h20: stack 'mindspeed' runs on Huawei, "
                           "not on NVIDIA (h20); expected a training stack that lists NVIDIA"),
    ({"b200": "megatron-core"}, "workloads.training.stacks.b200: 'b200' is no device of the "
                                "budget pools; expected one of: ascend-910c, h20"),
    # the role check's one wording (stacks.role_mismatch), as the chatbot block's
    ({"h20": "vllm"}, "workloads.training.stacks.h20: 'vllm' is a serving stack; expected a "
                      "training stack (configs/stacks with role: training)"),
])
def test_the_training_blocks_stacks_are_checked_the_same_way(tmp_path, stacks, message):
    """The training block's ``stacks`` (device -> training stack) get the chatbot's checks:
    a pool device, a stack that lists its vendor; one line from ``validate``."""
    data = h20_and_910c_seed()
    data["fleets"] = [{"name": "mixed", "spend_usd": {"ascend-910c": 5.0e9, "h20": 6.0e9}}]
    data["workloads"]["training"]["stacks"] = stacks
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    r = runner.invoke(app, ["validate", str(path)])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"{path}: {message}")
    ok = {"h20": "megatron-core", "ascend-910c": "mindspeed"}
    data["workloads"]["training"]["stacks"] = ok
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0

"""Each device is served in the first weight format of the block's list its peaks support."""

from accelsim.fleet.scenario import load_scenario
from accelsim.workloads.llm_spec import device_weights, replica_job


def chatbot(**kw):
    s = load_scenario("configs/fleet.yaml").workloads["chatbot"]
    return s.model_copy(update=kw)


def test_fp8_where_supported_else_int8():
    s = chatbot()
    assert s.weight_formats == ["fp8", "int8", "bf16"]  # the seed's
    assert device_weights(s, "h20") == "fp8"          # Hopper: TensorRT-LLM / SGLang FP8
    assert device_weights(s, "ascend-910c") == "int8"  # no FP8 until Ascend 950: W8A8
    assert replica_job(s, "ascend-910c", 8).replicas[0].weights == "int8"


def test_default_is_the_engines_format():
    s = chatbot(weight_formats=None)
    assert device_weights(s, "h20") == s.engine.weights == "bf16"

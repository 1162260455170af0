"""The registry of file kinds: every kind is told apart by a required key no other kind has
(so detection does not depend on order), loads its shipped examples, and every kind a sweep
can vary is swept through the one generic path, the LLM serving job included."""

import pandas as pd
import pytest
import yaml

from accelsim.config import read_yaml
from accelsim.errors import AccelsimError
from accelsim.schemas import KINDS, detect
from accelsim.sweep import run_sweep
from tests.conftest import CONFIGS


def test_markers_are_unique_and_required_by_their_schema():
    markers = [k.marker for k in KINDS.values()]
    assert len(set(markers)) == len(markers)
    for k in KINDS.values():
        field = k.cls().model_fields[k.marker]
        assert field.is_required(), f"{k.name}: marker '{k.marker}' has a default"


def test_a_file_with_two_markers_is_ambiguous_not_first_come():
    with pytest.raises(AccelsimError, match="several kinds"):
        detect({"compute": {}, "budget": {}}, "x.yaml")


@pytest.mark.parametrize("path,kind", [
    (CONFIGS / "fleet.yaml", "scenario"),
    (CONFIGS / "devices" / "h20.yaml", "device"),
    (CONFIGS / "models" / "llama2-70b.yaml", "train-model"),
    (CONFIGS / "models" / "rmc2.yaml", "rec-model"),
    (CONFIGS / "jobs" / "gpt3-175b-a100.yaml", "train-job"),
    (CONFIGS / "jobs" / "serve-rmc2-h20.yaml", "serve-job"),
    (CONFIGS / "jobs" / "chatbot-llama2-70b-h100.yaml", "llm-job"),
    (CONFIGS / "runs" / "trtllm-h100-fp8.yaml", "runs"),
])
def test_detect_and_load_the_shipped_examples(path, kind):
    k = detect(read_yaml(path), str(path))
    assert k.name == kind
    assert k.load(path) is not None


def test_an_llm_job_sweeps_through_the_generic_path(tmp_path):
    """The chatbot job varied in its rate: more requests/s, longer first-token waits; the
    capacity metric is searched only because a metric asks for it."""
    base = read_yaml(CONFIGS / "jobs" / "chatbot-llama2-70b-h100.yaml")
    base["sim"] = {"requests": 300, "warmup": 30, "seed": 1, "replications": 1}
    base["replicas"][0]["device"] = str(CONFIGS / "devices" / "h100-sxm.yaml")
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump(base))
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "llm", "base": str(job),
        "parameters": {"arrivals.rate_qps": {"values": [2.0, 12.0]}},
        "metrics": ["ttft_p99_ms", "output_tokens_per_s", "max_rps_at_slo"]}))
    run = run_sweep(sweep, tmp_path / "out", workers=1)
    df = pd.read_parquet(tmp_path / "out").sort_values("arrivals.rate_qps")
    assert run.computed == 2
    assert df["output_tokens_per_s"].iloc[1] > df["output_tokens_per_s"].iloc[0]
    assert df["ttft_p99_ms"].iloc[1] >= df["ttft_p99_ms"].iloc[0]
    assert (df["max_rps_at_slo"] > 0).all()

"""The Python API's replica model (:func:`accelsim.llm.replica_model`) checks a replica's
engine settings against its model with the one check a job file, the fleet's chatbot block
and the published runs use (:func:`accelsim.llm.checks.engine_problems`), not a copy of its
own (review42: perf.py held older MTP, tp-divides-heads and pp checks that reported the
first problem only and none of the dense-model ones)."""

from __future__ import annotations

import pytest

from accelsim.errors import AccelsimError
from accelsim.llm import replica_model
from accelsim.llm.checks import engine_problems
from accelsim.llm.job import Replica
from accelsim.transformer.model import load_model


@pytest.mark.parametrize("bad", [
    dict(tp=3, mtp_tokens=1),  # two problems: both reported, as a job file reports them
    dict(tp=2, dp=2),  # attention data parallelism on a dense model
    dict(tp=2, overlap_ep_comm=True),  # no experts to overlap
    dict(tp=2, pp=3),  # 80 layers do not split in 3
])
def test_the_api_reports_what_a_job_file_does(bad: dict[str, object]) -> None:
    r = Replica(device="h100-sxm", model="llama2-70b", weights="fp8", **bad)
    want = engine_problems(r, load_model("llama2-70b"), "api", "replicas[0]", r.tp, r.dp,
                           r.pp, r.role)
    assert want
    with pytest.raises(AccelsimError) as e:
        replica_model(r, "api")
    assert e.value.problems == want
    for p in e.value.problems:
        assert "\n" not in p.message and p.field.startswith("replicas[0].")

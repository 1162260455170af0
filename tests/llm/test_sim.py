import json

import numpy as np
import pytest
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.llm.job import LLMJob
from accelsim.llm.sim import capacity, route, simulate
from tests.conftest import CONFIGS

runner = CliRunner()
JOB = CONFIGS / "jobs" / "chatbot-llama2-70b-h100.yaml"


def _job(**kw) -> LLMJob:
    base = {
        "replicas": [{"device": "h100-sxm", "model": "llama2-70b", "tp": 4, "count": 2}],
        "arrivals": {"rate_qps": 6.0},
        "prompt_tokens": {"dist": "lognormal", "mean": 800, "cv": 1.0, "max": 6000},
        "output_tokens": {"dist": "lognormal", "mean": 150, "cv": 1.0, "max": 1500},
        "slo": {"ttft_ms": 2000, "tpot_ms": 100},
        "sim": {"requests": 1500, "warmup": 150, "seed": 4, "replications": 2},
    }
    base.update(kw)
    return LLMJob.model_validate(base)


def test_same_seed_same_result_and_engines_agree():
    a, b = simulate(_job()), simulate(_job())
    assert a.metrics == b.metrics
    c = simulate(_job(), engine="simpy")
    for k in ("ttft_p99_ms", "tpot_p99_ms", "e2e_mean_ms", "output_tokens_per_s"):
        assert c.metrics[k] == pytest.approx(a.metrics[k], rel=1e-9)


def test_routing_spreads_requests_by_weight_evenly():
    w = route(10_000, [1.0, 3.0])
    assert (w == 1).sum() == 7500
    # smooth: every window of 4 requests holds exactly one for the weight-1 replica
    assert all((w[i:i + 4] == 0).sum() == 1 for i in range(0, 10_000, 4))


def test_capacity_meets_the_slo_and_grows_with_a_looser_slo():
    job = _job()
    c = capacity(job)
    assert c["ci95_low_rps"] <= c["max_rps_at_slo"] <= c["ci95_high_rps"]
    # replication 0 draws with the job's own seed: at its rate the run meets the target,
    # 5 % above it does not
    rate = c["per_replication_rps"][0]
    at = simulate(job.model_copy(update={"arrivals": job.arrivals.model_copy(
        update={"rate_qps": rate})}))
    assert at.metrics["goodput_fraction"] >= 0.99 and at.metrics["meets_slo"]
    above = simulate(job.model_copy(update={"arrivals": job.arrivals.model_copy(
        update={"rate_qps": rate * 1.05})}))
    assert not above.metrics["meets_slo"]
    loose = capacity(job.model_copy(update={"slo": job.slo.model_copy(
        update={"ttft_ms": 20_000, "tpot_ms": 400})}))
    assert loose["max_rps_at_slo"] > c["max_rps_at_slo"]


def test_goodput_counts_requests_meeting_both_targets():
    r = simulate(_job(slo={"ttft_ms": 1e-3, "tpot_ms": 1000}))
    assert r.metrics["goodput_fraction"] == 0.0 and not r.metrics["meets_slo"]


def test_cli_runs_the_example_job_and_reports_cost():
    res = runner.invoke(app, ["serve-llm", str(JOB), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["usd_per_million_output_tokens"] > 0
    assert np.isfinite(out["ttft_p99_ms"]) and out["replica_kinds"][0]["kv_tokens"] > 0


@pytest.mark.parametrize("edit,field", [
    ({"replicas": [{"device": "h100-sxm", "model": "llama3-405b", "tp": 1}]}, "replicas[0].tp"),
    ({"replicas": [{"device": "no-such-gpu", "model": "llama2-70b"}]}, "replicas[0].device"),
    ({"prompt_tokens": {"dist": "fixed", "value": 900000}}, "prompt_tokens"),
])
def test_cli_bad_input_is_one_line_naming_the_field(tmp_path, edit, field):
    import yaml

    data = yaml.safe_load(JOB.read_text())
    data.update(edit)
    f = tmp_path / "job.yaml"
    f.write_text(yaml.safe_dump(data))
    res = runner.invoke(app, ["serve-llm", str(f)])
    assert res.exit_code != 0
    assert field in res.output and "Traceback" not in res.output


def test_capacity_without_an_slo_is_an_error(tmp_path):
    import yaml

    data = yaml.safe_load(JOB.read_text())
    del data["slo"]
    f = tmp_path / "job.yaml"
    f.write_text(yaml.safe_dump(data))
    res = runner.invoke(app, ["serve-llm", str(f), "--capacity"])
    assert res.exit_code != 0 and "slo" in res.output

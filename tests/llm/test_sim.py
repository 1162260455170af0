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


def test_disaggregated_lone_request_by_hand():
    """Prefill on an H800 replica, KV shipped over the scale-out network, decode on an H20
    replica: TTFT is the prefill alone, completion adds the transfer and the decode steps."""
    from accelsim.llm.sim import kv_transfer_s, models

    P, n_out = 2000, 4
    job = _job(replicas=[{"device": "h800", "model": "llama2-70b", "tp": 4, "role": "prefill"},
                         {"device": "h20", "model": "llama2-70b", "tp": 4, "role": "decode"}],
               arrivals={"rate_qps": 0.001}, prompt_tokens={"dist": "fixed", "value": P},
               output_tokens={"dist": "fixed", "value": n_out},
               sim={"requests": 10, "warmup": 0, "seed": 1})
    pre, dec = models(job)
    r = simulate(job)
    ship = float(kv_transfer_s(job, pre, dec, np.array([P]))[0])
    # KV bytes: 2 x 8 heads x 128 x 80 layers x 2 B per token, over 4 x 50 GB/s x eff
    assert ship == pytest.approx(P * 2 * 8 * 128 * 80 * 2 / (4 * 50e9 * pre.spec.eff_comm)
                                 + pre.spec.scaleout_latency_s, rel=1e-12)
    assert r.metrics["ttft_mean_ms"] == pytest.approx(pre.prefill_s(P) * 1e3, rel=1e-9)
    decode = sum(dec.decode_step_s(1, P + i) for i in range(n_out - 1))
    assert r.metrics["e2e_mean_ms"] == pytest.approx((pre.prefill_s(P) + ship + decode) * 1e3,
                                                     rel=1e-9)
    assert simulate(job, engine="simpy").metrics == pytest.approx(r.metrics, rel=1e-9)


def test_roles_must_split_cleanly():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="prefill"):
        _job(replicas=[{"device": "h800", "model": "llama2-70b", "tp": 4, "role": "prefill"},
                       {"device": "h20", "model": "llama2-70b", "tp": 4}])

import json

from typer.testing import CliRunner

from accelsim.cli import app
from tests.conftest import CONFIGS

runner = CliRunner()
KEYS = {"mean_latency_ms", "mean_wait_ms", "p50_ms", "p95_ms", "p99_ms", "throughput_qps",
        "utilization", "stable"}


def test_serve_json_and_capacity():
    r = runner.invoke(app, ["serve", str(CONFIGS / "jobs" / "serve-mm1.yaml"), "--json",
                            "--capacity"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert KEYS <= set(out) and "max_qps_at_slo" in out
    assert out["ci95_low_qps"] <= out["max_qps_at_slo"] <= out["ci95_high_qps"]


def test_serve_device_model_job_reports_breakdown(tmp_path):
    trace = tmp_path / "t.csv"
    r = runner.invoke(app, ["serve", str(CONFIGS / "jobs" / "serve-rmc2-h20.yaml"), "--json",
                            "--trace-out", str(trace)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert "embedding_s" in out["service_breakdown_at_max_batch"]["h20"]
    assert trace.read_text().startswith("arrival_s,items,start_s,finish_s")


def test_serve_unstable_says_so(tmp_path):
    p = tmp_path / "j.yaml"
    p.write_text((CONFIGS / "jobs" / "serve-mm1.yaml").read_text().replace("800", "1500"))
    r = runner.invoke(app, ["serve", str(p), "--json"])
    assert r.exit_code == 3  # a valid input with an infeasible result
    out = json.loads(r.stdout)  # the result is still printed in full
    assert out["stable"] is False and 950 < out["capacity_qps"] < 1050
    assert f"{p}: arrivals.rate_qps: offered" in r.stderr and "Traceback" not in r.output
    assert r.stderr.count("\n") == 1


def test_serve_bad_inputs_one_line(tmp_path):
    cases = {
        "rate_qps: 800": ("rate_qps: -5", "arrivals.rate_qps"),
        "mean_ms: 1.0": ("mean_ms: 0", "service.synthetic.mean_ms"),
        "routing: shared_queue": ("routing: random", "routing"),
    }
    base = (CONFIGS / "jobs" / "serve-mm1.yaml").read_text()
    for old, (new, field) in cases.items():
        p = tmp_path / "j.yaml"
        p.write_text(base.replace(old, new))
        r = runner.invoke(app, ["serve", str(p)])
        assert r.exit_code == 2, (new, r.output)
        assert f"{p}: {field}" in r.stderr, r.stderr
        assert "Traceback" not in r.output


def test_serve_unknown_model_suggests(tmp_path):
    p = tmp_path / "j.yaml"
    p.write_text((CONFIGS / "jobs" / "serve-rmc2-h20.yaml").read_text().replace("rmc2", "rmc9"))
    r = runner.invoke(app, ["serve", str(p)])
    assert r.exit_code == 2 and "unknown recommendation model 'rmc9'" in r.stderr


def test_serve_trace_relative_to_the_job_file(tmp_path):
    (tmp_path / "arrivals.csv").write_text(
        "arrival_s,items\n" + "".join(f"{i * 0.002:.4f},1\n" for i in range(500)))
    job = tmp_path / "job.yaml"
    job.write_text("arrivals: {trace: arrivals.csv}\n"
                   "service: {synthetic: {dist: fixed, value_ms: 1.0}}\n"
                   "sim: {requests: 1000, warmup: 10, seed: 1}\n")
    r = runner.invoke(app, ["serve", str(job), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    # deterministic arrivals every 2 ms, 1 ms service: nobody waits
    assert out["mean_wait_ms"] == 0 and abs(out["p99_ms"] - 1.0) < 1e-9


def test_every_request_dropped_is_not_stable_and_has_no_latency(tmp_path):
    p = tmp_path / "j.yaml"
    p.write_text((CONFIGS / "jobs" / "serve-rmc2-h20.yaml").read_text().replace(
        "requests: 100000, warmup: 5000", "requests: 5000, warmup: 500")
        + "deadline_ms: 0.001\n")
    r = runner.invoke(app, ["serve", str(p), "--json"])
    assert r.exit_code == 3 and "Traceback" not in r.output
    out = json.loads(r.stdout, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert out["stable"] is False and out["completed"] == 0 and out["p99_ms"] is None
    assert "no request completed" in out["null_reasons"]["p99_ms"]
    assert r.stderr.strip() == (f"{p}: deadline_ms: {out['message']}; expected a longer "
                                "deadline, a lower rate or more replicas")

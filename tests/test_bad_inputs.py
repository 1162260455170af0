"""Issue 25, hardening round 2: the newer surfaces (LLM serving, the plan block, the chatbot
workload) keep the promise. A bad input is one line naming the file, the field and what was
expected (exit 2), from ``validate`` as from every command; a valid input whose result is
infeasible prints it and exits 3; what would not fit in memory or time is refused up front."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from typer.testing import CliRunner

from accelsim.cli import app
from tests.conftest import CONFIGS

runner = CliRunner()

FLEET = yaml.safe_load((CONFIGS / "fleet.yaml").read_text())
CHAT = yaml.safe_load((CONFIGS / "jobs" / "chatbot-llama2-70b-h100.yaml").read_text())
CHAT["sim"] = {"requests": 400, "warmup": 40, "seed": 1, "replications": 1}
DISAGG = yaml.safe_load((CONFIGS / "jobs" / "chatbot-disaggregated-h800-h20.yaml").read_text())
# the seed's chatbot on the dense stand-in it names (for the cases about dense models)
DENSE = copy.deepcopy(FLEET)
DENSE["workloads"]["chatbot"].update(model="llama2-70b", dp=1)
DENSE["workloads"]["chatbot"].pop("weight_formats", None)


def _edit(base: dict, path: str, value: object) -> dict:
    """A copy of ``base`` with the dotted ``path`` set (``[i]`` indexes a list)."""
    d = copy.deepcopy(base)
    keys = path.replace("[", ".[").split(".")
    node = d
    for k in keys[:-1]:
        node = node[int(k[1:-1])] if k.startswith("[") else node[k]
    last = keys[-1]
    if last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value
    return d


def _scenario(path: str, value: object) -> dict:
    """The seed scenario (``dense:`` prefix: with the dense chatbot) with ``path`` set."""
    if path.startswith("dense:"):
        return _edit(DENSE, path.removeprefix("dense:"), value)
    return _edit(FLEET, path, value)


def _one_line(r, file, field: str, *words: str) -> str:
    """The run's stderr is one line, ``FILE: field: ...`` with ``words``, and no traceback."""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"{file}: {field}: "), r.stderr
    for w in words:
        assert w in lines[0], r.stderr
    assert "Traceback" not in r.output
    return lines[0]


# ------------------------------------------------------------ validate as deep as the commands

SCENARIO_CASES = [
    ("plan.deliveries.tpu-v9", {"units_per_quarter": 1}, "plan.deliveries.tpu-v9",
     "device is in no budget pool"),
    ("plan.demand_growth_per_quarter.nope", 0.1, "plan.demand_growth_per_quarter.nope",
     "unknown workload"),
    ("plan.deliveries.h20", {"units_per_quarter": 10, "start": "2026Q3", "end": "2025Q2"},
     "plan.deliveries.h20", "start (2026Q3) is after end (2025Q2)"),
    ("plan.deliveries.h20", {"units_per_quarter": 10, "end": "2020Q1"},
     "plan.deliveries.h20", "outside the plan's horizon"),
    ("plan.deliveries.h20.units_per_quarter", 1.5, "plan.deliveries.h20.units_per_quarter",
     "valid integer"),
    ("plan.budget_usd_per_year", {2025: 1e9}, "plan.budget_usd_per_year", "no budget for 2026"),
    ("workloads.chatbot.sim", {"requests": 300, "warmup": 400}, "workloads.chatbot.sim",
     "warmup (400) must be below requests (300)"),
    ("dense:workloads.chatbot.engine", {"mtp_tokens": 2}, "workloads.chatbot.engine.mtp_tokens",
     "no multi-token prediction modules"),
    ("dense:workloads.chatbot.engine", {"redundant_experts": 8},
     "workloads.chatbot.engine.redundant_experts", "is dense"),
    ("dense:workloads.chatbot.engine", {"overlap_ep_comm": True},
     "workloads.chatbot.engine.overlap_ep_comm", "is dense"),
    ("dense:workloads.chatbot.tp", 3, "workloads.chatbot.tp",
     "must divide the model's heads (64)"),
    ("workloads.chatbot.prompt_tokens.max", 500, "workloads.chatbot.prompt_tokens",
     "max (500) is below the mean (1000)"),
]


@pytest.mark.parametrize("path,value,field,words", SCENARIO_CASES,
                         ids=[c[2] + ":" + c[3][:20] for c in SCENARIO_CASES])
def test_validate_refuses_what_the_commands_would(write_yaml, path, value, field, words):
    p = write_yaml(_scenario(path, value), "scenario.yaml")
    _one_line(runner.invoke(app, ["validate", str(p)]), p, field, words)


@pytest.mark.parametrize("path,value,field", [
    ("workloads.chatbot.sim", {"requests": 300, "warmup": 400}, "workloads.chatbot.sim"),
    ("dense:workloads.chatbot.engine", {"mtp_tokens": 2}, "workloads.chatbot.engine.mtp_tokens"),
])
def test_compare_refuses_a_broken_chatbot_block_before_evaluating(write_yaml, path, value,
                                                                   field):
    """Was a traceback (warmup) and a silent exit 0 with the error in a table cell (MTP)."""
    p = write_yaml(_scenario(path, value), "scenario.yaml")
    r = runner.invoke(app, ["compare", str(p)])
    assert r.exit_code == 2
    _one_line(r, p, field)


def test_plan_refuses_deliveries_that_end_before_they_start(write_yaml):
    p = write_yaml(_edit(FLEET, "plan.deliveries.h20", {"units_per_quarter": 10,
                                                       "start": "2026Q3", "end": "2025Q2"}))
    r = runner.invoke(app, ["plan", str(p)])
    assert r.exit_code == 2
    _one_line(r, p, "plan.deliveries.h20", "expected start <= end")


# ------------------------------------------------------------------ silent acceptance

LLM_CASES = [
    (DISAGG, "replicas[1].model", "llama3-70b", "replicas[1].model",
     "expected one model for every prefill and decode replica"),
    (CHAT, "replicas[0].redundant_experts", 16, "replicas[0].redundant_experts", "is dense"),
    (CHAT, "replicas[0].overlap_ep_comm", True, "replicas[0].overlap_ep_comm", "is dense"),
    (CHAT, "replicas[0].mtp_tokens", 1, "replicas[0].mtp_tokens", "mtp_layers 0"),
    (CHAT, "prompt_tokens.max", 500, "prompt_tokens", "expected max >= mean"),
]


@pytest.mark.parametrize("cmd", ["validate", "serve-llm"])
@pytest.mark.parametrize("base,path,value,field,words", LLM_CASES,
                         ids=[c[3] for c in LLM_CASES])
def test_llm_jobs_that_were_silently_accepted(write_yaml, cmd, base, path, value, field,
                                              words):
    p = write_yaml(_edit(base, path, value), "job.yaml")
    r = runner.invoke(app, [cmd, str(p)])
    assert r.exit_code == 2
    _one_line(r, p, field, words)


def test_a_fractional_scaleup_domain_is_refused(write_yaml, h20_dict):
    h20_dict["interconnect"]["scaleup_domain_size"]["value"] = 8.5
    p = write_yaml(h20_dict, "dev.yaml")
    _one_line(runner.invoke(app, ["validate", str(p)]), p,
              "interconnect.scaleup_domain_size", "expected a whole number, got 8.5")


def test_uncertainty_draws_of_a_count_are_whole():
    """inhouse-asic's scale-up domain has a range [8, 64]: its draws are floored (as the
    spec reads them) so every drawn profile stays valid."""
    from accelsim.devices import load_device
    from accelsim.uncertainty import draws

    prof = {"a": load_device("inhouse-asic").model_dump(mode="json")}
    vals = [d["a"]["interconnect.scaleup_domain_size"] for d in draws(prof, 50, 3)]
    assert all(v == int(v) and 8 <= v <= 64 for v in vals) and len(set(vals)) > 5


def _trace_job(write_yaml, tmp_path, text: str, base: dict = CHAT) -> object:
    (tmp_path / "t.csv").write_text(text)
    return write_yaml({**base, "arrivals": {"trace": "t.csv"}}, "job.yaml")


@pytest.mark.parametrize("cmd", ["validate", "serve-llm"])
def test_a_negative_arrival_time_is_refused_naming_the_job_and_the_csv(write_yaml, tmp_path,
                                                                        cmd):
    p = _trace_job(write_yaml, tmp_path, "arrival_s\n-5\n" + "".join(
        f"{i}\n" for i in range(100)))
    r = runner.invoke(app, [cmd, str(p)])
    assert r.exit_code == 2
    _one_line(r, p, "arrivals.trace", f"{tmp_path / 't.csv'}: arrival_s (line 2): expected "
              "times >= 0")


def test_serve_names_the_job_that_points_to_a_bad_trace(write_yaml, tmp_path):
    job = yaml.safe_load((CONFIGS / "jobs" / "serve-mm1.yaml").read_text())
    p = _trace_job(write_yaml, tmp_path, "arrival_s\n0\n-1\n", job)
    r = runner.invoke(app, ["serve", str(p)])
    assert r.exit_code == 2
    _one_line(r, p, "arrivals.trace", "t.csv: arrival_s: expected at least 2 finite, "
              "non-decreasing times")


def test_a_folder_given_as_a_trace_says_it_is_a_folder(write_yaml, tmp_path):
    p = write_yaml({**CHAT, "arrivals": {"trace": str(tmp_path)}}, "job.yaml")
    r = runner.invoke(app, ["serve-llm", str(p)])
    assert r.exit_code == 2
    _one_line(r, p, "arrivals.trace", "is a folder; expected a CSV file")


def test_a_trace_shorter_than_the_warmup_is_one_line(write_yaml, tmp_path):
    """Was an IndexError traceback."""
    p = _trace_job(write_yaml, tmp_path, "arrival_s\n" + "".join(f"{i / 10}\n"
                                                                 for i in range(20)))
    for cmd in ("validate", "serve-llm"):
        r = runner.invoke(app, [cmd, str(p)])
        assert r.exit_code == 2
        _one_line(r, p, "sim.warmup", "has 20 arrivals, none left after the warm-up of 40")


# ------------------------------------------------------------------ overload exits 3

def test_serve_llm_overload_prints_the_result_and_exits_3(write_yaml):
    p = write_yaml(_edit(CHAT, "arrivals.rate_qps", 5000.0), "job.yaml")
    r = runner.invoke(app, ["serve-llm", str(p), "--json"])
    assert r.exit_code == 3
    out = json.loads(r.stdout)
    assert out["stable"] is False and out["meets_slo"] is False and out["ttft_growth"] > 1
    _one_line(r, p, "arrivals.rate_qps", "offered 5000 requests/s", "unstable")


def test_serve_llm_at_a_sustainable_rate_is_stable(write_yaml):
    p = write_yaml(CHAT, "job.yaml")
    r = runner.invoke(app, ["serve-llm", str(p), "--json"])
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["stable"] is True and out["ttft_growth"] < 0.05


# ------------------------------------------------------------------ memory and time up front

def test_serve_llm_refuses_a_run_that_would_not_fit_in_memory(write_yaml, monkeypatch):
    import accelsim.machine as machine

    monkeypatch.setattr(machine, "physical_memory", lambda: 8e9)
    p = write_yaml(_edit(CHAT, "sim", {"requests": 100_000_000, "warmup": 1000}), "job.yaml")
    r = runner.invoke(app, ["serve-llm", str(p)])
    assert r.exit_code == 2
    _one_line(r, p, "sim.requests", "100,000,000 requests need ~20.0 GB", "expected at most "
              "20,000,000")


def test_des_refuses_a_million_micro_batches_per_rank(write_yaml):
    job = yaml.safe_load((CONFIGS / "jobs" / "gpt3-175b-a100.yaml").read_text())
    job["global_batch"] = 8_000_000  # dp 8, micro-batch 1: a million per rank
    p = write_yaml(job, "job.yaml")
    r = runner.invoke(app, ["train", str(p), "--engine", "des"])
    assert r.exit_code == 2
    _one_line(r, p, "global_batch", "1,000,000 micro-batches per rank", "engine analytic")


def test_sweep_refuses_more_uncertainty_draws_than_it_holds(tmp_path):
    from accelsim.sweep import run_sweep
    from accelsim.uncertainty import MAX_SAMPLES

    s = tmp_path / "s.yaml"
    s.write_text(yaml.safe_dump({"name": "x", "base": str(CONFIGS / "fleet.yaml"),
                                 "parameters": {"supply.h20.max_units": {"values": [0, 1]}},
                                 "metrics": ["fleet.all-h20.capex_usd"]}))
    r = runner.invoke(app, ["sweep", str(s), "--out", str(tmp_path / "o"), "--samples",
                            str(10**9)])
    assert r.exit_code == 2
    _one_line(r, s, "--samples", f"expected 0 to {MAX_SAMPLES:,}")
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("part-*"))
    with pytest.raises(Exception, match="--samples"):
        run_sweep(s, tmp_path / "o2", samples=MAX_SAMPLES + 1)


# ------------------------------------------------------------ sweeps keep an overloaded point

def test_an_overloaded_serving_point_keeps_its_row_with_the_reason(tmp_path):
    """Was ``unknown metric 'p99_ms'``, aborting the sweep."""
    from accelsim.sweep import read_results, run_sweep

    job = yaml.safe_load((CONFIGS / "jobs" / "serve-mm1.yaml").read_text())
    job["sim"] = {"requests": 20000, "warmup": 1000, "seed": 1}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    s = tmp_path / "s.yaml"
    s.write_text(yaml.safe_dump({"name": "ovl", "base": "job.yaml", "metrics": ["p99_ms"],
                                 "parameters": {"arrivals.rate_qps": {"values": [500, 5000]}}}))
    run_sweep(s, tmp_path / "o", workers=1)
    df = read_results(tmp_path / "o")
    assert len(df) == 2 and df["p99_ms"].iloc[0] > 0 and df["reason"].iloc[0] == ""
    assert df["p99_ms"].isna().iloc[1]
    assert df["reason"].iloc[1].startswith("unstable: offered 5013 qps exceeds capacity 1001 "
                                           "qps; p99_ms: not measured at this point")


def test_an_overloaded_llm_point_says_so(tmp_path):
    from accelsim.sweep import read_results, run_sweep

    (tmp_path / "job.yaml").write_text(yaml.safe_dump(CHAT))
    s = tmp_path / "s.yaml"
    s.write_text(yaml.safe_dump({"name": "llm", "base": "job.yaml",
                                 "metrics": ["ttft_p99_ms", "stable"],
                                 "parameters": {"arrivals.rate_qps": {"values": [2, 5000]}}}))
    run_sweep(s, tmp_path / "o", workers=1)
    df = read_results(tmp_path / "o")
    assert df["stable"].tolist() == [1.0, 0.0] and df["reason"].iloc[0] == ""
    assert "unstable: offered 5000 requests/s" in df["reason"].iloc[1]


# ------------------------------------------------------------------ messages

def test_an_unreachable_scheduler_prints_no_progress_line_first(tmp_path, monkeypatch):
    import accelsim.sweep.run as sweep_run

    monkeypatch.setattr(sweep_run, "SCHEDULER_TIMEOUT", "1s")
    s = tmp_path / "s.yaml"
    s.write_text(yaml.safe_dump({"name": "x", "base": str(CONFIGS / "fleet.yaml"),
                                 "parameters": {"supply.h20.max_units": {"values": [0, 1]}},
                                 "metrics": ["fleet.all-h20.capex_usd"]}))
    r = runner.invoke(app, ["sweep", str(s), "--out", str(tmp_path / "o"), "--scheduler",
                            "tcp://127.0.0.1:9"])
    assert r.exit_code == 2
    _one_line(r, "sweep", "--scheduler", "cannot reach a Dask scheduler")


@pytest.mark.parametrize("value,want", [
    ("abc", "runs[0].input_tokens: Input should be a valid integer or expected a mapping "
     "(got 'abc')"),
    ({"dist": "lognormal", "mean": 10, "cv": 1, "max": 5},
     "runs[0].input_tokens: max (5) is below the mean (10): most draws would be cut to max; "
     "expected max >= mean"),
    ({"dist": "fixed"}, "runs[0].input_tokens.value: required field is missing"),
])
def test_validate_runs_prints_no_union_branch_names(write_yaml, value, want):
    rf = yaml.safe_load((CONFIGS / "runs" / "trtllm-h100-fp8.yaml").read_text())
    rf["runs"] = rf["runs"][:1]
    rf["runs"][0]["input_tokens"] = value
    p = write_yaml(rf, "runs.yaml")
    r = runner.invoke(app, ["validate-runs", str(p)])
    assert r.exit_code == 2
    assert r.stderr.strip() == f"{p}: {want}"


def test_a_run_without_its_kind_says_so(write_yaml):
    rf = yaml.safe_load((CONFIGS / "runs" / "trtllm-h100-fp8.yaml").read_text())
    rf["runs"] = rf["runs"][:1]
    del rf["runs"][0]["kind"]
    p = write_yaml(rf, "runs.yaml")
    _one_line(runner.invoke(app, ["validate", str(p)]), p, "runs[0]",
              "required field 'kind' is missing")


@pytest.mark.parametrize("cmd", ["serve-llm", "serve", "train", "compare"])
def test_a_file_of_another_kind_is_one_line(write_yaml, h20_dict, cmd):
    p = write_yaml(h20_dict, "dev.yaml")
    r = runner.invoke(app, [cmd, str(p)])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{p}: "), r.stderr
    assert "file (with a top-level" in lines[0] and "got a accelerator profile file" in lines[0]


def test_validate_refuses_a_serving_block_whose_warmup_is_its_run(write_yaml):
    p = write_yaml(_edit(FLEET, "workloads.serving.sim", {"requests": 1000, "warmup": 2000}))
    _one_line(runner.invoke(app, ["validate", str(p)]), p, "workloads.serving.sim",
              "warmup (2000) must be below requests (1000)")


def test_validate_draws_the_requests_as_serve_llm_does(write_yaml):
    """A request longer than every KV cache, and a run larger than memory, are found by
    validate too (it draws the run's lengths and checks the memory first)."""
    p = write_yaml(_edit(CHAT, "prompt_tokens", {"dist": "fixed", "value": 900000}))
    _one_line(runner.invoke(app, ["validate", str(p)]), p, "prompt_tokens",
              "exceeds replicas[0]'s KV cache")


def test_validate_checks_a_published_replica_against_its_model(write_yaml):
    rf = yaml.safe_load((CONFIGS / "runs" / "trtllm-h100-fp8.yaml").read_text())
    rf["runs"] = rf["runs"][:1]
    rf["runs"][0]["replica"]["tp"] = 3
    p = write_yaml(rf, "runs.yaml")
    _one_line(runner.invoke(app, ["validate", str(p)]), p, "runs[0].replica.tp",
              "must divide the model's heads (64)")


def test_a_streamed_serving_run_reports_its_progress():
    from accelsim.serving.job import ServeJob
    from accelsim.serving.sim import simulate

    job = yaml.safe_load((CONFIGS / "jobs" / "serve-mm1.yaml").read_text())
    job["sim"] = {"requests": 600_000, "warmup": 1000, "seed": 1, "engine": "fast"}
    seen: list[tuple[int, int]] = []
    simulate(ServeJob.model_validate(job), progress=lambda d, n: seen.append((d, n)))
    assert len(seen) >= 2 and seen[-1] == (600_000, 600_000)


@pytest.mark.parametrize("path,value", [("workloads.training.model", "rmc2"),
                                        ("workloads.chatbot.model", "rmc2"),
                                        ("workloads.serving.model", "llama2-70b")])
def test_a_model_of_the_other_family_is_one_line(write_yaml, path, value):
    p = write_yaml(_edit(FLEET, path, value))
    line = _one_line(runner.invoke(app, ["validate", str(p)]), p, path)
    assert f"configs/models/{value}.yaml is a " in line and "expected a" in line


def test_attention_data_parallelism_on_a_dense_model_is_refused(write_yaml):
    p = write_yaml(_edit(CHAT, "replicas[0].dp", 4), "job.yaml")
    _one_line(runner.invoke(app, ["validate", str(p)]), p, "replicas[0].dp", "is dense")


def test_a_simpy_llm_run_that_would_take_hours_is_refused(write_yaml):
    p = write_yaml(_edit(CHAT, "sim", {"requests": 3_000_000, "warmup": 10}), "job.yaml")
    r = runner.invoke(app, ["serve-llm", str(p), "--engine", "simpy"])
    assert r.exit_code == 2
    _one_line(r, p, "sim.requests", "simpy engine take about 18 min", "engine fast")


def test_uncertainty_reports_each_draw_to_its_progress_bar(monkeypatch):
    """The bar (draws done, elapsed, time left) hears of every chunk of draws as it ends
    (draws run in chunks of ``CHUNK`` on worker processes); at the 100,000-draw maximum
    the time left is what tells the user how long it will run."""
    import accelsim.uncertainty as U

    calls: list[tuple[int, int]] = []
    real = U.monte_carlo

    def spy(*a, progress=None, **kw):
        def both(done, n):
            calls.append((done, n))
            progress(done, n)
        return real(*a, progress=both, **kw)

    monkeypatch.setattr(U, "monte_carlo", spy)
    n = 2 * U.CHUNK + 3
    r = runner.invoke(app, ["uncertainty", str(CONFIGS / "fleet.yaml"), "--samples", str(n),
                            "--json"])
    assert r.exit_code == 0, r.output
    # chunks finish in any order across worker processes: one report per chunk, counts
    # rising by each chunk's size to n
    done = [d for d, total in calls if total == n]
    steps = sorted(b - a for a, b in zip([0, *done], done, strict=False))
    assert len(calls) == 3 and done == sorted(done) and done[-1] == n
    assert steps == sorted([U.CHUNK, U.CHUNK, n - 2 * U.CHUNK])
    r = runner.invoke(app, ["uncertainty", str(CONFIGS / "fleet.yaml"), "--samples", "100001"])
    assert r.exit_code == 2 and "100000" in r.stderr  # the maximum (typer usage error)

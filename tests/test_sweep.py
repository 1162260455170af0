"""Sweeps: point designs, overrides, resume after interruption, Dask = local, errors, plots."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.devices import load_device
from accelsim.errors import AccelsimError
from accelsim.sweep import (
    Param,
    SweepSpec,
    apply_device,
    apply_mapping,
    points,
    read_results,
    run_sweep,
)
from accelsim.training import estimate, load_job
from tests.conftest import CONFIGS, ROOT

runner = CliRunner()
JOB = CONFIGS / "jobs" / "gpt3-175b-a100.yaml"


@pytest.fixture
def train_sweep(tmp_path):
    spec = {
        "name": "t", "base": str(JOB),
        "parameters": {"devices.a100-80gb-sxm.bf16_tflops": {"low": 200, "high": 600, "num": 5},
                       "parallelism.virtual_stages": {"values": [1, 2, 3]}},
        "metrics": ["step_time_s", "mfu", "tokens_per_s / step_time_s"],
        "batch_size": 2,
    }
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def _spec(**kw) -> SweepSpec:
    base = {"name": "s", "base": "x.yaml", "metrics": ["m"],
            "parameters": {"a": {"low": 0, "high": 1, "num": 3},
                           "b": {"values": [10, 20]}}}
    base.update(kw)
    return SweepSpec.model_validate(base)


def test_grid_lhs_and_one_at_a_time_designs():
    assert len(points(_spec())) == 6
    lhs = points(_spec(sampling={"method": "lhs", "samples": 50, "seed": 3}))
    a = np.array([p["a"] for p in lhs])
    assert len(lhs) == 50 and a.min() >= 0 and a.max() <= 1
    # Latin hypercube: exactly one sample in each of the 50 strata of [0, 1]
    assert sorted(np.floor(a * 50).astype(int)) == list(range(50))
    assert lhs == points(_spec(sampling={"method": "lhs", "samples": 50, "seed": 3}))
    oat = points(_spec(sampling={"method": "oat"}))
    assert len(oat) == 1 + 2 * 2 and oat[0] == {"a": 0.5, "b": 20}


def test_device_overrides_and_pseudo_fields():
    prof = load_device("h20").model_dump(mode="json")
    apply_device(prof, "bf16_tflops", 300, "s")
    assert prof["compute"]["bf16_tflops"]["value"] == 300
    assert prof["compute"]["bf16_tflops"]["range"] is None
    apply_device(prof, "perf_scale", 2.0, "s")
    assert prof["compute"]["fp8_tflops"]["value"] == pytest.approx(592)
    assert prof["memory"]["memory_bandwidth_GBps"]["value"] == pytest.approx(8000)
    apply_device(prof, "cuda_parity", 1.0, "s")
    ref = load_device("h100-sxm").efficiency
    assert prof["efficiency"]["compute"]["value"] == pytest.approx(ref.compute.value)
    with pytest.raises(AccelsimError, match="not a device field"):
        apply_device(prof, "flux_capacitor", 1.0, "s")


def test_mapping_overrides_keep_ints_and_shares():
    data = {"supply": {"h20": {"max_units": 600000}},
            "fleets": [{"name": "f", "spend_usd": {"a": 2.0, "b": 6.0, "c": 2.0}}]}
    apply_mapping(data, "supply.h20.max_units", 1234.0, "s")
    assert data["supply"]["h20"]["max_units"] == 1234 and isinstance(
        data["supply"]["h20"]["max_units"], int)
    apply_mapping(data, "fleets.f.share.b", 0.5, "s")
    assert data["fleets"][0]["spend_usd"] == pytest.approx({"b": 5.0, "a": 2.5, "c": 2.5})


def test_train_sweep_matches_direct_estimates(train_sweep, tmp_path):
    run_sweep(train_sweep, tmp_path / "out", workers=1)
    df = read_results(tmp_path / "out")
    assert len(df) == 15 and list(df["point_id"]) == list(range(15))
    row = df[(df["devices.a100-80gb-sxm.bf16_tflops"] == 300)
             & (df["parallelism.virtual_stages"] == 3)].iloc[0]
    from dataclasses import replace

    job = load_job(JOB)
    spec = replace(load_device("a100-80gb-sxm").spec, peak_flops={
        **load_device("a100-80gb-sxm").spec.peak_flops, "bf16": 300e12})
    direct = estimate(job, spec)
    assert row["step_time_s"] == pytest.approx(direct.step_time_s, rel=1e-12)


def test_resume_after_interruption_gives_the_same_table(train_sweep, tmp_path):
    run_sweep(train_sweep, tmp_path / "full", workers=1)
    full = read_results(tmp_path / "full")

    class Crash(Exception):
        pass

    calls = {"n": 0}

    def crash_after_two_batches(done: int, total: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # the initial call, then two written batches
            raise Crash

    with pytest.raises(Crash):
        run_sweep(train_sweep, tmp_path / "part", workers=1, progress=crash_after_two_batches)
    partial = read_results(tmp_path / "part")
    assert 0 < len(partial) < len(full)
    with pytest.raises(AccelsimError, match="use --resume"):
        run_sweep(train_sweep, tmp_path / "part", workers=1)
    r = run_sweep(train_sweep, tmp_path / "part", workers=1, resume=True)
    assert r.skipped == len(partial) and r.computed == len(full) - len(partial)
    pd.testing.assert_frame_equal(read_results(tmp_path / "part"), full)


def test_resume_refuses_a_different_sweep(train_sweep, tmp_path):
    run_sweep(train_sweep, tmp_path / "o", workers=1, limit=4)
    spec = yaml.safe_load(train_sweep.read_text())
    spec["metrics"] = ["mfu"]
    train_sweep.write_text(yaml.safe_dump(spec))
    with pytest.raises(AccelsimError, match="different sweep"):
        run_sweep(train_sweep, tmp_path / "o", workers=1, resume=True)


def test_dask_and_local_executors_give_identical_results(train_sweep, tmp_path):
    run_sweep(train_sweep, tmp_path / "local", workers=2, executor="local")
    run_sweep(train_sweep, tmp_path / "dask", workers=2, executor="dask")
    pd.testing.assert_frame_equal(read_results(tmp_path / "local"),
                                  read_results(tmp_path / "dask"))


def test_the_embedded_dask_cluster_workers_run_without_the_profiler():
    """The sweep's own cluster: no stack sampling beside the tasks (run.QUIET), in the
    worker processes themselves."""
    from dask.distributed import Client

    from accelsim.sweep.run import _local_cluster

    cluster = _local_cluster(1)
    try:
        with Client(cluster) as client:
            got = client.run(lambda: __import__("dask").config.get(
                "distributed.worker.profile.enabled"))
        assert list(got.values()) == [False]
    finally:
        cluster.close()


def test_uncertainty_samples_give_bands(train_sweep, tmp_path):
    run_sweep(train_sweep, tmp_path / "u", workers=1, samples=5, limit=3,
              params={"parallelism.virtual_stages": Param(values=[3])})
    df = read_results(tmp_path / "u")
    assert {"mfu [p05]", "mfu [p95]"} <= set(df.columns)
    assert (df["mfu [p05]"] <= df["mfu"]).all() and (df["mfu"] <= df["mfu [p95]"]).all()
    assert (df["mfu [p95]"] > df["mfu [p05]"]).all()  # the A100 profile carries ranges


@pytest.mark.parametrize("change,text", [
    ({"metrics": ["warp_factor"]}, "unknown metric 'warp_factor'"),
    ({"parameters": {"devices.a100-80gb-sxm.flux": {"values": [1]}}}, "not a device field"),
    ({"parameters": {"devices.tpu-v9.bf16_tflops": {"values": [1]}}}, "not in the base"),
    ({"parameters": {"x": {"low": 2, "high": 1}}}, "high must be >= low"),
    ({"base": "nowhere.yaml"}, "base file not found"),
])
def test_bad_sweeps_are_clear_errors(train_sweep, tmp_path, change, text):
    spec = yaml.safe_load(train_sweep.read_text())
    spec.update(change)
    train_sweep.write_text(yaml.safe_dump(spec))
    r = runner.invoke(app, ["sweep", str(train_sweep), "-o", str(tmp_path / "o"),
                            "--workers", "1"])
    assert r.exit_code == 2, r.output
    assert text in r.stderr and "Traceback" not in r.output


def test_cli_sweep_csv_and_plots(train_sweep, tmp_path):
    out, csv = tmp_path / "o", tmp_path / "all.csv"
    r = runner.invoke(app, ["sweep", str(train_sweep), "-o", str(out), "--workers", "1",
                            "--csv", str(csv)])
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(csv)) == 15
    x, hue = "devices.a100-80gb-sxm.bf16_tflops", "parallelism.virtual_stages"
    for args, stem in (
        (["--x", x, "--y", "mfu", "--hue", hue], "line"),
        (["--x", x, "--y", "mfu", "--kind", "scatter"], "scatter"),
        (["--x", x, "--y", hue, "--z", "mfu", "--level", "0.5"], "contour"),
    ):
        r = runner.invoke(app, ["plot", str(out), "-o", str(tmp_path / f"{stem}.png"), *args])
        assert r.exit_code == 0, r.output
        assert (tmp_path / f"{stem}.png").stat().st_size > 10_000
        assert (tmp_path / f"{stem}.svg").stat().st_size > 10_000
    r = runner.invoke(app, ["plot", str(out), "-o", str(tmp_path / "x.png"), "--x", "nope",
                            "--y", "mfu"])
    assert r.exit_code == 2 and "no column 'nope'" in r.stderr


STUDIES = ["split", "asic_breakeven", "software_maturity", "export_ban"]


@pytest.mark.parametrize("study", STUDIES)
def test_study_smoke_produces_its_plots(study, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"study_{study}.py"),
                        "--quick", "--out", str(tmp_path)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    pngs = list(tmp_path.glob("*.png"))
    assert pngs and all(p.stat().st_size > 20_000 for p in pngs)
    assert all(p.with_suffix(".svg").exists() for p in pngs)
    assert (tmp_path / f"{study}.csv").stat().st_size > 100
    assert r.stdout.strip()


def test_sweep_metadata_records_the_fingerprint(train_sweep, tmp_path):
    run_sweep(train_sweep, tmp_path / "m", workers=1, limit=2)
    meta = json.loads((tmp_path / "m" / "_sweep.json").read_text())
    assert meta["points"] == 2 and len(meta["fingerprint"]) == 16


def test_errors_in_worker_processes_keep_their_one_line(train_sweep, tmp_path):
    spec = yaml.safe_load(train_sweep.read_text())
    spec["metrics"] = ["warp_factor"]
    train_sweep.write_text(yaml.safe_dump(spec))
    with pytest.raises(AccelsimError) as e:
        run_sweep(train_sweep, tmp_path / "o", workers=2)
    assert len(e.value.problems) == 1
    assert "unknown metric 'warp_factor'" in str(e.value)


def test_one_at_a_time_sweep_draws_a_tornado(tmp_path):
    spec = {
        "name": "oat", "base": str(JOB), "sampling": {"method": "oat"},
        "parameters": {"devices.a100-80gb-sxm.bf16_tflops": {"low": 200, "high": 400},
                       "devices.a100-80gb-sxm.memory_bandwidth_GBps": {"low": 1500,
                                                                       "high": 2500},
                       "devices.a100-80gb-sxm.efficiency.communication": {"low": 0.5,
                                                                          "high": 0.9}},
        "metrics": ["mfu", "step_time_s"],
    }
    p = tmp_path / "oat.yaml"
    p.write_text(yaml.safe_dump(spec))
    r = runner.invoke(app, ["sweep", str(p), "-o", str(tmp_path / "o"), "--workers", "1"])
    assert r.exit_code == 0, r.output
    df = read_results(tmp_path / "o")
    assert len(df) == 1 + 2 * 3
    # faster compute lowers the step time; the bar chart ranks the parameters
    bf = df[df["devices.a100-80gb-sxm.bf16_tflops"] == 400]["step_time_s"].iloc[0]
    assert bf < df["step_time_s"].iloc[0]
    r = runner.invoke(app, ["plot", str(tmp_path / "o"), "-o", str(tmp_path / "t.png"),
                            "--kind", "tornado", "--y", "step_time_s"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "t.png").stat().st_size > 10_000


def test_cli_dask_executor_embedded_cluster(train_sweep, tmp_path):
    r = runner.invoke(app, ["sweep", str(train_sweep), "-o", str(tmp_path / "d"),
                            "--executor", "dask", "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert len(read_results(tmp_path / "d")) == 15


def test_fast_fidelity_reproduces_compare_at_the_base_point():
    from accelsim.fleet import compare, load_scenario
    from accelsim.sweep.evaluate import context, evaluate_point

    fleet = CONFIGS / "fleet.yaml"
    res = compare(load_scenario(fleet))
    ctx = context("base-check", str(fleet))
    metrics = [f"device.{r.device}.{r.workload}.throughput" for r in res.devices.itertuples()]
    metrics += [f"fleet.{f['name']}.training_tokens_per_day" for f in res.fleets]
    got = evaluate_point(ctx, {"devices.inhouse-asic.perf_scale": 1.0}, metrics, "t")
    for r in res.devices.itertuples():
        assert got[f"device.{r.device}.{r.workload}.throughput"] == pytest.approx(
            r.throughput, rel=1e-9)
    for f in res.fleets:
        assert got[f"fleet.{f['name']}.training_tokens_per_day"] == pytest.approx(
            f["training_tokens_per_day"], rel=1e-9)


def test_a_sweep_evaluates_only_the_workloads_its_metrics_read(tmp_path, monkeypatch):
    """Per-device metrics of training and serving: the chatbot is evaluated neither at the
    base nor at any point, and the values are compare's; a fleet metric needs every
    workload (capacity workloads are allocated first)."""
    from accelsim.fleet import compare, load_scenario
    from accelsim.kinds.scenario import needed
    from accelsim.workloads.llm import LLMServing

    def never(*a, **k):
        raise AssertionError("the chatbot was evaluated")

    fleet = CONFIGS / "fleet.yaml"
    res = compare(load_scenario(fleet))  # before the chatbot is forbidden
    monkeypatch.setattr(LLMServing, "evaluate", never)
    monkeypatch.setattr(LLMServing, "evaluate_fast", never)
    monkeypatch.setenv("ACCELSIM_NO_CACHE", "1")
    metrics = ["device.h20.training.throughput", "device.inhouse-asic.serving.throughput"]
    s = _sweep_file(tmp_path, fleet, {"devices.h20.price_usd": {"values": [10000, 12000]}},
                    metrics)
    run_sweep(s, tmp_path / "o", workers=1)
    df = read_results(tmp_path / "o")
    want = {f"device.{r.device}.{r.workload}.throughput": r.throughput
            for r in res.devices.itertuples()}
    for m in metrics:
        assert df[m].tolist() == pytest.approx([want[m]] * 2, rel=1e-12)
    sc = load_scenario(fleet)
    assert needed(sc, metrics) == {"training", "serving"}
    assert needed(sc, [*metrics, "fleet.all-h20.capex_usd"]) is None
    assert needed(sc, ["optimum.objective"]) is None


def _resume_refused_after_editing(tmp_path, job, edited):
    """A sweep over ``job`` resumes unchanged, and refuses to once ``edited`` changes."""
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "fp", "base": "job.yaml", "metrics": ["mfu"],
        "parameters": {"parallelism.virtual_stages": {"values": [1, 2]}}}))
    run_sweep(sweep, tmp_path / "o", workers=1, limit=1)
    run_sweep(sweep, tmp_path / "o", workers=1, resume=True)  # unchanged: resumes
    edited.write_text(edited.read_text() + "\n# edited\n")
    with pytest.raises(AccelsimError, match="device, model or stack file"):
        run_sweep(sweep, tmp_path / "o", workers=1, resume=True)


def test_resume_refuses_after_a_device_file_changed(tmp_path, h20_dict):
    """The fingerprint covers the device profiles the base reads, not only the base."""
    dev = tmp_path / "a100.yaml"
    dev.write_text((CONFIGS / "devices" / "a100-80gb-sxm.yaml").read_text())
    job = yaml.safe_load(JOB.read_text())
    job["device"] = "a100.yaml"
    _resume_refused_after_editing(tmp_path, job, dev)


def test_resume_refuses_after_the_jobs_stack_or_its_base_changed(tmp_path):
    """The fingerprint covers the stack a job runs and the stack that one derives from
    (``base:``): results computed under another stack are not mixed in on resume."""
    base = tmp_path / "base.yaml"
    base.write_text((CONFIGS / "stacks" / "megatron-core.yaml").read_text()
                    .replace("name: megatron-core", "name: base-stack"))
    (tmp_path / "mine.yaml").write_text("name: mine\nbase: ./base.yaml\nframework: X\n")
    job = yaml.safe_load(JOB.read_text())
    job["stack"] = "mine.yaml"
    _resume_refused_after_editing(tmp_path, job, base)


def test_a_point_that_cannot_deliver_keeps_its_row_with_the_reason():
    from accelsim.sweep.evaluate import context, evaluate_point

    ctx = context("base-check", str(CONFIGS / "fleet.yaml"))
    got = evaluate_point(ctx, {"devices.h20.memory_GiB": 4.0},
                         ["device.h20.training.throughput",
                          "device.inhouse-asic.training.throughput / "
                          "device.h20.training.throughput"], "t")
    assert got["device.h20.training.throughput"] == 0.0
    assert np.isnan(got["device.inhouse-asic.training.throughput / "
                        "device.h20.training.throughput"])
    assert "device.h20.training: none of the base run's best 24 layouts fits" in got["reason"]
    assert "device.h20.training.throughput is 0" in got["reason"]


# ------------------------------------------------------------------ hardening

def _sweep_file(tmp_path, base, parameters, metrics, **extra):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"name": "h", "base": str(base), "parameters": parameters,
                                 "metrics": metrics, **extra}))
    return p


def test_a_misspelt_path_is_refused_by_validate_and_before_a_sweep_starts(tmp_path):
    s = _sweep_file(tmp_path, CONFIGS / "fleet.yaml",
                    {"supply.h2O.max_units": {"values": [0, 1000]}}, ["fleet.all-h20.capex_usd"])
    want = f"{s}: parameters.supply.h2O.max_units: supply.h2O: device is in no budget pool"
    r = runner.invoke(app, ["validate", str(s)])
    assert r.exit_code == 2 and r.stderr.startswith(want), r.stderr
    out = tmp_path / "o"
    r = runner.invoke(app, ["sweep", str(s), "-o", str(out)])
    assert r.exit_code == 2 and r.stderr.startswith(want) and not out.exists()


def test_unknown_metrics_and_device_fields_are_refused_with_suggestions(tmp_path):
    s = _sweep_file(tmp_path, CONFIGS / "fleet.yaml",
                    {"devices.h20.bf16_tflop": {"values": [100]}},
                    ["fleet.all-h20.capx_usd", "optimum.objective / optimum.capex"])
    r = runner.invoke(app, ["validate", str(s)])
    assert r.exit_code == 2
    lines = r.stderr.splitlines()
    assert any("parameters.devices.h20.bf16_tflop: 'bf16_tflop' is not a device field" in x
               for x in lines)
    assert any("unknown metric 'fleet.all-h20.capx_usd'; expected e.g. fleet.all-h20.capex_usd"
               in x for x in lines)
    assert any("unknown metric 'optimum.capex'; expected e.g. optimum.capex_usd" in x
               for x in lines)


def test_a_fractional_count_is_never_rounded(tmp_path):
    # every value fractional: the path can never work -> refused up front
    s = _sweep_file(tmp_path, CONFIGS / "fleet.yaml",
                    {"supply.h20.max_units": {"values": [1.5, 2.5]}}, ["fleet.all-h20.capex_usd"])
    r = runner.invoke(app, ["validate", str(s)])
    assert r.exit_code == 2 and "Input should be a valid integer (got 1.5)" in r.stderr
    data = {"supply": {"h20": {"max_units": 6}}}
    apply_mapping(data, "supply.h20.max_units", 2.5, "s")
    assert data["supply"]["h20"]["max_units"] == 2.5  # left for validation to refuse


def test_points_whose_values_are_invalid_keep_their_row_and_reason(tmp_path):
    # tp=5 does not divide GPT-3's 96 heads: that point's reason, the others run
    s = _sweep_file(tmp_path, JOB, {"parallelism.tp": {"values": [4, 5, 8]}},
                    ["step_time_s"], batch_size=1)
    run = run_sweep(s, tmp_path / "o", workers=1)
    df = read_results(run.out)
    assert len(df) == 3
    bad = df[df["parallelism.tp"] == 5].iloc[0]
    assert np.isnan(bad["step_time_s"]) and "tp (5) must divide" in bad["reason"]
    assert df[df["parallelism.tp"] != 5]["step_time_s"].notna().all()


def test_a_folder_left_by_a_sweep_that_never_finished_a_point_is_reused(train_sweep, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "_sweep.json").write_text("{}")  # e.g. the Dask scheduler was not there
    (out / "_lock").write_text("12345")
    run = run_sweep(train_sweep, out, workers=1, limit=2)  # no --resume needed
    assert run.computed == 2


def test_a_second_writer_is_refused_while_the_folder_is_locked(train_sweep, tmp_path):
    import fcntl

    out = tmp_path / "o"
    out.mkdir()
    with (out / "_lock").open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fh.write("4242")
        fh.flush()
        with pytest.raises(AccelsimError) as e:
            run_sweep(train_sweep, out, workers=1, limit=1)
    assert str(e.value) == (f"{out}: --out: another sweep (pid 4242) is writing to this folder; "
                            "wait for it to finish or choose another --out")
    assert run_sweep(train_sweep, out, workers=1, limit=1).computed == 1  # released


def test_an_unreachable_dask_scheduler_is_one_line(train_sweep, tmp_path, monkeypatch):
    import accelsim.sweep.run as sweep_run

    monkeypatch.setattr(sweep_run, "SCHEDULER_TIMEOUT", "1s")
    with pytest.raises(AccelsimError) as e:
        run_sweep(train_sweep, tmp_path / "o", executor="dask", scheduler="tcp://127.0.0.1:9",
                  limit=1)
    assert "--scheduler: cannot reach a Dask scheduler at tcp://127.0.0.1:9" in str(e.value)


def _slow_sweep(tmp_path):
    """A serving-job sweep whose points take ~10 ms each, in batches of 4."""
    return _sweep_file(tmp_path, CONFIGS / "jobs" / "serve-rmc2-h20.yaml",
                       {"arrivals.rate_qps": {"low": 1000, "high": 20000, "num": 2000}},
                       ["p99_ms"], batch_size=4)


def _children(pid: int) -> list[int]:
    from pathlib import Path

    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _start(tmp_path, out):
    import time

    proc = subprocess.Popen([sys.executable, "-m", "accelsim", "sweep", str(_slow_sweep(tmp_path)),
                             "-o", str(out), "--workers", "2"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not list(out.glob("part-*.parquet")) and time.time() < deadline:
        time.sleep(0.05)
    assert list(out.glob("part-*.parquet")), "no batch finished within 60 s"
    return proc, _children(proc.pid)


@pytest.mark.parametrize("sig,code,word", [(2, 130, "interrupted"), (15, 143, "terminated")])
def test_ctrl_c_and_sigterm_stop_quickly_keep_results_and_say_how_to_resume(
        tmp_path, sig, code, word):
    import os
    import time

    out = tmp_path / "o"
    proc, workers = _start(tmp_path, out)
    assert workers
    t = time.time()
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=30)
    assert time.time() - t < 5
    assert proc.returncode == code
    last = err.strip().splitlines()[-1]
    assert f": {word}: " in last and "finished points are kept in" in last and "--resume" in last
    assert "Traceback" not in err
    time.sleep(0.5)
    assert not any(_alive(w) for w in workers)
    kept = len(read_results(out))
    assert kept > 0
    r = run_sweep(_slow_sweep(tmp_path), out, workers=1, resume=True, limit=kept + 4)
    assert r.skipped >= kept


def test_workers_exit_when_the_sweep_process_is_killed(tmp_path):
    import os
    import signal
    import time

    proc, workers = _start(tmp_path, tmp_path / "o")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    deadline = time.time() + 10
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert workers and not any(_alive(w) for w in workers)


@pytest.mark.parametrize("name,content,want", [
    ("x.parquet", "garbage", "cannot read it as a table"),
    ("x.csv", "a,b\n1,2\n", "point_id: missing column"),
    ("x.txt", "hello", "expected a results folder, a .parquet or a .csv file"),
])
def test_results_that_are_not_a_sweeps_are_one_line(tmp_path, name, content, want):
    p = tmp_path / name
    p.write_text(content)
    r = runner.invoke(app, ["plot", str(p), "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and want in r.stderr and r.stderr.count("\n") == 1


def test_a_training_blocks_resilience_moves_its_throughput_whatever_the_grid(tmp_path):
    """Checkpoint and restart costs set the goodput, so a point's per-device throughput is
    its own, not that of the first point evaluated (resilience is a device field)."""
    X = "workloads.training.resilience.restart_s"
    metric = "device.h20.training.throughput"

    def sweep(values, out):
        spec = {"name": "r", "base": str(CONFIGS / "fleet.yaml"),
                "parameters": {X: {"values": values}}, "sampling": {"method": "grid"},
                "metrics": [metric]}
        path = tmp_path / f"{out}.yaml"
        path.write_text(yaml.safe_dump(spec))
        run_sweep(path, tmp_path / out, workers=1)
        df = read_results(tmp_path / out)
        return dict(zip(df[X], df[metric], strict=True))

    alone, after = sweep([3600.0], "alone"), sweep([0.0, 3600.0], "after")
    assert after[3600.0] == alone[3600.0] < after[0.0]


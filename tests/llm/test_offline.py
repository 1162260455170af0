"""MLPerf Offline rows (accelsim.runs.llm_offline): the steady-state shortcut against the full
simulation, and every row's request count is the log's samples_per_query."""

import re

import pytest

from accelsim.runs import load_runs
from accelsim.runs.llm_offline import offline_tokens_per_s
from tests.conftest import CONFIGS

RUNS = CONFIGS / "runs"
MISSES = RUNS / "misses"


def _job(path, run_id):
    run = next(r for r in load_runs(path).runs if r.id == run_id)
    return run.job(str(path), 1e6)


@pytest.mark.parametrize("path,run_id", [
    # the most sequences held at once (8 x ~4,700 on MI325X): the slowest start to settle
    (MISSES / "mlperf-inference-mixtral-offline.yaml", "mlperf51-mixtral-amd-mi325x-offline"),
    # 4 TP2 engines on H100, 200,640 samples
    (RUNS / "mlperf-inference-llama2-70b.yaml", "mlperf41-llama2-70b-dgx-h100-offline"),
])
def test_steady_state_shortcut_holds_to_the_full_run(path, run_id):
    """The prediction from the first n requests plus the rest at the steady-state rate is
    the full simulation of all N within 1 % (measured: within 0.4 % on every Offline row)."""
    job = _job(path, run_id)
    short, _, n = offline_tokens_per_s(job, str(path))
    full, _, n_full = offline_tokens_per_s(job, str(path), full=True)
    assert n < n_full == job.sim.requests
    assert short == pytest.approx(full, rel=0.01)


def test_a_short_run_is_the_full_run():
    """At or below the steady-state size nothing is extrapolated."""
    job = _job(MISSES / "mlperf-inference-amd-misses.yaml",
               "mlperf41-llama2-70b-amd-1xmi300x-offline")
    a, _, n = offline_tokens_per_s(job)
    b, _, _ = offline_tokens_per_s(job, full=True)
    assert n == job.sim.requests and a == b


def test_the_drain_lowers_a_short_run():
    """The mechanism: the dataset's 15,000 requests end in a drain that weighs on the
    makespan; LoadGen's 971,520 samples make it a small share."""
    path = MISSES / "mlperf-inference-mixtral-8x7b.yaml"
    job = _job(path, "mlperf41-mixtral-8x7b-dgx-h100-offline")
    long, _, _ = offline_tokens_per_s(job, str(path))
    short_job = job.model_copy(update={"sim": job.sim.model_copy(update={"requests": 15000})})
    short, _, _ = offline_tokens_per_s(short_job, str(path))
    assert short < 0.85 * long


def test_every_mlperf_offline_row_runs_its_samples_per_query():
    """requests = the LoadGen query size, at least the dataset (24,576 or 15,000), and the
    row's source cites the log it was read from."""
    files = sorted(RUNS.glob("mlperf-inference-*.yaml")) + sorted(
        MISSES.glob("mlperf-inference-*.yaml"))
    seen = 0
    for f in files:
        text = f.read_text()
        for run in load_runs(f).runs:
            if run.kind != "llm_offline":
                continue
            seen += 1
            assert run.requests >= 24576 or ("mixtral" in run.id and run.requests > 15000), run.id
            assert re.search(r"mlperf_log_summary\.txt", run.source), run.id
            assert f"requests: {run.requests}  # LoadGen's samples_per_query" in text, run.id
    assert seen >= 30

"""LLM run kinds of ``accelsim validate-runs``: MLPerf Llama-2-70B (length histograms from
the dataset, four TP2 engines), the server kind's capacity search, and the per-device
decode and prefill kinds of the wide-EP papers (the known misses, run but not asserted)."""

import pytest

from accelsim.runs import KINDS, load_runs, runs_dir, validate_runs
from accelsim.traffic import dist_mean
from tests.conftest import CONFIGS

MLPERF = CONFIGS / "runs" / "mlperf-inference-llama2-70b.yaml"
MISSES = CONFIGS / "runs" / "misses"


def test_mlperf_lengths_are_the_datasets():
    """24,576 prompts of mean 222 tokens; outputs scaled to the log's 290.3 tokens per
    sample (24,524.9 tokens/s over 84.4792 samples/s), capped at 1,024."""
    run = load_runs(MLPERF).runs[0]
    assert sum(run.input_tokens.weights) == sum(run.output_tokens.weights) == 24576
    assert dist_mean(run.input_tokens) == pytest.approx(222.3, abs=0.5)
    assert dist_mean(run.output_tokens) == pytest.approx(24524.9 / 84.4792, rel=0.01)
    assert max(run.output_tokens.values) <= 1024


def test_mlperf_offline_within_tolerance():
    (r,) = validate_runs([MLPERF])
    assert r.within, r.error
    assert r.unit == "output tokens/s"


def test_known_misses_are_not_in_the_asserted_set():
    shipped = {p.name for p in runs_dir().glob("*.yaml")}
    misses = {p.name for p in MISSES.glob("*.yaml")}
    assert misses and not shipped & misses


def test_server_kind_finds_the_rate_at_the_bounds(tmp_path):
    """A shortened copy of the MLPerf Server run: the capacity is positive and below what
    the same replicas drain at maximum load (a queue at the bounds cannot beat Offline)."""
    rf = load_runs(MISSES / "mlperf-inference-llama2-70b-server.yaml")
    run = rf.runs[0].model_copy(update={"requests": 20000, "replications": 1})
    pred = KINDS["llm_server"].predict(run, str(MISSES / "x.yaml"))
    rps, detail = pred.value, pred.detail
    first = load_runs(MLPERF).runs[0]
    off = first.model_copy(update={"replica": first.replica.model_copy(
        update={"max_seqs": run.replica.max_seqs})})
    tokens_per_s = KINDS["llm_offline"].predict(off, str(MLPERF)).value
    assert 0 < rps < 1.15 * tokens_per_s / dist_mean(run.output_tokens)
    assert "req/s" in detail


def test_wide_ep_decode_kind_is_batch_over_tpot():
    """CloudMatrix384 Table 5 row: 96 sequences per NPU; with one draft token accepted 70 %
    of the time a step emits 1.7 tokens, TPOT = step / 1.7."""
    rf = load_runs(MISSES / "wide-ep-deepseek.yaml")
    run = next(r for r in rf.runs if r.id == "cloudmatrix-decode-4096-256")
    got = KINDS["llm_decode"].predict(run, str(MISSES / "wide-ep-deepseek.yaml")).value
    assert (run.replica.mtp_tokens, run.replica.mtp_acceptance) == (1, 0.7)
    rm = run.replica_model(str(MISSES / "x.yaml"), 1, 96 * 160, "decode")
    step = rm.decode_step_s(96 * 160, run.context_tokens)
    assert got == pytest.approx(96 / (step / 1.7), rel=1e-12)


def test_wide_ep_prefill_kind_is_tokens_over_the_iteration():
    rf = load_runs(MISSES / "wide-ep-deepseek.yaml")
    run = next(r for r in rf.runs if r.kind == "llm_prefill")
    got = KINDS["llm_prefill"].predict(run, str(MISSES / "x.yaml")).value
    dev = run.replica.tp * run.replica.dp
    T = run.tokens_per_device * dev
    rm = run.replica_model(str(MISSES / "x.yaml"), T, 1, "prefill")
    n = T / run.prompt_tokens
    step = float(rm.iteration_s(T, 0.0, n * run.prompt_tokens * (run.prompt_tokens + 1) / 2,
                                n))
    assert got == pytest.approx(T / step / dev, rel=1e-12)


def test_every_known_miss_predicts():
    """The misses stay runnable: ``accelsim validate-runs configs/runs/misses/...``."""
    results = validate_runs([MISSES / "wide-ep-deepseek.yaml"])
    assert len(results) == 9
    assert all(r.predicted > 0 for r in results)


@pytest.mark.parametrize("path", [
    CONFIGS / "runs" / "mlperf-inference-llama2-70b.yaml",
    CONFIGS / "runs" / "mlperf-inference-llama2-70b-supermicro.yaml",
    CONFIGS / "runs" / "mlperf-inference-nvidia.yaml",
    MISSES / "mlperf-inference-llama2-70b-server.yaml",
])
def test_tensorrt_llm_mlperf_rows_take_the_harness_kv_fraction(path):
    """NVIDIA's MLPerf harness (and the submitters running it) size the KV cache with the
    C++ executor's free_gpu_memory_fraction, kvcache_free_gpu_mem_frac in each
    submission's configs: a share of the memory the engine leaves free, not of the device.
    Every row's replica reads the fraction its file quotes, as memory_share_of: free."""
    import re

    text = path.read_text(encoding="utf-8")
    quoted = {float(x) for x in re.findall(r"kvcache_free_gpu_mem_frac (0\.\d+)", text)}
    assert quoted == {0.9}
    for run in load_runs(path).runs:
        rep = run.replica
        assert (rep.memory_share_of, rep.memory_utilization) == ("free", 0.9), run.id

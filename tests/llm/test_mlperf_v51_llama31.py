"""MLPerf Inference v5.1 Llama 3.1 rows (held out,
configs/runs/heldout/mlperf-inference-v51-llama31.yaml, and its misses file while it has
rows): each row cites the results snapshot's commit and its own log and engine config,
carries its log's lengths and run length, and the selection is the one its header states."""

import re

import pytest

from accelsim.runs import load_runs
from accelsim.traffic import dist_mean
from tests.conftest import CONFIGS

HELDOUT = CONFIGS / "runs" / "heldout"
FILES = [p for p in (HELDOUT / "mlperf-inference-v51-llama31.yaml",
                     HELDOUT / "misses" / "mlperf-inference-v51-llama31.yaml") if p.exists()]
RUNS = [run for path in FILES for run in load_runs(path).runs]


def test_the_selection_is_the_headers():
    """8B Offline and Server: HPE and QCT (8x H200), Red Hat (1x H100); 405B Server:
    Dell/Broadcom, Nebius, QCT (8x H200, TP8); 405B Offline: the same three (TP4 x PP2, the
    second rule in the header). Nothing else: B200 (FP4) and the rest are out."""
    ids = {r.id for r in RUNS}
    assert len(ids) == len(RUNS) == 12
    assert {i for i in ids if "-8b-" in i} == {
        f"mlperf51-llama31-8b-{s}-{d}-{m}" for s, d in (("hpe", "h200"), ("qct", "h200"),
                                                       ("redhat", "h100"))
        for m in ("offline", "server")}
    assert {i for i in ids if "-405b-" in i} == {
        f"mlperf51-llama31-405b-{s}-h200-{m}" for s in ("dell-broadcom", "nebius", "qct")
        for m in ("server", "offline")}
    for r in RUNS:
        offline_405b = "-405b-" in r.id and r.kind == "llm_offline"
        assert (r.replica.tp, r.replica.pp) == ((4, 2) if offline_405b else (r.replica.tp, 1))
    assert not any(r.replica.weights not in ("bf16", "fp8") for r in RUNS)


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r.id)
def test_each_row_cites_commit_log_and_engine(run):
    assert "mlcommons/inference_results_v5.1 at 965182b0" in run.source
    log = r"closed/\S+/results/\S+/(Offline|Server)/performance/run_1/mlperf_log_\w+\.txt"
    assert re.search(log, run.source)
    assert re.search(r"closed/\S+/(configs/\S+\.py|code/llama3\.1-8b/README\.md)", run.source)


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r.id)
def test_lengths_and_run_length_are_the_logs(run):
    """8B: 128 generated tokens (max_output_len 128, no stop tokens) over the CNN/DailyMail
    prompts (mean 870.7); 405B: the reference shape at the log's generated mean over the
    8,313 prompts (mean 9,428.6); requests: LoadGen's query or sample count."""
    if run.replica.model == "llama3-8b":
        assert run.output_tokens == 128
        assert dist_mean(run.input_tokens) == pytest.approx(870.7, abs=0.5)
    else:
        tokens = float(re.search(r"; ([\d.]+) generated tokens per sample", run.source).group(1))
        assert dist_mean(run.output_tokens) == pytest.approx(tokens, rel=0.005)
        assert dist_mean(run.input_tokens) == pytest.approx(9428.6, abs=0.5)
        samples = re.search(r"([\d,]+) samples in", run.source)
        assert run.requests == (8313 if samples is None
                                else int(samples.group(1).replace(",", "")))
    if run.kind == "llm_server":
        count = int(re.search(r"([\d,]+) queries\)", run.source).group(1).replace(",", ""))
        assert run.requests == count


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r.id)
def test_fused_gemm_allreduce_follows_the_engine_config(run):
    """Every engine whose config's trtllm_build_flags hold gemm_allreduce_plugin (the 405B
    ones: Server TP8, Offline TP4 x PP2) runs the fused row-parallel GEMM + all-reduce, and no
    other row does."""
    assert run.replica.gemm_allreduce == ("gemm_allreduce_plugin float16" in run.source)
    if run.replica.gemm_allreduce:
        assert run.replica.tp * run.replica.pp == 8


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r.id)
def test_fp8_context_attention_follows_the_engine_config(run):
    """Every engine whose config's trtllm_build_flags enable use_fp8_context_fmha (all the
    TensorRT-LLM ones here) prices its prompt attention at the FP8 rate; the vLLM rows do not."""
    assert run.replica.fp8_context_attention == ("use_fp8_context_fmha enable" in run.source)
    assert run.replica.fp8_context_attention == ("TensorRT-LLM" in run.source)

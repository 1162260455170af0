"""LLM server mode against published Server/Offline pairs (MLPerf Inference v4.1, NVIDIA
DGX H100, TensorRT-LLM; run files cite the logs): given the Offline row, does the
scheduler predict the Server row?

Offline drains every request queued at once, so its makespan is linear in the iteration
costs: scaling all of them by ``k`` scales the Offline throughput by ``1 / k`` exactly. The
test takes ``k = predicted / published`` Offline (the step error, which is the kernel
model's), scales the replica by it and searches the Server capacity under the p99 TTFT
and TPOT bounds: what remains is the server mode's own error (queueing at ``max_seqs``, the
TPOT bound on the batch-versus-rate knee, Poisson arrivals, prefills stalling decodes)."""

from dataclasses import replace
from typing import Any

import pytest

from accelsim.llm.sim import capacity, models, simulate
from accelsim.runs import load_runs
from tests.conftest import CONFIGS

RUNS = CONFIGS / "runs"
MISSES = RUNS / "misses"

# (offline file, offline index, server file, server index)
LLAMA_H100 = (RUNS / "mlperf-inference-llama2-70b.yaml", 0,
              MISSES / "mlperf-inference-llama2-70b-server.yaml", 0)
MIXTRAL_H100 = (MISSES / "mlperf-inference-mixtral-8x7b.yaml", 0,
                MISSES / "mlperf-inference-mixtral-8x7b.yaml", 1)
SMC = RUNS / "mlperf-inference-llama2-70b-supermicro.yaml"
LLAMA_H100_SMC = (SMC, 0, SMC, 1)

# Server error given Offline: within this (MLPerf submitters run a little below the rate
# at which a bound would break: the pairs' published p99 TPOTs are 123-175 ms of 200).
TOLERANCE = 0.10


def _scaled(rm: Any, k: float) -> Any:
    return replace(rm, linear_s=rm.linear_s * k, c_kv_read=rm.c_kv_read * k,
                   c_kv_flop=rm.c_kv_flop * k, c_pf=rm.c_pf * k, c_head=rm.c_head * k)


def _offline(path: Any, i: int, requests: int | None = None) -> tuple[Any, float, float]:
    """The Offline run's job, its predicted and published output tokens/s."""
    run = load_runs(path).runs[i]
    if requests is not None:
        run = run.model_copy(update={"requests": requests})
    job = run.job(str(path), 1e6)
    return job, simulate(job, str(path)).metrics["output_tokens_per_s"], run.published.value


def test_offline_time_is_linear_in_the_iteration_costs():
    """The premise: all costs x k -> Offline throughput / k (to the arrival spread)."""
    job, tps, _ = _offline(LLAMA_H100[0], 0, requests=4000)
    rms = [_scaled(rm, 1.3) for rm in models(job, str(LLAMA_H100[0]))]
    got = simulate(job, str(LLAMA_H100[0]), rms=rms).metrics["output_tokens_per_s"]
    assert got == pytest.approx(tps / 1.3, rel=2e-3)


def _server_given_offline(pair: tuple[Any, int, Any, int]) -> float:
    off_path, oi, srv_path, si = pair
    _, pred, pub = _offline(off_path, oi)
    k = pred / pub
    run = load_runs(srv_path).runs[si].model_copy(update={"requests": 60000,
                                                          "replications": 1})
    slo = {"ttft_ms": run.ttft_ms, "tpot_ms": run.tpot_ms, "attainment": run.percentile}
    job = run.job(str(srv_path), 1.0, slo, 1)
    rms = [_scaled(rm, k) for rm in models(job, str(srv_path))]
    got = capacity(job, str(srv_path), rms)["max_rps_at_slo"]
    return float(got / run.published.value - 1)


def test_mixtral_server_given_offline():
    """Mixtral-8x7B, eight TP1 FP8 engines: 348.37 samples/s published; +3.5 % at the full
    run's length."""
    err = _server_given_offline(MIXTRAL_H100)
    assert abs(err) <= TOLERANCE, err


def test_llama_h100_server_given_offline():
    """Llama-2-70B, four TP2 FP8 engines with NVIDIA's settings on Supermicro's 8x H100:
    82.37 samples/s published, the v4.1 Server result nearest the bounds on this hardware
    and software."""
    err = _server_given_offline(LLAMA_H100_SMC)
    assert abs(err) <= TOLERANCE, err


@pytest.mark.xfail(strict=True, reason="known miss: this pair's Server engine takes ~13 % "
                   "more time per sequence than its Offline engine (Little's law on the "
                   "logs), unlike HPE's and Supermicro's runs of the same hardware and "
                   "settings (configs/runs/misses/mlperf-inference-llama2-70b-server.yaml)")
def test_llama_nvidia_h100_server_given_offline():
    """NVIDIA's own DGX H100 pair: 75.10 samples/s published; +13 % given Offline."""
    err = _server_given_offline(LLAMA_H100)
    assert abs(err) <= TOLERANCE, err

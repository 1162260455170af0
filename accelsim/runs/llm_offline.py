"""``llm_offline`` -- LLM serving at maximum load (trtllm-bench, MLPerf Offline): every
request queued at once on the replicas, output tokens over the makespan
(:func:`accelsim.llm.sim.simulate`); lengths fixed or a dataset's histogram."""

from __future__ import annotations

from typing import Literal

from accelsim.runs.base import Prediction, RunKind, register
from accelsim.runs.llm import LLMLoadRun, llm_files


class LLMOfflineRun(LLMLoadRun):
    kind: Literal["llm_offline"]
    """LLM serving under maximum load: every request queued at once (trtllm-bench
    throughput, MLPerf Offline); total output tokens per second of the replicas."""
    metric: Literal["output_tokens_per_s"]
    """Output tokens per second of all the replicas."""


def predict(run: LLMOfflineRun, file: str) -> Prediction:
    """Every request arrives within microseconds (rate 1e6/s) and the replicas drain them."""
    from accelsim.llm.sim import simulate

    r = simulate(run.job(file, 1e6), file)
    rep = r.replicas[0]
    return Prediction(float(r.metrics["output_tokens_per_s"]),
                      f"KV {rep['kv_tokens']:,} tokens, {rep['iterations']:,} iterations, "
                      f"KV use {rep['kv_utilization']:.0%}; TTFT mean "
                      f"{r.metrics['ttft_mean_ms']:.0f} ms, TPOT mean "
                      f"{r.metrics['tpot_mean_ms']:.1f} ms")


register(RunKind("llm_offline", LLMOfflineRun, predict, llm_files))

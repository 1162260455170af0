"""``llm_decode`` -- one decode iteration of a wide replica (DP attention, expert
parallelism, multi-token prediction) at a fixed batch and KV length, as the DeepSeek, SGLang
and CloudMatrix papers tabulate it: output tokens/s per device."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from accelsim.runs.base import Prediction, RunKind, register
from accelsim.runs.llm import LLMStepRun, llm_files


class LLMDecodeRun(LLMStepRun):
    kind: Literal["llm_decode"]
    """Decode throughput at a fixed batch and KV length: batch x tokens per step / step
    time (:meth:`accelsim.llm.perf.ReplicaModel.decode_step_s`)."""
    metric: Literal["output_tokens_per_s_per_device"]
    """Output tokens per second per device."""
    batch_per_device: int = Field(ge=1, le=1_000_000)
    """Sequences decoding per device."""
    context_tokens: int = Field(ge=1, le=10_000_000)
    """KV-cache length of every sequence."""


def predict(run: LLMDecodeRun, file: str) -> Prediction:
    """batch x (1 + a + ... + a^d) / step, the step at batch_per_device x devices sequences
    of ``context_tokens`` with the replica's d drafts each (the scheduler's iteration)."""
    devices = run.replica.tp * run.replica.dp
    batch = run.batch_per_device * devices
    rm = run.replica_model(file, 1, batch, "decode")
    step = rm.decode_step_s(batch, run.context_tokens)
    tpot = step / rm.tokens_per_step
    return Prediction(batch / tpot / devices, f"step {step * 1e3:.1f} ms, TPOT "
                      f"{tpot * 1e3:.1f} ms, {rm.tokens_per_step:.2f} tokens per step")


register(RunKind("llm_decode", LLMDecodeRun, predict, llm_files))

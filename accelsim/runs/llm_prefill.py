"""``llm_prefill`` -- one prefill iteration of a wide replica holding ``tokens_per_device``
prompt tokens per device in prompts of ``prompt_tokens``: prompt tokens/s per device."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from accelsim.runs.base import Prediction, RunKind, register
from accelsim.runs.llm import LLMStepRun, llm_files


class LLMPrefillRun(LLMStepRun):
    kind: Literal["llm_prefill"]
    """Prefill throughput: one iteration of ``tokens_per_device`` prompt tokens per device,
    prompts of ``prompt_tokens`` each; prompt tokens per second per device."""
    metric: Literal["input_tokens_per_s_per_device"]
    """Prompt tokens per second per device."""
    tokens_per_device: int = Field(ge=1, le=10_000_000)
    """Prompt tokens per device in the iteration."""
    prompt_tokens: int = Field(ge=1, le=10_000_000)
    """Length of each prompt."""


def predict(run: LLMPrefillRun, file: str) -> Prediction:
    """Prompt tokens over one iteration holding tokens_per_device x devices of them."""
    devices = run.replica.tp * run.replica.dp
    tokens = run.tokens_per_device * devices
    prompts = tokens / run.prompt_tokens
    rm = run.replica_model(file, tokens, 1, "prefill")
    pairs = prompts * run.prompt_tokens * (run.prompt_tokens + 1) / 2
    step = float(rm.iteration_s(tokens, 0.0, pairs, prompts))
    return Prediction(tokens / step / devices, f"iteration {step:.2f} s for {prompts:.0f} "
                      "prompts")


register(RunKind("llm_prefill", LLMPrefillRun, predict, llm_files))

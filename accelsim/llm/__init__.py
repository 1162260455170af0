"""LLM inference serving (chatbots): per-iteration cost of a decoder on a device, a
continuous-batching scheduler with a paged KV cache, and TTFT/TPOT at a rate or at an SLO."""

from typing import TYPE_CHECKING

from accelsim.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    "LLMJob": "accelsim.llm.job", "load_llm_job": "accelsim.llm.load",
    "ReplicaModel": "accelsim.llm.perf", "replica_model": "accelsim.llm.perf",
    "simulate": "accelsim.llm.sim", "capacity": "accelsim.llm.sim",
})

if TYPE_CHECKING:
    from accelsim.llm.job import LLMJob
    from accelsim.llm.load import load_llm_job
    from accelsim.llm.perf import ReplicaModel, replica_model
    from accelsim.llm.sim import capacity, simulate

__all__ = ["LLMJob", "ReplicaModel", "capacity", "load_llm_job", "replica_model", "simulate"]

"""The transformer both workloads run (:mod:`.model`: its schema and loader) and what
its shape implies (:mod:`.params`: parameter counts), shared by training and LLM serving."""

from typing import TYPE_CHECKING

from accelsim.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    **dict.fromkeys(["MLA", "MoE", "TransformerModel", "load_model"],
                    "accelsim.transformer.model"),
})

if TYPE_CHECKING:
    from accelsim.transformer.model import MLA, MoE, TransformerModel, load_model

__all__ = ["MLA", "MoE", "TransformerModel", "load_model"]

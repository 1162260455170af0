"""Transformer training: FLOPs, memory, communication, pipeline schedule, layout search."""

from typing import TYPE_CHECKING

from accelsim.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    **dict.fromkeys(["Parallelism", "TrainJob", "load_job"], "accelsim.training.job"),
    **dict.fromkeys(["MoE", "TransformerModel"], "accelsim.transformer.model"),
    **dict.fromkeys(["TrainResult", "estimate", "estimate_frame"], "accelsim.training.perf"),
    "search_layouts": "accelsim.training.search",
})

if TYPE_CHECKING:
    from accelsim.training.job import Parallelism, TrainJob, load_job
    from accelsim.training.perf import TrainResult, estimate, estimate_frame
    from accelsim.training.search import search_layouts
    from accelsim.transformer.model import MoE, TransformerModel

__all__ = [
    "MoE", "Parallelism", "TrainJob", "TrainResult", "TransformerModel", "estimate",
    "estimate_frame", "load_job", "search_layouts",
]

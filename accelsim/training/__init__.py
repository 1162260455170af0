"""Transformer training: FLOPs, memory, communication, pipeline schedule, layout search."""

from accelsim.training.job import MoE, Parallelism, TrainJob, TransformerModel, load_job
from accelsim.training.perf import TrainResult, estimate, estimate_frame
from accelsim.training.search import search_layouts

__all__ = [
    "MoE", "Parallelism", "TrainJob", "TrainResult", "TransformerModel", "estimate",
    "estimate_frame", "load_job", "search_layouts",
]

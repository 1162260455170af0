"""Recommendation-inference serving: model cost on a device and a discrete-event simulator."""

from typing import TYPE_CHECKING

from accelsim.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    "ServeJob": "accelsim.serving.job", "load_serve_job": "accelsim.serving.load",
    "RecModel": "accelsim.serving.rec_model", "load_model": "accelsim.serving.rec_model",
    "max_throughput": "accelsim.serving.recsys", "service_time": "accelsim.serving.recsys",
    "ServeResult": "accelsim.serving.sim", "capacity": "accelsim.serving.sim",
    "simulate": "accelsim.serving.sim",
})

if TYPE_CHECKING:
    from accelsim.serving.job import ServeJob
    from accelsim.serving.load import load_serve_job
    from accelsim.serving.rec_model import RecModel, load_model
    from accelsim.serving.recsys import max_throughput, service_time
    from accelsim.serving.sim import ServeResult, capacity, simulate

__all__ = ["RecModel", "ServeJob", "ServeResult", "capacity", "load_model", "load_serve_job",
           "max_throughput", "service_time", "simulate"]

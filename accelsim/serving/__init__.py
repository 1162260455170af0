"""Recommendation-inference serving: model cost on a device and a discrete-event simulator."""

from accelsim.serving.job import ServeJob, load_serve_job
from accelsim.serving.recsys import RecModel, load_model, max_throughput, service_time
from accelsim.serving.sim import ServeResult, capacity, simulate

__all__ = ["RecModel", "ServeJob", "ServeResult", "capacity", "load_model", "load_serve_job",
           "max_throughput", "service_time", "simulate"]

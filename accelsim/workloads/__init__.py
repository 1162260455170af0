"""Workloads as plug-ins over device specs: one module per kind, one registry.

Shipped kinds: ``training`` (:mod:`.training`), ``recsys_serving`` (:mod:`.recsys`,
alias ``serving``) and ``llm_serving`` (:mod:`.llm`, alias ``chatbot``). A new kind
subclasses :class:`Workload` and is decorated with :func:`register`; scenarios,
``compare``, ``optimize`` and sweeps then accept it.
"""

from accelsim.workloads import llm, recsys, training
from accelsim.workloads.base import (
    DeviceEval,
    EvalContext,
    Workload,
    WorkloadSpec,
    get,
    kinds,
    of,
    parse,
    register,
    unregister,
)

__all__ = ["DeviceEval", "EvalContext", "Workload", "WorkloadSpec", "get", "kinds", "llm", "of",
           "parse", "recsys", "register", "training", "unregister"]

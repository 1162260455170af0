"""Workloads as plug-ins over device specs: one module per kind, one registry.

Shipped kinds: ``training`` (:mod:`.training`) and ``recsys_serving`` (:mod:`.recsys`,
alias ``serving``). A new kind subclasses :class:`Workload` and is decorated with
:func:`register`; scenarios, ``compare``, ``optimize`` and sweeps then accept it.
"""

from accelsim.workloads import recsys, training
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

__all__ = ["DeviceEval", "EvalContext", "Workload", "WorkloadSpec", "get", "kinds", "of",
           "parse", "recsys", "register", "training", "unregister"]

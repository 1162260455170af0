"""Array-or-scalar operations: numpy's for arrays, plain Python's for one configuration.

The physics (:mod:`accelsim.training.perf`, :mod:`accelsim.collectives`,
:mod:`accelsim.roofline`) is written once, over "values" that are either numpy arrays (the
batch API: thousands of configurations per call) or Python floats (one job through
``estimate()``). numpy's per-call overhead (about a microsecond per ufunc on a one-element
array) would otherwise make a single estimate cost hundreds of microseconds; on floats the
same formulas run at interpreter speed. Each function below returns what numpy would,
element for element, when no argument is an array.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_ARR = np.ndarray
_F64 = np.dtype(float)


def asarray(x: Any, dtype: Any = float) -> Any:
    """An array stays an array (as ``dtype``); a number becomes a Python float."""
    t = type(x)
    if t is float:
        return x
    if t is _ARR and x.dtype is _F64 and dtype is float:
        return x  # what np.asarray returns for it: the array itself
    if isinstance(x, _ARR | list | tuple):
        return np.asarray(x, dtype=dtype)
    return float(x)


def where(c: Any, a: Any, b: Any) -> Any:
    """With a scalar condition, the chosen branch itself (numpy would broadcast it to the
    other's shape; element for element the same)."""
    if isinstance(c, _ARR):
        return np.where(c, a, b)
    return a if c else b


def never(c: Any) -> bool:
    """Whether ``c`` is a false scalar (a switch no row of the call turns on): then
    ``where(c, x, y)`` is ``y``, and ``x`` need not be computed."""
    return not isinstance(c, _ARR) and not c


def maximum(a: Any, b: Any) -> Any:
    if type(a) is float and type(b) is float:
        return a if a >= b else b
    if isinstance(a, _ARR) or isinstance(b, _ARR):
        return np.maximum(a, b)
    return a if a >= b else b


def minimum(a: Any, b: Any) -> Any:
    if type(a) is float and type(b) is float:
        return a if a <= b else b
    if isinstance(a, _ARR) or isinstance(b, _ARR):
        return np.minimum(a, b)
    return a if a <= b else b


def clip(x: Any, lo: Any, hi: Any) -> Any:
    return minimum(maximum(x, lo), hi)


def floor(x: Any) -> Any:
    return np.floor(x) if isinstance(x, _ARR) else float(math.floor(x))


def ceil(x: Any) -> Any:
    return np.ceil(x) if isinstance(x, _ARR) else float(math.ceil(x))


def log2(x: Any) -> Any:
    return np.log2(x) if isinstance(x, _ARR) else math.log2(x)


def select(conds: list[Any], choices: list[Any], default: Any) -> Any:
    if any(isinstance(v, _ARR) for v in [*conds, *choices, default]):
        # np.select's answer (the first true condition's choice) as nested np.where: the
        # same elements, without np.select's per-call checks
        out = np.where(conds[-1], choices[-1], default)
        for c, v in zip(conds[-2::-1], choices[-2::-1], strict=True):
            out = np.where(c, v, out)
        return out
    for c, v in zip(conds, choices, strict=True):
        if c:
            return v
    return default

"""Every kind of accelsim file, registered by the module of its name here (a new kind is one
new module): ``device``, ``train-model``, ``rec-model``, ``train-job``, ``serve-job``,
``llm-job``, ``scenario``, ``runs`` (and ``sweep``, registered by :mod:`accelsim.sweep`)."""

from __future__ import annotations

import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")

from accelsim.kinds.base import (  # noqa: E402
    KINDS,
    Kind,
    Sweepable,
    detect,
    get,
    load_file,
    register,
    require,
)

__all__ = ["KINDS", "Kind", "Sweepable", "detect", "get", "load_file", "register", "require"]

"""The ``accelsim`` command line: parse, call the Python API, print. One module per concern
(:mod:`.devices`, :mod:`.check`, :mod:`.train`, :mod:`.serve`, :mod:`.llm`, :mod:`.fleet`,
:mod:`.sweep`), each registering its commands on the one app of :mod:`.common`; every module
here is imported, so a new command is one new module."""

from __future__ import annotations

import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("common", "main"):
        importlib.import_module(f"{__name__}.{_m.name}")

from accelsim.cli.common import app  # noqa: E402
from accelsim.cli.main import main  # noqa: E402

__all__ = ["app", "main"]

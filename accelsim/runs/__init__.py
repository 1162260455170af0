"""Published runs as cited data files, predicted by the same models a planner uses.

A run file (``configs/runs/*.yaml``) names a tolerance and its runs; each run gives its
source (paper, results log), the published figure and what the model needs to predict it.
:func:`validate_runs` predicts every run and reports the relative error
``(predicted - published) / published``; ``accelsim validate-runs`` prints the table and exits
with code 1 when any run misses by more than its file's tolerance.

Each kind of run is one module of this package, its schema beside its prediction, registered
with :func:`accelsim.runs.base.register` (every module here is imported, so a new kind is one
new module): ``recsys_offline``, ``recsys_server``, ``training``, ``llm_offline``,
``llm_server``, ``llm_decode``, ``llm_prefill``.

Run files in ``configs/runs/`` are asserted (a test runs them all). Published runs the model
misses by more than its file's tolerance live in ``configs/runs/misses/`` with the error and
its analysis in the file and the docs: runnable by naming them, not asserted.

Held-out run files in ``configs/runs/heldout/`` (and their misses in ``heldout/misses/``) are
never used for calibration; ``accelsim validate-runs --heldout`` predicts them and reports
their error per category and the trend of each size sweep (:mod:`accelsim.runs.sweeps`).
"""

from __future__ import annotations

import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("file", "calibration"):  # calibration: imported when asked for
        importlib.import_module(f"{__name__}.{_m.name}")

from accelsim.runs.base import KINDS, Prediction, RunKind, register  # noqa: E402
from accelsim.runs.file import (  # noqa: E402
    RunFile,
    RunResult,
    check,
    load_runs,
    runs_dir,
    validate_runs,
)
from accelsim.runs.training import eq3_flops  # noqa: E402

__all__ = ["KINDS", "Prediction", "RunFile", "RunKind", "RunResult", "check", "eq3_flops",
           "load_runs", "register", "runs_dir", "validate_runs"]

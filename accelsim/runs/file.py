"""A run file (``configs/runs/*.yaml``): a tolerance and its published runs, each of a
registered kind; loading checks every file the runs name; :func:`validate_runs` predicts them.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from accelsim.config import Strict, read_yaml, validate
from accelsim.errors import AccelsimError, Problem
from accelsim.runs.base import KINDS, RunBase, check_files

# Any registered kind's run, told apart by its ``kind`` (a type checker sees their base).
if TYPE_CHECKING:
    Run = RunBase
else:
    Run = Annotated[typing.Union[tuple(k.model for k in KINDS.values())],  # noqa: UP007
                    Field(discriminator="kind")]


class RunFile(Strict):
    name: str = Field(min_length=1)
    """Name of the set of runs."""
    description: str = ""
    """Free text."""
    tolerance: float = Field(gt=0, le=1)
    """Largest relative error |predicted - published| / published accepted."""
    source_group: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    """The source this file belongs to for leave-one-source-out validation
    (``validate-runs --cross-validate``): files naming the same group (one measurement
    campaign split over files) are held out together; not given: the file is its own source."""
    shared: dict[str, Any] = Field(default_factory=dict)
    """Blocks several runs share through YAML anchors (a dataset's length histogram);
    read only where a run refers to them."""
    runs: list[Run] = Field(min_length=1)
    """The published runs."""


def check(rf: RunFile, file: str) -> None:
    """Run ids are unique; every run's model and device exist."""
    probs: list[Problem] = []
    ids = [r.id for r in rf.runs]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        probs.append(Problem(file, "runs", f"run ids must be unique; repeated: "
                             f"{', '.join(dup)}"))
    for i, r in enumerate(rf.runs):
        probs += check_files(KINDS[r.kind], r, file, f"runs[{i}]")
    if probs:
        raise AccelsimError(probs)


CATEGORIES = {"training": "training", "llm": "LLM serving", "recsys": "recsys"}
"""Run kind prefix -> the category reported (``llm_offline`` -> LLM serving)."""


@dataclass(frozen=True)
class RunResult:
    file: str
    id: str
    kind: str
    published: float
    predicted: float
    unit: str
    tolerance: float
    detail: str
    source: str
    sweep: str | None = None

    @property
    def category(self) -> str:
        """training, LLM serving or recsys (the run kind's prefix)."""
        return CATEGORIES.get(self.kind.split("_")[0], self.kind)

    @property
    def error(self) -> float:
        return (self.predicted - self.published) / self.published

    @property
    def within(self) -> bool:
        return abs(self.error) <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "id": self.id, "kind": self.kind,
                "published": self.published, "predicted": self.predicted, "unit": self.unit,
                "error": self.error, "tolerance": self.tolerance, "within": self.within,
                "detail": self.detail, "source": self.source,
                **({"sweep": self.sweep} if self.sweep else {})}


def runs_dir() -> Path:
    from accelsim import refs

    return refs.configs_dir() / "runs"


def heldout_dir() -> Path:
    """``configs/runs/heldout``: published runs never used for calibration (no calibrated
    number names them in ``fitted_on``, and :mod:`accelsim.runs.calibration` reads only
    ``configs/runs/*.yaml``), predicted by ``validate-runs --heldout``; rows missing beyond
    tolerance live in its ``misses/``."""
    return runs_dir() / "heldout"


def is_heldout(path: str | Path) -> bool:
    """Whether ``path`` lies under :func:`heldout_dir`."""
    return Path(path).resolve().is_relative_to(heldout_dir().resolve())


def load_runs(path: str | Path) -> RunFile:
    data = read_yaml(path)
    if "runs" not in data:
        raise AccelsimError.single(str(path), "runs", "required: a run file has a 'runs' "
                                   "list (configs/runs/)")
    rf = validate(RunFile, data, path)
    check(rf, str(path))
    return rf


def validate_runs(paths: list[str | Path] | None = None,
                  heldout: bool = False) -> list[RunResult]:
    """Predict every run of every file (default: all shipped run files; ``heldout``: the
    held-out ones, ``configs/runs/heldout/*.yaml``)."""
    where = heldout_dir() if heldout else runs_dir()
    files = [Path(p) for p in paths] if paths else sorted(where.glob("*.yaml"))
    if not files:
        raise AccelsimError.single(str(where), "", "no run files (*.yaml) here")
    out: list[RunResult] = []
    for f in files:
        rf = load_runs(f)
        for i, run in enumerate(rf.runs):
            at = f"runs[{i}]"
            try:
                pred = KINDS[run.kind].predict(run, str(f))
            except AccelsimError as e:
                raise AccelsimError([Problem(str(f), f"{at}.{p.field}".rstrip("."),
                                             p.message) for p in e.problems]) from None
            out.append(RunResult(str(f), run.id, run.kind, run.published.value, pred.value,
                                 run.published.unit, rf.tolerance, pred.detail, run.source,
                                 run.sweep))
    return out


def summarize(results: list[RunResult]) -> dict[str, dict[str, Any]]:
    """Per category (training, LLM serving, recsys) and ``all``: rows, rows within their
    file's tolerance, mean and max |error| and the run with the max."""
    cats: dict[str, list[RunResult]] = {}
    for r in results:
        cats.setdefault(r.category, []).append(r)
    order = [c for c in CATEGORIES.values() if c in cats] + sorted(set(cats) -
                                                                   set(CATEGORIES.values()))
    out = {}
    for c, rs in [*((c, cats[c]) for c in order), ("all", results)]:
        if not rs:
            continue
        worst = max(rs, key=lambda r: abs(r.error))
        out[c] = {"rows": len(rs), "within": sum(r.within for r in rs),
                  "mean_abs_error": sum(abs(r.error) for r in rs) / len(rs),
                  "max_abs_error": abs(worst.error), "worst": worst.id}
    return out

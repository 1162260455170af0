"""What every published run has (a source, a figure), what a prediction returns, and the
registry of run kinds: each kind is one module (its schema beside its prediction) that
registers itself with :func:`register`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from accelsim.config import Strict
from accelsim.errors import AccelsimError, Problem


class Published(Strict):
    value: float = Field(gt=0)
    """The published figure."""
    unit: str = Field(min_length=1)
    """Its unit, as published (e.g. samples/s)."""


class RunBase(Strict):
    """The fields of every run."""

    kind: str
    """The run's kind (each kind's module fixes it to its name)."""
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    """Short unique name of the run."""
    source: str = Field(min_length=1)
    """Where the published figure comes from (paper table, results log path and repository)."""
    published: Published
    """The published figure and its unit."""
    note: str = ""
    """What the run's settings come from, and what is assumed."""
    sweep: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    """Name of the size sweep the run belongs to: runs of one source that change only the
    model's size on one machine, whose utilisation-versus-size trend is checked
    (:mod:`accelsim.runs.sweeps`); not given: in no sweep."""


@dataclass(frozen=True)
class Prediction:
    """A run predicted: the figure in the published unit, and how it was reached."""

    value: float
    detail: str


Loader = Callable[..., Any]


@dataclass(frozen=True)
class RunKind:
    """A kind of run: its schema, its prediction and the files it names (``(field, loader)``
    pairs: the loader resolves the field's reference, raising a located error)."""

    name: str
    model: type[RunBase]
    predict: Callable[[Any, str], Prediction]
    files: Callable[[Any], list[tuple[str, str, Loader]]] = field(default=lambda run: [])


KINDS: dict[str, RunKind] = {}


def register(kind: RunKind) -> RunKind:
    KINDS[kind.name] = kind
    return kind


def check_files(kind: RunKind, run: Any, file: str, where: str) -> list[Problem]:
    """Every file a run names exists and parses (its device, its model)."""
    probs: list[Problem] = []
    for fld, ref, load in kind.files(run):
        try:
            load(ref, relative_to=file, where=file, field=f"{where}.{fld}")
        except AccelsimError as e:
            probs += e.problems
    return probs

"""User-facing errors: one line per problem, ``FILE: path.to.field: what was expected``.

Every error a user can cause (a broken YAML file, an unknown device, a layout
that does not divide, an unstable queue asked for a latency) is an
:class:`AccelsimError`. The CLI prints ``str(err)`` and exits with code 2;
nothing else ever reaches the user as a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem in one input: where it is and what was expected there."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class AccelsimError(Exception):
    """An error caused by the user's input; carries one or more :class:`Problem`."""

    def __init__(self, problems: Iterable[Problem] | Problem) -> None:
        self.problems: list[Problem] = (
            [problems] if isinstance(problems, Problem) else list(problems)
        )
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple[type[AccelsimError], tuple[list[Problem]]]:
        # keep the problems when raised in a worker process (process pool, Dask)
        return (type(self), (self.problems,))

    @classmethod
    def single(cls, file: str, field: str, message: str) -> AccelsimError:
        return cls(Problem(str(file), field, message))

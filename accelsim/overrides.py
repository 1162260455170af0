"""Numbers of a profile overridden within a block, files untouched: how a calibration refit
(``validate-runs --refit``, ``--cross-validate``) predicts with another value. One
:class:`Overrides` per profile kind (devices, software stacks); :func:`apply` sets the values
on a parsed profile, each checked against its field's admissible interval."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from accelsim.errors import AccelsimError

Values = tuple[tuple[str, str, float], ...]
"""(profile name, 'section.key', value) triples, sorted: hashable, a cache key."""

P = TypeVar("P")


class Overrides:
    """The values in force for one profile kind (a context variable)."""

    def __init__(self, kind: str) -> None:
        self._var: ContextVar[Values] = ContextVar(f"accelsim_{kind}_overrides", default=())

    def current(self) -> Values:
        """Every value in force here (a cache key for what reads these profiles)."""
        return self._var.get()

    def of(self, name: str) -> Values:
        """The values in force for the profile ``name``."""
        return tuple(o for o in self._var.get() if o[0] == name)

    @contextmanager
    def set(self, values: Mapping[str, Mapping[str, float]]) -> Iterator[None]:
        """Within the block, ``{name: {'section.key': value}}`` is in force. Blocks nest: the
        inner one's values win."""
        merged = {(n, f): v for n, f, v in self._var.get()}
        for name, fields in values.items():
            for fld, v in fields.items():
                merged[(name, fld)] = float(v)
        token = self._var.set(tuple(sorted((n, f, v) for (n, f), v in merged.items())))
        try:
            yield
        finally:
            self._var.reset(token)


def apply(profile: P, values: Values, shown: str) -> P:
    """``profile`` (a pydantic model with ``quantities()``: ``{'section.key': Quantity}``)
    with ``values`` set. An overridden number keeps its source and drops its range; an
    unknown number or one outside its field's admissible interval is a located error."""
    qs = profile.quantities()  # type: ignore[attr-defined]
    update: dict[str, Any] = {}
    for _, fld, v in values:
        if fld not in qs:
            raise AccelsimError.single(shown, fld, f"no such number to override; expected "
                                       f"one of {', '.join(sorted(qs))}")
        q = qs[fld]
        try:
            type(q).check_bounds(v)
        except ValueError as e:
            raise AccelsimError.single(shown, fld, f"override: {e}") from None
        sec, key = fld.split(".", 1)
        section = update.get(sec) or getattr(profile, sec)
        update[sec] = section.model_copy(update={key: q.model_copy(
            update={"value": v, "range": None})})
    return profile.model_copy(update=update)  # type: ignore[attr-defined]

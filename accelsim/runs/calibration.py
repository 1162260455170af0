"""Calibrated numbers, refit from their rows and cross-validated leaving one source out.

A *calibrated* number is a :class:`accelsim.devices.Quantity` whose ``fitted_on`` names the
published runs (``configs/runs``) it was fitted on. Every config kind that holds such numbers
registers a :class:`ParamKind` (:mod:`accelsim.runs.params`: devices and software stacks;
another kind registers its own with :func:`register_params`): how to list every number of
every profile, with an address ``<kind>:<profile>:<section.key>``
(``device:h100-sxm:efficiency.compute``), how to predict with other values (an override
context, files untouched), and which profiles a run uses.

Numbers of one field fitted on the same rows form one :class:`Group` sharing one value (the
Hopper compute efficiency: H100, H800 and H20 take the value fitted on Llama 3). A group is
fitted by minimising the mean |log(predicted / published)| over its rows, one dimension at a
time (``scipy.optimize.minimize_scalar``, bounded by the number's ``range``, else its field's
admissible interval); groups sharing rows are fitted in turn until none moves (coordinate
descent, at most :data:`SWEEPS` rounds).

Leave-one-source-out (:func:`cross_validate`): a *source* is one run file, or the files naming
the same ``source_group``. For each source, every group whose rows include rows of that source
is refit on its remaining rows only; the source's rows are then predicted with those values
(held out). A group left with no rows takes its **prior**: the value, in that fold, of the same
field on the nearest comparable profile outside the group (same vendor and hardware kind for a
device; nearest year, then name) that is not itself left without rows; with no such profile
the group keeps its stored value and its rows are reported as not held out (``prior: none``).
Sources no group was fitted on are predicted as in-sample: nothing of theirs went into a number.

Held-out runs (``configs/runs/heldout/``, ``validate-runs --heldout``) are never read here:
only ``configs/runs/*.yaml`` are loaded, and :func:`load_rows` refuses a held-out file given.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelsim.errors import AccelsimError, Problem
from accelsim.runs.base import KINDS
from accelsim.runs.file import CATEGORIES, is_heldout, load_runs, runs_dir
from accelsim.runs.params import (  # noqa: F401 re-exported: the registry is calibration's
    PARAM_KINDS,
    Param,
    ParamKind,
    all_params,
    calibrated,
    register_params,
)

SWEEPS = 4
"""Most coordinate-descent rounds when several groups share rows."""
XTOL = 1e-4
"""Absolute tolerance of each 1-D fit (efficiencies are quoted to two decimals)."""
STALE_TOLERANCE = 0.02
"""A stored value more than this relative distance from its refit is flagged stale (the stored
numbers are rounded to two significant decimals: 0.005 / 0.59 = 0.85 %)."""


@dataclass(frozen=True)
class Group:
    """Calibrated numbers of one field fitted on the same rows: one value for all."""

    members: tuple[Param, ...]
    primary: Param
    """The member whose profile the fitted rows use most (priors are measured from it)."""

    @property
    def key(self) -> str:
        p = self.primary
        others = [m.name for m in self.members if m is not p]
        return p.address + (f" (with {', '.join(others)})" if others else "")

    @property
    def value(self) -> float:
        return self.primary.value

    @property
    def fitted_on(self) -> tuple[str, ...]:
        return self.primary.fitted_on

    @property
    def against(self) -> dict[str, str]:
        """Row id -> reference row id (``fitted_against``)."""
        return dict(self.primary.against)

    @property
    def low(self) -> float:
        return max(m.low for m in self.members)

    @property
    def high(self) -> float:
        return min(m.high for m in self.members)

    def overrides(self, value: float) -> dict[str, float]:
        return {m.address: value for m in self.members}


# ------------------------------------------------------------------------------ rows


@dataclass(frozen=True)
class Row:
    """One published run, where it comes from and which profiles it uses."""

    file: str
    source: str
    id: str
    kind: str
    published: float
    tolerance: float
    run: Any = field(repr=False, compare=False)
    uses: frozenset[str] = frozenset()
    """Prefixes ``<kind>:<profile>:`` of the numbers its prediction reads."""

    @property
    def category(self) -> str:
        return CATEGORIES.get(self.kind.split("_")[0], self.kind)


def load_rows(paths: Iterable[str | Path]) -> list[Row]:
    """The rows of run files; a held-out file (``configs/runs/heldout/``) is refused: no
    number is ever fitted, refit or cross-validated on a held-out run."""
    rows = []
    paths = list(paths)
    held = [str(p) for p in paths if is_heldout(p)]
    if held:
        raise AccelsimError([Problem(h, "", "a held-out run file is never used for "
                                     "calibration; expected a file outside configs/runs/heldout "
                                     "(predict it with validate-runs --heldout)") for h in held])
    for p in paths:
        rf = load_runs(p)
        source = rf.source_group or Path(p).stem
        for run in rf.runs:
            uses = frozenset(f"{k.name}:{n}:" for k in PARAM_KINDS.values()
                             for n in k.uses(run, str(p)))
            rows.append(Row(str(p), source, run.id, run.kind, run.published.value,
                            rf.tolerance, run, uses))
    return rows


# ------------------------------------------------------------------------------ engine


class Calibration:
    """Every calibrated group, the rows of the shipped run files (plus ``extra`` files), and
    predictions cached by row and the overrides that row reads."""

    def __init__(self, extra: Iterable[str | Path] = (), params: list[Param] | None = None,
                 rows: list[Row] | None = None) -> None:
        if rows is None:
            shipped = sorted(str(p) for p in runs_dir().glob("*.yaml"))
            known = {str(Path(s).resolve()) for s in shipped}
            rows = load_rows(shipped + [str(p) for p in extra
                                        if str(Path(p).resolve()) not in known])
        self.rows = rows
        self.by_id: dict[str, Row] = {}
        for r in rows:  # a shipped row's id wins over a copy's in a file given beside it
            self.by_id.setdefault(r.id, r)
        self.params = params if params is not None else all_params()
        self.groups = _groups([p for p in self.params if p.fitted_on], self.by_id)
        self.cache: dict[tuple[str, str, tuple[tuple[str, float], ...]], float] = {}
        self.evaluations = 0

    # -- predictions

    def predict(self, row: Row, overrides: Mapping[str, float]) -> float:
        """The row's prediction with ``overrides`` ({address: value}) in effect."""
        mine = tuple(sorted((a, round(v, 12)) for a, v in overrides.items()
                            if any(a.startswith(u) for u in row.uses)))
        key = (row.file, row.id, mine)
        if key not in self.cache:
            self.evaluations += 1
            by_kind: dict[str, dict[str, dict[str, float]]] = {}
            for a, v in mine:
                kind, name, fld = a.split(":", 2)
                by_kind.setdefault(kind, {}).setdefault(name, {})[fld] = v
            with ExitStack() as stack:
                for k, vals in by_kind.items():
                    stack.enter_context(PARAM_KINDS[k].overridden(vals))
                try:
                    pred = KINDS[row.kind].predict(row.run, row.file).value
                except AccelsimError as e:
                    raise AccelsimError([Problem(row.file, f"{row.id}: {p.field}".rstrip(": "),
                                                 p.message) for p in e.problems]) from None
            self.cache[key] = float(pred)
        return self.cache[key]

    def loss(self, rows: list[Row], overrides: Mapping[str, float],
             against: Mapping[str, str] | None = None) -> float:
        """Mean |log(predicted / published)| over ``rows``; a row with a reference
        (``against``: row id -> reference row id) less the reference's log error."""
        ref = against or {}
        return sum(abs(self.log_error(r, overrides) - (
            self.log_error(self.by_id[ref[r.id]], overrides) if r.id in ref else 0.0))
            for r in rows) / len(rows)

    def log_error(self, row: Row, overrides: Mapping[str, float]) -> float:
        return math.log(self.predict(row, overrides) / row.published)

    # -- fitting

    def fit(self, groups: list[Group], rows_of: Mapping[str, list[Row]],
            base: Mapping[str, float]) -> dict[str, float]:
        """Values of ``groups`` (by key) minimising each one's loss on ``rows_of[key]``, the
        others held at their current values; in turn until none moves more than XTOL."""
        from scipy.optimize import minimize_scalar

        values = {g.key: g.value for g in groups}
        current = dict(base)
        for g in groups:
            current.update(g.overrides(values[g.key]))
        for _ in range(SWEEPS if len(groups) > 1 else 1):
            moved = 0.0
            for g in groups:
                rows = rows_of[g.key]

                def f(v: float, g: Group = g, rows: list[Row] = rows) -> float:
                    return self.loss(rows, {**current, **g.overrides(v)}, g.against)

                res = minimize_scalar(f, bounds=(g.low, g.high), method="bounded",
                                      options={"xatol": XTOL})
                v = float(res.x)
                # the bounded search never tries its ends nor the start: keep the best seen
                v = min((v, values[g.key], g.low, g.high), key=lambda x: (f(x), abs(x - v)))
                moved = max(moved, abs(v - values[g.key]))
                values[g.key] = v
                current.update(g.overrides(v))
            if moved <= XTOL:
                break
        return values

    def rows_of(self, g: Group, without: str | None = None) -> list[Row]:
        """The group's rows; leaving ``without`` out, also a row whose reference is of it."""
        ref = g.against
        return [self.by_id[i] for i in g.fitted_on if self.by_id[i].source != without
                and (i not in ref or self.by_id[ref[i]].source != without)]

    # -- the two reports

    def refit(self, tolerance: float = STALE_TOLERANCE) -> dict[str, Any]:
        """Every group refit on all its rows, beside its stored value."""
        t0 = time.perf_counter()
        values = self.fit(self.groups, {g.key: self.rows_of(g) for g in self.groups}, {})
        out = []
        for g in self.groups:
            rows = self.rows_of(g)
            v = values[g.key]
            rel = (v - g.value) / g.value
            out.append({
                "parameter": g.key, "addresses": [m.address for m in g.members],
                "fitted_on": list(g.fitted_on), "stored": g.value, "refit": v,
                "difference": rel, "stale": abs(rel) > tolerance,
                "bounds": [g.low, g.high],
                "loss_stored": self.loss(rows, {}, g.against),
                "loss_refit": self.loss(rows, {a: x for h in self.groups
                                               for a, x in h.overrides(values[h.key]).items()},
                                        g.against),
            })
        return {"parameters": out, "tolerance": tolerance, "stale": sum(p["stale"] for p in out),
                "seconds": time.perf_counter() - t0, "predictions": self.evaluations}

    def cross_validate(self, sources: Iterable[str] | None = None) -> dict[str, Any]:
        """Leave one source out: for each source, refit the groups fitted on any of its rows
        on their remaining rows (or take their prior), then predict the source's rows."""
        t0 = time.perf_counter()
        wanted = set(sources) if sources is not None else None
        rows_out: list[dict[str, Any]] = []
        folds: list[dict[str, Any]] = []
        for source in dict.fromkeys(r.source for r in self.rows):
            if wanted is not None and source not in wanted:
                continue
            held = [r for r in self.rows if r.source == source]
            ids = {r.id for r in held}
            touched = [g for g in self.groups if ids & set(g.fitted_on)]
            with_rows = [g for g in touched if self.rows_of(g, without=source)]
            empty = [g for g in touched if g not in with_rows]
            values = self.fit(with_rows, {g.key: self.rows_of(g, without=source)
                                          for g in with_rows}, {}) if with_rows else {}
            how: dict[str, dict[str, Any]] = {
                g.key: {"value": values[g.key], "from": "rows",
                        "rows": len(self.rows_of(g, without=source))} for g in with_rows}
            fold_value = {a: x for g in with_rows for a, x in g.overrides(values[g.key]).items()}
            empty_members = {m.address for g in empty for m in g.members}
            no_prior = False
            for g in empty:
                prior = self.prior(g, fold_value, empty_members)
                if prior is None:
                    no_prior = True
                    how[g.key] = {"value": g.value, "from": "none", "rows": 0}
                    continue
                p, v = prior
                how[g.key] = {"value": v, "from": "prior", "prior": p.address, "rows": 0}
                values[g.key] = v
            overrides = {a: x for g in touched if g.key in values
                         for a, x in g.overrides(values[g.key]).items()}
            for r in held:
                ins = self.predict(r, {})
                out = self.predict(r, overrides)
                rows_out.append({
                    "file": r.file, "source": source, "id": r.id, "kind": r.kind,
                    "category": r.category, "published": r.published, "in_sample": ins,
                    "held_out": out, "error_in_sample": (ins - r.published) / r.published,
                    "error_held_out": (out - r.published) / r.published,
                    "tolerance": r.tolerance, "refit": bool(touched) and not no_prior,
                    "left_out_by": ", ".join(sorted({how[g.key]["from"] for g in touched})),
                    "fitted": r.id in {i for g in touched for i in g.fitted_on}})
            folds.append({"source": source, "rows": len(held), "parameters": how})
        return {"rows": rows_out, "folds": folds, "summary": summarize(rows_out),
                "parameters": [{"parameter": g.key, "addresses": [m.address for m in g.members],
                                "stored": g.value, "fitted_on": list(g.fitted_on)}
                               for g in self.groups],
                "seconds": time.perf_counter() - t0, "predictions": self.evaluations}

    def prior(self, g: Group, fold_value: Mapping[str, float],
              excluded: set[str]) -> tuple[Param, float] | None:
        """The nearest comparable profile's value of the same field in this fold (see the
        module's docstring), or None."""
        members = {m.address for m in g.members}
        p = g.primary
        cands = [q for q in self.params if q.kind == p.kind and q.field == p.field
                 and q.match == p.match and q.address not in members
                 and q.address not in excluded]
        if not cands:
            return None
        best = min(cands, key=lambda q: (abs(q.order - p.order), q.name))
        return best, fold_value.get(best.address, best.value)


def _groups(params: list[Param], by_id: Mapping[str, Row]) -> list[Group]:
    """Calibrated numbers grouped by kind, field and rows; every fitted_on id must name a
    row, and the members of a group must hold one value."""
    probs = []
    buckets: dict[tuple[str, str, tuple[str, ...]], list[Param]] = {}
    for p in params:
        missing = [i for i in p.fitted_on if i not in by_id]
        missing += [f"{i} (fitted_against, not in fitted_on)" for i, _ in p.against
                    if i not in p.fitted_on]
        missing += [r for _, r in p.against if r not in by_id]
        if missing:
            probs.append(Problem(p.file, f"{p.field}.fitted_on", f"unknown run id(s) "
                                 f"{', '.join(missing)}; expected ids of configs/runs/*.yaml"))
            continue
        buckets.setdefault((p.kind, p.field, tuple(sorted(set(p.fitted_on)))), []).append(p)
    out = []
    for members in buckets.values():
        vals = {m.value for m in members}
        if len(vals) > 1:
            probs.append(Problem(members[0].file, f"{members[0].field}.fitted_on",
                                 f"{', '.join(m.address for m in members)} name the same rows "
                                 f"but hold different values ({', '.join(map(str, sorted(vals)))}"
                                 "); expected one fitted value"))
            continue
        counts = {m.address: sum(f"{m.kind}:{m.name}:" in by_id[i].uses
                                 for i in m.fitted_on) for m in members}
        primary = max(members, key=lambda m: (counts[m.address], -members.index(m)))
        if counts[primary.address] == 0:
            probs.append(Problem(primary.file, f"{primary.field}.fitted_on",
                                 "none of the rows uses this profile; expected rows its value "
                                 "changes"))
            continue
        out.append(Group(tuple(members), primary))
    if probs:
        raise AccelsimError(probs)
    return sorted(out, key=lambda g: g.key)


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per category and overall: rows, and mean / max |error| in-sample and held out."""
    cats: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        cats.setdefault(r["category"], []).append(r)
    cats["all"] = rows
    out = {}
    for c, rs in cats.items():
        if not rs:
            continue
        ins = [abs(r["error_in_sample"]) for r in rs]
        out_ = [abs(r["error_held_out"]) for r in rs]
        worst = max(rs, key=lambda r: abs(r["error_held_out"]))
        out[c] = {"rows": len(rs), "refit_rows": sum(r["refit"] for r in rs),
                  "in_sample_mean": sum(ins) / len(ins), "in_sample_max": max(ins),
                  "held_out_mean": sum(out_) / len(out_), "held_out_max": max(out_),
                  "held_out_worst": worst["id"]}
    return out


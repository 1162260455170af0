"""Random inputs of a serving run, all drawn up front from one seeded generator so that
every engine sees the same arrivals, query sizes and service draws.

Arrival processes are non-homogeneous Poisson processes with a piecewise-constant rate
``rate_qps * shape(t)`` (``shape`` has mean 1): unit-rate Poisson points are mapped
through the inverse cumulative intensity. Scaling ``rate_qps`` therefore rescales the
same sample path (common random numbers for capacity search). A CSV trace replays
recorded arrival times (and sizes), compressed or stretched to the asked rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from accelsim.config import Strict, Weight
from accelsim.errors import AccelsimError

# ----------------------------------------------------------------------------- distributions


class Fixed(Strict):
    dist: Literal["fixed"]
    """Always value."""
    value: float = Field(gt=0, le=1e6)
    """The value (items, or seconds for a service time)."""


class TruncNormal(Strict):
    dist: Literal["truncnormal"]
    """Normal truncated to [min, max] (rejection sampling keeps its shape)."""
    mean: float = Field(gt=0, le=1e6)
    """Mean of the untruncated normal."""
    std: float = Field(ge=0, le=1e6)
    """Standard deviation of the untruncated normal."""
    min: float = Field(default=1, gt=0, le=1e6)
    """Smallest value drawn."""
    max: float = Field(gt=0, le=1e6)
    """Largest value drawn."""

    @model_validator(mode="after")
    def _b(self) -> TruncNormal:
        if not self.min <= self.mean <= self.max:
            raise ValueError("need min <= mean <= max")
        return self


class LogNormal(Strict):
    """Heavy tail: ``mean`` and coefficient of variation ``cv`` of the lognormal."""

    dist: Literal["lognormal"]
    """Log-normal with the given mean and coefficient of variation."""
    mean: float = Field(gt=0, le=1e6)
    """Mean."""
    cv: float = Field(gt=0, le=100)
    """Coefficient of variation (std / mean)."""
    max: float | None = Field(default=None, gt=0, le=1e6)
    """Optional cap on a draw (at least the mean: a lower cap would cut most draws)."""

    @model_validator(mode="after")
    def _cap(self) -> LogNormal:
        if self.max is not None and self.max < self.mean:
            raise ValueError(f"max ({self.max:g}) is below the mean ({self.mean:g}): most "
                             "draws would be cut to max; expected max >= mean")
        return self


class Exponential(Strict):
    dist: Literal["exponential"]
    """Exponential with the given mean."""
    mean: float = Field(gt=0, le=1e6)
    """Mean."""


class Empirical(Strict):
    """A histogram: ``values`` with ``weights`` (normalised here)."""

    dist: Literal["empirical"]
    """Draws from the listed values."""
    values: list[Annotated[float, Field(gt=0, le=1e6)]] = Field(min_length=1)
    """The values drawn from."""
    weights: list[Weight] | None = None
    """Relative weights of the values; default equal."""

    @model_validator(mode="after")
    def _w(self) -> Empirical:
        if any(v <= 0 for v in self.values):
            raise ValueError("values must be > 0")
        if self.weights is not None and (len(self.weights) != len(self.values)
                                         or any(w < 0 for w in self.weights)
                                         or sum(self.weights) <= 0):
            raise ValueError("weights: one non-negative weight per value, not all zero")
        return self


Dist = Annotated[Fixed | TruncNormal | LogNormal | Exponential | Empirical,
                 Field(discriminator="dist")]


def dist_mean(d: Any) -> float:
    if isinstance(d, Fixed):
        return d.value
    if isinstance(d, Empirical):
        w = np.asarray(d.weights or [1.0] * len(d.values), dtype=float)
        return float(np.dot(w / w.sum(), d.values))
    if isinstance(d, TruncNormal):
        return _truncnormal_mean(d)
    return float(d.mean)


def _truncnormal_mean(d: TruncNormal) -> float:
    """Mean of the normal truncated to [min, max]:
    ``mu + sigma (phi(a) - phi(b)) / (Phi(b) - Phi(a))``, a and b the standardised bounds."""
    if d.std == 0:
        return float(min(max(d.mean, d.min), d.max))
    a, b = (d.min - d.mean) / d.std, (d.max - d.mean) / d.std

    def phi(x: float) -> float:
        return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)

    def Phi(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    mass = Phi(b) - Phi(a)
    if mass <= 0:
        return float(d.min if a > 0 else d.max)
    return float(d.mean + d.std * (phi(a) - phi(b)) / mass)


def dist_second_moment(d: Any) -> float:
    """E[X^2] (for Pollaczek-Khinchine); lognormal uses its cv, empirical its histogram."""
    if isinstance(d, Fixed):
        return d.value**2
    if isinstance(d, Exponential):
        return 2 * d.mean**2
    if isinstance(d, LogNormal):
        return d.mean**2 * (1 + d.cv**2)
    if isinstance(d, Empirical):
        w = np.asarray(d.weights or [1.0] * len(d.values), dtype=float)
        return float(np.dot(w / w.sum(), np.square(d.values)))
    return d.mean**2 + d.std**2


def sample(d: Any, rng: np.random.Generator, n: int, integer: bool = False) -> np.ndarray:
    """n draws of a distribution (query sizes are rounded to whole items >= 1)."""
    if isinstance(d, Fixed):
        x = np.full(n, d.value)
    elif isinstance(d, Exponential):
        x = rng.exponential(d.mean, n)
    elif isinstance(d, LogNormal):
        sigma2 = np.log1p(d.cv**2)
        x = rng.lognormal(np.log(d.mean) - sigma2 / 2, np.sqrt(sigma2), n)
        if d.max is not None:
            x = np.minimum(x, d.max)
    elif isinstance(d, TruncNormal):
        x = rng.normal(d.mean, d.std, n)
        bad = (x < d.min) | (x > d.max)
        while bad.any():  # rejection keeps the truncated shape exact
            x[bad] = rng.normal(d.mean, d.std, int(bad.sum()))
            bad = (x < d.min) | (x > d.max)
    else:
        w = np.asarray(d.weights or [1.0] * len(d.values), dtype=float)
        x = rng.choice(np.asarray(d.values, dtype=float), size=n, p=w / w.sum())
    if integer:
        x = np.maximum(np.rint(x), 1.0)
    return x


# ----------------------------------------------------------------------------- arrivals


class DailyProfile(Strict):
    """Rate multipliers for each hour of the day (normalised to mean 1)."""

    hourly: list[Weight] = Field(min_length=24, max_length=24)
    """24 rate multipliers, one per hour (normalised to mean 1)."""
    day_s: float = Field(default=86400.0, gt=0, le=1e9)
    """Length of one profile day in simulated seconds (shorter compresses the day)."""

    @model_validator(mode="after")
    def _pos(self) -> DailyProfile:
        if any(x < 0 for x in self.hourly) or sum(self.hourly) <= 0:
            raise ValueError("hourly multipliers must be >= 0 and not all zero")
        return self


class Bursts(Strict):
    """Two-state modulation: bursts of ``multiplier`` x the base rate, exponential durations."""

    multiplier: float = Field(gt=1, le=1000)
    """Rate during a burst over the base rate (> 1)."""
    mean_burst_s: float = Field(gt=0, le=1e9)
    """Mean burst duration (exponential), s."""
    mean_gap_s: float = Field(gt=0, le=1e9)
    """Mean time between bursts (exponential), s."""


class Arrivals(Strict):
    process: Literal["poisson", "trace"] = "poisson"
    """poisson, or trace (replay a CSV)."""
    rate_qps: float | None = Field(default=None, gt=0, le=1e12)
    """Mean arrival rate, queries/s (a trace is rescaled to it when given)."""
    profile: DailyProfile | None = None
    """Daily rate profile (non-homogeneous Poisson)."""
    bursts: Bursts | None = None
    """Two-state burst modulation of the rate."""
    trace: str | None = None
    """CSV with arrival_s[,items], relative to this file."""

    @model_validator(mode="before")
    @classmethod
    def _trace_implies_process(cls, data: Any) -> Any:
        # ``arrivals: {trace: path.csv}`` alone means a trace replay
        if isinstance(data, dict) and data.get("trace") and "process" not in data:
            return {**data, "process": "trace"}
        return data

    @model_validator(mode="after")
    def _check(self) -> Arrivals:
        if self.process == "poisson" and self.rate_qps is None:
            raise ValueError("process poisson needs rate_qps")
        if self.process == "trace" and not self.trace:
            raise ValueError("process trace needs trace: path to a CSV with arrival_s[,items]")
        return self


# Rate breakpoints (hours of a daily profile, burst on/off switches) one run may hold: at
# 16 B each, 20 M is 320 MB. A tiny rate stretches the horizon, and with it their number.
MAX_SEGMENTS = 20_000_000


def _segments_fit(count: float, what: str, horizon_s: float, where: str) -> None:
    if count > MAX_SEGMENTS:
        raise AccelsimError.single(
            where, f"arrivals.{what}", f"the run spans {horizon_s:.3g} s, which needs "
            f"~{count:.3g} rate segments (more than {MAX_SEGMENTS:,}); expected a higher "
            "rate_qps, fewer requests, or longer segments")


def shape_function(a: Arrivals, horizon_s: float, rng: np.random.Generator,
                   where: str = "job") -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints ``t`` and multipliers ``m`` (mean 1 over the horizon) of the rate."""
    t = np.array([0.0])
    m = np.array([1.0])
    if a.profile is not None:
        p = a.profile
        _segments_fit(24 * (horizon_s / p.day_s + 1), "profile.day_s", horizon_s, where)
        h = np.asarray(p.hourly, dtype=float)
        h = h / h.mean()
        n_days = int(np.ceil(horizon_s / p.day_s)) + 1
        t = np.arange(24 * n_days) * p.day_s / 24
        m = np.tile(h, n_days)
    if a.bursts is not None:
        b = a.bursts
        end = horizon_s * 1.5 + 1
        cycle = b.mean_burst_s + b.mean_gap_s
        _segments_fit(2 * end / cycle, "bursts", horizon_s, where)
        # alternating gap/burst durations, drawn in blocks until they pass the end
        pieces, total = [], 0.0
        while total < end:
            n = int(2 * (end - total) / cycle * 1.1) + 64
            n += n % 2
            means = np.tile([b.mean_gap_s, b.mean_burst_s], n // 2)
            d = rng.exponential(means)
            pieces.append(d)
            total += float(d.sum())
        dur = np.concatenate(pieces)
        bt = np.concatenate([[0.0], np.cumsum(dur)])
        bt = bt[:int(np.searchsorted(bt, end, side="left")) + 2]
        state = np.arange(len(bt)) % 2  # 0 = gap first, then burst, ...
        frac = b.mean_burst_s / (b.mean_burst_s + b.mean_gap_s)
        base = 1.0 / (1 + frac * (b.multiplier - 1))  # keeps the long-run mean at 1
        bm = np.where(state == 1, b.multiplier * base, base)
        allt = np.union1d(t, bt)
        m = m[np.searchsorted(t, allt, side="right") - 1] * bm[
            np.searchsorted(bt, allt, side="right") - 1]
        t = allt
    return t, m


def nhpp_times(unit_points: np.ndarray, rate: float, t: np.ndarray, m: np.ndarray,
               where: str = "job") -> np.ndarray:
    """Map unit-rate Poisson points through the inverse of Lambda(x) = rate * int shape."""
    seg_len = np.diff(np.append(t, np.inf))
    lam = rate * m
    cum = np.concatenate([[0.0], np.cumsum(lam[:-1] * seg_len[:-1])])
    i = np.searchsorted(cum, unit_points, side="right") - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        out = t[i] + (unit_points - cum[i]) / lam[i]
    if np.any(lam[i] <= 0):
        raise AccelsimError.single(where, "arrivals.profile", "rate is zero where arrivals fall")
    return out


def read_trace(path: str, where: str = "", field: str = "arrivals.trace"
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """CSV with a header: ``arrival_s`` (seconds from the trace's start: >= 0,
    non-decreasing) and optional ``items``. ``where``: the job file that names the trace
    (its ``field``); problems then name it first, then the CSV."""
    import pandas as pd

    def bad(col: str, message: str) -> AccelsimError:
        if not where:
            return AccelsimError.single(path, col, message)
        return AccelsimError.single(where, field, f"{path}: {col + ': ' if col else ''}"
                                    f"{message}")

    p = Path(path)
    if p.is_dir():
        raise bad("", "is a folder; expected a CSV file with arrival_s[,items]")
    if not p.is_file():
        raise bad("", "trace file not found" if not p.exists() else
                  "is not a regular file; expected a CSV file with arrival_s[,items]")
    try:
        df = pd.read_csv(p, keep_default_na=False, na_values=[])  # cells as written
    except Exception as exc:  # pandas raises many kinds
        raise bad("", f"cannot read CSV ({str(exc).splitlines()[0] if str(exc) else exc!r})"
                  ) from None
    if "arrival_s" not in df.columns:
        raise bad("arrival_s", "missing column (expected arrival_s[,items])")
    t = _numbers(df, "arrival_s", bad)
    if len(t) < 2 or np.any(np.diff(t) < 0):
        raise bad("arrival_s", "expected at least 2 finite, non-decreasing times")
    if t[0] < 0:
        raise bad("arrival_s (line 2)", f"expected times >= 0 (seconds from the trace's "
                  f"start), got {_cell(df['arrival_s'].iloc[0])}")
    items = None
    if "items" in df.columns:
        items = _numbers(df, "items", bad)
        wrong = np.flatnonzero((items < 1) | (items != np.round(items)))
        if len(wrong):
            raise bad(f"items (line {wrong[0] + 2})", "expected whole items >= 1, got "
                      f"{_cell(df['items'].iloc[wrong[0]])}")
    return t - t[0], items


def _cell(v: Any) -> str:
    import pandas as pd

    return "an empty cell" if str(v).strip() == "" or pd.isna(v) else repr(str(v))


def _numbers(df: Any, col: str, bad: Callable[[str, str], AccelsimError]) -> np.ndarray:
    """A column as finite floats; the first text, empty or infinite cell is named by its row
    (the file's line: the header is line 1)."""
    import pandas as pd

    x = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    wrong = np.flatnonzero(~np.isfinite(x))
    if len(wrong):
        raise bad(f"{col} (line {wrong[0] + 2})", "expected a finite number, got "
                  f"{_cell(df[col].iloc[wrong[0]])}")
    return x


Sampler = Callable[[np.random.Generator, int], np.ndarray]

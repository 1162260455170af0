"""Training in the serving fleet's night: capacity loaning over the day.

A serving fleet is sized for its peak hour; at hour ``h`` a workload with daily profile ``p``
needs the share ``r(h) = max(p[h], p[h+1]) / max(p)`` of its units (this hour's load and the
next, so units are back before the load that needs them arrives: the SLO is kept by
construction). The rest, ``free(h) = sum_w units_w (1 - r_w(h))`` per device type, is lent
to preemptible training (capacity loaning: Lyra, Li et al., EuroSys 2023, ByteDance's
scheduler that lends idle inference servers to elastic training jobs).

A loaned job changes size only through a checkpoint and a restart: going from ``a`` to ``b``
devices costs ``a x checkpoint_s + b x restart_s`` device-seconds (the old job writes its
state before it hands units back, the new one reloads it; training state leaves the serving
devices, so serving keeps all its memory). :func:`loan_schedule` picks the size at every
hour that maximises trained device-seconds net of those costs: a dynamic programme over the
distinct levels ``{0} U {free(h)}`` on the cyclic day (exact; the tests hold it to
exhaustive search). Zero resize costs reduce it to ``sum_h free(h)``; a flat profile lends
nothing. A job smaller than ``min_devices`` (one data-parallel replica of the training
layout) cannot run: an hour with fewer idle units lends nothing (its ``free`` taken as 0).

Published shape: Runway (2026-07-02, "Borrowing the night") reports an inference trough
"less than half the peak" and lends the difference to research overnight; its preemptions
cost 20-30 minutes (Kubernetes grace periods; runwayml.com/news/no-idle-gpus-managing-
research-compute-at-runway). Lyra reports cluster usage up by up to 25 % from loaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from accelsim import units

HOURS = 24
# Device-seconds charged for any resize on top of its costs: breaks ties between schedules
# that train equally towards the one that resizes less (negligible beside any real cost).
TIE_S = 1e-6


@dataclass(frozen=True)
class Loan:
    """Training on loaned serving units over one day (one device type)."""

    devices: np.ndarray
    """Training devices in each hour (24)."""
    free: np.ndarray
    """Serving units idle in each hour (24): the most that can be lent."""
    resizes: int
    """Checkpoint-and-restart events a day."""
    lost_device_s: float
    """Device-seconds a day spent checkpointing and restarting."""

    @property
    def device_s(self) -> float:
        """Device-seconds a day that train: lent hours net of the resize costs."""
        return float(self.devices.sum() * units.HOUR - self.lost_device_s)

    @property
    def lent_share(self) -> float:
        """Share of the idle device-hours that train."""
        idle = float(self.free.sum() * units.HOUR)
        return self.device_s / idle if idle > 0 else 0.0


def needed_share(profile: list[float] | np.ndarray | None) -> np.ndarray:
    """Share of a peak-sized serving pool each hour needs: ``max(p[h], p[h+1]) / max(p)``
    (no profile: flat, all of it)."""
    if profile is None:
        return np.ones(HOURS)
    p = np.asarray(profile, dtype=float)
    return np.maximum(p, np.roll(p, -1)) / p.max()


def free_units(pools: list[tuple[float, list[float] | np.ndarray | None]]) -> np.ndarray:
    """Idle units each hour over serving pools ``(units, daily_profile)`` on one device."""
    free = np.zeros(HOURS)
    for n, profile in pools:
        free += n * (1.0 - needed_share(profile))
    return np.maximum(free, 0.0)


def usable(free: np.ndarray, min_devices: float) -> np.ndarray:
    """Idle units a job can use each hour: ``free(h)``, or 0 where it is below the smallest
    job (``min_devices``)."""
    free = np.asarray(free, dtype=float)
    return np.where(free >= min_devices - 1e-9, free, 0.0)


def loan_schedule(free: np.ndarray, checkpoint_s: float, restart_s: float,
                  min_devices: float = 0.0) -> Loan:
    """The training size per hour that trains most, net of resize costs (cyclic DP).

    ``value[s, j]``: best net device-seconds of hours ``0..h`` starting at level ``s`` in
    hour 0 and ending at level ``j``; a level above ``free(h)`` is not allowed in hour ``h``,
    nor one below ``min_devices`` other than 0 (:func:`usable`: every positive level is some
    hour's ``free`` at or above it). ``Loan.free`` keeps the idle units as given.
    """
    idle = np.asarray(free, dtype=float)
    if min_devices < 0:
        raise ValueError("min_devices must be >= 0")
    free = usable(idle, min_devices) if min_devices > 0 else idle
    if checkpoint_s < 0 or restart_s < 0:
        raise ValueError("checkpoint_s and restart_s must be >= 0")
    if checkpoint_s > units.HOUR:
        raise ValueError(f"a checkpoint of {checkpoint_s:.0f} s cannot be written within the "
                         "hour's notice the serving profile gives")
    levels = np.unique(np.concatenate([[0.0], free]))
    k = len(levels)
    gain = levels * units.HOUR
    # cost[i, j]: from level i to level j
    cost = levels[:, None] * checkpoint_s + levels[None, :] * restart_s
    cost += TIE_S  # of two equal schedules, the one with fewer resizes
    np.fill_diagonal(cost, 0.0)
    allowed = levels[None, :] <= free[:, None] + 1e-9 * max(1.0, float(free.max()))  # (24, k)
    neg = -np.inf
    value = np.where(np.eye(k, dtype=bool) & allowed[0][None, :], gain[None, :], neg)
    back = np.zeros((HOURS, k, k), dtype=np.int64)
    for h in range(1, HOURS):
        cand = value[:, :, None] - cost[None, :, :]  # (start, from, to)
        back[h] = cand.argmax(axis=1)
        value = cand.max(axis=1) + np.where(allowed[h], gain, neg)[None, :]
    total = value - cost.T  # total[s, j] = value[s, j] - cost[j, s]: back to the start
    s, j = np.unravel_index(int(np.argmax(total)), total.shape)
    path = np.zeros(HOURS, dtype=np.int64)
    path[-1] = j
    for h in range(HOURS - 1, 0, -1):
        path[h - 1] = back[h, s, path[h]]
    devices = levels[path]
    prev = np.roll(path, 1)
    changes = path != prev
    lost = float((cost[prev[changes], path[changes]] - TIE_S).sum())
    return Loan(devices, idle, int(changes.sum()), lost)


def scaled_loan(free: np.ndarray, checkpoint_s: float, restart_s: float,
                min_devices: float = 0.0) -> Loan:
    """:func:`loan_schedule` through a cache of day shapes: the schedule is homogeneous in
    the fleet and the smallest job together (``loan(c free, c m) = c loan(free, m)``: gains
    and resize costs both scale with the devices moved), so a fleet draw that scales a pool
    reuses its shape's schedule. ``min_devices`` at most 1: no minimum (homogeneous in the
    fleet alone, fractions of a unit included)."""
    free = np.maximum(np.asarray(free, dtype=float), 0.0)
    top = float(free.max())
    if top <= 0 or (min_devices > 1 and top < min_devices - 1e-9):
        return Loan(np.zeros(HOURS), free, 0, 0.0)
    shape = tuple(np.round(free / top, 9).tolist())
    low = round(min_devices / top, 12) if min_devices > 1 else 0.0
    unit = _unit_loan(shape, float(checkpoint_s), float(restart_s), low)
    return Loan(unit.devices * top, free, unit.resizes, unit.lost_device_s * top)


@lru_cache(maxsize=4096)
def _unit_loan(shape: tuple[float, ...], checkpoint_s: float, restart_s: float,
               low: float) -> Loan:
    # low: the smallest job, as a share of the day's most idle units
    return loan_schedule(np.asarray(shape), checkpoint_s, restart_s, low)


def fill_gaps(profile: list[float] | np.ndarray) -> np.ndarray:
    """A daily curve with its unrecorded hours (NaN) filled by linear interpolation between
    the recorded ones around the cyclic day (a trace that misses an hour)."""
    p = np.asarray(profile, dtype=float)
    ok = ~np.isnan(p)
    if not ok.any():
        raise ValueError("a daily profile needs at least one recorded hour")
    h = np.arange(HOURS, dtype=float)
    return np.interp(h, h[ok], p[ok], period=HOURS)


def profile_shape(profile: list[float] | np.ndarray) -> dict[str, float]:
    """Shape statistics of a daily load curve (24 hourly values, NaN where not recorded),
    the ones the shared fleet depends on: ``mean_to_peak`` (a peak-sized pool's busy share,
    ``1 - mean_to_peak`` its idle share before the hour of look-ahead), ``peak_to_trough``,
    ``hours_below_half`` (hours under half the peak: the long loans), ``peak_hour`` and
    ``trough_hour``, ``lookahead_idle_share`` (``1 - mean(needed_share)``: what
    :func:`free_units` leaves idle, per unit of a peak-sized pool)."""
    p = np.asarray(profile, dtype=float)
    top, low = float(np.nanmax(p)), float(np.nanmin(p))
    full = fill_gaps(p)
    return {"mean_to_peak": float(np.nanmean(p)) / top,
            "peak_to_trough": top / low if low > 0 else float("inf"),
            "hours_below_half": float(np.sum(p < 0.5 * top)),
            "peak_hour": float(np.nanargmax(p)), "trough_hour": float(np.nanargmin(p)),
            "lookahead_idle_share": float(1.0 - needed_share(full).mean())}


def pool_loan(profile: list[float] | np.ndarray, checkpoint_s: float, restart_s: float
              ) -> Loan:
    """The loan of one peak-sized serving unit following ``profile`` (gaps filled): its
    ``device_s / day`` is the share of the pool's device-hours that train."""
    return loan_schedule(free_units([(1.0, fill_gaps(profile))]), checkpoint_s, restart_s)

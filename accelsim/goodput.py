"""Training goodput under failures: the fraction of wall time that advances the model.

A synchronous job on ``n`` devices stops whenever any part fails. With independent failures
at ``lambda = n (afr_device + afr_other) / year`` (exponential inter-failure times, mean
``M = 1 / lambda``), checkpoints of ``delta`` seconds after every ``tau`` seconds of work and
a restart of ``R`` seconds after each failure (from the last checkpoint; failures may strike
during work, checkpoint or restart), the expected wall time per checkpointed segment is
(Daly 2006, "A higher order estimate of the optimum checkpoint interval", FGCS 22:303)::

    E[T_segment] = M exp(R / M) (exp((tau + delta) / M) - 1)

so the useful fraction is ``tau / E[T_segment]``. The interval is Young's (1974) optimum
``tau* = sqrt(2 delta M)`` (first order, the analytic check), refined by a bounded scalar
minimisation of the exact expression. :func:`simulate_campaign` replays the same process
event by event in simpy; the tests hold it to the closed form within its confidence interval.

Checkpoint size: the training state of every parameter (weights at the training precision,
fp32 master weights and two fp32 Adam moments in mixed precision: the training recipe's
``WEIGHT_BYTES + OPT_BYTES``), written at the storage
system's sustained bandwidth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from accelsim import units

# fp32 master weights (4) and Adam's two moments (8), per parameter, besides the weights.


@dataclass(frozen=True)
class Goodput:
    """The result of :func:`goodput`: ``fraction`` of wall time that trains the model."""

    fraction: float
    mtbf_s: float
    interval_s: float
    checkpoint_s: float
    restart_s: float
    interruptions_per_day: float

    def note(self) -> str:
        return (f"goodput {100 * self.fraction:.1f} % (MTBF {self.mtbf_s / units.HOUR:.3g} h, "
                f"checkpoint every {self.interval_s / 60:.3g} min)")


def interruption_rate(devices: float, device_afr: float, other_afr: float) -> float:
    """Job interruptions per second: every device and its share of hosts, NICs, switches and
    software fail independently at ``device_afr + other_afr`` per year."""
    return devices * (device_afr + other_afr) / units.YEAR


def segment_time(interval_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float
                 ) -> float:
    """Expected wall seconds to complete ``interval_s`` of work and its checkpoint (Daly)."""
    return mtbf_s * math.exp(restart_s / mtbf_s) * math.expm1((interval_s + checkpoint_s)
                                                                / mtbf_s)


def young_interval(checkpoint_s: float, mtbf_s: float) -> float:
    """Young's optimum checkpoint interval ``sqrt(2 delta M)``."""
    return math.sqrt(2.0 * checkpoint_s * mtbf_s)


def bounded_minimum(f: Callable[[float], float], lo: float, hi: float, xatol: float,
                    maxiter: int = 500) -> float:
    """The minimiser of ``f`` on [lo, hi] by Brent's method (golden sections and parabolic
    steps; Brent 1973, Forsythe, Malcolm and Moler's ``fmin``), step for step SciPy's
    ``minimize_scalar(method="bounded")`` (``scipy.optimize._optimize.
    _minimize_scalar_bounded``, BSD licence), so the same answer to the last bit without
    importing scipy.optimize (0.2-0.4 s; a test holds the two equal)."""
    sqrt_eps = math.sqrt(2.2e-16)
    golden_mean = 0.5 * (3.0 - math.sqrt(5.0))
    a, b = lo, hi
    fulc = a + golden_mean * (b - a)
    nfc, xf = fulc, fulc
    rat = e = 0.0
    x = xf
    fx = f(x)
    num = 1
    ffulc = fnfc = fx
    xm = 0.5 * (a + b)
    tol1 = sqrt_eps * abs(xf) + xatol / 3.0
    tol2 = 2.0 * tol1
    while abs(xf - xm) > (tol2 - 0.5 * (b - a)):
        golden = True
        if abs(e) > tol1:  # a parabolic fit
            golden = False
            r = (xf - nfc) * (fx - ffulc)
            q = (xf - fulc) * (fx - fnfc)
            p = (xf - fulc) * q - (xf - nfc) * r
            q = 2.0 * (q - r)
            if q > 0.0:
                p = -p
            q = abs(q)
            r = e
            e = rat
            if abs(p) < abs(0.5 * q * r) and p > q * (a - xf) and p < q * (b - xf):
                rat = (p + 0.0) / q
                x = xf + rat
                if (x - a) < tol2 or (b - x) < tol2:
                    rat = tol1 * (_sign(xm - xf) + float(xm - xf == 0))
            else:
                golden = True
        if golden:
            e = a - xf if xf >= xm else b - xf
            rat = golden_mean * e
        x = xf + (_sign(rat) + float(rat == 0)) * max(abs(rat), tol1)
        fu = f(x)
        num += 1
        if fu <= fx:
            if x >= xf:
                a = xf
            else:
                b = xf
            fulc, ffulc = nfc, fnfc
            nfc, fnfc = xf, fx
            xf, fx = x, fu
        else:
            if x < xf:
                a = x
            else:
                b = x
            if fu <= fnfc or nfc == xf:
                fulc, ffulc = nfc, fnfc
                nfc, fnfc = x, fu
            elif fu <= ffulc or fulc == xf or fulc == nfc:
                fulc, ffulc = x, fu
        xm = 0.5 * (a + b)
        tol1 = sqrt_eps * abs(xf) + xatol / 3.0
        tol2 = 2.0 * tol1
        if num >= maxiter:
            break
    return float(xf)


def _sign(v: float) -> float:
    """``numpy.sign`` of a float (NaN stays NaN)."""
    return 1.0 if v > 0 else -1.0 if v < 0 else 0.0 if v == 0 else float(v)


def goodput(devices: float, device_afr: float, other_afr: float, checkpoint_s: float,
            restart_s: float, interval_s: float | None = None) -> Goodput:
    """Useful fraction of a job's wall time at the best (or a given) checkpoint interval."""
    lam = interruption_rate(devices, device_afr, other_afr)
    if lam <= 0:
        return Goodput(1.0, math.inf, math.inf, checkpoint_s, restart_s, 0.0)
    mtbf = 1.0 / lam
    if interval_s is None:
        young = young_interval(checkpoint_s, mtbf)
        interval_s = bounded_minimum(
            lambda tau: segment_time(tau, checkpoint_s, restart_s, mtbf) / tau,
            young / 20, young * 20, young * 1e-6)
    frac = interval_s / segment_time(interval_s, checkpoint_s, restart_s, mtbf)
    return Goodput(frac, mtbf, interval_s, checkpoint_s, restart_s, lam * units.DAY)


def checkpoint_seconds(params: float, state_bytes: float, bandwidth_Bps: float) -> float:
    """Seconds to write the training state of ``params`` parameters, ``state_bytes`` each
    (weights and optimizer state: the training recipe's)."""
    return params * state_bytes / bandwidth_Bps


def simulate_campaign(interval_s: float, checkpoint_s: float, restart_s: float,
                      mtbf_s: float, horizon_s: float, seed: int) -> float:
    """Useful fraction of one seeded campaign of ``horizon_s`` wall seconds: work in
    segments of ``interval_s`` each closed by a checkpoint; a failure (exponential, mean
    ``mtbf_s``, at any moment) loses the segment in progress and costs a restart, itself
    interruptible. An event-by-event replay of the process :func:`segment_time` solves."""
    import numpy as np
    import simpy

    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    done = {"useful": 0.0}

    def job() -> Any:
        next_failure = rng.exponential(mtbf_s)
        restarting = False
        while True:
            need = restart_s if restarting else interval_s + checkpoint_s
            if env.now + need > horizon_s:  # an unfinished segment is not saved: not counted
                yield env.timeout(max(horizon_s - env.now, 0.0))
                return
            if next_failure < need:  # the failure strikes first: lose this piece
                yield env.timeout(next_failure)
                next_failure = rng.exponential(mtbf_s)
                restarting = True
                continue
            yield env.timeout(need)
            next_failure -= need
            if restarting:
                restarting = False
            else:
                done["useful"] += interval_s

    env.process(job())
    env.run(until=horizon_s)
    return done["useful"] / horizon_s

"""Capacity loaning over the day (accelsim.sharing): closed forms and exhaustive search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from accelsim import sharing, units

FEED = [0.35, 0.25, 0.2, 0.18, 0.2, 0.3, 0.45, 0.6, 0.7, 0.72, 0.75, 0.8,
        0.85, 0.8, 0.75, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0, 0.95, 0.8, 0.55]


def test_a_flat_profile_lends_nothing() -> None:
    loan = sharing.loan_schedule(sharing.free_units([(1000, [1.0] * 24)]), 60, 600)
    assert loan.device_s == 0 and loan.resizes == 0
    assert sharing.free_units([(1000, None)]).sum() == 0


def test_free_resizes_lend_every_idle_hour() -> None:
    free = sharing.free_units([(1000, FEED)])
    loan = sharing.loan_schedule(free, 0.0, 0.0)
    assert loan.device_s == pytest.approx(free.sum() * units.HOUR)
    assert loan.lent_share == pytest.approx(1.0)


def test_serving_keeps_this_hour_and_the_next() -> None:
    share = sharing.needed_share(FEED)
    p = np.asarray(FEED)
    assert np.all(share * p.max() >= p) and np.all(share * p.max() >= np.roll(p, -1))
    assert share.max() == 1.0


def _brute(free: np.ndarray, ckpt: float, restart: float) -> float:
    levels = np.unique(np.concatenate([[0.0], free]))
    best = -np.inf
    for path in itertools.product(range(len(levels)), repeat=len(free)):
        lv = levels[list(path)]
        if np.any(lv > free):
            continue
        prev = np.roll(lv, 1)
        ch = lv != prev
        lost = float((prev[ch] * ckpt + lv[ch] * restart).sum())
        best = max(best, lv.sum() * units.HOUR - lost)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_schedule_is_the_exhaustive_optimum(seed: int, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    """On a 6-hour day with 3 distinct idle levels, the DP equals enumeration."""
    rng = np.random.default_rng(seed)
    free = rng.choice([0.0, 40.0, 100.0], size=6)
    monkeypatch.setattr(sharing, "HOURS", 6)
    loan = sharing.loan_schedule(free, 300.0, 1500.0)
    assert loan.device_s == pytest.approx(_brute(free, 300.0, 1500.0))


def test_dearer_resizes_train_less_and_resize_less() -> None:
    free = sharing.free_units([(1000, FEED)])
    loans = [sharing.loan_schedule(free, c, r) for c, r in [(0, 0), (60, 600), (600, 3000)]]
    assert loans[0].device_s > loans[1].device_s > loans[2].device_s > 0
    assert loans[1].resizes >= loans[2].resizes


def test_linear_in_the_fleet() -> None:
    """Twice the serving units lend twice the device-seconds (costs scale with the job)."""
    a = sharing.loan_schedule(sharing.free_units([(1000, FEED)]), 60, 600)
    b = sharing.loan_schedule(sharing.free_units([(2000, FEED)]), 60, 600)
    assert b.device_s == pytest.approx(2 * a.device_s)


def test_a_checkpoint_longer_than_the_notice_is_refused() -> None:
    with pytest.raises(ValueError, match="within the hour"):
        sharing.loan_schedule(sharing.free_units([(10, FEED)]), 4000, 600)


def test_a_minimum_job_above_every_idle_hour_lends_nothing() -> None:
    free = sharing.free_units([(1000, FEED)])
    loan = sharing.loan_schedule(free, 60, 600, min_devices=free.max() + 1)
    assert loan.device_s == 0 and loan.resizes == 0
    assert sharing.scaled_loan(free, 60, 600, free.max() + 1).device_s == 0


def test_a_minimum_job_of_one_is_todays_loan() -> None:
    free = sharing.free_units([(1000, FEED)])
    base = sharing.loan_schedule(free, 60, 600)
    for m in (0.0, 1.0):
        assert sharing.loan_schedule(free, 60, 600, m).device_s == pytest.approx(base.device_s)
    assert sharing.scaled_loan(free, 60, 600, 1).device_s == pytest.approx(base.device_s)


def test_a_minimum_job_trains_only_in_hours_with_that_many_idle() -> None:
    """Free resizes: exactly the hours with at least ``m`` idle units lend, all of them."""
    free = sharing.free_units([(1000, FEED)])
    m = float(np.median(free[free > 0]))
    loan = sharing.loan_schedule(free, 0.0, 0.0, m)
    assert loan.device_s == pytest.approx(free[free >= m].sum() * units.HOUR)
    assert np.all((loan.devices == 0) | (loan.devices >= m))
    assert sharing.scaled_loan(free, 0.0, 0.0, m).device_s == pytest.approx(loan.device_s)
    with_costs = sharing.scaled_loan(free, 60, 600, m)
    assert with_costs.device_s == pytest.approx(sharing.loan_schedule(free, 60, 600, m).device_s)
    assert with_costs.device_s <= sharing.loan_schedule(free, 60, 600).device_s

import numpy as np
import pytest

from accelsim import xp


def test_scalars_stay_python_floats_and_match_numpy():
    cases = [(xp.maximum, np.maximum, (2.0, 3.0)), (xp.minimum, np.minimum, (2.0, 3)),
             (xp.where, np.where, (True, 1.0, 2.0)), (xp.where, np.where, (False, 1.0, 2.0)),
             (xp.floor, np.floor, (2.5,)), (xp.ceil, np.ceil, (2.5,)),
             (xp.log2, np.log2, (8.0,)), (xp.clip, np.clip, (5.0, 1.0, 3.0))]
    for ours, theirs, args in cases:
        got = ours(*args)
        assert not isinstance(got, np.ndarray)
        assert got == pytest.approx(float(theirs(*args)))
    assert isinstance(xp.asarray(3), float)
    assert xp.select([False, True], [1.0, 2.0], 3.0) == 2.0
    assert xp.select([False, False], [1.0, 2.0], 3.0) == 3.0


def test_arrays_go_to_numpy():
    a = np.array([1.0, 5.0])
    assert np.array_equal(xp.maximum(a, 2.0), [2.0, 5.0])
    assert np.array_equal(xp.where(a > 2, a, 0.0), [0.0, 5.0])
    assert np.array_equal(xp.select([a > 2], [a], 0.0), [0.0, 5.0])
    assert np.array_equal(xp.clip(a, 2.0, 4.0), [2.0, 4.0])
    assert xp.asarray([1, 2]).dtype == float

import pytest

from accelsim.workloads.recsys import slo_ratio


def test_slo_ratio_is_the_base_at_the_base_point_and_grows_with_slack():
    assert slo_ratio(0.8, 5.0, 5.0) == pytest.approx(0.8, rel=1e-12)
    # rho / (1 - rho) = (x - 1) / kappa: kappa = 4 / 4 = 1 at the base; at x = 3, y = 2
    assert slo_ratio(0.8, 5.0, 3.0) == pytest.approx(2 / 3, rel=1e-12)
    assert slo_ratio(0.8, 5.0, 9.0) == pytest.approx(8 / 9, rel=1e-12)
    # outside the domain (SLO under one batch, or a degenerate ratio): the base ratio
    assert slo_ratio(0.8, 0.5, 3.0) == 0.8
    assert slo_ratio(0.0, 5.0, 3.0) == 0.0

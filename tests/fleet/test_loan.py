"""Training on the serving fleet's idle hours (accelsim.fleet.loan) on the seed scenario."""

import pytest

from accelsim import units
from accelsim.fleet import compare, evaluate_devices, load_scenario
from tests.conftest import CONFIGS


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(CONFIGS / "fleet.yaml")


@pytest.fixture(scope="module")
def devices(scenario):
    return evaluate_devices(scenario)


def test_a_shared_fleet_never_does_worse_than_dedicated_pools(scenario, devices):
    """Same units, same serving capacity at the SLO (serving keeps what each hour and the
    next need); training gains exactly what the troughs lend, and never loses."""
    ded = {f["name"]: f for f in compare(scenario, dev_table=devices).fleets}
    shared_sc = scenario.model_copy(update={"sharing": "shared"})
    sha = {f["name"]: f for f in compare(shared_sc, dev_table=devices).fleets}
    for name, d in ded.items():
        s = sha[name]
        assert s["units"] == d["units"]
        for w in ("serving", "chatbot"):
            assert s["workloads"][w]["capacity"] == d["workloads"][w]["capacity"]
        gain = s["workloads"]["training"]["capacity"] - d["workloads"]["training"]["capacity"]
        assert gain == pytest.approx(d["loan_training_tokens_per_day"] / units.DAY)
        assert gain >= 0 and s["days_to_train"] <= d["days_to_train"]
        assert d["loan_device_hours_per_day"] <= d["loan_idle_device_hours_per_day"]
    # the seed's serving profiles dip well below their peaks: something is lent
    assert ded["reported-split"]["loan_training_tokens_per_day"] > 0


def test_flat_daily_profiles_lend_nothing(scenario, devices):
    flat = {w: s.model_copy(update={"daily_profile": None}) if hasattr(s, "daily_profile")
            else s for w, s in scenario.workloads.items()}
    sc = scenario.model_copy(update={"workloads": flat, "sharing": "shared"})
    for f in compare(sc, dev_table=devices).fleets:
        assert f["loan_training_tokens_per_day"] == 0 and f["loan_resizes_per_day"] == 0


def test_a_minimum_job_above_the_fleet_lends_nothing(scenario, devices):
    big = scenario.model_copy(update={"sharing_min_devices": 1_000_000})
    for f in compare(big, dev_table=devices).fleets:
        assert f["loan_training_tokens_per_day"] == 0 and f["loan_resizes_per_day"] == 0

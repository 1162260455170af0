"""The chatbot block's demand: a published token volume or users, converted to requests/s
at the peak through the block's mean lengths and daily profile."""

import pytest
from pydantic import ValidationError

from accelsim.fleet.scenario import load_scenario
from accelsim.workloads.llm_spec import LLMServingSpec

BLOCK = {
    "model": "llama2-70b",
    "prompt_tokens": {"dist": "fixed", "value": 1000},
    "output_tokens": {"dist": "fixed", "value": 250},
    "slo": {"ttft_ms": 2000, "tpot_ms": 200, "attainment": 0.99},
    "daily_profile": [1.0] * 12 + [2.0] * 12,  # mean/peak 0.75
}


def spec(**kw):
    return LLMServingSpec.model_validate({**BLOCK, **kw})


def test_token_volume_to_peak_rps():
    s = spec(demand={"tokens_per_day": 4e12, "share": 0.5, "source": "test"})
    per_day = 4e12 * 0.5 / 1250
    assert s.requests_per_day() == pytest.approx(per_day)
    assert s.peak_demand() == pytest.approx(per_day / 86_400 / 0.75)
    assert s.tokens_per_day() == pytest.approx(2e12)


def test_mau_to_peak_rps():
    s = spec(demand={"mau": 60e6, "daily_active_share": 0.3, "requests_per_daily_user": 10})
    assert s.peak_demand() == pytest.approx(180e6 / 86_400 / 0.75)


def test_peak_rps_round_trips_to_tokens():
    s = spec(peak_rps=100.0)
    assert s.peak_demand() == 100.0
    assert s.tokens_per_day() == pytest.approx(100.0 * 0.75 * 86_400 * 1250)


@pytest.mark.parametrize("kw", [{}, {"peak_rps": 1.0, "demand": {
    "mau": 1e6, "daily_active_share": 0.5, "requests_per_daily_user": 1}}])
def test_exactly_one_demand(kw):
    with pytest.raises(ValidationError, match="exactly one of peak_rps and demand"):
        spec(**kw)


def test_seed_uses_published_volume_and_mau_is_lower():
    s = load_scenario("configs/fleet.yaml").workloads["chatbot"]
    assert s.demand.tokens_per_day == 4e12 and "FORCE" in s.demand.source
    mau = LLMServingSpec.model_validate({**s.model_dump(), "demand": {
        "mau": 60e6, "daily_active_share": 0.3, "requests_per_daily_user": 10}})
    assert s.peak_demand() > 5 * mau.peak_demand()

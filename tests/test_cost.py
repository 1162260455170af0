"""TCO arithmetic against hand-computed cases, and monotonicity properties."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.cost import Finance, Region, capital_recovery_factor, tco
from accelsim.devices import load_device

H20 = load_device("h20").spec  # price 10k, overhead 8k, network 4.2k, TDP 400, idle 60,
# host 575 W and network 120 W per GPU


def test_hand_computed_h20_no_interest():
    region = Region(usd_per_kwh=0.10, pue=1.5)
    fin = Finance(years=5, cost_of_capital=0.0, maintenance_fraction=0.03)
    r = tco(H20, region, fin, utilization=0.5)
    capex = 10_000 + 8_000 + 4_200
    power = 60 + 0.5 * (400 - 60) + 575 + 120  # 925 W: the GPU at half load, host, fabric
    energy = power * 1.5 * 8766 * 0.10 / 1000
    annual = capex / 5 + energy + 0.03 * capex
    assert r["capex_usd"] == capex
    assert float(r["energy_usd_per_year"]) == pytest.approx(energy)
    assert float(r["tco_usd_per_year"]) == pytest.approx(annual)
    assert float(r["usd_per_hour"]) == pytest.approx(annual / 8766)


def test_capital_recovery_factor():
    # 8 % over 5 years: 0.08 * 1.08^5 / (1.08^5 - 1) = 0.250456...
    assert float(capital_recovery_factor(0.08, 5)) == pytest.approx(0.2504564545)
    assert float(capital_recovery_factor(0.0, 4)) == pytest.approx(0.25)


def test_facility_cost_per_kw_of_peak_it_power():
    r = tco(H20, Region(usd_per_kwh=0.1, pue=1.2, facility_usd_per_kw_year=1000), Finance())
    peak_kw = (400 + 575 + 120) / 1000
    assert float(r["facility_usd_per_year"]) == pytest.approx(1000 * peak_kw)
    assert float(r["wall_power_W"]) == pytest.approx(1000 * peak_kw * 1.2)  # facility power


def test_facility_build_cost_is_annualised_over_the_facility_life():
    fin = Finance(cost_of_capital=0.08, facility_years=15)
    r = tco(H20, Region(usd_per_kwh=0.1, pue=1.2, facility_capex_usd_per_mw=10e6), fin)
    peak_mw = (400 + 575 + 120) / 1e6
    crf = 0.08 * 1.08**15 / (1.08**15 - 1)  # 0.116830
    assert float(r["facility_usd_per_year"]) == pytest.approx(10e6 * peak_mw * crf)


def test_crf_is_exact_for_tiny_rates():
    assert float(capital_recovery_factor(1e-300, 15)) == pytest.approx(1 / 15)
    assert float(capital_recovery_factor(1e-12, 5)) == pytest.approx(0.2, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(p1=st.floats(1000, 50_000), dp=st.floats(1, 50_000), u=st.floats(0, 1),
       kwh=st.floats(0.01, 0.5), pue=st.floats(1.0, 2.5), r=st.floats(0, 0.2))
def test_higher_price_never_raises_throughput_per_dollar(p1, dp, u, kwh, pue, r):
    region, fin = Region(usd_per_kwh=kwh, pue=pue), Finance(cost_of_capital=r)
    cheap = tco(replace(H20, price_usd=p1), region, fin, u)["usd_per_hour"]
    dear = tco(replace(H20, price_usd=p1 + dp), region, fin, u)["usd_per_hour"]
    throughput = 123.0
    assert throughput / dear <= throughput / cheap


@settings(max_examples=40, deadline=None)
@given(u1=st.floats(0, 1), u2=st.floats(0, 1))
def test_more_utilisation_more_energy(u1, u2):
    region, fin = Region(usd_per_kwh=0.1, pue=1.3), Finance()
    a, b = sorted((u1, u2))
    assert tco(H20, region, fin, a)["energy_usd_per_year"] <= \
        tco(H20, region, fin, b)["energy_usd_per_year"]


def test_hours_per_year():
    # a device drawing a constant 1 kW (idle = TDP, no host or fabric) at 1 USD/kWh, PUE 1,
    # pays for every hour of a 365.25-day year, and its hourly cost is the year's / 8766
    one_kw = replace(H20, tdp_W=1000.0, idle_W=1000.0, host_W=0.0, network_W=0.0)
    c = tco(one_kw, Region(usd_per_kwh=1.0, pue=1.0), Finance(maintenance_fraction=0.0), 0.3)
    assert c["energy_usd_per_year"] == pytest.approx(365.25 * 24)
    assert c["usd_per_hour"] * 365.25 * 24 == pytest.approx(c["tco_usd_per_year"])


def test_utilisation_outside_0_1_is_an_error_not_clamped():
    from accelsim.errors import AccelsimError

    with pytest.raises(AccelsimError, match="expected a fraction in"):
        tco(H20, Region(usd_per_kwh=0.1, pue=1.3), Finance(), utilization=1.5)

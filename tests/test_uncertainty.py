"""Monte Carlo over the profiles' ranges: correlated draws, bands, P(A beats B)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from accelsim import uncertainty as U
from accelsim.cli import app
from accelsim.devices import load_device
from accelsim.fleet import load_scenario
from tests.conftest import CONFIGS

runner = CliRunner()


def _cdf(x, low, mode, high):
    if x <= mode:
        return (x - low) ** 2 / ((high - low) * (mode - low))
    return 1 - (high - x) ** 2 / ((high - low) * (high - mode))


@pytest.fixture(scope="module")
def profiles():
    return {r: load_device(r).model_dump(mode="json") for r in ("ascend-910b", "ascend-910c",
                                                               "h20")}


def test_numbers_that_share_a_cause_share_their_quantile(profiles):
    field = "efficiency.compute"
    for corr, want_equal in ((True, True), (False, False)):
        d = U.draws(profiles, 30, seed=4, correlated=corr)
        qs = []
        for ref in ("ascend-910b", "ascend-910c"):
            q = profiles[ref]["efficiency"]["compute"]
            lo, hi = q["range"]
            qs.append([_cdf(x[ref][field], lo, q["value"], hi) for x in d])
        same = np.allclose(qs[0], qs[1], atol=1e-9)
        assert same == want_equal
    # different vendors (CUDA vs CANN) are independent even when correlated
    d = U.draws(profiles, 30, seed=4)
    h = [x["h20"][field] for x in d]
    a = [x["ascend-910b"][field] for x in d]
    assert abs(np.corrcoef(h, a)[0, 1]) < 0.9


def test_draws_are_seeded_and_within_the_ranges(profiles):
    a, b = U.draws(profiles, 20, seed=7), U.draws(profiles, 20, seed=7)
    assert a == b and a != U.draws(profiles, 20, seed=8)
    for ref, field, _ in U.ranged_fields(profiles):
        sec, key = field.split(".")
        lo, hi = profiles[ref][sec][key]["range"]
        assert all(lo <= x[ref][field] <= hi for x in a)


def test_a_cause_draws_the_same_whatever_the_other_profiles_hold(profiles):
    """Each cause has its own stream: a ranged field added to the H20's profile, or a device
    taken out of the pool, leaves the Ascend parts' draws as they were (they used to shift
    with every number drawn before theirs in one shared stream)."""
    base = U.draws(profiles, 10, seed=5)
    h20 = copy.deepcopy(profiles["h20"])
    q = h20["memory"]["memory_GiB"]
    h20["memory"]["memory_GiB"] = {**q, "range": [0.9 * q["value"], 1.1 * q["value"]]}
    more = U.draws({"h20": h20, **{r: profiles[r] for r in ("ascend-910b", "ascend-910c")}},
                   10, seed=5)
    fewer = U.draws({r: profiles[r] for r in ("ascend-910b", "ascend-910c")}, 10, seed=5)
    for ref in ("ascend-910b", "ascend-910c"):
        assert [x[ref] for x in more] == [x[ref] for x in base] == [x[ref] for x in fewer]
    assert [x["h20"]["memory.memory_GiB"] for x in more] != [q["value"]] * 10


@pytest.fixture(scope="module")
def table():
    return U.monte_carlo(load_scenario(CONFIGS / "fleet.yaml"), n=16, seed=2)


def test_bands_and_pairwise_probabilities(table):
    out = U.summarise(table)
    assert out["draws"] == 16
    names = list(out["p_beats"])
    year = dict(zip(table["fleet"], table["year"], strict=False))
    for a in names:
        b = out["bands"][a]["tco_usd_per_year"]
        assert b["p05"] <= b["p50"] * (1 + 1e-12) and b["p50"] <= b["p95"] * (1 + 1e-12)
        # ranked within the purchase year: no 2026 fleet is ranked against 2025 money
        assert set(out["p_beats"][a]) == {o for o in names if o != a and year[o] == year[a]}
        for other in out["p_beats"][a]:
            assert out["p_beats"][a][other] + out["p_beats"][other][a] == pytest.approx(1)
    # the ranking rule, draw by draw: a fleet within the rules ranks above one breaking them
    wide = table.pivot(index="draw", columns="fleet", values="rank")
    bad = table.pivot(index="draw", columns="fleet", values="n_violations") > 0
    for a in names:
        for b in out["p_beats"][a]:
            assert (wide[a] < wide[b])[~bad[a] & bad[b]].all()
    for y in set(year.values()):
        same = [n for n in names if year[n] == y]
        assert (np.sort(wide[same].to_numpy(), axis=1) == np.arange(1, len(same) + 1)).all()
    assert out["bands"]["all-h20"]["within_rules_share"] == 0  # over the overseas pool


def test_cli_json_is_strict(tmp_path):
    r = runner.invoke(app, ["uncertainty", str(CONFIGS / "fleet.yaml"), "--samples", "4",
                            "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert out["draws"] == 4 and "reported-split" in out["p_beats"]


def test_units_are_the_base_cases_in_every_draw_and_the_base_lies_in_its_band(table):
    """A spend-defined fleet is bought once at the base case's prices: its units are the
    same in every draw (a lower price draw no longer buys more units), so what moves is what
    those units deliver and cost; the base case lies within its own 5-95 % power band."""
    from accelsim.fleet import device_rows, evaluate_devices
    from accelsim.fleet.mix import fleet_units

    sc = load_scenario(CONFIGS / "fleet.yaml")
    rows = device_rows(evaluate_devices(sc))
    out = U.summarise(table)
    for mix in sc.fleets:
        units = sum(fleet_units(mix, rows).values())
        g = table[table["fleet"] == mix.name]
        assert (g["units"] == units).all(), mix.name
        b = out["bands"][mix.name]
        assert b["units"]["base"] == units
        assert b["power_MW"]["p05"] <= b["power_MW"]["base"] <= b["power_MW"]["p95"], mix.name
        assert b["tco_usd_per_year"]["base"] == pytest.approx(
            next(f for f in _compare(sc) if f["name"] == mix.name)["tco_usd_per_year"],
            rel=1e-9)


def _compare(sc):
    from accelsim.fleet import compare

    return compare(sc).fleets


def test_failure_shares_name_the_rules_and_add_up(table):
    """Each rule's share of the draws in which it fails: a fleet is within the rules in the
    draws where no budget, supply or power rule fails, and meets demand where no
    ``demand <workload>`` fails; all-H20 breaks the overseas pool in every draw."""
    out = U.summarise(table)
    for fleet, g in table.groupby("fleet"):
        b = out["bands"][fleet]
        fails = g["failed"].str.split("|")
        rules = fails.apply(lambda r: [x for x in r if x and not x.startswith("demand ")])
        demand = fails.apply(lambda r: [x for x in r if x.startswith("demand ")])
        assert b["within_rules_share"] == pytest.approx((rules.str.len() == 0).mean())
        assert b["meets_demand_share"] == pytest.approx((demand.str.len() == 0).mean())
        assert list(b["failure_shares"].values()) == sorted(b["failure_shares"].values(),
                                                            reverse=True)
        for rule, share in b["failure_shares"].items():
            assert 0 < share <= 1
            assert share == pytest.approx(fails.apply(lambda r, x=rule: x in r).mean())
    assert out["bands"]["all-h20"]["failure_shares"]["budget pool overseas"] == 1.0


def test_bands_on_what_a_planner_reads(table):
    """Days to train and tokens/day have bands, consistent draw by draw (days = tokens /
    tokens per day), and the CLI prints the failing rules with their shares."""
    sc = load_scenario(CONFIGS / "fleet.yaml")
    out = U.summarise(table)
    tokens = sc.workloads["training"].tokens
    np.testing.assert_allclose(table["days_to_train"] * table["training_tokens_per_day"],
                               tokens, rtol=1e-9)
    np.testing.assert_allclose(table["serving_per_usd"], table["serving_qps_whole_fleet"]
                               * 3600 * 8760 / table["tco_usd_per_year"], rtol=1e-12)
    for b in out["bands"].values():
        for m in ("days_to_train", "training_tokens_per_day", "chatbot_served_fraction",
                  "training_per_usd"):
            assert b[m]["p05"] <= b[m]["p50"] <= b[m]["p95"]
    r = runner.invoke(app, ["uncertainty", str(CONFIGS / "fleet.yaml"), "--samples", "4"])
    assert r.exit_code == 0, r.output
    assert "budget pool overseas 100 %" in r.stdout and "days to train" in r.stdout


def test_a_draw_at_every_value_is_the_base_case(monkeypatch):
    """The base case beside each band is what a draw gives with every ranged number at its
    value (the same fast path, no bias between the two)."""
    original = U.draws

    def at_values(dumped, n, seed, correlated=True):
        return [{ref: {f: float(dumped[ref][f.split(".")[0]][f.split(".")[1]]["value"])
                       for f in d[ref]} for ref in d} for d in original(dumped, n, seed)]

    monkeypatch.setattr(U, "draws", at_values)
    t = U.monte_carlo(load_scenario(CONFIGS / "fleet.yaml"), n=2, seed=1)
    for _, row in t.iterrows():
        for key, value in t.attrs["base"][row["fleet"]].items():
            assert row[key] == pytest.approx(value, rel=1e-12), (row["fleet"], key)

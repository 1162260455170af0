"""uncertainty --spend-fleets: a spend-defined fleet read as the base case's units
(base-units, the default) or as what its spend buys at each draw's prices within supply
caps (what-spend-buys); the base case inside its own band under both readings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from accelsim import uncertainty as U
from accelsim.cli import app
from accelsim.fleet import device_rows, evaluate_devices, load_scenario
from tests.conftest import CONFIGS

runner = CliRunner()
FLEET = CONFIGS / "fleet.yaml"
N = 100


@pytest.fixture(scope="module")
def seed():
    sc = load_scenario(FLEET)
    return sc, device_rows(evaluate_devices(sc))


@pytest.fixture(scope="module")
def tables(seed):
    sc, _ = seed
    return {r: U.monte_carlo(sc, n=N, seed=5, spend=r) for r in U.SPEND_READINGS}


def _whole_unit_slack(sc, mix, table):
    """A bound on what rounding a spend down to whole units leaves unspent: one unit of each
    of its devices, each at twice the highest mean price per unit of any draw (capex over
    units; the devices' prices differ, by less than 2x in the seed)."""
    g = table[table["fleet"] == mix.name]
    return float(len(mix.spend_usd or {}) * (g["capex_usd"] / g["units"]).max() * 2)


@pytest.mark.parametrize("reading", U.SPEND_READINGS)
def test_the_base_case_lies_inside_its_own_band(seed, tables, reading):
    """Every metric of every fleet: p05 <= base <= p95. Under what-spend-buys a fleet's
    capex is its spend less the rounding to whole units (and what supply caps leave
    unspent): its band sits just below the spend, the base case at its top, to within one
    unit a device."""
    sc, _ = seed
    out = U.summarise(tables[reading])
    assert out["spend_fleets"] == reading and f"--spend-fleets {reading}" in \
        out["spend_fleets_means"]
    for mix in sc.fleets:
        b = out["bands"][mix.name]
        slack = _whole_unit_slack(sc, mix, tables[reading])
        for metric, band in b.items():
            if not isinstance(band, dict) or band.get("base") is None or band["p05"] is None:
                continue
            tol = (slack if reading == "what-spend-buys" and metric == "capex_usd"
                   else 1e-9 * abs(band["base"]))
            assert band["p05"] - tol <= band["base"] <= band["p95"] + tol, \
                (mix.name, metric, band)


def test_what_the_spend_buys_keeps_each_pools_budget_and_the_supply_caps(seed, tables):
    """The seed's reported split (5.5 B domestic, 6.8 B overseas) breaks a pool budget in
    most draws when its base-case units are priced at the draw (the price ranges lean
    upward); re-bought at each draw's prices it never does, and never buys past a supply
    cap; its units move with the prices and the base case's are the base prices'."""
    sc, rows = seed
    frozen, spend = (U.summarise(tables[r]) for r in U.SPEND_READINGS)
    pools = ("budget pool domestic", "budget pool overseas")
    split_f = frozen["bands"]["reported-split"]
    split_s = spend["bands"]["reported-split"]
    assert max(split_f["failure_shares"].get(p, 0.0) for p in pools) > 0.5
    assert not any(p in split_s["failure_shares"] for p in pools)
    assert "budget total" not in split_s["failure_shares"]
    assert split_s["within_rules_share"] > split_f["within_rules_share"]
    g = tables["what-spend-buys"]
    for mix in sc.fleets:
        mine = g[g["fleet"] == mix.name]
        assert (mine["capex_usd"] <= sum((mix.spend_usd or {}).values()) * (1 + 1e-12)).all()
        fails = "|".join(mine["failed"])
        for d in mix.spend_usd or {}:
            assert f"supply {rows[d].device}" not in fails
        units = sum(min(np.floor(usd / rows[d].capex_usd), rows[d].max_units)
                    for d, usd in (mix.spend_usd or {}).items())
        assert spend["bands"][mix.name]["units"]["base"] == units
        assert mine["units"].nunique() > 1  # the price draws move what the spend buys
    # the default reading is unchanged: base-units' units are the same in every draw
    f = tables["base-units"]
    assert (f.groupby("fleet")["units"].nunique() == 1).all()


def test_cli_names_the_reading_and_refuses_an_unknown_one():
    r = runner.invoke(app, ["uncertainty", str(FLEET), "--samples", "4", "--json",
                            "--spend-fleets", "what-spend-buys"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["spend_fleets"] == "what-spend-buys"
    assert out["provenance"]["spend_fleets"] == "what-spend-buys"
    text = runner.invoke(app, ["uncertainty", str(FLEET), "--samples", "4"])
    assert text.exit_code == 0 and "--spend-fleets base-units" in text.stdout
    bad = runner.invoke(app, ["uncertainty", str(FLEET), "--spend-fleets", "cheapest"])
    assert bad.exit_code == 2
    (line,) = bad.stderr.strip().splitlines()
    assert line == (f"{FLEET}: --spend-fleets: expected one of base-units, what-spend-buys; "
                    "got 'cheapest'")


def test_an_unknown_spend_reading_is_refused_before_any_draw():
    """monte_carlo's spend (the Python API's --spend-fleets): an unknown reading is one
    problem naming the field, not read as what-spend-buys."""
    from accelsim.errors import AccelsimError

    with pytest.raises(AccelsimError) as err:
        U.monte_carlo(load_scenario(FLEET), 2, 1, "fleet.yaml", spend="base_units")
    (p,) = err.value.problems
    assert p.field == "spend" and "base-units, what-spend-buys" in p.message

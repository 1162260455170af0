"""Rented capacity as another supply in compare and sweeps (accelsim.fleet.mix rental rows,
accelsim.fleet.pricing.rental_table): a rented device adds its throughput, costs its price
for every hour of the year, draws no power in our regions, pays rent from its region's
pool and is held to its offer's availability limit."""

from __future__ import annotations

import copy

import pytest

from accelsim.config import read_yaml
from accelsim.errors import AccelsimError
from accelsim.fleet import FleetMix, compare, evaluate_devices, evaluate_fleet, load_scenario
from accelsim.fleet.mix import device_rows
from accelsim.fleet.scenario import scenario_from
from accelsim.kinds.scenario import values
from accelsim.sweep.overrides import apply_mapping
from accelsim.units import HOURS_PER_YEAR
from tests.conftest import CONFIGS

FLEET = CONFIGS / "fleet.yaml"
OFFER = "h100-reserved-1y"


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(FLEET)


@pytest.fixture(scope="module")
def table(scenario):
    return evaluate_devices(scenario)


def _with_rent(mix: FleetMix, rent: dict[str, int]) -> FleetMix:
    return mix.model_copy(update={"name": mix.name + "+rent", "rent": rent})


def test_renting_adds_capacity_and_rent_but_no_capex_or_power(scenario, table):
    rows = device_rows(table)
    base = next(f for f in scenario.fleets if f.name == "export-ban-2026")
    n = 1000
    own = evaluate_fleet(scenario, base, rows)
    both = evaluate_fleet(scenario, _with_rent(base, {OFFER: n}), rows)
    offer = scenario.rentals[OFFER]
    rent = n * offer.usd_per_device_hour * HOURS_PER_YEAR
    assert both["capex_usd"] == own["capex_usd"]
    assert both["power_MW"] == pytest.approx(own["power_MW"])
    assert both["rent_usd_per_year"] == pytest.approx(rent)
    # the owned devices' TCO moves only with their energy, as the allocation shifts them
    # between workloads of different load
    assert both["tco_usd_per_year"] - rent == pytest.approx(own["tco_usd_per_year"], rel=1e-3)
    assert both["pool_spend_usd"]["overseas"] == pytest.approx(
        own["pool_spend_usd"]["overseas"] + rent)  # sea's pool pays the rent
    thr = rows["h100-sxm"].throughput
    added = sum(both["workloads"][w]["capacity_whole_fleet"] - own["workloads"][w][
        "capacity_whole_fleet"] - n * thr[w] for w in thr)
    assert added == pytest.approx(0.0, abs=1e-6)
    assert both["rented"] == {OFFER: n} and "rented" not in own
    assert both["units"] == own["units"]


def test_renting_more_than_the_offer_supplies_breaks_its_limit(scenario, table):
    base = next(f for f in scenario.fleets if f.name == "export-ban-2026")
    cap = scenario.rentals[OFFER].max_units
    f = evaluate_fleet(scenario, _with_rent(base, {OFFER: cap + 8}), device_rows(table))
    supply = [v for v in f["violations"] if v.kind == "supply"]
    assert len(supply) == 1 and supply[0].value == cap + 8 and supply[0].limit == cap


def test_compare_prices_every_offer_against_owning(scenario, table):
    res = compare(scenario, dev_table=table)
    assert [r["offer"] for r in res.rentals] == list(scenario.rentals)
    for r in res.rentals:
        assert r["rent_over_owned"] == pytest.approx(r["usd_per_device_hour"]
                                                     / r["owned_usd_per_hour"])
        for rented, owned in r["per_usd"].values():
            # same device, same throughput: per USD in the ratio of the hourly prices
            if owned > 0:
                assert rented / owned == pytest.approx(1 / r["rent_over_owned"], rel=0.2)


def test_a_sweep_varies_the_rental_price(scenario, table):
    data = read_yaml(FLEET)
    metric = "fleet.export-ban-2026-rent.rent_usd_per_year"
    got = []
    for price in (1.0, 3.0):
        d = copy.deepcopy(data)
        apply_mapping(d, f"rentals.{OFFER}.usd_per_device_hour", price, "s")
        sc = scenario_from(d, FLEET)
        got.append(values(sc, table.to_dict(orient="records"), [metric], [])[metric])
    units = next(f for f in scenario.fleets if f.name == "export-ban-2026-rent").rent[OFFER]
    assert got == pytest.approx([units * p * HOURS_PER_YEAR for p in (1.0, 3.0)])


@pytest.mark.parametrize("change,field", [
    (lambda d: d["rentals"][OFFER].update(device="b200"), f"rentals.{OFFER}.device"),
    (lambda d: d["rentals"][OFFER].update(region="mars"), f"rentals.{OFFER}.region"),
    (lambda d: d["fleets"][0].update(rent={"nope": 1}), "fleets[0].rent.nope"),
])
def test_bad_rentals_are_one_line_errors(change, field):
    d = copy.deepcopy(read_yaml(FLEET))
    change(d)
    with pytest.raises(AccelsimError) as e:
        scenario_from(d, FLEET)
    assert e.value.problems[0].field == field


def test_compare_cli_prints_the_rent_or_buy_table_and_json():
    import json

    from typer.testing import CliRunner

    from accelsim.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["compare", str(FLEET), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [x["offer"] for x in out["rentals"]] == list(load_scenario(FLEET).rentals)
    rent = next(f for f in out["fleets"] if f["name"] == "export-ban-2026-rent")
    assert rent["rented"] == {OFFER: 20000} and rent["rent_usd_per_year"] > 0
    r = runner.invoke(app, ["compare", str(FLEET)], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "rent or buy" in r.stdout

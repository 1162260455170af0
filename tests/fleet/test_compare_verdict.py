"""compare's conclusions: a ranking per purchase year, capacity per USD, headroom, and one
verdict line per year."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.fleet import compare, device_rows, evaluate_devices, fleet_units, load_scenario
from accelsim.fleet.compare_verdict import SECONDS_PER_YEAR, annotate, headroom, verdicts
from accelsim.fleet.mix import demand, roles
from tests.conftest import CONFIGS

runner = CliRunner()
FLEET = CONFIGS / "fleet.yaml"


@pytest.fixture(scope="module")
def seed():
    sc = load_scenario(FLEET)
    dev = evaluate_devices(sc)
    res = compare(sc, dev_table=dev)
    annotate(sc, res.fleets, dev)
    return sc, dev, res


def test_ranks_are_within_each_purchase_year(seed):
    _, _, res = seed
    years = {f["year"] for f in res.fleets}
    assert years == {2025, 2026}
    for y in years:
        same = sorted((f for f in res.fleets if f["year"] == y), key=lambda f: f["rank"])
        assert [f["year_rank"] for f in same] == list(range(1, len(same) + 1))


def test_capacity_per_usd_is_the_whole_fleets_year_over_its_tco(seed):
    _, dev, res = seed
    for f in res.fleets:
        for w, v in f["workloads"].items():
            assert f["capacity_per_usd"][w] == pytest.approx(
                v["capacity_whole_fleet"] * SECONDS_PER_YEAR / f["tco_usd_per_year"])
    # one device type: the device table's per USD, to within the TCO's spread over workloads
    h20 = next(f for f in res.fleets if f["name"] == "all-h20")
    row = dev[(dev["device"] == "h20") & (dev["workload"] == "training")].iloc[0]
    assert h20["capacity_per_usd"]["training"] == pytest.approx(row["throughput_per_usd"],
                                                                rel=0.05)


def test_headroom_is_the_uniform_demand_multiple_the_units_serve(seed):
    sc, dev, res = seed
    rows = device_rows(dev)
    need = demand(sc)
    mix = next(m for m in sc.fleets if m.name == "reported-split")
    units = fleet_units(mix, rows)
    h = headroom(units, rows, need, roles(sc))
    f = next(f for f in res.fleets if f["name"] == "reported-split")
    assert f["headroom"] == pytest.approx(h)
    # meets demand with a little room: no more than training alone could take
    days = f["days_to_train"]
    assert 0 < h <= sc.workloads["training"].deadline_days / days - 1 + 1e-9
    # twice the units serve twice the demand multiple
    double = headroom({r: 2 * u for r, u in units.items()}, rows, need, roles(sc))
    assert 1 + double == pytest.approx(2 * (1 + h), rel=1e-5)  # the LP solver's tolerance
    # headroom >= 0 exactly when compare says the fleet meets demand
    for g in res.fleets:
        assert (g["headroom"] >= 0) == g["meets_demand"], g["name"]
    assert np.isfinite([f["headroom"] for f in res.fleets]).all()
    # rented devices add headroom (the rent variant of the export-ban mix rents H100s)
    by = {f["name"]: f for f in res.fleets}
    if "export-ban-2026-rent" in by:
        assert by["export-ban-2026-rent"]["headroom"] > by["export-ban-2026"]["headroom"]


def test_one_verdict_per_year_names_the_best_and_the_demoted_headroom(seed):
    sc, _, res = seed
    out = verdicts(sc, res.fleets)
    assert [v["year"] for v in out] == [2025, 2026]
    for v in out:
        best = next(f for f in res.fleets if f["year"] == v["year"] and f["year_rank"] == 1)
        assert v["best"] == best["name"] and v["line"].startswith(f"{v['year']}: {best['name']}")
        assert "\n" not in v["line"]
    v26 = out[1]
    # both 2026 fleets meet demand within the rules; the cheaper ranks first and the
    # verdict says it demotes the one with the most headroom
    assert v26["best"] == "export-ban-2026" and v26["most_headroom"] == "with-asic-2026"
    assert "most headroom" in v26["line"] and "would favour it" in v26["line"]
    assert out[0]["most_headroom"] is None  # 2025: the best is the only one meeting demand
    split = next(f for f in res.fleets if f["name"] == "reported-split")
    assert f"trains in {split['days_to_train']:.1f} of 60 days" in out[0]["line"]


def test_cli_prints_the_verdict_first_and_json_carries_it():
    r = runner.invoke(app, ["compare", str(FLEET), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [v["year"] for v in out["verdicts"]] == [2025, 2026]
    assert [(f["year"], f["year_rank"]) for f in out["fleets"]] == sorted(
        (f["year"], f["year_rank"]) for f in out["fleets"])
    assert all("headroom" in f and "capacity_per_usd" in f for f in out["fleets"])
    r = runner.invoke(app, ["compare", str(FLEET)])
    assert r.exit_code == 0, r.output
    text = r.stdout
    assert text.index("verdict") < text.index("tokens/s per device")
    assert "fleets bought in 2025" in text and "fleets bought in 2026" in text

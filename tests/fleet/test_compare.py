"""The scenario file, the comparison and the CLI end to end."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.errors import AccelsimError
from accelsim.fleet import compare, evaluate_devices, load_scenario
from tests.conftest import CONFIGS

runner = CliRunner()
FLEET = CONFIGS / "fleet.yaml"


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(FLEET)


@pytest.fixture(scope="module")
def devices(scenario):
    return evaluate_devices(scenario)


def test_device_table_covers_every_pool_device_and_workload(scenario, devices):
    assert len(devices) == 2 * len(scenario.pool_of())
    assert (devices["throughput"] > 0).all()
    per_usd = devices["throughput"] * 3600 / devices["usd_per_hour"]
    assert per_usd.to_numpy() == pytest.approx(devices["throughput_per_usd"].to_numpy())


def test_fleets_units_spend_and_rules(scenario, devices):
    res = compare(scenario, dev_table=devices)
    by = {f["name"]: f for f in res.fleets}
    rep = by["reported-split"]
    assert rep["units"]["h20"] == int(6.8e9 // (10_000 + 8_000 + 4_200))
    assert rep["pool_spend_usd"]["overseas"] <= 6.8e9
    assert not rep["violations"]
    assert any("pool overseas" in str(v) for v in by["all-h20"]["violations"])
    assert sorted(f["rank"] for f in res.fleets) == list(range(1, len(res.fleets) + 1))
    # a fleet with violations ranks below every fleet without
    assert by["all-h20"]["rank"] > max(f["rank"] for f in res.fleets if not f["violations"])
    # serving is covered first; the rest trains
    assert rep["serving_qps_at_slo"] >= scenario.workloads["serving"].peak_qps
    assert rep["training_tokens_per_day"] < rep["training_tokens_per_day_whole_fleet"]


def test_asic_not_available_in_2025(scenario, devices):
    from accelsim.fleet import FleetMix, evaluate_fleet

    mix = FleetMix(name="asic-2025", year=2025, spend_usd={"inhouse-asic": 1e9})
    f = evaluate_fleet(scenario, mix, devices)
    assert any("not available before 2026" in str(v) for v in f["violations"])


def test_cli_compare_json_csv_plot(tmp_path):
    r = runner.invoke(app, ["compare", str(FLEET), "--json", "--csv", str(tmp_path),
                            "--plot", str(tmp_path)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    for row in out["devices"]:
        assert {"device", "workload", "throughput", "usd_per_hour",
                "throughput_per_usd"} <= set(row)
    for f in out["fleets"]:
        assert {"name", "units", "capex_usd", "opex_usd_per_year", "tco_usd_per_year",
                "training_tokens_per_day", "serving_qps_at_slo", "meets_demand",
                "violations"} <= set(f)
    for name in ("devices.csv", "fleets.csv", "fleet_cost_performance.png",
                 "fleet_cost_performance.svg"):
        assert (tmp_path / name).stat().st_size > 1000


def test_cli_optimize_json():
    r = runner.invoke(app, ["optimize", str(FLEET), "--json", "--year", "2026"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {"units", "capex_usd", "pool_spend_usd", "objective", "binding_constraints"} <= set(out)
    assert out["pool_spend_usd"]["overseas"] <= 6.8e9 + 1
    assert sum(out["units"].get("inhouse-asic", {}).values()) <= 100_000


BROKEN = [
    (("budget", "pools", "domestic", "usd"), -5, "budget.pools.domestic.usd", "greater than 0"),
    (("budget", "pools", "domestic", "region"), "mars", "budget.pools.domestic.region",
     "unknown region 'mars'"),
    (("budget", "pools", "domestic", "devices"), ["ascend-910x"],
     "budget.pools.domestic.devices[0]", "did you mean"),
    (("regions", "sea", "pue"), 0.5, "regions.sea.pue", "greater than or equal to 1"),
    (("objective",), "profit", "objective", "'served_demand' or 'min_cost'"),
    (("supply", "tpu-v9"), {"max_units": 1}, "supply.tpu-v9", "in no budget pool"),
    (("workloads", "serving", "peak_qps"), "lots", "workloads.serving.peak_qps", "valid number"),
    (("fleets", 0, "spend_usd"), {"h30": 1e9}, "fleets[0].spend_usd.h30", "in no budget pool"),
]


@pytest.mark.parametrize("path,value,field,text", BROKEN, ids=[b[2] for b in BROKEN])
def test_broken_scenarios_one_line_each(tmp_path, path, value, field, text):
    data = yaml.safe_load(FLEET.read_text())
    node = data
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    p = tmp_path / "fleet.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(AccelsimError) as e:
        load_scenario(p)
    line = [ln for ln in str(e.value).splitlines() if field in ln]
    assert line and text in line[0], str(e.value)
    r = runner.invoke(app, ["compare", str(p)])
    assert r.exit_code == 2 and "Traceback" not in r.output

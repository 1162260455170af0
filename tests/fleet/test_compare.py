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
    assert len(devices) == len(scenario.workloads) * len(scenario.pool_of())
    # a device that cannot serve a workload says why (the MLU370 misses the chatbot's
    # TTFT on long prompts at any rate)
    zero = devices["throughput"] <= 0
    assert devices.loc[zero, "reason"].notna().all() and (~zero).sum() >= len(devices) - 2
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


SILENT_BEFORE = [
    # (mutation, field, text): inputs that used to be accepted and give NaN or a wrong table
    (lambda d: d["workloads"]["serving"].update(peak_qps=float("inf")),
     "workloads.serving.peak_qps", "finite number"),
    (lambda d: d["workloads"]["training"].update(tokens=float("inf")),
     "workloads.training.tokens", "finite number"),
    (lambda d: d["budget"].update(total_usd=float("inf")), "budget.total_usd", "finite number"),
    (lambda d: d["fleets"].append(dict(d["fleets"][0])), "fleets",
     "fleet names must be unique; repeated: reported-split"),
    (lambda d: d["fleets"].append({"name": "x", "units": {"h20": 1.5}}), "fleets[6].units.h20",
     "valid integer"),
    (lambda d: d["workloads"]["serving"].update(model="no-such-model"),
     "workloads.serving.model", "unknown recommendation model"),
    (lambda d: d["workloads"]["serving"].update(daily_profile=[-1.0] * 24),
     "workloads.serving.daily_profile[0]", "greater than or equal to 0"),
    (lambda d: d["workloads"]["serving"].update(daily_profile=[0.0] * 24),
     "workloads.serving.daily_profile", "at least one hour with load > 0"),
]


@pytest.mark.parametrize("mutate,field,text", SILENT_BEFORE, ids=[s[1] for s in SILENT_BEFORE])
def test_inputs_once_accepted_silently_are_errors(tmp_path, mutate, field, text):
    data = yaml.safe_load(FLEET.read_text())
    mutate(data)
    p = tmp_path / "fleet.yaml"
    p.write_text(yaml.safe_dump(data))
    r = runner.invoke(app, ["validate", str(p)])
    assert r.exit_code == 2, r.output
    assert any(line.startswith(f"{p}: {field}: ") and text in line
               for line in r.stderr.splitlines()), r.stderr


def test_two_profiles_with_one_name_in_a_scenario_are_an_error(tmp_path):
    data = yaml.safe_load(FLEET.read_text())
    twin = tmp_path / "my-h20.yaml"
    twin.write_text((CONFIGS / "devices" / "h20.yaml").read_text())  # also named 'h20'
    data["budget"]["pools"]["domestic"]["devices"].append(str(twin))
    p = tmp_path / "fleet.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(AccelsimError, match="second profile named 'h20'"):
        load_scenario(p)


def test_optimize_year_out_of_range_is_refused_before_evaluating(tmp_path):
    r = runner.invoke(app, ["optimize", str(FLEET), "--year", "1900"])
    assert r.exit_code == 2
    assert r.stderr.strip() == f"{FLEET}: --year: expected a year in 2010-2040, got 1900"


@pytest.fixture(scope="module")
def min_cost_scenario(tmp_path_factory):
    """The seed scenario at min_cost with a budget far below what the demand needs."""
    data = yaml.safe_load(FLEET.read_text())
    data["objective"] = "min_cost"
    data["budget"] = {"total_usd": 2e8, "pools": {
        "domestic": {**data["budget"]["pools"]["domestic"], "usd": 1e8},
        "overseas": {**data["budget"]["pools"]["overseas"], "usd": 1e8}}}
    p = tmp_path_factory.mktemp("mc") / "fleet.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_infeasible_min_cost_optimum_prints_the_best_mix_and_exits_3(min_cost_scenario):
    r = runner.invoke(app, ["optimize", str(min_cost_scenario), "--json"])
    assert r.exit_code == 3, r.output
    out = json.loads(r.stdout)
    assert out["feasible"] is False and out["objective_kind"] == "served_demand"
    assert out["capex_usd"] <= 2e8 + 1 and out["units"]
    line = r.stderr.strip()
    assert line.startswith(f"{min_cost_scenario}: workloads: no fleet meets the whole demand")


def test_json_is_strict_with_reasons_for_missing_numbers(min_cost_scenario):
    r = runner.invoke(app, ["compare", str(min_cost_scenario), "--json"])
    assert r.exit_code == 0, r.output

    def refuse(token):
        raise AssertionError(f"non-standard JSON number {token}")

    out = json.loads(r.stdout, parse_constant=refuse)
    unmet = [f for f in out["fleets"] if not f["meets_demand"]]
    assert unmet and all(f["objective"] is None for f in unmet)
    i = out["fleets"].index(unmet[0])
    assert "min_cost" in out["null_reasons"][f"fleets[{i}].objective"]


def test_compare_tables_fit_80_columns_and_csv_cells_hold_one_value(tmp_path):
    import io

    from accelsim.cli.common import console

    buf = io.StringIO()
    console.file, console.width = buf, 80
    try:
        r = runner.invoke(app, ["compare", str(FLEET), "--csv", str(tmp_path)])
    finally:  # back to the terminal's (or the test runner's) stdout and width
        console.file, console.width = None, None  # type: ignore[assignment]
    assert r.exit_code == 0, r.output
    text = buf.getvalue()
    assert max(len(x) for x in text.splitlines()) <= 80
    assert "serving M QPS at SLO, allocated" in text and "serving M QPS at SLO, whole fleet" in text
    assert "training: tokens/s per device" in text  # the unit, once, in the title
    import pandas as pd

    fleets = pd.read_csv(tmp_path / "fleets.csv")
    assert {"units.h20", "pool_spend_usd.overseas", "workloads.serving.capacity"} <= set(
        fleets.columns)
    for col in [c for c in fleets.columns if c.startswith(("units.", "allocation."))]:
        assert pd.api.types.is_numeric_dtype(fleets[col]) and fleets[col].notna().all(), col
    viol = pd.read_csv(tmp_path / "violations.csv")
    assert list(viol.columns) == ["fleet", "kind", "subject", "limit", "value", "unit"]
    all_h20 = fleets.set_index("name").loc["all-h20"]
    assert all_h20["n_violations"] == (viol["fleet"] == "all-h20").sum() > 0


def test_a_regions_power_capacity_is_a_violation_in_compare_and_a_constraint_in_optimize(
        tmp_path):
    data = yaml.safe_load(FLEET.read_text())
    data["regions"]["sea"]["power_capacity_mw"] = 150.0
    data["regions"]["sea"]["facility_built_mw"] = 100.0  # what the plan finds built
    for offer in data["rentals"].values():  # rented H100s draw no power of ours: closed
        offer["max_units"] = 0
    p = tmp_path / "fleet.yaml"
    p.write_text(yaml.safe_dump(data))
    sc = load_scenario(p)
    dev = evaluate_devices(sc)
    res = compare(sc, dev_table=dev)
    split = next(f for f in res.fleets if f["name"] == "reported-split")
    assert split["power_MW_by_region"]["sea"] > 150
    assert any(v.kind == "region_power" and v.subject == "sea" for v in split["violations"])
    from accelsim.fleet import device_rows, mix_problem
    from accelsim.optimize import solve

    out = solve(mix_problem(sc, dev))
    rows = device_rows(dev)
    sea_W = sum(units * rows[ref].wall_power_W[w]
                for ref, r in rows.items() if sc.budget.pools[r.pool].region == "sea"
                for w, units in out["units"].get(r.device, {}).items())
    assert sea_W <= 150e6 * (1 + 1e-9)
    assert any(b["constraint"] == "power region sea" for b in out["binding_constraints"])


def test_compare_says_which_rules_bind_and_by_how_much(scenario, devices):
    res = compare(scenario, dev_table=devices)
    by = {f["name"]: {r["rule"]: r for r in f["rules"]} for f in res.fleets}
    split = by["reported-split"]
    assert split["budget pool domestic"]["status"] == "binds"  # spends its pool
    assert split["budget pool domestic"]["value"] <= split["budget pool domestic"]["limit"]
    dom = by["domestic-only"]["demand training"]
    assert dom["status"] == "short" and dom["value"] < dom["limit"]
    f = next(x for x in res.fleets if x["name"] == "domestic-only")
    assert dom["value"] / dom["limit"] == pytest.approx(
        f["workloads"]["training"]["served_fraction"])
    allh20 = by["all-h20"]
    assert allh20["budget pool overseas"]["status"] == "broken"
    assert any(v.kind == "budget_pool" for v in next(
        x for x in res.fleets if x["name"] == "all-h20")["violations"])

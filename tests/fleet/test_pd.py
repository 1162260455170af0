"""Prefill/decode disaggregation as a fleet option (accelsim.fleet.pd): PD units as columns
of the routing programme against closed forms, the default ratios, and compare on a small
scenario."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.fleet import device_rows, evaluate_devices, load_scenario
from accelsim.fleet.pd import ratios
from accelsim.fleet.routing import most_served, route
from tests.conftest import CONFIGS
from tests.fleet import h20_and_910c_seed

runner = CliRunner()

# A: 3 req/s per unit colocated, B: 2; a PD unit takes 1 A + 2 B and serves 10 req/s.
CAP = np.array([[3.0], [2.0]])
WHOLE = np.array([3.0, 2.0])
PAIR = ((0, 1, 1.0, 2.0, 10.0),)
ONE = np.ones(1)


def test_pd_unit_is_taken_where_it_needs_fewer_units():
    # per request: PD 3 units / 10 = 0.3, A alone 0.33, B alone 0.5; A's 10 units make
    # 10 PD units (20 B): 100 req/s on 30 units
    got = route(100.0, ONE, CAP, WHOLE, np.array([10.0, 100.0]), np.ones(2), PAIR)
    assert got.w[0] == pytest.approx(10.0, rel=1e-5)
    assert got.units == pytest.approx([10.0, 20.0], rel=1e-5)


def test_most_served_with_pd_units_hand_solved():
    # A 5 units, B 100: 5 PD units (50 req/s, 10 B) and 90 B alone (180): 2.3 x 100 req/s,
    # against 5 x 3 + 100 x 2 = 215 colocated
    got = most_served(100.0, ONE, CAP, WHOLE, np.array([5.0, 100.0]), cap_at_one=False,
                      pairs=PAIR)
    assert got.lam == pytest.approx(2.3, rel=1e-6)
    plain = most_served(100.0, ONE, CAP, WHOLE, np.array([5.0, 100.0]), cap_at_one=False)
    assert plain.lam == pytest.approx(2.15, rel=1e-6)


@pytest.mark.parametrize("seed", range(10))
def test_pd_units_never_serve_less_than_colocated(seed):
    rng = np.random.default_rng(seed)
    D = int(rng.integers(2, 5))
    whole = rng.uniform(0.5, 5, D)
    pairs = tuple((int(rng.integers(D)), int(rng.integers(D)), float(rng.integers(1, 4)),
                   float(rng.integers(1, 8)), float(rng.uniform(1, 40))) for _ in range(3))
    units = rng.uniform(0, 100, D)
    a = most_served(300.0, ONE, whole[:, None], whole, units, cap_at_one=False, pairs=pairs)
    b = most_served(300.0, ONE, whole[:, None], whole, units, cap_at_one=False)
    assert a.lam >= b.lam * (1 - 1e-7)
    assert a.units == pytest.approx(np.minimum(a.units, units + 1e-6))  # within the units


def test_default_ratios_bracket_the_balance():
    assert ratios(4.3) == [(1, 4), (1, 5)]
    assert ratios(4.0) == [(1, 4)]
    assert ratios(0.4) == [(2, 1), (3, 1)]
    assert ratios(1.0) == [(1, 1)]


@pytest.fixture(scope="module")
def pd_scenario(tmp_path_factory):
    """The seed cut to two devices, a short chatbot simulation, PD 910C -> H20 at 1:2."""
    data = h20_and_910c_seed(disaggregation={"pairs": [
        {"prefill": "ascend-910c", "decode": "h20", "ratio": [1, 2]}]})
    data["fleets"] = [{"name": "mixed", "spend_usd": {"ascend-910c": 5.0e9, "h20": 6.0e9}}]
    path = tmp_path_factory.mktemp("pd") / "pd.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_compare_offers_pd_units_and_never_serves_less(pd_scenario):
    r = runner.invoke(app, ["compare", str(pd_scenario), "--json"])
    assert r.exit_code == 0, r.output
    f = json.loads(r.stdout)["fleets"][0]
    rt = f["routing"]["chatbot"]
    (label, unit), = rt["pd_units"].items()
    assert label == "PD 1:2 ascend-910c -> h20"
    assert unit["prefill_devices"] == 16 and unit["decode_devices"] == 32  # tp1 x dp16
    assert unit["rps_per_unit"] > 0
    assert rt["capacity_whole_fleet"] >= rt["capacity_whole_fleet_unrouted"] * (1 - 1e-7)
    text = runner.invoke(app, ["compare", str(pd_scenario)])
    assert text.exit_code == 0 and "prefill/decode" in text.stdout and "1:2" in text.stdout


@pytest.mark.parametrize("pairs, field, text", [
    ({"pairs": [{"prefill": "h100-sxm", "decode": "h20"}]},
     "workloads.chatbot.disaggregation.pairs[0].prefill", "in no budget pool"),
    ({"pairs": [{"prefill": "ascend-910c", "decode": "h20"}], "kv_transfer": "scaleup"},
     "workloads.chatbot", "kv_transfer scaleup needs prefill and decode on one device"),
    ({"pairs": [{"prefill": "h20", "decode": "h20", "ratio": [1]}]},
     "workloads.chatbot.disaggregation.pairs[0].ratio", "at least 2"),
    ({"pairs": []}, "workloads.chatbot.disaggregation.pairs", "at least 1"),
])
def test_bad_disaggregation_is_one_line_naming_the_field(pd_scenario, tmp_path, pairs, field,
                                                         text):
    data = yaml.safe_load(pd_scenario.read_text())
    data["workloads"]["chatbot"]["disaggregation"] = pairs
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    r = runner.invoke(app, ["compare", str(p)])
    assert r.exit_code == 2
    line = r.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"{p}: {field}") and text in line, line


def test_a_units_kv_transfer_is_the_closed_form(pd_scenario):
    from accelsim.fleet import load_scenario
    from accelsim.fleet.evaluation import resolve_devices
    from accelsim.fleet.pd import evaluate_pair
    from accelsim.workloads.llm_spec import mean_lengths, replica_sizes

    sc = load_scenario(pd_scenario)
    spec = sc.workloads["chatbot"]
    profiles = resolve_devices(sc)
    (unit,) = evaluate_pair(spec, 0, profiles, str(pd_scenario))
    a, b = profiles["ascend-910c"].spec, profiles["h20"].spec
    tp_a, _ = replica_sizes(spec, profiles["ascend-910c"], "t")[0]
    tp_b, rm_b = replica_sizes(spec, profiles["h20"], "t")[0]
    prompt, _ = mean_lengths(spec)
    # the prompt's KV bytes over the prefill side's scale-out links (no topology placed)
    want = (prompt * rm_b.kv_bytes_per_token * tp_b / (a.scaleout_bw_Bps * a.eff_comm
                                                       * min(tp_a, tp_b))
            + a.scaleout_latency_s)
    assert unit.kv_transfer_ms == pytest.approx(1e3 * want, rel=1e-9)
    assert (unit.p, unit.q) == (1, 2) and unit.rps > 0
    assert b.name == "h20"


# optimize: PD units as MILP columns (accelsim.optimize.problem.PDColumn). Hand-solved on
# one server = one device: A serves 3 req/s colocated, B 2, each 1 USD/yr of TCO; a PD unit
# takes 1 A + 2 B (3 USD/yr) and serves `rps`.
def _pd_rows(rps):
    from accelsim.fleet.mix import DeviceRow

    def row(name, thr, pd=()):
        return DeviceRow(device=name, pool="p", capex_usd=1.0, available_from=2020,
                         max_units=float("inf"), throughput={"chat": thr},
                         opex_usd_per_year={"chat": 1.0}, tco_usd_per_year={"chat": 1.0},
                         wall_power_W={"chat": 100.0}, pd={"chat": pd})

    unit = {"prefill": "a", "decode": "b", "p": 1, "q": 2, "prefill_devices": 1,
            "decode_devices": 2, "rps": rps}
    return {"a": row("a", 3.0, (unit,)), "b": row("b", 2.0)}


def _optimum(rows, need, **kw):
    from accelsim.fleet.routing import Routing
    from accelsim.optimize import build_problem, solve

    args = dict(pool_usd={"p": 1e9}, total_usd=1e9, power_cap_W=None, server=1,
                objective="min_cost", year=2025) | kw
    return solve(build_problem(rows, {"chat": need}, **args,
                               routed={"chat": Routing(ONE, ["all"], False, True)}),
                 marginals=False)


def test_optimize_buys_pd_units_where_they_cost_less_per_request():
    # per request: PD 3 / 10 = 0.3 USD/yr, A 1/3, B 1/2. 100 req/s: 10 units (30 USD/yr);
    # A alone 34 (ceil 33.3); 9 units + 4 A = 31
    got = _optimum(_pd_rows(10.0), 100.0)
    assert got["tco_usd_per_year"] == pytest.approx(30.0)
    (u,) = got["pd_units"]
    assert (u["pair"], u["units"], u["servers"]) == ("PD 1:2 a -> b", 10, {"a": 10, "b": 20})
    assert u["capacity"] == pytest.approx(100.0) == got["capacity"]["chat"]
    assert got["units"] == {"a": {"chat PD": 10}, "b": {"chat PD": 20}}
    assert got["power_MW"] == pytest.approx(30 * 100.0 / 1e6)
    # a supply cap on A (4 devices) leaves 4 units (40 req/s, 12 USD/yr) and 30 B (60)
    from dataclasses import replace

    rows = _pd_rows(10.0)
    rows["a"] = replace(rows["a"], max_units=4.0)
    capped = _optimum(rows, 100.0)
    assert capped["tco_usd_per_year"] == pytest.approx(12.0 + 30.0)
    assert capped["units"] == {"a": {"chat PD": 4}, "b": {"chat PD": 8, "chat": 30}}


def test_optimize_leaves_pd_units_that_cost_more_per_request():
    # PD 3 / 8 = 0.375 USD/yr a request against A's 1/3: 99 req/s on 33 A, no unit
    got = _optimum(_pd_rows(8.0), 99.0)
    assert got["tco_usd_per_year"] == pytest.approx(33.0)
    assert got["pd_units"] == [] and got["units"] == {"a": {"chat": 33}}


def test_optimize_breaks_a_pd_tie_for_plain_servers():
    # PD 3 / 9 = 1/3 a request, as A: 11 units or 33 A both cost 33 USD/yr; plain wins
    got = _optimum(_pd_rows(9.0), 99.0)
    assert got["tco_usd_per_year"] == pytest.approx(33.0)
    assert got["pd_units"] == [] and got["units"] == {"a": {"chat": 33}}


def test_a_pd_lot_is_the_fewest_units_on_whole_servers():
    from accelsim.optimize.problem import _lot

    assert _lot(8, 16, 64) == 1  # the seed's tp1 x dp16 replicas
    assert _lot(8, 4, 16) == 2  # a half-server prefill side
    assert _lot(8, 12, 8) == 2 and _lot(8, 3, 5) == 8


@pytest.fixture(scope="module")
def pd_budget_scenarios(tmp_path_factory):
    """The seed cut to the H20 and the 910C, the chatbot alone at min cost, 0.1 B USD for
    910Cs: without PD units, with 910C -> H20 units (default ratios), with H20 -> H20."""
    out = {}
    folder = tmp_path_factory.mktemp("pd-opt")
    for name, dis in [("plain", None),
                      ("pd", {"pairs": [{"prefill": "ascend-910c", "decode": "h20"}]}),
                      ("h20", {"pairs": [{"prefill": "h20", "decode": "h20"}]})]:
        data = h20_and_910c_seed(**({"disaggregation": dis} if dis else {}))
        data["workloads"] = {"chatbot": data["workloads"]["chatbot"]}
        data["objective"] = "min_cost"
        data["budget"]["pools"]["domestic"]["usd"] = 0.1e9
        data["fleets"] = [{"name": "h20", "spend_usd": {"h20": 1.0e9}}]
        out[name] = folder / f"{name}.yaml"
        out[name].write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _opt_json(path):
    r = runner.invoke(app, ["optimize", str(path), "--json", "--year", "2025"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_seed_cut_pd_units_cut_the_chatbots_cost_on_a_small_910c_budget(
        pd_budget_scenarios, tmp_path):
    """910Cs prefill for H20s: the 0.1 B USD of 910Cs go into PD units, which serve more
    requests per USD of TCO than the same 910Cs colocated; the MILP's figures are the
    units' (capacity = colocated servers x req/s per device + units x req/s per unit)."""
    plain, pd = (_opt_json(pd_budget_scenarios[k]) for k in ("plain", "pd"))
    need = plain["capacity"]["chatbot"]
    assert "pd_units" not in plain
    assert pd["tco_usd_per_year"] < plain["tco_usd_per_year"] * 0.97
    per_usd = (pd["capacity"]["chatbot"] / pd["tco_usd_per_year"]) / (
        need / plain["tco_usd_per_year"])
    assert per_usd > 1.03
    (u,) = pd["pd_units"]
    assert u["prefill"] == "ascend-910c" and u["decode"] == "h20" and u["p"] == 1
    assert u["devices"] == {"ascend-910c": 16 * u["units"], "h20": 16 * u["q"] * u["units"]}
    assert pd["units"]["ascend-910c"] == {"chatbot PD": u["devices"]["ascend-910c"]}
    assert pd["pool_spend_usd"]["domestic"] <= 0.1e9
    assert any(b["constraint"] == "budget pool domestic" for b in pd["binding_constraints"])
    sc = load_scenario(pd_budget_scenarios["pd"])
    rows = device_rows(evaluate_devices(sc))
    colocated = pd["units"]["h20"]["chatbot"] * rows["h20"].throughput["chatbot"]
    assert pd["capacity"]["chatbot"] == pytest.approx(colocated + u["units"] * u["rps_per_unit"],
                                                      rel=1e-9)
    from accelsim.fleet import demand

    assert pd["capacity"]["chatbot"] >= demand(sc)["chatbot"] * (1 - 1e-9)
    r = runner.invoke(app, ["optimize", str(pd_budget_scenarios["pd"]), "--year", "2025",
                            "--csv", str(tmp_path)])
    assert r.exit_code == 0 and "prefill/decode units bought" in r.stdout
    import pandas as pd_

    t = pd_.read_csv(tmp_path / "pd_units.csv")
    assert list(t["units"]) == [u["units"]] and "servers.h20" in t.columns


def test_seed_cut_pd_units_that_lose_change_nothing(pd_budget_scenarios):
    """H20 -> H20 units serve fewer requests per H20 than colocated H20s (0.52-0.58 against
    0.65): the optimum buys none and is the plain one."""
    plain, h20 = (_opt_json(pd_budget_scenarios[k]) for k in ("plain", "h20"))
    assert h20["pd_units"] == []
    assert h20["units"] == plain["units"]
    assert h20["tco_usd_per_year"] == pytest.approx(plain["tco_usd_per_year"], rel=1e-12)


# plan: PD lots as columns of the quarterly MILP (accelsim.plan), the same PDColumn.
def _toy_plan(rps, supply_a=1e9, quarters=4):
    from accelsim.optimize.problem import PDColumn
    from accelsim.plan import PlanProblem

    Q = quarters
    return PlanProblem(
        devices=["a", "b"], workloads=["chat"], capex=np.array([1000.0, 1000.0]),
        opex=np.array([[100.0], [100.0]]), tco=np.array([[300.0], [300.0]]),
        power=np.array([[100.0], [100.0]]), thr=np.array([[3.0], [2.0]]),
        demand=np.full((1, Q), 100.0), supply=np.array([np.full(Q, supply_a), np.full(Q, 1e9)]),
        pool_of=["A", "A"], pool_share={"A": 1.0}, budget=np.full(Q, 1e9),
        year_of=2025 + np.arange(Q) // 4, region_of=["r", "r"], region_caps_W={},
        power_cap_W=None, server=1, rate=0.0, life_years=5.0, builds={}, facility_years=15.0,
        penalty=np.array([20.0]), off_saving=np.array([[50.0], [50.0]]),
        pd=(PDColumn("chat", "a", "b", 1, 2, 1, 2, rps, 1),), pd_use=np.array([[1.0, 2.0]]),
        pd_workload=[0])


def test_plan_buys_pd_lots_where_they_cost_less_per_request():
    """A flat 100 req/s over a year at rate 0: a device costs its capex less the residual
    (1,000 x 1/5) plus a year of opex (100): 300 USD. PD units at 10 req/s serve it with
    10 x 3 devices (9,000 USD) against 34 A (10,200 less a part-server powered off); at 8
    req/s they lose; with 4 A a quarter, 4 units and 30 B (12,600 USD)."""
    from accelsim.plan import solve_plan

    res = solve_plan(_toy_plan(10.0))
    assert res["cost_pv_usd"] == pytest.approx(9000.0)
    q = res["quarters"][0]
    assert q["installed"] == {"a": 10, "b": 20} and q["capex_usd"] == pytest.approx(30_000)
    (u,) = q["pd_units"].values()
    assert (u["delivered"], u["on"], u["capacity"]) == (10, 10.0, pytest.approx(100.0))
    assert q["power_MW"] == pytest.approx(30 * 100.0 / 1e6)
    assert all(r["pd_units"]["PD 1:2 a -> b"]["delivered"] == 0 for r in res["quarters"][1:])
    lose = solve_plan(_toy_plan(8.0))
    assert all(not r["pd_units"] for r in lose["quarters"])
    assert lose["quarters"][0]["installed"] == {"a": 34}
    capped = solve_plan(_toy_plan(10.0, supply_a=4))
    assert capped["cost_pv_usd"] == pytest.approx(42 * 300.0)
    assert capped["quarters"][0]["delivered"] == {"a": 4, "b": 38}


@pytest.fixture(scope="module")
def pd_plans(tmp_path_factory):
    """The H20 + 910C cut with the seed's plan over 2025 (the chatbot alone, +15 % a
    quarter; 0.1 B USD of 6.9 B in the domestic pool): without and with 910C -> H20 units."""
    from accelsim.plan import build, solve_plan

    seed = yaml.safe_load((CONFIGS / "fleet.yaml").read_text())["plan"]
    seed.update(quarters=4, budget_usd_per_year={2025: 12.3e9},
                demand_growth_per_quarter={"chatbot": 0.15}, unserved_penalty={"chatbot": 50},
                deliveries={k: v for k, v in seed["deliveries"].items()
                            if k in ("h20", "ascend-910c")})
    out = {}
    for name, dis in [("plain", None),
                      ("pd", {"pairs": [{"prefill": "ascend-910c", "decode": "h20"}]})]:
        data = h20_and_910c_seed(**({"disaggregation": dis} if dis else {}))
        data["workloads"] = {"chatbot": data["workloads"]["chatbot"]}
        data["budget"]["pools"]["domestic"]["usd"] = 0.1e9
        data["fleets"] = [{"name": "h20", "spend_usd": {"h20": 1.0e9}}]
        data["plan"] = seed
        path = tmp_path_factory.mktemp("pd-plan") / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        sc = load_scenario(path)
        dev = evaluate_devices(sc)
        out[name] = (path, sc, dev, solve_plan(build(sc, dev, sc.plan)))
    return out


def test_seed_cut_plan_puts_the_910cs_into_pd_units(pd_plans, tmp_path):
    """The plan may buy PD units as optimize does: with them its objective is no higher
    (to the MIP gap), the 910Cs go into units, and each quarter's chatbot capacity is its
    colocated servers' plus units on x req/s per unit."""
    from accelsim.plan import MIP_GAP

    *_, plain = pd_plans["plain"]
    path, _, dev, res = pd_plans["pd"]
    assert res["objective_usd"] <= plain["objective_usd"] * (1 + MIP_GAP)
    assert res["objective_usd"] < plain["objective_usd"] * 0.97
    rows = device_rows(dev)
    units = [u for q in res["quarters"] for u in q["pd_units"].values()]
    assert units and max(u["installed"] for u in units) > 0
    for q in res["quarters"]:
        assert q["served_fraction"]["chatbot"] >= 0.99
        (u,) = q["pd_units"].values()
        assert u["devices_on"]["ascend-910c"] == pytest.approx(16 * u["on"])
        assert u["capacity"] == pytest.approx(u["on"] * u["rps_per_unit"])
        # colocated H20s and 910Cs on: installed less the units' and those powered off
        on = {d: q["installed"].get(d, 0) - q["powered_off"].get(d, 0)
              - u["devices_on"].get(d, 0.0) for d in ("h20", "ascend-910c")}
        colocated = sum(n * rows[d].throughput["chatbot"] for d, n in on.items())
        assert q["capacity"]["chatbot"] == pytest.approx(colocated + u["capacity"], abs=10.0)
    r = runner.invoke(app, ["plan", str(path), "--csv", str(tmp_path)])
    assert r.exit_code == 0 and "prefill/decode units" in r.stdout
    import pandas as pd_

    t = pd_.read_csv(tmp_path / "quarters.csv")
    ((label, first),) = res["quarters"][0]["pd_units"].items()
    assert label.startswith("PD 1:") and label.endswith(" ascend-910c -> h20")
    assert t[f"pd_units.{label}.capacity"].iloc[0] == pytest.approx(first["capacity"],
                                                                    rel=1e-9)

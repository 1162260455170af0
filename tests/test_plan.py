"""The multi-year purchase plan: every rule holds in every quarter and year; bad plans are
one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.errors import AccelsimError
from accelsim.fleet import evaluate_devices, load_scenario
from accelsim.plan import build, solve_plan
from tests.conftest import CONFIGS

runner = CliRunner()
FLEET = CONFIGS / "fleet.yaml"


@pytest.fixture(scope="module")
def seed_plan():
    sc = load_scenario(FLEET)
    dev = evaluate_devices(sc)
    p = build(sc, dev, sc.plan)
    return sc, dev, p, solve_plan(p)


def test_every_rule_holds_in_every_quarter_and_year(seed_plan):
    sc, _, p, res = seed_plan
    assert res["proven_optimal"] and len(res["quarters"]) == 12
    for q, quarter in enumerate(res["quarters"]):
        for d, dev in enumerate(p.devices):
            assert quarter["delivered"].get(dev, 0) <= p.supply[d, q]
        assert quarter["power_MW"] <= sc.power_cap_mw + 1e-6
    # the ASIC from 2026 (seed 004), no H20 after the assumed export rule (2025Q3)
    assert all("inhouse-asic" not in q["delivered"] for q in res["quarters"][:4])
    assert all("h20" not in q["delivered"] for q in res["quarters"][3:])
    for year, spent in res["capex_usd_by_year"].items():
        assert spent <= sc.plan.budget_usd_per_year[year] * (1 + 1e-9)
    # installed never shrinks (no retirements within a device's life)
    for a, b in zip(res["quarters"], res["quarters"][1:], strict=False):
        for dev, units in a["installed"].items():
            assert b["installed"].get(dev, 0) >= units


def test_with_room_to_spare_every_quarter_is_served(seed_plan):
    sc, dev, _, _ = seed_plan
    spec = sc.plan.model_copy(update={
        "budget_usd_per_year": dict.fromkeys(sc.plan.budget_usd_per_year, 1e12),
        "demand_growth_per_quarter": {}, "deliveries": {}})
    roomy = sc.model_copy(update={"power_cap_mw": None, "supply": {}, "regions": {
        k: r.model_copy(update={"facility_built_mw": None, "power_capacity_mw": None})
        for k, r in sc.regions.items()}})
    p = build(roomy, dev, spec)
    res = solve_plan(p)
    # served to within one server (whole servers, solved to the MIP gap: the solver may
    # leave part of a server's throughput unserved rather than buy one more)
    one = p.thr.max(axis=0) * p.server
    for q in res["quarters"]:
        for i, w in enumerate(p.workloads):
            assert (1 - q["served_fraction"][w]) * q["demand"][w] <= one[i], (q["quarter"], w)


@pytest.mark.parametrize("change,field", [
    (lambda d: d["plan"]["budget_usd_per_year"].pop(2027), "plan.budget_usd_per_year"),
    (lambda d: d["plan"]["deliveries"].update({"tpu-v9": {"units_per_quarter": 1}}),
     "plan.deliveries.tpu-v9"),
    (lambda d: d["plan"]["deliveries"]["h20"].update({"end": "2025-Q3"}),
     "plan.deliveries.h20.end"),
])
def test_bad_plans_are_one_line(tmp_path, change, field):
    data = yaml.safe_load(FLEET.read_text())
    change(data)
    p = tmp_path / "fleet.yaml"
    p.write_text(yaml.safe_dump(data))
    r = runner.invoke(app, ["plan", str(p)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert any(field in line for line in r.stderr.splitlines()), r.stderr


def test_cli_json_is_strict_and_a_scenario_without_a_plan_is_refused(tmp_path):
    r = runner.invoke(app, ["plan", str(FLEET), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)  # no solver noise on stdout
    assert len(out["quarters"]) == 12 and out["proven_optimal"] is True
    data = yaml.safe_load(FLEET.read_text())
    del data["plan"]
    p = tmp_path / "fleet.yaml"
    p.write_text(yaml.safe_dump(data))
    r = runner.invoke(app, ["plan", str(p)])
    assert r.exit_code == 2 and r.stderr.startswith(f"{p}: plan: required")


def test_supply_rows_are_the_deliveries(seed_plan):
    sc, _, p, _ = seed_plan
    h20 = p.devices.index("h20")
    assert list(p.supply[h20][:3]) == [150_000] * 3 and not p.supply[h20][3:].any()
    with pytest.raises(AccelsimError):
        build(sc, seed_plan[1], sc.plan.model_copy(update={"quarters": 16}))  # no 2028 budget
    assert np.all(p.demand[:, 1:] >= p.demand[:, :-1])  # growth is non-negative here


def test_facility_builds_power_on_after_their_build_time(seed_plan):
    _, _, p, res = seed_plan
    assert p.builds, "the seed scenario owns its facilities"
    for g, (built_W, cap_W, lag, _) in p.builds.items():
        started = [q["facility_started_MW"].get(g, 0.0) for q in res["quarters"]]
        for q, quarter in enumerate(res["quarters"]):
            online = quarter["facility_MW"][g]
            assert online == pytest.approx(built_W / 1e6 + sum(started[:max(q - lag + 1, 0)]))
            assert quarter["region_power_MW"][g] <= online * (1 + 1e-6)
            assert online <= cap_W / 1e6 * (1 + 1e-9)
            if q < lag:
                assert online == pytest.approx(built_W / 1e6)
    assert sum(res["facility_capex_usd"].values()) > 0  # the seed plan builds


def test_owned_facilities_are_paid_once_and_a_shorter_build_costs_no_more(seed_plan):
    sc, dev, p, res = seed_plan
    from accelsim.cost import capital_recovery_factor

    rented = sc.model_copy(update={"regions": {
        k: r.model_copy(update={"facility_built_mw": None}) for k, r in sc.regions.items()}})
    pr = build(rented, dev, sc.plan)
    assert not pr.builds
    crf = float(capital_recovery_factor(sc.finance.cost_of_capital, sc.finance.facility_years))
    for d, g in enumerate(p.region_of):
        reg = sc.regions[g]
        dropped = p.power[d] * reg.facility_capex_usd_per_mw / 1e6 / reg.pue * crf
        np.testing.assert_allclose(pr.opex[d] - p.opex[d], dropped, rtol=1e-12)
    fast = sc.model_copy(update={"regions": {
        k: r.model_copy(update={"facility_build_quarters": 0}) for k, r in sc.regions.items()}})
    res0 = solve_plan(build(fast, dev, sc.plan))
    # a shorter build time only widens the choices (the present cost alone may rise: it
    # serves more demand)
    assert res0["objective_usd"] <= res["objective_usd"] * (1 + 2e-3)  # both MIP gaps
    full = sc.model_copy(update={"regions": {
        k: r.model_copy(update={"facility_built_mw": r.power_capacity_mw})
        for k, r in sc.regions.items()}})
    res_full = solve_plan(build(full, dev, sc.plan))
    assert sum(res_full["facility_capex_usd"].values()) == pytest.approx(0.0, abs=1.0)


def test_built_beyond_the_grid_allowance_is_refused(tmp_path):
    data = yaml.safe_load(FLEET.read_text())
    data["regions"]["sea"]["facility_built_mw"] = 700
    p = tmp_path / "fleet.yaml"
    p.write_text(yaml.safe_dump(data))
    r = runner.invoke(app, ["validate", str(p)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "regions.sea" in r.stderr and "power_capacity_mw" in r.stderr, r.stderr


def test_the_seed_plan_serves_every_workload_the_rules_allow(seed_plan):
    """A workload is short only where a rule binds: every quarter with a shortfall names a
    rule binding in that quarter or its year with a nonzero marginal value. The seed's one
    chatbot shortfall (2025Q4: its +15 % growth can only be met by H20s delivered by
    2025Q3, in a sea facility that is full, the domestic pool spent) is the price of its
    penalty: at 60x instead of 50x it is served in every quarter."""
    sc, dev, p, res = seed_plan
    assert sc.plan.unserved_penalty == {"training": 20, "serving": 50, "chatbot": 50}
    assert list(p.penalty) == [20, 50, 50]
    valued = {(b["rule"], b["when"]) for b in res["binding"]
              if b["status"] == "binds" and b["marginal_usd"]}
    for q in res["quarters"]:
        if min(q["served_fraction"].values()) < 0.99:
            when = (q["quarter"], q["quarter"][:4])
            assert any(w in when for _, w in valued), q["quarter"]  # no silent shortfall
    short = {q["quarter"] for q in res["quarters"] if q["served_fraction"]["chatbot"] < 0.99}
    assert short <= {"2025Q4"}, short
    if short:
        assert ("facility online in sea", "2025Q4") in valued
    assert {b for b, _ in valued} >= {"budget pool domestic", "power cap"}
    from dataclasses import replace

    dear = solve_plan(replace(p, penalty=np.array([20.0, 50.0, 60.0])))
    assert all(q["served_fraction"]["chatbot"] >= 0.99 for q in dear["quarters"])
    # with the rules that bind lifted (power and facilities) and a larger budget, every
    # workload is served in every quarter deliveries allow
    free = sc.model_copy(update={"power_cap_mw": None, "regions": {
        k: r.model_copy(update={"facility_built_mw": None, "power_capacity_mw": None})
        for k, r in sc.regions.items()}})
    spec = sc.plan.model_copy(update={"budget_usd_per_year": dict.fromkeys(
        sc.plan.budget_usd_per_year, 30e9)})
    out = solve_plan(build(free, dev, spec))
    for q in out["quarters"]:
        assert min(q["served_fraction"].values()) >= 0.99, q


def test_servers_are_powered_off_when_power_binds(seed_plan):
    """Installed servers may be powered off (they keep their maintenance, save their
    energy): under the 2027 power cap the plan switches off H20s bought in 2025 rather
    than leaving demand unserved; power counts the servers on, never more than delivered."""
    sc, _, p, res = seed_plan
    off = {q["quarter"]: q["powered_off"] for q in res["quarters"]}
    assert any(off[f"2027Q{i}"] for i in range(1, 5))
    for q in res["quarters"]:
        for dev, units in q["powered_off"].items():
            assert 0 < units <= q["installed"][dev]
        on_W = sum((q["installed"].get(d, 0) - q["powered_off"].get(d, 0)) * p.power[i, 0]
                   for i, d in enumerate(p.devices))
        assert on_W / 1e6 == pytest.approx(q["power_MW"], rel=1e-3, abs=1.0)
        assert q["power_MW"] <= sc.power_cap_mw * (1 + 1e-6)
    # the 2027 cap no longer strands the chatbot (it was 87 % served in 2027Q4 when every
    # server delivered drew power to the horizon's end)
    assert res["quarters"][-1]["served_fraction"]["chatbot"] >= 0.99
    assert (p.off_saving >= 0).all() and (p.off_saving < p.opex).all()


def test_a_penalty_below_the_dearest_device_leaves_the_chatbot_unserved(seed_plan):
    """The penalty is what decides: at 1x (cheaper than any chatbot device over the
    horizon) the plan serves none of it; the binding list says so with its cost."""
    sc, dev, _, _ = seed_plan
    spec = sc.plan.model_copy(update={"unserved_penalty": {
        **sc.plan.unserved_penalty, "chatbot": 1.0}})
    res = solve_plan(build(sc, dev, spec))
    assert max(q["served_fraction"]["chatbot"] for q in res["quarters"]) < 0.5
    short = [b for b in res["binding"] if b["rule"] == "demand chatbot"]
    assert len(short) >= 10 and all(b["marginal_usd"] > 0 for b in short)


def test_marginal_values_match_a_re_solve(seed_plan):
    """The LP dual of the power cap (binding in the last quarter) predicts the objective's
    change when the cap is 1 % higher (the MILP re-solved, to within the gaps)."""
    from dataclasses import replace

    _, _, p, res = seed_plan
    dual = sum(b["marginal_usd"] for b in res["binding"] if b["rule"] == "power cap")
    assert dual > 0
    step_W = 0.01 * p.power_cap_W
    again = solve_plan(replace(p, power_cap_W=p.power_cap_W + step_W))
    saved = res["objective_usd"] - again["objective_usd"]
    assert saved > 0
    assert saved == pytest.approx(dual * step_W / 1e6, rel=0.3, abs=2e-3 * res["objective_usd"])


def test_plan_csv_and_no_numerical_zeros(tmp_path, seed_plan):
    r = runner.invoke(app, ["plan", str(FLEET), "--csv", str(tmp_path)])
    assert r.exit_code == 0, r.output
    import pandas as pd

    q = pd.read_csv(tmp_path / "quarters.csv")
    b = pd.read_csv(tmp_path / "binding.csv")
    assert len(q) == 12 and {"served_fraction.chatbot", "binds"} <= set(q.columns)
    assert {"when", "rule", "marginal_usd", "marginal_per"} <= set(b.columns)
    m = b["marginal_usd"].dropna().abs()
    assert not ((m > 0) & (m < 1e-9)).any()
    assert "e-1" not in r.stdout  # no 4.9e-16 beside a rule


@pytest.fixture(scope="module")
def routed_plan(tmp_path_factory):
    """The seed scenario with its chatbot routed by prompt size (``routing: size``: three
    buckets, cut at the median and the 90th percentile)."""
    data = yaml.safe_load(FLEET.read_text())
    data["workloads"]["chatbot"]["routing"] = "size"
    path = tmp_path_factory.mktemp("routed") / "fleet.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    sc = load_scenario(path)
    dev = evaluate_devices(sc)
    p = build(sc, dev, sc.plan)
    return sc, dev, p, solve_plan(p)


def test_a_routed_plan_costs_no_more_and_meets_every_buckets_demand(seed_plan, routed_plan):
    """Routing only adds columns (a device's servers on one prompt-size bucket alone), so
    the routed plan's objective is the unrouted one's or less (to within the MIP gap);
    every bucket's demand is served in every quarter, and each bucket's capacity is the
    devices on: the whole mix serves its share s_b of the bucket, a bucket's own servers
    their requests/s on it."""
    from accelsim.fleet import device_rows
    from accelsim.plan import MIP_GAP

    _, _, p, plain = seed_plan
    sc, dev, pr, res = routed_plan
    assert "routed" not in plain["quarters"][0] and p.buckets is None
    assert pr.buckets.names == ["chatbot[< 710]", "chatbot[710-2099]", "chatbot[>= 2100]"]
    assert res["objective_usd"] <= plain["objective_usd"] * (1 + MIP_GAP)
    rows = {r.device: r for r in device_rows(dev).values()}
    offers = {f"rent:{k}": rows[o.device] for k, o in sc.rentals.items()}
    used_buckets = set()
    for q in res["quarters"]:
        r = q["routed"]["chatbot"]
        assert sum(b["share"] for b in r["buckets"].values()) == pytest.approx(1.0)
        for i, (lab, b) in enumerate(r["buckets"].items()):
            assert b["demand"] == pytest.approx(b["share"] * q["demand"]["chatbot"])
            assert b["served_fraction"] >= 0.99, (q["quarter"], lab)
            want = err = 0.0
            for d, per in r["devices"].items():
                row = rows.get(d) or offers[d]
                want += b["share"] * per.get("whole mix", 0) * row.throughput["chatbot"]
                want += per.get(lab, 0) * row.buckets["chatbot"][i]
                err += row.throughput["chatbot"]  # devices are rounded to whole ones
                used_buckets |= {k for k in per if k != "whole mix"}
            assert b["capacity"] == pytest.approx(want, abs=err)
            assert b["served_fraction"] == pytest.approx(min(1, b["capacity"] / b["demand"]))
        assert q["served_fraction"]["chatbot"] == pytest.approx(
            min(b["served_fraction"] for b in r["buckets"].values()))
    assert used_buckets, "some device serves a bucket alone"
    r = runner.invoke(app, ["plan", str(FLEET), "--set", "workloads.chatbot.routing=size",
                            "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["quarters"][0]["routed"]["chatbot"]["buckets"]["< 710"]["served_fraction"] > 0

"""Prefill/decode disaggregation as a fleet option (accelsim.fleet.pd): PD units as columns
of the routing programme against closed forms, the default ratios, and compare on a small
scenario."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.fleet.pd import ratios
from accelsim.fleet.routing import most_served, route
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

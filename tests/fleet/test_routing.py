"""Request-size routing across device types (accelsim.fleet.routing): the programme against
closed forms, the allocation it feeds, and compare on a small routed scenario."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.fleet import allocate, load_scenario
from accelsim.fleet.mix import DeviceRow, capacities
from accelsim.fleet.routing import (
    Routing,
    bucket_dist,
    bucket_labels,
    bucket_shares,
    most_served,
    route,
)
from accelsim.traffic import LogNormal, dist_mean
from tests.conftest import CONFIGS
from tests.fleet import h20_and_910c_seed

runner = CliRunner()

# The hand-solved case: device A is fast on short prompts, B on long ones.
#             short  long  whole
CAP = np.array([[10.0, 1.0], [6.0, 3.0]])
WHOLE = np.array([4.0, 5.0])
SHARES = np.array([0.8, 0.2])
NEED = 100.0  # 80 short, 20 long requests/s


def test_hand_solved_cheapest_assignment():
    # per request: A short 0.1 unit, B long 1/3 unit: 8 + 6.667 units; B whole alone: 20
    got = route(NEED, SHARES, CAP, WHOLE, np.array([1e6, 1e6]), np.ones(2))
    assert got.lam == pytest.approx(1.0)
    assert got.units.sum() == pytest.approx(8 + 20 / 3, rel=1e-5)
    assert got.y[0, 0] == pytest.approx(8, rel=1e-5)
    assert got.y[1, 1] == pytest.approx(20 / 3, rel=1e-5)


def test_hand_solved_most_served_on_few_units():
    # 5 units each: A all short (50/s); B splits x short, 5 - x long with
    # 50 + 6x = 80 lam and 3 (5 - x) = 20 lam: x = 5/9, lam = 2/3. Unrouted: (20 + 25)/100.
    got = most_served(NEED, SHARES, CAP, WHOLE, np.array([5.0, 5.0]))
    assert got.lam == pytest.approx(2 / 3, rel=1e-5)
    plain = most_served(NEED, SHARES, np.zeros_like(CAP), WHOLE, np.array([5.0, 5.0]))
    assert plain.lam == pytest.approx(0.45, rel=1e-5)


def test_one_device_type_whose_buckets_match_its_whole_rate_is_todays_answer():
    got = route(NEED, SHARES, np.array([[5.0, 5.0]]), np.array([5.0]), np.array([1e6]),
                np.ones(1))
    assert got.units.sum() == pytest.approx(NEED / 5.0, rel=1e-5)
    # one device type, unequal buckets: the cheaper of the split (sum s_b / c_b per
    # request) and the whole mix (1 / c)
    cap = np.array([[6.0, 2.0]])
    got = route(NEED, SHARES, cap, np.array([4.0]), np.array([1e6]), np.ones(1))
    assert got.units.sum() == pytest.approx(NEED * min(0.8 / 6 + 0.2 / 2, 1 / 4.0), rel=1e-5)


@pytest.mark.parametrize("seed", range(20))
def test_routing_never_does_worse_than_whole_distribution_serving(seed):
    rng = np.random.default_rng(seed)
    D, B = rng.integers(1, 5), rng.integers(2, 5)
    cap = rng.uniform(0, 10, (D, B)) * (rng.uniform(size=(D, B)) > 0.2)
    whole = rng.uniform(0.1, 8, D)
    shares = rng.dirichlet(np.ones(B))
    units = rng.uniform(0, 50, D)
    need = float(rng.uniform(10, 400))
    routed = most_served(need, shares, cap, whole, units, cap_at_one=False)
    plain = most_served(need, shares, np.zeros_like(cap), whole, units, cap_at_one=False)
    assert plain.lam == pytest.approx(float(units @ whole) / need, rel=1e-5)
    assert routed.lam >= plain.lam * (1 - 1e-7)
    price = rng.uniform(0.1, 1, D)
    r = route(need, shares, cap, whole, np.full(D, 1e6), price)
    p = route(need, shares, np.zeros_like(cap), whole, np.full(D, 1e6), price)
    assert r.units @ price <= p.units @ price * (1 + 1e-6)


def test_bucket_shares_and_histograms_follow_the_distribution():
    d = LogNormal(dist="lognormal", mean=1000, cv=1.0, max=8000)
    edges = (500, 2000)
    s = bucket_shares(d, edges)
    assert s.sum() == pytest.approx(1.0)
    # lognormal CDF at 500 and 2000 tokens (sigma^2 = ln 2, mu = ln 1000 - sigma^2/2)
    from scipy.stats import norm

    sig = np.sqrt(np.log(2.0))
    mu = np.log(1000) - sig**2 / 2
    cdf = norm.cdf((np.log([499.5, 1999.5]) - mu) / sig)
    assert s == pytest.approx([cdf[0], cdf[1] - cdf[0], 1 - cdf[1]], abs=0.005)
    means = []
    for i in range(3):
        h = bucket_dist(d, edges, i)
        v = np.asarray(h["values"])
        assert v.min() >= (0 if i == 0 else edges[i - 1]) and v.max() < (
            edges[i] if i < 2 else 8001)
        means.append(v.mean())
    assert float(np.dot(s, means)) == pytest.approx(dist_mean(d), rel=0.02)
    assert bucket_labels(list(edges)) == ["< 500", "500-1999", ">= 2000"]


def _row(name, thr, buckets, other=0.0):
    return DeviceRow(device=name, pool="p", capex_usd=1.0, available_from=2020,
                     max_units=float("inf"), throughput={"chat": thr, "train": other},
                     opex_usd_per_year={"chat": 0, "train": 0},
                     tco_usd_per_year={"chat": 0, "train": 0},
                     wall_power_W={"chat": 0, "train": 0}, buckets={"chat": buckets})


ROLE = {"chat": "capacity", "train": "volume"}


def test_allocation_with_one_device_type_and_matching_buckets_is_the_greedy_ones():
    rows = {"a": _row("a", 3.0, (3.0, 3.0), other=1.0)}
    need = {"chat": 100.0, "train": 50.0}
    r = {"chat": Routing(SHARES, ["s", "l"])}
    plain = allocate({"a": 100}, rows, need, ROLE)
    routed = allocate({"a": 100}, rows, need, ROLE, r)
    assert routed == plain  # ceil(100 / 3) = 34 units on the chatbot, the rest training
    assert routed["a"]["chat"] == 34
    cap = capacities(routed, rows, need, r)
    assert cap["chat"] == pytest.approx(34 * 3.0)


def test_allocation_routes_sizes_to_the_devices_that_serve_them_cheaply():
    # A short-fast, B long-fast (the hand-solved case), both worth the same to training
    rows = {"a": _row("a", 4.0, (10.0, 1.0), 1.0), "b": _row("b", 5.0, (6.0, 3.0), 1.0)}
    need = {"chat": 95.0, "train": 10.0}  # 76 short, 19 long requests/s
    r = {"chat": Routing(SHARES, ["s", "l"])}
    plain = allocate({"a": 100, "b": 100}, rows, need, ROLE)
    routed = allocate({"a": 100, "b": 100}, rows, need, ROLE, r)
    assert plain["b"]["chat"] == 19 and plain["a"]["chat"] == 0  # B whole: 95 / 5
    assert routed["a"]["chat"] == 8 and routed["b"]["chat"] == 7  # 7.6 and 6.33 rounded up
    cap = capacities(routed, rows, need, r)
    # 8 A units serve 80 short; 7 B units x short and 7 - x long, the same share of both:
    # (80 + 6x) / 76 = 3 (7 - x) / 19, x = 76/342: 1.0702 x the demand
    x = 76 / 342
    assert cap["chat"] == pytest.approx(95.0 * (80 + 6 * x) / 76, rel=1e-6)
    assert routed["a"]["train"] + routed["b"]["train"] == 200 - 15


@pytest.fixture(scope="module")
def routed_scenario(tmp_path_factory):
    """The seed cut to two devices, a short chatbot simulation, routed at 2,000 tokens."""
    data = h20_and_910c_seed(routing={"edges": [2000]})
    data["fleets"] = [
        {"name": "h20-only", "spend_usd": {"h20": 6.0e9}},
        {"name": "mixed", "spend_usd": {"ascend-910c": 5.0e9, "h20": 6.0e9}}]
    path = tmp_path_factory.mktemp("routing") / "routed.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_compare_reports_routing_and_it_never_serves_less(routed_scenario, tmp_path):
    r = runner.invoke(app, ["compare", str(routed_scenario), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    dev = [d for d in out["devices"] if d["workload"] == "chatbot"]
    assert {d["device"] for d in dev} == {"h20", "ascend-910c"}
    for f in out["fleets"]:
        rt = f["routing"]["chatbot"]
        assert list(rt["shares"]) == ["< 2000", ">= 2000"]
        assert sum(rt["shares"].values()) == pytest.approx(1.0)
        for d, per in rt["per_device"].items():
            row = next(x for x in dev if x["device"] == d)
            assert per["whole"] == row["throughput"]
            assert set(per) == {"whole", "< 2000", ">= 2000"}
        assert set(rt["units_by_bucket"]) <= set(rt["per_device"])
        assert rt["capacity_whole_fleet"] >= rt["capacity_whole_fleet_unrouted"] * (1 - 1e-7)
        assert rt["units"] <= rt["units_unrouted"]
        assert f["workloads"]["chatbot"]["capacity_whole_fleet"] == rt["capacity_whole_fleet"]
        assert rt["capacity_per_usd"] / rt["capacity_per_usd_unrouted"] == pytest.approx(
            1 + rt["gain"])
        assert f["capacity_per_usd"]["chatbot"] == pytest.approx(rt["capacity_per_usd"])
    csv = tmp_path / "csv"
    r = runner.invoke(app, ["compare", str(routed_scenario), "--csv", str(csv)])
    assert r.exit_code == 0, r.output
    import pandas as pd

    fleets = pd.read_csv(csv / "fleets.csv")
    cols = [c for c in fleets.columns if c.startswith("routing.chatbot.")]
    assert "routing.chatbot.capacity_whole_fleet_unrouted" in cols
    for c in cols:  # one value per cell
        assert not fleets[c].astype(str).str.startswith("[").any(), c
    text = runner.invoke(app, ["compare", str(routed_scenario)])
    assert text.exit_code == 0
    assert "routed in each fleet" in text.stdout and "each bucket" in text.stdout


def test_routing_off_leaves_no_routing_fields(routed_scenario, tmp_path):
    data = yaml.safe_load(routed_scenario.read_text())
    del data["workloads"]["chatbot"]["routing"]
    p = tmp_path / "plain.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    sc = load_scenario(p)
    from accelsim.fleet import compare

    res = compare(sc)
    assert "bucket_throughput" not in res.devices
    assert all("routing" not in f for f in res.fleets)


@pytest.mark.parametrize("routing, field, text", [
    ({"edges": [3000, 2000]}, "workloads.chatbot.routing", "increasing prompt lengths"),
    ({"edges": [9000]}, "workloads.chatbot", "bucket 2 holds no prompt_tokens draws"),
    ({"by": "output", "edges": [100]}, "workloads.chatbot.routing.by", "prompt_tokens"),
    ("sizes", "workloads.chatbot.routing", "expected {edges: [...]} or size"),
])
def test_bad_routing_is_one_line_naming_the_field(routed_scenario, tmp_path, routing, field,
                                                  text):
    data = yaml.safe_load(routed_scenario.read_text())
    data["workloads"]["chatbot"]["routing"] = routing
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    r = runner.invoke(app, ["compare", str(p)])
    assert r.exit_code == 2
    line = r.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"{p}: {field}:") and text in line


def test_optimize_buys_size_buckets_where_they_need_fewer_servers():
    from accelsim.optimize import build_problem, solve

    rows = {"a": _row("a", 4.0, (10.0, 1.0)), "b": _row("b", 5.0, (6.0, 3.0))}
    for r in rows.values():
        r.tco_usd_per_year.update(chat=1.0, train=1.0)
    kw = dict(pool_usd={"p": 1e9}, total_usd=1e9, power_cap_W=None, server=1,
              objective="min_cost", year=2025)
    plain = solve(build_problem(rows, {"chat": 95.0}, **kw), marginals=False)
    routed = solve(build_problem(rows, {"chat": 95.0}, **kw,
                                 routed={"chat": Routing(SHARES, ["s", "l"])}),
                   marginals=False)
    assert plain["tco_usd_per_year"] == pytest.approx(19.0)  # 95 / 5 on B's whole mix
    # 76 short and 19 long requests/s: the LP bound 76/10 + 19/3 = 13.9 servers; 8 A on
    # short and 7 B on long is 15
    assert 14.0 <= routed["tco_usd_per_year"] <= 15.0
    assert routed["served_fraction"]["chat"] == 1.0
    assert routed["capacity"]["chat"] >= 95.0 * (1 - 1e-9)
    assert any("chat[" in w for per in routed["units"].values() for w in per)


def test_the_fast_paths_full_evaluation_skips_buckets(routed_scenario):
    from accelsim.fleet import evaluate_full

    sc = load_scenario(routed_scenario)
    table, evals = evaluate_full(sc, routed=False)
    assert "bucket_throughput" not in table and set(evals) == set(sc.workloads)
    table, evals = evaluate_full(sc)
    assert "bucket_throughput" in table and set(evals) == set(sc.workloads)


def test_routing_size_cuts_at_the_median_and_90th_percentile():
    from accelsim.workloads.llm_spec import LLMServingSpec

    block = {"model": "llama2-70b", "peak_rps": 1.0, "routing": "size",
             "prompt_tokens": {"dist": "lognormal", "mean": 1000, "cv": 1.0, "max": 8000},
             "output_tokens": {"dist": "fixed", "value": 250},
             "slo": {"ttft_ms": 2000, "tpot_ms": 200}}
    # lognormal, sigma^2 = ln 2: median 1000 / sqrt(2) = 707, p90 707 exp(1.2816 sigma) = 2054
    assert LLMServingSpec.model_validate(block).routing.edges == [710, 2100]


def test_the_json_schema_takes_routing_size_and_edges():
    import jsonschema

    from accelsim.config import read_yaml
    from accelsim.schemas import json_schema

    v = jsonschema.Draft202012Validator(json_schema("scenario"))
    data = read_yaml(CONFIGS / "fleet.yaml")
    for ok in ("size", {"edges": [2000]}, None):
        data["workloads"]["chatbot"]["routing"] = ok
        assert not list(v.iter_errors(data)), ok
    data["workloads"]["chatbot"]["routing"] = "sizes"
    assert list(v.iter_errors(data))


def test_uncertainty_and_sweeps_serve_a_routed_chatbot_routed(routed_scenario):
    """The fast path (uncertainty's draws, sweeps) evaluates each size bucket too: at the
    base profiles its bucket throughputs are the full evaluation's, and uncertainty's base
    case beside each band is compare's routed chatbot capacity per USD, not the unrouted
    one (the draws route as compare does)."""
    from accelsim import uncertainty as U
    from accelsim.fleet import FastEvaluator, compare, evaluate_full
    from accelsim.fleet.evaluation import resolve_devices

    sc = load_scenario(routed_scenario)
    base = resolve_devices(sc)
    full, evals = evaluate_full(sc, profiles=base)
    fast = FastEvaluator(sc, base, evals).device_records(sc, base)
    want = {r["ref"]: r["bucket_throughput"] for r in full.to_dict(orient="records")
            if r["workload"] == "chatbot"}
    got = {r["ref"]: r["bucket_throughput"] for r in fast if r["workload"] == "chatbot"}
    assert set(got) == set(want) == {"h20", "ascend-910c"}
    for ref, caps in want.items():
        assert got[ref] == pytest.approx(caps, rel=1e-9) and min(caps) > 0
    res = compare(sc)
    table = U.monte_carlo(sc, n=2, seed=1)
    gains = []
    for f in res.fleets:
        rt = f["routing"]["chatbot"]
        b = table.attrs["base"][f["name"]]
        assert b["chatbot_per_usd"] == pytest.approx(rt["capacity_per_usd"], rel=1e-9)
        assert b["chatbot_capacity"] == pytest.approx(f["workloads"]["chatbot"]["capacity"],
                                                      rel=1e-9)
        gains.append(rt["capacity_per_usd"] / rt["capacity_per_usd_unrouted"] - 1)
    assert max(gains) > 1e-3  # routing moves at least one fleet, so the check can fail
    assert set(table["fleet"]) == {"h20-only", "mixed"} and len(table) == 4

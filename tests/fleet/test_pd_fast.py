"""PD units at fast fidelity (accelsim.fleet.pd_fast): held to the full evaluation
(accelsim.fleet.pd.evaluate_pair on the point's profiles) at and away from the base point,
and carried into uncertainty draws and sweep points."""

from __future__ import annotations

import pytest
import yaml

from accelsim import cache
from accelsim.devices import device_from_dict
from accelsim.fleet import FastEvaluator, device_rows, evaluate_full, load_scenario
from accelsim.fleet.evaluation import resolve_devices
from accelsim.fleet.pd import evaluate_pair
from accelsim.fleet.pd_fast import PDFast
from accelsim.uncertainty import apply, draws, monte_carlo
from tests.fleet import h20_and_910c_seed

# The fast path is the full search started near the answer: both bisect to 1 % (the
# search's resolution) from different brackets (docs/model-fleets.md).
TOL = 0.02


@pytest.fixture(scope="module")
def pd_seed(tmp_path_factory):
    """The seed cut to two devices, a short chatbot simulation, PD 910C -> H20 at 1:2."""
    data = h20_and_910c_seed(disaggregation={"pairs": [
        {"prefill": "ascend-910c", "decode": "h20", "ratio": [1, 2]}]})
    data["fleets"] = [{"name": "mixed", "spend_usd": {"ascend-910c": 5.0e9, "h20": 6.0e9}}]
    path = tmp_path_factory.mktemp("pdfast") / "pd.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    sc = load_scenario(path)
    return sc, resolve_devices(sc), str(path)


def _points(base, n, seed=3):
    dumped = {ref: p.model_dump(mode="json") for ref, p in base.items()}
    return [{ref: device_from_dict(apply(dumped[ref], d.get(ref, {})), "draw")
             for ref in base} for d in draws(dumped, n, seed)]


def test_the_base_point_is_the_full_evaluation(pd_seed):
    sc, base, file = pd_seed
    spec = sc.workloads["chatbot"]
    (full,) = evaluate_pair(spec, 0, base, file)
    (fast,) = PDFast(base, file).units(spec, base)
    assert fast == full and fast.rps > 0


def test_away_from_the_base_it_is_the_full_evaluation_to_the_search_resolution(pd_seed):
    sc, base, file = pd_seed
    spec = sc.workloads["chatbot"]
    fast = PDFast(base, file)
    (at_base,) = fast.units(spec, base)
    moved = 0
    for point in _points(base, 4):
        (got,) = fast.units(spec, point)
        with cache.disabled(True):
            (want,) = evaluate_pair(spec, 0, point, file)
        assert (got.p, got.q, got.prefill_devices, got.decode_devices) == \
            (want.p, want.q, want.prefill_devices, want.decode_devices)
        assert got.rps == pytest.approx(want.rps, rel=TOL)
        assert got.kv_transfer_ms == pytest.approx(want.kv_transfer_ms, rel=1e-9)
        moved += abs(want.rps / at_base.rps - 1) > 2 * TOL
    assert moved, "the draws should move a unit's requests/s beyond the tolerance"


def test_a_sweep_point_prices_the_pd_units_of_its_devices(pd_seed):
    """A point with the H20's compute and memory efficiencies at the low ends of their
    ranges (a sweep's device override): the fast rows' PD unit is the full evaluation's on
    that profile."""
    sc, base, file = pd_seed
    h20 = base["h20"].model_dump(mode="json")
    low = {f"efficiency.{k}": h20["efficiency"][k]["range"][0] for k in ("compute", "memory")}
    point = {**base, "h20": device_from_dict(apply(h20, low), "point")}
    _, evals = evaluate_full(sc, profiles=base, file=file, routed=False)
    fast = FastEvaluator(sc, base, evals, file=file)
    rows = device_rows(fast.device_records(sc, point))
    (got,) = rows["ascend-910c"].pd["chatbot"]
    full_rows = device_rows(evaluate_full(sc, profiles=point, file=file)[0])
    (want,) = full_rows["ascend-910c"].pd["chatbot"]
    assert got["rps"] == pytest.approx(want["rps"], rel=TOL)
    (base_unit,) = device_rows(fast.device_records(sc, base))["ascend-910c"].pd["chatbot"]
    assert got["rps"] < base_unit["rps"]


def test_uncertainty_draws_serve_the_chatbot_on_pd_units(pd_seed):
    """The base case of uncertainty is compare's PD fleet (its chatbot capacity routed over
    PD units), and the draws' capacities are the PD fleet's: each draw's routed capacity
    from its own PD units."""
    from accelsim.fleet import compare

    sc, _, file = pd_seed
    table = monte_carlo(sc, 3, 1, file)
    res = compare(sc)
    (f,) = res.fleets
    assert f["routing"]["chatbot"].get("pd_units"), "the compared fleet uses PD units"
    got = table.attrs["base"]["mixed"]["chatbot_capacity"]
    assert got == pytest.approx(f["workloads"]["chatbot"]["capacity"], rel=1e-9)
    caps = table["chatbot_capacity"].to_numpy()
    assert len(set(caps.round(6))) == len(caps)  # each draw's own units

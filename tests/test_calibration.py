"""Calibrated numbers: every one names its rows, the refit reproduces the stored values,
leave-one-source-out gives the known answer on a synthetic case, and the CLI reports it."""

from __future__ import annotations

import json
import math
import re
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.devices import catalog, load_device, overridden
from accelsim.errors import AccelsimError
from accelsim.runs import KINDS, Prediction, RunKind, load_runs, runs_dir
from accelsim.runs import calibration as cal
from accelsim.runs.calibration import STALE_TOLERANCE, Calibration, Param, ParamKind, Row

CALIBRATED_NOTE = re.compile(r"(?<!not )\bcalibrated\b", re.IGNORECASE)


def shipped_ids() -> set[str]:
    return {r.id for f in runs_dir().glob("*.yaml") for r in load_runs(f).runs}


def test_every_number_said_to_be_calibrated_names_existing_rows():
    ids = shipped_ids()
    said = 0
    for name, prof in catalog().items():
        for fld, q in prof.quantities().items():
            if q.note and CALIBRATED_NOTE.search(q.note):
                said += 1
                assert q.fitted_on, f"{name}: {fld} says it is calibrated but has no fitted_on"
            for i in q.fitted_on or []:
                assert i in ids, f"{name}: {fld}.fitted_on: {i} is no run of configs/runs"
    assert said >= 4  # A100 and the three Hopper compute efficiencies


def test_calibrated_registry_walks_every_profile_and_groups_shared_values():
    c = Calibration()
    keys = {g.primary.address: {m.address for m in g.members} for g in c.groups}
    assert keys["device:h100-sxm:efficiency.compute"] == {
        "device:h100-sxm:efficiency.compute", "device:h800:efficiency.compute",
        "device:h20:efficiency.compute", "device:h200:efficiency.compute"}
    assert "device:a100-80gb-sxm:efficiency.compute" in keys


def test_a_profile_that_copies_a_fitted_number_is_refit_with_it_not_offered_as_its_prior():
    """mi350x/mi355x take mi325x's compute efficiency (fitted on AMD's MLPerf Inference row):
    naming that row in fitted_on groups them with mi325x, so the fold that leaves the AMD
    inference file out leaves them without rows too and never offers the copy as the MI300X's
    prior (as an unfitted profile of the nearest year it was: left-out serving max 8.9 ->
    24.3 %)."""
    c = Calibration()
    keys = {g.primary.address: {m.address for m in g.members} for g in c.groups}
    assert keys["device:mi325x:efficiency.compute"] == {
        "device:mi325x:efficiency.compute", "device:mi350x:efficiency.compute",
        "device:mi355x:efficiency.compute"}
    g = next(g for g in c.groups if g.primary.address == "device:mi300x:efficiency.compute")
    left = {m.address for gg in c.groups if gg.primary.address.startswith("device:mi3")
            for m in gg.members}
    assert c.prior(g, {}, left) is None


def test_refit_reproduces_the_stored_values():
    """Each calibrated number refit on its rows (mean |log error|) lies within
    STALE_TOLERANCE (2 %) of the value stored in its profile."""
    r = Calibration().refit()
    assert r["parameters"]
    for p in r["parameters"]:
        assert abs(p["refit"] - p["stored"]) <= STALE_TOLERANCE * p["stored"], p
        assert p["loss_refit"] <= p["loss_stored"] + 1e-12
        assert not p["stale"]


# ------------------------------------------------------------------ a synthetic case

TOY: dict[str, float] = {}


@contextmanager
def _toy_overridden(values):
    before = dict(TOY)
    for name, fields in values.items():
        TOY[name] = fields["gain"]
    try:
        yield
    finally:
        TOY.clear()
        TOY.update(before)


def _toy_param(name: str, value: float, fitted_on: tuple[str, ...], order: float) -> Param:
    return Param("toy", name, "gain", value, fitted_on, 0.1, 10.0, f"{name}.yaml",
                 ("vendor",), order)


def _toy_row(source: str, rid: str, profile: str, x: float, published: float) -> Row:
    return Row(f"{source}.yaml", source, rid, "toy", published, 0.1,
               SimpleNamespace(profile=profile, x=x), frozenset({f"toy:{profile}:"}))


@pytest.fixture
def toy(monkeypatch):
    """Prediction = gain of the run's profile x its x. Profile a's gain is fitted on rows of
    sources s1 (gain 2 fits them) and s2 (gain 3); c's only on s3, with d (gain 5, not
    fitted, one year away) and e (gain 7, two years away) as comparable profiles."""
    params = [_toy_param("a", 2.0, ("r1", "r2", "r3"), 0),
              _toy_param("c", 4.0, ("r4",), 10), _toy_param("d", 5.0, (), 11),
              _toy_param("e", 7.0, (), 12)]
    TOY.clear()
    TOY.update({p.name: p.value for p in params})
    monkeypatch.setitem(cal.PARAM_KINDS, "toy", ParamKind(
        "toy", lambda: params, _toy_overridden, lambda run, file: {run.profile}))
    monkeypatch.setitem(KINDS, "toy", RunKind(
        "toy", object, lambda run, file: Prediction(TOY[run.profile] * run.x, "")))  # type: ignore[arg-type]
    rows = [_toy_row("s1", "r1", "a", 1, 2), _toy_row("s1", "r2", "a", 2, 4),
            _toy_row("s2", "r3", "a", 1, 3), _toy_row("s3", "r4", "c", 1, 4),
            _toy_row("s4", "r5", "d", 1, 6)]
    return Calibration(params=params, rows=rows)


def test_loso_on_a_synthetic_case_gives_the_known_answer(toy):
    cv = toy.cross_validate()
    out = {r["id"]: r for r in cv["rows"]}
    # s1 left out: a is refit on r3 alone (gain 3), so r1 = 3 (+50 %) and r2 = 6 (+50 %)
    assert out["r1"]["held_out"] == pytest.approx(3.0, abs=1e-3)
    assert out["r2"]["error_held_out"] == pytest.approx(0.5, abs=1e-3)
    # s2 left out: a is refit on r1 and r2 (gain 2): r3 = 2 (-1/3); in-sample r3 was 2 too
    assert out["r3"]["held_out"] == pytest.approx(2.0, abs=1e-3)
    # s3 left out: c has no row left, so it takes its prior, the nearest comparable d (5)
    assert out["r4"]["held_out"] == pytest.approx(5.0)
    assert out["r4"]["error_in_sample"] == pytest.approx(0.0)
    fold = {f["source"]: f["parameters"] for f in cv["folds"]}
    assert fold["s3"]["toy:c:gain"] == {"value": 5.0, "from": "prior", "prior": "toy:d:gain",
                                        "rows": 0}
    # s4 was never fitted on: left out is in-sample
    assert out["r5"]["held_out"] == out["r5"]["in_sample"] == 5.0
    assert not out["r5"]["refit"] and out["r1"]["refit"]
    s = cv["summary"]["toy"]
    assert s["rows"] == 5 and s["in_sample_max"] == pytest.approx(1 / 3)  # r3: 2 for 3
    assert s["held_out_max"] == pytest.approx(0.5, abs=1e-3)
    assert s["held_out_mean"] == pytest.approx((0.5 + 0.5 + 1 / 3 + 0.25 + 1 / 6) / 5, abs=1e-3)


def test_refit_on_a_synthetic_case(toy):
    r = {p["parameter"]: p for p in toy.refit()["parameters"]}
    # a: rows want gains 2, 2, 3; the mean |log error| is least at their median, 2
    assert r["toy:a:gain"]["refit"] == pytest.approx(2.0, abs=1e-3)
    assert not r["toy:a:gain"]["stale"]
    # c: stored 4 fits r4 exactly
    assert r["toy:c:gain"]["refit"] == pytest.approx(4.0, abs=1e-3)
    assert math.isclose(r["toy:c:gain"]["loss_refit"], 0.0, abs_tol=1e-3)


def test_unknown_fitted_on_id_is_a_located_error(toy):
    bad = [_toy_param("a", 2.0, ("r1", "nope"), 0)]
    with pytest.raises(AccelsimError, match=r"unknown run id.*nope"):
        Calibration(params=bad, rows=toy.rows)


def test_a_number_fitted_against_a_reference_row_matches_its_error(toy):
    """``fitted_against``: c's row r4 is fitted so that its error equals that of the
    reference r3 (a's row, gain 2 for a published 3: -1/3), not to r4's own published value:
    c = 4 x 2/3; the pair cancels the model's error common to both rows. Leaving out the
    reference's source drops the row too (its number then takes its prior)."""
    import dataclasses

    params = list(toy.params)
    params[1] = dataclasses.replace(params[1], against=(("r4", "r3"),))
    c = Calibration(params=params, rows=toy.rows)
    r = {p["parameter"]: p for p in c.refit()["parameters"]}
    a = r["toy:a:gain"]["refit"]  # 2: r3 under it predicts 2 for 3
    assert r["toy:c:gain"]["refit"] == pytest.approx(4.0 * a / 3.0, abs=1e-3)
    g = next(g for g in c.groups if g.key == "toy:c:gain")
    assert c.rows_of(g, without="s2") == []
    assert [x.id for x in c.rows_of(g, without="s1")] == ["r4"]
    bad = [dataclasses.replace(params[1], against=(("r4", "nope"),))]
    with pytest.raises(AccelsimError, match=r"unknown run id.*nope"):
        Calibration(params=bad, rows=toy.rows)


def test_device_override_is_scoped_and_checked():
    base = load_device("h100-sxm").spec.eff_compute
    with overridden({"h100-sxm": {"efficiency.compute": 0.66}}):
        assert load_device("h100-sxm").spec.eff_compute == 0.66
        assert load_device("a100-80gb-sxm").spec.eff_compute != 0.66
    assert load_device("h100-sxm").spec.eff_compute == base
    with overridden({"h100-sxm": {"efficiency.compute": 1.5}}), \
            pytest.raises(AccelsimError, match=r"efficiency.compute: override: expected"):
        load_device("h100-sxm")


# ------------------------------------------------------------------ the command


def test_cross_validate_cli_json_has_the_fields():
    r = CliRunner().invoke(app, ["validate-runs", "--cross-validate", "--refit", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    cv = out["cross_validation"]
    assert {"rows", "folds", "summary", "parameters", "seconds"} <= set(cv)
    assert {"training", "LLM serving", "all"} <= set(cv["summary"])
    for s in cv["summary"].values():
        assert {"rows", "in_sample_mean", "in_sample_max", "held_out_mean",
                "held_out_max"} <= set(s)
    row = cv["rows"][0]
    assert {"id", "source", "category", "published", "in_sample", "held_out",
            "error_in_sample", "error_held_out"} <= set(row)
    # the rows a number was fitted on are predicted without them
    nar = [x for x in cv["rows"] if x["source"] == "narayanan2021-megatron-a100"]
    assert nar and all(x["refit"] for x in nar)
    assert any(x["error_held_out"] != x["error_in_sample"] for x in nar)
    assert out["refit"]["stale"] == 0


def test_stack_numbers_are_registered_and_their_override_reaches_the_runs_that_use_them():
    """A stack's kernel factors are calibratable numbers like a device's: listed with their
    stack, and a run naming the stack (or running on its vendor's default) reads them."""
    from accelsim import stacks
    from accelsim.runs import validate_runs

    params = {p.address for p in cal.PARAM_KINDS["stack"].params()}
    assert "stack:megatron-lm-2021:kernels.gemm" in params
    rows = [r for r in load_runs(runs_dir() / "narayanan2021-megatron-a100.yaml").runs][:1]
    assert cal.PARAM_KINDS["stack"].uses(rows[0], "x") == {"megatron-lm-2021"}
    f = [str(runs_dir() / "narayanan2021-megatron-a100.yaml")]
    base = validate_runs(f)[0].predicted
    with stacks.overridden({"megatron-lm-2021": {"kernels.gemm": 0.8}}):
        assert stacks.load_stack("megatron-lm-2021").kernels.gemm.value == 0.8
        slower = validate_runs(f)[0].predicted
    assert slower < 0.95 * base  # GEMM time / 0.8 on a GEMM-bound run
    assert stacks.load_stack("megatron-lm-2021").kernels.gemm.value == 1.0  # scoped
    with pytest.raises(AccelsimError, match=r"kernels\.gemm"), \
            stacks.overridden({"megatron-lm-2021": {"kernels.gemm": 2.0}}):
        stacks.load_stack("megatron-lm-2021")

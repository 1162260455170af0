"""Fast fidelity (sweeps) against full fidelity (compare) away from the base point, and the
golden outputs of compare and optimize.

Tolerances, from the measured errors: training re-estimates the base run's best 24
layouts, so a device much slower than at the base can miss its new best layout
(inhouse-asic at perf_scale 0.5: -1.4 %); serving carries the base SLO-to-saturation
ratio to the new speed with a heavy-traffic queueing correction (the ratio's dependence on
SLO / batch service time, fitted at the base: accelsim.workloads.recsys.slo_ratio). At the
seed scenario's 50 ms SLO it is within 0.1 %; at a 10 ms SLO within 0.3 % at double speed
and 3.2 % at half speed, where the SLO is tight against the slower batches (was 4.3 %
with the ratio carried unchanged). Price and supply do not enter device throughput, so
they agree exactly.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.config import read_yaml
from accelsim.devices import device_from_dict
from accelsim.fleet import FastEvaluator, compare, evaluate_full, load_scenario
from accelsim.fleet.evaluation import resolve_devices
from accelsim.fleet.scenario import scenario_from
from accelsim.sweep.evaluate import context, evaluate_point
from accelsim.sweep.overrides import apply_device
from tests.conftest import CONFIGS, ROOT

FLEET = CONFIGS / "fleet.yaml"
TRAINING_TOL = 0.02
SERVING_TOL = 0.02
TIGHT_SLO_TOL = 0.04
runner = CliRunner()


def _variant(base: dict, ref: str, field: str, value: float) -> dict:
    d = base[ref].model_dump(mode="json")
    apply_device(d, field, value, "test")
    return {**base, ref: device_from_dict(d)}


def _subset(sc, ref: str):
    """The scenario with one device, so the full evaluation of a variant is quick."""
    pools = {k: p.model_copy(update={"devices": [ref]}) for k, p in sc.budget.pools.items()
             if ref in p.devices}
    return sc.model_copy(update={"budget": sc.budget.model_copy(update={"pools": pools}),
                                 "fleets": []})


def _by_workload(records) -> dict[str, float]:
    return {r["workload"]: r["throughput"] for r in records}


@pytest.fixture(scope="module")
def base():
    sc = load_scenario(FLEET)
    profiles = resolve_devices(sc)
    table, evals = evaluate_full(sc, profiles=profiles)
    return sc, profiles, table, FastEvaluator(sc, profiles, evals)


@pytest.mark.parametrize("ref,scale", [("h20", 0.5), ("h20", 2.0), ("inhouse-asic", 0.5),
                                       ("inhouse-asic", 2.0)])
def test_fast_agrees_with_full_at_other_performance(base, ref, scale):
    sc, profiles, table, fast = base
    prof = _variant(profiles, ref, "perf_scale", scale)
    sub = _subset(sc, ref)
    full = _by_workload(evaluate_full(sub, profiles=prof)[0].to_dict("records"))
    quick = _by_workload(fast.device_records(sub, prof))
    before = _by_workload(r for r in table.to_dict("records") if r["ref"] == ref)
    assert full["training"] != pytest.approx(before["training"], rel=0.1)  # it did move
    assert quick["training"] == pytest.approx(full["training"], rel=TRAINING_TOL)
    assert quick["serving"] == pytest.approx(full["serving"], rel=SERVING_TOL)


def _h20_only(name: str, **edit):
    """The seed scenario reduced to one workload (its block edited) on the H20 alone, fully
    evaluated: (scenario, profiles, table, fast evaluator)."""
    data = read_yaml(FLEET)
    data["workloads"] = {name: {**data["workloads"][name], **edit}}
    data["budget"]["pools"] = {"overseas": {"usd": 6.8e9, "devices": ["h20"],
                                            "region": "sea"}}
    data["supply"], data["fleets"], data["rentals"] = {}, [], {}
    del data["plan"]  # it names the devices and workloads left out
    sc = scenario_from(data, FLEET)
    profiles = resolve_devices(sc)
    table, evals = evaluate_full(sc, profiles=profiles)
    return sc, profiles, table, FastEvaluator(sc, profiles, evals)


def test_fast_agrees_with_full_at_a_tight_slo():
    sc, profiles, _table, fast = _h20_only("serving", slo_p99_ms=10.0)
    for scale in (0.5, 2.0):
        prof = _variant(profiles, "h20", "perf_scale", scale)
        full = _by_workload(evaluate_full(sc, profiles=prof)[0].to_dict("records"))["serving"]
        quick = _by_workload(fast.device_records(sc, prof))["serving"]
        assert quick == pytest.approx(full, rel=TIGHT_SLO_TOL)


def test_sweep_points_agree_with_compare_after_price_and_supply_changes(base):
    """A sweep point that changes a price and a supply cap gives compare's numbers on the
    edited scenario exactly (neither enters device throughput)."""
    _sc, profiles, _, _ = base
    ctx = context("fidelity-check", str(FLEET))
    params = {"devices.h20.price_usd": 15000.0, "supply.h20.max_units": 50000}
    data = read_yaml(FLEET)
    data["supply"]["h20"]["max_units"] = 50000
    edited = scenario_from(data, FLEET)
    table = evaluate_full(edited, profiles=_variant(profiles, "h20", "price_usd", 15000.0))[0]
    res = compare(edited, dev_table=table)
    metrics = [f"device.{d.device}.{d.workload}.{k}" for d in table.itertuples()
               for k in ("throughput", "usd_per_hour")]
    metrics += [f"fleet.{f['name']}.{k}" for f in res.fleets
                for k in ("training_tokens_per_day", "tco_usd_per_year", "n_violations")]
    got = evaluate_point(ctx, params, metrics, "t")
    for d in table.itertuples():
        assert got[f"device.{d.device}.{d.workload}.throughput"] == pytest.approx(
            d.throughput, rel=1e-9)
        assert got[f"device.{d.device}.{d.workload}.usd_per_hour"] == pytest.approx(
            d.usd_per_hour, rel=1e-9)
    assert any("supply h20" in str(v) for f in res.fleets for v in f["violations"])
    for f in res.fleets:
        for k in ("tco_usd_per_year", "training_tokens_per_day"):
            assert got[f"fleet.{f['name']}.{k}"] == pytest.approx(f[k], rel=1e-9)
        assert got[f"fleet.{f['name']}.n_violations"] == len(f["violations"])
    # the only reasons are the base table's own (a device that cannot serve a workload)
    base_reasons = {f"device.{d.device}.{d.workload}: {d.reason}" for d in table.itertuples()
                    if isinstance(d.reason, str) and d.reason}
    parts = [x for x in got["reason"].split("; ") if x]
    assert set(parts) <= base_reasons


def _same(golden, new, path=""):
    """Every key and value of the golden output is in the new one (floats to 1e-9)."""
    if isinstance(golden, dict):
        for k, v in golden.items():
            assert k in new, f"{path}.{k} missing"
            if not path and k == "provenance":  # version, input hashes, date: not figures
                assert set(v) <= set(new[k]), "provenance fields missing"
                continue
            _same(v, new[k], f"{path}.{k}")
    elif isinstance(golden, list):
        assert len(golden) == len(new), path
        for i, (a, b) in enumerate(zip(golden, new, strict=True)):
            _same(a, b, f"{path}[{i}]")
    elif isinstance(golden, float):
        assert new == pytest.approx(golden, rel=1e-9), path
    else:
        assert new == golden, path


@pytest.mark.parametrize("args,golden", [
    (["compare", str(FLEET), "--json"], "compare.json"),
    (["optimize", str(FLEET), "--json", "--year", "2026"], "optimize-2026.json")])
def test_outputs_match_the_golden_files(args, golden):
    """Outputs of the seed scenario, regenerated when the model changes on purpose (last:
    server power and facility costs, after training goodput and pipelined recommendation
    serving) with the same command into tests/data/golden/; anything else that moves them
    is a regression."""
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    _same(json.loads((ROOT / "tests" / "data" / "golden" / golden).read_text()),
          json.loads(r.stdout))


@pytest.mark.parametrize("afr", [0.01, 0.5])
def test_a_devices_failure_rate_reaches_every_workload_through_the_one_path(base, afr):
    """Training goodput and serving availability are part of the workloads' evaluation:
    compare (full), sweeps (fast) and the optimiser (compare's device table) see the same
    change."""
    sc, profiles, table, fast = base
    prof = _variant(profiles, "h20", "annual_failure_rate", afr)
    sub = _subset(sc, "h20")
    full = _by_workload(evaluate_full(sub, profiles=prof)[0].to_dict("records"))
    quick = _by_workload(fast.device_records(sub, prof))
    before = _by_workload(r for r in table.to_dict("records") if r["ref"] == "h20")
    assert quick["training"] == pytest.approx(full["training"], rel=1e-9)
    assert quick["serving"] == pytest.approx(full["serving"], rel=SERVING_TOL)
    more = afr > 0.07  # the profile's 0.07: more failures, less of both
    for w in ("training", "serving"):
        assert (full[w] < before[w]) if more else (full[w] > before[w]), w


def test_modern_training_factors_reach_compare_and_sweeps_through_the_one_path():
    """A DeepSeek-V3 FP8 training workload (MLA, MTP, node-limited MoE, FP8 per operator):
    compare's full evaluation and the sweeps' fast path see the same factors, and agree at
    the base point and away from it."""
    sc, profiles, table, fast = _h20_only("training", model="deepseek-v3", precision="fp8",
                                          cluster_devices=2048, global_batch=2048)
    base_full = _by_workload(table.to_dict("records"))["training"]
    assert base_full > 0
    assert _by_workload(fast.device_records(sc, profiles))["training"] == pytest.approx(
        base_full, rel=1e-9)
    for scale in (0.5, 2.0):
        prof = _variant(profiles, "h20", "perf_scale", scale)
        full = _by_workload(evaluate_full(sc, profiles=prof)[0].to_dict("records"))
        quick = _by_workload(fast.device_records(sc, prof))
        assert full["training"] != pytest.approx(base_full, rel=0.1)  # it did move
        assert quick["training"] == pytest.approx(full["training"], rel=TRAINING_TOL)


# The chatbot's fast path (accelsim.workloads.llm_fast) against its full search on the
# point's device, measured over 100 uncertainty draws of the seed scenario (docs/model-llm.md):
# mean 0.5-2.8 % on the catalog's devices, at most 1.4 % (H100) to 9 % (910B; the H20,
# whose TTFT target binds at the 99th percentile of long prompts, 8.4 %), and mean 4.2 %,
# at most 19.5 %, on the hypothetical in-house ASIC, whose ranges span 2-4x. The tests hold
# it on a uniform dilation, at half and double speed and on two draws.
LLM_TOL = 0.04
LLM_TOL_WIDE = 0.07
DRAW_DEVICES = {"h20": LLM_TOL, "h100-sxm": LLM_TOL, "ascend-910c": LLM_TOL,
                "ascend-910b": LLM_TOL, "inhouse-asic": LLM_TOL_WIDE}


def test_chatbot_fast_path_equals_full_at_the_base_point(base):
    sc, profiles, table, fast = base
    quick = {r["device"]: r["throughput"] for r in fast.device_records(sc, profiles)
             if r["workload"] == "chatbot"}
    full = {r["device"]: r["throughput"] for r in table.to_dict("records")
            if r["workload"] == "chatbot"}
    assert quick == full


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_chatbot_fast_path_agrees_with_full_at_another_speed(base, scale):
    """Half and double speed (compute and bandwidth: a dilation close to uniform) on the
    H100: the scaled SLO curve, within the tolerance of the full search there."""
    sc, profiles, table, fast = base
    before = float(table[(table.device == "h100-sxm") & (table.workload == "chatbot")]
                   .throughput.iloc[0])
    prof = _variant(profiles, "h100-sxm", "perf_scale", scale)
    sub = _subset(sc, "h100-sxm")
    f = _by_workload(evaluate_full(sub, profiles=prof)[0].to_dict("records"))
    q = _by_workload(fast.device_records(sub, prof))
    assert f["chatbot"] != pytest.approx(before, rel=0.1)  # it did move
    assert q["chatbot"] == pytest.approx(f["chatbot"], rel=LLM_TOL)


@pytest.mark.parametrize("draw", [3, 11])
def test_chatbot_fast_path_agrees_with_full_on_uncertainty_draws(base, draw):
    """Two uncertainty draws (every ranged number of every device drawn, as
    accelsim uncertainty does) on the devices of the fleets: the fast path within its
    tolerance of the full search on each drawn device."""
    from accelsim.uncertainty import apply, draws

    sc, profiles, _table, fast = base
    dumped = {ref: p.model_dump(mode="json") for ref, p in profiles.items()}
    d = draws(dumped, draw + 1, 1)[draw]
    drawn = {ref: device_from_dict(apply(dumped[ref], d.get(ref, {}))) for ref in profiles}
    for ref, tol in DRAW_DEVICES.items():
        sub = _subset(sc, ref)
        f = _by_workload(evaluate_full(sub, profiles=drawn)[0].to_dict("records"))
        q = _by_workload(fast.device_records(sub, drawn))
        assert q["chatbot"] == pytest.approx(f["chatbot"], rel=tol), ref


def test_a_uniform_dilation_is_scaled_exactly():
    """Every part of a replica's cost model 1.3x slower (or faster), its overlapped host's
    floor with them: the fast path's
    ``cap(SLO / k) / k`` from the base curve, against the search on the dilated replica,
    within the search's 1 % resolution (per replication) and the curve's interpolation."""
    from dataclasses import replace

    from accelsim.llm import sim as S
    from accelsim.workloads import llm_fast as F
    from accelsim.workloads.llm_spec import mean_lengths, replica_job

    sc = load_scenario(FLEET)
    spec = sc.workloads["chatbot"].model_copy(update={"sim": sc.workloads["chatbot"].sim
                                                      .model_copy(update={"requests": 3000,
                                                                          "warmup": 300})})
    job = replica_job(spec, "h100-sxm", 4)
    (rm,) = S.models(job)
    p, o = mean_lengths(spec)
    curve = F.build_curve(job, rm, S.capacity(job, rms=[rm])["per_replication_rps"], p, o)
    for k in (1 / 1.3, 1.3):
        slow = replace(rm, linear_s=rm.linear_s * k, c_kv_read=rm.c_kv_read * k,
                       c_kv_flop=rm.c_kv_flop * k, c_pf=rm.c_pf * k, c_head=rm.c_head * k,
                       host_overlap_s=rm.host_overlap_s * k)
        got, why, _ = F.estimate(curve, slow, p, o)
        assert why is None and F.spread(F.parts(slow), curve.parts) < 1e-9
        want = S.capacity(job, rms=[slow])["max_rps_at_slo"]
        assert got == pytest.approx(want, rel=0.025)


def test_a_device_that_misses_the_chatbot_slo_is_searched_again_when_faster():
    """With the dense 70B stand-in in bf16 the MLU370 meets no rate at the base point (its
    prefill breaks the TTFT on long prompts); three times faster it does, on both paths."""
    data = read_yaml(FLEET)
    dense = {"model": "llama2-70b", "dp": 1, "weight_formats": None}
    data["workloads"] = {"chatbot": {**data["workloads"]["chatbot"], **dense}}
    pool = next(k for k, p in data["budget"]["pools"].items() if "mlu370-x8" in p["devices"])
    data["budget"]["pools"] = {pool: {**data["budget"]["pools"][pool], "devices": ["mlu370-x8"]}}
    data["supply"], data["fleets"], data["rentals"] = {}, [], {}
    del data["plan"]
    sc = scenario_from(data, FLEET)
    profiles = resolve_devices(sc)
    table, evals = evaluate_full(sc, profiles=profiles)
    fast = FastEvaluator(sc, profiles, evals)
    row = table[(table.device == "mlu370-x8") & (table.workload == "chatbot")].iloc[0]
    assert row.throughput == 0 and "no rate meets the SLO" in row.reason
    prof = _variant(profiles, "mlu370-x8", "perf_scale", 3.0)
    full = _by_workload(evaluate_full(sc, profiles=prof)[0].to_dict("records"))["chatbot"]
    quick = _by_workload(fast.device_records(sc, prof))["chatbot"]
    assert full > 0 and quick > 0


def test_wide_ep_chatbot_reaches_compare_and_sweeps_through_the_one_path():
    """A DeepSeek-V3 chatbot on 16-device wide-EP replicas (DP attention, 32 redundant
    experts): compare's full evaluation prices a replica as 16 devices, the sweeps' fast
    path agrees at the base point, and hiding the all-to-all or drafting tokens with the
    MTP module raises it."""
    engine = {"weights": "fp8", "redundant_experts": 32, "max_seqs": 1024}
    edit = dict(model="deepseek-v3", dp=16, tp=1, engine=engine,
                sim={"requests": 1500, "warmup": 150, "replications": 1, "seed": 1})
    sc, profiles, table, fast = _h20_only("chatbot", **edit)
    row = table[table.workload == "chatbot"].iloc[0]
    assert row.throughput > 0 and "tp1 dp16" in row.note
    quick = _by_workload(fast.device_records(sc, profiles))["chatbot"]
    assert quick == pytest.approx(row.throughput, rel=1e-12)
    for more in ({"overlap_ep_comm": True}, {"mtp_tokens": 1, "mtp_acceptance": 0.8}):
        _, _, table2, _ = _h20_only("chatbot", **{**edit, "engine": {**engine, **more}})
        assert table2[table2.workload == "chatbot"].iloc[0].throughput > 1.01 * row.throughput



def test_a_chunk_of_draws_equals_its_draws_one_at_a_time(base):
    """``device_records_many`` (a chunk of uncertainty draws; training's layouts on every
    drawn device through one batch-model call) gives each draw exactly the table
    ``device_records`` gives it alone."""
    from accelsim import uncertainty as U

    sc, profiles, _table, fast = base
    dumped = {ref: p.model_dump(mode="json") for ref, p in profiles.items()}
    points = [{ref: device_from_dict(U.apply(dumped[ref], d[ref])) if ref in d
               else profiles[ref] for ref in profiles} for d in U.draws(dumped, 5, seed=3)]
    fast._cache.clear()
    many = fast.device_records_many(sc, [*points, points[0]])
    fast._cache.clear()
    one = [fast.device_records(sc, p) for p in points]
    assert many == [*one, one[0]]
    assert len({r["throughput"] for rows in one for r in rows
                if r["workload"] == "training"}) > len(profiles)  # the draws moved them


@pytest.mark.parametrize("which", [0, 1])
def test_a_draw_whose_base_size_no_longer_fits_reconsiders_the_skipped_sizes(base, which):
    """The in-house ASIC in the two draws of 200 (seed 11) with the least memory (96 GiB at
    the base; about 60 GiB here) among those with a scale-up domain of 32 or more (16 at
    the base): its base's best size, one device a group, may not fit, or its KV cache holds
    only a few requests. The sizes the fast path skipped for losing to it at the base are
    estimated again, and the draw is within the ASIC's tolerance of the full search (before:
    only the sizes the base domain did not have were left, 7-9x too low). The draws are
    picked by that condition, not by index: a field added to another profile moves the
    shared random stream."""
    from accelsim.uncertainty import apply, draws

    sc, profiles, _table, fast = base
    ref = "inhouse-asic"
    dumped = {r: p.model_dump(mode="json") for r, p in profiles.items()}
    hits = sorted((x[ref] for x in draws(dumped, 200, 11)
                   if x[ref]["interconnect.scaleup_domain_size"] >= 32),
                  key=lambda x: x["memory.memory_GiB"])
    d = hits[which]
    assert d["memory.memory_GiB"] < 70
    prof = {**profiles, ref: device_from_dict(apply(dumped[ref], d))}
    sub = _subset(sc, ref)
    f = _by_workload(evaluate_full(sub, profiles=prof)[0].to_dict("records"))
    q = _by_workload(fast.device_records(sub, prof))
    assert q["chatbot"] == pytest.approx(f["chatbot"], rel=LLM_TOL_WIDE)

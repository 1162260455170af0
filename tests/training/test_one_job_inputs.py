"""The one-job path's shortcuts (``estimate()``'s per-call cost): its inputs built from the
job's parts (``job_inputs``) equal the batch row's (``scalar_inputs(job_row(...))``), and the
device columns memoised per spec never serve one spec's, precision's or stack overrides'
columns for another."""

from __future__ import annotations

import dataclasses

import pytest

from accelsim import stacks
from accelsim.devices import load_device
from accelsim.training import MoE, Parallelism, TrainJob, TransformerModel, estimate
from accelsim.training.perf import columns as C
from accelsim.training.perf.estimate import _estimate_one, _estimate_scalar, job_stack_factors
from accelsim.transformer.model import load_model


def _jobs() -> list[TrainJob]:
    moe = TransformerModel(layers=8, hidden=2048, heads=16, ffn_hidden=8192, vocab=32000,
                           seq_len=4096, moe=MoE(experts=8, top_k=2, ffn_hidden=1024))
    return [
        TrainJob(device="a100-80gb-sxm", model=load_model("gpt3-175b"), global_batch=1536,
                 parallelism=Parallelism(tp=8, pp=8, dp=16, recompute="full")),
        TrainJob(device="h100-sxm", model=load_model("llama3-8b"), global_batch=128,
                 precision="fp8", stack="megatron-core", overlap_tp_comm=True,
                 parallelism=Parallelism(tp=2, pp=1, dp=4, cp=2, sequence_parallel=True,
                                         recompute="selective")),
        TrainJob(device="h100-sxm", model=load_model("deepseek-v3"), global_batch=4096,
                 parallelism=Parallelism(tp=1, pp=16, dp=128, ep=64, recompute="none",
                                         first_stage_layers=1, schedule="dualpipe")),
        TrainJob(device="h100-sxm", model=moe, global_batch=64, stack="llm-foundry",
                 attention="unfused", straggler_slowdown=1.1,
                 parallelism=Parallelism(tp=1, pp=1, dp=8, ep=8, zero=3)),
    ]


@pytest.mark.parametrize("i", range(4))
def test_job_inputs_equal_the_rows_inputs(i):
    job = _jobs()[i]
    spec = load_device(job.device).spec
    sf = job_stack_factors(job, spec)
    fast = C.job_inputs(job, spec, sf)
    slow = C.scalar_inputs(job_row := C.job_row(job, spec, sf))
    assert fast == slow  # the same keys and values (the order differs: nothing reads it)
    assert all(type(v) is float for v in fast.values())
    # and the same as the batch API's own conversion of the row
    assert slow == C.inputs({k: float(v) for k, v in job_row.items()})
    a, b = _estimate_scalar(fast), _estimate_one(job_row)
    assert a.columns == b.columns and a.stages == b.stages and a.ops == b.ops


def test_job_inputs_under_stack_overrides_follow_them():
    job = _jobs()[0]  # no stack named: the vendor's default stack's factors
    spec = load_device(job.device).spec
    base = C.job_inputs(job, spec)
    with stacks.overridden({"megatron-core": {"kernels.gemm": 0.9}}):
        over = C.job_inputs(job, spec)
        assert over == C.scalar_inputs(C.job_row(job, spec))
    assert over["stack_gemm"] == 0.9 != base["stack_gemm"]
    assert C.job_inputs(job, spec) == base


def test_device_columns_are_memoised_per_spec_object_and_precision():
    spec = load_device("h100-sxm").spec
    other = dataclasses.replace(spec, memory_bw_Bps=spec.memory_bw_Bps / 2)
    a, b = C.device_columns(spec, "bf16"), C.device_columns(other, "bf16")
    assert a["memory_bw_Bps"] == 2 * b["memory_bw_Bps"]
    assert C.device_columns(spec, "fp8")["peak_flops"] == spec.flops("fp8") != a["peak_flops"]
    # an equal copy is another object: its own entry, equal columns
    twin = dataclasses.replace(spec)
    assert C.device_columns(twin, "bf16") == a
    # the public function hands out a copy: changing it leaves the memo alone
    a["memory_bw_Bps"] = 0.0
    assert C.device_columns(spec, "bf16")["memory_bw_Bps"] == spec.memory_bw_Bps


def test_device_memo_checks_the_object_and_stays_bounded(monkeypatch):
    spec = load_device("a100-80gb-sxm").spec
    other = dataclasses.replace(spec, scaleup_bw_Bps=1e9)
    C.device_columns(spec, "bf16")
    # an entry under another object's id (as if an id were reused) is not served
    key = (id(other), "bf16", stacks.current_overrides(), stacks.default_stamp(spec.vendor))
    C._DEVICE_CACHE[key] = (spec, *C._DEVICE_CACHE[(id(spec), "bf16", *key[2:])][1:])
    assert C.device_columns(other, "bf16")["scaleup_bw_Bps"] == 1e9
    monkeypatch.setattr(C, "_DEVICE_CACHE_MAX", 3)
    specs = [dataclasses.replace(spec, memory_bytes=float(i + 1)) for i in range(10)]
    for s in specs:
        assert C.device_columns(s, "bf16")["memory_bytes"] == s.memory_bytes
        assert len(C._DEVICE_CACHE) <= 3


def test_estimate_of_two_specs_differs_and_repeats():
    job = _jobs()[0]
    spec = load_device(job.device).spec
    slow = dataclasses.replace(spec, scaleout_bw_Bps=spec.scaleout_bw_Bps / 4)
    r1, r2, r3 = estimate(job, spec), estimate(job, slow), estimate(job, spec)
    assert r2.step_time_s > r1.step_time_s == r3.step_time_s
    assert r1.ops == r3.ops


def test_the_operator_table_made_on_first_read_equals_the_eager_ones():
    """TrainResult.ops (made when read) is the operator table of the job's estimate
    (``_ops`` of its own inputs, as estimate_arrays gives them), each op once."""
    from accelsim.training.perf.estimate import _op_row

    for job in _jobs():
        spec = load_device(job.device).spec
        r = estimate(job, spec)
        assert "ops" not in r.__dict__  # not made yet
        est = _estimate_one(C.job_row(job, spec, job_stack_factors(job, spec)))
        ridge = spec.flops(job.precision) / spec.memory_bw_Bps
        assert r.ops == [_op_row(n, op, ridge) for n, op in est.ops.items()]
        assert r.ops is r.ops and r.to_dict()["ops_per_layer_forward"] == r.ops


def test_device_memo_follows_peaks_changed_in_place():
    """A DeviceSpec is frozen, but its ``peak_flops`` is a dict a notebook can change in
    place: the memo (keyed by the spec object) must not serve the old peaks for it."""
    job = _jobs()[0]
    spec = load_device(job.device).spec
    before = estimate(job, spec).step_time_s
    spec.peak_flops[job.precision] *= 2
    assert C.device_columns(spec, job.precision)["peak_flops"] == spec.peak_flops[job.precision]
    after = estimate(job, spec).step_time_s
    assert after < before
    assert after == estimate(job, dataclasses.replace(spec)).step_time_s


def test_a_result_stays_plain_data_for_asdict_and_json():
    """The lazily made operator table is not a field: ``dataclasses.asdict`` of a result
    holds numbers (JSON-able), and ``ops`` still reads the table."""
    import dataclasses
    import json

    from accelsim.devices import load_device
    from accelsim.training import Parallelism, TrainJob, estimate
    from accelsim.transformer.model import load_model

    job = TrainJob(device="a100-80gb-sxm", model=load_model("gpt3-175b"), global_batch=1536,
                   parallelism=Parallelism(tp=8, pp=8, dp=16, recompute="full"))
    res = estimate(job, load_device(job.device).spec)
    d = dataclasses.asdict(res)
    assert "op_table" not in d and "_op_table" not in d
    json.dumps({k: v for k, v in d.items() if k != "job"}, default=float)
    assert res.ops and {"time_s"} <= set(res.ops[0])

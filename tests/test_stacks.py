"""Software stacks as profiles (:mod:`accelsim.stacks`): the catalog validates, a job's stack
gates its options with one-line errors naming the field, and its kernel factors move the
estimate the way they say."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim import stacks
from accelsim.devices import load_device
from accelsim.errors import AccelsimError
from accelsim.training import TrainJob, estimate
from accelsim.training.job import Parallelism

MODEL = {"name": "m", "layers": 32, "hidden": 4096, "heads": 32, "ffn_hidden": 16384,
         "vocab": 51200, "seq_len": 4096}


def _job(**kw):
    par = kw.pop("parallelism", {"tp": 2, "pp": 2, "dp": 2, "virtual_stages": 2})
    device = kw.pop("device", "h100-sxm")
    return TrainJob(device=device, model=MODEL, global_batch=16,
                    parallelism=Parallelism(**par), **kw)


def test_catalog_validates_and_names_its_files():
    names = stacks.catalog_names()
    for want in ("megatron-core", "deepspeed", "nemo", "mindspeed", "tensorrt-llm", "vllm",
                 "sglang", "mindie"):
        assert want in names
    from accelsim.kinds import load_file

    for n in names:
        assert stacks.load_stack(n).name == n
        # as ``accelsim validate`` reads the file (a derived stack still states its framework)
        kind, st = load_file(stacks.refs.configs_dir() / "stacks" / f"{n}.yaml")
        assert kind.name == "stack" and st == stacks.load_stack(n)


def test_default_stack_by_vendor():
    assert stacks.default_stack("NVIDIA").name == "megatron-core"
    assert stacks.default_stack("Huawei").name == "mindspeed"
    assert stacks.default_stack("nobody") is None
    assert stacks.kernel_factors(None) == {"stack_gemm": 1.0, "stack_attn": 1.0,
                                           "stack_attn_bwd": 1.0, "stack_fa2": 0.0,
                                           "stack_gemm8": 1.0, "stack_unpad": 0.0,
                                           "fp8_cs": 0.0, "pp_scatter": 1.0, "stream_k": 0.0,
                                           "tp_async": 0.0,
                                           "cp_allgather": 0.0, "unit_gap_s": 0.0,
                                           "unit_grad_bytes": 0.0,
                                           "unit_gather_bytes": 0.0, "attn_syncs": 0.0,
                                           "metric_passes": 0.0, "moe_host_op_s": 0.0,
                                           "host_ops_rank": 0.0,
                                           "step_gap_s": 0.0, "unit_ring": 0.0, "unit_edges": 0.0,
                                           "rc_early_stop": 0.0,
                                           "gc_layer_s": 0.0, "gc_pause_s": 0.0,
                                           "dp_grad_bytes": 0.0, "dp_fp8_gather": 0.0,
                                           "dp_fp8_edge": 0.0}
    assert stacks.kernel_factors(stacks.load_stack("deepspeed"))["pp_scatter"] == 0.0


def test_a_stack_gates_the_schedule_and_the_overlaps():
    """DeepSpeed's pipeline engine has no interleaved schedule and reduces gradients after
    the pipeline: a job asking for either on it is an error naming the field."""
    spec = load_device("h100-sxm").spec
    with pytest.raises(AccelsimError) as e:
        estimate(_job(stack="deepspeed"), spec, file="j.yaml")
    fields = {p.field for p in e.value.problems}
    assert fields == {"parallelism.virtual_stages", "overlap_dp_comm", "overlap_param_gather"}
    ok = _job(stack="deepspeed", overlap_dp_comm=False, overlap_param_gather=False,
              parallelism={"tp": 2, "pp": 2, "dp": 2})
    assert estimate(ok, spec).step_time_s > 0
    with pytest.raises(AccelsimError, match="serving stack"):
        estimate(_job(stack="vllm"), spec)


def test_one_role_check_serves_jobs_replicas_and_blocks():
    """The role of a stack is checked by one function (review42: the training block and the
    chatbot block had their own wordings): a training job, a serving replica and both
    scenario blocks give the same one line naming the field."""
    from accelsim.llm.job import Replica
    from accelsim.llm.perf import replica_model

    want = ("'{0}' is a {1} stack; expected a {2} stack (configs/stacks with role: {2})")
    spec = load_device("h100-sxm").spec
    with pytest.raises(AccelsimError) as e:
        estimate(_job(stack="vllm"), spec, file="j.yaml")
    (p,) = e.value.problems
    assert (p.file, p.field, p.message) == ("j.yaml", "stack",
                                            want.format("vllm", "serving", "training"))
    with pytest.raises(AccelsimError) as e:
        replica_model(Replica(device="h100-sxm", model="llama3-8b", stack="deepspeed"),
                      "r.yaml")
    (p,) = e.value.problems
    assert (p.file, p.field, p.message) == ("r.yaml", "replicas[0].stack",
                                            want.format("deepspeed", "training", "serving"))
    named = {"h20": "vllm", "h800": "megatron-core"}
    for role, bad, other in (("training", "vllm", "serving"),
                             ("serving", "megatron-core", "training")):
        (p,) = stacks.named_problems(named, role, "s.yaml", "workloads.w")
        assert p.message == want.format(bad, other, role)
        assert p.field == "workloads.w.stacks." + ("h20" if bad == "vllm" else "h800")


def test_the_same_layout_is_slower_on_deepspeed_than_on_megatron():
    """Megatron-Core's interleaved 1F1B and overlapped gradient reduction against DeepSpeed's
    1F1B with the reduction after the pipeline: same model, devices and batch."""
    spec = load_device("h100-sxm").spec
    mc = estimate(_job(stack="megatron-core"), spec)
    ds = estimate(_job(stack="deepspeed", overlap_dp_comm=False, overlap_param_gather=False,
                       parallelism={"tp": 2, "pp": 2, "dp": 2}), spec)
    assert ds.step_time_s > 1.05 * mc.step_time_s


def test_kernel_factors_scale_what_they_name():
    """A stack's attention factor slows flash attention only; its GEMM factor the GEMMs
    (so a stack at 0.5 GEMM rate is far slower than one at 0.5 attention rate)."""
    from accelsim.training.perf import estimate_arrays, job_row

    spec = load_device("h100-sxm").spec
    job = _job()
    base = estimate_arrays(job_row(job, spec, {"stack_gemm": 1.0, "stack_attn": 1.0}))
    slow_attn = estimate_arrays(job_row(job, spec, {"stack_gemm": 1.0, "stack_attn": 0.5}))
    slow_gemm = estimate_arrays(job_row(job, spec, {"stack_gemm": 0.5, "stack_attn": 1.0}))
    assert base.ops["mlp_up"].time_s == slow_attn.ops["mlp_up"].time_s
    assert slow_attn.ops["attention_core"].time_s == pytest.approx(
        2 * base.ops["attention_core"].time_s)
    assert slow_gemm.ops["mlp_up"].time_s > 1.8 * base.ops["mlp_up"].time_s
    assert slow_gemm.columns["step_time_s"] > slow_attn.columns["step_time_s"]


def test_8bit_factor_slows_the_linear_gemms_of_8bit_training_only():
    """A stack's gemm_8bit (maxtext: AQT int8's measured gain over bf16, 1.174 / 2) divides
    the rate of the linear GEMMs of an fp8 job, and leaves a bf16 job and the attention core
    as they were."""
    from accelsim.training.perf import estimate_arrays, job_row

    g8 = stacks.load_stack("maxtext").kernels.gemm_8bit
    assert g8 is not None and g8.value == pytest.approx(1.174 / 2, abs=0.01)
    assert stacks.kernel_factors(stacks.load_stack("megatron-core"))["stack_gemm8"] == 1.0
    spec = load_device("h100-sxm").spec
    for precision, slower in (("fp8", True), ("bf16", False)):
        job = _job(precision=precision)
        base = estimate_arrays(job_row(job, spec, {"stack_gemm8": 1.0}))
        g = estimate_arrays(job_row(job, spec, {"stack_gemm8": g8.value}))
        ratio = g.ops["mlp_up"].time_s / base.ops["mlp_up"].time_s
        assert ratio == pytest.approx(1 / g8.value if slower else 1.0, rel=0.02), precision
        assert g.ops["attention_core"].time_s == base.ops["attention_core"].time_s


def test_bad_stack_field_is_one_line(tmp_path):
    from accelsim.kinds import load_file

    p = tmp_path / "s.yaml"
    p.write_text("name: x\nframework: X\nversion: '1'\nrole: training\nvendors: [NVIDIA]\n"
                 "kernels:\n  gemm: {value: 1.5, source: s, confidence: A}\n"
                 "  attention: {value: 1.0, source: s, confidence: A}\n")
    with pytest.raises(AccelsimError) as e:
        load_file(p)
    assert "kernels.gemm" in str(e.value)


def test_layout_search_on_a_stack():
    """train-search on DeepSpeed's stack keeps only non-interleaved layouts and runs them
    with the reduction after the pipeline: slower than on Megatron-Core; its best job names
    the stack and passes the stack's gate."""
    from accelsim.training.search import search_layouts
    from accelsim.transformer.model import load_model

    spec = load_device("a100-80gb-sxm").spec
    model = load_model("gpt3-175b")
    mc = search_layouts(model, spec, 512, 1536, stack="megatron-core")
    ds = search_layouts(model, spec, 512, 1536, stack="deepspeed")
    assert (ds.columns["virtual_stages"] == 1).all()
    assert ds.best is not None and ds.best.stack == "deepspeed"
    assert float(ds.columns["tokens_per_s"][0]) < float(mc.columns["tokens_per_s"][0])
    assert estimate(ds.best, spec).tokens_per_s == pytest.approx(
        float(ds.columns["tokens_per_s"][0]), rel=1e-9)


def test_layout_search_on_a_stack_with_no_pipeline_schedule_keeps_pp_1():
    """MaxText declares no pipeline schedule: its search returns no pipelined layout (a job
    with one would be refused by the stack's gate), and the best passes the gate."""
    from accelsim.stacks import load_stack, training_problems
    from accelsim.training.search import search_layouts
    from accelsim.transformer.model import load_model

    assert load_stack("maxtext").schedules == []
    spec = load_device("tpu-v5p").spec
    res = search_layouts(load_model("gpt3-175b"), spec, 1024, 1536, stack="maxtext")
    assert res.evaluated > 0 and (res.columns["pp"] == 1).all()
    if res.best is not None:
        assert training_problems(load_stack("maxtext"), res.best) == []


def test_a_training_block_names_a_stack_per_device():
    """A fleet's training block may run each device on its own stack (the software-moat
    question: H20 on Megatron-Core against 910C on MindSpeed); a serving stack or an
    unknown name is a problem naming the field."""
    from accelsim.workloads import base

    good = base.parse("training", {"kind": "training", "model": "gpt3-175b", "tokens": 1e12,
                                   "deadline_days": 30,
                                   "stacks": {"h20": "megatron-core",
                                              "ascend-910c": "mindspeed"}}, "s.yaml")
    assert base.of(good).check(good, "s.yaml", "workloads.training") == []
    bad = good.model_copy(update={"stacks": {"h20": "vllm", "ascend-910c": "nope"}})
    fields = [p.field for p in base.of(bad).check(bad, "s.yaml", "workloads.training")]
    assert fields and fields[0] == "workloads.training.stacks.h20"


@pytest.mark.parametrize(("zero", "gathers"), [(3, 2), (2, 1), (1, 0)])
def test_fsdp_unit_gap_is_paid_per_layer_and_gather(zero, gathers):
    """A stack's ``unit_gap_us`` idles the GPU at each FSDP unit's all-gather: L layers x m
    micro-batches x (2 gathers with ZeRO-3, 1 with ZeRO-2, none below) x the gap, on the one
    job (scalar path) as on the batch API (arrays); none without data parallelism."""
    from accelsim.training.perf import estimate_arrays, job_row

    spec = load_device("h100-sxm").spec
    par = {"tp": 1, "pp": 1, "dp": 8, "micro_batch": 1, "zero": zero}
    job = _job(parallelism=par)  # global batch 16 over dp 8: m = 2 micro-batches
    gap = 235e-6
    rows = [job_row(job, spec, {"unit_gap_s": g}) for g in (0.0, gap)]
    scalar = [estimate_arrays(r).columns["step_time_s"] for r in rows]
    batch = estimate_arrays({k: np.array([r[k] for r in rows]) for k in rows[0]})
    for base, slow in (scalar, batch.columns["step_time_s"]):
        assert float(slow - base) == pytest.approx(MODEL["layers"] * 2 * gathers * gap)
    lf = stacks.load_stack("llm-foundry")
    one = estimate(_job(parallelism=par, stack="llm-foundry"), spec)
    ref = estimate_arrays(job_row(job, spec, {**stacks.kernel_factors(lf), "unit_gap_s": 0.0,
                                              **stacks.memory_columns(lf)}))
    assert one.step_time_s - float(ref.columns["step_time_s"]) == pytest.approx(
        MODEL["layers"] * 2 * gathers * lf.kernels.unit_gap_us.value * 1e-6, rel=1e-6)
    solo = {**par, "dp": 1, "micro_batch": 16}
    no_gap = estimate_arrays(job_row(_job(parallelism=solo), spec,
                                     {**stacks.kernel_factors(lf), "unit_gap_s": 0.0,
                                      **stacks.memory_columns(lf)}))
    assert estimate(_job(parallelism=solo, stack="llm-foundry"), spec).step_time_s == \
        pytest.approx(float(no_gap.columns["step_time_s"]))


@pytest.mark.parametrize("device", ["h100-sxm", "a100-80gb-sxm"])
def test_a_stack_on_fa2_kernels_runs_attention_at_fa2s_rate(device):
    """A stack on FlashAttention-2-generation kernels (``kernels.attention_fa2``: llm-foundry,
    torchtitan's SDPA) runs its attention at its factors x the device's FA2 ratios
    (``efficiency.attention_fa2``, and ``_backward`` on the backward): on H100, whose
    published kernel is FA3, FA2's rate (FA3 paper: 0.56 forward, 0.62 backward); on A100,
    whose published kernel is FA2, the factors alone. llm-foundry's Triton kernel is 1/1.4
    of FA2 forward and 1/2 backward."""
    from accelsim.training.perf import job_row
    from accelsim.training.perf.columns import inputs
    from accelsim.training.perf.layer import flash_attention

    spec = load_device(device).spec
    par = {"tp": 1, "pp": 1, "dp": 8, "micro_batch": 1, "zero": 3}

    def times(stack):
        st = stacks.load_stack(stack)
        f = inputs(job_row(_job(parallelism=par, device=device), spec,
                           {**stacks.kernel_factors(st), **stacks.memory_columns(st)}))
        return flash_attention(1e12, 4096.0, 128.0, 1.0, f)

    (f0, b0), (f2, b2), (ft, bt), (fp, bp) = (
        times(s) for s in ("megatron-core", "llm-foundry-flash2", "llm-foundry", "torchtitan"))
    # torchtitan's SDPA runs PyTorch's FlashAttention-2 backend (cuDNN opt-in): FA2's rate
    assert (fp, bp) == (pytest.approx(f2), pytest.approx(b2))
    fa2_f = spec.eff_attention_fa2
    fa2_b = spec.eff_attention_fa2_bwd
    assert (fa2_f, fa2_b) == ((0.56, 0.62) if device == "h100-sxm" else (1.0, 1.0))
    assert f0 / f2 == pytest.approx(fa2_f) and b0 / b2 == pytest.approx(fa2_b)
    k = stacks.load_stack("llm-foundry").kernels
    assert f2 / ft == pytest.approx(k.attention.value)
    assert b2 / bt == pytest.approx(k.attention_backward.value)


def test_attention_padding_copies_are_paid_per_layer_and_pass():
    """A stack whose attention wrapper unpads q, k, v and pads the output (llm-foundry's
    flash_attn_fn through flash-attn's bert_padding) moves 9 activation-width passes of
    tokens x hidden in the forward and 11 in the backward (MHA: q, k, v and the output all
    hidden wide), at the device's memory rate; nothing without flash attention."""
    from accelsim.training.perf import job_row
    from accelsim.training.perf.columns import inputs
    from accelsim.training.perf.layer import dense_layer, micro

    spec = load_device("h100-sxm").spec
    par = {"tp": 1, "pp": 1, "dp": 8, "micro_batch": 2, "zero": 3}

    def layer(unpad, attention="flash"):
        f = inputs(job_row(_job(parallelism=par, attention=attention), spec,
                           {"stack_unpad": unpad}))
        return dense_layer(f, micro(f))

    base, pad = layer(0.0), layer(1.0)
    elems = 2 * MODEL["seq_len"] * MODEL["hidden"]  # micro-batch 2
    rate = spec.memory_bw_Bps * spec.eff_memory
    assert pad.t_ew_f - base.t_ew_f == pytest.approx(9 * 2 * elems / rate)
    assert pad.t_ew_b - base.t_ew_b == pytest.approx(11 * 2 * elems / rate)
    u0, u1 = layer(0.0, "unfused"), layer(1.0, "unfused")
    assert u1.t_ew_f == u0.t_ew_f
    assert stacks.kernel_factors(stacks.load_stack("llm-foundry-flash2"))["stack_unpad"] == 1.0
    assert stacks.kernel_factors(stacks.load_stack("llm-foundry"))["stack_unpad"] == 0.0


def test_fp8_current_scaling_reads_each_cast_tensor_again_for_its_amax():
    """FP8 current scaling (stack kernels.fp8_current_scaling) adds, per token and layer,
    forward 4 B on each norm output (2 h: amax and the unfused cast's reads), 2 B on the
    activation output (ffn) and 2 B on the attention output (h); backward 2 B on each GEMM
    output's gradient (q, k, v, 2 h, ffn), at the device's memory rate; nothing in BF16."""
    from accelsim.training.perf import job_row
    from accelsim.training.perf.columns import inputs
    from accelsim.training.perf.layer import dense_layer, micro

    spec = load_device("h100-sxm").spec
    par = {"tp": 1, "pp": 1, "dp": 8, "micro_batch": 1, "zero": 1}

    def layer(cs, precision="fp8"):
        f = inputs(job_row(_job(parallelism=par, precision=precision), spec, {"fp8_cs": cs}))
        return dense_layer(f, micro(f))

    base, cs = layer(0.0), layer(1.0)
    T, h, ffn = MODEL["seq_len"], MODEL["hidden"], MODEL["ffn_hidden"]  # MHA, GeLU MLP
    rate = spec.memory_bw_Bps * spec.eff_memory
    fwd = T * (4 * 2 * h + 2 * ffn + 2 * h)
    bwd = T * 2 * (3 * h + 2 * h + ffn)
    assert cs.t_ew_f - base.t_ew_f == pytest.approx(fwd / rate)
    assert cs.t_ew_b - base.t_ew_b == pytest.approx(bwd / rate)
    assert layer(1.0, "bf16").t_ew_f == layer(0.0, "bf16").t_ew_f
    assert stacks.kernel_factors(stacks.load_stack("megatron-bridge"))["fp8_cs"] == 1.0
    assert stacks.kernel_factors(stacks.load_stack("nemo"))["fp8_cs"] == 0.0


@pytest.mark.parametrize(("zero", "paid"), [(3, True), (2, True), (1, False)])
def test_fsdp_gradient_hook_copies_are_paid_per_micro_batch(zero, paid):
    """A stack's ``unit_grad_bytes`` (FSDP1's gradient hook: the flat gradient's cat, its cast
    to the reduce dtype, the pre-divide) moves that many bytes per parameter of the rank's
    units every micro-batch at the memory rate, with ZeRO-2 and 3 only."""
    from accelsim.training.perf import estimate_arrays, job_row

    spec = load_device("h100-sxm").spec
    par = {"tp": 1, "pp": 1, "dp": 8, "micro_batch": 1, "zero": zero}
    job = _job(parallelism=par)  # global batch 16 over dp 8: m = 2 micro-batches
    rows = [job_row(job, spec, {"unit_grad_bytes": b}) for b in (0.0, 18.0)]
    base, slow = (estimate_arrays(r) for r in rows)
    extra = float(slow.columns["step_time_s"] - base.columns["step_time_s"])
    params = float(base.columns["params_per_device"])  # ZeRO-1 and up: unsharded weights
    want = 2 * params * 18.0 / (spec.memory_bw_Bps * spec.eff_memory)
    assert extra == pytest.approx(want if paid else 0.0, rel=1e-6, abs=1e-12)
    assert stacks.kernel_factors(stacks.load_stack("llm-foundry"))["unit_grad_bytes"] == 18.0


@pytest.mark.parametrize(("recompute", "forwards"), [("none", 1), ("full", 2)])
def test_attention_host_syncs_idle_the_gpu_per_layer_and_forward(recompute, forwards):
    """A stack whose flash-attention wrapper synchronises the host (``attention_host_syncs``:
    llm-foundry's flash_attn_fn, three unpad_input calls of a torch.nonzero and an .item()
    each) idles the GPU its ``unit_gap_us`` at each: L layers x m micro-batches x syncs x gap
    per forward, twice with full recomputation (the recomputed forward runs the wrapper
    again), on the one job as on the batch API; nothing with unfused attention, and the
    Triton stack has none."""
    from accelsim.training.perf import estimate_arrays, job_row

    spec = load_device("h100-sxm").spec
    par = {"tp": 1, "pp": 1, "dp": 8, "micro_batch": 1, "zero": 3, "recompute": recompute}
    gap, n = 235e-6, 6.0

    def extra(attention="flash"):
        job = _job(parallelism=par, attention=attention)  # m = 2 micro-batches
        rows = [job_row(job, spec, {"unit_gap_s": gap, "attn_syncs": k}) for k in (0.0, n)]
        scalar = [float(estimate_arrays(r).columns["step_time_s"]) for r in rows]
        batch = estimate_arrays({k: np.array([r[k] for r in rows]) for k in rows[0]})
        steps = batch.columns["step_time_s"]
        assert float(steps[1] - steps[0]) == pytest.approx(scalar[1] - scalar[0], rel=1e-9)
        return scalar[1] - scalar[0]

    assert extra() == pytest.approx(MODEL["layers"] * 2 * n * gap * forwards, rel=1e-6)
    assert extra("unfused") == pytest.approx(0.0, abs=1e-12)
    flash2 = stacks.kernel_factors(stacks.load_stack("llm-foundry-flash2"))
    assert flash2["attn_syncs"] == 6.0 and flash2["unit_gap_s"] == pytest.approx(gap)
    assert stacks.kernel_factors(stacks.load_stack("llm-foundry"))["attn_syncs"] == 0.0


def test_unit_ring_pays_nccls_ring_latency_per_layer_collective():
    """A stack whose FSDP all-gathers and reduce-scatters per unit on NCCL's ring
    (``overlaps.unit_ring``) pays, per step, L rings' latency for each: (D - k) a_in +
    (k - 1) a_out over the k domains the D ranks span (NCCL's tuning model: n - 1 steps,
    nNodes - 1 across), on top of the bandwidth; without it the one aggregated collective
    pays far less."""
    from accelsim import collectives as coll
    from accelsim.training.perf import job_row
    from accelsim.training.perf.columns import inputs
    from accelsim.training.perf.layer import dense_layer, micro
    from accelsim.training.perf.moe import moe_layer
    from accelsim.training.perf.step import data_parallel, rank_params, stages

    assert coll.ring_latency(512.0, 8.0, 5e-6, 10e-6) == pytest.approx(448 * 5e-6 + 63 * 10e-6)
    assert coll.ring_latency(128.0, 8.0, 3.4e-6, 14e-6) == pytest.approx(112 * 3.4e-6
                                                                         + 15 * 14e-6)
    assert coll.ring_latency(8.0, 8.0, 5e-6, 10e-6) == pytest.approx(7 * 5e-6)
    assert coll.ring_latency(1.0, 8.0, 5e-6, 10e-6) == 0.0
    spec = load_device("h100-sxm").spec
    par = {"tp": 1, "pp": 1, "dp": 64, "micro_batch": 1, "zero": 3}
    job = TrainJob(device="h100-sxm", model=MODEL, global_batch=64,
                   parallelism=Parallelism(**par))
    row = job_row(job, spec, {"unit_ring": 1.0})

    def dp_of(r):
        f = inputs(r)
        u = micro(f)
        ly = dense_layer(f, u)
        st = stages(f, u, ly, moe_layer(f, u, ly))
        return data_parallel(f, u, st, rank_params(f, u, st))

    quiet = {"scaleup_latency_s": 0.0, "scaleout_latency_s": 0.0}
    ring = 56 * row["scaleup_latency_s"] + 7 * row["scaleout_latency_s"]  # 64 ranks, 8 nodes
    on, on_bw = dp_of(row), dp_of({**row, **quiet})
    assert on.rs_s - on_bw.rs_s == pytest.approx(MODEL["layers"] * ring, rel=1e-9)
    assert on.ag_s - on_bw.ag_s == pytest.approx(MODEL["layers"] * ring, rel=1e-9)
    off, off_bw = dp_of({**row, "unit_ring": 0.0}), dp_of({**row, "unit_ring": 0.0, **quiet})
    assert off.rs_s - off_bw.rs_s < MODEL["layers"] * ring / 10
    for name, want in (("llm-foundry", 1.0), ("llm-foundry-flash2", 1.0), ("torchtitan", 0.0)):
        assert stacks.kernel_factors(stacks.load_stack(name))["unit_ring"] == want


@pytest.mark.parametrize("recompute", ["full", "none"])
def test_recompute_early_stop_spares_the_down_projection(recompute):
    """A stack whose checkpoint stops at the layer's last saved tensor (PyTorch >= 2.1's
    non-reentrant checkpoint, ``recompute_early_stop``) recomputes the layer but its down
    projection's GEMM and the residual add after it (autograd saves a linear's inputs before
    its GEMM runs): per step m x L x (that GEMM + 3 T h bytes at the memory rate) less time
    and L x 2 h ffn FLOPs per token less hardware FLOPs under full recomputation, no change
    without it; on the one job as on the batch API."""
    from accelsim.training.perf import estimate_arrays, job_row
    from accelsim.training.perf.columns import inputs
    from accelsim.training.perf.layer import dense_layer, micro

    spec = load_device("h100-sxm").spec
    par = {"tp": 1, "pp": 1, "dp": 8, "micro_batch": 2, "zero": 3, "recompute": recompute}
    job = _job(parallelism=par)  # global batch 16 over dp 8, micro-batch 2: m = 1
    rows = [job_row(job, spec, {"rc_early_stop": k}) for k in (0.0, 1.0)]
    full, stop = (estimate_arrays(r).columns for r in rows)
    batch = estimate_arrays({k: np.array([r[k] for r in rows]) for k in rows[0]}).columns
    f = inputs(rows[0])
    u = micro(f)
    T, h, L = u.T, MODEL["hidden"], MODEL["layers"]
    down = dense_layer(f, u).t_down + 3 * T * h * 2 / (spec.memory_bw_Bps * spec.eff_memory)
    saved = float(full["step_time_s"] - stop["step_time_s"])
    assert float(batch["step_time_s"][0] - batch["step_time_s"][1]) == pytest.approx(saved)
    on = recompute == "full"
    assert saved == pytest.approx(L * down if on else 0.0, rel=1e-9, abs=1e-12)
    tokens = 16 * MODEL["seq_len"]
    hw = lambda c: float(c["hfu"] * c["step_time_s"] * c["devices"] * f["peak_flops"])  # noqa: E731
    assert hw(full) - hw(stop) == pytest.approx(
        L * 2 * h * MODEL["ffn_hidden"] * tokens if on else 0.0, rel=1e-9, abs=1.0)
    assert float(full["model_flops_per_step"]) == float(stop["model_flops_per_step"])
    for name, want in (("llm-foundry", 1.0), ("llm-foundry-flash2", 1.0),
                       ("llm-foundry-2023-05", 0.0), ("megatron-core", 0.0),
                       ("torchtitan", 1.0)):
        assert stacks.kernel_factors(stacks.load_stack(name))["rc_early_stop"] == want


@pytest.mark.parametrize(("zero", "gathers"), [(3, 2), (2, 1), (1, 0)])
def test_fsdp2_copy_out_is_paid_per_all_gather(zero, gathers):
    """A stack's ``unit_gather_bytes`` (FSDP2's copy-out of each all-gather's flat buffer into
    the unsharded parameters, on the compute stream) moves that many bytes per parameter of
    the rank's units for each all-gather at the memory rate: m micro-batches x (2 gathers with
    ZeRO-3, 1 with ZeRO-2, none below) x P x bytes / (bw eff_m), beside the gradient copy-in
    (``unit_grad_bytes``, once per micro-batch); torchtitan's are FSDP2's."""
    from accelsim.training.perf import estimate_arrays, job_row

    spec = load_device("a100-80gb-sxm").spec
    par = {"tp": 1, "pp": 1, "dp": 8, "micro_batch": 1, "zero": zero}
    job = _job(parallelism=par)  # global batch 16 over dp 8: m = 2 micro-batches
    rows = [job_row(job, spec, {"unit_gather_bytes": b, "unit_grad_bytes": g})
            for b, g in ((0.0, 0.0), (4.0, 0.0), (4.0, 6.0))]
    base, out, both = (estimate_arrays(r) for r in rows)
    params = float(base.columns["params_per_device"])
    rate = spec.memory_bw_Bps * spec.eff_memory
    extra = float(out.columns["step_time_s"] - base.columns["step_time_s"])
    assert extra == pytest.approx(2 * gathers * params * 4.0 / rate, rel=1e-6, abs=1e-12)
    grad = float(both.columns["step_time_s"] - out.columns["step_time_s"])
    assert grad == pytest.approx(2 * params * 6.0 / rate if gathers else 0.0, rel=1e-6,
                                 abs=1e-12)
    tt = stacks.kernel_factors(stacks.load_stack("torchtitan"))
    assert (tt["unit_gather_bytes"], tt["unit_grad_bytes"]) == (4.0, 6.0)
    assert stacks.kernel_factors(stacks.load_stack("llm-foundry"))["unit_gather_bytes"] == 0.0


def test_jax_full_remat_does_not_recompute_the_mlp_output_projection():
    """MaxText's remat_policy full is jax.checkpoint with nothing_saveable; JAX's partial
    evaluation dead-code-eliminates the recomputed equations no tangent equation reads
    (jax/_src/ad_checkpoint.py remat_partial_eval, pe.dce_jaxpr), so the maxtext stack sets
    ``recompute_early_stop``. On the published full-remat row (MLPerf v4.0 GPT-3 175B on 512
    TPU v5p, tp 8 with the activations sharded over the tensor axis, one micro-batch of 32)
    the step shrinks by exactly L x (the MLP output projection's GEMM + the residual add's
    3 T h activation bytes at the memory rate + 1/4 of the forward's exposed TP collectives:
    the dot's reduce-scatter); the MLP input projection (save_dot_except_mlpwi's ``mlp_in``)
    is selective recomputation, untouched."""
    from accelsim.runs.file import load_runs, runs_dir
    from accelsim.training.perf import estimate_arrays, job_row
    from accelsim.training.perf.columns import inputs
    from accelsim.training.perf.layer import dense_layer, mem, micro

    factors = stacks.kernel_factors(stacks.load_stack("maxtext"))
    assert factors["rc_early_stop"] == 1.0
    run = next(r for r in load_runs(runs_dir() / "misses"
                                    / "mlperf-training-google-misses.yaml").runs
               if r.id == "mlperf-v4.0-gpt3-tpu-v5p-512")
    spec = load_device(run.device).spec
    par = Parallelism(tp=run.tp, pp=run.pp, dp=run.devices // run.tp, zero=run.zero,
                      micro_batch=run.micro_batches[0], recompute=run.recompute,
                      sequence_parallel=run.sequence_parallel)
    job = TrainJob(device=run.device, model=run.model, global_batch=run.global_batch,
                   precision=run.precision, attention=run.attention, stack=run.stack,
                   parallelism=par)
    rows = [job_row(job, spec, {**factors, "rc_early_stop": k}) for k in (0.0, 1.0)]
    whole, stop = (estimate_arrays(r).columns for r in rows)
    f = inputs(rows[1])
    u = micro(f)
    ly = dense_layer(f, u)
    m = run.global_batch / par.dp / par.micro_batch
    assert m == 1
    tail = ly.t_down + mem(3 * u.T * run.model.hidden * u.e / u.sp_div, f) + 0.25 * ly.t_tp_f
    saved = float(whole["step_time_s"] - stop["step_time_s"])
    assert saved == pytest.approx(m * run.model.layers * float(tail), rel=1e-9)
    assert float(stop["step_time_s"]) == pytest.approx(estimate(job, spec).step_time_s,
                                                       rel=1e-12)
    # save_dot_except_mlpwi (selective + mlp_in): the flag is not read
    sel = par.model_copy(update={"recompute": "selective", "recompute_modules": ["mlp_in"]})
    rows = [job_row(job.model_copy(update={"parallelism": sel}), spec,
                    {**factors, "rc_early_stop": k}) for k in (0.0, 1.0)]
    a, b = (float(estimate_arrays(r).columns["step_time_s"]) for r in rows)
    assert a == b


def test_fsdp_unit_edges_expose_one_unit_gather_per_pass_and_one_reduce_scatter():
    """A per-unit FSDP stack (``unit_ring``) with ``unit_edges`` pays, on top of the hidden
    gathers, one unit's all-gather per micro-batch and gather (forward; with ZeRO-3 also the
    backward's) and one unit's reduce-scatter per step: with a = one unit's all-gather and
    r = one unit's reduce-scatter, ZeRO-2 adds m a + r, ZeRO-3 2 m a + r; nothing without
    ``unit_ring``, below ZeRO-2 or without data parallelism
    (docs/_notes/fsdp-small-collectives.md)."""
    from accelsim.training.perf import estimate_arrays, job_row

    spec = load_device("h100-sxm").spec

    def extra(zero, batch, dp=8, ring=1.0):
        job = TrainJob(device="h100-sxm", model=MODEL, global_batch=batch,
                       parallelism=Parallelism(tp=1, pp=1, dp=dp, micro_batch=1, zero=zero))
        t = [float(estimate_arrays(job_row(job, spec, {"unit_ring": ring, "unit_edges": e}))
                   .columns["step_time_s"]) for e in (0.0, 1.0)]
        return t[1] - t[0]

    one, two = extra(2, 8), extra(2, 16)  # m = 1, 2
    a = two - one
    r = one - a
    assert a > 0 and r > a  # fp32 gradients: the reduce-scatter moves twice the bytes
    assert extra(3, 16) == pytest.approx(4 * a + r, rel=1e-9)
    assert extra(1, 16) == 0.0 and extra(2, 16, ring=0.0) == 0.0
    assert extra(3, 2, dp=1) == 0.0
    lf = stacks.load_stack("llm-foundry")
    assert stacks.kernel_factors(lf)["unit_edges"] == 1.0
    assert stacks.kernel_factors(stacks.load_stack("torchtitan"))["unit_edges"] == 0.0


def test_training_metric_passes_read_the_logits_per_micro_batch():
    """A stack's ``train_metric_passes`` (Composer's training metrics: a no-grad torch
    cross-entropy over each micro-batch's logits per metric) adds, per micro-batch and pass,
    the bf16 log_softmax (read and write 2 bytes per logit) and nll_loss's fp32 copy of it
    (read 2, write 4) at the memory rate, plus three launches; opt-in: no shipped stack sets
    it (docs/_notes/mpt-128-sign.md)."""
    from accelsim.training.perf import estimate_arrays, job_row

    spec = load_device("h100-sxm").spec
    par = {"tp": 1, "pp": 1, "dp": 8, "micro_batch": 1, "zero": 3}
    job = _job(parallelism=par)  # global batch 16 over dp 8: m = 2 micro-batches
    rows = [job_row(job, spec, {"metric_passes": k}) for k in (0.0, 2.0)]
    base, more = (float(estimate_arrays(r).columns["step_time_s"]) for r in rows)
    logits = MODEL["seq_len"] * MODEL["vocab"]  # one sequence per micro-batch
    per_pass = (logits * (3 * 2 + 4) / (spec.memory_bw_Bps * spec.eff_memory)
                + 3 * spec.kernel_overhead_s)
    assert more - base == pytest.approx(2 * 2 * per_pass, rel=1e-6)
    for name in ("llm-foundry", "llm-foundry-flash2", "llm-foundry-2023-05"):
        assert stacks.kernel_factors(stacks.load_stack(name))["metric_passes"] == 0.0


@pytest.mark.parametrize("dp", [8, 64])
def test_step_host_ops_grow_with_the_jobs_ranks(dp):
    """A stack's ``step_host_ops_per_rank`` (Composer's per-batch metric.compute(): torchmetrics'
    gather_all_tensors makes a zeros_like per rank and the list all_gather copies each
    rank's slice out, for each of 4 metric states) costs that many kernel launches per rank
    of the job and step, once per step whatever the micro-batches; the llm-foundry stacks
    set 8."""
    from accelsim.training.perf import estimate_arrays, job_row

    spec = load_device("h100-sxm").spec
    par = {"tp": 1, "pp": 1, "dp": dp, "micro_batch": 1, "zero": 3}
    job = TrainJob(device="h100-sxm", model=MODEL, global_batch=4 * dp,
                   parallelism=Parallelism(**par))  # m = 4 micro-batches
    rows = [job_row(job, spec, {"host_ops_rank": k}) for k in (0.0, 8.0)]
    base, more = (float(estimate_arrays(r).columns["step_time_s"]) for r in rows)
    assert more - base == pytest.approx(8 * dp * spec.kernel_overhead_s, rel=1e-6)
    for name in ("llm-foundry", "llm-foundry-flash2", "llm-foundry-2023-05"):
        assert stacks.kernel_factors(stacks.load_stack(name))["host_ops_rank"] == 8.0
    assert stacks.kernel_factors(stacks.load_stack("megatron-core"))["host_ops_rank"] == 0.0


@pytest.mark.parametrize("engine", ["analytic", "des"])
def test_step_host_ops_count_every_rank_of_the_job(engine, monkeypatch):
    """``step_host_ops_per_rank`` counts the job's ranks, tp x pp x dp x cp (torchmetrics
    gathers over the world group), and the DES engine, which prices the step's tail
    (gradient reduction and optimizer) from the same stage pieces, adds the same time. (The
    llm-foundry stacks that set it run neither TP nor PP: the factor is set here on the
    default stack's.)"""
    import importlib

    E = importlib.import_module("accelsim.training.perf.estimate")

    spec = load_device("h100-sxm").spec
    job = TrainJob(device="h100-sxm", model=MODEL, global_batch=32,
                   parallelism=Parallelism(tp=2, pp=2, dp=4, cp=2, zero=1))
    ranks = job.parallelism.devices
    assert ranks == 32
    factors = E.job_stack_factors
    base = estimate(job, spec, engine=engine)
    monkeypatch.setattr(E, "job_stack_factors",
                        lambda *a: {**factors(*a), "host_ops_rank": 8.0})
    more = estimate(job, spec, engine=engine)
    extra = 8 * ranks * spec.kernel_overhead_s
    assert more.step_time_s - base.step_time_s == pytest.approx(extra, rel=1e-6)
    assert more.breakdown["host_sync_s"] - base.breakdown["host_sync_s"] == pytest.approx(
        extra, rel=1e-6)
    assert base.breakdown["host_sync_s"] == 0.0
    assert more.breakdown["optimizer_s"] == pytest.approx(base.breakdown["optimizer_s"])


def _write(f, text, n):
    """Write ``text`` and give the file the n-th of distinct modification times (a file system's
    clock may not tick between two writes of a test; an editor's saves are seconds apart)."""
    import os

    f.write_text(text)
    t = 1_700_000_000_000_000_000 + n * 1_000_000_000
    os.utime(f, ns=(t, t))


def test_an_edited_default_stack_file_is_seen_without_a_restart(tmp_path, monkeypatch):
    """A notebook that edits the vendor's default stack file gets the new factors on its next
    estimate: the memos derived from the default stack are keyed by the file's stamp."""
    import shutil

    from accelsim import refs

    configs = tmp_path / "configs"
    shutil.copytree(refs.configs_dir(), configs)
    monkeypatch.setattr(refs, "configs_dir", lambda: configs)
    monkeypatch.setattr(stacks, "_DEFAULT_PATHS", {})
    spec = load_device("h100-sxm").spec
    before = estimate(_job(), spec).step_time_s
    f = configs / "stacks" / "megatron-core.yaml"
    text = f.read_text()
    assert "  gemm: {value: 1.0," in text
    _write(f, text.replace("  gemm: {value: 1.0,", "  gemm: {value: 0.5,", 1), 1)
    assert estimate(_job(), spec).step_time_s > 1.2 * before
    _write(f, text, 2)
    assert estimate(_job(), spec).step_time_s == pytest.approx(before, rel=1e-12)


def test_an_edited_default_serving_stack_file_is_seen_without_a_restart(tmp_path, monkeypatch):
    """The same for the serving side: the vendor's default serving stack's iteration terms
    (and what a replica's cost table reads of them) follow an edit of its file."""
    import shutil

    from accelsim import refs
    from accelsim.llm import perf

    configs = tmp_path / "configs"
    shutil.copytree(refs.configs_dir(), configs)
    monkeypatch.setattr(refs, "configs_dir", lambda: configs)
    monkeypatch.setattr(stacks, "_DEFAULT_PATHS", {})
    assert perf.serving_stack("NVIDIA").terms.host_seq_s == 0.0
    f = configs / "stacks" / "tensorrt-llm.yaml"
    text = f.read_text()
    old = "  host_seq_us: {value: 0,"
    assert old in text
    _write(f, text.replace(old, "  host_seq_us: {value: 25,", 1), 1)
    assert perf.serving_stack("NVIDIA").terms.host_seq_s == pytest.approx(25e-6)
    _write(f, text, 2)
    assert perf.serving_stack("NVIDIA").terms.host_seq_s == 0.0


_BASE = ("name: parent\nframework: X\nversion: '1'\nrole: training\nvendors: [NVIDIA]\n"
         "sources:\n  s: a source\n"
         "kernels:\n  stream_k: {value: true, source: s, confidence: A}\n"
         "  gemm: {value: 0.9, source: s, confidence: A}\n"
         "  attention: {value: 0.8, source: s, confidence: A}\n"
         "  step_host_gap_ms: {value: 5.0, source: s, confidence: A}\n"
         "schedules: [1f1b]\n")


def test_a_derived_stack_takes_what_it_does_not_give_from_its_base(tmp_path):
    """``base:``: every section the file does not give is the base's; a section it gives
    replaces the base's entries key by key; a null removes the base's key."""
    (tmp_path / "parent.yaml").write_text(_BASE)
    child = tmp_path / "child.yaml"
    child.write_text("name: child\nbase: ./parent.yaml\nframework: Y\nversion: '2'\n"
                     "kernels:\n  gemm: {value: 0.7, source: s, confidence: A}\n"
                     "  step_host_gap_ms: null\n")
    st = stacks.load_stack(child)
    assert (st.name, st.base, st.version, st.framework) == ("child", "./parent.yaml", "2", "Y")
    assert st.role == "training" and st.vendors == ["NVIDIA"] and st.sources == {"s": "a source"}
    assert (st.kernels.gemm.value, st.kernels.attention.value) == (0.7, 0.8)
    assert st.kernels.step_host_gap_ms is None and st.schedules == ["1f1b"]
    assert stacks.files_of(child) == [child.resolve(), (tmp_path / "parent.yaml").resolve()]
    # the same profile through the file loader (``accelsim validate``)
    from accelsim.kinds import load_file
    assert load_file(child)[1].kernels.gemm.value == 0.7


def test_an_edited_base_is_seen_by_the_stacks_that_derive_from_it(tmp_path):
    """The profile's cache key holds every file of the chain: editing the base alone moves a
    derived stack's numbers in a running process (a notebook), as editing the file does."""
    import os

    parent = tmp_path / "parent.yaml"
    parent.write_text(_BASE)
    child = tmp_path / "child.yaml"
    child.write_text("name: child\nbase: ./parent.yaml\nframework: Y\n")
    assert stacks.load_stack(child).kernels.gemm.value == 0.9
    parent.write_text(_BASE.replace("value: 0.9", "value: 0.6"))
    st = os.stat(parent)
    os.utime(parent, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert stacks.load_stack(child).kernels.gemm.value == 0.6


def test_the_shipped_derived_stacks_are_their_bases_plus_what_they_state():
    """The NeMo MLPerf stacks derive from ``nemo`` (the graphed v5.1 recipe from
    ``megatron-bridge``): the fitted per-step host gap is written once, in ``nemo.yaml``, and
    every file a fleet's cache keys on includes the base."""
    nemo = stacks.load_stack("nemo")
    for name in ("nemo-mlperf", "nemo-mlperf-apex", "nemo-mlperf-v31", "nemo-fa2"):
        st = stacks.load_stack(name)
        assert st.base == "nemo"
        assert st.kernels.step_host_gap_ms == nemo.kernels.step_host_gap_ms
        assert st.memory == nemo.memory and st.overlaps == nemo.overlaps
    assert "step_host_gap_ms" not in (stacks.refs.configs_dir() / "stacks"
                                      / "nemo-mlperf.yaml").read_text()
    cg = stacks.load_stack("nemo-mlperf-cg")
    assert cg.base == "megatron-bridge" and cg.kernels.step_host_gap_ms.value == 10.7
    files = [p.name for p in stacks.named_files({"b200": "nemo-mlperf-cg"})]
    assert files == ["nemo-mlperf-cg.yaml", "megatron-bridge.yaml"]


def test_the_full_graph_stack_does_not_inherit_the_eager_moe_host_cost():
    """nemo-mlperf-cg replays the whole iteration from a CUDA graph (FULL_CUDA_GRAPH=1), so
    its base's per-op eager host cost of a dropless MoE layer (megatron-bridge's
    ``moe_host_op_us``, branch moehost, merged after the base: refactor) is not its own: the
    file removes it (review43)."""
    assert stacks.load_stack("megatron-bridge").kernels.moe_host_op_us is not None
    cg = stacks.load_stack("nemo-mlperf-cg")
    assert cg.kernels.moe_host_op_us is None
    assert stacks.kernel_factors(cg)["moe_host_op_s"] == 0.0


@pytest.mark.parametrize("body, want", [
    ("name: a\nframework: X\nbase: ./a.yaml\n", "cycle (a -> a)"),
    ("name: a\nframework: X\nbase: no-such-stack\n", "unknown stack 'no-such-stack'"),
    ("name: a\nframework: X\nbase: 3\n", "expected a stack's catalog name or path"),
])
def test_a_bad_base_is_one_line_naming_the_field(tmp_path, body, want):
    from accelsim.kinds import load_file

    p = tmp_path / "a.yaml"
    p.write_text(body)
    with pytest.raises(AccelsimError) as e:
        load_file(p)
    msg = str(e.value)
    assert "base" in msg and want in msg and "\n" not in msg.strip()


def test_an_inherited_calibrated_number_is_named_by_the_file_that_states_it():
    """The NeMo MLPerf stacks inherit ``nemo``'s fitted host gap: calibration's messages and
    ``--refit`` name ``nemo.yaml``, where it is written, for each of them."""
    from accelsim.runs.params import _stack_params

    gap = {p.name: p.file for p in _stack_params() if p.field == "kernels.step_host_gap_ms"}
    for name in ("nemo", "nemo-mlperf", "nemo-mlperf-apex", "nemo-mlperf-v31", "nemo-fa2"):
        assert gap[name] == "configs/stacks/nemo.yaml"
    assert gap["nemo-mlperf-cg"] == "configs/stacks/nemo-mlperf-cg.yaml"  # its own, measured


def test_a_null_in_a_section_the_base_lacks_is_dropped(tmp_path):
    """``key: null`` inside a section the base does not have removes nothing and is not kept
    as a value (review43, finding 8)."""
    (tmp_path / "parent.yaml").write_text(_BASE)
    child = tmp_path / "child.yaml"
    child.write_text("name: child\nbase: ./parent.yaml\nframework: Y\n"
                     "gc:\n  aligned: {value: true, source: s, confidence: A}\n"
                     "  pause_ms: null\n")
    import yaml

    data = stacks.expand(yaml.safe_load(child.read_text()), child)
    assert data["gc"] == {"aligned": {"value": True, "source": "s", "confidence": "A"}}
    st = stacks.load_stack(child)
    assert st.gc is not None and st.gc.aligned.value and st.gc.pause_ms is None

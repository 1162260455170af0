"""Modern layouts: FP8 per operator, TP overlap, MLA, MTP, node-limited EP, DualPipe,
per-module recompute. Each against a hand derivation or a published figure."""

from dataclasses import replace

import pytest

from accelsim.devices import load_device
from accelsim.errors import AccelsimError
from accelsim.training import Parallelism, TrainJob, TransformerModel
from accelsim.transformer.model import load_model
from accelsim.transformer.params import model_params
from tests.training import estimate, job_row

LLAMA = TransformerModel(layers=8, hidden=8192, heads=64, kv_heads=8, ffn_hidden=28672,
                         gated_mlp=True, vocab=128256, seq_len=8192, tied_embeddings=False,
                         dropout=False)
DSV3 = load_model("deepseek-v3")


def _job(model=LLAMA, precision="bf16", device="h100-sxm", gb=16, **kw):
    job_kw = {k: kw.pop(k) for k in ("overlap_tp_comm", "overlap_ep_comm") if k in kw}
    par = dict(tp=4, pp=1, dp=1)
    par.update(kw)
    return TrainJob(device=device, model=model, parallelism=Parallelism(**par),
                    global_batch=gb, precision=precision, **job_kw)


def _op(r, name):
    return next(o for o in r.ops if o["op"] == name)


def test_fp8_runs_linear_gemms_at_fp8_and_attention_at_bf16():
    bf, f8 = estimate(_job()), estimate(_job(precision="fp8"))
    spec = load_device("h100-sxm").spec
    ratio = spec.flops("fp8") / spec.flops("bf16")
    # large compute-bound GEMMs: time ~ (F + F_half) / peak, so the ratio is close to 2
    for op in ("mlp_up", "mlp_down", "qkv_proj"):
        assert bf.ops and _op(bf, op)["time_s"] / _op(f8, op)["time_s"] == pytest.approx(
            ratio, rel=0.03)
    assert _op(f8, "attention_core")["time_s"] == pytest.approx(
        _op(bf, "attention_core")["time_s"], rel=1e-12)
    # the casts cost memory traffic: the elementwise part grows
    assert _op(f8, "norms_residual_activation")["time_s"] > _op(
        bf, "norms_residual_activation")["time_s"]
    # model FLOPs do not depend on the number format
    assert f8.mfu * f8.step_time_s * spec.flops("fp8") == pytest.approx(
        bf.mfu * bf.step_time_s * spec.flops("bf16"), rel=1e-9)
    # GEMM inputs held for backward as FP8: less activation memory
    assert f8.memory_per_device_gib < bf.memory_per_device_gib


def test_fp8_on_a_device_without_it_is_an_error():
    with pytest.raises(AccelsimError, match="does not support fp8"):
        estimate(_job(precision="fp8", device="a100-80gb-sxm"))


def test_tp_overlap_leaves_one_chunk_exposed():
    raw = estimate(_job(tp=8))
    ov = estimate(_job(tp=8, overlap_tp_comm=True))
    assert ov.breakdown["tp_comm_s"] < raw.breakdown["tp_comm_s"]
    # at least the first/last chunk (1/t) of every collective stays exposed
    assert ov.breakdown["tp_comm_s"] >= raw.breakdown["tp_comm_s"] / 8
    assert ov.step_time_s < raw.step_time_s
    # without tensor parallelism the flag changes nothing
    assert estimate(_job(tp=1, overlap_tp_comm=True)).step_time_s == pytest.approx(
        estimate(_job(tp=1)).step_time_s, rel=1e-12)


def test_deepseek_v3_has_671b_parameters():
    """DeepSeek-V3 report (arXiv 2412.19437), section 4.2: 671 B total parameters (the MTP
    module's 14 B come on top and are not in the count)."""
    assert model_params(DSV3) == pytest.approx(671e9, rel=0.002)


def test_mla_attention_parameters_by_hand():
    h, a, rq, rkv, dn, dr, dv = 1024, 8, 256, 128, 64, 32, 64
    base = dict(layers=1, hidden=h, heads=a, ffn_hidden=2048, vocab=1000, seq_len=256)
    mla = TransformerModel(**base, mla=dict(q_lora_rank=rq, kv_lora_rank=rkv, qk_head_dim=dn,
                                            rope_head_dim=dr, v_head_dim=dv))
    gqa = TransformerModel(**base)
    attn_mla = (h * rq + rq + rq * a * (dn + dr) + h * (rkv + dr) + rkv
                + rkv * a * (dn + dv) + a * dv * h)
    attn_gqa = 4 * h * h
    assert model_params(mla) - model_params(gqa) == pytest.approx(attn_mla - attn_gqa,
                                                                  rel=1e-12)


def test_head_dim_independent_of_hidden():
    """Qwen3-style attention: 64 heads of 128 with hidden 4096 (Q is 8192 wide)."""
    base = dict(layers=1, hidden=4096, heads=64, kv_heads=4, ffn_hidden=1024, vocab=1000,
                seq_len=256)
    m = TransformerModel(**base, head_dim=128)
    std = TransformerModel(**base)  # head dim 64
    attn = 4096 * (64 * 128 + 2 * 4 * 128) + 64 * 128 * 4096
    attn_std = 4096 * (4096 + 2 * 4 * 64) + 4096 * 4096
    assert model_params(m) - model_params(std) == pytest.approx(attn - attn_std, rel=1e-12)


def test_mtp_adds_one_layer_projection_and_head_to_the_model_flops():
    dense = LLAMA.model_copy(update={"layers": 8})
    a = estimate(_job(dense))
    b = estimate(_job(dense.model_copy(update={"mtp_layers": 1})))
    flops = lambda r: r.mfu * r.step_time_s * 4 * load_device("h100-sxm").spec.flops("bf16")  # noqa: E731
    h, V, s = dense.hidden, dense.vocab, dense.seq_len
    per_layer = (flops(a) / (3 * 16 * s) - 2 * h * V) / 8  # forward FLOPs per token, per layer
    assert flops(b) - flops(a) == pytest.approx(3 * 16 * s * (per_layer + 4 * h * h
                                                              + 2 * h * V), rel=1e-9)
    assert b.step_time_s > a.step_time_s
    assert b.memory_per_device_gib > a.memory_per_device_gib


def _dsv3(**kw):
    par = dict(tp=1, pp=1, dp=64, ep=64)
    par.update(kw)
    return TrainJob(device="h800", model=DSV3.model_copy(update={"layers": 4, "mtp_layers": 0}),
                    parallelism=Parallelism(**par), global_batch=64, precision="fp8")


def test_node_limited_routing_cuts_cross_node_all_to_all():
    """EP 64 on 8-GPU nodes spans 8 nodes: without a limit each of the 8 copies of a token
    crosses the network with probability 7/8; at most 4 nodes (DeepSeek-V3) sends 4 x 7/8.
    The all-to-all is network-bound, so its time falls by about 8/4."""
    free = DSV3.model_copy(update={"layers": 4, "mtp_layers": 0,
                                   "moe": DSV3.moe.model_copy(update={"max_nodes": None})})
    spec = replace(load_device("h800").spec, scaleout_latency_s=0.0, scaleup_latency_s=0.0)
    lim = TrainJob(**{**_dsv3().model_dump(), "model": free})
    a, b = estimate(lim, spec=spec), estimate(_dsv3(), spec=spec)
    assert a.breakdown["ep_comm_s"] / b.breakdown["ep_comm_s"] == pytest.approx(2.0, rel=1e-9)
    # inside one node, the limit does not matter
    one = {**_dsv3(dp=8, ep=8).model_dump(), "global_batch": 8}
    assert estimate(TrainJob(**{**one, "model": free})).breakdown["ep_comm_s"] == (
        pytest.approx(estimate(TrainJob(**one)).breakdown["ep_comm_s"], rel=1e-12))


def test_ep_overlap_hides_the_all_to_all():
    a = estimate(_dsv3())
    b = estimate(TrainJob(**{**_dsv3().model_dump(), "overlap_ep_comm": True}))
    assert b.breakdown["ep_comm_s"] < a.breakdown["ep_comm_s"]
    assert b.step_time_s < a.step_time_s


def _pipe(schedule, pp=8, gb=64):
    m = LLAMA.model_copy(update={"layers": 16})
    return TrainJob(device="h100-sxm", model=m, global_batch=gb,
                    parallelism=Parallelism(tp=8, pp=pp, dp=1, schedule=schedule))


def test_dualpipe_bubble_and_memory():
    """DeepSeek-V3 Table 2: bubble (PP/2 - 1)(F&B + B - 3W) = (PP/2 - 1) F against
    1F1B's (PP - 1)(F + B); parameters twice, activations PP + 1. Links made free so the
    stage times of both schedules are the same compute."""
    spec = replace(load_device("h100-sxm").spec, scaleout_latency_s=0.0,
                   scaleup_latency_s=0.0, scaleup_bw_Bps=1e30, scaleout_bw_Bps=1e30)
    one, dual = estimate(_pipe("1f1b"), spec=spec), estimate(_pipe("dualpipe"), spec=spec)
    f = dual.stages.stage_f_s
    b = dual.stages.stage_b_s
    assert dual.breakdown["pipeline_bubble_s"] / one.breakdown["pipeline_bubble_s"] == (
        pytest.approx((8 / 2 - 1) * f / ((8 - 1) * (f + b)), rel=1e-9))
    assert dual.memory_per_device_gib > one.memory_per_device_gib


def test_dualpipe_layout_rules_and_engine():
    with pytest.raises(AccelsimError, match=r"parallelism\.schedule"):
        estimate(_pipe("dualpipe", pp=1, gb=8))
    with pytest.raises(AccelsimError, match="dualpipe needs"):
        estimate(_pipe("dualpipe", pp=8, gb=4))  # fewer micro-batches than stages
    with pytest.raises(AccelsimError, match="des engine"):
        estimate(_pipe("dualpipe"), engine="des")


def test_recompute_modules_trade_memory_for_time():
    base = _dsv3(recompute_modules=[])
    full = _dsv3(recompute_modules=["layernorm", "mla_up_proj", "moe_act"])
    a, b = estimate(base), estimate(full)
    assert b.memory_per_device_gib < a.memory_per_device_gib
    assert b.step_time_s > a.step_time_s
    # MLA up-projections: nothing to recompute in a grouped-query model
    g1 = estimate(_job(recompute_modules=["mla_up_proj"]))
    assert g1.step_time_s == pytest.approx(estimate(_job()).step_time_s, rel=1e-12)


def test_alternate_mm_recomputes_three_gemms_and_holds_less():
    """torchtitan's per-op selective checkpointing (recompute module alternate_mm): the K,
    output and up GEMMs (every second matmul of a block) and the norms and activation again
    in the backward, so the step is slower than plain selective but faster than full
    recomputation, and holds less than selective (no norm, K, output, up or activation
    outputs) but more than full (Q, V, gate, down and attention outputs)."""
    sel, alt, full = (estimate(_job(tp=1, recompute=rc, recompute_modules=mods))
                      for rc, mods in (("selective", []), ("selective", ["alternate_mm"]),
                                       ("full", [])))
    assert sel.step_time_s < alt.step_time_s < full.step_time_s
    assert full.memory_per_device_gib < alt.memory_per_device_gib < sel.memory_per_device_gib
    g = LLAMA
    flops = 2 * (g.hidden * (g.kv_heads or g.heads) * (g.hidden // g.heads)
                 + g.hidden * g.hidden + g.hidden * g.ffn_hidden)
    fwd = 2 * (2 * g.hidden * g.hidden + 2 * g.hidden * (g.kv_heads or g.heads)
               * (g.hidden // g.heads) + 3 * g.hidden * g.ffn_hidden)
    extra = (alt.step_time_s - sel.step_time_s) / (full.step_time_s - sel.step_time_s)
    # about the three GEMMs' share of the forward's linear FLOPs (the full recomputation
    # also runs the attention kernel; alternate_mm adds the norms and activation)
    assert 0.5 * flops / fwd < extra < 1.2 * flops / fwd
    assert job_row(_job(recompute_modules=["alternate_mm"]))["rc_alt_mm"] == 1


def test_qkv_offload_spares_the_qkv_projection_of_full_recomputation():
    """MaxText's qkv_proj_offloaded (recompute module qkv_offload, with full remat): the
    backward recomputes the layer but its QKV projection, whose output came back from host:
    the step is faster than plain full recomputation by one QKV GEMM per layer and
    micro-batch, the hardware FLOPs lower by that GEMM's, the model FLOPs unchanged."""
    full = estimate(_job(tp=1, recompute="full"))
    off = estimate(_job(tp=1, recompute="full", recompute_modules=["qkv_offload"]))
    qkv = _op(full, "qkv_proj")
    layers, m = LLAMA.layers, 16  # global batch 16, dp 1, micro-batch 1
    assert full.step_time_s - off.step_time_s == pytest.approx(
        layers * m * qkv["time_s"], rel=1e-6)
    assert off.mfu == pytest.approx(full.mfu * full.step_time_s / off.step_time_s, rel=1e-9)
    spared = layers * m * qkv["flops"] / (off.step_time_s * load_device("h100-sxm").spec.flops(
        "bf16"))
    assert off.hfu == pytest.approx(full.hfu * full.step_time_s / off.step_time_s - spared,
                                    rel=1e-6)


def test_recompute_modules_that_mean_nothing_with_the_recompute_mode_are_refused():
    """qkv_offload spares a QKV GEMM of full recomputation only, alternate_mm is a selective
    policy: either with the other modes would be silently ignored (or half applied), so the
    layout check names the field instead."""
    from accelsim.training.job import layout_problems

    def problems(rc, mods):
        job = _job(tp=1, recompute=rc, recompute_modules=mods)
        return [p.field for p in layout_problems(job.model, job.parallelism, job.global_batch)]

    assert problems("full", ["qkv_offload"]) == []
    assert problems("selective", ["alternate_mm"]) == []
    assert problems("none", ["alternate_mm"]) == []
    for rc, mods in (("selective", ["qkv_offload"]), ("none", ["qkv_offload"]),
                     ("full", ["alternate_mm"])):
        assert problems(rc, mods) == ["parallelism.recompute_modules"], (rc, mods)


def test_new_columns_reach_the_batch_row():
    row = job_row(_dsv3(schedule="1f1b", recompute_modules=["mla_up_proj"]))
    assert row["mla_kv_rank"] == 512 and row["moe_max_nodes"] == 4 and row["fp8"] == 1
    assert row["rc_mla_up"] == 1 and row["dualpipe"] == 0


def test_one_job_on_floats_equals_the_batch_model_on_arrays():
    """estimate() runs the formulas on Python floats (accelsim.xp); the batch API on numpy
    arrays. Every output agrees on jobs that exercise every branch."""
    import numpy as np
    import pandas as pd

    from accelsim.training import estimate_frame

    jobs = [
        _job(), _job(precision="fp8", tp=8, overlap_tp_comm=True),
        _job(tp=2, pp=2, virtual_stages=2, recompute="full", zero=3, cp=2, gb=32),
        _job(tp=1, recompute="selective", zero=0),
        _job(tp=2, recompute="selective", recompute_modules=["alternate_mm"], zero=3),
        _job(tp=2, recompute="full", recompute_modules=["qkv_offload"]),
        _dsv3(), TrainJob(**{**_dsv3(recompute_modules=["layernorm", "moe_act"]).model_dump(),
                              "overlap_ep_comm": True}),
        _pipe("dualpipe"), _pipe("1f1b", pp=4),
        TrainJob(**{**_dsv3().model_dump(), "model": DSV3.model_copy(
            update={"layers": 8})}),
    ]
    rows = [job_row(j) for j in jobs]
    frame = estimate_frame(pd.DataFrame(rows))
    for i, j in enumerate(jobs):
        one = estimate(j)
        assert one.step_time_s == pytest.approx(frame["step_time_s"].iloc[i], rel=1e-12)
        assert one.memory_per_device_gib == pytest.approx(
            frame["memory_per_device_gib"].iloc[i], rel=1e-12)
        assert one.mfu == pytest.approx(frame["mfu"].iloc[i], rel=1e-12)
        for k, v in one.breakdown.items():
            key = "bubble_s" if k == "pipeline_bubble_s" else k
            assert v == pytest.approx(float(frame[key].iloc[i]), rel=1e-12, abs=1e-15)
        assert np.isfinite(one.step_time_s)

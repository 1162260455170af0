import numpy as np
import pandas as pd
import pytest

from accelsim.errors import AccelsimError
from accelsim.runtime import RUNTIME_RESERVE_BYTES
from accelsim.training import Parallelism, TrainJob, TransformerModel, estimate_frame
from accelsim.transformer.params import model_params
from tests.training import estimate, job_row

GPT3 = TransformerModel(layers=96, hidden=12288, heads=96, ffn_hidden=49152, vocab=51200,
                        seq_len=2048)


def job(**par) -> TrainJob:
    base = dict(tp=8, pp=8, dp=8, micro_batch=1, recompute="selective", zero=1)
    base.update(par)
    return TrainJob(device="a100-80gb-sxm", model=GPT3, parallelism=Parallelism(**base),
                    global_batch=512)


def test_model_flops_are_6N_plus_attention():
    r = estimate(job())
    m = GPT3
    h, L, s, V = m.hidden, m.layers, m.seq_len, m.vocab
    N = L * (12 * h * h) + V * h  # weights that do matmuls (attention + MLP + LM head)
    tokens = 512 * s
    expect = 6 * N * tokens + 12 * L * h * s * tokens  # + attention scores (fwd+bwd)
    got = r.mfu * r.step_time_s * 512 * 312e12
    assert got == pytest.approx(expect, rel=1e-6)


def test_breakdown_sums_to_step_time():
    for engine in ("analytic", "des"):
        r = estimate(job(virtual_stages=3), engine=engine)
        assert sum(r.breakdown.values()) == pytest.approx(r.step_time_s, rel=1e-9)


def test_des_agrees_with_analytic_for_megatron_layout():
    a = estimate(job(virtual_stages=3))
    d = estimate(job(virtual_stages=3), engine="des")
    assert d.step_time_s == pytest.approx(a.step_time_s, rel=0.01)


def test_memory_hand_computed_single_device():
    # 1 device, tiny model, ZeRO-0, no recompute, flash attention: states 18 B/param.
    m = TransformerModel(layers=2, hidden=1024, heads=16, ffn_hidden=4096, vocab=32000,
                         seq_len=1024)
    j = TrainJob(device="a100-80gb-sxm", model=m, global_batch=4, precision="bf16",
                 parallelism=Parallelism(micro_batch=1, zero=0, recompute="none"))
    r = estimate(j)
    h, s, ffn, V = 1024, 1024, 4096, 32000
    params = 2 * (4 * h * h + 2 * h + 2 * h * ffn) + V * h  # tied embeddings
    states = params * (2 + 4 + 12)
    # Korthikanti et al. 2022's 34 s h per layer: 2 norm inputs, 2 norm outputs (the QKV and
    # fc1 inputs), 2 one-byte dropout masks; Q, K, V and the output projection's input;
    # the GeLU input and output
    per_layer = s * (4 * 2 * h + 2 * h) + s * (3 * 2 * h + 2 * h) + s * 2 * ffn * 2
    # plus one layer's activation gradients while its backward runs
    acts = 2 * per_layer + s * h * 2 + per_layer
    # Megatron's loss: the bf16 head output beside its fp32 copy (6 B per logit); the
    # GEMM workspace (2 x 32 MiB)
    logits = s * V * 6
    expect = states + acts + logits + 2 * 32 * 2**20 + RUNTIME_RESERVE_BYTES
    assert r.memory_per_device_gib * 2**30 == pytest.approx(expect, rel=1e-9)


def test_zero_stages_shrink_memory_monotonically():
    mems = [estimate(job(zero=z)).memory_per_device_gib for z in range(4)]
    assert mems == sorted(mems, reverse=True) and mems[0] > mems[3]


def test_recompute_trades_memory_for_time():
    none, full = (estimate(job(recompute=r)) for r in ("none", "full"))
    assert full.memory_per_device_gib < none.memory_per_device_gib
    assert full.step_time_s > none.step_time_s
    assert full.hfu > full.mfu  # recomputed FLOPs count as hardware FLOPs only


def test_fp8_needs_device_support():
    j = job().model_copy(update={"precision": "fp8"})
    with pytest.raises(AccelsimError, match="does not support fp8"):
        estimate(j)
    h100 = j.model_copy(update={"device": "h100-sxm"})
    bf16 = h100.model_copy(update={"precision": "bf16"})
    assert estimate(h100).step_time_s < estimate(bf16).step_time_s


def test_does_not_fit_is_a_result_not_an_error():
    r = estimate(job(tp=1, pp=1, dp=512, zero=0))
    assert not r.fits_memory and r.memory_per_device_gib > 80


def test_faster_device_is_faster_and_roofline_bound_holds():
    a100 = estimate(job())
    h100 = estimate(job().model_copy(update={"device": "h100-sxm"}))
    assert h100.step_time_s < a100.step_time_s
    tokens = 512 * GPT3.seq_len
    for r, peak in ((a100, 312e12), (h100, 989.4e12)):
        # roofline: no step beats the 6 N T FLOPs of its weights at the datasheet peak
        assert r.hfu <= 1.0
        assert r.step_time_s >= 6 * model_params(GPT3) * tokens / (512 * peak)
        assert r.step_time_s < 3 * 6 * model_params(GPT3) * tokens / (512 * peak)


def test_gqa_and_gated_mlp_change_flops_as_expected():
    dense = TransformerModel(layers=4, hidden=4096, heads=32, ffn_hidden=11008, vocab=32000,
                             seq_len=4096, gated_mlp=True)
    gqa = dense.model_copy(update={"kv_heads": 8})
    rows = pd.DataFrame([job_row(TrainJob(device="h100-sxm", model=m, global_batch=8,
                                          parallelism=Parallelism()))
                         for m in (dense, gqa)])
    out = estimate_frame(rows)
    f_dense, f_gqa = out["model_flops_per_step"]
    h, s, tokens = 4096, 4096, 8 * 4096
    # K and V projections shrink from 2h^2 to 2h^2/4 per layer: 6 * 4 layers * 1.5 h^2 per token
    assert f_dense - f_gqa == pytest.approx(6 * 4 * 1.5 * h * h * tokens)
    # and the attention core (QK^T, AV over the sequence) is the same: 12 L h s per token
    attn = 6 * 4 * 2 * s * h * 2
    assert f_dense > attn * tokens


def test_moe_active_flops_and_expert_parallel_memory():
    from accelsim.training import MoE

    moe = TransformerModel(layers=8, hidden=2048, heads=16, ffn_hidden=8192, vocab=32000,
                           seq_len=2048, gated_mlp=True,
                           moe=MoE(experts=8, top_k=2, ffn_hidden=8192))
    dense = moe.model_copy(update={"moe": None})
    mk = lambda m, ep: TrainJob(device="h100-sxm", model=m, global_batch=64,  # noqa: E731
                                parallelism=Parallelism(dp=8, ep=ep, zero=1))
    r_dense, r_moe1, r_moe8 = estimate(mk(dense, 1)), estimate(mk(moe, 1)), estimate(mk(moe, 8))
    # top-2 of 8 experts: twice the dense MLP FLOPs (plus a tiny router)
    assert r_moe1.mfu * r_moe1.step_time_s > 1.5 * r_dense.mfu * r_dense.step_time_s
    assert r_moe8.memory_per_device_gib < r_moe1.memory_per_device_gib
    assert r_moe8.breakdown["ep_comm_s"] > 0 and r_moe1.breakdown["ep_comm_s"] == 0


def test_batch_api_matches_single_estimates():
    jobs = [job(), job(virtual_stages=2), job(tp=4, dp=16)]
    frame = estimate_frame(pd.DataFrame([job_row(j) for j in jobs]))
    for j, (_, row) in zip(jobs, frame.iterrows(), strict=True):
        assert row["step_time_s"] == pytest.approx(estimate(j).step_time_s)
    assert np.all(frame["tokens_per_s"] > 0)


def test_batch_api_names_missing_columns():
    with pytest.raises(AccelsimError, match="missing input columns"):
        estimate_frame(pd.DataFrame({"tp": [1]}))


def test_operator_table_explains_one_layer():
    r = estimate(job())
    ops = {o["op"]: o for o in r.ops}
    h, s, t = 12288, 2048, 8
    assert ops["qkv_proj"]["flops"] == pytest.approx(2 * s * h * 3 * h / t)
    assert ops["mlp_up"]["bound"] == "compute"
    assert ops["norms_residual_activation"]["bound"] == "memory"
    assert ops["tp_comm"]["bound"] == "communication"
    assert all(o["time_s"] > 0 for o in r.ops)


# ------------------------------------------------- uneven stages, dropout, causal FLOPs

SMALL = TransformerModel(layers=28, hidden=4096, heads=32, ffn_hidden=16384, vocab=1024,
                         seq_len=2048)


def _uneven(first=None, last=None, v=1, pp=4, model=SMALL, engine="analytic"):
    j = TrainJob(device="a100-80gb-sxm", model=model, global_batch=64, precision="bf16",
                 parallelism=Parallelism(tp=1, pp=pp, dp=1, micro_batch=1, virtual_stages=v,
                                         recompute="none", zero=0, first_stage_layers=first,
                                         last_stage_layers=last))
    return estimate(j, engine=engine)


def test_uneven_stages_equal_to_the_even_split_change_nothing():
    even, same = _uneven(), _uneven(first=7, last=7)
    assert same.step_time_s == pytest.approx(even.step_time_s, rel=1e-12)
    assert same.memory_per_device_gib == pytest.approx(even.memory_per_device_gib, rel=1e-12)


def test_the_slowest_stage_sets_the_pace():
    """6 + 8 + 8 + 6 layers: a middle stage holds 8 of an even 7, so the steady state runs
    8/7 slower (the vocabulary is tiny, so embedding and head weigh little)."""
    even, uneven = _uneven(), _uneven(first=6, last=6)
    assert uneven.breakdown["compute_s"] / even.breakdown["compute_s"] == pytest.approx(
        8 / 7, rel=0.01)
    # memory: the second stage binds (8 layers' states at 18 B per parameter, ZeRO-0, and
    # 8 x 3 layer-activations in flight) against the even first stage (7 layers, the
    # embedding, 7 x 4 layer-activations and the embedding output): by hand
    h, ffn, s, V = 4096, 16384, 2048, 1024
    layer_states = 18 * (4 * h * h + 2 * h + 2 * h * ffn)
    per_layer_act = s * (10 * h) + s * (8 * h) + s * 4 * ffn
    expect = layer_states - 18 * V * h - 4 * per_layer_act - s * h * 2
    assert (uneven.memory_per_device_gib - even.memory_per_device_gib) * 2**30 == (
        pytest.approx(expect, rel=1e-9))
    des = _uneven(first=6, last=6, engine="des")
    assert des.step_time_s == pytest.approx(uneven.step_time_s, rel=0.02)


def test_uneven_layouts_are_checked():
    llama = TransformerModel(layers=126, hidden=1024, heads=8, ffn_hidden=4096, vocab=1024,
                             seq_len=1024)
    with pytest.raises(AccelsimError, match=r"parallelism\.pp"):
        _uneven(pp=16, model=llama)
    assert _uneven(first=7, last=7, pp=16, v=8, model=llama).step_time_s > 0
    with pytest.raises(AccelsimError, match=r"parallelism\.first_stage_layers"):
        _uneven(first=7, last=7, pp=16, v=3, model=llama)  # 8 per middle stage, not 3k


def test_no_dropout_drops_the_masks():
    """Two 1-byte masks per token per layer, replicated (no TP here): 2 h bytes per token
    per layer, times the first stage's layers and micro-batches in flight, and once more
    for the layer whose backward runs (the gradients of its activations)."""
    m = SMALL.model_copy(update={"dropout": False})
    a, b = _uneven(pp=1), _uneven(pp=1, model=m)
    # one micro-batch in flight, plus the backward's gradients of one layer's
    masks = 2 * SMALL.hidden * SMALL.seq_len * (SMALL.layers + 1)
    assert (a.memory_per_device_gib - b.memory_per_device_gib) * 2**30 == pytest.approx(
        masks, rel=1e-9)


def test_causal_convention_counts_half_the_attention_scores():
    r = estimate(job())
    m = GPT3
    h, L, s, V = m.hidden, m.layers, m.seq_len, m.vocab
    full = 6 * (L * 12 * h * h + V * h) + 12 * L * h * s  # per token
    causal = full - 6 * L * h * s
    assert r.mfu_causal / r.mfu == pytest.approx(causal / full, rel=1e-9)

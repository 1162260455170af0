"""MaxText as its TPU v5e table was measured (github.com/AI-Hypercomputer/maxtext at 9bc243c95,
2023-10-27; configs/runs/heldout/maxtext-tpu-v5e.yaml): the model shapes global_parameter_scale
gave then, its parallel attention-and-MLP block (``parallel_layers``) and its flash attention
without the causal mask (``causal: false``), each checked analytically."""

from __future__ import annotations

import math

import numpy as np
import pytest

from accelsim.devices import load_device
from accelsim.roofline import FLASH_REL_EFF
from accelsim.runs.file import heldout_dir, load_runs
from accelsim.training import Parallelism, TrainJob, TransformerModel
from accelsim.training.perf import estimate_arrays, job_row
from accelsim.training.perf.columns import inputs
from accelsim.training.perf.layer import dense_layer, micro

# MaxText/configs/base.yml at 9bc243c95 (from af0067809, 2023-09-07, to 3b2ac8113, 2024-02-14)
BASE = {"emb": 2560, "heads": 8, "mlp": 8192, "layers": 16, "head_dim": 256, "vocab": 32768}


def _scales(scale: int) -> tuple[int, int, int, int]:
    """MaxText/pyconfig.py get_individual_scales at 9bc243c95: emb, heads, mlp, layers."""
    log2 = math.floor(math.log2(scale))
    base, rem = divmod(log2, 3)
    heads = base + int(rem > 0)
    return base + int(rem > 1), heads, heads, base


def _rows() -> dict[str, object]:
    return {r.id: r for r in load_runs(heldout_dir() / "maxtext-tpu-v5e.yaml").runs}


@pytest.mark.parametrize("size", [16, 32, 64, 128])
def test_the_rows_carry_the_2023_scaled_shapes(size):
    """Each row's model is global_parameter_scale=size on the 2023 base.yml (relu MLP, tied
    256-wide heads, vocabulary 32,768), and its parameters (MaxText counts the tied embedding
    once) are the nominal size within 2 %."""
    e, a, m, n = _scales(size)
    run = _rows()[f"maxtext-{size}b-v5e-256"]
    md = run.model
    assert (md.hidden, md.heads, md.ffn_hidden, md.layers) == (
        BASE["emb"] << e, BASE["heads"] << a, BASE["mlp"] << m, BASE["layers"] << n)
    assert (md.head_dim, md.vocab, md.gated_mlp, md.tied_embeddings) == (
        BASE["head_dim"], BASE["vocab"], False, True)
    assert md.parallel_layers and not md.causal
    q = md.heads * md.head_dim
    params = md.layers * (4 * md.hidden * q + 2 * md.hidden * md.ffn_hidden) \
        + md.vocab * md.hidden
    assert params == pytest.approx(size * 1.0e9, rel=0.02)


def test_model_flops_are_maxtexts_mfu_numerator():
    """MaxText's train.py calculate_training_tflops at 9bc243c95: 6 x parameters x tokens +
    12 x heads x layers x head_dim x seq^2 per sequence (full attention). The model's FLOPs
    of the 128B row match it to the norm scales' share (1e-5)."""
    run = _rows()["maxtext-128b-v5e-256"]
    md = run.model
    spec = load_device("tpu-v5e").spec
    job = TrainJob(device="tpu-v5e", model=md, global_batch=256, precision="bf16",
                   parallelism=Parallelism(tp=16, dp=16, micro_batch=16, zero=3,
                                           sequence_parallel=True, recompute="full"),
                   stack="maxtext")
    model_flops = float(estimate_arrays(job_row(job, spec)).columns["model_flops_per_step"])
    q = md.heads * md.head_dim
    params = md.layers * (4 * md.hidden * q + 2 * md.hidden * md.ffn_hidden + md.hidden) \
        + md.vocab * md.hidden + md.hidden
    s, seqs = md.seq_len, 256
    maxtext = 6 * params * s * seqs + 12 * md.heads * md.layers * md.head_dim * s * s * seqs
    assert model_flops == pytest.approx(maxtext, rel=1e-5)


def _layer(model: TransformerModel, tp: int, sp: bool, device: str = "tpu-v5e"):
    spec = load_device(device).spec
    job = TrainJob(device=device, model=model, global_batch=16, precision="bf16",
                   parallelism=Parallelism(tp=tp, dp=1, micro_batch=16, sequence_parallel=sp))
    f = inputs(job_row(job, spec))
    u = micro(f)
    return f, u, dense_layer(f, u)


SEQ = TransformerModel(layers=4, hidden=4096, heads=16, head_dim=256, ffn_hidden=16384,
                       vocab=32768, seq_len=2048, dropout=False)
PAR = SEQ.model_copy(update={"parallel_layers": True})
FULL = SEQ.model_copy(update={"causal": False})


@pytest.mark.parametrize("sp", [True, False])
def test_parallel_layers_halve_the_tensor_parallel_collectives(sp):
    """One gather of the norm's output for all the input GEMMs and one reduction of the
    summed outputs per pass: half the sequential block's 2 all-gathers + 2 reduce-scatters
    (2 all-reduces without sequence parallelism); the GEMMs are the same; one norm (read
    and write of T h) less per pass."""
    _, u, seq = _layer(SEQ, 8, sp)
    _, _, par = _layer(PAR, 8, sp)
    assert par.t_tp_once == pytest.approx(0.5 * seq.t_tp_once, rel=1e-12)
    assert par.t_tp_f < seq.t_tp_f
    assert (par.t_gemm_f, par.t_att_f) == (seq.t_gemm_f, seq.t_att_f)
    assert seq.ew_f - par.ew_f == pytest.approx(2 * u.T * SEQ.hidden * 2 / u.sp_div, rel=1e-12)


def test_attention_without_the_causal_mask_runs_every_score_block():
    """A TPU profile prices flash attention at FLASH_REL_EFF x the GEMM efficiency on the
    FLOPs it executes: causal, half the scores; without the mask all of them,
    (F + F_half) / (peak eff FLASH_REL_EFF). A GPU's published-kernel rate: slower too. The
    model FLOPs (the MFU convention counts full attention either way) do not change."""
    f, _, causal = _layer(SEQ, 1, False)
    _, _, full = _layer(FULL, 1, False)
    t_full = (full.F_attn + f["gemm_half_flop"]) / (
        f["peak_act_flops"] * f["eff_compute"] * FLASH_REL_EFF)
    assert full.t_att_f == pytest.approx(t_full, rel=1e-12)
    assert full.F_attn == causal.F_attn
    assert 1.9 < full.t_att_f / causal.t_att_f < 2.0
    _, _, g_causal = _layer(SEQ, 1, False, "h100-sxm")
    _, _, g_full = _layer(FULL, 1, False, "h100-sxm")
    assert g_full.t_att_f > 1.5 * g_causal.t_att_f
    assert g_full.t_att_b > 1.5 * g_causal.t_att_b


def test_jax_remat_spares_both_output_projections_of_a_parallel_block():
    """Under full remat with JAX's dead-code elimination (the maxtext stack's
    recompute_early_stop) the attention output projection and the MLP's down projection
    both feed only the summed output, whose JVP reads neither: neither GEMM, nor the
    residual add, is recomputed. Per layer the saved time is t_out + t_down + 3 T h e at the
    memory rate (tp 1), and the hardware FLOPs 2 h (q_w + ffn) per token less."""
    spec = load_device("tpu-v5e").spec
    seqs = 16
    rows = []
    for model in (SEQ, PAR):
        job = TrainJob(device="tpu-v5e", model=model, global_batch=seqs, precision="bf16",
                       parallelism=Parallelism(tp=1, dp=1, micro_batch=seqs,
                                               recompute="full"))
        rows += [job_row(job, spec) | {"rc_early_stop": k} for k in (0.0, 1.0)]
    cols = estimate_arrays({k: np.array([r[k] for r in rows]) for k in rows[0]}).columns
    step = cols["step_time_s"]
    f = inputs(rows[2])
    u = micro(f)
    ly = dense_layer(f, u)
    add = 3 * u.T * PAR.hidden * 2 / (spec.memory_bw_Bps * spec.eff_memory)
    assert float(step[2] - step[3]) == pytest.approx(PAR.layers * (ly.t_out + ly.t_down + add),
                                                     rel=1e-9)
    hw = cols["hfu"] * step * f["peak_flops"]
    q = PAR.heads * PAR.head_dim
    assert float(hw[2] - hw[3]) == pytest.approx(
        PAR.layers * 2 * PAR.hidden * (q + PAR.ffn_hidden) * seqs * PAR.seq_len, rel=1e-9)
    # the sequential block spares the down projection only
    assert float(step[0] - step[1]) < float(step[2] - step[3])

"""MaxText's save_dot_except_mlpwi remat policy (recompute module mlp_in, with selective):
the saved names are the Q, K, V, output and MLP output projections' dots (MaxText
layers/models.py, jax.checkpoint_policies.save_only_these_names in the MLPerf v4.1 fork,
github.com/mlcommons/training_results_v4.1 Google/benchmarks/gpt3/implementations/maxtext/
maxtext_fork/MaxText/layers/models.py), so the MLP input projection, its activation, the
norms and the attention kernel's forward run again in the backward."""

from __future__ import annotations

import pandas as pd
import pytest

from accelsim.training import Parallelism, TrainJob, TransformerModel, estimate_frame
from accelsim.training.job import layout_problems
from tests.training import estimate, job_row

GPT = TransformerModel(layers=8, hidden=12288, heads=96, ffn_hidden=49152, vocab=50688,
                       seq_len=2048, tied_embeddings=True, dropout=False)


def _job(recompute: str, mods: list[str], tp: int = 1) -> TrainJob:
    return TrainJob(device="h100-sxm", model=GPT, global_batch=8, precision="bf16",
                    parallelism=Parallelism(tp=tp, pp=1, dp=1, recompute=recompute,
                                            recompute_modules=mods))


def test_mlp_in_recomputes_the_input_projection_and_holds_less():
    sel, mi, full = (estimate(_job(rc, mods)) for rc, mods in
                     (("selective", []), ("selective", ["mlp_in"]), ("full", [])))
    assert sel.step_time_s < mi.step_time_s < full.step_time_s
    assert full.memory_per_device_gib < mi.memory_per_device_gib < sel.memory_per_device_gib
    # the extra backward time is about the input projection's share of the forward's linear
    # FLOPs (4h^2 of 12h^2 per token for a GELU MLP of 4h), plus the attention kernel's
    # forward and memory-bound ops, which full recomputation also runs
    h, f = GPT.hidden, GPT.ffn_hidden
    share = (h * f) / (4 * h * h + 2 * h * f)
    extra = (mi.step_time_s - sel.step_time_s) / (full.step_time_s - sel.step_time_s)
    assert 0.8 * share < extra < 1.5 * share
    # held per layer: no wi or activation output (2 x 4h wide), no norm outputs or attention
    # output; the output and MLP output projections' outputs (2 x h wide) are held instead
    assert sel.memory_per_device_gib - mi.memory_per_device_gib > 0.5 * (
        sel.memory_per_device_gib - full.memory_per_device_gib)


def test_mlp_in_is_selective_only_and_reaches_the_batch_model():
    job = _job("full", ["mlp_in"])
    fields = [p.field for p in layout_problems(job.model, job.parallelism, job.global_batch)]
    assert fields == ["parallelism.recompute_modules"]
    one = _job("selective", ["mlp_in"], tp=2)
    row = job_row(one)
    assert row["rc_mlp_in"] == 1
    frame = estimate_frame(pd.DataFrame([row]))
    res = estimate(one)
    assert res.step_time_s == pytest.approx(frame["step_time_s"].iloc[0], rel=1e-12)
    assert res.memory_per_device_gib == pytest.approx(
        frame["memory_per_device_gib"].iloc[0], rel=1e-12)

"""A stack's data-parallel widths (``dp.grad_reduce_dtype``, ``dp.param_gather_dtype``: columns
``dp_grad_bytes``, ``dp_fp8_gather``) and Megatron-Core's FP8 bucket-group edge
(``dp.fp8_bucket_edge``: ``dp_fp8_edge``), and the graphed NVIDIA MLPerf NeMo stack
(``nemo-mlperf-cg``) that carries them with its measured per-step host gap
(docs/_notes/mlperf-training-v5.md, 'Recipe widths and the graphed step's gap')."""

from __future__ import annotations

from typing import Any

import pytest

from accelsim import stacks
from accelsim.runs.file import load_runs, runs_dir
from accelsim.training import Parallelism, TrainJob, TransformerModel
from accelsim.training.perf.columns import job_inputs
from accelsim.training.perf.layer import dense_layer, micro, staged
from accelsim.training.perf.moe import moe_layer
from accelsim.training.perf.recipes import FP8_PARAM_BUCKET
from accelsim.training.perf.step import data_parallel, rank_params, stages
from tests.training import estimate, spec_of

LLAMA8B = TransformerModel(name="llama3-8b", layers=32, hidden=4096, heads=32, kv_heads=8,
                           ffn_hidden=14336, gated_mlp=True, vocab=128256, seq_len=8192,
                           tied_embeddings=False, dropout=False)
LLAMA405B = TransformerModel(name="llama3-405b", layers=126, hidden=16384, heads=128,
                             kv_heads=8, ffn_hidden=53248, gated_mlp=True, vocab=128256,
                             seq_len=8192, tied_embeddings=False, dropout=False)


def _job8b(dp: int = 32, stack: str = "nemo-mlperf-cg", device: str = "b200") -> TrainJob:
    """The v5.1 8B CP2 rows' layout (TP1 PP1 CP2, one micro-batch per step)."""
    par = Parallelism(tp=1, pp=1, dp=dp, cp=2, micro_batch=1, zero=1, recompute="none")
    return TrainJob(device=device, model=LLAMA8B, global_batch=dp, precision="fp8",
                    attention="flash", overlap_dp_comm=True, overlap_tp_comm=False,
                    overlap_param_gather=True, parallelism=par, stack=stack)


def _parts(job: TrainJob, **cols: float) -> tuple[Any, Any, Any, dict[str, float]]:
    """The job's stages, rank parameters and data-parallel terms with ``cols`` set (the
    fabric's latencies 0 where asked, so a collective's time is linear in its bytes)."""
    st_ = stacks.load_stack(job.stack) if job.stack else None
    f = job_inputs(job, spec_of(job), {**stacks.kernel_factors(st_),
                                        **stacks.memory_columns(st_)})
    f.update(cols)
    u = micro(f)
    ly = dense_layer(f, u)
    st = stages(f, u, ly, moe_layer(f, u, ly))
    pr = rank_params(f, u, st)
    return st, pr, data_parallel(f, u, st, pr), f


NO_LAT = {"scaleup_latency_s": 0.0, "scaleout_latency_s": 0.0}


def test_the_stacks_columns_and_the_defaults():
    k = stacks.kernel_factors(stacks.load_stack("nemo-mlperf-cg"))
    assert (k["dp_grad_bytes"], k["dp_fp8_gather"], k["dp_fp8_edge"]) == (2.0, 1.0, 1.0)
    k = stacks.kernel_factors(stacks.load_stack("nemo-mlperf-apex"))  # Apex: no bucket groups
    assert (k["dp_grad_bytes"], k["dp_fp8_gather"], k["dp_fp8_edge"]) == (2.0, 1.0, 0.0)
    for name in ("nemo", "megatron-bridge", "megatron-core", "torchtitan"):
        k = stacks.kernel_factors(stacks.load_stack(name))
        assert (k["dp_grad_bytes"], k["dp_fp8_gather"], k["dp_fp8_edge"]) == (0.0, 0.0, 0.0)
    assert stacks.kernel_factors(None)["dp_fp8_gather"] == 0.0


def test_the_widths_change_the_collective_bytes_as_the_formula_says():
    job = _job8b()
    off = dict(NO_LAT, dp_grad_bytes=0.0, dp_fp8_gather=0.0, dp_fp8_edge=0.0)
    _, pr, base, f = _parts(job, **off)
    assert f["grad_bytes"] == 4.0 and f["weight_bytes"] == 2.0  # fp32 grads, bf16 weights
    _, _, bf16, _ = _parts(job, **{**off, "dp_grad_bytes": 2.0})
    assert bf16.rs_s == pytest.approx(0.5 * base.rs_s, rel=1e-12)
    assert bf16.ag_s == pytest.approx(base.ag_s, rel=1e-12)  # the weights' width unchanged
    _, pr8, fp8, _ = _parts(job, **{**off, "dp_grad_bytes": 2.0, "dp_fp8_gather": 1.0})
    # the non-FP8 parameters from the model's shape: embedding, output layer, the norms
    h, V, L = 4096.0, 128256.0, 32.0
    N = 2 * V * h + L * 2 * h + h
    P = pr.dense
    assert pr8.non_fp8 == pytest.approx(N, rel=1e-12)
    assert P == pytest.approx(8.0303e9, rel=1e-4)
    # 1 B per FP8 linear weight + 2 B per non-FP8 parameter, against 2 B for every one
    assert fp8.ag_s == pytest.approx(base.ag_s * ((P - N) * 1 + N * 2) / (2 * P), rel=1e-12)
    assert fp8.rs_s == pytest.approx(bf16.rs_s, rel=1e-12)
    # without FP8 training the gather keeps the weight width
    bf = _job8b().model_copy(update={"precision": "bf16"})
    _, _, b0, _ = _parts(bf, **off)
    _, _, b1, _ = _parts(bf, **{**off, "dp_fp8_gather": 1.0, "dp_fp8_edge": 1.0})
    assert b1.ag_s == b0.ag_s and b1.exposed_s == b0.exposed_s


def test_the_edge_is_exposed_in_full_and_the_rest_staged():
    job = _job8b(dp=32)
    st, pr, dp, f = _parts(job, **NO_LAT)
    # the last bucket group: the non-FP8 buffer and layer 0's QKV and output projection
    h, kv_w = 4096.0, 1024.0
    last = h * (h + 2 * kv_w) + h * h
    assert pr.edge_last == pytest.approx(min(FP8_PARAM_BUCKET, last), rel=1e-12)
    assert pr.edge_non == pytest.approx(pr.non_fp8, rel=1e-12)
    P, N, B = pr.dense, pr.edge_non, pr.edge_last
    rs_e = dp.rs_s * (N + B) / P
    ag_e = dp.ag_s * (2 * N + B) / ((P - pr.non_fp8) + 2 * pr.non_fp8)
    v, m, p = f["virtual_stages"], st.m, f["pp"]
    gap_b = min(m, p) * st.base_b / v
    gap_f = min(m, p) * st.base_f / v
    want = (staged(dp.rs_s - rs_e, v, gap_b, st.base_b / v) + rs_e
            + staged(dp.ag_s - ag_e, v, gap_f, st.base_f / v) + ag_e)
    assert dp.exposed_s == pytest.approx(want, rel=1e-12)
    # without the edge (Apex-like bucketing) the whole of each is staged
    _, _, no_edge, _ = _parts(job, **NO_LAT, dp_fp8_edge=0.0)
    assert no_edge.exposed_s == pytest.approx(
        staged(dp.rs_s, v, gap_b, st.base_b / v) + staged(dp.ag_s, v, gap_f, st.base_f / v),
        rel=1e-12)
    assert dp.exposed_s >= rs_e + ag_e and dp.exposed_s > no_edge.exposed_s
    # 2.19 GB of bf16 gradients and 2.14 GB of weights (notes, branch mlperf8b)
    assert 2 * (N + B) == pytest.approx(2.19e9, rel=0.01)
    assert 2 * N + B == pytest.approx(2.14e9, rel=0.01)


def test_pipeline_rows_take_the_first_stages_edge():
    par = Parallelism(tp=8, pp=8, dp=4, cp=2, micro_batch=1, virtual_stages=8, zero=1,
                      sequence_parallel=True, recompute="none", account_for_embedding=True,
                      account_for_loss=True)
    job = TrainJob(device="h100-sxm", model=LLAMA405B, global_batch=1152, precision="fp8",
                   attention="flash", overlap_dp_comm=True, overlap_tp_comm=True,
                   overlap_param_gather=True, parallelism=par, stack="nemo-mlperf")
    st, pr, dp, _ = _parts(job)
    h, V, t = 16384.0, 128256.0, 8.0
    # the embedding (1/t per TP rank) and the first stage's layers' norms; no output layer
    assert pr.edge_non == pytest.approx(V * h / t + st.k_first * st.Ls * 2 * h, rel=1e-12)
    assert 0.0 < dp.exposed_s


def test_the_graphed_gap_is_one_term_per_step():
    gap = stacks.load_stack("nemo-mlperf-cg").kernels.step_host_gap_ms
    assert gap is not None and gap.value == 10.7 and not gap.fitted_on  # measured, not fitted
    for dp in (4, 32):
        job = _job8b(dp)
        with_gap = estimate(job)
        with stacks.overridden({"nemo-mlperf-cg": {"kernels.step_host_gap_ms": 0.0}}):
            without = estimate(job)
        assert with_gap.step_time_s - without.step_time_s == pytest.approx(10.7e-3, rel=1e-9)
        assert sum(with_gap.breakdown.values()) == pytest.approx(with_gap.step_time_s)


def test_the_des_engine_agrees_with_the_analytic_path():
    for stack in ("nemo-mlperf-cg", "megatron-bridge"):
        job = _job8b(32, stack)
        assert estimate(job, engine="des").step_time_s == pytest.approx(
            estimate(job).step_time_s, rel=0.02)
    # and moves as the analytic path does between the stacks
    a = estimate(_job8b(32)).step_time_s - estimate(_job8b(32, "megatron-bridge")).step_time_s
    d = (estimate(_job8b(32), engine="des").step_time_s
         - estimate(_job8b(32, "megatron-bridge"), engine="des").step_time_s)
    assert d == pytest.approx(a, rel=0.05, abs=1e-4)


def test_rows_without_the_fields_are_unchanged():
    # rows whose stacks set no widths: NeMo's own FP8 recipe (nemo-h100-fp8, stack
    # megatron-bridge: fp32 reduce-scatter, bf16 gather) and Meta's Llama 3 405B (stack
    # llama3-meta), their predictions
    # pinned bit-identical to main 58595e3's
    from accelsim.runs.training import predict

    for name, rid, value in PINNED:
        p = runs_dir() / name
        rows = {r.id: r for r in load_runs(p).runs}
        assert stacks.load_stack(rows[rid].stack).dp is None
        assert predict(rows[rid], str(p)).value == value


PINNED = (("nemo-h100-fp8.yaml", "nemo-llama3-70b-h100-fp8", 1523.3843012115842),
          ("llama3-405b-h100.yaml", "llama3-405b-8k-gpus", 429.94599403329016))


_STACK = ("name: x\nframework: X\nversion: '1'\nrole: training\nvendors: [NVIDIA]\n"
          "kernels:\n  stream_k: {value: true, source: s, confidence: A}\n"
          "  gemm: {value: 1.0, source: s, confidence: A}\n"
          "  attention: {value: 1.0, source: s, confidence: A}\n")


@pytest.mark.parametrize("gather", ["", "  param_gather_dtype: {value: bf16, source: s, "
                                        "confidence: A}\n"])
def test_a_bucket_edge_without_fp8_parameters_gathered_is_an_error(tmp_path, gather):
    """``dp.fp8_bucket_edge`` is Megatron-Core's FP8 bucket group: a stack that sets it without
    ``param_gather_dtype: fp8`` is one error naming the field, not silently a stack without
    the edge (review42b)."""
    from accelsim.errors import AccelsimError
    from accelsim.kinds import load_file

    p = tmp_path / "s.yaml"
    p.write_text(_STACK + "dp:\n" + gather
                 + "  fp8_bucket_edge: {value: true, source: s, confidence: A}\n")
    with pytest.raises(AccelsimError) as e:
        load_file(p)
    assert "dp" in str(e.value) and "fp8_bucket_edge" in str(e.value)
    # with the FP8 gather, or the edge false, the stack loads
    p.write_text(_STACK + "dp:\n  param_gather_dtype: {value: fp8, source: s, confidence: A}\n"
                 "  fp8_bucket_edge: {value: true, source: s, confidence: A}\n")
    load_file(p)
    p.write_text(_STACK + "dp:\n" + gather
                 + "  fp8_bucket_edge: {value: false, source: s, confidence: A}\n")
    load_file(p)


@pytest.mark.parametrize("body, field", [
    ("dp:\n  grad_reduce_dtype: {value: fp8, source: s, confidence: A}\n", "grad_reduce_dtype"),
    ("dp:\n  param_gather_dtype: {value: fp32, source: s, confidence: A}\n", "param_gather_dtype"),
])
def test_a_width_the_model_does_not_price_is_an_error(tmp_path, body, field):
    """An FP8 gradient reduction or an fp32 parameter gather would be read as something else
    (1 B gradients nobody reduces in; the weight width): one error naming the field, not a
    silent reinterpretation (review42b, finding 3)."""
    from accelsim.errors import AccelsimError
    from accelsim.kinds import load_file

    p = tmp_path / "s.yaml"
    p.write_text(_STACK + body)
    with pytest.raises(AccelsimError) as e:
        load_file(p)
    assert "dp" in str(e.value) and field in str(e.value)


def test_a_serving_stack_with_a_dp_section_is_an_error(tmp_path):
    """``dp:`` is read for training stacks only: on a serving stack it would sit unread."""
    from accelsim.errors import AccelsimError
    from accelsim.kinds import load_file

    p = tmp_path / "s.yaml"
    p.write_text(_STACK.replace("role: training", "role: serving")
                 + "dp:\n  grad_reduce_dtype: {value: bf16, source: s, confidence: A}\n")
    with pytest.raises(AccelsimError) as e:
        load_file(p)
    assert "dp" in str(e.value) and "serving" in str(e.value)


def test_a_bucket_edge_with_per_unit_rings_is_an_error(tmp_path):
    """The FP8 bucket group's edge is cut from the aggregated collectives, which a per-unit
    FSDP ring replaces: the pair is refused, not priced twice (review42b, finding 4)."""
    from accelsim.errors import AccelsimError
    from accelsim.kinds import load_file

    f = "{value: true, source: s, confidence: A}"
    p = tmp_path / "s.yaml"
    p.write_text(_STACK + f"overlaps:\n  tp_comm: {f}\n  dp_grad_reduce: {f}\n"
                 f"  param_gather: {f}\n  ep_a2a: {f}\n  unit_ring: {f}\n"
                 f"dp:\n  param_gather_dtype: {{value: fp8, source: s, confidence: A}}\n"
                 f"  fp8_bucket_edge: {f}\n")
    with pytest.raises(AccelsimError) as e:
        load_file(p)
    assert "fp8_bucket_edge" in str(e.value) and "unit_ring" in str(e.value)


def test_a_bf16_reduction_holds_bf16_gradient_buffers():
    """Megatron-Core allocates its gradient buffers in the reduction's width
    (distributed_data_parallel.py: ``grad_dtype = torch.float if grad_reduce_in_fp32 else
    param.dtype``; Apex's DistributedFusedAdam its buckets in ``grad_sync_dtype``): the
    stack's ``dp_grad_bytes`` is the held gradients' width too, not only the collective's
    (review42b)."""
    from accelsim.training.perf.memory import allocated

    job = _job8b()
    _, pr, _, f = _parts(job)
    assert f["dp_grad_bytes"] == 2.0 and f["grad_bytes"] == 4.0 and f["pp"] == 1
    u = micro(f)
    ly = dense_layer(f, u)
    st = stages(f, u, ly, moe_layer(f, u, ly))
    dp = data_parallel(f, u, st, pr)
    f32 = {**f, "dp_grad_bytes": 0.0}
    dp32 = data_parallel(f32, u, st, pr)
    # ZeRO-1: the full gradient buffer of the rank's parameters, 2 B an element fewer
    assert allocated(f32, u, st, pr, dp32) - allocated(f, u, st, pr, dp) == pytest.approx(
        2.0 * pr.first_dense, rel=1e-9)

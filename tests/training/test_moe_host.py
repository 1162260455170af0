"""Host-bound dropless MoE layers (stack ``kernels.moe_host_op_us``, column ``moe_host_op_s``;
docs/_notes/moehost.md): the router's token counts are synced to the host in every MoE
forward, so each MoE layer's forward and backward take max(GPU time, host ops x per-op host
cost); the run's CUDA-graph scopes take their operations off the host."""

from __future__ import annotations

import pytest

from accelsim import stacks
from accelsim.training import Parallelism, TrainJob, TransformerModel
from accelsim.training.perf import moe
from accelsim.transformer.model import MoE
from tests.training import estimate, job_row

QWEN3_30B = TransformerModel(name="qwen3-30b-a3b", layers=48, hidden=2048, heads=32,
                             kv_heads=4, head_dim=128, ffn_hidden=6144, gated_mlp=True,
                             vocab=151936, seq_len=4096, tied_embeddings=False, dropout=False,
                             moe=MoE(experts=128, top_k=8, ffn_hidden=768))


def _job(scope: list[str], micro_batch: int = 1, stack: str = "megatron-bridge") -> TrainJob:
    par = Parallelism(tp=1, pp=1, dp=8, ep=8, micro_batch=micro_batch, virtual_stages=1,
                      sequence_parallel=False, recompute="none", zero=1)
    return TrainJob(device="b200", model=QWEN3_30B, global_batch=512, precision="fp8",
                    attention="flash", overlap_dp_comm=True, parallelism=par,
                    cuda_graph_scope=scope, stack=stack)  # type: ignore[arg-type]


def test_a_segment_takes_the_longer_of_gpu_and_host():
    assert moe.segment(3e-3, 100.0, 20e-6) == pytest.approx(3e-3)  # host 2 ms: hidden
    assert moe.segment(1e-3, 100.0, 20e-6) == pytest.approx(2e-3)  # host-bound
    f = {"moe_host_op_s": 20e-6, "moe_experts": 128.0, "ep": 8.0, "fp8": 1.0,
         "graph_attn": 0.0, "graph_router": 0.0, "graph_pre": 0.0}
    n_f, n_b = moe.host_ops(f)
    assert n_f == moe.HOST_OPS_FIXED_F + 16 * (moe.HOST_OPS_EXPERT_F + moe.HOST_OPS_FP8_F)
    assert n_b == moe.HOST_OPS_FIXED_B + 16 * (moe.HOST_OPS_EXPERT_B + moe.HOST_OPS_FP8_B)
    # a long GPU segment hides the host; a short one waits for it, pass by pass
    assert moe.host_excess(f, 1.0, 1.0) == 0.0
    assert moe.host_excess(f, 0.0, 1.0) == pytest.approx(n_f * 20e-6)
    assert moe.host_excess(f, 1e-4, 2e-4) == pytest.approx(
        (n_f * 20e-6 - 1e-4) + (n_b * 20e-6 - 2e-4))
    # no per-op host cost: the host always ahead
    assert moe.host_excess({**f, "moe_host_op_s": 0.0}, 0.0, 0.0) == 0.0


def test_the_graph_scopes_take_their_ops_off_the_host():
    base = {"moe_experts": 128.0, "ep": 8.0, "fp8": 1.0,
            "graph_attn": 0.0, "graph_router": 0.0, "graph_pre": 0.0}
    n0 = sum(moe.host_ops(base))
    n_rp = sum(moe.host_ops({**base, "graph_router": 1.0, "graph_pre": 1.0}))
    n_all = sum(moe.host_ops({**base, "graph_attn": 1.0, "graph_router": 1.0,
                              "graph_pre": 1.0}))
    g = moe.HOST_OPS_GRAPH
    assert n0 - n_rp == pytest.approx(sum(g["graph_router"]) + sum(g["graph_pre"]))
    assert n_rp - n_all == pytest.approx(sum(g["graph_attn"]))
    # the run's scope reaches the columns
    row = job_row(_job(["attn", "moe_router"]))
    assert (row["graph_attn"], row["graph_router"], row["graph_pre"]) == (1, 1, 0)


def test_a_host_bound_job_slows_and_graphs_speed_it_up():
    op = stacks.load_stack("megatron-bridge").kernels.moe_host_op_us
    assert op is not None and op.value > 0
    eager = estimate(_job([])).step_time_s
    graphed = estimate(_job(["attn", "moe_router", "moe_preprocess"])).step_time_s
    with stacks.overridden({"megatron-bridge": {"kernels.moe_host_op_us": 0.0}}):
        free = estimate(_job([])).step_time_s
        # without a host cost the scope changes nothing
        assert estimate(_job(["attn", "moe_router", "moe_preprocess"])).step_time_s == free
    assert free < graphed < eager
    # bigger micro-batches lengthen the GPU segment, the host hides behind it
    with stacks.overridden({"megatron-bridge": {"kernels.moe_host_op_us": 0.0}}):
        free4 = estimate(_job([], micro_batch=8)).step_time_s
    assert estimate(_job([], micro_batch=8)).step_time_s == pytest.approx(free4, rel=1e-9)


def test_stacks_without_it_are_unchanged():
    a = estimate(_job([], stack="megatron-core")).step_time_s
    b = estimate(_job(["attn", "moe_router", "moe_preprocess"], stack="megatron-core"))
    assert a == b.step_time_s

"""Tensor- and context-parallel communication as the stacks schedule it: Megatron's
asynchronous TP backward (against Korthikanti et al. 2022, Table 4) and Llama 3's all-gather
context parallelism (against its section 3.3.2)."""

import pytest

from accelsim import collectives as coll
from accelsim.devices import load_device
from accelsim.training import Parallelism, TrainJob, TransformerModel
from accelsim.training.perf.columns import inputs
from accelsim.training.perf.estimate import job_stack_factors
from accelsim.training.perf.layer import dense_layer, exposed, micro
from accelsim.training.perf.recipes import OVERLAP_TAX
from tests.training import estimate, job_row

# Korthikanti et al. 2022 (arXiv 2205.05198) Table 3/5: the 22 B model on 8 A100, tp 8
GPT22B = TransformerModel(layers=48, hidden=6144, heads=64, ffn_hidden=24576, vocab=51200,
                          seq_len=2048)
# Table 4: one layer's forward + backward (ms) of the 22 B model
TABLE4 = {("none", False): 19.6, ("none", True): 19.0, ("full", False): 27.2,
          ("selective", False): 20.9, ("selective", True): 20.3}


def _job22(recompute: str, sp: bool, stack: str = "megatron-lm-2022") -> TrainJob:
    return TrainJob(device="a100-80gb-sxm", model=GPT22B, global_batch=4, precision="bf16",
                    attention="unfused", overlap_dp_comm=False, stack=stack,
                    parallelism=Parallelism(tp=8, pp=1, dp=1, micro_batch=1,
                                            sequence_parallel=sp, recompute=recompute))


def _layer_ms(job: TrainJob) -> float:
    """One layer's forward + backward over the step's micro-batches, ms."""
    st = estimate(job).stages
    m = job.global_batch // job.parallelism.micro_batch
    return (st.stage_f_s + st.stage_b_s) * m / job.model.layers * 1e3


def _layer(job: TrainJob):
    spec = load_device(job.device).spec
    f = inputs({**job_row(job), **job_stack_factors(job, spec)})
    u = micro(f)
    return f, u, dense_layer(f, u)


def test_recompute_and_sequence_parallel_overheads_match_table4():
    """Table 4's overheads over the baseline (no recompute, no sequence parallelism): -3 %
    (sequence parallel), +39 % (full recompute: above the 33 % of one more forward because
    the backward's all-reduce hides behind the weight-gradient GEMMs, section 6.2), +7 %
    (selective), +4 % (selective + sequence parallel); each within 3 points."""
    base = _layer_ms(_job22("none", False))
    for (rc, sp), ms in TABLE4.items():
        ours = _layer_ms(_job22(rc, sp)) / base - 1
        assert ours == pytest.approx(ms / TABLE4[("none", False)] - 1, abs=0.03), (rc, sp)


def test_async_backward_hides_the_column_parallel_collectives():
    """With Megatron's asynchronous backward (sequence parallel) the row-parallel linears'
    two gradient all-gathers stay exposed; the column-parallel linears' input re-gather and
    gradient reduce-scatter run beside their GEMMs (OVERLAP_TAX of them when hidden)."""
    job = _job22("selective", True)
    f, u, ly = _layer(job)
    assert f["tp_async"] == 1.0
    ag = coll.all_gather(ly.M_tp, 8.0, u.bw_tp, u.al_tp)
    rs = coll.reduce_scatter(ly.M_tp, 8.0, u.bw_tp, u.al_tp)
    col = ly.t_qkv + ly.t_up
    assert 2 * ag < col  # the windows are long enough to hide them
    assert float(ly.t_tp_b) == pytest.approx(
        float(2 * ag + exposed(2 * ag, col) + exposed(2 * rs, col)), rel=1e-12)
    assert float(ly.t_tp_b) == pytest.approx(float(2 * ag + OVERLAP_TAX * (2 * ag + 2 * rs)),
                                             rel=1e-12)
    # the 2021 stack had no asynchronous backward: all four collectives exposed
    f21, _u21, ly21 = _layer(_job22("selective", True, stack="megatron-lm-2021"))
    assert f21["tp_async"] == 0.0
    assert float(ly21.t_tp_b) == pytest.approx(float(2 * ag + 2 * rs), rel=1e-12)
    assert ly.t_tp_b < ly21.t_tp_b


def test_async_backward_without_sequence_parallel_hides_the_allreduce():
    _f, u, ly = _layer(_job22("none", False))
    ar = coll.ring_allreduce(ly.M_tp, 8.0, u.bw_tp, u.al_tp)
    assert float(ly.t_tp_b) == pytest.approx(float(exposed(2 * ar, ly.t_qkv + ly.t_up)),
                                             rel=1e-12)
    assert float(ly.t_tp_b) < float(ly.t_tp_f)


LLAMA405 = TransformerModel(layers=126, hidden=16384, heads=128, kv_heads=8, ffn_hidden=53248,
                            gated_mlp=True, vocab=128256, seq_len=131072,
                            tied_embeddings=False, dropout=False)


def _llama_128k(stack: str | None) -> TrainJob:
    return TrainJob(device="h100-sxm", model=LLAMA405, global_batch=128, precision="bf16",
                    stack=stack, parallelism=Parallelism(
                        tp=8, pp=16, cp=16, dp=8, micro_batch=1, virtual_stages=8, zero=2,
                        first_stage_layers=7, last_stage_layers=7))


def test_all_gather_context_parallelism_is_exposed_and_small():
    """Llama 3 (arXiv 2407.21783, section 3.3.2): K and V all-gathered across the 16 CP ranks
    before attention, 'exposed in the critical path' but small next to attention at 131K
    (GQA: K and V are 1/8 of Q; O(S) bytes against O(S^2) FLOPs)."""
    f, u, ly = _layer(_llama_128k("llama3-meta"))
    assert f["cp_allgather"] == 1.0
    M_kv = u.T * 2 * 8 * 128 * 2 / 8  # local tokens x (K + V of 8 kv heads) x bf16 / tp
    t_ag = coll.all_gather(16 * M_kv, 16.0, u.bw_cp, u.al_cp)
    assert float(ly.t_cp_f) == pytest.approx(float(t_ag), rel=1e-12)
    assert float(ly.t_cp_b) == pytest.approx(float(t_ag), rel=1e-12)  # dK, dV reduce-scatter
    assert float(ly.t_cp_f) < 0.25 * float(ly.t_att_f)
    # the ring of Megatron-Core hides the same bytes behind the attention kernel
    _, _, ring = _layer(_llama_128k("megatron-core"))
    assert ring.t_cp_f < ly.t_cp_f


def _llama_8k_cp(cp: int, stack: str = "megatron-bridge") -> TrainJob:
    m = LLAMA405.model_copy(update={"seq_len": 8192})
    return TrainJob(device="h100-sxm", model=m, global_batch=64, precision="bf16",
                    stack=stack, parallelism=Parallelism(
                        tp=8, pp=8, cp=cp, dp=1, micro_batch=1, virtual_stages=8,
                        sequence_parallel=True, first_stage_layers=15,
                        last_stage_layers=15))


def test_ring_context_parallelism_runs_one_kernel_per_step_at_its_own_length(monkeypatch):
    """Transformer Engine's load-balanced ring (AttnFuncWithCPAndKVP2P): cp kernels per rank,
    the diagonal one causal over s/cp queries and keys (1/cp of the rank's FLOPs), the cp - 1
    others unmasked, half of them s/cp queries against s/(2 cp) keys, half s/(2 cp) queries
    against s/cp keys; each at the published kernel's rate for its key length. The FLOPs are
    the causal half of the rank's share whatever cp; Llama 3's all-gather runs one kernel over
    the whole sequence's keys. The kernels alone: the ring's bookkeeping around them is
    tests/training/test_cp_ring.py's."""
    from accelsim import kernels
    from accelsim.training.perf import layer as L
    from accelsim.training.perf.columns import PEAK_ACT

    monkeypatch.setattr(L, "CP_RING_BOOKKEEPING", False)

    s, hd = 8192.0, 128.0
    for cp in (2, 4):
        f, _u, ly = _layer(_llama_8k_cp(cp))
        F = 0.5 * float(ly.F_attn)  # causal half of the rank's s/cp queries x s keys
        assert F == pytest.approx(0.5 * 2 * (s / cp) * s * 16 * 256)

        def fwd(flops, s_kv, causal, f=f):
            return float(kernels.attention_fwd_time(flops, s_kv, hd, causal, f[PEAK_ACT],
                                                    f["eff_attn"]))

        want = (fwd(F / cp, s / cp, 1.0) + fwd(F * (cp - 1) / (2 * cp), s / (2 * cp), 0.0)
                + fwd(F * (cp - 1) / (2 * cp), s / cp, 0.0))
        assert float(ly.t_att_f) == pytest.approx(want, rel=1e-12)
        assert float(ly.t_att_f) > fwd(F, s, 1.0)  # shorter kernels: a lower rate
        assert float(ly.t_att_b) == pytest.approx(
            float(kernels.attention_bwd_time(want, f["eff_attn_bwd"])), rel=1e-12)
    f1, _u1, one = _layer(_llama_8k_cp(1))
    assert float(one.t_att_f) == pytest.approx(float(kernels.attention_fwd_time(
        0.5 * float(one.F_attn), s, hd, 1.0, f1[PEAK_ACT], f1["eff_attn"])), rel=1e-12)
    fa, _ua, ag = _layer(_llama_128k("llama3-meta"))
    assert float(ag.t_att_f) == pytest.approx(float(kernels.attention_fwd_time(
        0.5 * float(ag.F_attn), 131072.0, hd, 1.0, fa[PEAK_ACT],
        fa["eff_attn"] * fa["stack_attn"])), rel=1e-12)

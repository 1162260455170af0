"""Pipeline parallelism on the serving replica (``pp``): pp 1 is the replica without it; a
pp-stage round costs a micro-batch's crossing of the whole model plus its hops between stages
(at large batch the throughput of pp tensor-parallel groups each holding the model, at batch
1 the speed of one: the bubble); the weights and KV cache per device are a stage's; bad
values get one error; the fast paths hold to the full path."""

import numpy as np
import pytest

from accelsim.devices import load_device
from accelsim.errors import AccelsimError
from accelsim.llm import perf
from accelsim.llm.engine import run_fast
from accelsim.llm.engine_events import run_events
from accelsim.llm.engine_simpy import run_simpy
from accelsim.llm.job import LLMJob, Replica
from accelsim.llm.load import check_job
from accelsim.llm.perf import pipeline_transfer_s, replica_model
from tests.llm.streams import stream

KW = dict(device="h100-sxm", model="llama2-70b", max_batched_tokens=2048, max_seqs=32)
TP2 = replica_model(Replica(tp=2, **KW))
PP2 = replica_model(Replica(tp=2, pp=2, **KW))


def test_pp1_is_the_replica_without_pipeline(monkeypatch):
    """pp 1 never enters the pipeline's cost table: every field of the model is the one
    built without it (the held-out rows of main are unchanged, docs/_notes/serving-pp.md)."""
    def boom(*a, **k):
        raise AssertionError("pipeline_round called at pp 1")

    monkeypatch.setattr(perf, "pipeline_round", boom)
    a = replica_model(Replica(tp=4, pp=1, **KW))
    b = replica_model(Replica(tp=4, **KW))
    assert np.array_equal(a.linear_s, b.linear_s)
    assert (a.c_kv, a.c_pf, a.c_head, a.kv_blocks, a.weights_bytes, a.kv_bytes_per_token,
            a.max_seqs, a.max_batched_tokens, a.devices, a.name) == (
        b.c_kv, b.c_pf, b.c_head, b.kv_blocks, b.weights_bytes, b.kv_bytes_per_token,
        b.max_seqs, b.max_batched_tokens, b.devices, b.name)


def _hops(t: float) -> float:
    spec = load_device("h100-sxm").spec
    return float(pipeline_transfer_s(8192, 4, spec)(t, 2))


def test_large_batch_runs_at_two_groups_speed_and_batch_one_at_one():
    """Llama 2 70B on 2 x 2 H100: a round of B decodes is one micro-batch of B/2 through all
    80 layers on 2 devices plus its hop (and the last stage's second LM-head read where it
    is longer), so B tokens per round is twice the tokens per step of the 2-device replica
    at B/2: the throughput of two tp 2 replicas. At batch 1 the round is the 2-device step
    plus the hop: 4 devices at the speed of 2 (the bubble)."""
    head = 8192 * 32000 / 2 * 2.0 / (TP2.spec.memory_bw_Bps * TP2.spec.eff_memory)
    ctx = 1024
    for B in (32, 64):
        pp_round = PP2.decode_step_s(B, ctx)
        tp_step = TP2.decode_step_s(B // 2, ctx)
        extra = max(head, _hops(B // 2))  # the round's terms beyond the 2-device step
        assert pp_round == pytest.approx(tp_step + extra, rel=1e-9)
        assert extra < 0.03 * tp_step
        assert B / pp_round == pytest.approx(2 * (B // 2) / tp_step, rel=0.03)
    one = PP2.decode_step_s(1, ctx)
    # a lone sequence: the 2-device step, its hop; its attention and sampling counted at
    # 1/pp (the equal micro-batches' assumption), a small share of a weight-bound step
    tp1 = TP2.decode_step_s(1, ctx)
    # (one micro-batch runs: the LM head is read once, review41; was max(head, hops) extra)
    assert one == pytest.approx(tp1 + _hops(1) - (TP2.c_kv * ctx + TP2.c_head) / 2, rel=1e-9)
    assert one == pytest.approx(tp1, rel=0.03)
    assert PP2.max_seqs == 2 * 32 and PP2.max_batched_tokens == 2 * 2048


def test_a_round_with_fewer_tokens_than_stages_reads_the_lm_head_once_per_busy_micro_batch():
    """A round of T < pp tokens runs T micro-batches (an empty one is not run): the last stage
    reads the LM head T times, not pp times (review41: a round of 1 token on 4 stages paid
    4 LM-head reads instead of 1 plus the hops)."""
    pp4 = replica_model(Replica(tp=2, pp=4, **KW))
    head = 8192 * 32000 / 2 * 2.0 / (TP2.spec.memory_bw_Bps * TP2.spec.eff_memory)
    hops = float(pipeline_transfer_s(8192, 8, TP2.spec)(1, 4))
    for T in (1, 2, 3, 4):
        want = TP2.linear_s[1] - head + max(T * head, head + hops)
        assert pp4.linear_s[T] == pytest.approx(want, rel=1e-12)
    assert pp4.linear_s[1] == pytest.approx(TP2.linear_s[1] + hops, rel=1e-12)


def test_a_stage_holds_its_layers_and_one_vocabulary_table():
    """Untied embeddings: 2 stages x 2 devices hold the weights of 4 tensor-parallel devices
    (each end stage one of the two tables); the KV cache per device is the stage's 40
    layers, so 4 devices in a pipeline hold more tokens than 2 with the same layers."""
    tp4 = replica_model(Replica(tp=4, **KW))
    assert PP2.weights_bytes == pytest.approx(tp4.weights_bytes, rel=1e-12)
    assert PP2.kv_bytes_per_token == pytest.approx(TP2.kv_bytes_per_token / 2, rel=1e-12)
    assert PP2.kv_tokens > 2 * TP2.kv_tokens
    assert PP2.devices == 4 and "x4" in PP2.name


def _job(*reps):
    return LLMJob.model_validate({
        "replicas": [{"device": "h100-sxm", "model": "llama2-70b", "tp": 2, **r} for r in reps],
        "arrivals": {"rate_qps": 1.0}, "prompt_tokens": {"dist": "fixed", "value": 100},
        "output_tokens": {"dist": "fixed", "value": 10}, "sim": {"requests": 50, "warmup": 0}})


@pytest.mark.parametrize("reps,words", [
    (({"pp": 3},), "pp (3) must divide the model's layers (80)"),
    (({"pp": 2, "role": "prefill"}, {"role": "decode"}), "pp 2 on a prefill replica"),
])
def test_bad_pipelines_get_one_error(reps, words):
    job = _job(*reps)
    with pytest.raises(AccelsimError) as e:
        check_job(job)
    assert len(e.value.problems) == 1
    assert e.value.problems[0].field.endswith(".pp") and words in str(e.value)
    with pytest.raises(AccelsimError, match=r"\.pp"):
        replica_model(job.replicas[0])


def test_pp_with_attention_data_parallelism_is_refused():
    r = Replica(device="h200", model="mixtral-8x7b", tp=2, dp=2, pp=2)
    with pytest.raises(AccelsimError, match="pp 2 with dp 2 is not modelled"):
        replica_model(r)


def test_a_lone_long_prompt_takes_one_chunk_a_round_across_the_pipeline():
    """TensorRT-LLM keeps a request in one micro-batch of a round (MicroBatchScheduler skips
    the requests in flight, microBatchScheduler.cpp at 0a949d31; trtGptModelInflightBatching
    passes it mInflightReqIds): a lone prompt is prefilled in chunks of one micro-batch's
    max_num_tokens, one a round, each crossing every stage before the next (review41 found
    chunks of pp x max_num_tokens spread over the micro-batches: a TTFT up to pp x short).
    On 2 x 2 H100 a lone prompt is then the 2-device replica's prefill plus the hops of each
    chunk (the bubble, as at batch 1)."""
    P = 9000
    arr, p, o = np.array([0.0]), np.array([P]), np.array([2])
    chunks = -(-P // 2048)  # 5 chunks of max_batched_tokens (was 3 of 2 x 2048)
    assert PP2.chunk == 2048 and TP2.chunk == TP2.max_batched_tokens == 2048
    for run in (run_fast, run_simpy, run_events):
        tr = run(arr, p, o, PP2)
        assert tr.iterations == chunks + 1
        assert tr.first_s[0] == pytest.approx(PP2.prefill_s(P), rel=1e-12)
    hops = sum(_hops(min(2048, P - k * 2048)) for k in range(chunks))
    want = TP2.prefill_s(P) + hops
    assert PP2.prefill_s(P) == pytest.approx(want, rel=2e-3)
    # the crossing is the least a round holding the chunk takes; a full round's even
    # micro-batches cost about as much
    assert PP2.crossing_s(2048, 0.0) == pytest.approx(
        float(TP2.linear_s[2048]) + _hops(2048), rel=1e-12)
    assert PP2.crossing_s(2048, 0.0) <= float(PP2.linear_s[4096]) * 1.001


def test_the_fast_paths_hold_to_the_full_path_with_a_pipeline():
    """The compiled scheduler equals the simpy reference and the event engine bit for bit on
    a pp 2 replica; the GEMM lines' table equals the full one."""
    arr, p, o = stream(300, 4.0, 3)
    p = np.minimum(p, 3000)
    a, b = run_fast(arr, p, o, PP2), run_simpy(arr, p, o, PP2)
    assert np.allclose(a.first_s, b.first_s, rtol=1e-12, atol=0)
    assert np.allclose(a.done_s, b.done_s, rtol=1e-12, atol=0)
    assert a.iterations == b.iterations
    c = run_events(arr, p, o, PP2)
    assert c is not None
    assert np.array_equal(a.first_s, c.first_s) and np.array_equal(a.done_s, c.done_s)
    # long prompts (past one micro-batch's 2,048 tokens) at low and high load: the chunk
    # limit and the crossing bind, the three engines agree
    for rate in (0.5, 3.0):
        arr, p, o = stream(200, rate, 5, pmean=4000, omean=60)
        p = np.minimum(p, 20000)
        a, b, c = (run_fast(arr, p, o, PP2), run_simpy(arr, p, o, PP2),
                   run_events(arr, p, o, PP2))
        assert c is not None and a.iterations == b.iterations == c.iterations
        assert np.array_equal(a.first_s, c.first_s) and np.array_equal(a.done_s, c.done_s)
        assert a.busy_s == c.busy_s
        assert np.allclose(a.first_s, b.first_s, rtol=1e-12, atol=0)
        assert np.allclose(a.done_s, b.done_s, rtol=1e-12, atol=0)
    r = Replica(tp=2, pp=2, **KW)
    for _ in range(2):  # the first asks for the lines, the second builds and uses them
        fast = replica_model(r, lines=True)
    np.testing.assert_allclose(fast.linear_s, PP2.linear_s, rtol=1e-12, atol=0)
    assert (fast.c_kv, fast.c_pf, fast.c_head, fast.kv_blocks) == (
        PP2.c_kv, PP2.c_pf, PP2.c_head, PP2.kv_blocks)

"""The scheduler: the compiled recursion equals the simpy reference, a lone request costs its
prefill and decode steps by hand, preemption frees and recomputes, Little's law holds."""

from dataclasses import replace

import numpy as np
import pytest

from accelsim.llm.engine import run_fast
from accelsim.llm.engine_simpy import run_simpy
from accelsim.llm.job import Replica
from accelsim.llm.perf import replica_model
from tests.llm.streams import stream

RM = replica_model(Replica(device="h100-sxm", model="llama2-70b", tp=4, max_batched_tokens=2048,
                           max_seqs=32))


def _engines_agree(arr, p, o, rm):
    """The compiled scheduler's run of the stream, checked equal to the simpy reference's."""
    a, b = run_fast(arr, p, o, rm), run_simpy(arr, p, o, rm)
    assert np.array_equal(a.preemptions, b.preemptions)
    assert np.allclose(a.first_s, b.first_s, rtol=1e-12, atol=0)
    assert np.allclose(a.done_s, b.done_s, rtol=1e-12, atol=0)
    assert a.iterations == b.iterations
    return a


@pytest.mark.parametrize("blocks,reserve", [(None, False), (400, False), (400, True)])
def test_compiled_scheduler_equals_the_simpy_reference(blocks, reserve):
    """400 blocks of 16 tokens: on demand, preemptions happen; reserving each request's
    whole sequence at admission, none do, and requests wait for blocks instead."""
    rm = replace(RM, reserve=reserve) if blocks is None else replace(RM, kv_blocks=blocks,
                                                                     reserve=reserve)
    arr, p, o = stream(400, 6.0, 3)
    p = np.minimum(p, 2000)
    o = np.minimum(o, 4000)
    a = _engines_agree(arr, p, o, rm)
    if blocks is not None:
        assert (a.preemptions.sum() == 0) == reserve


@pytest.mark.parametrize("blocks,reserve,estimate", [(None, False, False), (400, False, False),
                                                     (400, True, False), (400, False, True),
                                                     (None, False, True)])
def test_prefill_first_and_the_estimate_admission_equal_the_simpy_reference(blocks, reserve,
                                                                          estimate):
    """``prefill_first`` (SGLang's and vLLM V0's scheduler: an iteration that can prefill
    runs no decodes) and ``kv_admission: estimate`` (SGLang's PrefillAdder and
    new_token_ratio) on both engines, with and without a full KV cache."""
    rm = replace(RM, prefill_first=True, reserve=reserve, estimate=estimate)
    if blocks is not None:
        rm = replace(rm, kv_blocks=blocks)
    arr, p, o = stream(120, 6.0, 3)
    p = np.minimum(p, 1000)
    o = np.minimum(o, 800)
    a = _engines_agree(arr, p, o, rm)
    assert not np.isnan(a.done_s).any()


def test_prefill_first_stalls_the_decodes_behind_new_prompts():
    """Every request at once: with prefill first the decodes wait while prompts are admitted,
    so the run takes more iterations and no less time than the mixed schedule, and the
    estimate admission preempts less than admitting on demand into a small cache."""
    arr = np.zeros(200)
    p = np.full(200, 600, np.int64)
    o = np.full(200, 300, np.int64)
    mixed = run_fast(arr, p, o, RM)
    first = run_fast(arr, p, o, replace(RM, prefill_first=True))
    assert first.iterations > mixed.iterations
    assert first.end_s >= mixed.end_s
    small = replace(RM, kv_blocks=1500, prefill_first=True)
    demand = run_fast(arr, p, o, small)
    est = run_fast(arr, p, o, replace(small, estimate=True))
    assert est.preemptions.sum() < demand.preemptions.sum()


def test_a_lone_request_costs_its_prefill_and_decode_steps():
    P, n_out = 3000, 5
    tr = run_fast(np.array([1.0]), np.array([P]), np.array([n_out]), RM)
    ttft = RM.prefill_s(P)  # chunks of 2048 then 952 tokens, the last emitting
    assert tr.first_s[0] - 1.0 == pytest.approx(ttft, rel=1e-12)
    # each decode reads the context so far: P, P + 1, ... (n_out - 1 steps after the first token)
    steps = sum(RM.decode_step_s(1, P + i) for i in range(n_out - 1))
    assert tr.done_s[0] - tr.first_s[0] == pytest.approx(steps, rel=1e-12)


def test_every_request_finishes_and_ttft_is_at_least_its_prefill_alone():
    arr, p, o = stream(2000, 8.0, 5)
    tr = run_fast(arr, p, o, RM)
    assert np.isfinite(tr.done_s).all() and (tr.done_s >= tr.first_s).all()
    alone = np.array([RM.prefill_s(int(x)) for x in p[:200]])
    assert (tr.first_s[:200] - arr[:200] >= alone * (1 - 1e-9)).all()


def test_littles_law_on_the_simulated_trace():
    """Time-average number in the system (sampled at random instants) = throughput x mean
    time in system, over a window away from the ends."""
    arr, p, o = stream(6000, 4.0, 9)  # below capacity: a stationary queue
    tr = run_fast(arr, p, o, RM)
    lo, hi = arr[500], arr[5000]
    inside = (arr >= lo) & (arr < hi)
    lam = inside.sum() / (hi - lo)
    W = (tr.done_s - arr)[inside].mean()
    ts = np.random.default_rng(1).uniform(lo, hi, 4000)
    N = ((arr[None, :] <= ts[:, None]) & (tr.done_s[None, :] > ts[:, None])).sum(axis=1)
    assert N.mean() == pytest.approx(lam * W, rel=0.05)


def test_a_request_arriving_with_its_kv_decodes_without_a_prefill():
    """The decode side of a disaggregated deployment: the first decode step starts at
    arrival and reads the shipped context; no prefill is computed."""
    P, n_out = 3000, 5
    tr = run_fast(np.array([2.0]), np.array([P]), np.array([n_out]), RM, np.array([1]))
    steps = sum(RM.decode_step_s(1, P + i) for i in range(n_out - 1))
    assert tr.done_s[0] - 2.0 == pytest.approx(steps, rel=1e-12)
    assert np.isnan(tr.first_s[0])  # its first token came from the prefill replica
    arr, p, o = stream(300, 8.0, 4)
    ready = np.ones(len(arr), np.int64)
    a, b = run_fast(arr, p, o, RM, ready), run_simpy(arr, p, o, RM, ready)
    assert np.allclose(a.done_s, b.done_s, rtol=1e-12, atol=0)

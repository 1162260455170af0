"""The plain-Python event engine equals the compiled scheduler bit for bit, and a run it does
not cover (a preemption, multi-token prediction, reserved KV, a spent budget) is run
compiled; a job gives the same result whichever engine runs it."""

from dataclasses import replace

import numpy as np
import pytest

from accelsim.llm import engine_events
from accelsim.llm.engine import ReplicaTrace, run_fast
from accelsim.llm.engine_events import Budget, covers, run_events
from accelsim.llm.job import Replica
from accelsim.llm.perf import replica_model
from tests.llm.streams import stream

# chunked prefills (prompts past 2,048 tokens) and head-of-line waits (32 sequences)
SMALL = replica_model(Replica(device="h100-sxm", model="llama2-70b", tp=4,
                              max_batched_tokens=2048, max_seqs=32))
DEFAULT = replica_model(Replica(device="h100-sxm", model="llama2-70b", tp=4))


def same(a: ReplicaTrace, b: ReplicaTrace) -> None:
    assert np.array_equal(a.first_s, b.first_s, equal_nan=True)
    assert np.array_equal(a.done_s, b.done_s, equal_nan=True)
    assert np.array_equal(a.preemptions, b.preemptions)
    assert (a.busy_s, a.kv_block_s, a.iterations, a.end_s, a.kv_high) == (
        b.busy_s, b.kv_block_s, b.iterations, b.end_s, b.kv_high)


@pytest.mark.parametrize("rm,n,rate,seed", [
    (SMALL, 600, 2.0, 1), (SMALL, 600, 6.0, 3), (SMALL, 400, 40.0, 5),  # past capacity
    (DEFAULT, 800, 0.5, 2), (DEFAULT, 1500, 12.0, 4), (DEFAULT, 600, 80.0, 6)])
def test_event_engine_equals_the_compiled_scheduler_bit_for_bit(rm, n, rate, seed):
    arr, p, o = stream(n, rate, seed)
    a = run_events(arr, p, o, rm)
    assert a is not None
    same(a, run_fast(arr, p, o, rm))


def test_a_single_token_output_and_a_lone_request():
    arr, p, o = stream(200, 3.0, 7)
    o[::3] = 1  # done at their prefill
    same(run_events(arr, p, o, SMALL), run_fast(arr, p, o, SMALL))
    one = (np.array([1.0]), np.array([3000]), np.array([5]))
    same(run_events(*one, SMALL), run_fast(*one, SMALL))


def test_a_preempting_run_is_left_to_the_compiled_scheduler():
    rm = replace(SMALL, kv_blocks=400)  # as in test_engine: preemptions happen
    arr, p, o = stream(400, 6.0, 3)
    p = np.minimum(p, 2000)
    ref = run_fast(arr, p, o, rm)
    assert ref.preemptions.sum() > 0
    assert run_events(arr, p, o, rm) is None
    budget = Budget()
    same(budget.run(arr, p, o, rm), ref)
    assert budget.left == 0  # later runs of the job go compiled too


@pytest.mark.parametrize("rm", [replace(SMALL, reserve=True), replace(SMALL, max_seqs=4096),
                                replace(SMALL, prefill_first=True),
                                replace(SMALL, estimate=True)])
def test_what_the_event_engine_does_not_cover_runs_compiled(rm):
    assert not covers(rm)
    arr, p, o = stream(300, 4.0, 8)
    same(Budget().run(arr, p, o, rm), run_fast(arr, p, o, rm))


def test_a_spent_budget_runs_the_rest_compiled():
    arr, p, o = stream(300, 4.0, 9)
    ref = run_fast(arr, p, o, SMALL)
    assert run_events(arr, p, o, SMALL, max_iterations=100) is None
    budget = Budget(iterations=ref.iterations + 10)
    same(budget.run(arr, p, o, SMALL), ref)  # on the event engine
    assert budget.left == 10
    same(budget.run(arr, p, o, SMALL), ref)  # abandoned, then compiled
    assert budget.left == 0


def test_a_job_gives_the_same_result_on_either_engine(monkeypatch):
    from accelsim.kinds import require
    from accelsim.llm.sim import simulate
    from tests.conftest import CONFIGS

    job = require(CONFIGS / "jobs" / "chatbot-llama2-70b-h100.yaml", "llm-job")
    assert job.sim.requests <= engine_events.MAX_REQUESTS  # the README's example is small
    monkeypatch.setattr(engine_events, "prefer", lambda n: True)
    events = simulate(job).to_dict()
    monkeypatch.setattr(engine_events, "prefer", lambda n: False)
    assert simulate(job).to_dict() == events

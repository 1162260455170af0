import pytest

from accelsim.training.pipeline import (
    closed_form,
    exposed_sends,
    schedule,
    simulate_schedule,
    warmup,
)


@pytest.mark.parametrize("p,v,m", [(2, 1, 4), (4, 1, 8), (4, 1, 16), (8, 1, 8), (4, 2, 8),
                                   (4, 3, 12), (8, 4, 32), (1, 1, 5)])
def test_equal_stages_match_closed_form_exactly(p, v, m):
    tf, tb = 1.0, 2.0
    r = simulate_schedule(p, v, m, [tf / v] * (p * v), [tb / v] * (p * v), 0.0)
    assert r.makespan_s == pytest.approx(closed_form(p, v, m, tf, tb), rel=1e-9)


@pytest.mark.parametrize("p,v,m", [(4, 1, 8), (8, 1, 32), (8, 2, 16), (8, 4, 64)])
def test_equal_stages_with_p2p_within_one_percent(p, v, m):
    tf, tb, c = 0.1, 0.2, 0.002
    r = simulate_schedule(p, v, m, [tf / v] * (p * v), [tb / v] * (p * v), c)
    assert r.makespan_s == pytest.approx(closed_form(p, v, m, tf, tb, c), rel=0.01)


def test_bubble_fraction_is_p_minus_1_over_m():
    p, m, tf, tb = 8, 32, 1.0, 2.0
    r = simulate_schedule(p, 1, m, [tf] * p, [tb] * p, 0.0)
    ideal = m * (tf + tb)
    assert (r.makespan_s - ideal) / ideal == pytest.approx((p - 1) / m)


def test_interleaving_divides_the_bubble_by_v():
    p, m, tf, tb = 4, 16, 1.0, 2.0
    base = simulate_schedule(p, 1, m, [tf] * p, [tb] * p, 0.0).makespan_s - m * (tf + tb)
    inter = simulate_schedule(p, 4, m, [tf / 4] * 16, [tb / 4] * 16, 0.0).makespan_s - m * 3
    assert inter == pytest.approx(base / 4)


def test_unequal_last_stage_is_the_bottleneck():
    p, m = 4, 16
    tf = [1.0, 1.0, 1.0, 1.5]  # LM head on the last stage
    tb = [2.0, 2.0, 2.0, 3.0]
    r = simulate_schedule(p, 1, m, tf, tb, 0.0)
    # steady state runs at the slowest stage's pace: at least m * 4.5
    assert r.makespan_s >= m * 4.5
    assert r.makespan_s < closed_form(p, 1, m, 1.5, 3.0)  # cheaper than all-slow stages


def test_straggler_slows_everyone():
    p, m = 4, 16
    normal = simulate_schedule(p, 1, m, [1.0] * 4, [2.0] * 4, 0.0).makespan_s
    slow = simulate_schedule(p, 1, m, [1.0, 1.2, 1.0, 1.0], [2.0, 2.4, 2.0, 2.0], 0.0)
    assert slow.makespan_s == pytest.approx(normal * 1.2, rel=0.05)


@pytest.mark.parametrize("p,v,m", [(4, 1, 8), (4, 2, 8), (2, 3, 6)])
def test_schedule_runs_every_op_once(p, v, m):
    for rank in range(p):
        ops = schedule(p, v, m, rank)
        assert sorted(o for o in ops if o[0] == "F") == sorted(
            ("F", k, c) for k in range(m) for c in range(v))
        assert len(ops) == 2 * m * v


def test_warmup_counts_worked_by_hand():
    # Megatron-Core get_pp_rank_microbatches: 2 (p - 1 - rank) + (v - 1) p, at most m v
    assert [warmup(4, 2, 8, r) for r in range(4)] == [10, 8, 6, 4]  # mean 7 = p v - 1
    assert [warmup(4, 2, 4, r) for r in range(4)] == [8, 8, 6, 4]  # rank 0 capped at m v
    assert [warmup(4, 1, 8, r) for r in range(4)] == [3, 2, 1, 0]  # 1F1B: p - 1 - rank


def test_overlapped_sends_leave_the_warmup_and_cooldown_exposed():
    # p 4, v 2, m 8 by hand: the first micro-batch's forward crosses p v - 1 = 7 stage
    # boundaries in the warm-up, the last one's backward 7 in the cool-down: 14 sends exposed
    # of the 2 (m v + p - 1) = 38 the blocking schedule puts on its critical path
    p, v, m, tf, tb, c = 4, 2, 8, 1.0, 2.0, 0.01
    n = p * v
    none = simulate_schedule(p, v, m, [tf / v] * n, [tb / v] * n, 0.0).makespan_s
    ov = simulate_schedule(p, v, m, [tf / v] * n, [tb / v] * n, c, overlap=True).makespan_s
    assert exposed_sends(p, v) == 14
    assert (ov - none) / c == pytest.approx(14, rel=1e-9)
    assert (closed_form(p, v, m, tf, tb, c) - none) / c == pytest.approx(38, rel=1e-9)


@pytest.mark.parametrize("p,v,m", [(4, 2, 4), (8, 4, 8), (8, 8, 32), (2, 3, 6), (8, 12, 16),
                                   (3, 2, 3)])
def test_overlapped_sends_match_closed_form_exactly(p, v, m):
    tf, tb, c = 0.1, 0.2, 0.002
    n = p * v
    r = simulate_schedule(p, v, m, [tf / v] * n, [tb / v] * n, c, overlap=True)
    assert r.makespan_s == pytest.approx(closed_form(p, v, m, tf, tb, c, overlap=True),
                                         rel=1e-9)
    blocking = simulate_schedule(p, v, m, [tf / v] * n, [tb / v] * n, c)
    assert r.makespan_s < blocking.makespan_s


def test_overlap_needs_virtual_stages():
    # Megatron refuses overlap_p2p_comm on the non-interleaved schedule: every send blocks
    p, m, c = 4, 8, 0.01
    a = simulate_schedule(p, 1, m, [1.0] * p, [2.0] * p, c)
    b = simulate_schedule(p, 1, m, [1.0] * p, [2.0] * p, c, overlap=True)
    assert a.makespan_s == b.makespan_s
    assert closed_form(p, 1, m, 1.0, 2.0, c, overlap=True) == closed_form(p, 1, m, 1.0, 2.0, c)

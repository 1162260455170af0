"""Discrete-event simulation (simpy) of one training step's pipeline schedule.

Each of the ``p`` devices is a simpy process that runs its Megatron-LM schedule
(1F1B, or interleaved 1F1B with ``v`` model chunks per device) in order; an
operation starts when its input has arrived: the previous virtual stage's forward
output, or the next virtual stage's gradient. Sending an activation blocks the
sender for the point-to-point time (Megatron's batched isend/irecv waits), and the
receiver may start once it has arrived. With ``overlap`` (Megatron-Core's
``overlap_p2p_comm``, interleaved schedule only) the steady state's sends are posted
asynchronously: the sender goes on to its next chunk and the receiver may start once the
transfer has arrived; the warm-up's forward sends and the cool-down's backward sends still
block (``overlap_p2p_comm_warmup_flush`` off, its default). After the last backward, the
exposed data-parallel reduction and the optimizer step follow.

For equal stages and no transfer time this reproduces the closed form
``(m + (p-1)/v) (t_f + t_b)`` exactly; it exists for what the formula cannot do:
unequal stages (embedding on the first, LM head on the last), a straggler device,
heterogeneous stages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import simpy

from accelsim.training.job import TrainJob

if TYPE_CHECKING:
    from accelsim.training.perf.estimate import StagePieces


@dataclass(frozen=True)
class ScheduleResult:
    makespan_s: float  # first forward start to last backward end
    busy_s: tuple[float, ...]  # per device
    step_time_s: float  # makespan + exposed DP reduction + optimizer

    @property
    def idle_s_max_stage(self) -> float:
        return self.makespan_s - min(self.busy_s)


def warmup(p: int, v: int, m: int, rank: int) -> int:
    """Forwards a device runs before its first backward (Megatron-Core
    ``get_pp_rank_microbatches``): p - rank - 1 with one chunk, else 2 (p - rank - 1) +
    (v - 1) p, at most the m v chunk forwards."""
    if v == 1:
        return min(p - rank - 1, m)
    return min((p - rank - 1) * 2 + (v - 1) * p, m * v)


def schedule(p: int, v: int, m: int, rank: int) -> list[tuple[str, int, int]]:
    """Megatron-LM's op order for one device: (kind 'F'/'B', micro-batch, chunk)."""
    warm = warmup(p, v, m, rank)
    if v == 1:
        ops: list[tuple[str, int, int]] = [("F", k, 0) for k in range(warm)]
        for j in range(m - warm):
            ops.append(("F", warm + j, 0))
            ops.append(("B", j, 0))
        ops += [("B", j, 0) for j in range(m - warm, m)]
        return ops

    total = m * v

    def fwd(k: int) -> tuple[str, int, int]:
        return ("F", (k // (p * v)) * p + k % p, (k // p) % v)

    def bwd(k: int) -> tuple[str, int, int]:
        return ("B", (k // (p * v)) * p + k % p, v - 1 - (k // p) % v)

    ops = [fwd(k) for k in range(warm)]
    for j in range(total - warm):
        ops.append(fwd(warm + j))
        ops.append(bwd(j))
    ops += [bwd(j) for j in range(total - warm, total)]
    return ops


def simulate_schedule(
    p: int, v: int, m: int,
    t_f: Sequence[float], t_b: Sequence[float], t_p2p: float,
    tail_s: float = 0.0, overlap: bool = False,
) -> ScheduleResult:
    """Simulate the schedule. ``t_f[vs]``/``t_b[vs]``: forward/backward time of virtual stage
    ``vs = chunk * p + device`` for one micro-batch; ``t_p2p``: one activation transfer;
    ``overlap``: steady-state sends asynchronous (interleaved schedule only, module
    docstring)."""
    n_vs = p * v
    if len(t_f) != n_vs or len(t_b) != n_vs:
        raise ValueError(f"need {n_vs} stage times, got {len(t_f)} and {len(t_b)}")
    env = simpy.Environment()
    ready: dict[tuple[str, int, int], simpy.Event] = {}

    def ev(key: tuple[str, int, int]) -> simpy.Event:
        if key not in ready:
            ready[key] = env.event()
        return ready[key]

    busy = [0.0] * p

    def arrive(key: tuple[str, int, int]) -> Any:
        yield env.timeout(t_p2p)
        ev(key).succeed()

    def device(rank: int) -> Any:
        ops = schedule(p, v, m, rank)
        # the steady state's ops (not the warm-up's forwards nor the cool-down's backwards)
        # send asynchronously under overlap
        warm = warmup(p, v, m, rank) if overlap and v > 1 else len(ops)
        for i, (kind, mb, chunk) in enumerate(ops):
            vs = chunk * p + rank
            blocking = i < warm or i >= len(ops) - warm
            if kind == "F":
                if vs > 0:
                    yield ev(("F", mb, vs - 1))
                dur = t_f[vs]
            else:
                yield ev(("Fdone", mb, vs))
                if vs < n_vs - 1:
                    yield ev(("B", mb, vs + 1))
                dur = t_b[vs]
            yield env.timeout(dur)
            busy[rank] += dur
            if kind == "F":
                ev(("Fdone", mb, vs)).succeed()
                sends = vs < n_vs - 1
            else:
                sends = vs > 0
            if sends and blocking:
                yield env.timeout(t_p2p)
                busy[rank] += t_p2p
            if sends and not blocking:
                env.process(arrive((kind, mb, vs)))
            else:
                ev((kind, mb, vs)).succeed()

    procs = [env.process(device(r)) for r in range(p)]
    env.run(simpy.AllOf(env, procs))
    makespan = float(env.now)
    return ScheduleResult(makespan, tuple(busy), makespan + tail_s)


def closed_form(p: int, v: int, m: int, t_f: float, t_b: float, t_p2p: float = 0.0,
                overlap: bool = False) -> float:
    """Equal stages: (m + (p-1)/v) * (t_f + t_b + 2 v t_p2p) for whole-stage times t_f, t_b:
    every send on the critical path, 2 (m v + p - 1) of them. With ``overlap`` (v > 1):
    (m + (p-1)/v) (t_f + t_b) + 2 (p v - 1) t_p2p, only the sends of the first
    micro-batch's forward through the p v virtual stages and of the last one's backward
    (:func:`exposed_sends`)."""
    if overlap and v > 1:
        return (m + (p - 1) / v) * (t_f + t_b) + exposed_sends(p, v) * t_p2p
    per_chunk = (t_f + t_b) / v + 2 * t_p2p
    return (m + (p - 1) / v) * per_chunk * v


def exposed_sends(p: int, v: int) -> int:
    """Sends left on the critical path of an interleaved step whose steady-state sends are
    overlapped (Megatron-Core's ``overlap_p2p_comm``): 2 (p v - 1), the warm-up's blocking
    forward sends and the cool-down's blocking backward sends on the path of the first
    micro-batch's forward and the last one's backward; uncapped, twice the mean over the p
    ranks of :func:`warmup` (2 (p - 1 - rank) + (v - 1) p averages p v - 1). The des engine
    gives it exactly for equal stages (tests/training/test_pipeline.py)."""
    return 2 * (p * v - 1)


# What one simulated micro-batch stage (a forward and a backward of one virtual stage) costs
# the des engine: measured 53 us and ~0.9 kB (tracemalloc) at p 8, m 2,000-20,000. A step is
# refused above MAX_DES_STAGES of them (~10 s, ~0.2 GB).
DES_S_PER_STAGE = 55e-6
DES_BYTES_PER_STAGE = 900
MAX_DES_STAGES = 200_000


def check_des_size(job: TrainJob, file: str = "job") -> None:
    """Refuse, before simulating, a step with more micro-batch stages (micro-batches per
    rank x pipeline stages x virtual stages) than the des engine runs in seconds."""
    from accelsim.errors import AccelsimError

    par = job.parallelism
    m = job.global_batch // (par.dp * par.micro_batch)
    n = m * par.pp * par.virtual_stages
    if n > MAX_DES_STAGES:
        raise AccelsimError.single(
            file, "global_batch", f"the des engine would simulate {m:,} micro-batches per rank "
            f"x {par.pp * par.virtual_stages} stages = {n:,} micro-batch stages (~"
            f"{n * DES_S_PER_STAGE:,.0f} s, ~{n * DES_BYTES_PER_STAGE / 1e9:,.1f} GB); expected "
            f"at most {MAX_DES_STAGES:,}: a larger micro_batch or dp, or engine analytic "
            "(the same schedule in closed form)")


def simulate_step(job: TrainJob, pieces: StagePieces,
                  straggler_rank: int | None = None) -> ScheduleResult:
    """Simulate one step of ``job`` from the analytic model's per-stage pieces.

    The embedding runs on virtual stage 0 and the LM head on the last one; a
    ``straggler_slowdown`` > 1 slows device ``straggler_rank`` (default: the last).
    """
    par = job.parallelism
    p, v = par.pp, par.virtual_stages
    m = job.global_batch // (par.dp * par.micro_batch)
    n_vs = p * v
    f_chunk = pieces.stage_f_s / v
    b_chunk = pieces.stage_b_s / v
    # uneven stages: a rank's chunks scale with its share of the layers
    k = [pieces.k_first if r == 0 else pieces.k_last if r == p - 1 else
         pieces.k_mid for r in range(p)] if p > 1 else [1.0]
    kv = [k[i % p] for i in range(n_vs)]
    if p > 1:
        # the first and last virtual stages hold what they really hold (account_for_embedding
        # / _loss: one layer fewer than the rest of their rank's chunks)
        for c in range(v):
            kv[c * p] = pieces.k_first if pieces.k_fo is None else pieces.k_fo
            kv[c * p + p - 1] = pieces.k_last if pieces.k_lo is None else pieces.k_lo
        kv[0] = pieces.k_first if pieces.k_f0 is None else pieces.k_f0
        kv[-1] = pieces.k_last if pieces.k_lf is None else pieces.k_lf
    t_f = [f_chunk * x for x in kv]
    t_b = [b_chunk * x for x in kv]
    t_f[0] += pieces.emb_f_s
    t_b[0] += pieces.emb_b_s
    t_f[-1] += pieces.head_f_s
    t_b[-1] += pieces.head_b_s
    if job.straggler_slowdown > 1:
        slow = p - 1 if straggler_rank is None else straggler_rank
        for c in range(v):
            t_f[c * p + slow] *= job.straggler_slowdown
            t_b[c * p + slow] *= job.straggler_slowdown
    tail = pieces.dp_s + pieces.optimizer_s
    return simulate_schedule(p, v, m, t_f, t_b, pieces.p2p_s, tail)

"""The reference engine: the scheduler of :mod:`accelsim.llm.engine` (the same four
phases, iteration by iteration) written as simpy processes over Python lists, one method
per phase. Slow (~0.35 ms per request) and plain to read; tests check that the compiled
engine agrees with it exactly."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from accelsim.llm.engine import ReplicaTrace, ready_flags
from accelsim.llm.job import EST_DECAY, EST_INIT, EST_MIN, EST_RETRACT_STEPS


class _Replica:
    """The reference scheduler as Python lists: the same four phases as the compiled one,
    run by a simpy process (:func:`run_simpy`)."""

    def __init__(self, n: int, prompt: np.ndarray, out: np.ndarray, rm: Any,
                 ready: np.ndarray | None) -> None:
        self.rm, self.prompt, self.out, self.n = rm, prompt, out, n
        self.B, self.blocks = rm.block_tokens, rm.kv_blocks
        self.reserve = bool(rm.reserve)
        self.est = bool(rm.estimate)
        self.ratio = EST_INIT
        self.evicted = 0
        self.extra = float(rm.draft_extra)
        self.step = 1 + int(rm.draft_tokens)
        self.acc = [0.0] * n
        self.first = [float("nan")] * n
        self.done = [float("nan")] * n
        self.npre = [0] * n
        self.ctx = [0] * n
        self.gen = [int(x) for x in ready_flags(n, ready)]
        self.kvh = list(self.gen)
        self.target = [0] * n
        self.waiting: deque[int] = deque()
        self.running: list[int] = []
        self.free = self.blocks
        self.busy = self.kv = 0.0
        self.iters = self.finished = 0
        self.cross = 0.0  # this iteration's longest prefill crossing (pipeline stages)

    def blocks_of(self, c: int) -> int:
        return -(-c // self.B)

    def evict(self, v: int) -> None:
        """Preempt v: free its blocks, drop its KV, back to the head of the queue."""
        self.evicted += 1
        self.free += self.blocks_of(self.ctx[v])
        self.ctx[v] = 0
        self.npre[v] += 1
        self.waiting.appendleft(v)

    def can_prefill(self, budget: int) -> bool:
        """Whether a running sequence has prompt tokens left or the first waiting request
        can be admitted now (``prefill_first``: such an iteration runs no decodes)."""
        if any(self.ctx[r] < self.target[r] for r in self.running):
            return True
        if not self.waiting or len(self.running) >= self.rm.max_seqs:
            return False
        r = self.waiting[0]
        if self.kvh[r]:
            return False
        q = min(self.prompt[r] + self.gen[r], budget, self.rm.chunk)
        need = self.blocks_of(self.prompt[r] + self.out[r]) if self.reserve else self.blocks_of(q)
        if need > self.free:
            return False
        if self.est:
            tg = self.prompt[r] + self.gen[r]
            return not tg + (self.out[r] - self.gen[r]) * self.ratio > self.room()
        return True

    def room(self) -> float:
        """SGLang's PrefillAdder budget (``kv_admission: estimate``): free tokens less each
        running request's remaining output times the ratio."""
        resv = 0.0
        for v in self.running:
            resv += (self.out[v] - self.gen[v]) * self.ratio
        return self.free * self.B - resv

    def update_ratio(self, emit: int) -> None:
        """After a decode pass: SGLang's retract_decode estimate when it preempted, else the
        ratio's decay (``kv_admission: estimate``)."""
        if self.evicted > 0:
            dec = tot = 0.0
            for v in self.running:
                dec += self.gen[v]
                tot += self.out[v]
            if tot > 0:
                self.ratio = min(1.0, (dec + EST_RETRACT_STEPS * len(self.running)) / tot)
        elif emit > 0:
            self.ratio = max(EST_MIN, self.ratio - EST_DECAY)

    def decodes(self, sched: dict[int, int], left: int) -> tuple[int, float, int]:
        ctx, target, out, gen, acc = self.ctx, self.target, self.out, self.gen, self.acc
        dctx, emit, i = 0.0, 0, 0
        while i < len(self.running):
            r = self.running[i]
            if ctx[r] >= target[r] and left >= self.step:
                adv = min(1 + int(math.floor(acc[r] + self.extra) - math.floor(acc[r])),
                          out[r] - gen[r])
                need = self.blocks_of(ctx[r] + adv) - self.blocks_of(ctx[r])
                if not self.reserve and need > 0:
                    while self.free < need and len(self.running) - 1 > i:
                        self.evict(self.running.pop())
                    if self.free < need:
                        self.evict(self.running.pop(i))
                        continue
                    self.free -= need
                sched[r] = adv
                dctx += ctx[r]
                left -= self.step
                emit += self.step
            i += 1
        return left, dctx, emit

    def prefills(self, sched: dict[int, int], left: int) -> tuple[int, float, int]:
        ctx, target, B = self.ctx, self.target, self.B
        pairs, emit = 0.0, 0
        for r in self.running:
            if ctx[r] < target[r] and left > 0:
                q = min(target[r] - ctx[r], left, self.rm.chunk)
                have = self.blocks_of(ctx[r])
                need = 0 if self.reserve else self.blocks_of(ctx[r] + q) - have
                if need > self.free:
                    q = self.free * B + have * B - ctx[r]
                    need = self.free
                if q > 0:
                    self.free -= need
                    sched[r] = q
                    pq = q * (ctx[r] + (q + 1) / 2.0)
                    pairs += pq
                    self.cross = max(self.cross, self.rm.crossing_s(q, pq))
                    left -= q
                    if ctx[r] + q == target[r]:
                        emit += 1
        return left, pairs, emit

    def admit(self, sched: dict[int, int], left: int, pairs: float
              ) -> tuple[int, float, int, int]:
        prompt, out, gen = self.prompt, self.out, self.gen
        emit = took_kv = 0
        rem = self.room() if self.est else 0.0
        while self.waiting and len(self.running) < self.rm.max_seqs and left > 0:
            r = self.waiting[0]
            if self.kvh[r]:
                tg = prompt[r] + gen[r] - 1
                need = self.blocks_of(prompt[r] + out[r]) if self.reserve else self.blocks_of(tg)
                if need > self.free:
                    break
                self.waiting.popleft()
                self.kvh[r] = 0
                self.target[r] = tg
                self.ctx[r] = tg
                self.free -= need
                self.running.append(r)
                took_kv += 1
                continue
            tg = prompt[r] + gen[r]
            q = min(tg, left, self.rm.chunk)
            need = self.blocks_of(prompt[r] + out[r]) if self.reserve else self.blocks_of(q)
            if need > self.free:
                break
            if self.est:
                cost = tg + (out[r] - gen[r]) * self.ratio
                if cost > rem:
                    break
                rem -= cost
            self.waiting.popleft()
            self.target[r] = tg
            self.free -= need
            self.running.append(r)
            sched[r] = q
            pq = q * (q + 1) / 2.0
            pairs += pq
            self.cross = max(self.cross, self.rm.crossing_s(q, pq))
            left -= q
            if q == tg:
                emit += 1
        return left, pairs, emit, took_kv

    def apply(self, sched: dict[int, int], now: float) -> None:
        ctx, target, gen = self.ctx, self.target, self.gen
        kept = []
        for r in self.running:
            q = sched.get(r, 0)
            if q > 0:
                if ctx[r] >= target[r]:
                    ctx[r] += q
                    gen[r] += q
                    self.acc[r] += self.extra
                else:
                    ctx[r] += q
                    if ctx[r] == target[r]:
                        if gen[r] == 0:
                            self.first[r] = now
                        gen[r] += 1
                if gen[r] >= self.out[r]:
                    self.done[r] = now
                    self.free += (self.blocks_of(self.prompt[r] + self.out[r]) if self.reserve
                                  else self.blocks_of(ctx[r]))
                    self.finished += 1
                    continue
            kept.append(r)
        self.running[:] = kept

    def process(self, env: Any, wake: list[Any]) -> Any:
        budget = self.rm.max_batched_tokens
        while self.finished < self.n:
            if not self.running and not self.waiting:
                wake[0] = env.event()
                yield wake[0]
                continue
            sched: dict[int, int] = {}
            self.cross = 0.0  # the longest crossing of a prefill chunk (pipeline stages)
            if self.rm.prefill_first and self.can_prefill(budget):
                left, dctx, emit = budget, 0.0, 0  # prefill first: no decodes this iteration
            else:
                self.evicted = 0
                left, dctx, emit = self.decodes(sched, budget)
                if self.est:
                    self.update_ratio(emit)
            left, pairs, emit2 = self.prefills(sched, left)
            left, pairs, emit3, took_kv = self.admit(sched, left, pairs)
            total = budget - left
            if total == 0 and took_kv > 0:
                continue
            if total == 0:
                self.evict(self.running.pop())
                continue
            dt = float(self.rm.iteration_s(total, dctx, pairs, emit + emit2 + emit3,
                                           self.cross))
            self.kv += (self.blocks - self.free) * dt
            self.busy += dt
            self.iters += 1
            yield env.timeout(dt)
            self.apply(sched, env.now)


def run_simpy(arr: np.ndarray, prompt: np.ndarray, out: np.ndarray, rm: Any,
              ready: np.ndarray | None = None) -> ReplicaTrace:
    """The same policy as simpy processes: an arrival process fills the queue and wakes
    the replica, whose process runs iterations while there is work (reference engine)."""
    import simpy

    n = len(arr)
    rep = _Replica(n, prompt, out, rm, ready)
    env = simpy.Environment()
    wake = [env.event()]

    def arrivals() -> Any:
        for i in range(n):
            yield env.timeout(max(arr[i] - env.now, 0.0))
            rep.waiting.append(i)
            if not wake[0].triggered:
                wake[0].succeed()

    env.process(arrivals())
    env.process(rep.process(env, wake))
    env.run()
    return ReplicaTrace(np.array(rep.first), np.array(rep.done), np.array(rep.npre), rep.busy,
                        rep.kv, rep.iters, env.now)

"""The two serving engines. Both consume the same pre-drawn inputs and follow the same rules:

* FIFO. A batch opens with the oldest waiting request and closes when the queued items
  reach ``max_batch_items`` or ``timeout`` after that request's *arrival*, whichever is
  first, or later if no server is free; it then takes the waiting requests in order while
  they fit (the first one always goes, even if larger than the batch limit).
* Shared queue: one batch is formed at a time, by the server that became free first
  (lowest index on ties). Per-replica queues: each replica batches its own queue.
* Service of a batch = ``draw[first request] * scale[server] + table[server, items]``: its
  requests finish then. The server is busy for ``draw * scale + period[server, items]``
  (``period`` <= ``table``: consecutive batches pipeline their stages on one device); without
  a period table, period = table.

:func:`simulate_simpy` is the reference discrete-event model (simpy); it also handles
join-shortest-queue and power-of-two-choices routing and per-request deadlines.
:func:`simulate_fast` runs the FIFO cases as a compiled sequential recursion (numba);
the Lindley/Kiefer-Wolfowitz recursion is inherently sequential for c > 1 servers and
batching, so a compiled loop (~50x a Python loop) is the honest way to make it fast.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit

if TYPE_CHECKING:
    import simpy

Arr = np.ndarray  # the compiled kernels' arrays (numba infers their element types)


@dataclass
class Inputs:
    """Pre-drawn inputs of one run (arrays of length N unless noted)."""

    arrival_s: np.ndarray
    items: np.ndarray
    draw_s: np.ndarray
    table_s: np.ndarray  # [replica, items] -> seconds; covers every possible batch
    scale: np.ndarray  # [replica]
    max_batch_items: int
    timeout_s: float
    routing: str
    choices: np.ndarray  # [N, 2] replica candidates for power_of_two
    deadline_s: float | None = None
    period_s: np.ndarray | None = None  # [replica, items]: time a batch occupies a replica

    @property
    def busy_s(self) -> np.ndarray:
        return self.table_s if self.period_s is None else self.period_s

    def __post_init__(self) -> None:
        # a batch holds at most max(max_batch_items, largest query) items: the table must
        # price it (never charge a batch for fewer items than it holds)
        need = max(float(np.max(self.items)), float(self.max_batch_items))
        if self.table_s.shape[1] <= need:
            raise ValueError(f"service table covers {self.table_s.shape[1] - 1} items, "
                             f"batches may hold {need:.0f}")


@dataclass
class Trace:
    start_s: np.ndarray
    finish_s: np.ndarray
    server: np.ndarray
    dropped: np.ndarray  # bool


# ------------------------------------------------------------------------------ fast


@njit(cache=True)
def batch_queue(arr: Arr, items: Arr, draws: Arr, table: Arr, period: Arr, scale: Arr,
                servers: Arr, free: Arr, B: float, tmo: float, start: Arr, finish: Arr,
                server: Arr, first: int, step: int, n: int,
                last: bool) -> int:  # pragma: no cover - compiled
    """The FIFO batching recursion, the one copy: one queue served by ``servers`` (replica
    ids, their free times in ``free``, updated in place); its ``n`` requests are the global
    indices ``first + q * step`` (the whole stream, or every c-th for round robin). Unless
    ``last``, stops before a batch whose closing or membership depends on requests past
    ``n`` (a long run drawn in chunks, :mod:`accelsim.serving.stream`); returns the number
    of requests served."""
    c = servers.shape[0]
    i = 0
    while i < n:
        s = 0
        fs = free[0]
        for r in range(1, c):
            if free[r] < fs:
                s = r
                fs = free[r]
        gi = first + i * step
        deadline = arr[gi] + tmo
        cum = 0.0
        t_full = np.inf
        j = i
        closed = False
        while j < n:  # when does the batch close: full, or the oldest request's timeout
            g = first + j * step
            aj = arr[g]
            if aj > deadline:
                closed = True
                break
            cum += items[g]
            if cum >= B:
                t_full = aj
                closed = True
                break
            j += 1
        if not closed and not last:
            return i
        ready = t_full if t_full < deadline else deadline
        st = fs if fs > ready else ready
        k = i
        tot = 0.0
        stopped = False
        while k < n:  # take the waiting requests in order while they fit
            g = first + k * step
            if arr[g] > st:
                stopped = True
                break
            if k > i and tot + items[g] > B:
                stopped = True
                break
            tot += items[g]
            k += 1
        if not stopped and not last:
            return i
        rep = servers[s]
        ti = int(tot)
        d = draws[gi] * scale[rep]
        fin = st + d + table[rep, ti]
        for q in range(i, k):
            g = first + q * step
            start[g] = st
            finish[g] = fin
            server[g] = rep
        free[s] = st + d + period[rep, ti]
        i = k
    return n


@njit(cache=True)
def _pack(items: Arr, B: float) -> tuple[Arr, Arr]:  # pragma: no cover - compiled
    """Greedy FIFO packing of a saturated queue: (first index, items) of every batch."""
    n = items.shape[0]
    first = np.empty(n, dtype=np.int64)
    total = np.empty(n)
    nb = 0
    i = 0
    while i < n:
        tot = items[i]
        k = i + 1
        while k < n and tot + items[k] <= B:
            tot += items[k]
            k += 1
        first[nb] = i
        total[nb] = tot
        nb += 1
        i = k
    return first[:nb], total[:nb]


def saturated_batches(items: np.ndarray, max_batch_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Batches a server forms when its queue never empties (for the capacity bound)."""
    return _pack(np.ascontiguousarray(items, dtype=np.float64), float(max_batch_items))


def simulate_fast(x: Inputs) -> Trace:
    """Shared queue or round-robin per-replica queues, FIFO, with or without batching."""
    n = len(x.arrival_s)
    c = x.table_s.shape[0]
    start = np.empty(n)
    finish = np.empty(n)
    server = np.empty(n, dtype=np.int64)
    arr = np.ascontiguousarray(x.arrival_s, dtype=np.float64)
    items = np.ascontiguousarray(x.items, dtype=np.float64)
    draws = np.ascontiguousarray(x.draw_s, dtype=np.float64)
    table = np.ascontiguousarray(x.table_s, dtype=np.float64)
    period = np.ascontiguousarray(x.busy_s, dtype=np.float64)
    scale = np.ascontiguousarray(x.scale, dtype=np.float64)
    B, tmo = float(x.max_batch_items), float(x.timeout_s)
    if x.routing == "shared_queue":
        batch_queue(arr, items, draws, table, period, scale, np.arange(c), np.zeros(c), B,
                    tmo, start, finish, server, 0, 1, n, True)
    elif x.routing == "round_robin":
        for r in range(c):
            batch_queue(arr, items, draws, table, period, scale, np.array([r]), np.zeros(1),
                        B, tmo, start, finish, server, r, c, len(range(r, n, c)), True)
    else:
        raise ValueError(f"fast engine does not handle routing {x.routing!r}")
    return Trace(start, finish, server, np.zeros(n, dtype=bool))


# ------------------------------------------------------------------------------ simpy


class _Queue:
    """A FIFO of request indices plus an event fired on every arrival."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.q: deque[int] = deque()
        self.items = 0.0
        self.arrived = env.event()
        self.in_service = 0  # requests in service at this queue's replica (routing)

    def put(self, i: int, n_items: float) -> None:
        self.q.append(i)
        self.items += n_items
        ev, self.arrived = self.arrived, self.env.event()
        ev.succeed()


def simulate_simpy(x: Inputs) -> Trace:
    """Reference engine: every arrival, batch formation and completion is an event."""
    import simpy

    env = simpy.Environment()
    n = len(x.arrival_s)
    c = x.table_s.shape[0]
    arr, items, draws = x.arrival_s, x.items, x.draw_s
    B, tmo = float(x.max_batch_items), float(x.timeout_s)
    start = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    server = np.full(n, -1, dtype=np.int64)
    dropped = np.zeros(n, dtype=bool)
    shared = x.routing == "shared_queue"
    queues = [_Queue(env)] if shared else [_Queue(env) for _ in range(c)]
    token = simpy.Resource(env, capacity=1) if shared else None
    dl = x.deadline_s

    def purge(qu: _Queue) -> None:
        while dl is not None and qu.q and env.now - arr[qu.q[0]] > dl:
            i = qu.q.popleft()
            qu.items -= items[i]
            dropped[i] = True

    def form_batch(qu: _Queue) -> Any:
        while True:
            purge(qu)
            if qu.q:
                break
            yield qu.arrived
        while qu.items < B and env.now < arr[qu.q[0]] + tmo:
            yield qu.arrived | env.timeout(arr[qu.q[0]] + tmo - env.now)
            purge(qu)
            if not qu.q:
                return (yield from form_batch(qu))
        batch: list[int] = []
        total = 0.0
        while qu.q:
            i = qu.q[0]
            if batch and total + items[i] > B:
                break
            qu.q.popleft()
            qu.items -= items[i]
            batch.append(i)
            total += items[i]
        return batch, total

    def replica(rep: int) -> Any:
        qu = queues[0] if shared else queues[rep]
        while True:
            if token is not None:
                with token.request() as req:
                    yield req
                    batch, total = yield from form_batch(qu)
            else:
                batch, total = yield from form_batch(qu)
            d = draws[batch[0]] * x.scale[rep]
            latency = d + x.table_s[rep, int(total)]
            busy = d + x.busy_s[rep, int(total)]
            t0 = env.now
            for i in batch:
                start[i] = t0
                server[i] = rep
            qu.in_service += len(batch)
            env.process(complete(qu, batch, latency))
            yield env.timeout(busy)

    def complete(qu: _Queue, batch: list[int], latency: float) -> Any:
        """The batch's requests finish ``latency`` after its start (the replica may already
        have taken the next batch: pipelining)."""
        yield env.timeout(latency)
        qu.in_service -= len(batch)
        for i in batch:
            finish[i] = env.now

    def route(i: int) -> _Queue:
        if shared:
            return queues[0]
        if x.routing == "round_robin":
            return queues[i % c]
        if x.routing == "jsq":
            lengths = [len(q.q) + q.in_service for q in queues]
            return queues[int(np.argmin(lengths))]
        a, b = int(x.choices[i, 0]), int(x.choices[i, 1])
        la = len(queues[a].q) + queues[a].in_service
        lb = len(queues[b].q) + queues[b].in_service
        return queues[a] if la <= lb else queues[b]

    def source() -> Any:
        for i in range(n):
            wait = arr[i] - env.now
            if wait > 0:
                yield env.timeout(wait)
            route(i).put(i, items[i])

    env.process(source())
    for r in range(c):
        env.process(replica(r))
    env.run()
    return Trace(start, finish, server, dropped)

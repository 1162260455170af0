"""Evaluating a scenario's devices on its workloads, through the workload registry.

Full fidelity (``compare``, ``optimize``): every workload's ``evaluate`` on every pool
device. Fast fidelity (scenario sweeps): :class:`FastEvaluator` keeps each workload's
state from a full run and calls ``evaluate_fast`` per point. Both produce the same device
table (:mod:`.pricing`), so everything downstream is one code path.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from accelsim import cache, parallel, workloads
from accelsim.devices import PERF_SECTIONS, DeviceProfile, load_device
from accelsim.fleet.pricing import priced_rows
from accelsim.fleet.scenario import Scenario
from accelsim.workloads import DeviceEval, EvalContext, WorkloadSpec

if TYPE_CHECKING:  # imported once the evaluations run (the workers fork without it)
    import pandas as pd

Progress = Callable[[str], None]


def resolve_devices(sc: Scenario, file: str = "scenario") -> dict[str, DeviceProfile]:
    """Every pool device's profile, resolved once."""
    return {ref: load_device(ref, where=file) for ref in sc.pool_of()}


def evaluation_key(spec: WorkloadSpec, device: DeviceProfile, ctx: EvalContext,
                   stack: Mapping[str, Any] | None = None) -> str:
    """The cache address of one device's evaluation on one workload
    (:func:`accelsim.cache.key`): the resolved device spec, the workload block, the bytes of
    every file the block reads (its model, the stacks it names) and of the device vendor's
    default stacks (:func:`accelsim.stacks.default_files`), the scenario's server size and
    ``stack`` (a software-stack profile's fields, when one applies: None today). The
    scenario's file name only labels errors and stays out of it."""
    from accelsim import stacks

    files = {str(f): cache.file_digest(f)
             for f in [*workloads.of(spec).input_files(spec),
                       *stacks.default_files(device.spec.vendor)]}
    return cache.key("device-eval", {
        "workload": spec.model_dump(mode="json"), "device": asdict(device.spec),
        "server_chips": ctx.server_chips, "inputs": files}, stack)


def evaluate_one(spec: WorkloadSpec, device: DeviceProfile, ctx: EvalContext) -> DeviceEval:
    """``workloads.of(spec).evaluate`` through the cache."""
    k = evaluation_key(spec, device, ctx)
    hit = cache.get("device-eval", k)
    if isinstance(hit, DeviceEval):
        return hit
    ev = workloads.of(spec).evaluate(spec, device, ctx)
    cache.put("device-eval", k, ev)
    return ev


def _evaluate_device(specs: dict[str, WorkloadSpec], device: DeviceProfile, ctx: EvalContext
                     ) -> dict[str, DeviceEval]:
    """One device on the named workloads (a worker process's task)."""
    return {name: workloads.of(spec).evaluate(spec, device, ctx) for name, spec in specs.items()}


def evaluate_full(sc: Scenario, progress: Progress | None = None,
                  profiles: dict[str, DeviceProfile] | None = None, file: str = "scenario",
                  only: Collection[str] | None = None, routed: bool = True,
                  after: Sequence[str] = ()
                  ) -> tuple[pd.DataFrame, dict[str, dict[str, DeviceEval]]]:
    """The device table and every evaluation (by workload name, then device reference).
    Evaluations come from the cache (:func:`evaluation_key`) where they can; the others run
    one device x workload per task, those of kinds with compiled simulators in worker
    processes (:mod:`accelsim.parallel`; the costliest kinds first, ``Workload.cost``), the
    rest here meanwhile, and are stored. ``only``: the workloads to
    evaluate (default all; a table of some workloads prices only those). ``routed``: also
    a routed chatbot's size buckets and PD units (:mod:`.routing`, :mod:`.pd`); a caller
    that only keeps the evaluations for the fast path (which evaluates the size buckets
    itself and no PD units) says False. ``after``: modules the caller needs next, imported
    here while the workers evaluate (pandas, for the table, is one)."""
    from accelsim.fleet.routing import SEP, routed_specs

    ctx = sc.context(file)
    profiles = profiles or resolve_devices(sc, file)
    names = [n for n in sc.workloads if only is None or n in only]
    # a routed block's request-size buckets are evaluated beside it (accelsim.fleet.routing)
    specs = {**{n: sc.workloads[n] for n in names},
             **(routed_specs({n: sc.workloads[n] for n in names}) if routed else {})}
    evals: dict[str, dict[str, DeviceEval]] = {name: {} for name in specs}
    keys: dict[tuple[str, str], str] = {}
    todo: dict[str, dict[str, WorkloadSpec]] = {}
    for ref in sc.pool_of():
        for name, spec in specs.items():
            k = keys[(name, ref)] = evaluation_key(spec, profiles[ref], ctx)
            hit = cache.get("device-eval", k)
            if isinstance(hit, DeviceEval):
                evals[name][ref] = hit
                if progress:
                    progress(f"{name} {profiles[ref].name} (cached)")
            else:
                todo.setdefault(ref, {})[name] = spec

    def done(ref: str, per: dict[str, DeviceEval]) -> None:
        for name, ev in per.items():
            evals[name][ref] = ev
            cache.put("device-eval", keys[(name, ref)], ev)

    # one task per device x workload, the costliest kinds first (stable: pool order within
    # a kind), so that two workers end together; each result is a pure function of its
    # task, so the table does not depend on which worker ran what
    pairs = sorted(((ref, name) for ref, mine in todo.items() for name in mine),
                   key=lambda p: -workloads.of(specs[p[1]]).cost)
    # workloads that run compiled simulators go to the workers (forked after numba's
    # set-up, with the simulators' modules loaded); the others (training: plain numpy) run
    # here meanwhile
    pool = [p for p in pairs if workloads.of(specs[p[1]]).compiled]
    local = [p for p in pairs if not workloads.of(specs[p[1]]).compiled]

    def here() -> None:
        for ref, name in local:
            done(ref, _evaluate_device({name: specs[name]}, profiles[ref], ctx))
            if progress:
                progress(f"{name} {profiles[ref].name}")

    tasks = [({name: specs[name]}, profiles[ref], ctx) for ref, name in pool]
    preload = ("scipy.special", "accelsim.serving.sim", "accelsim.llm.sim")  # (CI quantiles)
    for i, per in parallel.imap(_evaluate_device, tasks, True, preload, ("pandas", *after),
                                here, staged=True):
        done(pool[i][0], per)
        if progress:
            for name in per:
                progress(f"{name} {profiles[pool[i][0]].name}")
    units = _pd_units(sc, names, profiles, file, progress) if routed else {}
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for ref, pool_name in sc.pool_of().items():
        per = {name: evals[name][ref] for name in names}
        mine = priced_rows(sc, ref, pool_name, profiles[ref].spec, per)
        for r in mine:
            b = [evals[k][ref] for k in specs if k.partition(SEP)[0] == r["workload"] and SEP in k]
            if b:  # bucket i's throughput per device, then its layout and CI
                r["bucket_throughput"] = [e.throughput for e in b]
                r["bucket_note"] = [e.note or e.reason or "" for e in b]
            if r["workload"] in units:  # the PD units whose prefill side this device is
                r["pd_units"] = [u.to_dict() for u in units[r["workload"]] if u.prefill == ref]
        rows += mine
    return pd.DataFrame(rows), {name: evals[name] for name in names}


def _pd_units(sc: Scenario, names: list[str], profiles: dict[str, DeviceProfile], file: str,
              progress: Progress | None) -> dict[str, list[Any]]:
    """Every disaggregated block's PD units (:mod:`accelsim.fleet.pd`), one pairing per
    worker process."""
    from accelsim.fleet.pd import evaluate_pair, pd_tasks

    todo = pd_tasks({n: sc.workloads[n] for n in names})
    out: dict[str, list[Any]] = {}
    tasks = [(sc.workloads[n], i, profiles, file) for n, i in todo]
    for k, got in parallel.imap(evaluate_pair, tasks):
        out.setdefault(todo[k][0], []).extend(got)
        if progress:
            progress(f"{todo[k][0]} PD pair {todo[k][1]}")
    return {n: sorted(v, key=lambda u: (u.prefill, u.decode, u.p, u.q)) for n, v in out.items()}


def evaluate_devices(sc: Scenario, progress: Progress | None = None,
                     profiles: dict[str, DeviceProfile] | None = None,
                     after: Sequence[str] = ()) -> pd.DataFrame:
    """One row per device x workload: throughput per device, USD/hour, per USD, per watt
    (``after``: :func:`evaluate_full`'s)."""
    return evaluate_full(sc, progress, profiles, after=after)[0]


def _base_evals(sc: Scenario, spec: WorkloadSpec, profiles: dict[str, DeviceProfile],
                file: str) -> dict[str, DeviceEval]:
    """Every pool device's full evaluation on ``spec`` (:func:`evaluate_one`: the cache
    first, the misses one device per worker process)."""
    ctx = sc.context(file)
    out: dict[str, DeviceEval] = {}
    todo = []
    for ref in sc.pool_of():
        hit = cache.get("device-eval", evaluation_key(spec, profiles[ref], ctx))
        if isinstance(hit, DeviceEval):
            out[ref] = hit
        else:
            todo.append(ref)
    for i, ev in parallel.imap(evaluate_one, [(spec, profiles[r], ctx) for r in todo],
                               workloads.of(spec).compiled):
        out[todo[i]] = ev
    return {ref: out[ref] for ref in sc.pool_of()}


class FastEvaluator:
    """Device tables at fast fidelity for many variants of one base scenario.

    Each workload's fast state comes from a full evaluation on the base profiles and is
    kept by the block's ``device_fields`` (and ``server_chips``): a point that changes
    them (another model, another SLO) gets one full evaluation of that workload first.
    Device evaluations are cached by the profile's performance sections.

    A chatbot routed by request size (:mod:`.routing`) is evaluated on each of its size
    buckets too, at the same fast fidelity (each bucket block is a workload of its own
    here, with its own full base evaluation), so the rows hold ``bucket_throughput`` and
    a fleet serves it routed as in ``compare``. PD units (``disaggregation``) are searched
    on the point's devices near the base's answer (:mod:`.pd_fast`), so a fleet serves
    them as in ``compare``.
    """

    def __init__(self, base: Scenario, profiles: dict[str, DeviceProfile],
                 evals: dict[str, dict[str, DeviceEval]] | None = None,
                 file: str = "scenario") -> None:
        self.profiles = profiles
        self.file = file
        self._states: dict[tuple[str, str], Any] = {}
        self._cache: dict[tuple[str, str, str, str], DeviceEval] = {}
        self._bucket_specs: dict[str, list[tuple[str, Any, str]]] = {}
        self._pd: Any = None  # accelsim.fleet.pd_fast.PDFast, on first use
        for name, by_ref in (evals or {}).items():
            spec = base.workloads[name]
            self._states[(name, self._key(base, spec))] = workloads.of(spec).prepare_fast(
                spec, by_ref, base.context(file))

    @staticmethod
    def _key(sc: Scenario, spec: Any) -> str:
        fields = workloads.of(spec).device_fields | {"kind"}
        return f"{sc.server_chips}:{spec.model_dump_json(include=set(fields))}"

    def _state(self, sc: Scenario, name: str, spec: Any, skey: str) -> Any:
        key = (name, skey)
        if key not in self._states:
            w, ctx = workloads.of(spec), sc.context(self.file)
            base = _base_evals(sc, spec, self.profiles, self.file)
            self._states[key] = w.prepare_fast(spec, base, ctx)
        return self._states[key]

    def _buckets(self, sc: Scenario, name: str, spec: Any) -> list[tuple[str, Any, str]]:
        """A routed block's size buckets as (name, block, key) (:func:`.routing.bucket_spec`,
        named ``<workload>#<i>``); none for a block that does not route by size."""
        if getattr(spec, "routing", None) is None:
            return []
        key = spec.model_dump_json()
        if key not in self._bucket_specs:
            from accelsim.fleet.routing import routed_specs

            self._bucket_specs[key] = [(b, bs, self._key(sc, bs))
                                       for b, bs in routed_specs({name: spec}).items()]
        return self._bucket_specs[key]

    def _pd_units(self, sc: Scenario, profiles: dict[str, DeviceProfile],
                  dkeys: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
        """Each disaggregated workload's PD units at the point (:mod:`.pd_fast`); none
        without a ``disaggregation`` block."""
        if not any(s.__dict__.get("disaggregation") is not None  # (getattr on a
                   for s in sc.workloads.values()):  # pydantic model lacking it: 3 us)
            return {}
        from accelsim.fleet.pd_fast import PDFast, point_units

        if self._pd is None:
            self._pd = PDFast(self.profiles, self.file)
        return point_units(self._pd, sc, profiles, dkeys)

    def warm(self, sc: Scenario) -> None:
        """Build now, in worker processes, what each workload's fast path would build on
        first use (the chatbot's SLO curves, its size buckets' too), so that processes
        forked later share it."""
        self._pd_units(sc, self.profiles)  # the base's PD units (built, not searched)
        for name, spec in sc.workloads.items():
            for n, s, k in [(name, spec, self._key(sc, spec)), *self._buckets(sc, name, spec)]:
                workloads.of(s).warm_fast(s, self._state(sc, n, s, k), sc.context(self.file))

    def device_records(self, sc: Scenario, profiles: dict[str, DeviceProfile],
                       only: Collection[str] | None = None,
                       devices: Collection[str] | None = None) -> list[dict[str, Any]]:
        """The device table of ``sc`` with ``profiles`` (the point's devices), as records;
        ``only``: the workloads to evaluate, ``devices``: the devices (by name) to price
        (default all of both)."""
        ctx = sc.context(self.file)
        skeys = {name: self._key(sc, spec) for name, spec in sc.workloads.items()
                 if only is None or name in only}
        rows: list[dict[str, Any]] = []
        units = self._pd_units(sc, profiles) if only is None else {}
        for ref, pool in sc.pool_of().items():
            dev = profiles[ref]
            if devices is not None and dev.name not in devices:
                continue
            dkey = dev.model_dump_json(include=PERF_SECTIONS)
            per = {name: self._evaluate(sc, name, sc.workloads[name], skeys[name], ref, dev,
                                        dkey, ctx) for name in skeys}
            rows += _attach(self._with_buckets(sc, priced_rows(sc, ref, pool, dev.spec, per),
                                               ref, dev, dkey, ctx), ref, units)
        return rows

    def device_records_many(self, sc: Scenario, points: list[dict[str, DeviceProfile]]
                            ) -> list[list[dict[str, Any]]]:
        """:meth:`device_records` of many points (a chunk of uncertainty draws): each
        workload's evaluations not cached yet made in one ``evaluate_fast_many`` call."""
        ctx = sc.context(self.file)
        pool = sc.pool_of()
        skeys = {name: self._key(sc, spec) for name, spec in sc.workloads.items()}
        dkeys = [{ref: p[ref].model_dump_json(include=PERF_SECTIONS) for ref in pool}
                 for p in points]
        for name, skey in skeys.items():
            todo: dict[tuple[str, str, str, str], tuple[str, DeviceProfile]] = {}
            for p, dk in zip(points, dkeys, strict=True):
                for ref in pool:
                    key = (name, skey, ref, dk[ref])
                    if key not in self._cache and key not in todo:
                        todo[key] = (ref, p[ref])
            if todo:
                spec = sc.workloads[name]
                state = self._state(sc, name, spec, skey)
                got = workloads.of(spec).evaluate_fast_many(spec, list(todo.values()), state,
                                                            ctx)
                if len(self._cache) + len(todo) > 50_000:
                    self._cache.clear()
                self._cache.update(zip(todo, got, strict=True))
        out = []
        for p, dk in zip(points, dkeys, strict=True):
            rows: list[dict[str, Any]] = []
            units = self._pd_units(sc, p, dk)
            for ref, pool_name in pool.items():
                per = {name: self._cache[(name, skey, ref, dk[ref])]
                       for name, skey in skeys.items()}
                mine = priced_rows(sc, ref, pool_name, p[ref].spec, per)
                rows += _attach(self._with_buckets(sc, mine, ref, p[ref], dk[ref], ctx), ref,
                                units)
            out.append(rows)
        return out

    def _with_buckets(self, sc: Scenario, rows: list[dict[str, Any]], ref: str,
                      device: DeviceProfile, dkey: str, ctx: workloads.EvalContext
                      ) -> list[dict[str, Any]]:
        """``rows`` (one device's priced rows), a routed chatbot's row with the device's
        throughput on each size bucket (``bucket_throughput``, one bucket at a time)."""
        for r in rows:
            b = self._buckets(sc, r["workload"], sc.workloads[r["workload"]])
            if b:
                r["bucket_throughput"] = [
                    self._evaluate(sc, n, bs, k, ref, device, dkey, ctx).throughput
                    for n, bs, k in b]
        return rows

    def _evaluate(self, sc: Scenario, name: str, spec: Any, skey: str, ref: str,
                  device: DeviceProfile, dkey: str, ctx: workloads.EvalContext) -> DeviceEval:
        """One device on one workload (``spec``, named ``name``), cached by the block's key
        and the device's performance sections."""
        key = (name, skey, ref, dkey)
        if key not in self._cache:
            if len(self._cache) > 50_000:
                self._cache.clear()
            state = self._state(sc, name, spec, skey)
            self._cache[key] = workloads.of(spec).evaluate_fast(spec, ref, device, state, ctx)
        return self._cache[key]


def _attach(rows: list[dict[str, Any]], ref: str, units: dict[str, list[dict[str, Any]]]
            ) -> list[dict[str, Any]]:
    """:func:`accelsim.fleet.pd_fast.attach` (imported only with PD units)."""
    if not units:
        return rows
    from accelsim.fleet.pd_fast import attach

    return attach(rows, ref, units)

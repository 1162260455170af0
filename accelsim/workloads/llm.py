"""LLM chatbot serving as a fleet workload: requests/s per device at the TTFT/TPOT SLO.

Full fidelity: one replica of ``tp`` x ``dp`` devices (``tp`` the block's, or searched
over powers of two within the scale-up domain whose memory leaves a KV cache; ``dp``
attention groups for wide expert parallelism) through the continuous-batching simulator,
and the highest request rate whose goodput meets ``slo.attainment``
(:func:`accelsim.llm.sim.search`, mean of seeded replications; a size stops searching once
it cannot beat the best one); per device = replica rate / (tp x dp) x the share of replicas
up. Fast fidelity (sweeps, uncertainty draws): the base point's result scaled through the
replica's cost model on the point's device and the base's SLO curve, searched again only
where the scaling's error bound says so (:mod:`accelsim.workloads.llm_fast`); equal to the
full result at the base point. Energy follows the mean load, as for recommendation
serving. The block's schema and the replica sizes it names: :mod:`.llm_spec`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from accelsim import refs
from accelsim.devices import DeviceProfile
from accelsim.errors import AccelsimError, Problem
from accelsim.workloads.base import DeviceEval, EvalContext, Workload, register
from accelsim.workloads.llm_fast import (
    Curve,
    FastState,
    build_curve,
    estimate,
    saturated_rps,
)
from accelsim.workloads.llm_spec import (
    LLMServingSpec,
    block_model,
    device_stack,
    mean_lengths,
    replica_job,
    replica_sizes,
)


@dataclass(frozen=True)
class _Base:
    """What the fast path keeps of a device's full evaluation: the best size, the full
    search's requests/s per replica, the result, and the profile (curves are built on it)."""

    tp: int
    ratio: float  # requests/s at the SLO / saturated requests/s of the replica
    reason: str | None = None
    per_replica: float = 0.0
    result: DeviceEval | None = None
    device: DeviceProfile | None = None
    answers: tuple[float, ...] = ()  # the full search's answer per replication


# A size whose estimate is not trusted is searched again unless this multiple of its
# estimate still cannot beat the best size.
UNSURE = 1.5


# The first replica size's likely requests/s at the SLO over its saturated rate, guiding its
# bisection (accelsim.llm.search._guided: any guess gives the plain bisection's answer, a
# near one from fewer probes). Assumption: the seed chatbot's sizes answer 0.98-1.08 of it.
PRIOR = 1.03


# Sizes warmed ahead: those whose twice-saturated rate per device reaches this share of the
# best size's requests/s per device at the base point.
NEAR = 0.7
# Sizes a point estimates: those whose base curve reaches this share of the best size's
# requests/s per device at the base point (a draw moves sizes against each other less).
NEAR_CURVE = 0.75


def _curve_task(w: LLMServing, spec: LLMServingSpec, b: _Base, tp: int, ctx: EvalContext
                ) -> Curve:
    """One base size's SLO curve (a worker process's task)."""
    return w._build_curve(spec, b, w._base_sizes(spec, b, ctx), tp, ctx)


def _failed(msg: str, device: DeviceProfile) -> DeviceEval:
    """A device that serves no rate at the SLO, and why."""
    out = DeviceEval(0.0, 0.0, msg, msg)
    return replace(out, state=_Base(0, 0.0, msg, 0.0, out, device))


def _loses(devices: int, best: float) -> Callable[[float], bool]:
    """Whether a replica of ``devices`` serving at most ``upper`` requests/s cannot beat
    ``best`` requests/s per device (the comparison :meth:`LLMServing._evaluate` makes)."""
    return lambda upper: upper / devices <= best


@lru_cache(maxsize=512)
def _evaluate_cached(w: LLMServing, spec_json: str, device_json: str, file: str,
                     _stamps: tuple[tuple[int, int], ...]) -> DeviceEval:
    spec = LLMServingSpec.model_validate_json(spec_json)
    device = DeviceProfile.model_validate_json(device_json)
    return w._evaluate(spec, device, EvalContext(file=file))


@register
class LLMServing(Workload[LLMServingSpec]):
    kind = "llm_serving"
    aliases = ("chatbot",)
    unit = "requests/s at SLO"
    role = "capacity"
    spec_model = LLMServingSpec
    cost = 2.0  # 0.15-0.25 s a device on the seed chatbot (capacity searches)
    device_fields = frozenset({"model", "prompt_tokens", "output_tokens", "slo", "tp", "dp",
                               "weight_formats",
                               "engine", "sim", "stacks"})

    def resolve(self, spec: LLMServingSpec, relative_to: str | Path) -> LLMServingSpec:
        update: dict[str, Any] = {"model": refs.normalize(spec.model, relative_to)}
        if spec.stacks:  # a stack named by path: from the scenario's folder
            update["stacks"] = {d: refs.normalize(s, relative_to) for d, s in spec.stacks.items()}
        if spec.disaggregation is not None:  # its devices, as the pools name them
            pairs = [p.model_copy(update={"prefill": refs.normalize(p.prefill, relative_to),
                                          "decode": refs.normalize(p.decode, relative_to)})
                     for p in spec.disaggregation.pairs]
            update["disaggregation"] = spec.disaggregation.model_copy(update={"pairs": pairs})
        return spec.model_copy(update=update)

    def check(self, spec: LLMServingSpec, file: str, field: str) -> list[Problem]:
        from accelsim.llm.load import engine_problems
        from accelsim.stacks import named_problems
        from accelsim.transformer.model import load_model

        # each stack loads and is a serving stack (the vendor: check_devices)
        probs = named_problems(spec.stacks, "serving", file, field)
        try:
            model = load_model(spec.model, where=file, field=f"{field}.model")
        except AccelsimError as e:
            return probs + e.problems
        return probs + engine_problems(spec.engine, model, file, f"{field}.engine", spec.tp,
                                       spec.dp)

    def check_devices(self, spec: LLMServingSpec, devices: dict[str, DeviceProfile], file: str,
                      field: str) -> list[Problem]:
        """Each device's named serving stack lists its vendor, on a pool device."""
        from accelsim.stacks import device_problems

        return device_problems(spec.stacks, devices, "serving", file, field)

    def input_files(self, spec: LLMServingSpec) -> list[Path]:
        """The model file, then the files of the stacks the block names (none: the seed's)."""
        from accelsim.stacks import named_files

        return [refs.find(spec.model, "models", family="training", what="training model"),
                *named_files(spec.stacks)]

    def demand(self, spec: LLMServingSpec) -> float:
        return spec.peak_demand()

    def evaluate(self, spec: LLMServingSpec, device: DeviceProfile, ctx: EvalContext
                 ) -> DeviceEval:
        """The replica size with the most requests/s per device at the SLO (sizes whose
        saturated rate per device cannot beat the best found are skipped). The result is a
        pure function of the block, the profile and the files they read (model, stacks; their
        stamps in the key), remembered for the process (a scenario's devices are evaluated
        again by compare, optimize, plan and report)."""
        from accelsim import stacks

        files = [*self.input_files(spec), *stacks.default_files(device.spec.vendor)]
        stamps = tuple((st.st_mtime_ns, st.st_size) for st in (f.stat() for f in files))
        return _evaluate_cached(self, spec.model_dump_json(), device.model_dump_json(),
                                ctx.file, stamps)

    def _evaluate(self, spec: LLMServingSpec, device: DeviceProfile, ctx: EvalContext
                  ) -> DeviceEval:
        from accelsim.llm.sim import saturated_tokens_per_s, search

        p, o = mean_lengths(spec)
        best: tuple[float, int, Any, dict[str, Any], float] | None = None
        try:
            for tp, rm in replica_sizes(spec, device, ctx.file):
                sat = saturated_tokens_per_s(rm, p, o) / o
                if best is not None and 2 * sat / rm.devices <= best[0]:
                    continue
                # a size stops searching once its mean cannot beat the best so far (first
                # probed at the rate it must beat); the first size's bisection is guided by
                # the likely answer over the saturated rate (PRIOR), later ones' by the best's
                c = search(replica_job(spec, device.name, tp), ctx.file, [rm],
                           None if best is None else _loses(rm.devices, best[0]),
                           ratio=PRIOR if best is None else None if best[4] <= 0
                           else best[3]["max_rps_at_slo"] / best[4],
                           bar=None if best is None else best[0] * rm.devices)
                if c is None:
                    continue
                per_device = c["max_rps_at_slo"] / rm.devices
                if best is None or per_device > best[0]:
                    best = (per_device, tp, rm, c, sat)
        except AccelsimError as e:
            return _failed(e.problems[0].message, device)
        assert best is not None
        per_device, tp, rm, c, sat = best
        if per_device <= 0:
            return _failed(c.get("reason", "no rate meets the SLO"), device)
        up = spec.availability(device)
        ratio = c["max_rps_at_slo"] / sat if sat > 0 else 0.0
        note = (f"tp{tp}" + (f" dp{spec.dp}" if spec.dp > 1 else "") + f", KV "
                f"{rm.kv_tokens:,} tokens; {c['max_rps_at_slo']:.3g} req/s per "
                f"replica [{c['ci95_low_rps']:.3g}, {c['ci95_high_rps']:.3g}]; "
                f"{100 * up:.2f} % of replicas up")
        from accelsim.workloads.llm_spec import device_weights

        details = {"tp": tp, "dp": spec.dp, "weight_format": str(device_weights(spec, device.name)),
                   "kv_tokens": int(rm.kv_tokens), "rps_per_replica": c["max_rps_at_slo"],
                   "ci95_low_rps_per_replica": c["ci95_low_rps"],
                   "ci95_high_rps_per_replica": c["ci95_high_rps"], "replicas_up_share": up}
        out = DeviceEval(per_device * up, min(ratio, 1.0) * spec.mean_to_peak, details=details)
        return replace(out, note=note, state=_Base(tp, ratio, None, c["max_rps_at_slo"], out,
                                                   device, tuple(c["per_replication_rps"])))

    def prepare_fast(self, spec: LLMServingSpec, base: dict[str, DeviceEval],
                     ctx: EvalContext) -> FastState:
        return FastState({ref: ev.state for ref, ev in base.items()})

    def _curve(self, spec: LLMServingSpec, state: FastState, ref: str, tp: int,
               ctx: EvalContext) -> Curve | None:
        """The base device's SLO curve at size ``tp`` (None: not a size of it), built on
        first use and cached."""
        if (ref, tp) in state.curves:
            return state.curves[(ref, tp)]
        from accelsim import cache

        b = state.base[ref]
        sizes = self._sizes(spec, state, ref, ctx)
        if tp not in sizes:
            return None
        k = self._curve_key(spec, b, tp)
        curve = cache.get("llm-curve", k)
        if not isinstance(curve, Curve):
            curve = self._build_curve(spec, b, sizes, tp, ctx)
            cache.put("llm-curve", k, curve)
        state.curves[(ref, tp)] = curve
        return curve

    def _base_sizes(self, spec: LLMServingSpec, b: _Base, ctx: EvalContext) -> dict[int, Any]:
        """The base device's sizes and their cost models."""
        if b.device is None:
            return {}
        try:
            return dict(replica_sizes(spec, b.device, ctx.file))
        except AccelsimError:
            return {}

    def _sizes(self, spec: LLMServingSpec, state: FastState, ref: str, ctx: EvalContext
               ) -> dict[int, Any]:
        """:meth:`_base_sizes` of a base device, kept in the fast state."""
        if ref not in state.sizes:
            state.sizes[ref] = self._base_sizes(spec, state.base[ref], ctx)
        return state.sizes[ref]

    @staticmethod
    def _job(spec: LLMServingSpec, state: FastState, device: str, tp: int) -> Any:
        """:func:`replica_job`, kept in the fast state (a draw's device keeps its name)."""
        if (device, tp) not in state.jobs:
            state.jobs[(device, tp)] = replica_job(spec, device, tp)
        return state.jobs[(device, tp)]

    def _far(self, spec: LLMServingSpec, state: FastState, ref: str, ctx: EvalContext
             ) -> set[int]:
        """The base device's sizes a point near it will not pick: twice their saturated
        rate per device is below :data:`NEAR` of the best size's requests/s per device."""
        if ref not in state.far:
            b = state.base[ref]
            sizes = self._sizes(spec, state, ref, ctx)
            best = b.per_replica / sizes[b.tp].devices if b.tp in sizes else 0.0
            p, o = mean_lengths(spec)
            state.far[ref] = {tp for tp, rm in sizes.items()
                              if 2 * saturated_rps(rm, p, o) / rm.devices < NEAR * best}
        return state.far[ref]

    def _skipped(self, spec: LLMServingSpec, state: FastState, ref: str, ctx: EvalContext
                 ) -> set[int]:
        """The sizes a point does not estimate: :meth:`_far` ones, and those whose own
        curve puts them below :data:`NEAR_CURVE` of the best size at the base point."""
        if ref not in state.skipped:
            b = state.base[ref]
            sizes = self._sizes(spec, state, ref, ctx)
            skip = set(self._far(spec, state, ref, ctx))
            if b.per_replica > 0 and b.tp in sizes:
                best = b.per_replica / sizes[b.tp].devices
                scale = self._scale(spec, state, ref, ctx)
                for tp, rm in sizes.items():
                    c = self._curve(spec, state, ref, tp, ctx) if tp not in skip else None
                    got = c.capacity(1.0) if c is not None and tp != b.tp else None
                    if got is not None and got[0] * scale / rm.devices < NEAR_CURVE * best:
                        skip.add(tp)
            state.skipped[ref] = skip
        return state.skipped[ref]

    def _curve_key(self, spec: LLMServingSpec, b: _Base, tp: int) -> str:
        from accelsim import cache, stacks

        assert b.device is not None
        # the device's serving stack (the block's, else the vendor's) sets the kernels and
        # the all-reduce strategy
        named = device_stack(spec, b.device.name)
        st = (stacks.load_stack(named) if named is not None
              else stacks.default_stack(b.device.spec.vendor, "serving"))
        return cache.key("llm-curve", {"workload": spec.model_dump(mode="json"),
                                       "device": asdict(b.device.spec), "tp": tp,
                                       "model": cache.file_digest(self.input_files(spec)[0])},
                         extra={"stack": st.model_dump(mode="json")} if st else None)

    def warm_fast(self, spec: LLMServingSpec, state: FastState, ctx: EvalContext) -> None:
        """The SLO curves of every base device's sizes a point near the base could pick
        (twice saturated, within :data:`NEAR` of the best size's requests/s per device),
        those not cached built one size per worker process."""
        from accelsim import cache, parallel

        todo = []
        for ref, b in state.base.items():
            far = self._far(spec, state, ref, ctx)
            for tp in self._sizes(spec, state, ref, ctx):
                if (ref, tp) in state.curves or tp in far:
                    continue
                k = self._curve_key(spec, b, tp)
                hit = cache.get("llm-curve", k)
                if isinstance(hit, Curve):
                    state.curves[(ref, tp)] = hit
                else:
                    todo.append((ref, tp, k))
        tasks = [(self, spec, state.base[ref], tp, ctx) for ref, tp, _ in todo]
        for i, curve in parallel.imap(_curve_task, tasks, compiled=True):
            ref, tp, k = todo[i]
            state.curves[(ref, tp)] = curve
            cache.put("llm-curve", k, curve)
        # the GEMM lines of the base devices' geometries (a point's device keeps its
        # base's), built here once rather than in every worker process: the first call
        # asks for them, the second builds them (accelsim.llm.perf._lines)
        for ref, b in state.base.items():
            if b.device is not None and b.device.spec.compute_units > 0:
                for _ in range(2):
                    try:
                        replica_sizes(spec, b.device, ctx.file, skip=self._skipped(
                            spec, state, ref, ctx), lines=True,
                            job=self._job(spec, state, b.device.name, 1))
                    except AccelsimError:
                        break

    def _build_curve(self, spec: LLMServingSpec, b: _Base, sizes: dict[int, Any], tp: int,
                     ctx: EvalContext) -> Curve:
        from accelsim.llm.sim import capacity

        assert b.device is not None
        rm, job = sizes[tp], replica_job(spec, b.device.name, tp)
        p, o = mean_lengths(spec)
        if tp == b.tp and b.answers:
            answers = list(b.answers)
        else:  # a size the full search did not finish: its answers, searched near a guess
            guess = (b.per_replica * saturated_rps(rm, p, o) / saturated_rps(sizes[b.tp], p, o)
                     if b.per_replica > 0 and b.tp in sizes else None)
            answers = capacity(job, ctx.file, [rm], guess=guess)["per_replication_rps"]
        return build_curve(job, rm, answers, p, o)

    def _fits(self, spec: LLMServingSpec, state: FastState, device: DeviceProfile, rm: Any,
              ctx: EvalContext) -> None:
        """The full search's check that every replication's requests fit the replica's KV
        cache (its error, as the full path raises it)."""
        from accelsim.llm.sim import check_fits, draw

        if not state.draws:
            job = self._job(spec, state, device.name, rm.tp)
            state.draws = [draw(job, job.sim.seed + rep, ctx.file)
                           for rep in range(job.sim.replications)]
            state.longest = max(int((d.prompt + d.output).max()) for d in state.draws)
        if state.longest > rm.kv_tokens or rm.max_batched_tokens > rm.kv_tokens:
            for d in state.draws:
                check_fits(self._job(spec, state, device.name, rm.tp), [rm], d, ctx.file)

    def _scale(self, spec: LLMServingSpec, state: FastState, ref: str, ctx: EvalContext
               ) -> float:
        """The full search's requests/s over its curve's ``cap(1)``, at the base's best
        size (1 within the search's resolution)."""
        if ref not in state.scale:
            b = state.base[ref]
            c = self._curve(spec, state, ref, b.tp, ctx) if b.per_replica > 0 else None
            got = c.capacity(1.0) if c is not None else None
            state.scale[ref] = b.per_replica / got[0] if got and got[0] > 0 else 1.0
        return state.scale[ref]

    def evaluate_fast(self, spec: LLMServingSpec, ref: str, device: DeviceProfile,
                      state: FastState, ctx: EvalContext) -> DeviceEval:
        """The base result for the base device; else each replica size of the point's
        device scaled from the base's SLO curve (:mod:`.llm_fast`), or searched again
        where the scaling's error bound says so, and the best size per device."""
        from accelsim.llm.sim import capacity

        b = state.base[ref]
        if b.result is not None and b.device is not None and device.spec == b.device.spec:
            r = b.result  # the base point: the full search's result
            return DeviceEval(r.throughput, r.utilization, r.reason or "", r.reason)
        p, o = mean_lengths(spec)
        best: tuple[float, float] | None = None  # (per device, ratio)
        try:
            skipped = self._skipped(spec, state, ref, ctx)
            job = self._job(spec, state, device.name, 1)
            if state.model is None:
                state.model = block_model(spec.model, ctx.file)
            sizes = [(tp, rm, saturated_rps(rm, p, o)) for tp, rm in
                     replica_sizes(spec, device, ctx.file, skip=skipped, lines=True,
                                   job=job, model=state.model)]
            at_best = next((rm for tp, rm, _ in sizes if tp == b.tp), None)
            if skipped and (at_best is None or estimate(
                    self._curve(spec, state, ref, b.tp, ctx), at_best, p, o)[1] is not None):
                # the base's best size does not fit the point's device or cannot be scaled
                # from the base (its KV cache binds otherwise: less memory): the sizes
                # skipped for losing to it at the base are in the running again
                skipped = set()
                sizes = [(tp, rm, saturated_rps(rm, p, o)) for tp, rm in
                         replica_sizes(spec, device, ctx.file, lines=True, job=job,
                                       model=state.model)]
            for _, rm, _ in sizes:
                self._fits(spec, state, device, rm, ctx)
            # the smallest size is there for the fit check (the full search's first error);
            # it is estimated only if it could win
            sizes = [x for x in sizes if x[0] not in skipped] or sizes
            # the base's best size first, then by saturated rate per device: a size whose
            # twice-saturated rate cannot beat the best so far is never estimated
            sizes.sort(key=lambda x: (x[0] != b.tp, -x[2] / x[1].devices))
            todo = []  # sizes to search again, with a guess
            for tp, rm, sat in sizes:
                if best is not None and 2 * sat / rm.devices <= best[0]:
                    continue
                got, why, upper = estimate(self._curve(spec, state, ref, tp, ctx), rm, p, o)
                if why is not None:
                    todo.append((tp, rm, sat, got if got else b.ratio * sat or None,
                                 upper * self._scale(spec, state, ref, ctx)))
                    continue
                assert got is not None
                per_replica = got * self._scale(spec, state, ref, ctx)
                if best is None or per_replica / rm.devices > best[0]:
                    best = (per_replica / rm.devices, per_replica / sat if sat > 0 else 0.0)
            for tp, rm, sat, guess, upper in todo:  # the full search, around the guess
                if best is not None and min(2 * sat, upper, UNSURE * (guess or np.inf)
                                            ) / rm.devices <= best[0]:
                    continue  # it cannot win even at its bound, or far above its guess
                per_replica = capacity(self._job(spec, state, device.name, tp), ctx.file, [rm],
                                       guess=guess)["max_rps_at_slo"]
                if best is None or per_replica / rm.devices > best[0]:
                    best = (per_replica / rm.devices, per_replica / sat if sat > 0 else 0.0)
        except AccelsimError as e:
            msg = e.problems[0].message
            return DeviceEval(0.0, 0.0, msg, msg)
        assert best is not None
        if best[0] <= 0:
            msg = b.reason or "no rate meets the SLO"
            return DeviceEval(0.0, 0.0, msg, msg)
        return DeviceEval(best[0] * spec.availability(device),
                          min(best[1], 1.0) * spec.mean_to_peak)

    def fleet_metrics(self, name: str, spec: LLMServingSpec, capacity: float,
                      whole_fleet: float) -> dict[str, float]:
        return {f"{name}_rps_at_slo": capacity, f"{name}_rps_whole_fleet": whole_fleet}

    def fleet_columns(self, name: str) -> dict[str, str]:
        return {f"{name} req/s at SLO, allocated": f"{name}_rps_at_slo",
                f"{name} req/s at SLO, whole fleet": f"{name}_rps_whole_fleet"}

"""LLM chatbot serving as a fleet workload: requests/s per device at the TTFT/TPOT SLO.

Full fidelity: one replica of ``tp`` x ``dp`` devices (``tp`` the block's, or searched
over powers of two within the scale-up domain whose memory leaves a KV cache; ``dp``
attention groups for wide expert parallelism) through the continuous-batching simulator,
and the highest request rate whose goodput meets ``slo.attainment``
(:func:`accelsim.llm.sim.capacity`, mean of seeded replications); per device = replica
rate / (tp x dp) x the share of replicas up. Fast fidelity (sweeps): the same capacity
search on the point's device, shortened (:data:`FAST_REQUESTS`, one replication, over the
base replica size and its halving and doubling) and scaled by the base point's full /
short ratio, so both agree there. Energy follows the mean load, as for recommendation
serving.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from accelsim import refs
from accelsim.config import Strict
from accelsim.devices import DeviceProfile
from accelsim.errors import AccelsimError, Problem
from accelsim.llm.job import Engine, Slo
from accelsim.traffic import Dist
from accelsim.workloads.base import CapacitySpec, DeviceEval, EvalContext, Workload, register


class LLMSim(Strict):
    requests: int = Field(default=3000, ge=100, le=10_000_000)
    """Requests per simulated run (one replica)."""
    warmup: int = Field(default=300, ge=0, le=10_000_000)
    """Leading requests left out of the statistics."""
    replications: int = Field(default=2, ge=1, le=50)
    """Seeded runs behind the capacity's confidence interval."""
    seed: int = Field(default=1, ge=0, le=2**63 - 1)
    """Seed of the first replication."""


class LLMServingSpec(CapacitySpec):
    """Serve ``peak_rps`` chat requests of ``model`` within the TTFT/TPOT SLO."""

    kind: Literal["llm_serving"] = "llm_serving"
    """Workload kind: llm_serving (alias chatbot)."""
    model: str
    """Decoder-only model: catalog name (configs/models) or path (relative to the scenario)."""
    peak_rps: float = Field(gt=0, le=1e9)
    """Requests/s at the daily peak that must meet the SLO."""
    prompt_tokens: Dist
    """Prompt length distribution, tokens (history included)."""
    output_tokens: Dist
    """Output length distribution, tokens."""
    slo: Slo
    """TTFT and TPOT targets and the share of requests that must meet both."""
    tp: int | None = Field(default=None, ge=1, le=1024)
    """Tensor-parallel devices per attention group (:attr:`accelsim.llm.job.Replica.tp`);
    default: searched (see module)."""
    dp: int = Field(default=1, ge=1, le=100_000)
    """Attention data-parallel groups per replica (wide expert parallelism for MoE models,
    :attr:`accelsim.llm.job.Replica.dp`): a replica spans tp x dp devices."""
    engine: Engine = Engine()
    """The serving engine's settings of each replica (number formats, scheduler limits,
    expert placement, multi-token prediction): :class:`accelsim.llm.job.Engine`."""
    sim: LLMSim = LLMSim()
    """Simulation behind each device's capacity at the SLO."""


@dataclass(frozen=True)
class _Base:
    tp: int
    ratio: float  # requests/s at the SLO / saturated requests/s of the replica
    reason: str | None = None
    scale: float = 1.0  # full capacity / the fast search's capacity, at the base point


# The fast path's capacity search: one replication of at most this many requests (the
# full one runs sim.replications of sim.requests), scaled by the ratio of the two at the
# base point so that both agree there.
FAST_REQUESTS = 3000


def _fast_job(spec: LLMServingSpec, device: str, tp: int) -> Any:
    job = _job(spec, device, tp)
    n = min(spec.sim.requests, FAST_REQUESTS)
    return job.model_copy(update={"sim": job.sim.model_copy(update={
        "requests": n, "warmup": min(spec.sim.warmup, n // 10), "replications": 1})})


def _job(spec: LLMServingSpec, device: str, tp: int) -> Any:
    from accelsim.llm.job import LLMJob

    return LLMJob.model_validate({
        "replicas": [{**spec.engine.model_dump(), "device": device, "model": spec.model,
                      "tp": tp, "dp": spec.dp}],
        "arrivals": {"rate_qps": 1.0},
        "prompt_tokens": spec.prompt_tokens.model_dump(),
        "output_tokens": spec.output_tokens.model_dump(),
        "slo": spec.slo.model_dump(),
        "sim": {"requests": spec.sim.requests, "warmup": spec.sim.warmup,
                "seed": spec.sim.seed, "replications": spec.sim.replications},
    })


def _means(spec: LLMServingSpec) -> tuple[float, float]:
    from accelsim.traffic import dist_mean

    return float(dist_mean(spec.prompt_tokens)), float(dist_mean(spec.output_tokens))


def _loses(devices: int, best: float) -> Callable[[float], bool]:
    """Whether a replica of ``devices`` serving at most ``upper`` requests/s cannot beat
    ``best`` requests/s per device (the comparison :meth:`LLMServing._evaluate` makes)."""
    return lambda upper: upper / devices <= best


@lru_cache(maxsize=512)
def _evaluate_cached(w: LLMServing, spec_json: str, device_json: str, file: str) -> DeviceEval:
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
    device_fields = frozenset({"model", "prompt_tokens", "output_tokens", "slo", "tp", "dp",
                               "engine", "sim"})

    def resolve(self, spec: LLMServingSpec, relative_to: str | Path) -> LLMServingSpec:
        return spec.model_copy(update={"model": refs.normalize(spec.model, relative_to)})

    def check(self, spec: LLMServingSpec, file: str, field: str) -> list[Problem]:
        from accelsim.transformer.model import load_model

        try:
            load_model(spec.model, where=file, field=f"{field}.model")
        except AccelsimError as e:
            return e.problems
        return []

    def input_files(self, spec: LLMServingSpec) -> list[Path]:
        return [refs.find(spec.model, "models", family="training", what="training model")]

    def demand(self, spec: LLMServingSpec) -> float:
        return spec.peak_rps

    def _candidates(self, spec: LLMServingSpec, device: DeviceProfile, file: str,
                    near: int = 0) -> list[tuple[int, Any]]:
        """Replica sizes to try: the block's tp, or every power of two within the scale-up
        domain whose memory leaves a KV cache (their cost models); with ``near``, only it
        and its halving and doubling (the fast path: a perturbed device moves its best
        size by one step at most)."""
        from accelsim.llm.perf import replica_model

        job = _job(spec, device.name, 1)
        tps = [spec.tp] if spec.tp else [t for t in (1, 2, 4, 8, 16, 32, 64)
                                         if t <= device.spec.scaleup_domain
                                         and (not near or near // 2 <= t <= 2 * near)]
        out, last = [], None
        for tp in tps:
            r = job.replicas[0].model_copy(update={"tp": tp})
            try:
                out.append((tp, replica_model(r, file, "workloads.llm_serving",
                                              spec=device.spec)))
            except AccelsimError as e:
                last = e
        if not out:
            assert last is not None
            raise last
        return out

    def evaluate(self, spec: LLMServingSpec, device: DeviceProfile, ctx: EvalContext
                 ) -> DeviceEval:
        """The replica size with the most requests/s per device at the SLO (sizes whose
        saturated rate per device cannot beat the best found are skipped). The result is a
        pure function of the block and the profile, remembered for the process (a
        scenario's devices are evaluated again by compare, optimize, plan and report)."""
        return _evaluate_cached(self, spec.model_dump_json(), device.model_dump_json(),
                                ctx.file)

    def _evaluate(self, spec: LLMServingSpec, device: DeviceProfile, ctx: EvalContext
                  ) -> DeviceEval:
        from accelsim.llm.sim import capacity, saturated_tokens_per_s, search

        p, o = _means(spec)
        best: tuple[float, int, Any, dict[str, Any], float] | None = None
        try:
            for tp, rm in self._candidates(spec, device, ctx.file):
                sat = saturated_tokens_per_s(rm, p, o) / o
                if best is not None and 2 * sat / rm.devices <= best[0]:
                    continue
                # a size stops searching once its mean cannot beat the best so far
                c = search(_job(spec, device.name, tp), ctx.file, [rm],
                           None if best is None else _loses(rm.devices, best[0]))
                if c is None:
                    continue
                per_device = c["max_rps_at_slo"] / rm.devices
                if best is None or per_device > best[0]:
                    best = (per_device, tp, rm, c, sat)
        except AccelsimError as e:
            msg = e.problems[0].message
            return DeviceEval(0.0, 0.0, msg, msg, _Base(0, 0.0, msg))
        assert best is not None
        per_device, tp, rm, c, sat = best
        if per_device <= 0:
            msg = c.get("reason", "no rate meets the SLO")
            return DeviceEval(0.0, 0.0, msg, msg, _Base(0, 0.0, msg))
        up = spec.availability(device)
        ratio = c["max_rps_at_slo"] / sat if sat > 0 else 0.0
        quick = capacity(_fast_job(spec, device.name, tp), ctx.file, [rm])["max_rps_at_slo"]
        note = (f"tp{tp}" + (f" dp{spec.dp}" if spec.dp > 1 else "") + f", KV "
                f"{rm.kv_tokens:,} tokens; {c['max_rps_at_slo']:.3g} req/s per "
                f"replica [{c['ci95_low_rps']:.3g}, {c['ci95_high_rps']:.3g}]; "
                f"{100 * up:.2f} % of replicas up")
        return DeviceEval(per_device * up, min(ratio, 1.0) * spec.mean_to_peak, note, None,
                          _Base(tp, ratio, None, c["max_rps_at_slo"] / quick if quick > 0
                                else 1.0))

    def prepare_fast(self, spec: LLMServingSpec, base: dict[str, DeviceEval],
                     ctx: EvalContext) -> dict[str, _Base]:
        return {ref: ev.state for ref, ev in base.items()}

    def evaluate_fast(self, spec: LLMServingSpec, ref: str, device: DeviceProfile,
                      state: dict[str, _Base], ctx: EvalContext) -> DeviceEval:
        """The capacity search of :meth:`evaluate` on the point's device, over the same
        replica sizes, shortened (:data:`FAST_REQUESTS`, one replication) and scaled by the
        base point's full / short ratio."""
        from accelsim.llm.sim import capacity, saturated_tokens_per_s

        # a device that failed at the base point is searched again: a faster or larger
        # variant may meet the SLO or fit (unscaled: no base capacity to scale from)
        b = state[ref]
        p, o = _means(spec)
        best: tuple[float, float] | None = None  # (per device, ratio)
        try:
            for tp, rm in self._candidates(spec, device, ctx.file, b.tp):
                sat = saturated_tokens_per_s(rm, p, o) / o
                if best is not None and 2 * sat / rm.devices <= best[0]:
                    continue
                per_replica = capacity(_fast_job(spec, device.name, tp), ctx.file,
                                       [rm])["max_rps_at_slo"] * b.scale
                if best is None or per_replica / rm.devices > best[0]:
                    best = (per_replica / rm.devices,
                            per_replica / sat if sat > 0 else 0.0)
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

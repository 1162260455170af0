"""The ``llm_serving`` fleet block (:class:`LLMServingSpec`) and what it names: the LLM job
of one replica size on a device, the block's mean lengths, its model (read once per
version of its file) and the replica sizes a device can run (:func:`replica_sizes`)."""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from accelsim import refs
from accelsim.config import Strict
from accelsim.devices import DeviceProfile
from accelsim.errors import AccelsimError
from accelsim.llm.job import Engine, Slo, WeightFormat
from accelsim.traffic import Dist
from accelsim.workloads.base import CapacitySpec

DAY_S = 86_400.0


class LLMSim(Strict):
    requests: int = Field(default=3000, ge=100, le=10_000_000)
    """Requests per simulated run (one replica)."""
    warmup: int = Field(default=300, ge=0, le=10_000_000)
    """Leading requests left out of the statistics."""
    replications: int = Field(default=2, ge=1, le=50)
    """Seeded runs behind the capacity's confidence interval."""
    seed: int = Field(default=1, ge=0, le=2**63 - 1)
    """Seed of the first replication."""

    @model_validator(mode="after")
    def _w(self) -> LLMSim:
        if self.warmup >= self.requests:
            raise ValueError(f"warmup ({self.warmup}) must be below requests ({self.requests})")
        return self


class TokenDemand(Strict):
    """Demand as a published daily token volume (prompt + output tokens a day, e.g. an
    operator's keynote figure) and the share of it this fleet serves. Requests/s at the
    peak = ``tokens_per_day x share / (mean prompt + mean output tokens) / 86,400 s x
    peak/mean`` of the block's daily profile (:meth:`LLMServingSpec.peak_demand`)."""

    tokens_per_day: float = Field(gt=0, le=1e18)
    """Published tokens a day (input + output) over every use of the operator's models."""
    share: float = Field(gt=0, le=1)
    """Share of those tokens this workload's fleet serves (the rest: other fleets, other
    modalities, API customers served elsewhere)."""
    source: str = Field(min_length=1)
    """Where the volume was published (URL, event) and when."""


class MauDemand(Strict):
    """Demand from users: ``mau x daily_active_share x requests_per_daily_user`` requests a
    day, over 86,400 s, times peak/mean of the block's daily profile."""

    mau: float = Field(gt=0, le=1e11)
    """Monthly active users."""
    daily_active_share: float = Field(gt=0, le=1)
    """Daily over monthly active users."""
    requests_per_daily_user: float = Field(gt=0, le=1e6)
    """Requests a daily active user sends a day."""


class SizeRouting(Strict):
    """Request-size routing across device types (Melange, Griggs et al. 2024, arXiv
    2404.14527): the prompt length distribution is cut at ``edges`` into buckets, each
    device type's capacity at the SLO is found per bucket, and a fleet's chatbot units serve
    the buckets a linear programme assigns them (:mod:`accelsim.fleet.routing`)."""

    by: Literal["prompt_tokens"] = "prompt_tokens"
    """What the buckets cut: the prompt length (TTFT grows with it)."""
    edges: list[Annotated[int, Field(ge=2, le=1_000_000)]] = Field(min_length=1,
                                                                    max_length=7)
    """Bucket boundaries, prompt tokens, increasing: ``[1000, 3000]`` makes buckets
    below 1,000, 1,000-2,999 and from 3,000."""

    @model_validator(mode="after")
    def _increasing(self) -> SizeRouting:
        if any(b <= a for a, b in pairwise(self.edges)):
            raise ValueError(f"edges {self.edges}: expected increasing prompt lengths")
        return self


class PDPair(Strict):
    """One prefill/decode pairing of device types: a unit of ``ratio[0]`` prefill replicas
    on ``prefill`` and ``ratio[1]`` decode replicas on ``decode``, each ``tp`` x the
    block's ``dp`` devices (DistServe, Splitwise; DeepSeek-V3's own deployment)."""

    prefill: str
    """Device of the prefill replicas (a pool device of the scenario)."""
    decode: str
    """Device of the decode replicas (a pool device; may be the prefill one)."""
    ratio: list[Annotated[int, Field(ge=1, le=64)]] | None = Field(default=None, min_length=2,
                                                                    max_length=2)
    """``[prefill replicas, decode replicas]`` of a unit; default: the two whole ratios
    around the balance of the replicas' saturated rates (:mod:`accelsim.fleet.pd`)."""
    prefill_tp: int | None = Field(default=None, ge=1, le=1024)
    """Tensor-parallel size of a prefill replica; default: the smallest that fits."""
    decode_tp: int | None = Field(default=None, ge=1, le=1024)
    """Tensor-parallel size of a decode replica; default: the smallest that fits."""


class Disaggregation(Strict):
    """Prefill/decode disaggregation in fleets: each pair's unit is searched at the SLO
    through the LLM simulator's disaggregated pool (KV caches shipped over ``kv_transfer``)
    and is one more way a fleet's units serve the chatbot (:mod:`accelsim.fleet.pd`)."""

    pairs: list[PDPair] = Field(min_length=1, max_length=8)
    """Prefill/decode device pairings to offer the fleets."""
    kv_transfer: Literal["scaleup", "scaleout"] = "scaleout"
    """Link the KV cache crosses: scaleout (the data-centre network, between device types)
    or scaleup (one supernode: the same device type only)."""


def _size_in_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema of ``routing`` also takes ``size`` (converted on validation)."""
    schema.setdefault("anyOf", []).insert(1, {"const": "size", "type": "string"})


class LLMServingSpec(CapacitySpec):
    """Serve ``peak_rps`` chat requests of ``model`` within the TTFT/TPOT SLO (or the
    peak that ``demand`` implies: a published token volume or users)."""

    kind: Literal["llm_serving"] = "llm_serving"
    """Workload kind: llm_serving (alias chatbot)."""
    model: str
    """Decoder-only model: catalog name (configs/models) or path (relative to the scenario)."""
    peak_rps: float | None = Field(default=None, gt=0, le=1e9)
    """Requests/s at the daily peak that must meet the SLO (or give ``demand``)."""
    demand: TokenDemand | MauDemand | None = None
    """Where the peak comes from instead of ``peak_rps``: ``{tokens_per_day, share,
    source}`` (a published volume) or ``{mau, daily_active_share,
    requests_per_daily_user}``; converted through the length distributions' means and the
    daily profile (:meth:`peak_demand`)."""
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
    weight_formats: list[WeightFormat] | None = Field(default=None, min_length=1, max_length=4)
    """Weight formats in order of preference: each device is served in the first one its
    peaks support (``[fp8, int8, bf16]``: FP8 on Hopper as TensorRT-LLM and SGLang serve it,
    W8A8 INT8 on Ascend as MindIE does); default: ``engine.weights`` on every device."""
    stacks: dict[str, str] = Field(default_factory=dict)
    """Serving stack per device (device name -> ``configs/stacks`` name or path, relative to
    the scenario, e.g. ``{h20: vllm, ascend-910c: mindie}``): its tensor-parallel all-reduce,
    per-iteration sampling and host costs and its GEMM library's stream-K
    (:attr:`accelsim.llm.job.Replica.stack`). Each must be a serving stack that lists the
    device's vendor; a device not named runs its vendor's default serving stack
    (TensorRT-LLM on NVIDIA, vLLM on ROCm on AMD, MindIE on Huawei). Mirrors the training
    block's ``stacks``."""
    sim: LLMSim = LLMSim()
    """Simulation behind each device's capacity at the SLO."""
    routing: SizeRouting | None = Field(default=None, json_schema_extra=_size_in_schema)
    """Request-size routing in fleets (``{edges: [1000, 3000]}``, or ``size``: edges at the
    prompt distribution's median and 90th percentile, two significant digits): each
    prompt-length bucket is served by the device types a linear programme picks for it
    (:mod:`accelsim.fleet.routing`); default: every device serves the whole
    distribution."""

    @field_validator("routing", mode="before")
    @classmethod
    def _size_edges(cls, v: Any, info: ValidationInfo) -> Any:
        """``routing: size`` as the edges it stands for (the prompt distribution's own
        error, when it is invalid, says why there are none)."""
        if not isinstance(v, str):
            return v
        if v != "size":
            raise ValueError("expected {edges: [...]} or size")
        from accelsim.workloads.prompt_sizes import default_edges

        dist = info.data.get("prompt_tokens")
        return None if dist is None else {"edges": default_edges(dist)}

    disaggregation: Disaggregation | None = None
    """Prefill/decode disaggregation in fleets (``{pairs: [{prefill: ascend-910c, decode:
    h20}]}``): each pair's unit is another way the fleet's units serve the chatbot, chosen
    by the routing programme (:mod:`accelsim.fleet.pd`); default: colocated replicas only."""

    @model_validator(mode="after")
    def _one_demand(self) -> LLMServingSpec:
        if (self.peak_rps is None) == (self.demand is None):
            raise ValueError("expected exactly one of peak_rps and demand")
        return self

    @model_validator(mode="after")
    def _buckets_hold_requests(self) -> LLMServingSpec:
        if isinstance(self.routing, SizeRouting):
            from accelsim.workloads.prompt_sizes import bucket_shares

            shares = bucket_shares(self.prompt_tokens, tuple(self.routing.edges))
            empty = [i for i, s in enumerate(shares) if s <= 0]
            if empty:
                raise ValueError(f"routing.edges {self.routing.edges}: bucket {empty[0] + 1} "
                                 "holds no prompt_tokens draws; expected edges within the "
                                 "prompt length distribution")
        return self

    @model_validator(mode="after")
    def _scaleup_within_one_device(self) -> LLMServingSpec:
        pd = self.disaggregation
        if pd is not None and pd.kv_transfer == "scaleup":
            mixed = [i for i, p in enumerate(pd.pairs) if p.prefill != p.decode]
            if mixed:
                raise ValueError(f"disaggregation.pairs[{mixed[0]}]: kv_transfer scaleup "
                                 "needs prefill and decode on one device type (one "
                                 "supernode); expected scaleout")
        return self

    def requests_per_day(self) -> float:
        """Requests a day the demand implies (``peak_rps`` x mean/peak x 86,400 s)."""
        if isinstance(self.demand, TokenDemand):
            p, o = mean_lengths(self)
            return self.demand.tokens_per_day * self.demand.share / (p + o)
        if isinstance(self.demand, MauDemand):
            d = self.demand
            return d.mau * d.daily_active_share * d.requests_per_daily_user
        assert self.peak_rps is not None
        return self.peak_rps * self.mean_to_peak * DAY_S

    def peak_demand(self) -> float:
        """Requests/s at the daily peak: ``peak_rps``, or requests a day / 86,400 s /
        (mean/peak of the daily profile)."""
        if self.peak_rps is not None:
            return self.peak_rps
        return self.requests_per_day() / DAY_S / self.mean_to_peak

    def tokens_per_day(self) -> float:
        """Prompt + output tokens a day the demand implies."""
        p, o = mean_lengths(self)
        return self.requests_per_day() * (p + o)


def device_weights(spec: LLMServingSpec, device: str) -> WeightFormat:
    """The weight format ``device`` is served in: the first of ``weight_formats`` its peaks
    support (the catalog profile's), else ``engine.weights``."""
    if not spec.weight_formats:
        return spec.engine.weights
    from accelsim.devices import load_device

    try:
        peaks = load_device(device).spec.peak_flops
    except AccelsimError:
        return spec.engine.weights
    return next((f for f in spec.weight_formats if f in peaks), spec.engine.weights)


def device_stack(spec: LLMServingSpec, device: str) -> str | None:
    """The serving stack the block names for ``device`` (its profile name; None: the
    vendor's default serving stack)."""
    return spec.stacks.get(device)


def replica_job(spec: LLMServingSpec, device: str, tp: int) -> Any:
    """The LLM job of one replica of ``tp`` devices on ``device`` (rate 1/s: a search sets
    it), its weights in :func:`device_weights`, its serving stack :func:`device_stack`'s."""
    from accelsim.llm.job import LLMJob

    engine = {**spec.engine.model_dump(), "weights": device_weights(spec, device)}
    stack = device_stack(spec, device)
    if stack is not None:
        engine["stack"] = stack
    return LLMJob.model_validate({
        "replicas": [{**engine, "device": device, "model": spec.model,
                      "tp": tp, "dp": spec.dp}],
        "arrivals": {"rate_qps": 1.0},
        "prompt_tokens": spec.prompt_tokens.model_dump(),
        "output_tokens": spec.output_tokens.model_dump(),
        "slo": spec.slo.model_dump(),
        "sim": {"requests": spec.sim.requests, "warmup": spec.sim.warmup,
                "seed": spec.sim.seed, "replications": spec.sim.replications},
    })


def mean_lengths(spec: LLMServingSpec) -> tuple[float, float]:
    """The block's mean prompt and output tokens."""
    from accelsim.traffic import dist_mean

    return float(dist_mean(spec.prompt_tokens)), float(dist_mean(spec.output_tokens))


def block_model(ref: str, file: str) -> Any:
    """The block's model, read once per version of its file (sweeps and draws build every
    replica size of every point's device on it)."""
    path = refs.find(ref, "models", family="training", what="training model")
    st = path.stat()
    return _model_at(str(path), file, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=32)
def _model_at(path: str, file: str, mtime_ns: int, size: int) -> Any:
    from accelsim.transformer.model import load_model

    return load_model(path, where=file, field="workloads.llm_serving.model")


def replica_sizes(spec: LLMServingSpec, device: DeviceProfile, file: str,
                  skip: Collection[int] = (), lines: bool = False, job: Any = None,
                  model: Any = None) -> list[tuple[int, Any]]:
    """Replica sizes to try: the block's tp, or every power of two within the scale-up
    domain whose memory leaves a KV cache (their cost models); ``skip``: sizes not to
    try, except the smallest that fits (the full search always tries it); ``lines``: the
    cost models' GEMMs from lines kept per shape and geometry (the fast path's,
    :func:`accelsim.llm.perf.replica_model`); ``job``: the block's
    :func:`replica_job` on this device (any tp), ``model`` the block's model
    (:func:`block_model`), when the caller keeps them."""
    from accelsim.llm.perf import replica_model

    job = job or replica_job(spec, device.name, 1)
    model = block_model(spec.model, file) if model is None else model
    tps = [spec.tp] if spec.tp else [t for t in (1, 2, 4, 8, 16, 32, 64)
                                     if t <= device.spec.scaleup_domain]
    out: list[tuple[int, Any]] = []
    last = None
    for tp in tps:
        if out and tp in skip:
            continue
        r = job.replicas[0].model_copy(update={"tp": tp})
        try:
            out.append((tp, replica_model(r, file, "workloads.llm_serving",
                                          spec=device.spec, model=model, lines=lines)))
        except AccelsimError as e:
            last = e
    if not out:
        assert last is not None
        raise last
    return out

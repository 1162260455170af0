"""Device profiles: what one accelerator can do, what it costs, and where each number comes from.

A profile is a YAML file validated by :class:`DeviceProfile`. Keys carry their
unit when it is not SI (``memory_GiB``, ``bf16_tflops``); every number is a
:class:`Quantity` with a source and a confidence, or ``confidence: assumption``
with the reasoning in ``note``. :meth:`DeviceProfile.spec` converts once to SI
(:class:`DeviceSpec`), which is all the performance models see.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from accelsim import refs, units
from accelsim.config import YEARS, Strict, read_yaml, validate
from accelsim.errors import AccelsimError

Confidence = Literal["A", "B", "C", "assumption"]
# The sections of a profile that hold numbers (Quantity fields), in file order.
SECTIONS = ("compute", "memory", "interconnect", "power", "cost", "efficiency", "reliability")


class Quantity(Strict):
    """A number with its provenance; ``range`` is an optional ``[low, high]`` for uncertainty.

    Subclasses set the admissible interval: ``(low, high]`` or ``[low, high]``.
    """

    low: ClassVar[float] = -math.inf
    high: ClassVar[float] = math.inf
    low_open: ClassVar[bool] = True

    value: float
    """The number, in the unit its key names (memory_GiB in GiB, price_usd in USD)."""
    range: list[float] | None = None
    """Optional [low, high] the sources span; uncertainty draws sample it (triangular)."""
    source: str = Field(min_length=1)
    """Where the number comes from: a datasheet, paper, press report, or the reasoning."""
    confidence: Confidence
    """A vendor or paper, B press or analyst, C sources disagree, or 'assumption'."""
    note: str | None = None
    """Why the number was chosen; required when confidence is 'assumption'."""
    fitted_on: list[str] | None = None
    """Ids of the published runs (``configs/runs``) this number was fitted on: those rows
    are in-sample for it, and ``validate-runs --cross-validate`` refits it without them."""

    @model_validator(mode="after")
    def _check(self) -> Quantity:
        if self.value != "unsupported":  # only a Peak may say so (its value type allows it)
            self.check_bounds(float(self.value))
        if self.confidence == "assumption" and not self.note:
            raise ValueError("an 'assumption' needs a 'note' giving the reasoning")
        if self.range is not None:
            if len(self.range) != 2 or not (self.range[0] <= self.value <= self.range[1]):
                raise ValueError(
                    f"range must be [low, high] with low <= value <= high, got {self.range}"
                )
            for bound in self.range:
                self.check_bounds(bound)
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        """The class's admissible interval on ``value`` and ``range`` in the JSON Schema, so
        an editor flags a negative price or an efficiency above 1."""
        schema = handler.resolve_ref_schema(handler(core_schema))
        bounds: dict[str, float] = {}
        if math.isfinite(cls.low):
            bounds["exclusiveMinimum" if cls.low_open else "minimum"] = cls.low
        if math.isfinite(cls.high):
            bounds["maximum"] = cls.high
        props = schema["properties"]
        for sub in props["value"].get("anyOf", [props["value"]]):
            if sub.get("type") == "number":
                sub.update(bounds)
        for sub in props["range"].get("anyOf", [props["range"]]):
            if sub.get("type") == "array":
                sub["items"].update(bounds)
        return schema

    @classmethod
    def check_bounds(cls, v: float) -> float:
        lo_bad = v <= cls.low if cls.low_open else v < cls.low
        if not math.isfinite(v) or lo_bad or v > cls.high:
            lo = "(" if cls.low_open else "["
            hi = "]" if math.isfinite(cls.high) else ")"
            raise ValueError(f"expected a number in {lo}{cls.low:g}, {cls.high:g}{hi}, got {v:g}")
        return v


class Positive(Quantity):
    low = 0.0


class NonNegative(Quantity):
    low = 0.0
    low_open = False


class Fraction(Quantity):
    """An efficiency or probability in (0, 1]."""

    low = 0.0
    high = 1.0


class Count(Quantity):
    """A whole number of things (devices in a scale-up domain), at least 1."""

    low = 1.0
    low_open = False

    @classmethod
    def check_bounds(cls, v: float) -> float:
        super().check_bounds(v)
        if v != int(v):
            raise ValueError(f"expected a whole number, got {v:g}")
        return v


def whole_fields() -> set[str]:
    """``section.key`` of every profile number that counts things (:class:`Count`): a draw
    over its range is floored to a whole number, as :meth:`DeviceProfile.spec` reads it."""
    out = set()
    for sec in SECTIONS:
        model = DeviceProfile.model_fields[sec].annotation
        for key, f in getattr(model, "model_fields", {}).items():
            if f.annotation is Count or f.annotation == Count | None:
                out.add(f"{sec}.{key}")
    return out


class Peak(Quantity):
    """Dense peak throughput for one precision, or ``value: unsupported``."""

    low = 0.0
    value: float | Literal["unsupported"]  # type: ignore[assignment]
    """Dense peak in TFLOP/s (TOP/s for int8), or 'unsupported'."""

    @property
    def supported(self) -> bool:
        return self.value != "unsupported"


class Provenance(Strict):
    source: str = Field(min_length=1)
    """Where the identity facts come from."""
    confidence: Confidence
    """A vendor or paper, B press or analyst, C sources disagree, or 'assumption'."""
    note: str | None = None
    """Reasoning behind an assumption."""


class Compute(Strict):
    fp32_tflops: Peak
    """Dense FP32 peak, TFLOP/s."""
    tf32_tflops: Peak
    """Dense TF32 peak, TFLOP/s (without sparsity)."""
    bf16_tflops: Peak
    """Dense BF16 peak, TFLOP/s (without sparsity)."""
    fp16_tflops: Peak
    """Dense FP16 peak, TFLOP/s (without sparsity)."""
    fp8_tflops: Peak
    """Dense FP8 peak, TFLOP/s, or 'unsupported'."""
    int8_tops: Peak
    """Dense INT8 peak, TOP/s, or 'unsupported'."""
    compute_units: Count | None = None
    """Matrix-engine compute units GEMM tiles are spread over (SMs, AI cores), for tile and
    wave quantisation (:mod:`accelsim.kernels`). Not given: the size-curve fallback
    (``efficiency.gemm_half_size_GFLOP``)."""
    gemm_tile_m: Count | None = None
    """Rows of the output tile a compute unit sustains its full GEMM rate on."""
    gemm_tile_n: Count | None = None
    """Columns of that output tile."""


class Memory(Strict):
    memory_GiB: Positive
    """Device memory (HBM) capacity, GiB."""
    memory_bandwidth_GBps: Positive
    """Device memory bandwidth, GB/s (decimal)."""
    onchip_MiB: Positive
    """On-chip SRAM/L2 usable as a cache for hot embedding rows, MiB."""
    host_link_GBps: Positive
    """Host link (PCIe) bandwidth per direction, GB/s."""


class Interconnect(Strict):
    scaleup_bandwidth_GBps: Positive
    """Scale-up (NVLink/HCCS) bandwidth per device per direction, GB/s."""
    scaleup_domain_size: Count
    """Devices in one scale-up domain (8 in an HGX server, 384 in CloudMatrix)."""
    scaleout_bandwidth_Gbps: Positive
    """Scale-out network (RDMA NIC) line rate per device, Gb/s."""
    scaleup_latency_us: NonNegative
    """Per-message latency of the scale-up link (alpha), microseconds."""
    scaleout_latency_us: NonNegative
    """Per-message latency of the scale-out network (alpha), microseconds."""
    topology: str | None = Field(default=None, min_length=1)
    """A fabric topology (catalog name in ``configs/topologies`` or a path) the device sits
    in; it then sets the domain, link rates, latencies and the network's price per tier
    (:func:`accelsim.devices.topology.apply`, the scale-up share taken out of
    ``server_overhead_usd``; the numbers above, and draws over their ranges, are then not
    read). Not given: the numbers above (today's model)."""


class Power(Strict):
    tdp_W: Positive
    """Board power at full load (TDP), W."""
    idle_W: Positive
    """Board power when idle, W; energy interpolates between idle and TDP by utilisation."""
    host_W: NonNegative
    """The server's power beyond its accelerators, per accelerator (CPUs, memory, NICs, the
    scale-up switches, fans, power-supply losses), W; drawn whatever the load."""
    network_W: NonNegative
    """Per-accelerator share of the scale-out fabric's switches and optics, W."""


class Cost(Strict):
    price_usd: Positive
    """Unit price of one accelerator, USD."""
    server_overhead_usd: NonNegative
    """Host share per accelerator (CPUs, chassis, memory), USD."""
    network_usd: NonNegative
    """Fabric share per accelerator (NICs, switches, optics), USD."""


class Efficiency(Strict):
    """Achieved fraction of peak by the software stack (the CUDA vs. CANN gap lives here)."""

    compute: Fraction
    """Achieved fraction of peak on large GEMMs with this software stack."""
    memory: Fraction
    """Achieved fraction of memory bandwidth on streaming kernels."""
    communication: Fraction
    """Achieved fraction of link bandwidth in collectives (NCCL/HCCL bus bandwidth)."""
    all_to_all: Fraction | None = None
    """Achieved fraction of link bandwidth per rank in MoE dispatch and combine (DeepEP,
    CANN EP: many small messages to many peers); not given: ``communication``."""
    all_to_all_compute_share: Fraction | None = None
    """Share of the compute units the prefill all-to-all kernels hold while in flight
    (DeepEP's normal kernels: 24 of 132 SMs); compute overlapped with them runs that much
    slower. Not given: none (decode kernels that only post RDMA writes hold none)."""
    random_access: Fraction
    """Achieved fraction of memory bandwidth on embedding gathers (small random rows)."""
    gemm_half_size_GFLOP: Positive
    """GEMM size at which efficiency reaches half its large-GEMM value, GFLOP (the size
    curve used when ``compute.compute_units`` is not given)."""
    attention: Fraction | None = None
    """Flash-attention forward rate at head dim 128 on long non-causal sequences, as a
    fraction of dense peak (the published kernel's, :mod:`accelsim.kernels`). Not given:
    0.8 x ``compute``."""
    attention_backward: Fraction | None = None
    """The flash-attention backward's rate relative to its forward's (per FLOP); not
    given: 1."""
    kernel_overhead_us: NonNegative
    """Launch and scheduling overhead per kernel, microseconds."""


class Reliability(Strict):
    annual_failure_rate: Fraction
    """Fraction of devices failing per year."""


class DeviceProfile(Strict):
    """One accelerator: identity, compute, memory, links, power, cost, software, reliability."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    """Catalog name: lower case, digits, '.', '_' or '-' (how scenarios refer to it)."""
    vendor: str = Field(min_length=1)
    """Maker of the device."""
    kind: Literal["gpu", "npu", "asic"]
    """gpu, npu or asic."""
    year: int = Field(ge=YEARS[0], le=YEARS[1])
    """Year the device was announced."""
    process_node: str = Field(min_length=1)
    """Manufacturing process (e.g. 'TSMC 4N', 'SMIC N+2')."""
    available_from: int = Field(ge=YEARS[0], le=YEARS[1])
    """First year it can be bought in volume; fleets before it are violations."""
    export_controlled: bool
    """Whether US export rules restrict sales to China."""
    supply_pool: Literal["domestic", "overseas"]
    """Which budget pool usually buys it: domestic or overseas."""
    identity: Provenance
    """Source and confidence of the identity facts above."""
    description: str = ""
    """Free text shown by 'devices show'."""
    sources: dict[str, str] = Field(default_factory=dict)
    """Citation keys used in the fields' sources, with the full citation."""
    compute: Compute
    """Dense peak throughput per precision."""
    memory: Memory
    """Device memory, its bandwidth, on-chip SRAM and the host link."""
    interconnect: Interconnect
    """Scale-up and scale-out links."""
    power: Power
    """Board power at full load and idle."""
    cost: Cost
    """Purchase price and per-device server and network shares."""
    efficiency: Efficiency
    """What the software stack achieves of the peaks (the CUDA vs. CANN gap)."""
    reliability: Reliability
    """Failure rates."""

    @model_validator(mode="after")
    def _cross(self) -> DeviceProfile:
        if self.power.idle_W.value > self.power.tdp_W.value:
            raise ValueError(
                f"power.idle_W ({self.power.idle_W.value:g}) must not exceed power.tdp_W "
                f"({self.power.tdp_W.value:g})"
            )
        return self

    @property
    def spec(self) -> DeviceSpec:
        """The SI view used by every model. Computed on each access (a few microseconds), so
        a ``model_copy(update=...)`` never returns the numbers of the profile it came from."""
        return _spec(self)

    def quantities(self) -> dict[str, Any]:
        """Flat ``{'section.field': Quantity|Peak}`` view, for tables and uncertainty sampling."""
        out: dict[str, Any] = {}
        for section in SECTIONS:
            sub = getattr(self, section)
            for key in type(sub).model_fields:
                if isinstance(getattr(sub, key), Quantity):  # not left out, not a name
                    out[f"{section}.{key}"] = getattr(sub, key)
        return out


@dataclass(frozen=True)
class DeviceSpec:
    """SI view of a profile: FLOP/s, bytes, bytes/s, seconds, watts, USD."""

    name: str
    peak_flops: dict[str, float]  # precision -> FLOP/s (int8: OP/s); absent = unsupported
    memory_bytes: float
    memory_bw_Bps: float
    onchip_bytes: float
    host_link_Bps: float
    scaleup_bw_Bps: float  # per chip, per direction
    scaleup_domain: int
    scaleout_bw_Bps: float  # per chip, per direction
    scaleup_latency_s: float
    scaleout_latency_s: float
    tdp_W: float
    idle_W: float
    host_W: float
    network_W: float
    price_usd: float
    server_overhead_usd: float
    network_usd: float
    eff_compute: float
    eff_memory: float
    eff_comm: float
    eff_random_access: float
    eff_a2a: float
    a2a_compute_share: float
    gemm_half_flop: float
    kernel_overhead_s: float
    annual_failure_rate: float
    export_controlled: bool
    supply_pool: str
    available_from: int
    compute_units: int = 0  # 0: no kernel model (the size curve)
    tile_m: float = 128.0
    tile_n: float = 128.0
    eff_attention: float = 0.0  # 0: 0.8 x eff_compute
    eff_attention_bwd: float = 1.0
    vendor: str = ""
    extra: dict[str, float] = field(default_factory=dict)
    topology: str | None = None  # name of the accelsim.devices.topology.Topology it sits in

    def flops(self, precision: str, where: str = "precision") -> float:
        """Peak FLOP/s at ``precision``; an unsupported precision is an error, never a fallback."""
        if precision not in self.peak_flops:
            supported = ", ".join(sorted(self.peak_flops)) or "none"
            raise AccelsimError.single(
                where, "precision",
                f"device '{self.name}' does not support {precision} (supported: {supported})",
            )
        return self.peak_flops[precision]


def _spec(p: DeviceProfile) -> DeviceSpec:
    spec = _plain_spec(p)
    if p.interconnect.topology is None:
        return spec
    from accelsim.devices import topology  # the topology module reads DeviceSpec

    t = topology.load_topology(p.interconnect.topology)
    return topology.apply(spec, t, home=t)


def _plain_spec(p: DeviceProfile) -> DeviceSpec:
    c = p.compute
    peaks = {
        "fp32": c.fp32_tflops, "tf32": c.tf32_tflops, "bf16": c.bf16_tflops,
        "fp16": c.fp16_tflops, "fp8": c.fp8_tflops, "int8": c.int8_tops,
    }
    e = p.efficiency
    i = p.interconnect
    return DeviceSpec(
        name=p.name,
        peak_flops={k: units.tflops_to_flops(float(v.value)) for k, v in peaks.items()
                    if v.supported},
        memory_bytes=p.memory.memory_GiB.value * units.GiB,
        memory_bw_Bps=units.gbps_to_Bps(p.memory.memory_bandwidth_GBps.value),
        onchip_bytes=p.memory.onchip_MiB.value * units.MiB,
        host_link_Bps=units.gbps_to_Bps(p.memory.host_link_GBps.value),
        # vendors quote scale-up bandwidth bidirectional; a collective moves data one way
        scaleup_bw_Bps=units.gbps_to_Bps(i.scaleup_bandwidth_GBps.value) / 2,
        scaleup_domain=int(i.scaleup_domain_size.value),
        scaleout_bw_Bps=units.gbit_to_Bps(i.scaleout_bandwidth_Gbps.value),
        scaleup_latency_s=i.scaleup_latency_us.value * units.US,
        scaleout_latency_s=i.scaleout_latency_us.value * units.US,
        tdp_W=p.power.tdp_W.value,
        idle_W=p.power.idle_W.value,
        host_W=p.power.host_W.value,
        network_W=p.power.network_W.value,
        price_usd=p.cost.price_usd.value,
        server_overhead_usd=p.cost.server_overhead_usd.value,
        network_usd=p.cost.network_usd.value,
        eff_compute=e.compute.value,
        eff_memory=e.memory.value,
        eff_comm=e.communication.value,
        eff_random_access=e.random_access.value,
        eff_a2a=(e.all_to_all or e.communication).value,
        a2a_compute_share=(e.all_to_all_compute_share.value if e.all_to_all_compute_share
                           else 0.0),
        gemm_half_flop=e.gemm_half_size_GFLOP.value * units.GFLOP,
        kernel_overhead_s=e.kernel_overhead_us.value * units.US,
        annual_failure_rate=p.reliability.annual_failure_rate.value,
        export_controlled=p.export_controlled,
        supply_pool=p.supply_pool,
        available_from=p.available_from,
        compute_units=int(c.compute_units.value) if c.compute_units else 0,
        tile_m=c.gemm_tile_m.value if c.gemm_tile_m else 128.0,
        tile_n=c.gemm_tile_n.value if c.gemm_tile_n else 128.0,
        eff_attention=e.attention.value if e.attention else 0.0,
        eff_attention_bwd=e.attention_backward.value if e.attention_backward else 1.0,
        vendor=p.vendor,
    )


def require_spec(device: object, where: str = "device") -> DeviceSpec:
    """``device`` if it is a :class:`DeviceSpec`. The physics takes the SI view only, never
    a name or a profile: resolve names and paths once, at the boundary, with
    ``load_device(ref).spec``."""
    if isinstance(device, DeviceSpec):
        return device
    hint = "; pass its .spec" if isinstance(device, DeviceProfile) else (
        "; resolve a name or path with accelsim.load_device(...).spec first")
    raise AccelsimError.single(where, "device", f"expected a DeviceSpec, got "
                               f"{type(device).__name__} {str(device)[:40]!r}{hint}")


# ---------------------------------------------------------------------------
# catalog

def catalog_names() -> list[str]:
    return refs.names("devices")


def catalog() -> dict[str, DeviceProfile]:
    """Every profile in the shipped catalog, by name."""
    return {n: load_device(n) for n in catalog_names()}


def load_device(name_or_path: str | Path, where: str = "device", field: str = "",
                relative_to: str | Path | None = None) -> DeviceProfile:
    """A catalog name (``h20``) or a path to a YAML profile; unknown names suggest the closest.
    A file edited since it was last read is read again."""
    from accelsim.devices import anchor as devices_anchor

    path = refs.find(name_or_path, "devices", relative_to, where, field, what="device")
    st = path.stat()
    profile = _load_path(str(path), refs.shown(path), st.st_mtime_ns, st.st_size)
    mine = tuple(o for o in _OVERRIDES.get() if o[0] == profile.name)
    if mine:
        profile = _load_overridden(str(path), refs.shown(path), st.st_mtime_ns, st.st_size, mine)
    return devices_anchor.apply(profile)


@lru_cache(maxsize=256)
def _load_path(resolved: str, shown: str, mtime_ns: int, size: int) -> DeviceProfile:
    """Parsed profile, cached by path and the file's modification time and size."""
    return _check_topology(validate(DeviceProfile, read_yaml(resolved), shown), shown)


# (profile name, 'section.key', value) set by :func:`overridden`, sorted.
_OVERRIDES: ContextVar[tuple[tuple[str, str, float], ...]] = ContextVar(
    "accelsim_device_overrides", default=())


@contextmanager
def overridden(values: Mapping[str, Mapping[str, float]]) -> Iterator[None]:
    """Within the block, :func:`load_device` returns the named profiles with these numbers
    (``{'h100-sxm': {'efficiency.compute': 0.6}}``), files untouched: how a calibration refit
    (``validate-runs --refit``, ``--cross-validate``) predicts with another value. An
    overridden number keeps its source and drops its range; it must lie in its field's
    admissible interval. Blocks nest: the inner one's values win."""
    merged = {(n, f): v for n, f, v in _OVERRIDES.get()}
    for name, fields in values.items():
        for fld, v in fields.items():
            merged[(name, fld)] = float(v)
    token = _OVERRIDES.set(tuple(sorted((n, f, v) for (n, f), v in merged.items())))
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


@lru_cache(maxsize=1024)
def _load_overridden(resolved: str, shown: str, mtime_ns: int, size: int,
                     values: tuple[tuple[str, str, float], ...]) -> DeviceProfile:
    """The parsed profile with ``values`` set (cached like :func:`_load_path`)."""
    profile = _load_path(resolved, shown, mtime_ns, size)
    qs = profile.quantities()
    update: dict[str, Any] = {}
    for _, fld, v in values:
        if fld not in qs:
            raise AccelsimError.single(shown, fld, f"no such number to override; expected "
                                       f"one of {', '.join(sorted(qs))}")
        q = qs[fld]
        try:
            type(q).check_bounds(v)
        except ValueError as e:
            raise AccelsimError.single(shown, fld, f"override: {e}") from None
        sec, key = fld.split(".", 1)
        section = update.get(sec) or getattr(profile, sec)
        update[sec] = section.model_copy(update={key: q.model_copy(
            update={"value": v, "range": None})})
    return profile.model_copy(update=update)


def device_from_dict(data: dict[str, Any], file: str = "<device>") -> DeviceProfile:
    """Validate a profile given as a mapping (used by sweeps that override fields)."""
    return _check_topology(validate(DeviceProfile, data, file), file)


def _check_topology(p: DeviceProfile, file: str) -> DeviceProfile:
    """The topology a profile names must load (the loader's check, not the model's)."""
    if p.interconnect.topology is not None:
        from accelsim.devices import topology  # the topology module reads DeviceSpec

        try:
            topology.load_topology(p.interconnect.topology)
        except AccelsimError as e:
            raise AccelsimError.single(file, "interconnect.topology",
                                       e.problems[0].message) from None
    return p

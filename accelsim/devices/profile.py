"""The device profile schema: one YAML file per accelerator, validated section by section
(compute, memory, interconnect, power, cost, efficiency, reliability)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from accelsim.config import YEARS, Strict
from accelsim.devices.quantity import (
    Count,
    Fraction,
    NonNegative,
    Peak,
    Positive,
    Provenance,
    Quantity,
)

if TYPE_CHECKING:
    from accelsim.devices.spec import DeviceSpec

# The sections of a profile that hold numbers (Quantity fields), in file order.
SECTIONS = ("compute", "memory", "interconnect", "power", "cost", "efficiency", "reliability")
# Profile sections that change a device's throughput (power and cost only its price): the
# fast evaluations' key.
PERF_SECTIONS = {"compute", "memory", "interconnect", "efficiency", "reliability"}


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
    scaleup_reduction_efficiency: Fraction | None = None
    """In-switch reduction on the scale-up fabric (NVLink SHARP, NCCL's NVLS all-reduce):
    its achieved fraction of the scale-up bandwidth per direction, each rank sending its
    buffer once and receiving the result once ((n+1)/n M bytes). Not given: none."""
    scaleup_reduction_latency_us: NonNegative | None = None
    """Fixed time of one in-switch all-reduce call, microseconds (not given: two
    ``scaleup_latency_us``)."""
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
    attention_fa2: Fraction | None = None
    """FlashAttention-2's forward rate relative to ``attention`` where the published kernel
    is a later generation (Hopper: FlashAttention-3): what a stack that runs FA2-generation
    kernels (stack ``kernels.attention_fa2``) gets. Not given: 1 (the published kernel is
    FA2's generation, or no other is known)."""
    attention_fa2_backward: Fraction | None = None
    """The same for the backward (FA2's backward rate relative to the published kernel's
    backward). Not given: 1."""
    kernel_overhead_us: NonNegative
    """Launch and scheduling overhead per kernel, microseconds."""
    device_spread: Fraction | None = None
    """Coefficient of variation of one device's sustained compute rate across devices of
    this SKU (static: silicon, power and clock management). A synchronous training step
    runs at the pace of its slowest device, 1 + cv E[max of p normals]
    (:mod:`accelsim.training.perf.stragglers`). Not given: 0 (every device alike)."""


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
        from accelsim.devices.spec import profile_spec

        return profile_spec(self)

    def quantities(self) -> dict[str, Any]:
        """Flat ``{'section.field': Quantity|Peak}`` view, for tables and uncertainty sampling."""
        out: dict[str, Any] = {}
        for section in SECTIONS:
            sub = getattr(self, section)
            for key in type(sub).model_fields:
                if isinstance(getattr(sub, key), Quantity):  # not left out, not a name
                    out[f"{section}.{key}"] = getattr(sub, key)
        return out


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

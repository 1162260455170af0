"""The SI view of a profile (:class:`DeviceSpec`): FLOP/s, bytes, bytes/s, seconds, watts,
USD; all the performance models see."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from accelsim import units
from accelsim.errors import AccelsimError

if TYPE_CHECKING:
    from accelsim.devices.profile import DeviceProfile


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
    eff_attention_fa2: float = 1.0  # FA2's forward rate over the published kernel's
    eff_attention_fa2_bwd: float = 1.0
    vendor: str = ""
    extra: dict[str, float] = field(default_factory=dict)
    topology: str | None = None  # name of the accelsim.devices.topology.Topology it sits in
    eff_reduction: float = 0.0  # in-switch all-reduce (NVLS): fraction of scaleup_bw; 0: none
    reduction_latency_s: float = 0.0  # fixed time of one in-switch all-reduce call
    device_cv: float = 0.0  # spread of the devices' sustained compute rate (stragglers.py)

    def flops(self, precision: str, where: str = "precision") -> float:
        """Peak FLOP/s at ``precision``; an unsupported precision is an error, never a fallback."""
        if precision not in self.peak_flops:
            supported = ", ".join(sorted(self.peak_flops)) or "none"
            raise AccelsimError.single(
                where, "precision",
                f"device '{self.name}' does not support {precision} (supported: {supported})",
            )
        return self.peak_flops[precision]


def profile_spec(p: DeviceProfile) -> DeviceSpec:
    """The profile in SI units, its topology applied when it names one."""
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
        eff_attention_fa2=e.attention_fa2.value if e.attention_fa2 else 1.0,
        eff_attention_fa2_bwd=(e.attention_fa2_backward.value if e.attention_fa2_backward
                               else 1.0),
        vendor=p.vendor,
        device_cv=e.device_spread.value if e.device_spread else 0.0,
        eff_reduction=(i.scaleup_reduction_efficiency.value if i.scaleup_reduction_efficiency
                       else 0.0),
        reduction_latency_s=(i.scaleup_reduction_latency_us.value * units.US
                             if i.scaleup_reduction_latency_us is not None
                             else 2 * i.scaleup_latency_us.value * units.US),
    )

"""Service time of a DLRM-family recommendation model (:mod:`accelsim.serving.rec_model`)
for a batch of items on a device.

Service time of a batch of ``n`` items (vectorized over ``n``):

  embeddings   per item, ``sum(count * pooling)`` row gathers of ``dim * dtype`` bytes.
               Hot rows hit the on-chip SRAM/L2, the next tier is device memory (random
               access at ``memory_bw * eff_random_access``), rows beyond device memory are
               read from host over the host link or fetched from the other shards of a
               table-sharded model (all-to-all of pooled vectors on the scale-up link).
               Hit rates follow a Zipf(alpha) popularity over each table's rows:
               ``H(k) = sum_{i<=k} i^-alpha`` (closed form for the cumulative share).
  MLPs         every layer a roofline GEMM (:mod:`accelsim.roofline`): ``2 n d_in d_out``
               FLOPs on the efficiency-vs-size curve, or streaming its weights when the
               batch is small, so small batches run far below peak.
  interaction  concatenation (free), pairwise dot products (a batched GEMM), or DCNv2
               cross layers (full-rank or low-rank GEMMs).
  overhead     one kernel launch per operator plus the host->device copy of the batch's
               dense features and sparse indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim import units
from accelsim.devices import DeviceSpec
from accelsim.errors import AccelsimError
from accelsim.precision import BYTES
from accelsim.roofline import gemm_bytes, gemm_flops, gemm_time
from accelsim.runtime import RUNTIME_RESERVE_BYTES
from accelsim.serving.rec_model import RecModel

# Fraction of device memory an embedding cache may use (the rest: MLP weights, activations,
# runtime). Assumption.
EMBEDDING_MEMORY_FRACTION = 0.85
# Fraction of on-chip SRAM/L2 that holds hot embedding rows (assumption: the rest serves
# MLP weights and activations).
ONCHIP_CACHE_FRACTION = 0.5
# Bytes per dense feature sent host -> device with each batch (sparse indices: the model's
# ``index_bytes``, int64 in PyTorch by default, int32 in tuned servers).
DENSE_BYTES = 4.0


def zipf_share(k: Any, n: Any, alpha: float) -> Any:
    """Share of accesses that go to the ``k`` most popular of ``n`` rows under Zipf(alpha),
    ``H_k / H_n`` with the integral approximation of the generalised harmonic numbers."""
    k = np.clip(np.asarray(k, dtype=float), 0.0, n)
    n = np.asarray(n, dtype=float)

    def H(x: Any) -> Any:
        x = np.maximum(x, 0.0)
        if abs(alpha - 1.0) < 1e-9:
            return np.where(x >= 1, 1.0 + np.log(np.maximum(x, 1.0)), x)
        return np.where(x >= 1, 1.0 + (np.maximum(x, 1.0) ** (1 - alpha) - 1) / (1 - alpha), x)

    return np.where(n > 0, H(k) / H(n), 1.0)


@dataclass(frozen=True)
class Placement:
    """Where one device's embedding lookups are served (fractions of lookups per tier)."""

    onchip: float
    device: float
    remote: float  # other shards in the scale-up domain (pooled vectors via all-to-all)
    host: float  # host memory over the host link
    shards: int
    mode: str


# _cached_share's answers by (model object, capacity): a draw or sweep point moves some
# devices' capacities and keeps the others'
_SHARES: dict[tuple[int, float], tuple[RecModel, float]] = {}


def _cached_share(model: RecModel, capacity_bytes: float) -> float:
    """:func:`_hot_share`, remembered for the model object and capacity."""
    key = (id(model), capacity_bytes)
    got = _SHARES.get(key)
    if got is not None and got[0] is model:
        return got[1]
    share = _hot_share(model, capacity_bytes)
    if len(_SHARES) >= 4096:
        _SHARES.clear()
    _SHARES[key] = (model, share)
    return share


def _hot_share(model: RecModel, capacity_bytes: float) -> float:
    """Share of all lookups served by a cache of ``capacity_bytes`` holding the globally
    hottest rows: water-filling on access density (lookups per byte) across tables.

    Under Zipf(alpha) the id of rank r in table t has density ``w_t r^-alpha / (H_t b_t)``
    where ``b_t`` is the bytes that caching it takes (``spread`` rows of ``dim x dtype``);
    a density threshold theta caches ``r_t(theta) = (w_t / (H_t b_t theta))^(1/alpha)`` ids
    of each table; theta is found by bisection so the cached bytes fill the capacity. A
    table whose ids' rows all fit (``r_t spread >= rows``) is wholly cached.
    """
    a = max(model.zipf_alpha, 1e-6)
    dt = BYTES[model.embedding_dtype]
    rows = np.array([t.rows for t in model.tables], dtype=float)
    spread = np.array([min(t.spread, t.rows) for t in model.tables], dtype=float)
    rb = np.array([t.dim * dt for t in model.tables]) * spread  # bytes per cached id
    ids = rows / spread  # ids whose rows fill the table
    cnt = np.array([t.count for t in model.tables], dtype=float)
    w = np.array([t.count * t.pooling for t in model.tables], dtype=float)
    w = w / w.sum()
    if capacity_bytes >= float(np.sum(ids * rb * cnt)):
        return 1.0
    H = _harm(rows, a)
    dens0 = w / (cnt * H * rb)  # density of each table's hottest id (per copy)

    def ranks(theta: float) -> Any:
        # ids whose density is >= theta, capped at the table (log space: no overflow)
        return np.minimum(ids, np.exp(np.minimum(np.log(dens0 / theta) / a, 700.0)))

    def used(theta: float) -> float:
        return float(np.sum(ranks(theta) * rb * cnt))

    lo, hi = 1e-300, float(dens0.max()) * 1.0001
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        if used(mid) > capacity_bytes:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-9:
            break
    r = ranks(hi)
    return float(np.sum(w * np.where(r >= ids, 1.0, zipf_share(r, rows, a))))


def _harm(n: Any, alpha: float) -> Any:
    n = np.asarray(n, dtype=float)
    if abs(alpha - 1.0) < 1e-9:
        return 1.0 + np.log(np.maximum(n, 1.0))
    return 1.0 + (np.maximum(n, 1.0) ** (1 - alpha) - 1) / (1 - alpha)


def placement(model: RecModel, spec: DeviceSpec, mode: str = "auto",
              where: str = "service") -> Placement:
    """Tiers hottest-first: on-chip cache, device memory, then remote shards or host memory.

    ``mode``: ``device`` (must fit), ``shard`` (across the scale-up domain), ``host`` (cold
    rows over the host link), or ``auto`` (device if it fits, else shard if the domain is
    large enough, else host).
    """
    onchip_cap = spec.onchip_bytes * ONCHIP_CACHE_FRACTION
    dev_cap = spec.memory_bytes * EMBEDDING_MEMORY_FRACTION
    total = model.embedding_bytes
    fits = total <= dev_cap
    shards_needed = int(np.ceil(total / dev_cap))
    if mode == "auto":
        mode = "device" if fits else ("shard" if shards_needed <= spec.scaleup_domain else "host")
    on = _cached_share(model, onchip_cap)
    if mode == "device":
        if not fits:
            raise AccelsimError.single(
                where, "placement",
                f"embeddings of {model.name} ({total / units.GB:.0f} GB) do not fit in "
                f"{spec.name} memory ({dev_cap / units.GB:.0f} GB usable); use shard or host")
        return Placement(on, 1.0 - on, 0.0, 0.0, 1, "device")
    if mode == "shard":
        if shards_needed > spec.scaleup_domain:
            raise AccelsimError.single(
                where, "placement",
                f"embeddings of {model.name} ({total / units.GB:.0f} GB) need {shards_needed} "
                f"shards of {spec.name}, more than its scale-up domain ({spec.scaleup_domain})")
        k = max(shards_needed, 1)
        return Placement(on, 1.0 - on, (k - 1) / k, 0.0, k, "shard")
    if mode == "host":
        dev = _cached_share(model, dev_cap) - on
        return Placement(on, dev, 0.0, max(0.0, 1.0 - on - dev), 1, "host")
    raise AccelsimError.single(where, "placement",
                               f"expected auto, device, shard or host, got {mode!r}")


def service_time(model: RecModel, spec: DeviceSpec, n_items: Any, mode: str = "auto",
                 where: str = "service") -> dict[str, Any]:
    """Seconds to serve one batch of ``n_items`` (array) on one replica, with its breakdown.

    Latency of a single batch: copy in, then embeddings (gathers + all-to-all) in parallel
    with the bottom MLP, then interaction and top MLP, plus one launch per kernel.
    """
    n = np.asarray(n_items, dtype=float)
    peak = spec.flops(model.mlp_precision, where=where)
    pl = placement(model, spec, mode, where)
    dt = BYTES[model.embedding_dtype]
    gather = sum(t.count * t.pooling * t.dim for t in model.tables) * dt  # bytes per item
    pooled = sum(t.count * t.dim for t in model.tables) * dt
    ra_bw = spec.memory_bw_Bps * spec.eff_random_access
    host_bw = spec.host_link_Bps * spec.eff_random_access
    t_emb = n * gather * (pl.device / ra_bw + pl.host / host_bw)
    t_emb = t_emb + n * pooled / (spec.memory_bw_Bps * spec.eff_memory)
    if pl.shards > 1:
        bw = spec.scaleup_bw_Bps * spec.eff_comm
        t_a2a = n * pooled * pl.remote / bw + (pl.shards - 1) * spec.scaleup_latency_s
    else:
        t_a2a = np.zeros_like(n)

    eb = BYTES[model.mlp_precision]

    def gemm(m: Any, k: Any, n_: Any) -> Any:
        return gemm_time(m, k, n_, eb, peak, spec.eff_compute, spec.gemm_half_flop,
                         spec.memory_bw_Bps, spec.eff_memory)

    n_bottom = len(model.bottom_mlp)
    layers = model.mlp_layers()
    t_bottom = sum((gemm(n, a, b) for a, b in layers[:n_bottom]), np.zeros_like(n))
    t_top = sum((gemm(n, a, b) for a, b in layers[n_bottom:]), np.zeros_like(n))
    # the shared resources, for the pipelined period: HBM bytes and tensor-core FLOPs
    flops = sum((gemm_flops(n, a, b) for a, b in layers), np.zeros_like(n))
    hbm = sum((gemm_bytes(n, a, b, eb) for a, b in layers), np.zeros_like(n))
    ia = model.interaction
    kernels = 3.0 + len(model.tables) + len(layers)
    if ia.kind == "dot":
        # per item: (nf x dim) @ (dim x nf). Its inputs are the pooled vectors the embedding
        # stage just wrote (counted there; fused in tuned servers), so its own HBM traffic
        # is the upper-triangle output only.
        nf = model.n_tables + 1
        f_int = 2.0 * n * nf * nf * model.tables[0].dim
        out_bytes = n * nf * (nf - 1) / 2 * eb
        t_int = np.maximum((f_int + spec.gemm_half_flop) / (peak * spec.eff_compute),
                           out_bytes / (spec.memory_bw_Bps * spec.eff_memory))
        flops, hbm = flops + f_int, hbm + out_bytes
    elif ia.kind == "dcnv2":
        d = model.interaction_out()
        r = ia.low_rank
        if r:  # x (d) -> V^T (r) -> U (d)
            t_int = ia.cross_layers * (gemm(n, d, r) + gemm(n, r, d))
            flops = flops + ia.cross_layers * (gemm_flops(n, d, r) + gemm_flops(n, r, d))
            hbm = hbm + ia.cross_layers * (gemm_bytes(n, d, r, eb) + gemm_bytes(n, r, d, eb))
        else:
            t_int = ia.cross_layers * gemm(n, d, d)
            flops = flops + ia.cross_layers * gemm_flops(n, d, d)
            hbm = hbm + ia.cross_layers * gemm_bytes(n, d, d, eb)
        # x_{l+1} = x0 * (U V x_l + b) + x_l: read x0, the GEMM output and x_l, write x_{l+1}
        cross = ia.cross_layers * n * 4.0 * d * eb
        t_int = t_int + cross / (spec.memory_bw_Bps * spec.eff_memory)
        hbm = hbm + cross
        kernels += ia.cross_layers * (3 if r else 2)
    else:
        t_int = np.zeros_like(n)
    t_copy = n * (model.dense_features * DENSE_BYTES + model.lookups_per_item
                  * model.index_bytes) / spec.host_link_Bps
    t_launch = kernels * spec.kernel_overhead_s + np.zeros_like(n)
    front = (t_emb + t_a2a + t_bottom if model.serial_kernels
             else np.maximum(t_emb + t_a2a, t_bottom))  # one stream: no overlap
    total = t_copy + front + t_int + t_top + t_launch
    # HBM time of the whole batch: gathers at the random-access rate, the pooled outputs and
    # every GEMM's and elementwise kernel's tensors at the streaming rate
    hbm_s = t_emb + hbm / (spec.memory_bw_Bps * spec.eff_memory)
    math_s = flops / (peak * spec.eff_compute)
    return {"total_s": total, "copy_s": t_copy, "embedding_s": t_emb, "all_to_all_s": t_a2a,
            "bottom_mlp_s": t_bottom, "interaction_s": t_int, "top_mlp_s": t_top,
            "launch_s": t_launch, "hbm_s": hbm_s, "math_s": math_s,
            "hit_onchip": pl.onchip, "hit_device": pl.device,
            "host_fraction": pl.host, "shards": pl.shards, "placement": pl.mode,
            "serial": model.serial_kernels}


def offline_period(parts: dict[str, Any]) -> Any:
    """Per-batch period with batches in flight (offline, or a busy server's pipeline):
    copies, gathers and GEMMs of consecutive batches overlap on separate streams and copy
    engines, so the busiest shared resource sets the pace: the host link (copies), HBM
    (gathers, pooled vectors, every kernel's tensors), the tensor cores (all FLOPs), the
    scale-up link (all-to-all) and each stage's own roofline time; launches do not overlap.

    A model served on one compute stream (``serial_kernels``) overlaps only its copies
    (their own streams and copy engines) with the kernels, which run one after another, each
    at its own roofline: ``max(copy, embeddings + all-to-all + bottom MLP + interaction +
    top MLP) + launches``."""
    compute = parts["bottom_mlp_s"] + parts["interaction_s"] + parts["top_mlp_s"]
    memory = parts["embedding_s"] + parts["all_to_all_s"]
    if parts.get("serial", False):
        return np.maximum(parts["copy_s"], memory + compute) + parts["launch_s"]
    shared = np.maximum(np.maximum(parts["hbm_s"], parts["math_s"]), parts["all_to_all_s"])
    return (np.maximum(np.maximum(np.maximum(parts["copy_s"], memory), compute), shared)
            + parts["launch_s"])


def max_throughput(model: RecModel, spec: DeviceSpec, max_batch: int, mode: str = "auto"
                   ) -> tuple[float, int]:
    """Offline items/s: the best batch size up to ``max_batch`` with overlapped batches."""
    n = np.unique(np.geomspace(1, max_batch, 256).astype(int)).astype(float)
    tput = n / offline_period(service_time(model, spec, n, mode))
    i = int(np.argmax(tput))
    return float(tput[i]), int(n[i])


# Batches resident at once in the offline pipeline: one being copied in, one computing,
# one whose results are copied out (assumption: triple buffering, as TensorRT harnesses).
BATCHES_IN_FLIGHT = 3


def bytes_per_item(model: RecModel) -> float:
    """Device memory one item of a batch holds while in flight: its indices and dense
    features, its gathered and pooled embedding vectors, and the two widest activations of
    the MLPs/interaction (input and output of the largest layer)."""
    dt = BYTES[model.embedding_dtype]
    eb = BYTES[model.mlp_precision]
    inputs = model.dense_features * DENSE_BYTES + model.lookups_per_item * model.index_bytes
    gathered = sum(t.count * t.pooling * t.dim for t in model.tables) * dt
    pooled = sum(t.count * t.dim for t in model.tables) * dt
    widest = max(a + b for a, b in model.mlp_layers())
    return inputs + gathered + pooled + widest * eb


def batch_memory_bound(model: RecModel, spec: DeviceSpec, mode: str = "auto",
                       where: str = "service") -> int:
    """Largest batch whose :data:`BATCHES_IN_FLIGHT` copies fit in the device memory left
    by the embeddings held there (their placement), the MLP weights and the runtime."""
    pl = placement(model, spec, mode, where)
    resident = model.embedding_bytes / pl.shards if pl.mode != "host" else (
        spec.memory_bytes * EMBEDDING_MEMORY_FRACTION)
    weights = sum(a * b for a, b in model.mlp_layers()) * BYTES[model.mlp_precision]
    free = spec.memory_bytes - resident - weights - RUNTIME_RESERVE_BYTES
    per = BATCHES_IN_FLIGHT * bytes_per_item(model)
    return max(int(free // per), 1)


def offline(model: RecModel, spec: DeviceSpec, mode: str = "auto", where: str = "service"
            ) -> dict[str, Any]:
    """Offline throughput: the batch size that maximises items/s among those whose
    in-flight batches fit in device memory (:func:`batch_memory_bound`), with the period
    breakdown at that batch."""
    bound = batch_memory_bound(model, spec, mode, where)
    tput, best = max_throughput(model, spec, bound, mode)
    parts = service_time(model, spec, np.array([float(best)]), mode, where)
    flat = {k: (float(np.asarray(v).ravel()[0]) if k.endswith("_s") else v)
            for k, v in parts.items()}
    return {"items_per_s": tput, "batch_items": best, "batch_memory_bound_items": bound,
            "period_s": float(np.asarray(offline_period(parts)).ravel()[0]),
            "latency_s": flat["total_s"], "breakdown": flat}

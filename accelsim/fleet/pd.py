"""Prefill/decode disaggregation as a fleet option (DistServe, Zhong et al. OSDI 2024,
arXiv 2401.09670; Splitwise, Patel et al. ISCA 2024, arXiv 2311.18677).

A chatbot block's ``disaggregation: {pairs, kv_transfer}`` offers each fleet *units* of
``p`` prefill replicas on one device type and ``q`` decode replicas on another (or the
same), each replica ``tp`` x the block's ``dp`` devices. A unit's requests/s at the SLO is
the LLM simulator's capacity search on that pool (:func:`accelsim.llm.sim.capacity` on a
disaggregated job: the prefill pool computes each prompt and its first token, the KV cache
crosses ``kv_transfer`` in ``prompt x KV bytes per token x tp_decode / (link bandwidth x
min(tp) ) + latency`` (:func:`accelsim.llm.pool.kv_transfer_s`), then the decode pool
produces the rest), times the smaller of the two devices' shares of replicas up.

Ratios: ``ratio: [p, q]``, or by default the two whole ratios around the balance
``q / p = r_prefill / r_decode``, with ``r_prefill = 1 / (t_linear(full batch) / full x
prompt + c_attention x prompt (prompt + 1) / 2)`` requests/s of a prefill replica kept busy
and ``r_decode`` a decode replica's saturated requests/s (its decode steps only) at the
block's mean lengths; each ratio is one column of the routing programme
(:func:`accelsim.fleet.routing.route`), which takes a unit's devices from both types'
units, so a fleet uses a pairing only where it serves the demand with fewer (worth-weighed)
units than colocated replicas, and never serves less with it than without. ``optimize`` and
``plan`` buy units as MILP columns (:func:`accelsim.optimize.problem.pd_columns`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from accelsim.errors import AccelsimError, Problem


@dataclass(frozen=True)
class PDUnit:
    """One pairing at one ratio: devices a unit takes of each type, its requests/s at the
    SLO (replicas up counted), the mean KV transfer and what the search said."""

    prefill: str  # device reference
    decode: str
    p: int
    q: int
    prefill_devices: int
    decode_devices: int
    rps: float
    kv_transfer_ms: float
    note: str

    @property
    def label(self) -> str:
        return f"PD {self.p}x{self.prefill_devices // max(self.p, 1)} {self.prefill}" \
               f" + {self.q}x{self.decode_devices // max(self.q, 1)} {self.decode}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pd_job(spec: Any, prefill: str, decode: str, p: int, q: int, tp_a: int, tp_b: int,
           kv_transfer: str) -> Any:
    """The disaggregated LLM job of one unit (rate 1/s: the search sets it), each side in
    its device's weight format (:func:`accelsim.workloads.llm_spec.device_weights`)."""
    from accelsim.llm.job import LLMJob
    from accelsim.workloads.llm_spec import device_stack, device_weights

    eng = spec.engine.model_dump()

    def side(device: str, tp: int, count: int, role: str) -> dict[str, Any]:
        out = {**eng, "weights": device_weights(spec, device), "device": device,
               "model": spec.model, "tp": tp, "dp": spec.dp, "count": count, "role": role}
        if spec.stacks:  # the block's stack for the device (by profile name)
            from accelsim.devices import load_device

            stack = device_stack(spec, load_device(device).name)
            if stack is not None:
                out["stack"] = stack
        return out

    return LLMJob.model_validate({
        "replicas": [side(prefill, tp_a, p, "prefill"), side(decode, tp_b, q, "decode")],
        "arrivals": {"rate_qps": 1.0}, "kv_transfer": kv_transfer,
        "prompt_tokens": spec.prompt_tokens.model_dump(),
        "output_tokens": spec.output_tokens.model_dump(), "slo": spec.slo.model_dump(),
        "sim": {"requests": spec.sim.requests, "warmup": spec.sim.warmup,
                "seed": spec.sim.seed, "replications": spec.sim.replications}})


def prefill_rps(rm: Any, prompt: float) -> float:
    """Requests/s of a prefill replica kept busy: one over a prompt's share of a full
    iteration's linear layers plus its attention (module formula)."""
    full = rm.max_batched_tokens
    per = float(rm.linear_s[full]) / full * prompt + rm.c_pf * prompt * (prompt + 1) / 2
    return 1.0 / per if per > 0 else math.inf


def decode_rps(rm: Any, prompt: float, output: float) -> float:
    """Requests/s of a decode replica kept full: its batch of sequences decoding together
    at the mean context (no prefill), ``output`` tokens each."""
    seqs = max(1, min(rm.max_seqs, int(rm.kv_tokens // max(prompt + output, 1.0)),
                      rm.max_batched_tokens))
    step = rm.decode_step_s(seqs, prompt + output / 2)
    return seqs * rm.tokens_per_step / step / output


def ratios(r: float) -> list[tuple[int, int]]:
    """The two whole ``(p, q)`` around ``q / p = r`` (one of them 1)."""
    if r >= 1:
        return sorted({(1, max(1, math.floor(r))), (1, math.ceil(r))})
    inv = 1.0 / r
    return sorted({(max(1, math.floor(inv)), 1), (math.ceil(inv), 1)})


def _smallest(spec: Any, device: Any, file: str, tp: int | None) -> tuple[int, Any]:
    from accelsim.workloads.llm_spec import replica_sizes

    spec_tp = spec.model_copy(update={"tp": tp}) if tp else spec
    return replica_sizes(spec_tp, device, file)[0]


def evaluate_pair(spec: Any, i: int, profiles: dict[str, Any], file: str) -> list[PDUnit]:
    """Every ratio of ``spec.disaggregation.pairs[i]`` searched at the SLO (cached like a
    device evaluation: :mod:`accelsim.cache`, kind ``pd-unit``); a pairing the simulator
    refuses (a replica that does not fit) gives no unit."""
    from accelsim import cache, refs
    from accelsim.llm.pool import models
    from accelsim.llm.sim import capacity
    from accelsim.workloads.llm_spec import mean_lengths

    dis = spec.disaggregation
    pair = dis.pairs[i]
    a, b = profiles[pair.prefill], profiles[pair.decode]
    where = f"workloads.chatbot.disaggregation.pairs[{i}]"
    try:
        tp_a, rm_a = _smallest(spec, a, file, pair.prefill_tp)
        tp_b, rm_b = _smallest(spec, b, file, pair.decode_tp)
    except AccelsimError:
        return []
    prompt, output = mean_lengths(spec)
    todo = [tuple(pair.ratio)] if pair.ratio else ratios(
        prefill_rps(rm_a, prompt) / decode_rps(rm_b, prompt, output))
    up = min(spec.availability(a), spec.availability(b))
    model_digest = cache.file_digest(refs.find(spec.model, "models", family="training",
                                               what="training model"))
    out = []
    for p, q in todo:
        job = pd_job(spec, pair.prefill, pair.decode, int(p), int(q), tp_a, tp_b,
                     dis.kv_transfer)
        k = cache.key("pd-unit", {"job": job.model_dump(mode="json"), "a": asdict(a.spec),
                                  "b": asdict(b.spec), "model": model_digest})
        hit = cache.get("pd-unit", k)
        if isinstance(hit, PDUnit):
            out.append(hit)
            continue
        from accelsim.llm.pool import kv_transfer_s

        try:  # on the given profiles (an --anchor's, a draw's), not the files'
            c = capacity(job, where, models(job, where, {pair.prefill: a.spec,
                                                         pair.decode: b.spec}))
        except AccelsimError:
            continue
        ship = float(kv_transfer_s(job, rm_a, rm_b, _mean_prompt(prompt)).mean())
        unit = PDUnit(pair.prefill, pair.decode, int(p), int(q), int(p) * rm_a.devices,
                      int(q) * rm_b.devices, c["max_rps_at_slo"] * up, 1e3 * ship,
                      f"{c['max_rps_at_slo']:.3g} req/s per unit "
                      f"[{c['ci95_low_rps']:.3g}, {c['ci95_high_rps']:.3g}]; tp{tp_a}/tp{tp_b}"
                      f" dp{spec.dp}; KV {1e3 * ship:.1f} ms at the mean prompt")
        cache.put("pd-unit", k, unit)
        out.append(unit)
    return out


def _mean_prompt(prompt: float) -> Any:
    import numpy as np

    return np.array([prompt])


def pd_tasks(workloads: dict[str, Any]) -> list[tuple[str, int]]:
    """``(workload, pair index)`` of every disaggregated block's pairings."""
    return [(name, i) for name, spec in workloads.items()
            if getattr(spec, "disaggregation", None) is not None
            for i in range(len(spec.disaggregation.pairs))]


def pd_problems(sc: Any, file: str) -> list[Problem]:
    """A pairing's devices must be pool devices of the scenario."""
    pool = sc.pool_of()
    out = []
    for name, spec in sc.workloads.items():
        dis = getattr(spec, "disaggregation", None)
        for i, pair in enumerate(dis.pairs if dis is not None else []):
            for side in ("prefill", "decode"):
                ref = getattr(pair, side)
                if ref not in pool:
                    out.append(Problem(file, f"workloads.{name}.disaggregation.pairs[{i}]."
                                       f"{side}", f"'{ref}' is in no budget pool; expected "
                                       "one of: " + ", ".join(pool)))
    return out

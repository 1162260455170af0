"""Prefill/decode units (:mod:`accelsim.fleet.pd`) at a sweep point or an uncertainty draw.

A PD unit at a point is its full evaluation's own search, guided by the base's answer: the
unit keeps the base's shape (pairing, ratio ``p:q``, each side's replica size), its
replicas' cost models are built from the point's device profiles (the prefill side's and
the decode side's draws move independently), and its requests/s at the SLO is
:func:`accelsim.llm.search.search` on that disaggregated job with ``ratio`` = the base's
answer over its saturated rate (``_cap``: both pools kept busy at the draws' mean
lengths). The guided bisection (:func:`accelsim.llm.search._guided`) first probes the rates
its plain path would take around ``ratio x`` the point's saturated rate and infers the
verdicts those settle: the plain search's answer, from fewer probes (a disaggregated probe
is a whole run: 0.2-0.5 s on the seed's chatbot simulation against 0.4-0.6 s unguided).
Scaling the base's answer by the saturated rates instead is off by up to 5 % on the seed's
draws (it misses the SLO's share, :mod:`accelsim.workloads.llm_fast`), so it only guides.
Times the smaller of the two devices' shares of replicas up, as the full evaluation. A
unit whose devices' performance sections are the base's is the base unit, unsearched; one
is searched once per pair of them.

Held to the full evaluation (:func:`accelsim.fleet.pd.evaluate_pair` on the point's
profiles) by ``tests/fleet/test_pd_fast.py``: equal at the base point, within 2 % away
from it (docs/model-fleets.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from accelsim.errors import AccelsimError
from accelsim.fleet.pd import PDUnit, _mean_prompt, evaluate_pair, pd_job


@dataclass
class _Unit:
    """One base unit and what a point needs to search it again."""

    unit: PDUnit
    job: Any
    ratio: float  # its answer over its saturated rate at the base (0: none met)


@dataclass
class PDFast:
    """Every disaggregated block's base units (by the block's JSON), built on first use
    from the full evaluation (:func:`accelsim.fleet.pd.evaluate_pair`, cached), and a
    point's units."""

    profiles: dict[str, Any]  # the base devices
    file: str = "scenario"
    _base: dict[str, list[_Unit]] = field(default_factory=dict)
    _seen: dict[Any, PDUnit] = field(default_factory=dict)
    _keys: dict[str, str] = field(default_factory=dict)  # the base devices' perf_keys

    def _units(self, spec: Any, key: str | None = None) -> list[_Unit]:
        """The block's base units (``key``: the block's JSON, made here if not given)."""
        from accelsim.llm.pool import models

        key = key or spec.model_dump_json()
        if key not in self._base:
            out = []
            for i in range(len(spec.disaggregation.pairs)):
                for u in evaluate_pair(spec, i, self.profiles, self.file):
                    tp_a = u.prefill_devices // (u.p * spec.dp)
                    tp_b = u.decode_devices // (u.q * spec.dp)
                    job = pd_job(spec, u.prefill, u.decode, u.p, u.q, tp_a, tp_b,
                                 spec.disaggregation.kv_transfer)
                    rms = models(job, self.file, self._specs(u, self.profiles))
                    up = min(spec.availability(self.profiles[u.prefill]),
                             spec.availability(self.profiles[u.decode]))
                    sat = _saturated(job, rms, self.file)
                    out.append(_Unit(u, job, u.rps / up / sat if up > 0 and sat > 0 else 0.0))
            self._base[key] = out
        return self._base[key]

    @staticmethod
    def _specs(u: PDUnit, profiles: dict[str, Any]) -> dict[str, Any]:
        return {u.prefill: profiles[u.prefill].spec, u.decode: profiles[u.decode].spec}

    def warm(self, sc: Any) -> None:
        """Every disaggregated block's base units, built now (before worker processes
        fork)."""
        for spec in sc.workloads.values():
            if getattr(spec, "disaggregation", None) is not None:
                self._units(spec)

    def units(self, spec: Any, profiles: dict[str, Any], dkeys: dict[str, str] | None = None
              ) -> list[PDUnit]:
        """The block's units on the point's ``profiles`` (module docstring); a unit whose
        replicas no longer fit serves 0. ``dkeys``: each device's performance sections
        (:data:`accelsim.devices.PERF_SECTIONS`, the fast evaluator's key; made
        here if not given): a unit is searched once per pair of them, and not at all on
        the base's."""
        dkeys = dkeys or perf_keys(profiles)
        if not self._keys:
            self._keys = perf_keys(self.profiles)
        out = []
        skey = spec.model_dump_json()
        for i, b in enumerate(self._units(spec, skey)):
            u = b.unit
            if all(dkeys[r] == self._keys[r] for r in (u.prefill, u.decode)):
                out.append(u)
                continue
            key = (skey, i, dkeys[u.prefill], dkeys[u.decode])
            got = self._seen.get(key)
            if got is None:
                got = self._search(spec, b, profiles)
                if len(self._seen) > 10_000:
                    self._seen.clear()
                self._seen[key] = got
            up = min(spec.availability(profiles[u.prefill]),
                     spec.availability(profiles[u.decode]))
            out.append(replace(got, rps=got.rps * up))
        return out

    def _search(self, spec: Any, b: _Unit, profiles: dict[str, Any]) -> PDUnit:
        """The unit's requests/s at the SLO on the point's devices (replicas up not yet
        counted): the full search, guided by the base's answer over its saturated rate."""
        from accelsim.llm.pool import kv_transfer_s, models
        from accelsim.llm.search import search
        from accelsim.workloads.llm_spec import mean_lengths

        u = b.unit
        prompt, _ = mean_lengths(spec)
        try:
            rms = models(b.job, self.file, self._specs(u, profiles))
            c = search(b.job, self.file, rms, ratio=b.ratio or None)
            ship = float(kv_transfer_s(b.job, rms[0], rms[1], _mean_prompt(prompt)).mean())
        except AccelsimError as e:
            return replace(u, rps=0.0, note=e.problems[0].message)
        assert c is not None
        return replace(u, rps=c["max_rps_at_slo"], kv_transfer_ms=1e3 * ship,
                       note=f"{c['max_rps_at_slo']:.3g} req/s per unit [{c['ci95_low_rps']:.3g}"
                            f", {c['ci95_high_rps']:.3g}] (fast path: the search guided by "
                            "the base's answer)")


def _saturated(job: Any, rms: list[Any], file: str) -> float:
    """The mean over the job's replications of its pools' saturated requests/s (the
    search's ``_cap``, which its guide multiplies)."""
    from accelsim.llm.search import _cap
    from accelsim.llm.sim import draw

    caps = [_cap(job, rms, draw(job, job.sim.seed + rep, file))
            for rep in range(job.sim.replications)]
    return sum(caps) / len(caps)


def perf_keys(profiles: dict[str, Any]) -> dict[str, str]:
    """Each device's performance sections as JSON (what a PD unit's search reads)."""
    from accelsim.devices import PERF_SECTIONS

    return {ref: p.model_dump_json(include=PERF_SECTIONS) for ref, p in profiles.items()}


def point_units(fast: PDFast, sc: Any, profiles: dict[str, Any],
                dkeys: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Each disaggregated workload's PD units at a point, as the dicts the device rows hold
    (``pd_units`` on the prefill device's row, as
    :func:`accelsim.fleet.evaluation.evaluate_full` puts them)."""
    return {name: [u.to_dict() for u in fast.units(spec, profiles, dkeys)]
            for name, spec in sc.workloads.items()
            if getattr(spec, "disaggregation", None) is not None}


def attach(rows: list[dict[str, Any]], ref: str, units: dict[str, list[dict[str, Any]]]
           ) -> list[dict[str, Any]]:
    """``rows`` (one device's priced rows), each disaggregated workload's with the units
    whose prefill side is ``ref``."""
    for r in rows:
        if r["workload"] in units:
            r["pd_units"] = [u for u in units[r["workload"]] if u["prefill"] == ref]
    return rows

"""What the serving fleet's idle hours are worth to training (:mod:`accelsim.sharing`) for one
fleet: per device type, the serving units allocated to each capacity workload with a daily
profile lend what each hour leaves idle to a preemptible training job of the scenario's first
training workload, at that device's per-device training throughput (goodput included) and
the workload's checkpoint and restart costs; hours with fewer idle units than the
scenario's ``sharing_min_devices`` lend nothing."""

from __future__ import annotations

from typing import Any

from accelsim import sharing, units, workloads
from accelsim.fleet.scenario import Scenario


def resize_costs(spec: Any) -> tuple[float, float]:
    """Seconds to write a training workload's checkpoint (:func:`checkpoint_s`, the goodput
    model's) and to restart from it; the checkpoint kept per model, precision and bandwidth."""
    from accelsim.transformer.model import load_model
    from accelsim.transformer.params import model_params
    from accelsim.workloads.training import checkpoint_s

    key = spec.model_dump_json(include={"model", "precision", "resilience"})
    if key not in _CHECKPOINT_S:
        _CHECKPOINT_S[key] = checkpoint_s(spec, model_params(load_model(spec.model)))
    return _CHECKPOINT_S[key], spec.resilience.restart_s


_CHECKPOINT_S: dict[str, float] = {}


def training_workload(sc: Scenario) -> str | None:
    """The workload loaned capacity trains: the scenario's first training block."""
    return next((w for w, s in sc.workloads.items() if workloads.of(s).kind == "training"),
                None)


def fleet_loan(sc: Scenario, alloc: dict[str, dict[str, float]],
               throughput: dict[str, dict[str, float]]) -> dict[str, Any]:
    """``loan_*`` metrics of a fleet: training tokens a day the serving troughs give, the
    device-hours lent and idle, the resizes a day; ``tokens_per_s`` is the mean rate."""
    tw = training_workload(sc)
    out: dict[str, Any] = {"loan_training_tokens_per_day": 0.0,
                           "loan_device_hours_per_day": 0.0,
                           "loan_idle_device_hours_per_day": 0.0,
                           "loan_resizes_per_day": 0, "workload": tw, "tokens_per_s": 0.0}
    if tw is None:
        return out
    spec = sc.workloads[tw]
    ckpt, restart = resize_costs(spec)
    profiled = {w: s.daily_profile for w, s in sc.workloads.items()
                if workloads.of(s).role == "capacity" and getattr(s, "daily_profile", None)}
    for d, a in alloc.items():
        thr = throughput[d].get(tw, 0.0)
        pools = [(a.get(w, 0.0), p) for w, p in profiled.items() if a.get(w, 0.0) > 0]
        if thr <= 0 or not pools:
            continue
        loan = sharing.scaled_loan(sharing.free_units(pools), ckpt, restart,
                                   sc.sharing_min_devices)
        out["loan_training_tokens_per_day"] += thr * loan.device_s
        out["loan_device_hours_per_day"] += loan.device_s / units.HOUR
        out["loan_idle_device_hours_per_day"] += float(loan.free.sum())
        out["loan_resizes_per_day"] += loan.resizes
    out["tokens_per_s"] = out["loan_training_tokens_per_day"] / units.DAY
    return out


def unit_loan_rates(sc: Scenario, throughput: dict[str, dict[str, float]]
                    ) -> tuple[str | None, dict[str, dict[str, float]]]:
    """Training tokens/s (a day's mean) one unit of device ``d`` serving workload ``w`` lends
    through ``w``'s troughs: ``thr_d x loan(1 unit of w).device_s / day``. Linear in units
    (:func:`accelsim.sharing.scaled_loan` is homogeneous), so the optimiser credits it per
    unit; a lower bound of :func:`fleet_loan` (pools of one device share one job, whose
    resizes cost no more than each pool's alone), ignoring ``sharing_min_devices`` (not
    linear: a fleet whose idle hours fall below it lends less than credited)."""
    tw = training_workload(sc)
    if tw is None:
        return None, {}
    ckpt, restart = resize_costs(sc.workloads[tw])
    profiled = {w: s.daily_profile for w, s in sc.workloads.items()
                if workloads.of(s).role == "capacity" and getattr(s, "daily_profile", None)}
    per_unit = {w: sharing.scaled_loan(sharing.free_units([(1.0, p)]), ckpt, restart).device_s
                / units.DAY for w, p in profiled.items()}
    return tw, {d: {w: thr.get(tw, 0.0) * v for w, v in per_unit.items()
                    if thr.get(tw, 0.0) > 0 and v > 0}
                for d, thr in throughput.items()}

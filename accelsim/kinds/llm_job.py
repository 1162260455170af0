"""``llm-job``: LLM chatbot serving (:mod:`accelsim.llm`), run by ``serve-llm``; a sweep point
is simulated at full fidelity (and its capacity at the SLO searched when a metric asks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelsim.kinds.base import Kind, Sweepable, register, short_run_names

# What the capacity search adds (:func:`accelsim.llm.sim.capacity`).
CAPACITY_KEYS = ("max_rps_at_slo", "ci95_low_rps", "ci95_high_rps")


def from_data(data: dict[str, Any], path: str | Path, where: str, check: bool = True) -> Any:
    from accelsim.llm.load import job_from

    return job_from(data, path, where, check)


def devices(job: Any) -> list[str]:
    return list(dict.fromkeys(r.device for r in job.replicas))


def input_files(job: Any) -> list[Path]:
    from accelsim import refs, stacks

    files = [refs.find(r, "devices") for r in devices(job)]
    files += [refs.find(m, "models", family="training", what="training model")
              for m in dict.fromkeys(r.model for r in job.replicas)]
    if job.arrivals.trace:
        files.append(Path(job.arrivals.trace))
    for r in job.replicas:  # each replica's serving stack (else its vendor's), with its bases
        files += [f for f in stacks.job_files(r.stack, r.device) if f not in files]
    return files


def evaluate(job: Any, profiles: dict[str, Any], metrics: list[str], where: str, state: Any,
             reasons: list[str]) -> dict[str, Any]:
    """The run's TTFT, TPOT, throughput and goodput at the job's rate (and, when a metric
    asks, the capacity at the SLO); an SLO the hardware cannot meet is a reason."""
    from accelsim.llm.sim import capacity, models, simulate

    rms = models(job, where, specs={ref: p.spec for ref, p in profiles.items()})
    out = dict(simulate(job, where, rms=rms).metrics)
    if not out["stable"]:
        reasons.append(f"unstable: offered {out['offered_rps']:.4g} requests/s, served "
                       f"{out['throughput_rps']:.4g}/s; waits keep growing")
    if any(m.startswith(CAPACITY_KEYS) for m in metrics):
        c = capacity(job, where, rms)
        if "reason" in c:
            reasons.append(c["reason"])
        out.update({k: c[k] for k in CAPACITY_KEYS})
    return {k: v for k, v in out.items() if isinstance(v, (int, float, bool))}


register(Kind("llm-job", "accelsim.llm.job:LLMJob", "prompt_tokens", "LLM serving job",
              from_data, command="serve-llm", input_files=input_files, devices=devices,
              sweep=Sweepable(evaluate, short_run_names(from_data, evaluate,
                                                         lambda: CAPACITY_KEYS))))

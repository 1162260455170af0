"""``accelsim serve-llm``: LLM chatbot serving (TTFT, TPOT, goodput, capacity, cost)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from accelsim.cli.common import app, console, emit_json, infeasible, user_errors
from accelsim.errors import AccelsimError
from accelsim.report import (
    table,
)


@app.command("serve-llm")
@user_errors
def serve_llm(
    job_file: Annotated[Path, typer.Argument(help="LLM serving job YAML.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    engine: Annotated[str | None, typer.Option(
        help="fast | simpy (default: the job's sim.engine)")] = None,
    find_capacity: Annotated[bool, typer.Option(
        "--capacity", help="Also search the highest request rate meeting the TTFT and "
        "TPOT SLO at slo.attainment.")] = False,
) -> None:
    """TTFT, TPOT, throughput, goodput and cost of a chatbot serving setup."""
    from accelsim.kinds import require
    from accelsim.llm.sim import (
        SECONDS_PER_REQUEST,
        capacity,
        describe,
        models,
        simulate,
        usd_per_hour,
    )

    if engine not in (None, "fast", "simpy"):
        raise AccelsimError.single(str(job_file), "--engine",
                                   f"expected fast or simpy, got {engine!r}")
    job = require(job_file, "llm-job")
    rms = models(job, str(job_file))
    est = job.sim.requests * SECONDS_PER_REQUEST * len(job.replicas)
    with Console(stderr=True).status(f"simulating {job.sim.requests:,} requests (about "
                                     f"{est:.0f} s)" if est > 5 else "simulating"):
        res = simulate(job, str(job_file), engine, usd_per_hour(job, rms), rms)
    out = res.to_dict()
    out["replica_kinds"] = describe(rms)
    if find_capacity:
        with Console(stderr=True).status("searching the highest rate that meets the SLO"):
            out.update(capacity(job, str(job_file), rms))
    if as_json:
        emit_json(out)
    else:
        console.print(f"[bold]{job_file}: {job.n_replicas} replica(s), engine "
                      f"{engine or job.sim.engine}[/bold]")
        if not out["stable"]:
            console.print("[red]unstable[/red]: waits keep growing")
        console.print(table("replica kinds", out["replica_kinds"]))
        keys = [k for k in out if k not in ("replicas", "replica_kinds", "per_replication_rps")]
        console.print(table("", [{"metric": k, "value": out[k]} for k in keys]))
    if not out["stable"]:
        infeasible(job_file, "arrivals.rate_qps" if job.arrivals.rate_qps else "arrivals.trace",
                   f"offered {out['offered_rps']:.4g} requests/s, served "
                   f"{out['throughput_rps']:.4g}/s: waits keep growing (the TTFT gains "
                   f"{out['ttft_growth']:.3g} s per second of arrivals; unstable); expected a "
                   "rate below capacity or more replicas")



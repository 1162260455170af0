"""``accelsim serve``: recommendation serving (tail latency, capacity at the SLO, offline
throughput)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from accelsim.cli.common import app, console, count_bar, emit_json, infeasible, user_errors
from accelsim.errors import AccelsimError
from accelsim.outputs import check_file, writing
from accelsim.report import (
    table,
)


@app.command()
@user_errors
def serve(
    job_file: Annotated[Path, typer.Argument(help="Serving job YAML.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    engine: Annotated[str | None, typer.Option(
        help="auto | simpy | fast (default: the job's sim.engine)")] = None,
    find_capacity: Annotated[bool, typer.Option(
        "--capacity", help="Also search the highest rate meeting slo.p99_ms.")] = False,
    trace_csv: Annotated[Path | None, typer.Option(
        "--trace-out", help="Write the per-request trace to this CSV.")] = None,
    offline_mode: Annotated[bool, typer.Option(
        "--offline", help="Offline throughput instead: every query available at once, the "
        "batch that maximises throughput within device memory.")] = False,
) -> None:
    """Tail latency, throughput and utilisation of a recommendation-serving setup."""
    from accelsim.kinds import require
    from accelsim.serving import capacity, simulate
    from accelsim.serving.service import build_service

    if engine not in (None, "auto", "simpy", "fast"):
        raise AccelsimError.single(str(job_file), "--engine",
                                   f"expected auto, simpy or fast, got {engine!r}")
    job = require(job_file, "serve-job")
    if offline_mode:
        _serve_offline(job_file, job, as_json)
        return
    if trace_csv is not None:
        check_file(trace_csv, "--trace-out")
    sm = build_service(job, str(job_file))
    with _requests_bar(job.sim.requests) as update:
        res = simulate(job, engine, keep_trace=trace_csv is not None, service=sm,
                       progress=update)
    out = res.to_dict()
    if sm.breakdown:
        out["service_breakdown_at_max_batch"] = sm.breakdown
    if find_capacity:
        with Console(stderr=True).status("searching the highest rate that meets the SLO"):
            out.update(capacity(job, engine, service=sm))
    if trace_csv is not None and res.trace is not None:
        with writing(trace_csv, "--trace-out"):
            res.trace.to_csv(trace_csv, index=False)
    m = res.metrics
    if as_json:
        emit_json(out)
    else:
        _print_serve(job_file, job, res, out)
    if not m["stable"] and m.get("completed", 1) == 0:
        infeasible(job_file, "deadline_ms", f"{m['message']}; expected a longer deadline, a "
                   "lower rate or more replicas")
    if not m["stable"]:
        infeasible(job_file, "arrivals.rate_qps",
                   f"offered {m['offered_qps']:.4g} qps exceeds the capacity of "
                   f"{m['capacity_qps']:.4g} qps (unstable); expected a rate below capacity "
                   f"or more replicas")


@contextlib.contextmanager
def _requests_bar(n: int) -> Iterator[Callable[[int, int], None]]:
    """Simulated requests on stderr with the time left, for a run of more than 5 M requests
    (seconds at least; a streamed run reports its chunks)."""
    with count_bar("requests", n <= 5_000_000) as bar:
        task = bar.add_task("requests", total=n)
        yield lambda done, total: bar.update(task, completed=done)


def _serve_offline(job_file: Path, job: Any, as_json: bool) -> None:
    """Offline throughput of every replica of a device-model job (items/s and queries/s)."""
    from accelsim.serving.sim import offline_job

    out = offline_job(job, str(job_file))
    if as_json:
        emit_json({k: v for k, v in out.items() if k != "model"})
        return
    console.print(f"[bold]{job_file}: offline, {out['model']}[/bold]: "
                  f"{out['items_per_s']:,.0f} items/s = {out['queries_per_s']:,.0f} queries/s "
                  f"of {out['mean_query_items']:.4g} items")
    console.print(table("per replica, at the batch that maximises throughput within memory",
                        [{k: v for k, v in r.items() if k != "breakdown"}
                         for r in out["devices"]]))


def _print_serve(job_file: Path, job: Any, res: Any, out: dict[str, Any]) -> None:
    m = res.metrics
    console.print(f"[bold]{job_file}: {job.n_replicas} replica(s), {job.routing}, "
                  f"engine {m['engine']}[/bold]")
    if not m["stable"]:
        console.print(f"[red]unstable[/red]: {m.get('message', 'waits keep growing')}; "
                      f"capacity {m['capacity_qps']:.4g} qps")
    keys = ["offered_qps", "capacity_qps", "throughput_qps", "utilization", "mean_latency_ms",
            "mean_wait_ms", "p50_ms", "p95_ms", "p99_ms", "p999_ms", "mean_batch_items",
            "mean_queue_len", "p99_queue_len", "dropped", "stable", "meets_slo",
            "max_qps_at_slo", "ci95_low_qps", "ci95_high_qps"]
    console.print(table("", [{"metric": k, "value": out[k]} for k in keys if k in out]))
    if len(res.replicas) > 1 and "utilization" in res.replicas:
        console.print(table("", res.replicas.to_dict(orient="records")))



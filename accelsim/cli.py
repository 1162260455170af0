"""The ``accelsim`` command line: parse, call the Python API, print. Nothing else lives here."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from accelsim import __version__
from accelsim.errors import AccelsimError
from accelsim.outputs import check_dir, check_file, writing
from accelsim.report import (
    device_tables,
    fleet_out,
    fleet_table,
    fmt_num,
    fmt_units,
    ranking_rule,
    table,
    uncertainty_tables,
)

app = typer.Typer(
    name="accelsim",
    help="What do we get for our money if we change the accelerator hardware?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
devices_app = typer.Typer(help="The device catalog.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")

# the terminal's width (80 when piped); wide tables split by columns (accelsim.report)
console = Console()
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """User errors print one line per problem on stderr and exit with code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AccelsimError as err:
            for problem in err.problems:
                typer.echo(str(problem), err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def infeasible(file: Path, field: str, message: str) -> None:
    """A valid input whose result is infeasible (does not fit, unstable): the result has been
    printed; say why in one line and exit with code 3."""
    typer.echo(f"{file}: {field}: {message}", err=True)
    raise typer.Exit(3)


def emit_json(obj: Any) -> None:
    """Strict JSON (no Infinity/NaN: null, with the reason in ``null_reasons``)."""
    from accelsim.report import strict_json

    clean = strict_json(json.loads(json.dumps(obj, default=_json_default)))
    sys.stdout.write(json.dumps(clean, indent=2, allow_nan=False) + "\n")


def _json_default(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"accelsim {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """accelsim: device profiles -> training and serving performance -> fleet cost."""


# ---------------------------------------------------------------- devices

@devices_app.command("list")
@user_errors
def devices_list(
    as_json: Annotated[bool, typer.Option("--json", help="Full profiles as a JSON list.")] = False,
) -> None:
    """The shipped device catalog."""
    from accelsim.devices import catalog

    profiles = catalog()
    if as_json:
        emit_json([p.model_dump(mode="json") for p in profiles.values()])
        return
    rows = []
    for p in profiles.values():
        c = p.compute
        rows.append({
            "device": p.name, "kind": p.kind, "from": p.available_from,
            "pool": p.supply_pool + ("*" if p.export_controlled else ""),
            "bf16 TFLOP/s": c.bf16_tflops.value,
            "fp8 TFLOP/s": c.fp8_tflops.value if c.fp8_tflops.supported else "-",
            "mem GiB": p.memory.memory_GiB.value,
            "mem GB/s": p.memory.memory_bandwidth_GBps.value,
            "scale-up GB/s": p.interconnect.scaleup_bandwidth_GBps.value,
            "TDP W": p.power.tdp_W.value, "price USD": p.cost.price_usd.value,
        })
    console.print(table("device catalog: dense peaks; * = export-controlled; "
                        "`accelsim devices show NAME` gives every field with its source", rows))


@devices_app.command("show")
@user_errors
def devices_show(
    name: Annotated[str, typer.Argument(help="Catalog name or path to a device YAML.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every field of one profile with its source and confidence."""
    from accelsim.devices import load_device

    p = load_device(name)
    if as_json:
        emit_json(p.model_dump(mode="json"))
        return
    console.print(f"[bold]{p.name}[/bold]  {p.vendor} {p.kind}, {p.process_node}, {p.year}; "
                  f"available from {p.available_from}; pool {p.supply_pool}; "
                  f"export-controlled: {p.export_controlled}  "
                  f"(identity: {p.identity.source}, {p.identity.confidence})")
    if p.description:
        console.print(p.description)
    rows = []
    for key, q in p.quantities().items():
        rng = f"[{fmt_num(q.range[0])}, {fmt_num(q.range[1])}]" if q.range else ""
        source = q.source + (f": {q.note}" if q.note else "")
        rows.append({"field": key, "value": q.value, "range": rng, "conf.": q.confidence,
                     "source (note)": source})
    console.print(table("fields", rows))
    if p.sources:
        console.print(table("sources", [{"key": k, "citation": v} for k, v in p.sources.items()]))


# ---------------------------------------------------------------- validate / schema

@app.command()
@user_errors
def validate(
    file: Annotated[Path, typer.Argument(help="Any accelsim YAML file.")],
    kind: Annotated[str | None, typer.Option(help="Kind of file; detected when omitted.")] = None,
) -> None:
    """Check any accelsim config file; one line per problem, exit code 2 when invalid."""
    from accelsim.schemas import validate_file

    k, _ = validate_file(file, kind)
    typer.echo(f"{file}: valid {k.name} ({k.description})")


@app.command()
@user_errors
def schema(kind: Annotated[str, typer.Argument(help="device, train-job, ...")]) -> None:
    """JSON Schema of a config kind, for editor autocompletion of YAML."""
    from accelsim.schemas import json_schema

    emit_json(json_schema(kind))


@app.command("validate-runs")
@user_errors
def validate_runs(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Run files (default: every file in configs/runs).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Predict published runs (cited data files) and compare; exit 1 past the tolerance."""
    from accelsim.kinds import require
    from accelsim.runs import validate_runs as run_all

    for f in files or []:
        require(f, "runs")  # a file of another kind says what it is
    results = run_all(list(files) if files else None)
    failed = [r for r in results if not r.within]
    if as_json:
        emit_json({"runs": [r.to_dict() for r in results], "failed": len(failed)})
    else:
        rows = [{"run": r.id, "published": r.published, "predicted": r.predicted,
                 "unit": r.unit, "error %": 100 * r.error, "within": r.within,
                 "how": r.detail} for r in results]
        errs = [abs(r.error) for r in results]
        console.print(table(f"published runs: mean |error| {100 * sum(errs) / len(errs):.1f} %, "
                            f"max {100 * max(errs):.1f} %; tolerance per file", rows))
    if failed:
        for r in failed:
            typer.echo(f"{r.file}: {r.id}: predicted {r.predicted:.4g} {r.unit}, published "
                       f"{r.published:.4g} ({100 * r.error:+.1f} %); expected within "
                       f"{100 * r.tolerance:.0f} %", err=True)
        raise typer.Exit(1)


# ---------------------------------------------------------------- training

def _layout_str(par: Any) -> str:
    return (f"tp={par.tp} pp={par.pp} dp={par.dp} cp={par.cp} ep={par.ep} "
            f"mb={par.micro_batch} v={par.virtual_stages} recompute={par.recompute} "
            f"zero={par.zero}")


def _print_train(res: Any, title: str) -> None:
    d = res.to_dict()
    rows = [{"metric": k, "value": d[k]} for k in (
        "step_time_s", "tokens_per_s", "model_tflops_per_device", "mfu", "hfu",
        "memory_per_device_gib", "device_memory_gib", "fits_memory")]
    rows += [{"metric": f"breakdown.{k}", "value": v} for k, v in res.breakdown.items()]
    console.print(f"[bold]{title}[/bold]")
    console.print(table("", rows))
    if not res.fits_memory:
        console.print(f"[yellow]does not fit: {res.memory_per_device_gib:.1f} GiB needed per "
                      f"device, {res.device_memory_gib:.1f} GiB available[/yellow]")


@app.command()
@user_errors
def train(
    job_file: Annotated[Path, typer.Argument(help="Training job YAML (device, model, layout).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    engine: Annotated[str, typer.Option(help="analytic | des (simpy pipeline schedule)")] = (
        "analytic"),
    ops: Annotated[bool, typer.Option("--ops", help="Also show one layer's operators: FLOPs, "
                                      "bytes, time, what bounds each.")] = False,
) -> None:
    """Step time, throughput, MFU and memory of one training job."""
    from accelsim.devices import load_device
    from accelsim.training import estimate, load_job

    job = load_job(job_file)
    device = load_device(job.device, where=str(job_file), field="device")
    res = estimate(job, device.spec, engine=engine, file=str(job_file))
    if as_json:
        emit_json(res.to_dict())
    else:
        _print_train(res, f"{job_file}: {job.model.name} on {job.parallelism.devices} x "
                          f"{job.device} ({_layout_str(job.parallelism)}, {engine})")
        if ops:
            console.print("[bold]one dense layer, forward, one micro-batch, one device[/bold]")
            console.print(table("", [{**o, "time_us": o["time_s"] * 1e6} for o in res.ops],
                                ["op", "flops", "bytes", "flop_per_byte", "time_us",
                                 "bound"]))
    if not res.fits_memory:
        infeasible(job_file, "parallelism",
                   f"needs {res.memory_per_device_gib:.1f} GiB per device, {job.device} has "
                   f"{res.device_memory_gib:.1f} GiB; expected a layout that fits (more "
                   f"devices, larger tp/pp, ZeRO, recompute)")


@app.command("train-search")
@user_errors
def train_search(
    model_file: Annotated[Path, typer.Argument(help="Model YAML (or a job; its model is used).")],
    device: Annotated[str, typer.Option(help="Catalog name or device YAML path.")],
    devices: Annotated[int, typer.Option(min=1, help="Number of devices.")],
    global_batch: Annotated[int | None, typer.Option(
        min=1, help="Sequences per step (default ~4 Mi tokens).")] = None,
    precision: Annotated[str, typer.Option(help="fp32 | bf16 | fp16 | fp8")] = "bf16",
    top: Annotated[int, typer.Option(min=1, help="Rows of the top-k table.")] = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The fastest parallel layout that fits in memory, with the top-k table."""
    from accelsim.devices import load_device
    from accelsim.precision import TRAIN_PRECISIONS
    from accelsim.training.search import search_layouts
    from accelsim.transformer.model import load_model

    if precision not in TRAIN_PRECISIONS:
        raise AccelsimError.single("train-search", "--precision",
                                   f"expected one of {', '.join(TRAIN_PRECISIONS)}, "
                                   f"got {precision!r}")
    model = load_model(model_file)
    profile = load_device(device, where="train-search", field="--device")
    res = search_layouts(model, profile.spec, devices, global_batch, precision)
    cols = ["tp", "pp", "dp", "cp", "ep", "micro_batch", "virtual_stages", "recompute", "zero",
            "step_time_s", "tokens_per_s", "mfu", "memory_per_device_gib"]
    # nothing fits: the layouts closest to fitting are the result
    shown = res.records(cols, top, fitting=res.best is not None)
    if as_json:
        best = None
        if res.best is not None:
            from accelsim.training import estimate

            best = estimate(res.best, res.spec).to_dict()
        emit_json({"evaluated": res.evaluated, "feasible": res.n_fitting, "best": best,
                   "top": shown})
    elif res.best is None:
        console.print(f"[bold]{model.name} on {devices} x {device}: none of {res.evaluated} "
                      f"layouts fits; the {top} that need the least memory[/bold]")
        console.print(table("", shown))
    else:
        console.print(f"[bold]{model.name} on {devices} x {device}: {res.n_fitting} of "
                      f"{res.evaluated} layouts fit; top {top} by tokens/s[/bold]")
        console.print(table("", shown))
        from accelsim.training import estimate

        _print_train(estimate(res.best, res.spec),
                     f"best layout: {_layout_str(res.best.parallelism)}")
    if res.best is None:
        smallest = float(res.columns["memory_per_device_gib"].min())
        infeasible(model_file, "model",
                   f"no layout on {devices} x {device} fits in memory (the smallest needs "
                   f"{smallest:.1f} GiB per device, {res.spec.memory_bytes / 2**30:.1f} GiB "
                   "available); expected more devices or a larger-memory device")


# ---------------------------------------------------------------- serving

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
    from accelsim.serving import capacity, load_serve_job, simulate
    from accelsim.serving.service import build_service

    if engine not in (None, "auto", "simpy", "fast"):
        raise AccelsimError.single(str(job_file), "--engine",
                                   f"expected auto, simpy or fast, got {engine!r}")
    job = load_serve_job(job_file)
    if offline_mode:
        _serve_offline(job_file, job, as_json)
        return
    if trace_csv is not None:
        check_file(trace_csv, "--trace-out")
    sm = build_service(job, str(job_file))
    res = simulate(job, engine, keep_trace=trace_csv is not None, service=sm)
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


def _serve_offline(job_file: Path, job: Any, as_json: bool) -> None:
    """Offline throughput of every replica of a device-model job (items/s and queries/s)."""
    from accelsim.devices import load_device
    from accelsim.serving.recsys import load_model, offline
    from accelsim.traffic import dist_mean

    svc = job.service
    if svc.synthetic is not None:
        raise AccelsimError.single(str(job_file), "service", "--offline needs a device and a "
                                   "model (a synthetic service has no batch physics)")
    model = load_model(svc.model, where=str(job_file), field="service.model")
    members = [(m.device, m.count) for m in svc.pool] if svc.pool else [(svc.device,
                                                                          job.replicas)]
    mean_items = dist_mean(job.queries.size)
    per, total = [], 0.0
    for ref, count in members:
        spec = load_device(ref, where=str(job_file), field="service.device").spec
        o = offline(model, spec, svc.placement, str(job_file))
        total += count * o["items_per_s"]
        per.append({"device": spec.name, "replicas": count, "items_per_s": o["items_per_s"],
                    "batch_items": o["batch_items"],
                    "batch_memory_bound_items": o["batch_memory_bound_items"],
                    "period_ms": o["period_s"] * 1e3, "latency_ms": o["latency_s"] * 1e3,
                    "breakdown": o["breakdown"]})
    out = {"items_per_s": total, "queries_per_s": total / mean_items,
           "mean_query_items": mean_items, "devices": per}
    if as_json:
        emit_json(out)
        return
    console.print(f"[bold]{job_file}: offline, {model.name}[/bold]: {total:,.0f} items/s = "
                  f"{total / mean_items:,.0f} queries/s of {mean_items:.4g} items")
    console.print(table("per replica, at the batch that maximises throughput within memory",
                        [{k: v for k, v in d.items() if k != "breakdown"} for d in per]))


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


# ---------------------------------------------------------------- LLM serving

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
    from accelsim.llm import load_llm_job
    from accelsim.llm.sim import capacity, models, simulate

    if engine not in (None, "fast", "simpy"):
        raise AccelsimError.single(str(job_file), "--engine",
                                   f"expected fast or simpy, got {engine!r}")
    job = load_llm_job(job_file)
    rms = models(job, str(job_file))
    usd = None
    if job.cost is not None:
        from accelsim.cost import tco

        usd = [float(tco(rm.spec, job.cost.region, job.cost.finance)["usd_per_hour"])
               for rm in rms]
    res = simulate(job, str(job_file), engine, usd, rms)
    out = res.to_dict()
    out["replica_kinds"] = [{"kind": rm.name, "tp": rm.tp, "dp": rm.dp,
                             "devices": rm.devices, "kv_tokens": rm.kv_tokens,
                             "tokens_per_step": rm.tokens_per_step,
                             "weights_GiB_per_device": rm.weights_bytes / 2**30,
                             "decode_step_ms_batch1": rm.decode_step_s(1, 1024) * 1e3,
                             "decode_step_ms_full": rm.decode_step_s(
                                 min(rm.max_seqs, rm.max_batched_tokens), 1024) * 1e3,
                             "prefill_ms_2k": rm.prefill_s(2048) * 1e3} for rm in rms]
    if find_capacity:
        with Console(stderr=True).status("searching the highest rate that meets the SLO"):
            out.update(capacity(job, str(job_file), rms))
    if as_json:
        emit_json(out)
        return
    console.print(f"[bold]{job_file}: {job.n_replicas} replica(s), engine "
                  f"{engine or job.sim.engine}[/bold]")
    console.print(table("replica kinds", out["replica_kinds"]))
    keys = [k for k in out if k not in ("replicas", "replica_kinds", "per_replication_rps")]
    console.print(table("", [{"metric": k, "value": out[k]} for k in keys]))


# ---------------------------------------------------------------- fleets

def _device_table(sc: Any, quiet: bool) -> Any:
    """Per device x workload evaluation, with a progress bar (it takes a few seconds)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from accelsim.fleet import evaluate_devices

    n = len(sc.pool_of()) * len(sc.workloads)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total}"), TimeElapsedColumn(), console=Console(stderr=True),
                  disable=quiet, transient=True) as bar:
        task = bar.add_task("evaluating devices", total=n)
        started = [0]

        def progress(what: str) -> None:  # called as each device x workload starts
            bar.update(task, completed=started[0], description=f"evaluating {what}")
            started[0] += 1

        table_ = evaluate_devices(sc, progress)
        bar.update(task, completed=n)
    return table_


@app.command()
@user_errors
def compare(
    scenario_file: Annotated[Path, typer.Argument(help="Fleet scenario YAML.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    csv_dir: Annotated[Path | None, typer.Option("--csv", help="Write devices.csv and "
                                                 "fleets.csv to this folder.")] = None,
    plot_dir: Annotated[Path | None, typer.Option("--plot", help="Write the cost-performance "
                                                  "chart (PNG and SVG) to this folder.")] = None,
) -> None:
    """Price every device for every workload and every fleet mix against the demand."""
    import pandas as pd

    from accelsim.fleet import compare as run_compare
    from accelsim.fleet import load_scenario

    sc = load_scenario(scenario_file)
    for folder, option in ((csv_dir, "--csv"), (plot_dir, "--plot")):
        if folder is not None:
            check_dir(folder, option)  # before the evaluation, not after it
    res = run_compare(sc, dev_table=_device_table(sc, quiet=as_json))
    dev_cols = ["device", "workload", "throughput", "throughput_unit", "usd_per_hour",
                "throughput_per_usd", "throughput_per_watt", "capex_usd", "pool", "note"]
    fleets = [fleet_out(f) for f in sorted(res.fleets, key=lambda f: f["rank"])]
    if csv_dir is not None:
        # one value per cell: nested figures become dotted columns (units.h20,
        # workloads.serving.capacity...), violations get their own file, one row each
        flat = pd.json_normalize([{k: v for k, v in f.items() if not isinstance(v, list)}
                                  for f in fleets], sep=".")
        counts = [c for c in flat.columns if c.startswith(("units.", "allocation."))]
        flat[counts] = flat[counts].fillna(0)  # a device a fleet does not hold: 0 units
        flat.insert(len(flat.columns), "n_violations", [len(f["violations"]) for f in fleets])
        viol = pd.DataFrame([{"fleet": f["name"], **v} for f in fleets
                             for v in f["violation_records"]],
                            columns=["fleet", "kind", "subject", "limit", "value", "unit"])
        with writing(csv_dir, "--csv"):
            csv_dir.mkdir(parents=True, exist_ok=True)
            res.devices[dev_cols].to_csv(csv_dir / "devices.csv", index=False)
            flat.to_csv(csv_dir / "fleets.csv", index=False)
            viol.to_csv(csv_dir / "violations.csv", index=False)
    if plot_dir is not None:
        from accelsim.plots import fleet_chart

        with writing(plot_dir, "--plot"):
            fleet_chart(fleets, res.demand, plot_dir,
                        f"{sc.name}: capacity vs. TCO per fleet mix")
    if as_json:
        emit_json({"scenario": sc.name, "objective": sc.objective, "demand": res.demand,
                   "devices": res.devices[dev_cols].to_dict(orient="records"),
                   "fleets": fleets})
        return
    from accelsim import workloads

    console.print(f"[bold]{scenario_file}: {sc.name}[/bold] - {sc.description}")
    need = ", ".join(f"{w} {v:,.4g} {workloads.of(sc.workloads[w]).unit}"
                     for w, v in res.demand.items())
    console.print(f"demand: {need}; objective: {sc.objective}")
    for title, rows in device_tables(sc, res.devices).items():
        console.print(table(title, rows))
    rule = ranking_rule(sc)
    console.print(table(f"fleets, best first: within the rules first, then {rule}; capacity "
                        "allocated to each workload (capacity workloads first), and what the "
                        "whole fleet could do on it alone", fleet_table(sc, fleets)))


@app.command()
@user_errors
def plan(
    scenario_file: Annotated[Path, typer.Argument(help="Fleet scenario YAML with a plan block.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """A purchase plan by quarter over the scenario's horizon (one MILP): deliveries, served
    demand, yearly spend and the present cost."""
    from accelsim.fleet import load_scenario
    from accelsim.plan import build, solve_plan

    sc = load_scenario(scenario_file)
    if sc.plan is None:
        raise AccelsimError.single(str(scenario_file), "plan", "required for accelsim plan: "
                                   "start, quarters, budget_usd_per_year, deliveries")
    prob = build(sc, _device_table(sc, quiet=as_json), sc.plan, str(scenario_file))
    res = solve_plan(prob)
    if as_json:
        emit_json(res)
    else:
        console.print(f"[bold]{scenario_file}: plan over {len(res['quarters'])} quarters[/bold]"
                      f": present cost {res['cost_pv_usd'] / 1e9:.3f} B USD (capex less "
                      f"residual value, opex; at {100 * sc.finance.cost_of_capital:g} %); "
                      f"{res['solver']}")
        rows = [{"quarter": q["quarter"], "delivered": fmt_units(q["delivered"]),
                 **{f"{w} served": v for w, v in q["served_fraction"].items()},
                 "capex B USD": q["capex_usd"] / 1e9, "MW": q["power_MW"],
                 **({"facility MW online": sum(q["facility_MW"].values()),
                     "started": sum(q["facility_started_MW"].values())}
                    if q["facility_MW"] else {})}
                for q in res["quarters"]]
        console.print(table("by quarter (served: capacity installed / demand that quarter)",
                            rows))
        console.print(table("", [{"year": y, "capex B USD": v / 1e9}
                                 for y, v in res["capex_usd_by_year"].items()]))
    if not res["proven_optimal"]:
        typer.echo(f"{scenario_file}: plan: the solver stopped at its time limit; the plan is "
                   f"the best found, within {100 * res['mip_gap']:.2g} % of the optimum (not "
                   "proven optimal)", err=True)


@app.command()
@user_errors
def uncertainty(
    scenario_file: Annotated[Path, typer.Argument(help="Fleet scenario YAML.")],
    samples: Annotated[int, typer.Option(min=2, max=100_000, help="Monte Carlo draws.")] = 100,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the draws.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """How sure is the ranking: fleet metrics' 5-95 % bands and P(mix A beats mix B) over
    the profiles' ranges (correlated where numbers share a cause)."""
    from accelsim.fleet import load_scenario
    from accelsim.uncertainty import monte_carlo, summarise

    sc = load_scenario(scenario_file)
    with Console(stderr=True).status(f"{samples} draws"):
        out = summarise(monte_carlo(sc, samples, seed, str(scenario_file)))
    if as_json:
        emit_json(out)
        return
    console.print(f"[bold]{scenario_file}: {out['draws']} draws[/bold] (profile ranges, "
                  "triangular; one vendor's efficiencies and failure rates move together)")
    for title, rows in uncertainty_tables(out).items():
        console.print(table(title, rows))


@app.command()
@user_errors
def report(
    scenario_file: Annotated[Path, typer.Argument(help="Fleet scenario YAML.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")],
    samples: Annotated[int, typer.Option(min=2, max=100_000, help="Monte Carlo draws for "
                                         "the uncertainty section.")] = 100,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the draws.")] = 1,
) -> None:
    """One self-contained HTML page to send: the comparison and what binds, the
    cost-performance and uncertainty plots, every assumption with its source."""
    from rich.progress import Progress

    from accelsim.fleet import load_scenario
    from accelsim.htmlreport import render

    sc = load_scenario(scenario_file)
    check_file(output, "--output")  # before the seconds of evaluation, not after them
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("uncertainty draws", total=samples)
        page = render(sc, scenario_file, samples, seed,
                      progress=lambda done, n: bar.update(task, completed=done))
    with writing(output, "--output"):
        output.write_text(page, encoding="utf-8")
    typer.echo(f"{output}: report of {scenario_file} ({len(sc.fleets)} fleets, "
               f"{len(page) / 1e3:,.0f} kB)")


@app.command()
@user_errors
def optimize(
    scenario_file: Annotated[Path, typer.Argument(help="Fleet scenario YAML.")],
    year: Annotated[int | None, typer.Option(help="Purchase year (default: the scenario's).")
                    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """The device mix (integer servers) that maximises the scenario's objective (MILP)."""
    from accelsim.fleet import load_scenario, mix_problem, purchase_year
    from accelsim.optimize import solve

    sc = load_scenario(scenario_file)
    year = purchase_year(sc, year, str(scenario_file))  # before the seconds-long evaluation
    res = solve(mix_problem(sc, _device_table(sc, quiet=as_json), year))
    if as_json:
        emit_json(res)
    else:
        _print_optimum(scenario_file, year, res)
    if not res.get("proven_optimal", True):
        typer.echo(f"{scenario_file}: optimize: the solver stopped at its time limit; the mix "
                   f"is the best found, within {100 * res['mip_gap']:.2g} % of the optimum "
                   "(not proven optimal)", err=True)
    if not res["feasible"]:
        infeasible(scenario_file, "workloads", f"{res['reason']}; expected a larger budget, "
                   "higher supply caps or power cap, or lower demand")


def _print_optimum(scenario_file: Path, year: int, res: dict[str, Any]) -> None:
    console.print(f"[bold]{scenario_file}: optimal mix for {res['objective_kind']} "
                  f"(year {year})[/bold]: objective {res['objective']:.6g}; "
                  f"capex {res['capex_usd'] / 1e9:.3f} B USD; TCO "
                  f"{res['tco_usd_per_year'] / 1e9:.3f} B USD/yr; {res['power_MW']:.0f} MW")
    rows = [{"device": d, "workload": w, "units": u} for d, ws in res["units"].items()
            for w, u in ws.items()]
    console.print(table("", rows))
    console.print(table("", [{"pool": k, "spend B USD": v / 1e9}
                             for k, v in res["pool_spend_usd"].items()]))
    console.print(table("", [{"workload": w, "capacity": res["capacity"][w],
                              "served": res["served_fraction"][w]} for w in res["capacity"]]))
    obj = "USD/yr of TCO" if res["objective_kind"] == "min_cost" else "served fraction"
    rows = [{"constraint": b["constraint"], "slack": b["slack"], "unit": b["per"],
             "LP dual": b["shadow_price"], "marginal": b.get("marginal"),
             "marginal per": b.get("marginal_per", "")} for b in res["binding_constraints"]]
    console.print(table(f"binding constraints: marginal = change of the objective ({obj}) "
                        "when the constraint is loosened, re-solved; LP dual of the "
                        "relaxation for reference", rows))


# ---------------------------------------------------------------- sweeps and plots

class _Stop:
    why: str | None = None


@contextlib.contextmanager
def _stopped_by(sig: int) -> Iterator[_Stop]:
    """Turn ``sig`` (SIGTERM) into the same clean stop as Ctrl-C while the block runs."""
    stop = _Stop()

    def handler(signum: int, frame: Any) -> None:
        stop.why = "terminated"
        raise KeyboardInterrupt

    try:
        old = signal.signal(sig, handler)
    except ValueError:  # not the main thread (e.g. a test runner): nothing to install
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(sig, old)


def _rate_column() -> Any:
    """A progress column: points per second."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} pts/s" if speed else "- pts/s")

    return RateColumn()


@app.command()
@user_errors
def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep YAML (base, parameters, metrics).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results folder (Parquet parts).")
                   ] = Path("results"),
    workers: Annotated[int, typer.Option(min=1, help="Local processes / Dask workers.")] = 2,
    executor: Annotated[str, typer.Option(
        help="local (processes) | dask (an embedded local cluster unless --scheduler)")
    ] = "local",
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler address (tcp://HOST:PORT); implies --executor dask.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Skip points already written.")
                      ] = False,
    samples: Annotated[int, typer.Option(min=0, help="Uncertainty draws per point of every "
                                         "device field with a [low, high] range.")] = 0,
    csv: Annotated[Path | None, typer.Option(help="Also write all rows to this CSV.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N points.")] = None,
) -> None:
    """Run a parameter sweep in parallel, writing results as points finish (resumable)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from accelsim.kinds import require
    from accelsim.sweep import read_results, run_sweep

    require(sweep_file, "sweep")  # a broken sweep fails before the progress bar starts
    check_dir(out, "--out")
    if csv is not None:
        check_file(csv, "--csv")
    if executor not in ("local", "dask"):
        raise AccelsimError.single("sweep", "--executor",
                                   f"expected local or dask, got {executor!r}")
    if scheduler:
        executor = "dask"
    with Progress(TextColumn(f"sweep {sweep_file.name}"), BarColumn(), MofNCompleteColumn(),
                  TaskProgressColumn(), _rate_column(), TimeElapsedColumn(), TextColumn("eta"),
                  TimeRemainingColumn(), console=Console(stderr=True)) as bar, _stopped_by(
                      signal.SIGTERM) as stop:
        task = bar.add_task("points", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            run = run_sweep(sweep_file, out, workers=workers,
                            executor=executor,  # type: ignore[arg-type]
                            scheduler=None if scheduler == "local" else scheduler,
                            resume=resume, samples=samples, progress=progress, limit=limit,
                            check=False)
        except KeyboardInterrupt:
            bar.stop()
            from accelsim.sweep.run import done_ids

            kept = len(done_ids(out)) if out.is_dir() else 0
            typer.echo(f"{sweep_file}: {stop.why or 'interrupted'}: {kept} finished points are "
                       f"kept in {out}; run the same command with --resume to continue",
                       err=True)
            raise typer.Exit(143 if stop.why == "terminated" else 130) from None
    df = read_results(run.out)
    if csv is not None:
        with writing(csv, "--csv"):
            df.to_csv(csv, index=False)
    console.print(f"{run.total} points: {run.skipped} already done, {run.computed} computed; "
                  f"results in {run.out}" + (f" and {csv}" if csv else ""))


@app.command()
@user_errors
def plot(
    results: Annotated[Path, typer.Argument(help="Sweep results folder, Parquet or CSV.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG path (an SVG is written "
                                         "beside it).")],
    x: Annotated[str | None, typer.Option(help="Column on the x axis.")] = None,
    y: Annotated[str | None, typer.Option(help="Column on the y axis.")] = None,
    hue: Annotated[str | None, typer.Option(help="Column that splits lines.")] = None,
    z: Annotated[str | None, typer.Option(help="Metric for a break-even contour.")] = None,
    kind: Annotated[str | None, typer.Option(help="line | scatter | contour | tornado")] = None,
    level: Annotated[float, typer.Option(help="Contour level marked as break-even.")] = 1.0,
    title: Annotated[str | None, typer.Option(help="Figure title.")] = None,
) -> None:
    """Cost-performance curves, Pareto frontiers, break-even contours, tornado charts."""
    from accelsim.plots import BOOKKEEPING, sweep_plot
    from accelsim.sweep import read_results

    check_file(output, "--output")
    df = read_results(results)
    for opt, col in (("--x", x), ("--y", y), ("--hue", hue), ("--z", z)):
        if col is not None and col not in df.columns:
            raise AccelsimError.single(str(results), opt, f"no column '{col}'; expected one of: "
                                       + ", ".join(c for c in df.columns if c not in BOOKKEEPING))
    if kind not in (None, "line", "scatter", "contour", "tornado"):
        raise AccelsimError.single("plot", "--kind",
                                   f"expected line, scatter, contour or tornado, got {kind!r}")
    try:
        with writing(output, "--output"):
            paths = sweep_plot(df, output, x=x, y=y, hue=hue, z=z, kind=kind, level=level,
                               title=title)
    except ValueError as exc:
        raise AccelsimError.single("plot", "--kind", str(exc)) from None
    console.print("wrote " + ", ".join(str(p) for p in paths))


def main() -> None:
    """Entry point: usage errors (a bad option value) print one line like every other input
    error, exit code 2; Ctrl-C exits with 130 without a traceback."""
    # typer raises click's exceptions, vendored in recent versions: find their base class
    click_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    try:
        code = app(prog_name="accelsim", standalone_mode=False)
    except click_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(exc.format_message())
            sys.exit(0)
        ctx = getattr(exc, "ctx", None)
        typer.echo(f"{ctx.command_path if ctx else 'accelsim'}: {exc.format_message()}",
                   err=True)
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        code = 130
    except BrokenPipeError:  # `accelsim ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    except OSError as exc:  # the terminal or pipe failed (disk full on a redirect...)
        typer.echo(f"accelsim: cannot write the output ({exc.strerror or exc})", err=True)
        code = 1
    try:
        sys.stdout.flush()
    except OSError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = code or 1
    sys.exit(code or 0)

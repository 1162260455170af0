"""``accelsim train`` and ``train-search``: one training job, or the best layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from accelsim.cli.common import app, console, emit_json, infeasible, user_errors
from accelsim.errors import AccelsimError
from accelsim.report import (
    table,
)


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
    from accelsim.kinds import require
    from accelsim.training import estimate

    job = require(job_file, "train-job")
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



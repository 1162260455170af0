"""``accelsim sweep`` and ``plot``: parameter sweeps written as they go, and their charts."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from accelsim.cli.common import app, console, user_errors
from accelsim.errors import AccelsimError
from accelsim.outputs import check_dir, check_file, writing


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
                                         "device field with a [low, high] range (at most "
                                         "100,000).")] = 0,
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
    # the bar starts with the first point's progress: a sweep refused before (a scheduler
    # out of reach) prints its one line and nothing else
    bar = Progress(TextColumn(f"sweep {sweep_file.name}"), BarColumn(), MofNCompleteColumn(),
                   TaskProgressColumn(), _rate_column(), TimeElapsedColumn(), TextColumn("eta"),
                   TimeRemainingColumn(), console=Console(stderr=True))
    task = bar.add_task("points", total=None)

    def progress(done: int, total: int) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=done, total=total)

    with _stopped_by(signal.SIGTERM) as stop:
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
        finally:
            bar.stop()
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



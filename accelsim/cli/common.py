"""What every command shares: the typer app, the console, one line per user error (exit 2),
exit 3 for a valid input whose result is infeasible, strict JSON output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from accelsim import __version__
from accelsim.errors import AccelsimError

app = typer.Typer(
    name="accelsim",
    help="What do we get for our money if we change the accelerator hardware?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# the terminal's width (80 when piped); wide tables split by columns (accelsim.report)
console = Console()
if console.color_system is None:  # no colours (piped): highlighting numbers and words in
    console = Console(highlight=False)  # printed text shows nothing; its regexes cost a
    # fleet command's output 0.05-0.1 s
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


def count_bar(label: str, disable: bool) -> Any:
    """A transient progress bar on stderr: ``label``, the bar, done of all, the time taken
    and the time left (rich's ``Progress``; a ``{task.description}`` label follows the
    task's description)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn(), console=Console(stderr=True),
                    disable=disable, transient=True)

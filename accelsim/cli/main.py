"""The entry point: usage errors print one line like every other input error (exit 2);
Ctrl-C exits with 130 without a traceback; a closed pipe ends quietly."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from accelsim.cli.common import app


def main() -> None:
    """Entry point: usage errors (a bad option value) print one line like every other input
    error, exit code 2; Ctrl-C exits with 130 without a traceback."""
    # typer raises click's exceptions, vendored in recent versions: find their base class
    click_error: Any = next(c for c in typer.BadParameter.__mro__
                            if c.__name__ == "ClickException")
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

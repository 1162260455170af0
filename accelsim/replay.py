"""When nothing changed, a fleet command prints what it printed last time without running.

``compare``, ``optimize``, ``plan`` and ``uncertainty`` (without ``--csv``, ``--plot`` or
``--no-cache``) record what they print in the cache (:mod:`accelsim.cache`, kind
``output``) under a key of everything the output depends on besides files: the command
line, the working folder, the package's version and source (:func:`accelsim.cache.key`),
and how the terminal shows it (whether stdout is a terminal, its size, the environment
variables rich reads). The entry also lists every file the run read (the scenario, its
device profiles and model files) with the SHA-256 of its bytes; it is replayed only when
every one of them is unchanged, so an edited price, supply cap or device file runs the
command again (whose device evaluations may still come from the cache). A run that did
not exit 0, or whose result may depend on time (a solver stopped at its time limit), is
not recorded.

:func:`replayed` runs before the CLI is imported (``accelsim.entry``): a replay costs the
interpreter's start-up and the hashing of a few files.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from accelsim import cache

COMMANDS = ("compare", "optimize", "plan", "uncertainty")
# Options that write files or ask for a fresh run: such a call is never replayed.
UNCACHED = ("--csv", "--plot", "--no-cache", "--help", "-h")
# Environment variables that change how rich renders the output.
TERMINAL_ENV = ("COLUMNS", "LINES", "TERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE",
                "TTY_INTERACTIVE", "COLORTERM", "JUPYTER_COLUMNS", "JUPYTER_LINES")

_state: dict[str, Any] = {"inputs": None, "forbidden": False}


def _cacheable(argv: list[str]) -> bool:
    return (bool(argv) and argv[0] in COMMANDS and cache.folder() is not None
            and not any(a == o or a.startswith(o + "=") for a in argv for o in UNCACHED))


def _key(argv: list[str]) -> str:
    tty = sys.stdout.isatty()
    size = None
    if tty:
        try:
            size = list(os.get_terminal_size(sys.stdout.fileno()))
        except OSError:
            size = None
    return cache.key("output", {"argv": argv, "cwd": os.getcwd(), "tty": tty, "size": size,
                                "env": {k: os.environ.get(k) for k in TERMINAL_ENV}})


def _unchanged(inputs: dict[str, str]) -> bool:
    try:
        return all(cache.file_digest(p) == h for p, h in inputs.items())
    except OSError:
        return False


def replayed(argv: list[str]) -> int | None:
    """The exit code after printing a recorded run's output, or None (run the command)."""
    if not _cacheable(argv):
        return None
    entry = cache.get("output", _key(argv))
    if not isinstance(entry, dict) or not _unchanged(entry.get("inputs", {})):
        return None
    sys.stdout.write(entry["stdout"])
    sys.stderr.write(entry["stderr"])
    sys.stdout.flush()
    return int(entry["code"])


def note_inputs(files: list[Path | str]) -> None:
    """The files a run read and their digests (called by the command as it reads them)."""
    try:
        _state["inputs"] = {str(Path(f).resolve()): cache.file_digest(f) for f in files}
    except OSError:
        forbid()


def forbid() -> None:
    """This run's output may depend on more than its inputs: do not record it."""
    _state["forbidden"] = True


class _Tee(io.TextIOBase):
    """A text stream that writes to ``stream`` and keeps a copy (a terminal stays one)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.copy = io.StringIO()

    def write(self, s: str) -> int:
        self.copy.write(s)
        return self.stream.write(s)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.stream.encoding


@contextmanager
def recording(argv: list[str]) -> Iterator[None]:
    """Run the block (the CLI, which ends with SystemExit) and record what it printed."""
    if not _cacheable(argv):
        yield
        return
    key = _key(argv)
    out, err = _Tee(sys.stdout), _Tee(sys.stderr)
    sys.stdout, sys.stderr = out, err
    code: Any = 1
    try:
        yield
        code = 0
    except SystemExit as exc:
        code = exc.code
        raise
    finally:
        sys.stdout, sys.stderr = out.stream, err.stream
        inputs = _state["inputs"]
        if code in (0, None) and inputs and not _state["forbidden"]:
            cache.put("output", key, {"stdout": out.copy.getvalue(),
                                      "stderr": err.copy.getvalue(), "code": 0,
                                      "inputs": inputs})

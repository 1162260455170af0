"""The ``accelsim`` executable. ``--version`` is answered before anything is imported (it
needs only the version string); a fleet command whose inputs did not change since it last
ran prints its recorded output (:mod:`accelsim.replay`); every other call runs
:mod:`accelsim.cli`, and the process ends without the interpreter's teardown
(:func:`exit_now`)."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from accelsim import __version__

        sys.stdout.write(f"accelsim {__version__}\n")
        return
    one_blas_thread()
    from accelsim import replay

    code = replayed = replay.replayed(sys.argv[1:])
    if replayed is not None:
        sys.exit(code)
    try:
        with replay.recording(sys.argv[1:]):
            from accelsim.cli import main as cli

            cli()
    except SystemExit as exc:
        exit_now(exc.code)


def one_blas_thread() -> None:
    """One OpenBLAS thread a process unless ``OPENBLAS_NUM_THREADS`` says otherwise (set
    before numpy is imported). The commands run small vectors and matrices (one thread
    each in OpenBLAS) and parallelise by processes, one per core; each OpenBLAS library
    that loads (numpy's, scipy's) would otherwise start a thread per core that spins
    after it starts: 0.2 s of CPU of a cold fleet command's calling process on the
    2-core reference machine, beside its worker processes."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def exit_now(code: str | int | None) -> NoReturn:
    """End the process with ``code`` as ``sys.exit(code)`` would (None: 0; a message: on
    stderr, 1), after the exit handlers (``atexit``) and with the standard streams flushed,
    but without the interpreter's teardown, which frees every loaded module's objects one
    by one: 0.1 s of CPU after a fleet command on an idle 2-core machine, 0.2-0.5 s under
    load, after its output is written. Where a thread of ours still runs, the ordinary
    exit, which waits for it."""
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate()
           if t is not threading.main_thread()):
        sys.exit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        sys.stderr.write(f"{code}\n")
        status = 1
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or file: what could be written was
            status = status or 1
    os._exit(status)

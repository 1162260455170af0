"""The ``accelsim`` executable. ``--version`` is answered before anything is imported (it
needs only the version string); a fleet command whose inputs did not change since it last
ran prints its recorded output (:mod:`accelsim.replay`); every other call runs
:mod:`accelsim.cli`."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from accelsim import __version__

        sys.stdout.write(f"accelsim {__version__}\n")
        return
    from accelsim import replay

    code = replayed = replay.replayed(sys.argv[1:])
    if replayed is not None:
        sys.exit(code)
    with replay.recording(sys.argv[1:]):
        from accelsim.cli import main as cli

        cli()

"""The ``accelsim`` executable. ``--version`` is answered before anything is imported (it
needs only the version string); every other call runs :mod:`accelsim.cli`."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from accelsim import __version__

        sys.stdout.write(f"accelsim {__version__}\n")
        return
    from accelsim.cli import main as cli

    cli()

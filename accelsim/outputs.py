"""Where results go: output paths checked before any work starts, and every write's OS error
turned into one line naming the path and the option that gave it.

A long run (a sweep, a compare with ``--csv``) must not compute for minutes and then fail on a
missing folder, so commands call :func:`check_dir` / :func:`check_file` first, and wrap the
writes themselves in :func:`writing`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from accelsim.errors import AccelsimError


def _probe(folder: Path, shown: str, option: str) -> None:
    """Create and delete a file in ``folder``: the only test that is true for every
    filesystem (read-only mounts, /proc, permissions that root ignores)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".accelsim-probe-", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise AccelsimError.single(shown, option, f"cannot write in folder {folder} "
                                   f"({exc.strerror or exc}); expected a writable folder"
                                   ) from None


def check_dir(path: str | Path, option: str) -> Path:
    """A results folder: an existing writable folder, or one that can be created (its
    nearest existing ancestor is a writable folder). Nothing is created here."""
    p = Path(path)
    shown = str(path)
    if p.exists() and not p.is_dir():
        raise AccelsimError.single(shown, option, "is a file, expected a folder")
    ancestor = p
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise AccelsimError.single(shown, option, f"{ancestor} is a file, expected a folder")
    _probe(ancestor, shown, option)
    return p


def check_file(path: str | Path, option: str) -> Path:
    """An output file: not a folder, in an existing writable folder."""
    p = Path(path)
    shown = str(path)
    if p.is_dir():
        raise AccelsimError.single(shown, option, "is a folder, expected a file name")
    if p.exists() and not p.is_file():
        raise AccelsimError.single(shown, option, "is not a regular file, expected a file name")
    parent = p.parent
    if not parent.exists():
        raise AccelsimError.single(shown, option, f"folder {parent} does not exist; expected "
                                   "an existing folder (create it first)")
    if not parent.is_dir():
        raise AccelsimError.single(shown, option, f"{parent} is a file, expected a folder")
    _probe(parent, shown, option)
    return p


@contextmanager
def writing(path: str | Path, option: str) -> Iterator[None]:
    """Any OS error inside (disk full, permissions changed meanwhile) becomes one line."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or path
        raise AccelsimError.single(str(path), option, f"cannot write {where} "
                                   f"({exc.strerror or exc})") from None

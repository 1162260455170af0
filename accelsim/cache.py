"""A content-addressed cache on disk for results that take seconds to compute (a device's
evaluation on a workload: the chatbot's simulated capacity search).

An entry's key is the SHA-256 of everything its value is a function of, as canonical JSON:
the caller's inputs (:func:`key`: for a device evaluation the resolved device spec, the
workload block and the bytes of the files it reads), an optional ``extra`` mapping (room for
a software-stack profile to join the key later), the package version and a fingerprint of
the package's own source, so an edited device or model file, another block or a new
version of the code never finds an old entry: it misses and the value is computed again.

Entries live in ``$ACCELSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/accelsim``, else
``~/.cache/accelsim`` (``%LOCALAPPDATA%\\accelsim`` on Windows), one pickle per entry under
``v<FORMAT>/<kind>/``. Writes go to a temporary file in the same folder and are renamed into
place (atomic on POSIX and Windows), so concurrent runs never read half an entry: two that
miss together both compute and the last rename wins with the same bytes. An unreadable
entry is a miss. ``ACCELSIM_NO_CACHE=1`` (or :func:`disabled`, the commands' ``--no-cache``)
bypasses the cache: nothing is read or written. Delete the folder to empty it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

FORMAT = 1  # bump when the layout or the pickled classes change incompatibly
ENV_DIR = "ACCELSIM_CACHE_DIR"
ENV_OFF = "ACCELSIM_NO_CACHE"
_PACKAGE = Path(__file__).resolve().parent


def folder() -> Path | None:
    """The cache's folder, or None when the cache is off."""
    if os.environ.get(ENV_OFF, "") not in ("", "0"):
        return None
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "accelsim"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "accelsim"


@contextmanager
def disabled(off: bool = True) -> Iterator[None]:
    """Within the block (and in processes it starts), no entry is read or written."""
    if not off:
        yield
        return
    before = os.environ.get(ENV_OFF)
    os.environ[ENV_OFF] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ[ENV_OFF]
        else:
            os.environ[ENV_OFF] = before


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of the package's Python source files' paths, sizes and modification times
    (as Python's own bytecode cache checks them): an edit of the code that computes an
    entry, released or not, makes it miss."""
    h = hashlib.sha256()
    for p in sorted(_PACKAGE.rglob("*.py")):
        st = p.stat()
        h.update(f"{p.relative_to(_PACKAGE)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (an input an entry depends on)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def key(kind: str, parts: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> str:
    """The entry's address: SHA-256 of ``kind``, ``parts`` (JSON values: what the value is a
    function of), ``extra`` (e.g. a software-stack profile; None for none), the package
    version and :func:`code_fingerprint`, as canonical JSON."""
    from accelsim import __version__

    payload = {"format": FORMAT, "version": __version__, "code": code_fingerprint(),
               "kind": kind, "parts": parts, "extra": dict(extra) if extra else None}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _path(root: Path, kind: str, k: str) -> Path:
    return root / f"v{FORMAT}" / kind / k[:2] / f"{k}.pkl"


def get(kind: str, k: str) -> Any | None:
    """The value stored under ``k``, or None (a miss, an unreadable entry, the cache off)."""
    root = folder()
    if root is None:
        return None
    try:
        with _path(root, kind, k).open("rb") as fh:
            return pickle.load(fh)
    except FileNotFoundError:
        return None
    except Exception:  # a truncated or foreign file: recompute (and overwrite) it
        return None


def put(kind: str, k: str, value: Any) -> None:
    """Store ``value`` under ``k`` atomically; a folder that cannot be written (read-only,
    full) leaves the value uncached, never an error."""
    root = folder()
    if root is None:
        return
    path = _path(root, kind, k)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{k[:12]}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass

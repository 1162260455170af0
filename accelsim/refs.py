"""The one resolver from a reference in a config file to the YAML file it names.

A reference is either a catalog name (``h20``, ``gpt3-175b``, ``rmc2``) looked up in the
shipped ``configs/devices`` or ``configs/models`` folder, or a path (it ends in ``.yaml``/
``.yml`` or contains ``/``), which resolves from the folder of the file that holds it
(``relative_to``) when that exists, else from the working directory. Every loader (devices,
training models, recommendation models, scenarios, jobs) goes through :func:`find`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

from accelsim.errors import AccelsimError

Catalog = Literal["devices", "models", "stacks"]
# Top-level key that marks a model file of each family (for name suggestions).
MODEL_MARKERS = {"training": "layers", "recsys": "tables"}


def configs_dir() -> Path:
    """``configs`` of the source tree, or the copy shipped inside a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "configs", here / "_configs"):
        if (candidate / "devices").is_dir():
            return candidate
    raise AccelsimError.single("configs/devices", "", "device catalog not found")


def is_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml")) or "/" in ref


def names(catalog: Catalog, family: str | None = None) -> list[str]:
    """Catalog names; for models, optionally only one family (``training``, ``recsys``)."""
    files = sorted((configs_dir() / catalog).glob("*.yaml"))
    if family is not None:
        marker = f"\n{MODEL_MARKERS[family]}:"
        files = [p for p in files if marker in "\n" + p.read_text(encoding="utf-8")]
    return [p.stem for p in files]


def find(ref: str | Path, catalog: Catalog, relative_to: str | Path | None = None,
         where: str = "", field: str = "", family: str | None = None,
         what: str = "device") -> Path:
    """Absolute path of the file ``ref`` names; an unknown name suggests the closest one.
    ``where``/``field`` name the file and field that hold the reference (for the error)."""
    s = str(ref)
    if is_path(s) or Path(s).is_file():
        p = Path(s)
        if not p.is_absolute() and relative_to is not None:
            beside = Path(relative_to).resolve().parent / p
            if beside.exists():
                return beside
        if p.exists():
            return p.resolve()
        raise AccelsimError.single(where or s, field, f"{what} file not found: {s}")
    path = configs_dir() / catalog / f"{s}.yaml"
    if path.is_file():
        return path
    known = names(catalog, family)
    close = difflib.get_close_matches(s, known, n=1, cutoff=0.4)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise AccelsimError.single(
        where or what, field,
        f"unknown {what} '{s}'{hint} (catalog: {', '.join(known)}; or give a path)")


def shown(path: Path) -> str:
    """How a resolved file is named in messages: ``configs/devices/h20.yaml`` for the
    catalog, the path as given otherwise."""
    try:
        return str(path.relative_to(configs_dir().parent))
    except ValueError:
        return str(path)


def normalize(ref: str, relative_to: str | Path) -> str:
    """A reference as stored after loading its config file: catalog names stay names; a
    relative path becomes absolute from the folder of the file that holds it."""
    if is_path(ref) and not Path(ref).is_absolute():
        beside = Path(relative_to).resolve().parent / ref
        if beside.exists():
            return str(beside)
    return ref


def check_family(data: dict[str, object], family: str, path: Path, where: str = "",
                 field: str = "") -> None:
    """A model file of another family (a recommendation model where a training model is
    expected, or the reverse) is one line, not a list of unknown keys."""
    marker = MODEL_MARKERS[family]
    other = [f for f, m in MODEL_MARKERS.items() if f != family and m in data]
    if marker not in data and other:
        what = {"training": "training (decoder-only) model", "recsys": "recommendation model"}
        raise AccelsimError.single(where or str(path), field, f"{shown(path)} is a "
                                   f"{what[other[0]]} (it has '{MODEL_MARKERS[other[0]]}'); "
                                   f"expected a {what[family]} (with '{marker}')")

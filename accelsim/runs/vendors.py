"""Published runs by vendor and by source: the vendor whose silicon a row ran on (its device
profile's ``vendor``), the publication it comes from, and the error per group
(``validate-runs --by vendor``); and, for every catalog profile, the published rows that
check it (``accelsim devices``): fitted (named in one of its ``fitted_on``) or held out.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accelsim.runs.file import RunResult


def run_device(run: Any) -> str:
    """The device a run names: its own ``device``, or its replica's (LLM serving runs)."""
    dev = getattr(run, "device", None)
    return str(dev if dev is not None else run.replica.device)


def vendor_name(vendor: str) -> str:
    """A profile's vendor without the parenthesis: 'Intel (Habana Labs)' -> 'Intel'."""
    return re.split(r"\s*\(", vendor, maxsplit=1)[0].strip() or vendor


def source_label(source: str) -> str:
    """The publication of a row: 'MLPerf Training v4.1' for MLPerf logs, else the text
    before the first parenthesis or comma (a paper's authors and year)."""
    m = re.match(r"\s*(MLPerf (?:Training|Inference) v[\d.]+)", source)
    if m:
        return m.group(1)
    head = re.split(r"[(,]", source, maxsplit=1)[0].strip()
    return head[:60] or source[:60]


def _devices_of(file: str) -> dict[str, str]:
    """``{run id: device reference}`` of one run file (loaded and checked)."""
    from accelsim.runs.file import load_runs

    return {r.id: run_device(r) for r in load_runs(file).runs}


def tag(results: list[RunResult] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each result (a :class:`RunResult` or its ``to_dict()``, as ``validate-runs --json``
    prints it) with its device, vendor, source and kind (training or serving)."""
    from accelsim.devices import load_device

    devices: dict[str, dict[str, str]] = {}
    out = []
    for res in results:
        r = res if isinstance(res, dict) else res.to_dict()
        if r["file"] not in devices:
            devices[r["file"]] = _devices_of(r["file"])
        ref = devices[r["file"]][r["id"]]
        prof = load_device(ref, where=r["file"], field="device", relative_to=r["file"])
        out.append({"id": r["id"], "file": r["file"], "device": prof.name,
                    "vendor": vendor_name(prof.vendor), "source": source_label(r["source"]),
                    "kind": "training" if r["kind"] == "training" else "serving",
                    "error": r["error"], "within": r["within"],
                    "left_out_error": r.get("left_out_error", r["error"])})
    return out


def summarize(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Mean and max |error| and the row count per group of ``keys``, groups sorted; with the
    same over each row's leave-one-source-out error (``left_out_*``: the in-sample error where
    a record carries none, as rows no number was fitted on)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in keys)].append(row)
    out = []
    for key in sorted(groups):
        errs = [abs(r["error"]) for r in groups[key]]
        outs = [abs(r.get("left_out_error", r["error"])) for r in groups[key]]
        out.append({**dict(zip(keys, key, strict=True)), "rows": len(errs),
                    "mean_abs_error": sum(errs) / len(errs), "max_abs_error": max(errs),
                    "within": sum(bool(r["within"]) for r in groups[key]),
                    "left_out_mean_abs_error": sum(outs) / len(outs),
                    "left_out_max_abs_error": max(outs)})
    return out


def by_vendor(results: list[RunResult] | list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """``{"vendors": per vendor, "kinds": per vendor and kind (training, serving),
    "sources": per vendor and source}``."""
    rows = tag(results)
    return {"vendors": summarize(rows, ("vendor",)),
            "kinds": summarize(rows, ("vendor", "kind")),
            "sources": summarize(rows, ("vendor", "source"))}


def checks(paths: list[str | Path] | None = None) -> dict[str, list[dict[str, Any]]]:
    """``{profile name: [{file, id, role}]}`` over every run file (asserted ones and the known
    misses): role 'fitted' when the id is in one of the profile's ``fitted_on``, 'held out'
    otherwise, 'known miss' for rows under ``misses/``."""
    from accelsim.devices import load_device
    from accelsim.runs.file import load_runs, runs_dir

    if paths is None:
        d = runs_dir()
        paths = [*sorted(d.glob("*.yaml")), *sorted((d / "misses").glob("*.yaml"))]
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in paths:
        miss = Path(p).parent.name == "misses"
        for run in load_runs(p).runs:
            prof = load_device(run_device(run), where=str(p), field="device", relative_to=p)
            fitted = {i for q in prof.quantities().values() for i in (q.fitted_on or [])}
            role = "known miss" if miss else ("fitted" if run.id in fitted else "held out")
            out[prof.name].append({"file": _shown(p), "id": run.id, "role": role})
    return dict(out)


def _shown(path: str | Path) -> str:
    """A run file's path relative to the configs folder's parent (configs/runs/...)."""
    from accelsim import refs

    p = Path(path).resolve()
    root = refs.configs_dir().resolve().parent
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(path)


def checked_by(name: str, table: dict[str, list[dict[str, Any]]]) -> str:
    """One cell: 'n fitted, m held out, k known misses', or 'none'."""
    rows = table.get(name, [])
    if not rows:
        return "none"
    counts = {r: sum(x["role"] == r for x in rows) for r in ("fitted", "held out", "known miss")}
    return ", ".join(f"{n} {r}" + ("es" if r == "known miss" and n > 1 else "")
                     for r, n in counts.items() if n)

"""``accelsim validate``, ``schema`` and ``validate-runs``: checking files, and the model
against published runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from accelsim.cli.common import app, console, emit_json, user_errors
from accelsim.errors import AccelsimError
from accelsim.report import (
    table,
)


@app.command()
@user_errors
def validate(
    file: Annotated[Path, typer.Argument(help="Any accelsim YAML file.")],
    kind: Annotated[str | None, typer.Option(help="Kind of file; detected when omitted.")] = None,
) -> None:
    """Check any accelsim config file; one line per problem, exit code 2 when invalid."""
    from accelsim.schemas import validate_file

    k, _ = validate_file(file, kind)
    typer.echo(f"{file}: valid {k.name} ({k.description})")


@app.command()
@user_errors
def schema(kind: Annotated[str, typer.Argument(help="device, train-job, ...")]) -> None:
    """JSON Schema of a config kind, for editor autocompletion of YAML."""
    from accelsim.schemas import json_schema

    emit_json(json_schema(kind))


@app.command("validate-runs")
@user_errors
def validate_runs(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Run files (default: every file in configs/runs).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    by: Annotated[str | None, typer.Option("--by", help="vendor: also the error per vendor "
                                           "and per vendor and source.")] = None,
    cross_validate: Annotated[bool, typer.Option(
        "--cross-validate", help="Leave one source out: refit every calibrated number without "
        "each source (run file or source_group) and predict that source's rows.")] = False,
    refit: Annotated[bool, typer.Option(
        "--refit", help="Refit every calibrated number on all its rows and compare with the "
        "stored value; exit 1 when one is stale.")] = False,
    refit_tolerance: Annotated[float, typer.Option(
        help="Relative distance from its refit past which a stored value is stale.",
        min=0.0, max=1.0)] = 0.02,
    heldout: Annotated[bool, typer.Option(
        "--heldout", help="The held-out runs (configs/runs/heldout, never used for "
        "calibration; or the files given): mean and max |error| per category and the "
        "size sweeps' trend.")] = False,
) -> None:
    """Predict published runs (cited data files) and compare; exit 1 past the tolerance."""
    if by not in (None, "vendor"):
        raise AccelsimError.single("--by", "", f"expected 'vendor', got {by!r}")
    if heldout and by:
        raise AccelsimError.single("--heldout", "", "--by is not reported for the held-out "
                                   "runs; expected --heldout without --by")
    if heldout and (cross_validate or refit):
        raise AccelsimError.single("--heldout", "", "held-out runs are never used for "
                                   "calibration; expected --heldout without --cross-validate "
                                   "and --refit")
    from accelsim.kinds import require

    for f in files or []:
        require(f, "runs")  # a file of another kind says what it is
    if heldout:
        _heldout(files or [], as_json)
        return
    if cross_validate or refit:
        _calibration(files or [], as_json, cross_validate, refit, refit_tolerance)
        return
    from accelsim.runs import validate_runs as run_all

    results = run_all(list(files) if files else None)
    failed = [r for r in results if not r.within]
    if as_json:
        out = {"runs": [r.to_dict() for r in results], "failed": len(failed)}
        if by:
            out["by_vendor"] = _by_vendor(results)
        emit_json(out)
    else:
        rows = _run_rows(results)
        errs = [abs(r.error) for r in results]
        console.print(table(f"published runs: mean |error| {100 * sum(errs) / len(errs):.1f} %, "
                            f"max {100 * max(errs):.1f} %; tolerance per file", rows))
        if by:
            _print_by_vendor(_by_vendor(results))
    _exit_on_failed(failed)


def _run_rows(results: list[Any]) -> list[dict[str, Any]]:
    """One table row per predicted run."""
    return [{"run": r.id, "published": r.published, "predicted": r.predicted,
             "unit": r.unit, "error %": 100 * r.error, "within": r.within,
             "how": r.detail} for r in results]


def _exit_on_failed(failed: list[Any]) -> None:
    """One line per run past its file's tolerance on stderr, then exit 1 (none: return)."""
    for r in failed:
        typer.echo(f"{r.file}: {r.id}: predicted {r.predicted:.4g} {r.unit}, published "
                   f"{r.published:.4g} ({100 * r.error:+.1f} %); expected within "
                   f"{100 * r.tolerance:.0f} %", err=True)
    if failed:
        raise typer.Exit(1)


def _heldout(files: list[Path], as_json: bool) -> None:
    """``--heldout``: the held-out runs (and, with no files named, their known misses in
    ``heldout/misses``, reported apart), the error per category and the sweeps' signs over
    both; exit 1 when an asserted held-out row is past its file's tolerance."""
    from accelsim.runs import validate_runs as run_all
    from accelsim.runs.file import heldout_dir, summarize
    from accelsim.runs.sweeps import sweeps

    results = run_all(list(files) if files else None, heldout=True)
    miss_files = [] if files else sorted((heldout_dir() / "misses").glob("*.yaml"))
    misses = run_all(list(miss_files)) if miss_files else []
    failed = [r for r in results if not r.within]
    summary, missed = summarize(results), summarize(misses) if misses else {}
    sw = sweeps([*results, *misses])
    if as_json:
        emit_json({"runs": [r.to_dict() for r in results], "failed": len(failed),
                   "summary": summary, "misses": [r.to_dict() for r in misses],
                   "misses_summary": missed, "sweeps": [s.to_dict() for s in sw]})
    else:
        def per_category(summ: dict[str, Any]) -> list[dict[str, Any]]:
            return [{"category": c, "rows": s["rows"], "within": s["within"],
                     "mean |error| %": 100 * s["mean_abs_error"],
                     "max |error| %": 100 * s["max_abs_error"]} for c, s in summ.items()]

        console.print(table("held-out published runs (never used for calibration); "
                            "tolerance per file", _run_rows(results)))
        if misses:
            console.print(table("held out, known misses (not asserted)", _run_rows(misses)))
        console.print(table("held out: |error| per category", per_category(summary)))
        if misses:
            console.print(table("held out, known misses: |error| per category",
                                per_category(missed)))
        if sw:
            console.print(table("size sweeps: slope of the figure against log10(parameters), "
                                "% of its mean per decade", [
                {"sweep": s.name, "runs": len(s.ids), "published %": 100 * s.published_slope,
                 "predicted %": 100 * s.predicted_slope, "same sign": s.agrees} for s in sw]))
    _exit_on_failed(failed)


def _by_vendor(results: list[Any]) -> dict[str, list[dict[str, Any]]]:
    from accelsim.runs.vendors import by_vendor

    return by_vendor(results)


def _print_by_vendor(groups: dict[str, list[dict[str, Any]]]) -> None:
    """The error per vendor, then per vendor and source (mean and max |error|, rows)."""
    def fmt(g: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
        return {**{k: g[k] for k in keys}, "rows": g["rows"], "within": g["within"],
                "mean |error| %": 100 * g["mean_abs_error"],
                "max |error| %": 100 * g["max_abs_error"]}

    console.print(table("error per vendor (the silicon each row ran on)",
                        [fmt(g, ("vendor",)) for g in groups["vendors"]]))
    console.print(table("error per vendor and source",
                        [fmt(g, ("vendor", "source")) for g in groups["sources"]]))

def _calibration(files: list[Path], as_json: bool, cross: bool, refit: bool,
                 tolerance: float) -> None:
    """``--cross-validate`` and ``--refit`` (:mod:`accelsim.runs.calibration`)."""
    import time

    from accelsim.runs.calibration import Calibration, load_rows

    t0 = time.perf_counter()
    cal = Calibration(extra=files)
    sources = ({r.source for r in load_rows(files)} if files else None)
    out: dict[str, Any] = {}
    if refit:
        out["refit"] = cal.refit(tolerance)
    if cross:
        out["cross_validation"] = cal.cross_validate(sources)
    out["seconds"] = time.perf_counter() - t0
    out["predictions"] = cal.evaluations
    if as_json:
        emit_json(out)
    else:
        _print_calibration(out)
    stale = [p for p in out.get("refit", {}).get("parameters", []) if p["stale"]]
    for p in stale:
        typer.echo(f"{p['addresses'][0]}: stored {p['stored']:g}, refit on its "
                   f"{len(p['fitted_on'])} rows {p['refit']:.4g} "
                   f"({100 * p['difference']:+.1f} %); expected within "
                   f"{100 * tolerance:g} %", err=True)
    if stale:
        raise typer.Exit(1)


def _print_calibration(out: dict[str, Any]) -> None:
    if "refit" in out:
        r = out["refit"]
        rows = [{"parameter": p["parameter"], "stored": p["stored"], "refit": p["refit"],
                 "diff %": 100 * p["difference"], "stale": p["stale"],
                 "rows": len(p["fitted_on"]), "loss stored %": 100 * p["loss_stored"],
                 "loss refit %": 100 * p["loss_refit"]} for p in r["parameters"]]
        console.print(table(f"calibrated numbers refit on their rows (mean |log error|); "
                            f"stale past {100 * r['tolerance']:g} %", rows))
    if "cross_validation" in out:
        cv = out["cross_validation"]
        rows = [{"run": r["id"], "published": r["published"],
                 "in-sample %": 100 * r["error_in_sample"],
                 "left out %": 100 * r["error_held_out"], "numbers refit": r["left_out_by"]}
                for r in cv["rows"]]
        console.print(table("leave one source out: each source's rows predicted with every "
                            "number fitted on them refit without them", rows))
        folds = [{"left out": f["source"], "number": k, "value": v["value"],
                  "from": (f"prior: {v['prior']}" if v["from"] == "prior" else
                           f"{v['rows']} rows" if v["from"] == "rows" else "no prior")}
                 for f in cv["folds"] for k, v in f["parameters"].items()]
        if folds:
            console.print(table("refit per left-out source", folds))
        summ = [{"kind": k, "rows": s["rows"], "refit": s["refit_rows"],
                 "in-sample mean %": 100 * s["in_sample_mean"],
                 "in max %": 100 * s["in_sample_max"],
                 "left out mean %": 100 * s["held_out_mean"],
                 "out max %": 100 * s["held_out_max"]}
                for k, s in cv["summary"].items()]
        console.print(table("|error| in-sample and left out", summ))
    console.print(f"{out['predictions']} predictions in {out['seconds']:.1f} s")

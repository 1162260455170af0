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
) -> None:
    """Predict published runs (cited data files) and compare; exit 1 past the tolerance."""
    if by not in (None, "vendor"):
        raise AccelsimError.single("--by", "", f"expected 'vendor', got {by!r}")
    from accelsim.kinds import require
    from accelsim.runs import validate_runs as run_all

    for f in files or []:
        require(f, "runs")  # a file of another kind says what it is
    results = run_all(list(files) if files else None)
    failed = [r for r in results if not r.within]
    if as_json:
        out = {"runs": [r.to_dict() for r in results], "failed": len(failed)}
        if by:
            out["by_vendor"] = _by_vendor(results)
        emit_json(out)
    else:
        rows = [{"run": r.id, "published": r.published, "predicted": r.predicted,
                 "unit": r.unit, "error %": 100 * r.error, "within": r.within,
                 "how": r.detail} for r in results]
        errs = [abs(r.error) for r in results]
        console.print(table(f"published runs: mean |error| {100 * sum(errs) / len(errs):.1f} %, "
                            f"max {100 * max(errs):.1f} %; tolerance per file", rows))
        if by:
            _print_by_vendor(_by_vendor(results))
    if failed:
        for r in failed:
            typer.echo(f"{r.file}: {r.id}: predicted {r.predicted:.4g} {r.unit}, published "
                       f"{r.published:.4g} ({100 * r.error:+.1f} %); expected within "
                       f"{100 * r.tolerance:.0f} %", err=True)
        raise typer.Exit(1)




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

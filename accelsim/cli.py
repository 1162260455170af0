"""The ``accelsim`` command line: parse, call the Python API, print. Nothing else lives here."""

from __future__ import annotations

import functools
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from accelsim import __version__
from accelsim.errors import AccelsimError
from accelsim.report import fmt_num, table

app = typer.Typer(
    name="accelsim",
    help="What do we get for our money if we change the accelerator hardware?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
devices_app = typer.Typer(help="The device catalog.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")

# tables are wide; below 140 columns (or when piped) rich would fold every cell
console = Console(width=max(140, shutil.get_terminal_size((160, 40)).columns))
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """User errors print one line per problem on stderr and exit with code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AccelsimError as err:
            for problem in err.problems:
                typer.echo(str(problem), err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"accelsim {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """accelsim: device profiles -> training and serving performance -> fleet cost."""


# ---------------------------------------------------------------- devices

@devices_app.command("list")
@user_errors
def devices_list(
    as_json: Annotated[bool, typer.Option("--json", help="Full profiles as a JSON list.")] = False,
) -> None:
    """The shipped device catalog."""
    from accelsim.devices import catalog

    profiles = catalog()
    if as_json:
        emit_json([p.model_dump(mode="json") for p in profiles.values()])
        return
    rows = []
    for p in profiles.values():
        c = p.compute
        rows.append({
            "device": p.name, "kind": p.kind, "from": p.available_from,
            "pool": p.supply_pool + ("*" if p.export_controlled else ""),
            "bf16 TFLOP/s": c.bf16_tflops.value,
            "fp8 TFLOP/s": c.fp8_tflops.value if c.fp8_tflops.supported else "-",
            "mem GiB": p.memory.memory_GiB.value,
            "mem GB/s": p.memory.memory_bandwidth_GBps.value,
            "scale-up GB/s": p.interconnect.scaleup_bandwidth_GBps.value,
            "TDP W": p.power.tdp_W.value, "price USD": p.cost.price_usd.value,
        })
    console.print(table("device catalog: dense peaks; * = export-controlled; "
                        "`accelsim devices show NAME` gives every field with its source", rows))


@devices_app.command("show")
@user_errors
def devices_show(
    name: Annotated[str, typer.Argument(help="Catalog name or path to a device YAML.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every field of one profile with its source and confidence."""
    from accelsim.devices import load_device

    p = load_device(name)
    if as_json:
        emit_json(p.model_dump(mode="json"))
        return
    console.print(f"[bold]{p.name}[/bold]  {p.vendor} {p.kind}, {p.process_node}, {p.year}; "
                  f"available from {p.available_from}; pool {p.supply_pool}; "
                  f"export-controlled: {p.export_controlled}  "
                  f"(identity: {p.identity.source}, {p.identity.confidence})")
    if p.description:
        console.print(p.description)
    rows = []
    for key, q in p.quantities().items():
        rng = f"[{fmt_num(q.range[0])}, {fmt_num(q.range[1])}]" if q.range else ""
        source = q.source + (f": {q.note}" if q.note else "")
        rows.append({"field": key, "value": q.value, "range": rng, "conf.": q.confidence,
                     "source (note)": source})
    console.print(table("fields", rows))
    if p.sources:
        console.print(table("sources", [{"key": k, "citation": v} for k, v in p.sources.items()]))


# ---------------------------------------------------------------- validate / schema

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


def main() -> None:
    app()

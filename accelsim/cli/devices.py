"""``accelsim devices list | show``: the device catalog."""

from __future__ import annotations

from typing import Annotated

import typer

from accelsim.cli.common import app, console, emit_json, user_errors
from accelsim.report import fmt_num, table

devices_app = typer.Typer(help="The device catalog.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")


@devices_app.command("list")
@user_errors
def devices_list(
    as_json: Annotated[bool, typer.Option("--json", help="Full profiles as a JSON list.")] = False,
) -> None:
    """The shipped device catalog."""
    from accelsim.devices import catalog
    from accelsim.runs.vendors import checked_by, checks

    profiles = catalog()
    checked = checks()
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
            "checked by published runs": checked_by(p.name, checked),
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
    from accelsim.runs.vendors import checks

    runs = checks().get(p.name, [])
    if runs:
        console.print(table("published runs that check this profile (configs/runs; fitted = "
                            "named in a fitted_on)", runs))
    else:
        console.print("published runs that check this profile: none (its numbers are "
                      "datasheet figures and labelled assumptions)")



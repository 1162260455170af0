"""``accelsim compare``, ``optimize``, ``plan``, ``uncertainty`` and ``report``: fleets and
money."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from accelsim import cache, replay
from accelsim.cli.common import app, console, emit_json, infeasible, user_errors
from accelsim.devices.anchor import set_anchors
from accelsim.errors import AccelsimError
from accelsim.outputs import check_dir, check_file, writing
from accelsim.report import (
    DEVICE_COLUMNS,
    RENTAL_TITLE,
    device_tables,
    fleet_frames,
    fleet_out,
    fleet_table,
    fmt_units,
    ranking_rule,
    rental_rows,
    table,
    uncertainty_tables,
)


def _device_table(sc: Any, quiet: bool, no_cache: bool = False) -> Any:
    """Per device x workload evaluation, with a progress bar (it takes a few seconds)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from accelsim.fleet import evaluate_devices

    n = len(sc.pool_of()) * len(sc.workloads)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total}"), TimeElapsedColumn(), console=Console(stderr=True),
                  disable=quiet, transient=True) as bar:
        task = bar.add_task("evaluating devices", total=n)
        started = [0]

        def progress(what: str) -> None:  # as each device x workload starts or is done
            bar.update(task, completed=started[0], description=f"evaluating {what}")
            started[0] += 1

        with cache.disabled(no_cache):
            table_ = evaluate_devices(sc, progress)
        bar.update(task, completed=n)
    return table_


@app.command()
@user_errors
def compare(
    scenario_file: Annotated[Path, typer.Argument(help="Fleet scenario YAML.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Evaluate every device "
                                           "again, ignoring and not storing cached "
                                           "evaluations.")] = False,
    csv_dir: Annotated[Path | None, typer.Option("--csv", help="Write devices.csv and "
                                                 "fleets.csv to this folder.")] = None,
    plot_dir: Annotated[Path | None, typer.Option("--plot", help="Write the cost-performance "
                                                  "chart (PNG and SVG) to this folder.")] = None,
    anchor: Annotated[list[str] | None, typer.Option("--anchor", help="DEVICE=ANCHOR: give "
                                                     "DEVICE the efficiency section of ANCHOR "
                                                     "(e.g. inhouse-asic=tpu-v5p); repeatable."
                                                     )] = None,
) -> None:
    """Price every device for every workload and every fleet mix against the demand."""
    set_anchors(anchor)  # --anchor: this command's efficiency what-if
    from accelsim.fleet import compare as run_compare
    from accelsim.kinds import require

    sc = require(scenario_file, "scenario")
    replay.note_inputs([scenario_file, *sc.input_files()])
    for folder, option in ((csv_dir, "--csv"), (plot_dir, "--plot")):
        if folder is not None:
            check_dir(folder, option)  # before the evaluation, not after it
    res = run_compare(sc, dev_table=_device_table(sc, as_json, no_cache))
    fleets = [fleet_out(f) for f in sorted(res.fleets, key=lambda f: f["rank"])]
    if csv_dir is not None:
        with writing(csv_dir, "--csv"):
            csv_dir.mkdir(parents=True, exist_ok=True)
            for name, frame in fleet_frames(res.devices, fleets).items():
                frame.to_csv(csv_dir / f"{name}.csv", index=False)
    if plot_dir is not None:
        from accelsim.plots import fleet_chart

        with writing(plot_dir, "--plot"):
            fleet_chart(fleets, res.demand, plot_dir,
                        f"{sc.name}: capacity vs. TCO per fleet mix")
    if as_json:
        emit_json({"scenario": sc.name, "objective": sc.objective, "demand": res.demand,
                   "devices": res.devices[DEVICE_COLUMNS].to_dict(orient="records"),
                   **({"rentals": res.rentals} if res.rentals else {}), "fleets": fleets})
        return
    from accelsim import workloads

    console.print(f"[bold]{scenario_file}: {sc.name}[/bold] - {sc.description}")
    need = ", ".join(f"{w} {v:,.4g} {workloads.of(sc.workloads[w]).unit}"
                     for w, v in res.demand.items())
    console.print(f"demand: {need}; objective: {sc.objective}")
    for title, rows in device_tables(sc, res.devices).items():
        console.print(table(title, rows))
    if res.rentals:
        console.print(table(RENTAL_TITLE, rental_rows(res.rentals)))
    rule = ranking_rule(sc)
    console.print(table(f"fleets, best first: within the rules first, then {rule}; capacity "
                        "allocated to each workload (capacity workloads first), and what the "
                        "whole fleet could do on it alone", fleet_table(sc, fleets)))


@app.command()
@user_errors
def plan(
    scenario_file: Annotated[Path, typer.Argument(help="Fleet scenario YAML with a plan block.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Evaluate every device "
                                           "again, ignoring and not storing cached "
                                           "evaluations.")] = False,
    anchor: Annotated[list[str] | None, typer.Option("--anchor", help="DEVICE=ANCHOR: give "
                                                     "DEVICE the efficiency section of ANCHOR "
                                                     "(e.g. inhouse-asic=tpu-v5p); repeatable."
                                                     )] = None,
) -> None:
    """A purchase plan by quarter over the scenario's horizon (one MILP): deliveries, served
    demand, yearly spend and the present cost."""
    set_anchors(anchor)  # --anchor: this command's efficiency what-if
    from accelsim.kinds import require
    from accelsim.plan import build, solve_plan

    sc = require(scenario_file, "scenario")
    replay.note_inputs([scenario_file, *sc.input_files()])
    if sc.plan is None:
        raise AccelsimError.single(str(scenario_file), "plan", "required for accelsim plan: "
                                   "start, quarters, budget_usd_per_year, deliveries")
    prob = build(sc, _device_table(sc, as_json, no_cache), sc.plan, str(scenario_file))
    res = solve_plan(prob)
    if as_json:
        emit_json(res)
    else:
        console.print(f"[bold]{scenario_file}: plan over {len(res['quarters'])} quarters[/bold]"
                      f": present cost {res['cost_pv_usd'] / 1e9:.3f} B USD (capex less "
                      f"residual value, opex; at {100 * sc.finance.cost_of_capital:g} %); "
                      f"{res['solver']}")
        rows = [{"quarter": q["quarter"], "delivered": fmt_units(q["delivered"]),
                 **{f"{w} served": v for w, v in q["served_fraction"].items()},
                 "capex B USD": q["capex_usd"] / 1e9, "MW": q["power_MW"],
                 **({"facility MW online": sum(q["facility_MW"].values()),
                     "started": sum(q["facility_started_MW"].values())}
                    if q["facility_MW"] else {})}
                for q in res["quarters"]]
        console.print(table("by quarter (served: capacity installed / demand that quarter)",
                            rows))
        console.print(table("", [{"year": y, "capex B USD": v / 1e9}
                                 for y, v in res["capex_usd_by_year"].items()]))
    if not res["proven_optimal"]:
        replay.forbid()  # another run may get further in the time limit
        typer.echo(f"{scenario_file}: plan: the solver stopped at its time limit; the plan is "
                   f"the best found, within {100 * res['mip_gap']:.2g} % of the optimum (not "
                   "proven optimal)", err=True)


@contextlib.contextmanager
def _draws_bar(samples: int, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """Progress of Monte Carlo draws on stderr, with the time left (the base evaluation
    comes first: the bar shows it as elapsed time at 0 draws)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("uncertainty draws"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True, disable=quiet) as bar:
        task = bar.add_task("draws", total=samples)
        yield lambda done, n: bar.update(task, completed=done)


@app.command()
@user_errors
def uncertainty(
    scenario_file: Annotated[Path, typer.Argument(help="Fleet scenario YAML.")],
    samples: Annotated[int, typer.Option(min=2, max=100_000, help="Monte Carlo draws.")] = 100,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the draws.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Evaluate every device "
                                           "again, ignoring and not storing cached "
                                           "evaluations.")] = False,
    anchor: Annotated[list[str] | None, typer.Option("--anchor", help="DEVICE=ANCHOR: give "
                                                     "DEVICE the efficiency section of ANCHOR "
                                                     "(e.g. inhouse-asic=tpu-v5p); repeatable."
                                                     )] = None,
) -> None:
    """How sure is the ranking: fleet metrics' 5-95 % bands and P(mix A beats mix B) over
    the profiles' ranges (correlated where numbers share a cause)."""
    set_anchors(anchor)  # --anchor: this command's efficiency what-if
    from accelsim.kinds import require
    from accelsim.uncertainty import monte_carlo, summarise

    sc = require(scenario_file, "scenario")
    replay.note_inputs([scenario_file, *sc.input_files()])
    with _draws_bar(samples, quiet=False) as update, cache.disabled(no_cache):
        out = summarise(monte_carlo(sc, samples, seed, str(scenario_file), progress=update))
    if as_json:
        emit_json(out)
        return
    console.print(f"[bold]{scenario_file}: {out['draws']} draws[/bold] (profile ranges, "
                  "triangular; one vendor's efficiencies and failure rates move together)")
    for title, rows in uncertainty_tables(out).items():
        console.print(table(title, rows))


@app.command()
@user_errors
def report(
    scenario_file: Annotated[Path, typer.Argument(help="Fleet scenario YAML.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")],
    samples: Annotated[int, typer.Option(min=2, max=100_000, help="Monte Carlo draws for "
                                         "the uncertainty section.")] = 100,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the draws.")] = 1,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Evaluate every device "
                                           "again, ignoring and not storing cached "
                                           "evaluations.")] = False,
    anchor: Annotated[list[str] | None, typer.Option("--anchor", help="DEVICE=ANCHOR: give "
                                                     "DEVICE the efficiency section of ANCHOR "
                                                     "(e.g. inhouse-asic=tpu-v5p); repeatable."
                                                     )] = None,
) -> None:
    """One self-contained HTML page to send: the comparison and what binds, the
    cost-performance and uncertainty plots, every assumption with its source."""
    set_anchors(anchor)  # --anchor: this command's efficiency what-if
    from accelsim.htmlreport import render
    from accelsim.kinds import require

    sc = require(scenario_file, "scenario")
    check_file(output, "--output")  # before the seconds of evaluation, not after them
    with _draws_bar(samples, quiet=False) as update, cache.disabled(no_cache):
        page = render(sc, scenario_file, samples, seed, progress=update)
    with writing(output, "--output"):
        output.write_text(page, encoding="utf-8")
    typer.echo(f"{output}: report of {scenario_file} ({len(sc.fleets)} fleets, "
               f"{len(page) / 1e3:,.0f} kB)")


@app.command()
@user_errors
def optimize(
    scenario_file: Annotated[Path, typer.Argument(help="Fleet scenario YAML.")],
    year: Annotated[int | None, typer.Option(help="Purchase year (default: the scenario's).")
                    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Evaluate every device "
                                           "again, ignoring and not storing cached "
                                           "evaluations.")] = False,
    anchor: Annotated[list[str] | None, typer.Option("--anchor", help="DEVICE=ANCHOR: give "
                                                     "DEVICE the efficiency section of ANCHOR "
                                                     "(e.g. inhouse-asic=tpu-v5p); repeatable."
                                                     )] = None,
) -> None:
    """The device mix (integer servers) that maximises the scenario's objective (MILP)."""
    set_anchors(anchor)  # --anchor: this command's efficiency what-if
    from accelsim.fleet import mix_problem, purchase_year
    from accelsim.kinds import require
    from accelsim.optimize import solve

    sc = require(scenario_file, "scenario")
    replay.note_inputs([scenario_file, *sc.input_files()])
    year = purchase_year(sc, year, str(scenario_file))  # before the seconds-long evaluation
    res = solve(mix_problem(sc, _device_table(sc, as_json, no_cache), year))
    if as_json:
        emit_json(res)
    else:
        _print_optimum(scenario_file, year, res)
    if not res.get("proven_optimal", True):
        replay.forbid()  # another run may get further in the time limit
        typer.echo(f"{scenario_file}: optimize: the solver stopped at its time limit; the mix "
                   f"is the best found, within {100 * res['mip_gap']:.2g} % of the optimum "
                   "(not proven optimal)", err=True)
    if not res["feasible"]:
        infeasible(scenario_file, "workloads", f"{res['reason']}; expected a larger budget, "
                   "higher supply caps or power cap, or lower demand")


def _print_optimum(scenario_file: Path, year: int, res: dict[str, Any]) -> None:
    console.print(f"[bold]{scenario_file}: optimal mix for {res['objective_kind']} "
                  f"(year {year})[/bold]: objective {res['objective']:.6g}; "
                  f"capex {res['capex_usd'] / 1e9:.3f} B USD; TCO "
                  f"{res['tco_usd_per_year'] / 1e9:.3f} B USD/yr; {res['power_MW']:.0f} MW")
    rows = [{"device": d, "workload": w, "units": u} for d, ws in res["units"].items()
            for w, u in ws.items()]
    console.print(table("", rows))
    console.print(table("", [{"pool": k, "spend B USD": v / 1e9}
                             for k, v in res["pool_spend_usd"].items()]))
    console.print(table("", [{"workload": w, "capacity": res["capacity"][w],
                              "served": res["served_fraction"][w]} for w in res["capacity"]]))
    obj = "USD/yr of TCO" if res["objective_kind"] == "min_cost" else "served fraction"
    rows = [{"constraint": b["constraint"], "slack": b["slack"], "unit": b["per"],
             "LP dual": b["shadow_price"], "marginal": b.get("marginal"),
             "marginal per": b.get("marginal_per", "")} for b in res["binding_constraints"]]
    console.print(table(f"binding constraints: marginal = change of the objective ({obj}) "
                        "when the constraint is loosened, re-solved; LP dual of the "
                        "relaxation for reference", rows))



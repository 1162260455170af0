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
from accelsim.cli.common import app, console, count_bar, emit_json, infeasible, user_errors
from accelsim.errors import AccelsimError
from accelsim.outputs import check_dir, check_file, writing
from accelsim.report import (
    DEVICE_COLUMNS,
    RENTAL_TITLE,
    device_tables,
    fleet_frames,
    fleet_out,
    fleet_tables_by_year,
    fmt_num,
    ranking_rule,
    rental_rows,
    table,
    uncertainty_tables,
)

SetOption = Annotated[list[str] | None, typer.Option(
    "--set", help="PATH=VALUE: change one scenario field for this run, e.g. power_cap_mw=900, "
    "budget.pools.overseas.usd=5e9, supply.h20.max_units=0, plan.unserved_penalty.chatbot=60 "
    "(dotted keys, list items by index; validated like the file); repeatable.")]
ObjectiveOption = Annotated[str | None, typer.Option(
    "--objective", help="served_demand or min_cost: the scenario's objective for this run.")]
PlanObjectiveOption = Annotated[str | None, typer.Option(
    "--objective", help="penalty (default: least present cost plus unserved demand at "
    "plan.unserved_penalty), served_demand (the most demand served, then the least present "
    "cost) or min_cost (least present cost serving every quarter): plan.objective for this "
    "run.")]
# The choices of --objective: the scenario's objective (compare, optimize, uncertainty,
# report) and the plan's (plan.objective).
OBJECTIVES = {"objective": ("served_demand", "min_cost"),
              "plan.objective": ("penalty", "served_demand", "min_cost")}


def set_anchors(specs: list[str] | None) -> dict[str, str]:
    """:func:`accelsim.devices.anchor.set_anchors`, imported when a fleet command runs: it
    loads the device models (pydantic, 0.15 s), which ``--help`` and the other commands'
    start-up do not need."""
    from accelsim.devices.anchor import set_anchors as set_

    return set_(specs)


def _set_value(data: dict[str, Any], path: str, text: str, where: str) -> None:
    """Set ``path`` of a scenario mapping to ``text``: a number through the sweeps' setter
    (:func:`accelsim.sweep.overrides.apply_mapping`), anything else as YAML (a word, true,
    a list)."""
    import yaml

    from accelsim.sweep.overrides import apply_mapping

    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        apply_mapping(data, path, number, where)
        return
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    *parents, last = path.split(".")
    node: Any = data
    for p in parents:
        if isinstance(node, list) and p.isdigit() and int(p) < len(node):
            node = node[int(p)]
        elif isinstance(node, dict):
            node = node.setdefault(p, {})
        else:
            raise AccelsimError.single(where, f"--set {path}", "no such field to set")
    if isinstance(node, list):
        if not (last.isdigit() and int(last) < len(node)):
            raise AccelsimError.single(where, f"--set {path}", f"'{last}' is not an index of "
                                       f"a list of {len(node)}")
        node[int(last)] = value
    else:
        node[last] = value


def _scenario(scenario_file: Path, sets: list[str] | None = None,
              objective: str | None = None, field: str = "objective") -> Any:
    """The scenario file, with ``--set PATH=VALUE`` and ``--objective`` (the scenario's
    ``field``: ``objective``, or ``plan.objective`` for plan) applied to its mapping before
    it is validated (a bad value is one line naming the field; an unknown objective one
    line naming the option and its choices)."""
    from accelsim.kinds import require

    if objective is not None and objective not in OBJECTIVES[field]:
        raise AccelsimError.single(str(scenario_file), "--objective", "expected one of "
                                   + ", ".join(OBJECTIVES[field]) + f"; got {objective!r}")
    sc = require(scenario_file, "scenario")
    if not sets and objective is None:
        return sc
    from accelsim.config import read_yaml
    from accelsim.kinds.base import KINDS

    data = read_yaml(scenario_file)
    where = str(scenario_file)
    for item in sets or []:
        path, sep, text = item.partition("=")
        if not sep or not path.strip() or not text.strip():
            raise AccelsimError.single(where, "--set", f"expected PATH=VALUE (e.g. "
                                       f"power_cap_mw=900), got {item!r}")
        _set_value(data, path.strip(), text.strip(), where)
    if objective is not None and field == "objective":
        data["objective"] = objective
    elif objective is not None and isinstance(data.get("plan"), dict):
        data["plan"]["objective"] = objective
    return KINDS["scenario"].from_data(data, scenario_file, where, True)


def _provenance(scenario_file: Path, sc: Any, anchor: list[str] | None,
                sets: list[str] | None = None, objective: str | None = None
                ) -> dict[str, Any]:
    """What a JSON output was computed from: ``accelsim_version``, ``scenario_sha256`` (the
    scenario file's bytes), ``inputs_sha256`` (the scenario and every device profile and
    model file it reads, in that order), the ``--anchor``, ``--set`` and ``--objective``
    what-ifs, and ``date`` (UTC, when the figures were computed: a replayed output keeps
    its date)."""
    import datetime
    import hashlib

    from accelsim import __version__

    files = [scenario_file, *sc.input_files()]
    h = hashlib.sha256()
    for p in files:
        h.update(cache.file_digest(p).encode() + b"\n")
    return {"accelsim_version": __version__,
            "scenario_sha256": cache.file_digest(scenario_file),
            "inputs_sha256": h.hexdigest(), "anchors": list(anchor or []),
            "sets": list(sets or []), "objective": objective,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def _solver_first() -> None:
    """For a command that solves a MILP (scipy.optimize): scipy.special and scipy.linalg
    imported before a cold run's worker processes fork, which inherit them. The workers'
    set-up imports both (the confidence intervals' ``stdtrit``; numba's BLAS check) and
    scipy.optimize imports both here too: once instead of in both processes (0.2 s CPU),
    the set-up shorter by what this start-up grows."""
    import importlib

    for name in ("scipy.special", "scipy.linalg"):
        importlib.import_module(name)


def _device_table(sc: Any, quiet: bool, no_cache: bool = False, after: tuple[str, ...] = ()
                  ) -> Any:
    """Per device x workload evaluation, with a progress bar: evaluations done of all, the
    time taken and left (a cold run takes tens of seconds). ``after``: the modules the
    command needs next, imported while worker processes evaluate (a cold run)."""
    from accelsim.fleet import evaluate_devices
    from accelsim.fleet.pd import pd_tasks
    from accelsim.fleet.routing import routed_specs

    n = (len(sc.pool_of()) * (len(sc.workloads) + len(routed_specs(sc.workloads)))
         + len(pd_tasks(sc.workloads)))
    with count_bar("{task.description}", quiet) as bar:
        task = bar.add_task("evaluating devices", total=n)
        started = [0]

        def progress(what: str) -> None:  # as each device x workload starts or is done
            bar.update(task, completed=started[0], description=f"evaluating {what}")
            started[0] += 1

        with cache.disabled(no_cache):
            table_ = evaluate_devices(sc, progress, after=after)
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
    sets: SetOption = None,
    objective: ObjectiveOption = None,
) -> None:
    """Price every device for every workload and every fleet mix against the demand."""
    set_anchors(anchor)  # --anchor: this command's efficiency what-if
    sc = _scenario(scenario_file, sets, objective)
    replay.note_inputs([scenario_file, *sc.input_files()])
    for folder, option in ((csv_dir, "--csv"), (plot_dir, "--plot")):
        if folder is not None:
            check_dir(folder, option)  # before the evaluation, not after it
    dev_table = _device_table(sc, as_json, no_cache, ("accelsim.fleet.ranking",))
    from accelsim.fleet import compare as run_compare

    res = run_compare(sc, dev_table=dev_table)
    from accelsim.fleet.compare_verdict import annotate, verdicts

    annotate(sc, res.fleets, res.devices)
    verdict = verdicts(sc, res.fleets)
    fleets = [fleet_out(f) for f in sorted(res.fleets, key=lambda f: (f["year"],
                                                                     f["year_rank"]))]
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
        emit_json({"provenance": _provenance(scenario_file, sc, anchor, sets, objective),
                   "scenario": sc.name, "objective": sc.objective, "demand": res.demand,
                   "verdicts": verdict,
                   "devices": res.devices[DEVICE_COLUMNS].to_dict(orient="records"),
                   **({"rentals": res.rentals} if res.rentals else {}), "fleets": fleets})
        return
    from accelsim import workloads

    console.print(f"[bold]{scenario_file}: {sc.name}[/bold] - {sc.description}")
    need = ", ".join(f"{w} {fmt_num(v)} {workloads.of(sc.workloads[w]).unit}"
                     for w, v in res.demand.items())
    console.print(f"demand: {need}; objective: {sc.objective}")
    console.print("[bold]verdict, per purchase year[/bold]")
    for v in verdict:
        console.print(f"  {v['line']}")
    for title, rows in device_tables(sc, res.devices).items():
        console.print(table(title, rows))
    if res.rentals:
        console.print(table(RENTAL_TITLE, rental_rows(res.rentals)))
    from accelsim.fleet.routing import routing_tables

    for title, rows in routing_tables(sc, res.devices, fleets).items():
        console.print(table(title, rows))
    rule = ranking_rule(sc)
    for year, rows in fleet_tables_by_year(sc, fleets).items():
        console.print(table(
            f"fleets bought in {year}, best first: within the rules first, then {rule}; "
            "capacity allocated to each workload (capacity workloads first), and what the "
            "whole fleet could do on it alone; headroom: the multiple of every demand at "
            "once the fleet can serve, less 1; per USD: whole fleet's capacity over a year "
            "per USD of TCO", rows))


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
    sets: SetOption = None,
    objective: PlanObjectiveOption = None,
    csv_dir: Annotated[Path | None, typer.Option("--csv", help="Write quarters.csv, "
                                                 "binding.csv and years.csv to this "
                                                 "folder.")] = None,
) -> None:
    """A purchase plan by quarter over the scenario's horizon (one MILP): deliveries, served
    demand, what binds each quarter and its marginal value, yearly spend, present cost."""
    set_anchors(anchor)  # --anchor: this command's efficiency what-if
    sc = _scenario(scenario_file, sets, objective, "plan.objective")
    replay.note_inputs([scenario_file, *sc.input_files()])
    if sc.plan is None:
        raise AccelsimError.single(str(scenario_file), "plan", "required for accelsim plan: "
                                   "start, quarters, budget_usd_per_year, deliveries")
    if csv_dir is not None:
        check_dir(csv_dir, "--csv")
    _solver_first()
    dev_table = _device_table(sc, as_json, no_cache, ("accelsim.plan.problem",
                                                      "accelsim.plan.solve"))
    from accelsim.plan import build, solve_plan
    from accelsim.report import plan_frames

    prob = build(sc, dev_table, sc.plan, str(scenario_file))
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from accelsim.plan import TIME_LIMIT_S

    with Progress(TextColumn(f"solving the plan: {len(prob.devices)} devices x "
                             f"{len(prob.workloads)} workloads x {prob.demand.shape[1]} "
                             f"quarters, at most {TIME_LIMIT_S:.0f} s"), BarColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                  disable=as_json) as bar:
        bar.add_task("solve", total=None)
        res = solve_plan(prob)
    if csv_dir is not None:
        with writing(csv_dir, "--csv"):
            csv_dir.mkdir(parents=True, exist_ok=True)
            for name, frame in plan_frames(res).items():
                frame.to_csv(csv_dir / f"{name}.csv", index=False)
    if as_json:
        emit_json({"provenance": _provenance(scenario_file, sc, anchor, sets, objective),
                   **res})
    else:
        from accelsim.report import plan_tables

        console.print(f"[bold]{scenario_file}: plan over {len(res['quarters'])} quarters, "
                      f"objective {res['objective_kind']}[/bold]: present cost "
                      f"{res['cost_pv_usd'] / 1e9:.3f} B USD (capex less "
                      f"residual value, opex; at {100 * sc.finance.cost_of_capital:g} %); "
                      f"{res['objective_usd'] / 1e9:.3f} B USD with the unserved-"
                      f"demand penalty; {100 * res['served_fraction_mean']:.1f} % of demand "
                      f"served (mean over workloads and quarters); {res['solver']}")
        for title, rows in plan_tables(res, sc.plan.budget_usd_per_year).items():
            console.print(table(title, rows))
    if not res["proven_optimal"]:
        replay.forbid()  # another run may get further in the time limit
        typer.echo(f"{scenario_file}: plan: the solver stopped at its time limit; the plan is "
                   f"the best found, within {100 * res['mip_gap']:.2g} % of the optimum (not "
                   "proven optimal)", err=True)
    if not res["feasible"]:
        infeasible(scenario_file, "plan.objective", f"{res['reason']}; expected larger "
                   "budgets, deliveries or power, or the served_demand objective")


@contextlib.contextmanager
def _draws_bar(samples: int, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """Progress of Monte Carlo draws on stderr, with the time left (the base evaluation
    comes first: the bar shows it as elapsed time at 0 draws)."""
    with count_bar("uncertainty draws", quiet) as bar:
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
    sets: SetOption = None,
    objective: ObjectiveOption = None,
    spend_fleets: Annotated[str, typer.Option(
        "--spend-fleets", help="How a fleet given as spend_usd is read in the draws: "
        "base-units (default: the units its spend buys at the base case's prices, in every "
        "draw) or what-spend-buys (the units its spend buys at each draw's prices, within "
        "supply caps).")] = "base-units",
) -> None:
    """How sure is the ranking: fleet metrics' 5-95 % bands and P(mix A beats mix B) over
    the profiles' ranges (correlated where numbers share a cause)."""
    from accelsim.uncertainty import SPEND_READINGS

    if spend_fleets not in SPEND_READINGS:
        raise AccelsimError.single(str(scenario_file), "--spend-fleets", "expected one of "
                                   + ", ".join(SPEND_READINGS) + f"; got {spend_fleets!r}")
    set_anchors(anchor)  # --anchor: this command's efficiency what-if
    from accelsim.uncertainty import monte_carlo, summarise

    sc = _scenario(scenario_file, sets, objective)
    replay.note_inputs([scenario_file, *sc.input_files()])
    with _draws_bar(samples, quiet=False) as update, cache.disabled(no_cache):
        out = summarise(monte_carlo(sc, samples, seed, str(scenario_file), progress=update,
                                    spend=spend_fleets))
    if as_json:
        emit_json({"provenance": {**_provenance(scenario_file, sc, anchor, sets, objective),
                                  "spend_fleets": spend_fleets}, **out})
        return
    console.print(f"[bold]{scenario_file}: {out['draws']} draws[/bold] (profile ranges, "
                  "triangular; one vendor's efficiencies and failure rates move together); "
                  f"{out['spend_fleets_means']}")
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
    sets: SetOption = None,
    objective: ObjectiveOption = None,
) -> None:
    """One self-contained HTML page to send: the comparison and what binds, the
    cost-performance and uncertainty plots, every assumption with its source."""
    set_anchors(anchor)  # --anchor: this command's efficiency what-if
    from accelsim.htmlreport import render

    sc = _scenario(scenario_file, sets, objective)
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
    sets: SetOption = None,
    objective: ObjectiveOption = None,
    csv_dir: Annotated[Path | None, typer.Option("--csv", help="Write units.csv, "
                                                 "workloads.csv and binding.csv (and "
                                                 "pd_units.csv with PD units) to this "
                                                 "folder.")] = None,
) -> None:
    """The device mix (integer servers) that maximises the scenario's objective (MILP)."""
    set_anchors(anchor)  # --anchor: this command's efficiency what-if
    from accelsim.fleet import mix_problem, purchase_year

    sc = _scenario(scenario_file, sets, objective)
    replay.note_inputs([scenario_file, *sc.input_files()])
    year = purchase_year(sc, year, str(scenario_file))  # before the seconds-long evaluation
    if csv_dir is not None:
        check_dir(csv_dir, "--csv")
    _solver_first()
    dev_table = _device_table(sc, as_json, no_cache, ("accelsim.optimize", "accelsim.fleet.mix",
                                                      "accelsim.fleet.routing"))
    from accelsim.optimize import solve

    res = solve(mix_problem(sc, dev_table, year))
    if csv_dir is not None:
        from accelsim.report import optimum_frames

        with writing(csv_dir, "--csv"):
            csv_dir.mkdir(parents=True, exist_ok=True)
            for name, frame in optimum_frames(res).items():
                frame.to_csv(csv_dir / f"{name}.csv", index=False)
    if as_json:
        emit_json({"provenance": _provenance(scenario_file, sc, anchor, sets, objective), **res})
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
    rows += [{"device": d, "workload": w, "units": u}
             for d, ws in res.get("rented", {}).items() for w, u in ws.items()]
    console.print(table("", rows))
    if res.get("rented"):
        console.print(f"rent {res['rent_usd_per_year'] / 1e9:.3f} B USD a year, paid from "
                      "its region's pool (in the pools' spend below)")
    console.print(table("", [{"pool": k, "spend B USD": v / 1e9}
                             for k, v in res["pool_spend_usd"].items()]))
    console.print(table("", [{"workload": w, "capacity": res["capacity"][w],
                              "served": res["served_fraction"][w]} for w in res["capacity"]]))
    if res.get("pd_units"):
        console.print(table(
            "prefill/decode units bought (accelsim.fleet.pd; in units above as '<workload> "
            "PD'): capacity = units x req/s per unit", [
                {"unit": u["pair"], "workload": u["workload"], "units": u["units"],
                 "servers": ", ".join(f"{d} {n:,}" for d, n in u["servers"].items()),
                 "req/s per unit": f"{u['rps_per_unit']:,.3g}",
                 "capacity": f"{u['capacity']:,.0f}"} for u in res["pd_units"]]))
    from accelsim.optimize.milp import MARGINAL_UNITS

    obj = "USD/yr of TCO" if res["objective_kind"] == "min_cost" else "served fraction"
    rows = [{"constraint": b["constraint"], "slack": b["slack"], "unit": b["per"],
             "LP dual": (b["shadow_price"] * MARGINAL_UNITS.get(b["per"], (1.0, ""))[0]
                         if b["shadow_price"] is not None else None),
             "marginal": b.get("marginal"), "per": b.get("marginal_per", "")}
            for b in res["binding_constraints"]]
    console.print(table(f"binding constraints: marginal = change of the objective ({obj}) "
                        "when the constraint is loosened, re-solved; LP dual of the "
                        "relaxation (same unit) for reference; |value| < 1e-9 is 0", rows))



"""Print the training validation tables (predicted vs. published) as Markdown for the README.

The rows and their citations are the run files in ``configs/runs/`` (Narayanan et al. 2021,
Korthikanti et al. 2022); ``accelsim validate-runs`` and ``tests/training/test_validation.py``
run the same predictions. Run: ``python benchmarks/validate_training.py``.
"""

from __future__ import annotations

from accelsim.runs import load_runs, runs_dir, validate_runs


def main() -> None:
    for name in ("narayanan2021-megatron-a100.yaml", "korthikanti2022-megatron-a100.yaml"):
        path = runs_dir() / name
        runs = {r.id: r for r in load_runs(path).runs}
        results = validate_runs([path])
        print(f"\n{name}\n| run | GPUs | tp | pp | layout | published | predicted | error |")
        print("|---|---|---|---|---|---|---|---|")
        for r in results:
            run = runs[r.id]
            print(f"| {r.id} | {run.devices} | {run.tp} | {run.pp} | {r.detail.split(';')[0]} "
                  f"| {r.published:g} | {r.predicted:.1f} | {100 * r.error:+.1f} % |")
        errs = [abs(r.error) for r in results]
        print(f"\nmax |error| {100 * max(errs):.1f} %, mean {100 * sum(errs) / len(errs):.1f} %")


if __name__ == "__main__":
    main()

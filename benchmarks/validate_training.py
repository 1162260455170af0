"""Print the training model's validation tables (predicted vs. published) as Markdown.

The same functions back ``tests/training/test_validation.py``; this script only
formats them for the README. Run: ``python benchmarks/validate_training.py``.
"""

from __future__ import annotations

from pathlib import Path

from accelsim.training.validation import korthikanti_table, narayanan_table

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    t = narayanan_table(ROOT / "tests" / "data" / "narayanan2021_table1.csv")
    print("| params (B) | GPUs | tp | pp | dp | mb | v | published TFLOP/s | predicted | error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in t.itertuples():
        print(f"| {r.params_billion} | {r.gpus} | {r.tp} | {r.pp} | {r.dp} | {r.micro_batch} | "
              f"{r.virtual_stages} | {r.published_tflops:.0f} | {r.predicted_tflops:.1f} | "
              f"{r.error_pct:+.1f} % |")
    print(f"\nmax |error| = {t.error_pct.abs().max():.1f} %, mean |error| = "
          f"{t.error_pct.abs().mean():.1f} %\n")
    k = korthikanti_table()
    print("| model | GPUs | published MFU | predicted MFU | error |")
    print("|---|---|---|---|---|")
    for r in k.itertuples():
        print(f"| {r.model} | {r.gpus} | {r.published_mfu_pct:.1f} % | "
              f"{r.predicted_mfu_pct:.1f} % | {r.error_pct:+.1f} % |")


if __name__ == "__main__":
    main()

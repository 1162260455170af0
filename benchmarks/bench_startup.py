"""Start-up time of CLI calls, end to end (a new process each), and what the imports cost.

Prints the median of ``REPEATS`` runs of each command, then the import time of the heavy
libraries alone. Bytecode caching is on (as for any installed package; this sandbox sets
PYTHONDONTWRITEBYTECODE, which would make every call recompile accelsim).
Targets (issue 14): ``--version`` < 0.1 s, ``train-search`` < 0.3 s.
Run: ``python benchmarks/bench_startup.py``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 7
EXE = shutil.which("accelsim") or "accelsim"

COMMANDS = {
    "accelsim --version": [EXE, "--version"],
    "accelsim train-search (gpt3-175b, 1024 x h100-sxm)": [
        EXE, "train-search", str(ROOT / "configs/models/gpt3-175b.yaml"), "--device",
        "h100-sxm", "--devices", "1024"],
    "accelsim validate configs/fleet.yaml": [EXE, "validate", str(ROOT / "configs/fleet.yaml")],
}
IMPORTS = {
    "python (nothing)": "pass",
    "typer + rich": "import typer, rich.console, rich.table",
    "pydantic (BaseModel)": "from pydantic import BaseModel",
    "numpy": "import numpy",
    "pandas": "import pandas",
    "accelsim.cli": "import accelsim.cli",
    "accelsim.training.search": "import accelsim.training.search",
}


def median_s(cmd: list[str], env: dict[str, str]) -> float:
    subprocess.run(cmd, env=env, capture_output=True, check=False)  # warm caches, bytecode
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for name, cmd in COMMANDS.items():
        print(f"{name}: {median_s(cmd, env):.3f} s")
    for name, code in IMPORTS.items():
        print(f"import {name}: {median_s([sys.executable, '-c', code], env):.3f} s")


if __name__ == "__main__":
    main()

"""Start-up time of CLI calls, end to end (a new process each), and what the imports cost.

Prints the median of ``REPEATS`` runs of each command, then the import time of the heavy
libraries alone. Bytecode caching is on (as for any installed package; this sandbox sets
PYTHONDONTWRITEBYTECODE, which would make every call recompile accelsim).
Targets: ``--version`` < 0.1 s, ``train-search`` < 0.3 s (issue 14), ``serve-llm`` on the
small example job <= 0.4 s (issue 24).
Run: ``python benchmarks/bench_startup.py``.
"""

from __future__ import annotations

import os
import resource
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
    # 4,000 requests on 2 replicas: the event engine, numba never imported (issue 24: 0.4 s)
    "accelsim serve-llm configs/jobs/chatbot-llama2-70b-h100.yaml": [
        EXE, "serve-llm", str(ROOT / "configs/jobs/chatbot-llama2-70b-h100.yaml")],
}
IMPORTS = {
    "python (nothing)": "pass",
    "typer + rich": "import typer, rich.console, rich.table",
    "pydantic (BaseModel)": "from pydantic import BaseModel",
    "numpy": "import numpy",
    "pandas": "import pandas",
    "accelsim.cli": "import accelsim.cli",
    "accelsim.training.search": "import accelsim.training.search",
    "accelsim.llm.sim": "import accelsim.llm.sim",
    "numba (the compiled scheduler's, before its CPU target)": "import numba",
}


def median_s(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Median wall and CPU (user + system) seconds of ``REPEATS`` runs."""
    subprocess.run(cmd, env=env, capture_output=True, check=False)  # warm caches, bytecode
    times, cpus = [], []
    for _ in range(REPEATS):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return statistics.median(times), statistics.median(cpus)


def main() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    print(f"load average {os.getloadavg()[0]:.2f}")
    for name, cmd in COMMANDS.items():
        wall, cpu = median_s(cmd, env)
        print(f"{name}: {wall:.3f} s (CPU {cpu:.3f} s)")
    for name, code in IMPORTS.items():
        wall, cpu = median_s([sys.executable, "-c", code], env)
        print(f"import {name}: {wall:.3f} s (CPU {cpu:.3f} s)")


if __name__ == "__main__":
    main()

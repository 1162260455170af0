"""What request-size routing and prefill/decode disaggregation cost and buy on the seed
scenario: cold ``accelsim compare`` (a new process, an empty cache folder, ``--no-cache``)
without them, routed at 2,000 prompt tokens, and with the 910C -> H20 and H20 -> H20 PD
pairings; then, per fleet, the chatbot's whole-fleet requests/s per USD of TCO with each
option against colocated whole-distribution serving (docs/model-fleets.md quotes them).

Run: ``python benchmarks/bench_routing.py [--repeat N]`` (medians of N cold runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "configs" / "fleet.yaml"
EXE = shutil.which("accelsim") or "accelsim"
OPTIONS = {
    "off": [],
    "size routing": ["--set", "workloads.chatbot.routing={edges: [2000]}"],
    "PD pairs": ["--set", "workloads.chatbot.disaggregation={pairs: [{prefill: ascend-910c, "
                 "decode: h20}, {prefill: h20, decode: h20}]}"],
}


def cold(extra: list[str]) -> tuple[float, dict]:
    """Seconds of one cold ``compare --json`` and its output."""
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "ACCELSIM_NO_CACHE"}
        env["ACCELSIM_CACHE_DIR"] = cache
        t = time.perf_counter()
        r = subprocess.run([EXE, "compare", str(SCENARIO), "--json", "--no-cache", *extra],
                           env=env, capture_output=True, text=True, check=False)
        dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"compare {' '.join(extra)} failed: {r.stderr[-500:]}")
    return dt, json.loads(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    outs = {}
    for name, extra in OPTIONS.items():
        times = []
        for _ in range(args.repeat):
            dt, outs[name] = cold(extra)
            times.append(dt)
        print(f"cold compare, {name:14s} {statistics.median(times):6.1f} s "
              f"(runs: {', '.join(f'{t:.1f}' for t in times)})", flush=True)
    print(f"{'fleet':22s} {'unrouted':>9s} {'size':>9s} {'gain':>7s} {'PD':>9s} {'gain':>7s}"
          "   (chatbot req/s a year per USD of TCO, whole fleet)")
    for f_size, f_pd in zip(outs["size routing"]["fleets"], outs["PD pairs"]["fleets"],
                            strict=True):
        s, p = f_size["routing"]["chatbot"], f_pd["routing"]["chatbot"]
        print(f"{f_size['name']:22s} {s['capacity_per_usd_unrouted']:9,.0f} "
              f"{s['capacity_per_usd']:9,.0f} {100 * s['gain']:+6.1f}% "
              f"{p['capacity_per_usd']:9,.0f} {100 * p['gain']:+6.1f}%")


if __name__ == "__main__":
    main()

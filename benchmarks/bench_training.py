"""Speed of the training model: batch API throughput and a full layout search.

Prints ``configs_per_s=<n>`` for >= 10,000 random valid configurations through the
vectorized batch API (one core), and ``search_s=<t>`` for train-search of GPT-3 175B
on 1024 devices, and ``estimate_ms=<t>``: one job through :func:`estimate` (the single-job
path a notebook calls; llm-analysis 0.2.2's ``train()`` on a comparable case measured
0.26 ms per call on this machine). Run: ``python benchmarks/bench_training.py``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from accelsim.devices import catalog, load_device
from accelsim.training import TransformerModel, estimate, estimate_frame, search_layouts
from accelsim.training.job import load_job
from accelsim.training.perf import device_columns, job_columns, model_columns
from accelsim.training.search import candidate_layouts

N = 10_000
SEED = 1


def random_configs(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """n valid configurations: random models, devices and layouts (from candidate_layouts)."""
    specs = [p.spec for p in catalog().values()]
    frames, total = [], 0
    while total < n:
        layers = int(rng.choice([24, 32, 48, 64, 80, 96]))
        heads = int(rng.choice([16, 32, 64, 96, 128]))
        hidden = heads * int(rng.choice([64, 128]))
        model = TransformerModel(layers=layers, hidden=hidden, heads=heads,
                                 ffn_hidden=4 * hidden, vocab=51200,
                                 seq_len=int(rng.choice([2048, 4096, 8192])))
        spec = specs[int(rng.integers(len(specs)))]
        devices = int(rng.choice([64, 128, 256, 512, 1024]))
        cand = candidate_layouts(model, devices, 1024, spec.scaleup_domain)
        cand = cand.sample(min(len(cand), 500), random_state=int(rng.integers(2**31)))
        for k, v in {**model_columns(model), **device_columns(spec, "bf16"),
                     **job_columns("bf16")}.items():
            cand[k] = v
        cand["sequence_parallel"] = (cand["tp"] > 1).astype(int)
        cand["global_batch"] = 1024
        frames.append(cand)
        total += len(cand)
    return pd.concat(frames, ignore_index=True).head(n)


def main() -> None:
    rng = np.random.default_rng(SEED)
    configs = random_configs(N, rng)
    estimate_frame(configs.head(100))  # warm up
    reps = 5
    t0 = time.perf_counter()
    for _ in range(reps):
        out = estimate_frame(configs)
    dt = (time.perf_counter() - t0) / reps
    assert len(out) == N
    print(f"configs={N} seconds={dt:.4f} configs_per_s={N / dt:,.0f}")

    gpt3 = TransformerModel(layers=96, hidden=12288, heads=96, ffn_hidden=49152, vocab=51200,
                            seq_len=2048)
    t0 = time.perf_counter()
    res = search_layouts(gpt3, load_device("a100-80gb-sxm").spec, 1024, global_batch=1536)
    ds = time.perf_counter() - t0
    print(f"train-search gpt3-175b on 1024 x a100: layouts={res.evaluated} search_s={ds:.3f} "
          f"best={res.best.parallelism if res.best else None}")

    job = load_job("configs/jobs/gpt3-175b-a100.yaml")
    spec = load_device(job.device).spec
    estimate(job, spec)
    calls = 500
    t0 = time.perf_counter()
    for _ in range(calls):
        estimate(job, spec)
    ms = (time.perf_counter() - t0) / calls * 1e3
    print(f"estimate() gpt3-175b-a100 job: estimate_ms={ms:.3f}")


if __name__ == "__main__":
    main()

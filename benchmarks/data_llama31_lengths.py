"""Histograms of the MLPerf Inference v5.1 Llama 3.1 8B and 405B prompt and output lengths, for
configs/runs/heldout/mlperf-inference-v51-llama31.yaml.

Input: the per-sample token lengths of MLCommons' two data sets as extracted to CSV by
openshift-psap/performance-dashboard (commit 71007029):
* mlperf-data/summaries/llama3-1-8b-datacenter.csv: CNN/DailyMail cnn_eval.json, 13,368
  samples; input_length = len(tok_input) (the Llama 3.1 tokens the harness feeds). Its
  output_length is characters / 4 and is not used: the 8B engines generate exactly 128 tokens
  (generation_config.json max_output_len 128, use_stop_tokens false; the Offline logs' tokens/s
  over samples/s is 128.0).
* mlperf-data/summaries/llama3-1-405b.csv:
  mlperf_llama3.1_405b_dataset_8313_processed_fp16_eval.pkl, 8,313 samples; input_length =
  tok_input_len, output_length = tok_ref_output_len (the reference answers). What the 405B
  generates is not in the data set; each run's log fixes its generated mean (tokens/s over
  samples/s), so the reference shape is scaled to that mean and capped at the harness's
  max_output_len 2,000 (an assumption on the shape, labelled in the run file), the scale solved
  so that the capped mean is the log's.
Values are bin means over ``bin`` tokens (so the histogram keeps the sample mean), weights the
sample counts.

    python benchmarks/data_llama31_lengths.py 8b path/to/llama3-1-8b-datacenter.csv
    python benchmarks/data_llama31_lengths.py 405b path/to/llama3-1-405b.csv 645.4 653.9 657.2
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from data_openorca_lengths import histogram

MAX_OUTPUT_405B = 2000


def scaled(ref: np.ndarray, mean: float, cap: int) -> np.ndarray:
    """The reference lengths scaled so that, capped at ``cap``, their mean is ``mean``."""
    lo, hi = 0.1, 10.0
    for _ in range(100):
        s = (lo + hi) / 2
        out = np.clip(np.rint(ref * s), 1, cap)
        lo, hi = (s, hi) if out.mean() < mean else (lo, s)
    return np.clip(np.rint(ref * (lo + hi) / 2), 1, cap).astype(int)


def show(name: str, x: np.ndarray, bin_: int) -> None:
    v, w = histogram(x, bin_)
    print(f"# {name}: {len(x)} samples, mean {x.mean():.1f}, max {x.max()}, bins of {bin_}")
    print(f"values: {v}")
    print(f"weights: {w}")


def main(which: str, path: str, means: list[float]) -> None:
    d = pd.read_csv(path)
    prompt = d["input_length"].to_numpy()
    if which == "8b":
        show("prompt", prompt, 32)
        return
    show("prompt", prompt, 256)
    ref = d["output_length"].to_numpy().astype(float)
    for m in means:
        show(f"output scaled to {m}", scaled(ref, m, MAX_OUTPUT_405B), 32)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [float(a) for a in sys.argv[3:]])

"""Histograms of the MLPerf Inference Llama-2-70B prompt and output lengths, for
configs/runs/mlperf-inference-llama2-70b.yaml.

Input: the per-sample token lengths of MLCommons' OpenOrca set
(open_orca_gpt4_tokenized_llama.sampled_24576.pkl, columns tok_input_length and
tok_output_length) as extracted to CSV by openshift-psap/performance-dashboard
(mlperf-data/summaries/llama2-70b-99.csv, commit 71007029). Prompts are used as they are.
The output column holds the GPT-4 reference answers, not what Llama-2-70B-chat generates;
the run's own log fixes the generated mean (Offline: 24,524.9 tokens/s over 84.4792
samples/s = 290.3 tokens per sample), so the reference shape is scaled to that mean and
capped at the benchmark's 1,024 max_new_tokens (an assumption on the shape, labelled in the
run file). Values are bin means over ``BIN`` tokens, weights the sample counts.

    python benchmarks/data_openorca_lengths.py path/to/llama2-70b-99.csv
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

BIN = 16
GENERATED_MEAN = 24524.9 / 84.4792  # MLPerf v4.1 NVIDIA DGX H100 Offline summary
MAX_NEW_TOKENS = 1024


def histogram(x: np.ndarray, bin_: int = BIN) -> tuple[list[int], list[int]]:
    """Lengths in bins of ``bin_`` tokens: each bin's rounded mean length and its count."""
    b = (x - 1) // bin_
    vals, counts = [], []
    for k in np.unique(b):
        sel = x[b == k]
        vals.append(int(np.rint(sel.mean())))
        counts.append(len(sel))
    return vals, counts


def main(path: str, generated_mean: float = GENERATED_MEAN, show_max: bool = False) -> None:
    """Print the prompt and output-length histograms of a per-sample lengths CSV, the
    reference output lengths scaled to ``generated_mean`` (the log's own mean)."""
    d = pd.read_csv(path)
    prompt = d["input_length"].to_numpy()
    ref = d["output_length"].to_numpy().astype(float)
    out = np.minimum(np.rint(ref * generated_mean / ref.mean()), MAX_NEW_TOKENS).astype(int)
    out = np.maximum(out, 1)
    for name, x in (("prompt", prompt), ("output", out)):
        v, w = histogram(x)
        top = f", max {x.max()}" if show_max else ""
        print(f"# {name}: {len(x)} samples, mean {x.mean():.1f}{top}, bins of {BIN}")
        print(f"values: {v}")
        print(f"weights: {w}")


if __name__ == "__main__":
    main(sys.argv[1])

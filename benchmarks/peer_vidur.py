"""accelsim's linear operators against Vidur's profiled H100 kernels (Llama-2-70B).

Vidur (Agrawal et al., MLSys'24; github.com/microsoft/vidur) predicts an iteration from
kernel times it profiled on real GPUs; its table for the non-attention operators of
Llama-2-70B on H100 (data/profiling/compute/h100/meta-llama/Llama-2-70b-hf/mlp.csv, commit
7d475133) is the measurement accelsim's roofline GEMMs stand in for. (Its attention table
for this case is not in the repository snapshot available here, so Vidur's simulator
itself does not run on it.) Prints, per tensor-parallel degree and token count, the median
measured time of the four GEMMs of one layer (QKV, out-projection, gate+up, down) and of
the whole non-attention layer (plus norms, rotary, activation, residual adds) against
accelsim's (:func:`accelsim.llm.perf._gemm`, the same H100 profile as everywhere; the
tensor-parallel all-reduces, profiled separately by Vidur, are left out of both).

    python benchmarks/peer_vidur.py path/to/vidur/mlp.csv
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from accelsim.devices import load_device
from accelsim.llm.perf import ACT_BYTES, KERNELS_PER_LAYER, _gemm
from accelsim.transformer.model import load_model

GEMMS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
OTHER = ("input_layernorm", "attn_rope", "post_attention_layernorm", "mlp_act", "add")


def accelsim_layer(tokens: int, tp: int) -> tuple[float, float]:
    """Seconds of one layer's four GEMMs, and of its whole non-attention part."""
    spec = load_device("h100-sxm").spec
    m = load_model("llama2-70b")
    h, a, kv, ff = m.hidden, m.heads, m.n_kv_heads, m.ffn_hidden
    hd = h // a
    peak = spec.flops("bf16")
    T = np.array([float(tokens)])
    g = (_gemm(T, h, (a * hd + 2 * kv * hd) / tp, 2.0, peak, spec)
         + _gemm(T, a * hd / tp, h, 2.0, peak, spec)
         + _gemm(T, h, 2 * ff / tp, 2.0, peak, spec)
         + _gemm(T, ff / tp, h, 2.0, peak, spec))[0]
    mem = spec.memory_bw_Bps * spec.eff_memory
    elementwise = tokens * ACT_BYTES * (10 * h + 3 * ff / tp) / mem
    # the attention kernel is one of the layer's 11: ten here
    rest = elementwise + (KERNELS_PER_LAYER - 1) * spec.kernel_overhead_s
    return float(g), float(g + rest)


def main(path: str) -> None:
    d = pd.read_csv(path)
    rows = []
    for tp in (2, 4, 8):
        for n in (1, 16, 64, 256, 1024, 4096):
            r = d[(d.num_tensor_parallel_workers == tp) & (d.num_tokens == n)]
            if r.empty:
                continue
            r = r.iloc[0]
            vg = sum(r[f"time_stats.{k}.median"] for k in GEMMS) / 1e3
            vall = vg + sum(r[f"time_stats.{k}.median"] for k in OTHER) / 1e3
            ag, aall = accelsim_layer(n, tp)
            rows.append({"tp": tp, "tokens": n, "vidur_gemm_ms": vg * 1e3,
                         "accelsim_gemm_ms": ag * 1e3, "gemm_ratio": ag / vg,
                         "vidur_layer_ms": vall * 1e3, "accelsim_layer_ms": aall * 1e3,
                         "layer_ratio": aall / vall})
    t = pd.DataFrame(rows)
    print(t.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"GEMMs: mean ratio {t.gemm_ratio.mean():.2f}, range {t.gemm_ratio.min():.2f}-"
          f"{t.gemm_ratio.max():.2f}; whole layer: mean {t.layer_ratio.mean():.2f}, range "
          f"{t.layer_ratio.min():.2f}-{t.layer_ratio.max():.2f}")


if __name__ == "__main__":
    main(sys.argv[1])

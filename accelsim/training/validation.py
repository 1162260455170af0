"""Published training runs, re-predicted: used by the tests and by benchmarks/validate_training.py.

Narayanan et al. SC'21 Table 1 (Megatron-LM, A100, fp16 mixed precision, full
recomputation, interleaved 1F1B, no overlap of the gradient all-reduce, unfused
softmax attention: Megatron-LM as of 2021). Their throughput counts
``96 B s l h^2 (1 + s/6h + V/16lh)`` FLOPs per step (paper Eq. 3). The table does
not give the micro-batch size or the number of virtual stages: like the authors,
who tuned them, we take the best of the valid choices.

Korthikanti et al. 2022 (arXiv 2205.05198, Table 5): selective recomputation +
sequence parallelism, bf16, reported model-FLOPs utilisation.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from accelsim.training.job import Parallelism, TrainJob, TransformerModel
from accelsim.training.perf import estimate

VOCAB = 51200
SEQ = 2048


def _megatron_model(layers: int, hidden: int, heads: int) -> TransformerModel:
    return TransformerModel(layers=layers, hidden=hidden, heads=heads, ffn_hidden=4 * hidden,
                            vocab=VOCAB, seq_len=SEQ)


def narayanan_eq3_flops(batch: int, layers: int, hidden: int, seq: int = SEQ,
                        vocab: int = VOCAB) -> float:
    """FLOPs per step as the paper counts them (Eq. 3, full recomputation)."""
    h, s, ell = hidden, seq, layers
    return 96 * batch * s * ell * h * h * (1 + s / (6 * h) + vocab / (16 * ell * h))


def narayanan_table(csv: str | Path, device: str = "a100-80gb-sxm") -> pd.DataFrame:
    """Predicted vs. published TFLOP/s per GPU for every row of Table 1."""
    ref = pd.read_csv(csv, comment="#")
    out = []
    for row in ref.itertuples():
        L, h, tp, pp, n, B = (int(row.layers), int(row.hidden), int(row.tp), int(row.pp),
                              int(row.gpus), int(row.global_batch))
        dp = n // (tp * pp)
        model = _megatron_model(L, h, int(row.heads))
        best = None
        for b in (1, 2, 4, 8):
            for v in range(1, 9):
                if (v > 1 and pp == 1) or L % (pp * v) or B % (dp * b):
                    continue
                if v > 1 and (B // (dp * b)) % pp:
                    continue
                job = TrainJob(
                    device=device, model=model, global_batch=B, precision="fp16",
                    attention="unfused", overlap_dp_comm=False,
                    parallelism=Parallelism(tp=tp, pp=pp, dp=dp, micro_batch=b,
                                            virtual_stages=v, sequence_parallel=False,
                                            recompute="full", zero=0),
                )
                res = estimate(job)
                if res.fits_memory and (best is None or res.step_time_s < best.step_time_s):
                    best = res
        if best is None:
            raise ValueError(f"no fitting layout for row {row.params_billion}B")
        pred = narayanan_eq3_flops(B, L, h) / best.step_time_s / n / 1e12
        pub = float(row.achieved_tflops_per_gpu)
        par = best.job.parallelism
        out.append({
            "params_billion": row.params_billion, "gpus": n, "tp": tp, "pp": pp, "dp": dp,
            "micro_batch": par.micro_batch, "virtual_stages": par.virtual_stages,
            "published_tflops": pub, "predicted_tflops": pred,
            "error_pct": 100 * (pred - pub) / pub,
        })
    return pd.DataFrame(out)


# (name, layers, hidden, heads, tp, pp, gpus, global_batch, published MFU %)
KORTHIKANTI_2022 = [
    ("22B", 48, 6144, 64, 8, 1, 8, 4, 41.5),
    ("175B", 96, 12288, 96, 8, 8, 64, 64, 51.4),
    ("530B", 105, 20480, 128, 8, 35, 280, 280, 56.0),
    ("1T", 128, 25600, 160, 8, 64, 512, 512, 56.3),
]


def korthikanti_table(device: str = "a100-80gb-sxm") -> pd.DataFrame:
    out = []
    for name, L, h, a, tp, pp, n, B, mfu in KORTHIKANTI_2022:
        dp = n // (tp * pp)
        best = None
        for v in range(1, 9):
            if (v > 1 and pp == 1) or L % (pp * v) or (v > 1 and (B // dp) % pp):
                continue
            job = TrainJob(
                device=device, model=_megatron_model(L, h, a), global_batch=B, precision="bf16",
                attention="unfused", overlap_dp_comm=False,
                parallelism=Parallelism(tp=tp, pp=pp, dp=dp, micro_batch=1, virtual_stages=v,
                                        sequence_parallel=True, recompute="selective", zero=0),
            )
            res = estimate(job)
            if res.fits_memory and (best is None or res.mfu > best.mfu):
                best = res
        assert best is not None
        out.append({"model": name, "gpus": n, "published_mfu_pct": mfu,
                    "predicted_mfu_pct": 100 * best.mfu,
                    "error_pct": 100 * (best.mfu * 100 - mfu) / mfu})
    return pd.DataFrame(out)

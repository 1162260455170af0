"""Per-call speed of one training estimate: accelsim's ``estimate()`` against llm-analysis
(PyPI ``llm-analysis``, 0.2.2: ``llm_analysis.analysis.train``) on the same case, GPT-3 175B
(OPT-175B's shape in llm-analysis's catalog) on 1,024 A100 80 GB, TP8 PP8, batch 1536,
full recomputation.

Prints ``accelsim_ms=<t>`` and ``llm_analysis_ms=<t>`` (or that llm-analysis is not
installed: ``pip install llm-analysis==0.2.2`` in a separate environment, then run this
script there with accelsim installed too). Run: ``python benchmarks/peer_llm_analysis.py``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time

from accelsim.devices import load_device
from accelsim.training import Parallelism, TrainJob, estimate
from accelsim.transformer.model import load_model

CALLS = 500


def per_call_ms(fn, calls: int = CALLS) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e3


def main() -> None:
    job = TrainJob(device="a100-80gb-sxm", model=load_model("gpt3-175b"), global_batch=1536,
                   parallelism=Parallelism(tp=8, pp=8, dp=16, recompute="full"))
    spec = load_device(job.device).spec
    print(f"accelsim_ms={per_call_ms(lambda: estimate(job, spec)):.3f}")
    try:
        from llm_analysis.analysis import train
    except ImportError:
        print("llm_analysis_ms=not installed (pip install llm-analysis==0.2.2)")
        return
    logging.disable(logging.CRITICAL)
    kw = dict(model_name="facebook_opt-175b", gpu_name="a100-sxm-80gb",
              dtype_name="w16a16e16", tp_size=8, pp_size=8, total_num_gpus=1024,
              seq_len=2048, global_batch_size=1536, batch_size_per_gpu=1,
              activation_recomputation=2, flash_attn=False, output_dir=None)

    def peer() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            train(**kw)

    print(f"llm_analysis_ms={per_call_ms(peer, 200):.3f}")


if __name__ == "__main__":
    main()

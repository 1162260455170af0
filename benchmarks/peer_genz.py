"""Side by side with GenZ (PyPI ``genz-llm`` 0.0.16, Bambhaniya et al. 2024, "Demystifying
platform requirements for diverse LLM inference use cases"): one replica of Llama 2 70B on
4 x H100 SXM, BF16, the same peak FLOP/s, memory bandwidth, scale-up bandwidth and
efficiencies as accelsim's profile (compute 0.59, memory 0.85). Prints, per case, GenZ's
and accelsim's time of one decode step (batch x context) and of one prefill.

GenZ is an analytic per-operator roofline too, without kernel-size efficiency curves,
kernel overheads or per-token elementwise traffic; the table shows where the two agree and
by how much they differ. Run where both are installed:
``pip install genz-llm==0.0.16`` (a separate environment is fine, with accelsim installed
too), then ``python benchmarks/peer_genz.py``.
"""

from __future__ import annotations

import warnings

from accelsim.devices import load_device
from accelsim.llm.job import Replica
from accelsim.llm.perf import replica_model

CASES_DECODE = [(1, 1024), (16, 1024), (64, 1024), (256, 1024), (64, 4096)]
CASES_PREFILL = [512, 2048, 8192]


def main() -> None:
    try:
        from GenZ import decode_moddeling, prefill_moddeling
    except ImportError:
        print("genz-llm is not installed (pip install genz-llm==0.0.16)")
        return
    warnings.filterwarnings("ignore")
    spec = load_device("h100-sxm").spec
    rm = replica_model(Replica(device="h100-sxm", model="llama2-70b", tp=4,
                               max_batched_tokens=8192, max_seqs=256))
    system = {"Flops": spec.flops("bf16") / 1e12, "Memory_size": spec.memory_bytes / 2**30,
              "Memory_BW": spec.memory_bw_Bps / 1e9, "ICN": spec.scaleup_bw_Bps / 1e9,
              "real_values": True}
    # GenZ applies one system_eff to both; give it the achieved peaks instead (system_eff 1)
    system["Flops"] *= spec.eff_compute
    system["Memory_BW"] *= spec.eff_memory
    system["ICN"] *= spec.eff_comm
    kw = dict(model="llama2_70b", system_name=system, bits="bf16", tensor_parallel=4,
              system_eff=1)
    print(f"{'case':<28}{'GenZ ms':>10}{'accelsim ms':>13}{'ratio':>8}")
    for batch, ctx in CASES_DECODE:
        g = decode_moddeling(batch_size=batch, input_tokens=ctx, output_tokens=1, Bb=1,
                             **kw)["Latency"]
        a = rm.decode_step_s(batch, ctx) * 1e3
        print(f"{f'decode b{batch} ctx{ctx}':<28}{g:>10.2f}{a:>13.2f}{a / g:>8.2f}")
    for n in CASES_PREFILL:
        g = prefill_moddeling(input_tokens=n, batch_size=1, **kw)["Latency"]
        a = rm.prefill_s(n) * 1e3
        print(f"{f'prefill {n}':<28}{g:>10.2f}{a:>13.2f}{a / g:>8.2f}")


if __name__ == "__main__":
    main()

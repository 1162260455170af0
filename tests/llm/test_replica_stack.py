"""A serving replica's ``stack:`` (:attr:`accelsim.llm.job.Replica.stack`,
:func:`accelsim.llm.perf.serving_stack`): without it the vendor's default serving stack prices
the replica exactly as before the field existed; with it, the named stack's all-reduce rule,
iteration terms and stream-K flag, on the full and the fast (GEMM lines) paths; a stack that
is unknown, not a serving stack or not for the device's vendor is one error naming the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from accelsim import stacks
from accelsim.errors import AccelsimError
from accelsim.llm import perf
from accelsim.llm.job import Replica
from accelsim.llm.load import job_from
from accelsim.llm.perf import replica_model
from accelsim.runs.base import KINDS, check_files
from accelsim.runs.file import load_runs

ROOT = Path(__file__).resolve().parents[2]
HELDOUT = ROOT / "configs/runs/heldout/mlperf-inference-v51-llama31.yaml"


def _fields(rm: perf.ReplicaModel) -> tuple[object, ...]:
    return (rm.linear_s.tolist(), rm.c_kv_read, rm.c_kv_flop, rm.c_pf, rm.c_head,
            rm.kv_blocks, rm.host_overlap_s)


# main a40346f (before the field), computed there: a replica that names no stack
PINNED = {("h100-sxm", 64): 0.01242773979389328, ("h100-sxm", 4096): 0.2027185888319987,
          ("mi300x", 64): 0.011361632070186627, ("mi300x", 4096): 0.17158375332529674}
PINNED_HEAD = {"h100-sxm": 1.328671508411399e-07, "mi300x": 2.2173098914715285e-05}


@pytest.mark.parametrize("device,tp,default", [("h100-sxm", 4, "tensorrt-llm"),
                                               ("mi300x", 8, "vllm-rocm")])
def test_no_stack_is_the_vendor_default_as_before(device: str, tp: int, default: str) -> None:
    plain = replica_model(Replica(device=device, model="llama2-70b", tp=tp, weights="fp8"))
    named = replica_model(Replica(device=device, model="llama2-70b", tp=tp, weights="fp8",
                                  stack=default))
    assert _fields(plain) == _fields(named)
    for t in (64, 4096):
        assert float(plain.linear_s[t]) == PINNED[(device, t)]
    assert plain.c_head == PINNED_HEAD[device]


def test_no_stack_rows_give_todays_numbers() -> None:
    """The Red Hat Offline row without its stack: exactly its prediction on main a40346f, when
    NVIDIA replicas could only be priced with TensorRT-LLM's terms (+23.8 %)."""
    run = next(r for r in load_runs(HELDOUT).runs if r.id.endswith("redhat-h100-offline"))
    assert run.replica.stack == "vllm"
    run = run.model_copy(update={"replica": run.replica.model_copy(update={"stack": None})})
    assert KINDS[run.kind].predict(run, str(HELDOUT)).value == 7149.323144534037


def test_named_stack_sets_iteration_terms_and_allreduce() -> None:
    base = dict(device="h100-sxm", model="llama2-70b", tp=4, weights="fp8")
    trt = replica_model(Replica(**base))
    vllm = replica_model(Replica(**base, stack="vllm"))
    terms = stacks.iteration_terms(stacks.load_stack("vllm"))
    assert terms is not None and terms.host_seq_s > 0
    # vLLM's host time per sequence reaches c_head; TensorRT-LLM's overlapped host does not
    assert vllm.c_head > trt.c_head + 0.9 * terms.host_seq_s
    assert vllm.host_overlap_s == 0.0 < trt.host_overlap_s
    # vLLM's custom all-reduce has no token limit: at 512 tokens TP4 it is the custom kernel,
    # TensorRT-LLM's NCCL past 128 tokens; the rest of the layer is the same
    assert not np.array_equal(vllm.linear_s, trt.linear_s)
    assert vllm.kv_blocks == trt.kv_blocks


def _stack_file(tmp_path: Path, stream_k: bool, **top: object) -> Path:
    d = yaml.safe_load((ROOT / "configs/stacks/tensorrt-llm.yaml").read_text())
    d["name"] = "my-engine"
    d["kernels"]["stream_k"]["value"] = stream_k
    d.update(top)
    p = tmp_path / "my-engine.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_stream_k_comes_from_the_named_stack_on_both_paths(tmp_path: Path) -> None:
    p = _stack_file(tmp_path, stream_k=False)
    r = Replica(device="h100-sxm", model="llama3-8b", tp=1, weights="fp8", stack=str(p))
    dp = Replica(device="h100-sxm", model="llama3-8b", tp=1, weights="fp8")
    full = replica_model(r)
    default = replica_model(dp)
    assert not np.array_equal(full.linear_s, default.linear_s)  # wave quantisation back
    # the fast path (the GEMMs' lines kept per shape, geometry and stream-K): the first call
    # asks for the lines, the second builds them; both equal the full path's
    for _ in range(2):
        assert np.allclose(replica_model(r, lines=True).linear_s, full.linear_s,
                           rtol=1e-9, atol=0)
        assert np.allclose(replica_model(dp, lines=True).linear_s, default.linear_s,
                           rtol=1e-9, atol=0)


@pytest.mark.parametrize("stack,says", [
    ("nosuch", "unknown stack 'nosuch'"),
    ("megatron-core", "'megatron-core' is a training stack; expected a serving stack"),
    ("vllm-rocm", "stack 'vllm-rocm' runs on AMD, not on NVIDIA (h100-sxm)"),
])
def test_bad_stack_is_one_error_naming_the_field(tmp_path: Path, stack: str, says: str) -> None:
    job = {"replicas": [{"device": "h100-sxm", "model": "llama3-8b", "weights": "fp8",
                         "stack": stack}],
           "arrivals": {"rate_qps": 1.0}, "prompt_tokens": {"dist": "fixed", "value": 128},
           "output_tokens": {"dist": "fixed", "value": 128}, "sim": {"requests": 100,
                                                                      "warmup": 0}}
    f = tmp_path / "job.yaml"
    with pytest.raises(AccelsimError) as e:
        job_from(job, f)
    (p,) = e.value.problems
    assert p.field == "replicas[0].stack" and says in p.message and p.file == str(f)


def test_stack_path_resolves_from_the_job_file(tmp_path: Path) -> None:
    _stack_file(tmp_path, stream_k=False)
    job = {"replicas": [{"device": "h100-sxm", "model": "llama3-8b", "weights": "fp8",
                         "stack": "my-engine.yaml"}],
           "arrivals": {"rate_qps": 1.0}, "prompt_tokens": {"dist": "fixed", "value": 128},
           "output_tokens": {"dist": "fixed", "value": 128}, "sim": {"requests": 100,
                                                                      "warmup": 0}}
    j = job_from(job, tmp_path / "job.yaml")
    assert Path(j.replicas[0].stack or "").is_absolute()


def test_run_files_check_the_stack() -> None:
    """A published run's replica names its stack; the run's file check loads it against the
    device's vendor (validate-runs --check), and the calibration knows the row reads it."""
    from accelsim.runs.params import PARAM_KINDS

    f = str(HELDOUT)
    run = next(r for r in load_runs(HELDOUT).runs if r.id.endswith("redhat-h100-server"))
    assert run.replica.stack == "vllm"
    assert check_files(KINDS[run.kind], run, f, "runs[0]") == []
    bad = run.model_copy(update={"replica": run.replica.model_copy(
        update={"stack": "vllm-rocm"})})
    (p,) = check_files(KINDS[bad.kind], bad, f, "runs[0]")
    assert p.field == "runs[0].replica.stack" and "not on NVIDIA" in p.message
    uses = PARAM_KINDS["stack"].uses
    assert uses(run, f) == {"vllm"}
    plain = run.model_copy(update={"replica": run.replica.model_copy(update={"stack": None})})
    assert uses(plain, f) == {"tensorrt-llm"}


@pytest.mark.parametrize("name", ["vllm", "sglang"])
@pytest.mark.parametrize("device,vendor", [("mi300x", "AMD"), ("ascend-910c", "Huawei")])
def test_cuda_stacks_are_not_taken_off_nvidia(name: str, device: str, vendor: str) -> None:
    """vllm.yaml's and sglang.yaml's numbers are CUDA's (stream-K GEMMs, the CUDA custom
    all-reduce's 8 MiB, V1's host terms on CUDA): a replica off NVIDIA naming one is one error
    pointing at its vendor, not CUDA's terms priced on an MI300X or a 910C (review41: vllm
    listed AMD and Huawei, reachable once replicas could name a stack; review42: sglang
    listed AMD, whose SGLang runs aiter / hipBLASLt kernels and a 16 MiB all-reduce on ROCm;
    AMD's profiled serving stack is vllm-rocm)."""
    assert stacks.load_stack(name).vendors == ["NVIDIA"]
    with pytest.raises(AccelsimError) as e:
        replica_model(Replica(device=device, model="llama2-70b", tp=4, stack=name))
    (p,) = e.value.problems
    assert p.field == "replicas[0].stack" and f"not on {vendor} ({device})" in p.message
    assert len(str(e.value).splitlines()) == 1

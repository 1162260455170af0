"""Transformer Engine's P2P ring attention under context parallelism
(:func:`accelsim.training.perf.layer.ring_bookkeeping`): its memory passes and kernels as
counted from the code, and the forward it gives against the MLPerf v5.1 Llama 3.1 8B
forward-only evaluation steps (held-out rows' logs: a check, never fitted on)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import accelsim.training.perf.layer as L
from accelsim.devices import load_device
from accelsim.refs import configs_dir
from accelsim.runs.file import load_runs
from accelsim.training.job import Parallelism, TrainJob
from accelsim.training.perf.columns import job_inputs
from accelsim.training.perf.estimate import estimate, job_stack_factors

DATA = Path(__file__).resolve().parents[1] / "data"


def _job(file: str, rid: str) -> tuple[TrainJob, object, str]:
    # a held-out row may have moved between heldout/ and heldout/misses/ (branch dpship)
    other = (file.replace("heldout/misses/", "heldout/") if "/misses/" in file
             else file.replace("heldout/", "heldout/misses/"))
    path, run = next((str(configs_dir() / "runs" / fn), r) for fn in dict.fromkeys((file, other))
                     if (configs_dir() / "runs" / fn).exists()
                     for r in load_runs(configs_dir() / "runs" / fn).runs if r.id == rid)
    spec = load_device(run.device, where=path, field="device", relative_to=path).spec
    par = Parallelism(tp=run.tp, pp=run.pp, dp=run.devices // (run.tp * run.pp * run.cp),
                      cp=run.cp, micro_batch=run.micro_batches[0],
                      virtual_stages=run.virtual_stages[0],
                      sequence_parallel=run.sequence_parallel, recompute=run.recompute,
                      zero=run.zero, account_for_embedding=run.account_for_embedding,
                      account_for_loss=run.account_for_loss)
    job = TrainJob(device=spec.name, model=run.model, global_batch=run.global_batch,
                   precision=run.precision, attention=run.attention,
                   overlap_dp_comm=run.overlap_dp_comm,
                   overlap_param_gather=run.overlap_param_gather, parallelism=par,
                   stack=run.stack)
    return job, spec, path


def _forward_ms(file: str, rid: str, on: bool, monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(L, "CP_RING_BOOKKEEPING", on)
    job, spec, path = _job(file, rid)
    st = estimate(job, spec, file=path).stages
    return 1e3 * (st.stage_f_s + st.emb_f_s + st.head_f_s)


def test_ring_bookkeeping_counts_te_passes():
    """Llama 3.1 8B at CP2, 4,096 tokens per rank, BF16 activations on B200: forward 402.7 MB
    (K/V concatenation 33.6, output init 100.7, one correction 167.8, cast 100.7) and 8
    kernels; backward 520 MB and 12 kernels; each further ring step adds the same again."""
    job, spec, path = _job("heldout/misses/mlperf-training-v5.yaml",
                           "mlperf-v5.1-llama31-8b-uf-b200-64")
    f = job_inputs(job, spec, job_stack_factors(job, spec, path))
    u = L.micro(f)
    bw = f["memory_bw_Bps"] * f["eff_memory"]
    kern = f["kernel_overhead_s"]
    t_f, t_b = L.ring_bookkeeping(f, u.T, u.g, 2.0)
    n_o = 4096 * 32 * 128  # output (= query) elements per rank
    kv = 4096 * 2 * 8 * 128 * 2  # K and V bytes
    fwd = 2 * kv + 6 * n_o + 10 * n_o + 6 * n_o
    bwd = 2 * kv + 4 * n_o + 2 * kv + 6 * n_o + 3 * kv + 4 * n_o + 10 * n_o
    assert fwd / 1e6 == pytest.approx(402.7, abs=0.1)
    assert t_f == pytest.approx(fwd / bw + 8 * kern, rel=1e-9)
    assert t_b == pytest.approx(bwd / bw + 12 * kern, rel=1e-9)
    t_f4, t_b4 = L.ring_bookkeeping(f, u.T, u.g, 4.0)
    assert t_f4 - t_f == pytest.approx(2 * (10 * n_o / bw + 4 * kern), rel=1e-9)
    assert t_b4 - t_b == pytest.approx(2 * ((6 * n_o + 3 * kv + 4 * n_o + 10 * n_o) / bw
                                            + 7 * kern), rel=1e-9)


def test_no_bookkeeping_without_a_ring(monkeypatch):
    """No context parallelism, or a stack that all-gathers K and V (Llama 3's): the switch
    changes nothing."""
    for file, rid in [("heldout/mlperf-training-v5.yaml", "mlperf-v5.1-llama31-8b-uf-b200-16"),
                      ("llama3-405b-h100.yaml", "llama3-405b-128k-context")]:
        assert (_forward_ms(file, rid, True, monkeypatch)
                == _forward_ms(file, rid, False, monkeypatch))


def test_forward_against_v51_forward_only_steps(monkeypatch):
    """The MLPerf v5.1 8B forward-only steps (tests/data/mlperf-v51-llama31-8b-forward-only.csv):
    at CP2 the ring's bookkeeping takes the model's forward from -11..-13 % to -5..-6.5 %
    on B200 and from -4.0 to +0.8 % on H200 (every CP2 row closer); the MBS 2 rows (no CP)
    do not move. The B200 residual (~3 ms of 47) is not priced
    (docs/_notes/cp-ring-attention.md)."""
    with open(DATA / "mlperf-v51-llama31-8b-forward-only.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    for r in rows:
        meas = float(r["eval_step_ms"])
        off = _forward_ms(r["file"], r["id"], False, monkeypatch) / meas - 1
        on = _forward_ms(r["file"], r["id"], True, monkeypatch) / meas - 1
        if r["layout"] == "mbs2":
            assert on == off
            continue
        assert abs(on) < abs(off)
        limit = 0.03 if "h200" in r["id"] else 0.08
        assert abs(on) <= limit, (r["id"], on)

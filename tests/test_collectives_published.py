"""The one all-reduce model (accelsim.collectives.nccl_allreduce) against published
nccl-tests curves, with explicit tolerances, and the three paths (serving, training,
topology) holding the same numbers (docs/_notes/collectives-one-model.md).

Data: tests/data/collectives/azure-nvls-allreduce.csv, all_reduce_perf on 8 x H100 (NCCL
2.18.5) and 8 x H200 (NCCL 2.20.5) from Azure/AI-benchmarking-guide. The ring step latency
and the NVLS call time of configs/topologies/hgx-h100-8.yaml (2.25 us, 72 us) were fitted
on the H200 curve (1 MiB-1 GiB); the H100 curve is held out."""

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from accelsim import collectives as c
from accelsim.devices import load_device
from accelsim.devices import topology as T
from accelsim.llm.perf import nccl_allreduce
from accelsim.training.perf.columns import device_columns

DATA = Path(__file__).parent / "data" / "collectives" / "azure-nvls-allreduce.csv"
MiB = 2**20


def _curve(device: str) -> list[tuple[float, float]]:
    """(size, measured time) of one curve: time = size x 2 (n-1)/n / busbw."""
    rows = csv.DictReader(line for line in DATA.open() if not line.startswith("#"))
    return [(float(r["size_B"]), float(r["size_B"]) * 1.75 / (float(r["busbw_GBps"]) * 1e9))
            for r in rows if r["device"] == device]


def _one_model(M, t=None):
    t = t or T.load_topology("hgx-h100-8")
    return T.allreduce_s(t, M, 8)


@pytest.mark.parametrize("device", ["h100-sxm", "h200"])
def test_one_model_against_the_nvls_curves(device: str) -> None:
    """Model / measured time on 8 GPUs: within 15 % from 1 MiB to 8 GiB and within 8 % from
    16 MiB (H100 held out; H200 the fit). The previous prices were 1.15-1.81x slow at
    1-64 MiB (the serving profile's NVLS at 126 us) and 2-3x fast at 1-8 MiB (the topology's
    NVLS with two 5 us steps)."""
    curve = _curve(device)
    assert len(curve) == 14
    for M, t in curve:
        r = float(_one_model(M)) / t
        assert 0.85 <= r <= 1.15, (device, M / MiB, r)
        if M >= 16 * MiB:
            assert 0.92 <= r <= 1.08, (device, M / MiB, r)


def test_the_ring_and_nvls_peaks_as_nccls_maintainer_states_them() -> None:
    """NVIDIA/nccl-tests#212 (sjeaugey, 2024): on 8 x H100 NCCL's ring reaches ~370 GB/s bus
    bandwidth (NCCL_ALGO=RING, ~20 % protocol overhead on 450 GB/s) and NVLS ~480 GB/s
    (algbw ~275) at large sizes. The ring at the topology's efficiency (0.75): within 10 %;
    NVLS within 3 %."""
    t = T.load_topology("hgx-h100-8")
    ring_only = t.model_copy(update={"scaleup": t.scaleup.model_copy(
        update={"reduction_efficiency": None, "reduction_latency_us": None})})
    M = 8 * 2**30
    assert float(T.busbw_allreduce(ring_only, M, 8)) / 1e9 == pytest.approx(370, rel=0.10)
    assert float(T.busbw_allreduce(t, M, 8)) / 1e9 == pytest.approx(480, rel=0.03)
    assert float(M / T.allreduce_s(t, M, 8)) / 1e9 == pytest.approx(275, rel=0.03)


def test_torch_distributed_nccl_times_on_8_h100() -> None:
    """ByteDance-Seed/Triton-distributed#57 (2025): torch.distributed all-reduce (NCCL) on 8 x
    H100 in one node, 4/8/16 MB: 59.4, 90.5, 135.7 us. Held out; through torch (its launch
    and stream synchronisation on top), so the model may sit below by up to 20 %."""
    for M, us in ((4 * MiB, 59.43), (8 * MiB, 90.51), (16 * MiB, 135.68)):
        r = float(_one_model(M)) / (us * 1e-6)
        assert 0.80 <= r <= 1.05, (M / MiB, r)


def test_serving_training_and_topology_are_one_model() -> None:
    """An H100 placed in the hgx-h100-8 topology: the serving engines' NCCL price, the
    training step's in-domain all-reduce (from its input columns) and the topology's
    all-reduce are the same number at every size."""
    t = T.load_topology("hgx-h100-8")
    spec = T.apply(load_device("h100-sxm").spec, t)
    assert spec.reduction_latency_s == pytest.approx(72e-6)
    assert spec.scaleup_latency_s == pytest.approx(2.25e-6)
    f = device_columns(spec, "bf16")
    M = np.array([1.0, 4, 11.25, 64, 1024]) * MiB
    bw = spec.scaleup_bw_Bps * spec.eff_comm
    serving = nccl_allreduce(M, 8, bw, spec.scaleup_latency_s,
                             spec.scaleup_bw_Bps * spec.eff_reduction, spec.reduction_latency_s)
    training = c.group_allreduce(M, 8, 1, 8, f["scaleup_bw_Bps"] * f["eff_comm"],
                                 f["scaleup_latency_s"], 1.0, 1.0,
                                 f["scaleup_bw_Bps"] * f["eff_reduction"],
                                 f["reduction_latency_s"])
    np.testing.assert_allclose(serving, training, rtol=1e-12)
    np.testing.assert_allclose(serving, T.allreduce_s(t, M, 8), rtol=1e-12)


def test_device_profiles_keep_the_calibrated_numbers() -> None:
    """Opt-in, not default: the H100 profile (no topology named) keeps the NVLS call time
    and ring step it was calibrated with (126 us, 5 us), 1.1-1.4x slow at 8-64 MiB; the
    curve's numbers make held-out and leave-one-source-out worse (the 405B TP8 decode rows
    over-predict: docs/_notes/collectives-one-model.md). When a change adopts them, this test
    is the one to update."""
    spec = load_device("h100-sxm").spec
    assert spec.reduction_latency_s == pytest.approx(126e-6)
    assert spec.scaleup_latency_s == pytest.approx(5e-6)
    opt_in = T.apply(spec, T.load_topology("hgx-h100-8"))
    assert replace(opt_in, topology=None).reduction_latency_s == pytest.approx(72e-6)

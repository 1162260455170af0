"""The fixed time per batch a DLRMv2 Server replica cannot overlap, against the bound the
published MLPerf Inference v4.1 Server/Offline pairs set (docs/_notes/dlrm-server-vs-offline.md).

NVIDIA's harness double-buffers every GPU (``gpu_num_bundles`` 2,
``closed/NVIDIA/code/harness/harness_dlrm_v2/dlrm_v2_server.cpp`` in
mlcommons/inference_results_v4.1 at a2f5d66d): a batch is formed, staged and copied host to
device while the previous one computes, so a batch of ``B`` pairs takes the period
``C(B) = B / R + t0``, ``t0`` the part that does not overlap. A Server run at ``s`` pairs/s
per GPU whose batches hold at most ``B_s`` pairs is stable only if ``B_s / C(B_s) >= s``; the
Offline run at batch ``B_o`` gives ``o = B_o / C(B_o)``; hence

    t0 <= B_s (1/s - 1/o) / (1 - B_s / B_o)

with equality when the Server run sat at its capacity. The fastest systems bound the GPU's
part: the same GPUs and harness settings give 0.22-0.23 ms on Supermicro's systems, 0.47 ms on
NVIDIA's DGX-H100, whose latencies say it ran near its capacity (a cost of that system).
"""

import numpy as np
import pytest
from pydantic import TypeAdapter

from accelsim.devices import load_device
from accelsim.serving.rec_model import load_model
from accelsim.serving.recsys import offline_period, service_time
from accelsim.traffic import Dist, dist_mean

OFFLINE_BATCH = 600_000
"""gpu_batch_size of every Hopper Offline class (closed/*/configs/dlrm-v2/Offline)."""
SAMPLE = {"dist": "truncnormal", "mean": 225, "std": 140, "min": 100, "max": 700}
"""Pairs per sample, as the run files (configs/runs/mlperf-inference-dlrm.yaml)."""

# (submitter and system, GPUs, Server gpu_batch_size, Server scheduled samples/s, Offline
# samples/s): mlcommons/inference_results_v4.1 at a2f5d66d,
# closed/<submitter>/results/<system>/dlrm-v2-99/{Server,Offline}/performance/run_1/
# mlperf_log_summary.txt; batch sizes from closed/<submitter>/configs/dlrm-v2/Server.
PEERS = [
    ("Supermicro SYS_421GE_TNHR2_LCC_H100_SXM_80GBx8_TRT", 8, 51_200, 556_108.06, 602_108),
    ("Supermicro SYS_821GE_TNHR_H100_SXM_80GBx8_TRT", 8, 51_200, 548_905.71, 592_829),
    ("Fujitsu GX2560M7_H100_SXM_80GBx4_TRT", 4, 102_400, 293_309.70, 303_974),
]
"""The H100-SXM pairs with the highest Server/Offline ratio of each batch size: other
vendors' runs of NVIDIA's harness with NVIDIA's H100 settings."""


def _bound_s(gpus: int, batch: int, server: float, offline: float, mean: float) -> float:
    s, o = server * mean / gpus, offline * mean / gpus
    return batch * (1 / s - 1 / o) / (1 - batch / OFFLINE_BATCH)


def _model_t0_s(batch: int) -> float:
    """The same formula on the model's own periods (its ``t0``, exactly, when linear)."""
    n = np.array([float(batch), float(OFFLINE_BATCH)])
    per = np.asarray(offline_period(service_time(load_model("dlrmv2-dcn"),
                                                 load_device("h100-sxm").spec, n)))
    return float(batch * (per[0] / batch - per[1] / OFFLINE_BATCH)
                 / (1 - batch / OFFLINE_BATCH))


@pytest.mark.parametrize("name,gpus,batch,server,offline", PEERS)
def test_model_fixed_cost_per_batch_within_the_published_bound(name, gpus, batch, server,
                                                               offline):
    mean = float(dist_mean(TypeAdapter(Dist).validate_python(SAMPLE)))
    bound = _bound_s(gpus, batch, server, offline, mean)
    t0 = _model_t0_s(batch)
    assert 0 < t0 <= bound, f"{name}: model t0 {t0 * 1e3:.3f} ms, bound {bound * 1e3:.3f} ms"


@pytest.mark.parametrize("batch", [51_200, 102_400])
def test_server_batch_host_copy_hides_behind_the_previous_batch(batch):
    """Two bundles per GPU overlap batch i's host-to-device copy with batch i-1's compute, so
    the copy is hidden only while it is shorter than the compute (the model's pipelined
    period takes the busiest resource, not the sum)."""
    p = service_time(load_model("dlrmv2-dcn"), load_device("h100-sxm").spec,
                     np.array([float(batch)]))
    copy = float(np.asarray(p["copy_s"])[0])
    compute = float(np.asarray(np.maximum(p["hbm_s"], p["math_s"]))[0])
    assert copy < compute

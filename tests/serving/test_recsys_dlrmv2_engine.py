"""DLRMv2 as NVIDIA's MLPerf Inference v4.1 harness serves it (configs/models/dlrmv2-dcn.yaml):
int8 embedding rows (one 128 B line each) and every kernel of every batch on one compute stream,
so a batch's period is the sum of its kernels; and what that physics says of H200 against H100,
checked against NVIDIA's published v4.1 Offline figures on both
(docs/_notes/dlrm-server-vs-offline.md, section "What bounds a DLRMv2 batch on Hopper")."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.devices import load_device
from accelsim.serving.rec_model import load_model
from accelsim.serving.recsys import offline_period, service_time

OFFLINE_BATCH = 600_000
"""The submissions' Offline gpu_batch_size on H100 and H200 (mlcommons/inference_results_v4.1
closed/NVIDIA/configs/dlrm-v2/Offline/__init__.py: H100_SXM_80GBx1/x8, H200_SXM_141GBx1/x8)."""
PUBLISHED_H100_X8 = 595_658.0
"""NVIDIA DGX-H100 8x H100-SXM-80GB, dlrm-v2-99 Offline samples/s (v4.1 closed,
closed/NVIDIA/results/DGX-H100_H100-SXM-80GBx8_TRT/dlrm-v2-99/Offline/performance/run_1/
mlperf_log_summary.txt)."""
PUBLISHED_H200_X8 = 637_342.0
"""NVIDIA 8x H200-SXM-141GB, same benchmark and round (closed/NVIDIA/results/
H200-SXM-141GBx8_TRT/dlrm-v2-99/Offline/performance/run_1/mlperf_log_summary.txt)."""


def _rate(model, device: str) -> float:
    parts = service_time(model, load_device(device).spec, np.array([float(OFFLINE_BATCH)]))
    return OFFLINE_BATCH / float(np.asarray(offline_period(parts)).ravel()[0])


def test_dlrmv2_reads_int8_rows_of_one_line():
    """embeddings_precision 'int8' (configs/dlrm-v2/__init__.py): 214 lookups of 128 B."""
    m = load_model("dlrmv2-dcn")
    assert m.embedding_dtype == "int8" and m.serial_kernels
    assert {t.dim for t in m.tables} == {128}
    assert m.lookups_per_item == 214


def test_one_stream_period_is_the_sum_of_its_kernels():
    """Analytic: on one compute stream nothing but the copies overlaps the kernels."""
    m = load_model("dlrmv2-dcn")
    p = service_time(m, load_device("h100-sxm").spec, np.array([51_200.0, 600_000.0]))
    kernels = (p["embedding_s"] + p["all_to_all_s"] + p["bottom_mlp_s"] + p["interaction_s"]
               + p["top_mlp_s"])
    assert np.allclose(offline_period(p), np.maximum(p["copy_s"], kernels) + p["launch_s"])
    overlapped = offline_period(service_time(m.model_copy(update={"serial_kernels": False}),
                                             load_device("h100-sxm").spec,
                                             np.array([51_200.0, 600_000.0])))
    assert np.all(overlapped < offline_period(p))


def test_h200_over_h100_follows_the_published_ratio_not_the_bandwidth():
    """The H200 is the H100's compute die with 4.8 / 3.35 = 1.43x the HBM bandwidth; NVIDIA's
    published v4.1 DLRMv2 Offline ratio (same engine, batch and harness) is 1.070. A period bound
    by HBM (fp16 rows, overlapped stages: the model until 2026-12-07) gives 1.29; the harness's
    physics must be within 10 % of the published ratio and less than halfway to the bandwidth's."""
    m = load_model("dlrmv2-dcn")
    published = PUBLISHED_H200_X8 / PUBLISHED_H100_X8
    bandwidth = (load_device("h200").spec.memory_bw_Bps
                 / load_device("h100-sxm").spec.memory_bw_Bps)
    model = _rate(m, "h200") / _rate(m, "h100-sxm")
    assert model == pytest.approx(published, rel=0.10)
    assert model - 1.0 < 0.5 * (bandwidth - 1.0)
    old = m.model_copy(update={"embedding_dtype": "fp16", "serial_kernels": False})
    assert _rate(old, "h200") / _rate(old, "h100-sxm") > model + 0.1

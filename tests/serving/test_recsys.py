from dataclasses import replace

import numpy as np
import pytest

from accelsim.devices import load_device
from accelsim.errors import AccelsimError
from accelsim.serving.rec_model import load_model
from accelsim.serving.recsys import (
    _cached_share,
    max_throughput,
    offline,
    placement,
    service_time,
    zipf_share,
)

ZOO = ["rmc1", "rmc2", "rmc3", "dlrm-mlperf", "dlrmv2-dcn", "feed-ranking"]


@pytest.mark.parametrize("name", ZOO)
def test_zoo_models_load_and_cost(name):
    m = load_model(name)
    t = service_time(m, load_device("h20").spec, [1, 64, 1024])["total_s"]
    assert np.all(np.diff(t) > 0) and t[0] > 0


def test_mlperf_dlrm_top_mlp_input_is_479():
    m = load_model("dlrm-mlperf")
    assert m.interaction_out() == 479
    assert m.mlp_layers()[3] == (479, 1024)


def test_zipf_share_limits():
    assert zipf_share(1000, 1000, 1.05) == pytest.approx(1.0)
    assert zipf_share(0, 1000, 1.05) == 0.0
    # uniform access (alpha 0): share is proportional to rows cached
    assert zipf_share(250, 1000, 0.0) == pytest.approx(0.25, rel=0.01)
    # skew: 1 % of rows takes far more than 1 % of lookups
    assert zipf_share(10_000, 1_000_000, 1.05) > 0.5


def test_water_filling_caches_small_tables_fully():
    m = load_model("dlrm-mlperf")
    share = _cached_share(m, 40 * 2**20)  # 40 MiB
    assert 0.5 < share < 1.0
    assert _cached_share(m, m.embedding_bytes) == 1.0


def test_efficiency_grows_with_batch():
    m = load_model("rmc3")
    spec = load_device("a100-80gb-sxm").spec
    n = np.array([1, 16, 256, 4096])
    per_item = service_time(m, spec, n)["total_s"] / n
    assert np.all(np.diff(per_item) < 0)


def test_tables_beyond_memory_shard_or_spill():
    m = load_model("feed-ranking")
    spec = load_device("h20").spec
    assert placement(m, spec).mode == "shard"
    host = placement(m, spec, "host")
    assert host.host > 0
    with pytest.raises(AccelsimError, match="do not fit"):
        placement(m, spec, "device")
    # with near-uniform access the host tier (PCIe) is slower than shards over NVLink;
    # with strong skew the HBM cache absorbs most lookups and host spill can be cheaper
    flat = m.model_copy(update={"zipf_alpha": 0.2})
    t_sh = service_time(flat, spec, [512], "shard")["total_s"][0]
    t_ho = service_time(flat, spec, [512], "host")["total_s"][0]
    assert t_ho > t_sh


def test_unsupported_mlp_precision_is_an_error():
    m = load_model("dlrm-mlperf")  # int8 MLPs
    with pytest.raises(AccelsimError, match="does not support int8"):
        service_time(m, load_device("trainium2").spec, [1])


def test_bandwidth_and_host_link_bound_the_right_terms():


    m = load_model("rmc2")
    a = load_device("a100-80gb-sxm").spec
    more_bw = replace(a, memory_bw_Bps=2 * a.memory_bw_Bps)
    ea = service_time(m, a, [1024])["embedding_s"][0]
    assert service_time(m, more_bw, [1024])["embedding_s"][0] == pytest.approx(ea / 2)
    # RMC2 ships 32 x 120 indices per item: the host link bounds its offline throughput
    faster_link = replace(a, host_link_Bps=4 * a.host_link_Bps)
    assert max_throughput(m, faster_link, 4096)[0] > 1.5 * max_throughput(m, a, 4096)[0]


def test_published_mlperf_runs_are_within_their_tolerance():
    """configs/runs/mlperf-inference-dlrm.yaml: DLRM v1 on A100 (Offline, Server) and H100
    (Offline), DLRMv2 on H100 (Offline, Server), MLPerf Inference v3.0/v4.0 logs; 15 %."""
    from accelsim.runs import validate_runs

    results = validate_runs()
    assert len(results) >= 5
    for r in results:
        assert r.within, (r.id, r.error)


def test_offline_batch_is_bounded_by_device_memory_not_a_cap():
    from accelsim.serving.recsys import (
        BATCHES_IN_FLIGHT,
        batch_memory_bound,
        bytes_per_item,
    )

    m, spec = load_model("dlrmv2-dcn"), load_device("h100-sxm").spec
    o = offline(m, spec)
    bound = batch_memory_bound(m, spec)
    assert o["batch_items"] <= bound == o["batch_memory_bound_items"]
    held = m.embedding_bytes + BATCHES_IN_FLIGHT * bound * bytes_per_item(m)
    assert held <= spec.memory_bytes
    # more memory -> a larger batch allowed (never smaller throughput)
    big = replace(spec, memory_bytes=2 * spec.memory_bytes)
    assert batch_memory_bound(m, big) > bound
    assert offline(m, big)["items_per_s"] >= o["items_per_s"]


def test_pipelined_period_is_the_busiest_shared_resource():
    from accelsim.serving.recsys import offline_period, service_time

    m, spec = load_model("dlrmv2-dcn"), load_device("h100-sxm").spec
    p = service_time(m, spec, np.array([1e5]))
    period = float(offline_period(p)[0])
    latency = float(p["total_s"][0])
    assert period < latency  # stages of consecutive batches overlap
    for k in ("copy_s", "hbm_s", "math_s", "embedding_s"):
        assert period >= float(p[k][0]) + float(p["launch_s"][0]) - 1e-15


def test_multi_hot_spread_makes_caching_a_popular_id_cost_its_rows():
    from accelsim.serving.rec_model import RecModel
    from accelsim.serving.recsys import _cached_share

    base = {"name": "t", "source": "test", "dense_features": 1, "top_mlp": [1],
            "tables": [{"count": 1, "rows": 1_000_000, "dim": 64, "pooling": 10}]}
    one = RecModel.model_validate(base)
    spread = RecModel.model_validate({**base, "tables": [{**base["tables"][0], "spread": 10}]})
    cap = 5e6
    assert _cached_share(spread, cap) < _cached_share(one, cap)
    # spread s at capacity C hits like spread 1 at capacity C / s
    assert _cached_share(spread, cap) == pytest.approx(_cached_share(one, cap / 10), rel=1e-6)

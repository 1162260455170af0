"""The multi-node ring all-gather / reduce-scatter that a per-unit FSDP stack pays
(accelsim.training.perf.step: ``unit_ring``: the hierarchical bandwidth terms plus
:func:`accelsim.collectives.ring_latency`) against published nccl-tests points and NCCL's
own latency model (docs/_notes/fsdp-small-collectives.md, issue 21).

Finding pinned here: with the device profiles' 5 us / 10 us step latencies the model prices
these collectives no faster than published, at small sizes (latency) and at large ones
(bandwidth): the under-prediction of MPT's small models on 128-512 H100 is not an
under-priced FSDP collective. If a change makes the model faster than the published points,
this test says so."""

import csv
from pathlib import Path

import pytest

from accelsim import collectives as c
from accelsim.devices import load_device

DATA = Path(__file__).parent / "data" / "collectives" / "allgather-multinode.csv"
US = 1e-6


def _rows() -> list[dict[str, str]]:
    return list(csv.DictReader(line for line in DATA.open() if not line.startswith("#")))


def _unit_ring_allgather(device: str, M: float, n: int) -> float:
    """What step.py's unit_ring prices for one all-gather of M bytes over n ranks (tp 1)."""
    s = load_device(device).spec
    bw_in, bw_out = s.scaleup_bw_Bps * s.eff_comm, s.scaleout_bw_Bps * s.eff_comm
    bw_only = c.GroupTerms(n, 1.0, s.scaleup_domain, 0.0, 0.0)
    t_bw = 0.5 * c.group_allreduce_terms(M, bw_only, bw_in, bw_out)
    return float(t_bw + c.ring_latency(n, s.scaleup_domain, s.scaleup_latency_s,
                                       s.scaleout_latency_s))


def _nccl_218_ring_latency_us(n: int, nodes: int, proto: str) -> float:
    """NCCL 2.18.5's modelled latency of a ring all-gather / reduce-scatter (NVIDIA/nccl
    v2.18.5-1 src/graph/tuning.cc: baseLat + (nsteps - nInterSteps) max(intraLat,
    netOverhead) + nInterSteps interLat; nsteps n - 1, nInterSteps nodes - 1; NVLink
    intra, x86 Intel netOverhead 1 us, x3 for Simple; graph latencyInter 0)."""
    base = {"LL": 6.6, "LL128": 14.0, "Simple": 8.4}[proto]
    intra = {"LL": 0.6, "LL128": 1.9, "Simple": 3.4}[proto]
    inter = {"LL": 2.7, "LL128": 4.0, "Simple": 14.0}[proto]
    overhead = (3.0 if proto == "Simple" else 1.0) if nodes > 1 else 0.0
    return base + (n - nodes) * max(intra, overhead) + (nodes - 1) * inter


@pytest.mark.parametrize("row", _rows(), ids=lambda r: r["id"])
def test_unit_ring_allgather_is_not_faster_than_published(row: dict[str, str]) -> None:
    n, M, v = int(row["n"]), float(row["size_B"]), float(row["value"])
    t = _unit_ring_allgather(row["device"], M, n)
    if row["metric"] == "time_us":
        # small message: latency-bound; the model is slower (80 us against 33.7 us at 2 x 8)
        assert v * US <= t <= 3.0 * v * US
    else:
        busbw = M / t * (n - 1) / n / 1e9
        # large message: the model's bus bandwidth is below the published, within 35 %
        assert 0.65 * v <= busbw <= v


@pytest.mark.parametrize("nodes", [2, 16, 64])
def test_ring_latency_is_at_least_nccls_own_model(nodes: int) -> None:
    """At the MPT rows' 16 and 64 nodes the model's ring latency (0.71 and 2.87 ms) is above
    NCCL 2.18's modelled latency for every protocol (Simple: 0.60 and 2.41 ms; LL128 0.29
    and 1.12 ms; LL 0.16 and 0.62 ms), within 1.2-1.3x of the slowest protocol."""
    s = load_device("h100-sxm").spec
    n = 8 * nodes
    model = c.ring_latency(n, s.scaleup_domain, s.scaleup_latency_s, s.scaleout_latency_s) / US
    nccl = {p: _nccl_218_ring_latency_us(n, nodes, p) for p in ("LL", "LL128", "Simple")}
    assert model >= max(nccl.values())
    assert model <= 1.3 * nccl["Simple"]

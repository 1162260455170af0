"""The capacity search's guided bisection (accelsim.bisection.guided, by the prior ratio and
then the replications before) gives the plain bisection's answers, per replication and to
the last bit, with an SLO met up to saturation (the seed's case), one met far below it and
one never met; near saturation from far fewer runs."""

import numpy as np
import pytest

from accelsim.serving import sim as S
from accelsim.serving.job import ServeJob


def _job(slo_ms: float, replications: int = 3) -> ServeJob:
    return ServeJob.model_validate({
        "arrivals": {"process": "poisson", "rate_qps": 500},
        "service": {"synthetic": {"dist": "exponential", "mean_ms": 1.0}}, "replicas": 2,
        "slo": {"p99_ms": slo_ms},
        "sim": {"requests": 20_000, "warmup": 2_000, "seed": 5,
                "replications": replications}})


def _plain(job: ServeJob, rel_tol: float = 0.002) -> list[float]:
    """The search as it was: 0.1 % of saturation, then bisection, every probe run."""
    sm = S.build_service(job)
    eng = S.pick_engine(job)
    found = []
    for r in range(job.sim.replications):
        d = S.draw(job, job.sim.seed + r, sm)
        cap_r = S._saturated(job, d)

        def ok(rate, d=d, cap_r=cap_r):
            return S._meets(job, eng, S.at_rate(job, d, rate), cap_r, job.slo.p99_ms)

        lo, hi = 0.0, cap_r
        if not ok(cap_r * 1e-3):
            found.append(0.0)
            continue
        lo = cap_r * 1e-3
        while hi - lo > rel_tol * hi:
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        found.append(0.5 * (lo + hi))
    return found


@pytest.mark.parametrize("slo_ms", [500.0, 8.0, 0.05])
def test_the_guided_search_answers_as_the_plain_bisection(monkeypatch, slo_ms):
    job = _job(slo_ms)
    runs = [0]
    meets = S._meets

    def counted(*args):
        runs[0] += 1
        return meets(*args)

    monkeypatch.setattr(S, "_meets", counted)
    plain = _plain(job)
    n_plain, runs[0] = runs[0], 0
    got = S.capacity(job)
    assert got["per_replication_qps"] == plain
    assert got["max_qps_at_slo"] == float(np.mean(plain))
    if slo_ms == 500.0:  # met up to saturation: a few runs per replication, not ten
        assert plain[0] > 0.99 * got["capacity_qps"]
        assert runs[0] <= n_plain // 2
    if slo_ms == 8.0:  # met far below saturation
        assert 0 < max(plain) < 0.8 * got["capacity_qps"]
    if slo_ms == 0.05:  # never met: the answer 0
        assert plain == [0.0] * job.sim.replications

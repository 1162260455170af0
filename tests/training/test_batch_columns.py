"""The batch API on numpy columns (``estimate_columns``, the path tuned for 100-row calls)
held to the one-job path on Python floats (``_estimate_one``: the same formulas at interpreter
speed, with no numpy in them) on random valid configurations, every metric at rtol 1e-12."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.devices import catalog
from accelsim.training import TransformerModel
from accelsim.training.perf import device_columns, estimate_columns, job_columns, model_columns
from accelsim.training.perf.estimate import _estimate_one
from accelsim.training.search import candidate_layouts


def _configs(seed: int, n: int) -> dict[str, np.ndarray]:
    """n random valid rows: random dense models, catalog devices, precisions and layouts
    (candidate_layouts), with the optional switches drawn too."""
    rng = np.random.default_rng(seed)
    specs = [p.spec for p in catalog().values()]
    rows: list[dict[str, float]] = []
    while len(rows) < n:
        heads = int(rng.choice([16, 32, 64]))
        model = TransformerModel(layers=int(rng.choice([24, 32, 48])), hidden=heads * 128,
                                 heads=heads, ffn_hidden=4 * heads * 128, vocab=51200,
                                 seq_len=int(rng.choice([2048, 4096])))
        spec = specs[int(rng.integers(len(specs)))]
        precision = "bf16" if "fp8" not in spec.peak_flops or rng.random() < 0.5 else "fp8"
        cand = candidate_layouts(model, int(rng.choice([64, 256, 1024])), 1024,
                                 spec.scaleup_domain)
        fixed = {**model_columns(model), **device_columns(spec, precision),
                 **job_columns(precision)}
        for _, lay in cand.sample(min(len(cand), 8), random_state=seed + len(rows)).iterrows():
            row = {**fixed, **{k: float(v) for k, v in lay.items()}}
            row.update(sequence_parallel=float(row["tp"] > 1), global_batch=1024.0,
                       stream_k=float(rng.integers(2)), overlap_tp=float(rng.integers(2)),
                       zero=float(rng.integers(4)), recompute=float(rng.integers(3)))
            rows.append({k: float(v) for k, v in row.items()})
    rows = rows[:n]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


@pytest.mark.parametrize("seed", [1, 2])
def test_columns_match_one_job_path(seed):
    cols = _configs(seed, 100)
    out = estimate_columns(cols)
    for i in range(len(cols["tp"])):
        one = _estimate_one({k: float(v[i]) for k, v in cols.items()}).columns
        for k, v in out.items():
            assert np.asarray(v)[i] == pytest.approx(float(one[k]), rel=1e-12, abs=0.0), k


def test_columns_do_not_depend_on_the_call_size():
    cols = _configs(3, 100)
    whole = estimate_columns(cols)
    parts = [estimate_columns({k: v[i:i + 7] for k, v in cols.items()}) for i in range(0, 100, 7)]
    for k, v in whole.items():
        assert np.array_equal(np.concatenate([np.asarray(p[k]) for p in parts]), v), k

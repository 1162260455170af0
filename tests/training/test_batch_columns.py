"""The batch API on numpy columns (``estimate_columns``, the path tuned for 100-row calls)
held to the one-job path on Python floats (``_estimate_one``: the same formulas at interpreter
speed, with no numpy in them) on random valid configurations, every metric at rtol 1e-12."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.devices import catalog
from accelsim.training import TransformerModel
from accelsim.training.perf import (
    OPTIONAL_COLUMNS,
    device_columns,
    estimate_columns,
    job_columns,
    model_columns,
)
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
    keys = {k for r in rows for k in r}  # stacks set different optional columns
    return {k: np.array([r.get(k, OPTIONAL_COLUMNS.get(k, 0.0)) for r in rows]) for k in keys}


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


def test_uniform_batches_skip_absent_terms_exactly():
    """A batch with no MoE layer, no MTP module, no context parallelism and flash attention
    in every row skips those terms; beside a row that has them all and no flash (the full
    path for every row) the same rows get the same numbers."""
    cols = _configs(4, 60)
    one = cols["cp"] == 1
    cols = {k: v[one] for k, v in cols.items()}
    n = len(cols["tp"])
    alone = estimate_columns(cols)
    moe = {k: v[:1].copy() for k, v in cols.items()}
    moe.update(moe_experts=np.array([8.0]), moe_top_k=np.array([2.0]),
               moe_ffn_hidden=cols["ffn_hidden"][:1] / 4, moe_layers=cols["layers"][:1],
               mtp=np.array([1.0]), cp=np.array([2.0]), flash=np.array([0.0]))
    mixed = estimate_columns({k: np.concatenate([cols.get(k, np.zeros(n)), moe[k]])
                              for k in moe})
    # the MoE row took its path: its numbers are those it gets on its own (a comparison with
    # row 0's step held only for some draws of the catalog: with cp 2 the MoE row can be faster)
    own = estimate_columns(moe)
    assert mixed["step_time_s"][-1] == pytest.approx(float(np.asarray(own["step_time_s"])[0]),
                                                     rel=1e-12)
    assert mixed["step_time_s"][-1] != alone["step_time_s"][0]
    for k, v in alone.items():
        assert np.array_equal(np.asarray(mixed[k])[:-1], v), k


def _full_arrays(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The columns through the formulas on arrays only (no column folded to a float)."""
    import importlib

    est = importlib.import_module("accelsim.training.perf.estimate")
    return est._columns({k: np.asarray(v, dtype=float) for k, v in cols.items()})[0]


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert np.shape(v) == np.shape(b[k]) and np.asarray(v).dtype == np.asarray(b[k]).dtype, k
        assert np.array_equal(v, b[k], equal_nan=True), k


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_columns_equal_for_all_rows_are_folded_without_changing_a_bit(seed):
    """estimate_columns runs a column whose rows are all equal on a Python float (the model,
    device and job of a call for one of each): the same numbers, bit for bit, as the
    formulas on arrays, whichever columns are equal (random subsets of them, each set to
    one row's value), and on one model and device with varying layouts."""
    cols = _configs(seed, 100)
    rng = np.random.default_rng(seed)
    _same(estimate_columns(cols), _full_arrays(cols))
    for _ in range(6):
        row = int(rng.integers(100))
        pick = [k for k in cols if rng.random() < 0.6]
        some = {k: (np.full(100, v[row]) if k in pick else v) for k, v in cols.items()}
        _same(estimate_columns(some), _full_arrays(some))
    # one model, one device (the batch API's usual call): only the layout columns vary
    layout = {"tp", "pp", "dp", "cp", "ep", "micro_batch", "virtual_stages", "recompute", "zero",
              "sequence_parallel", "overlap_tp", "stream_k"}
    one = {k: (v if k in layout else np.full(100, v[0])) for k, v in cols.items()}
    _same(estimate_columns(one), _full_arrays(one))
    every = {k: np.full(7, v[3]) for k, v in cols.items()}  # every column folded
    _same(estimate_columns(every), _full_arrays(every))


def test_switches_no_row_turns_on_skip_their_branches_exactly():
    """A switch every row leaves off (a false scalar once folded: DualPipe, TP overlap, the
    asynchronous TP backward, selective recomputation of norms and MoE activations, uneven
    stages, ZeRO-3 units by tensor or held across micro-batches, unfused attention) skips its
    branch; beside a row that turns each on (so every switch is an array, every branch
    computed) the other rows get the same numbers, bit for bit."""
    cols = _configs(8, 60)
    n = len(cols["tp"])
    for k in ("dualpipe", "overlap_tp", "tp_async", "rc_norm", "rc_moe_act", "pp_first_layers",
              "pp_last_layers", "mem_z3_tensor", "mem_z3_pp_hold"):
        cols[k] = np.zeros(n)
    cols["flash"] = np.ones(n)
    alone = estimate_columns(cols)
    on = {k: v[:1].copy() for k, v in cols.items()}
    on.update(dualpipe=np.array([1.0]), overlap_tp=np.array([1.0]), tp_async=np.array([1.0]),
              rc_norm=np.array([1.0]), rc_moe_act=np.array([1.0]), flash=np.array([0.0]),
              pp_first_layers=np.array([1.0]), pp_last_layers=np.array([1.0]),
              mem_z3_tensor=np.array([1.0]), mem_z3_pp_hold=np.array([1.0]),
              tp=np.array([2.0]), pp=np.array([4.0]), zero=np.array([3.0]))
    mixed = estimate_columns({k: np.concatenate([cols[k], on[k]]) for k in cols})
    assert mixed["step_time_s"][-1] != alone["step_time_s"][0]  # the last row took its branches
    for k, v in alone.items():
        assert np.array_equal(np.asarray(mixed[k])[:-1], v), k

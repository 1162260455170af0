import pytest

from accelsim.devices import load_device
from accelsim.training import TransformerModel, search_layouts
from accelsim.training.job import layout_problems
from accelsim.training.search import feasible
from tests.training import estimate

GPT3 = TransformerModel(layers=96, hidden=12288, heads=96, ffn_hidden=49152, vocab=51200,
                        seq_len=2048)


def test_search_finds_a_fitting_layout_and_it_is_the_fastest():
    res = search_layouts(GPT3, load_device("a100-80gb-sxm").spec, 256, global_batch=512)
    assert res.best is not None
    ok = feasible(res.table)
    assert len(ok) > 10
    best = estimate(res.best, spec=res.spec)
    assert best.fits_memory
    assert best.tokens_per_s == pytest.approx(ok["tokens_per_s"].max())
    assert not layout_problems(GPT3, res.best.parallelism, 512)


def test_every_candidate_is_a_valid_layout():
    res = search_layouts(GPT3, load_device("h20").spec, 64, global_batch=128)
    from accelsim.training import Parallelism

    for r in res.table.head(200).itertuples():
        par = Parallelism(tp=r.tp, pp=r.pp, dp=r.dp, cp=r.cp, ep=r.ep,
                          micro_batch=r.micro_batch, virtual_stages=r.virtual_stages)
        assert not layout_problems(GPT3, par, 128)
        assert r.tp * r.pp * r.dp * r.cp == 64


def test_too_few_devices_has_no_feasible_layout():
    res = search_layouts(GPT3, load_device("a100-80gb-sxm").spec, 8, global_batch=16)
    assert res.best is None


def test_the_search_and_a_single_estimate_see_the_same_model_fields():
    """``dropout`` is an optional column of the batch API: the search must carry it, so a
    layout it finds costs what :func:`estimate` says for the same job."""
    m = TransformerModel(layers=32, hidden=4096, heads=32, ffn_hidden=16384, vocab=32000,
                         seq_len=4096, dropout=False)
    res = search_layouts(m, load_device("a100-80gb-sxm").spec, 64, global_batch=64)
    again = estimate(res.best, spec=res.spec)
    assert res.columns["memory_per_device_gib"][0] == pytest.approx(
        again.memory_per_device_gib, rel=1e-12)

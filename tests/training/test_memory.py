"""Training memory as frameworks hold it (:mod:`accelsim.training.perf.memory`): closed forms
of the framework terms, the fit check on the new estimate, and published memory figures
(tests/data/memory/published.csv, each row cited) within a stated tolerance."""

import csv
from pathlib import Path
from typing import Any

import pytest

from accelsim import stack_memory as SM
from accelsim import stacks, units
from accelsim.devices import load_device
from accelsim.runtime import RUNTIME_RESERVE_BYTES
from accelsim.training.job import Parallelism, TrainJob
from accelsim.training.perf import estimate
from accelsim.training.perf import memory as M
from accelsim.training.perf.columns import inputs, job_row
from accelsim.training.perf.layer import dense_layer, micro
from accelsim.training.perf.moe import moe_layer
from accelsim.training.perf.step import data_parallel, rank_params, stages
from accelsim.transformer.model import TransformerModel

PUBLISHED = Path(__file__).parents[1] / "data" / "memory" / "published.csv"
# Published reserved memory per device within 15 % per row, 10 % on average: the same
# workload's reserved figure moves by more than that between PyTorch releases (torchtitan's
# Llama 3.1 8B, local batch 2, selective AC, compile + Float8: 61.8 GiB on 128 H100 in
# Dec 2024, 47.0 GiB on 64 H200 in June 2025, states 1 GiB apart).
TOLERANCE = 0.15
MEAN_TOLERANCE = 0.10

MODELS = {
    "llama3-8b": dict(layers=32, hidden=4096, heads=32, kv_heads=8, ffn_hidden=14336),
    "llama3-70b": dict(layers=80, hidden=8192, heads=64, kv_heads=8, ffn_hidden=28672),
    "llama3-405b": dict(layers=126, hidden=16384, heads=128, kv_heads=8, ffn_hidden=53248),
}


def _job(model: str, seq: int, **par: Any) -> tuple[TrainJob, Any]:
    spec = load_device("h100-sxm").spec
    m = TransformerModel(name=model, seq_len=seq, gated_mlp=True, vocab=128256,
                         tied_embeddings=False, dropout=False, **MODELS[model])
    precision = par.pop("precision", "bf16")
    gb = par.pop("global_batch")
    job = TrainJob(device=spec.name, model=m, global_batch=gb, precision=precision,
                   parallelism=Parallelism(**par))
    return job, spec


def _parts(job: TrainJob, spec: Any, memory_GiB: float | None = None) -> tuple[Any, ...]:
    c = job_row(job, spec)
    if memory_GiB is not None:
        c["memory_bytes"] = memory_GiB * units.GiB
    f = inputs({k: float(v) for k, v in c.items()})
    u = micro(f)
    ly = dense_layer(f, u)
    st = stages(f, u, ly, moe_layer(f, u, ly))
    pr = rank_params(f, u, st)
    return f, u, st, pr, data_parallel(f, u, st, pr)


def _terms(stack: str) -> Any:
    """A catalog stack's memory terms (configs/stacks/<stack>.yaml, its memory block)."""
    return stacks.memory_terms(stacks.load_stack(stack))


def _rows() -> list[dict[str, str]]:
    with PUBLISHED.open() as fh:
        return list(csv.DictReader(fh))


def _predict(row: dict[str, str]) -> float:
    recompute, *modules = row["recompute"].split("+")  # selective+alternate_mm: per-op SAC
    job, spec = _job(row["model"], int(row["seq_len"]), tp=int(row["tp"]), pp=int(row["pp"]),
                     dp=int(row["dp"]), cp=int(row["cp"]), micro_batch=int(row["micro_batch"]),
                     virtual_stages=int(row["virtual_stages"]), zero=int(row["zero"]),
                     sequence_parallel=row["sequence_parallel"] == "true",
                     recompute=recompute, recompute_modules=modules,
                     precision=row["precision"], global_batch=int(row["global_batch"]))
    parts = _parts(job, spec, float(row["device_memory_GiB"]))
    stack = _terms(row["stack"])
    fn = {"reserved": M.reserved, "allocated": M.allocated}[row["metric"]]
    return float(fn(*parts, stack)) / units.GiB


def test_published_rows_are_cited_and_complete():
    rows = _rows()
    assert len(rows) >= 9
    for r in rows:
        assert r["source"] and _terms(r["stack"]) is not None and r["metric"] in ("reserved",
                                                                          "allocated")
        assert r["modelled"] == "yes" or r["modelled"].startswith("no: ")


def test_published_memory_within_tolerance():
    """Every row the model can express (recompute none, selective or full as accelsim
    defines them, or torchtitan's per-op selective policy, ``selective+alternate_mm``: the
    two 8B bf16 rows were +13 and +39 % as plain selective) within :data:`TOLERANCE`;
    before the framework terms (fp32 logits only, no allocator) the full-recompute rows
    were 45-47 % under, and the Llama 3.1 405B pipeline rows (Tables 5 and 6) 42-48 % under
    until the stage's gathered weights and accumulated gradients (zero3_pp_hold, read from
    torchtitan's code) were held."""
    errs = {}
    for r in _rows():
        if r["modelled"] != "yes":
            continue
        errs[r["id"]] = _predict(r) / float(r["memory_GiB"]) - 1
    assert len(errs) >= 5
    bad = {k: round(v, 3) for k, v in errs.items() if abs(v) > TOLERANCE}
    assert not bad, bad
    assert sum(abs(v) for v in errs.values()) / len(errs) <= MEAN_TOLERANCE, errs


def test_fit_check_uses_the_framework_estimate():
    """estimate() reports and fits on memory(): allocated plus the runtime outside it."""
    job, spec = _job("llama3-8b", 8192, tp=1, pp=1, dp=8, micro_batch=1, zero=3,
                     recompute="full", global_batch=8)
    r = estimate(job, spec)
    parts = _parts(job, spec)
    want = float(M.allocated(*parts)) + RUNTIME_RESERVE_BYTES
    assert r.memory_per_device_gib * units.GiB == pytest.approx(want, rel=1e-9)
    assert r.fits_memory == (want <= spec.memory_bytes)


def test_logits_scale_with_the_stacks_loss_bytes():
    """One stage, micro-batch b: the logits cost logit_bytes x b s V / t."""
    job, spec = _job("llama3-8b", 4096, tp=2, pp=1, dp=4, micro_batch=2, zero=1,
                     global_batch=64)
    parts = _parts(job, spec)
    lo = SM.StackMemory("a", 4.0, 2.0, 0.0, 0.0)
    hi = SM.StackMemory("b", 10.0, 2.0, 0.0, 0.0)
    diff = float(M.allocated(*parts, hi) - M.allocated(*parts, lo))
    assert diff == pytest.approx(6.0 * 2 * 4096 * 128256 / 2, rel=1e-9)


def test_zero3_holds_the_gathered_layers_and_head():
    """ZeRO-3: live layers x a layer's weights x (weight + gradient bytes), and the LM
    head's, on top of the sharded states; none of it with ZeRO-1."""
    job, spec = _job("llama3-8b", 4096, tp=1, pp=1, dp=8, micro_batch=1, zero=3,
                     global_batch=8)
    f, u, st, pr, dp = _parts(job, spec)
    one = SM.StackMemory("one", 6.0, 1.0, 0.0, 0.0)
    two = SM.StackMemory("two", 6.0, 2.0, 0.0, 0.0)
    layer = float(pr.layers + pr.layers_expert) / float(st.Ls)
    gap = float(M.allocated(f, u, st, pr, dp, two) - M.allocated(f, u, st, pr, dp, one))
    assert gap == pytest.approx(layer * (2 + 4), rel=1e-9)  # bf16 weight, fp32 grad
    job1 = job.model_copy(update={"parallelism": job.parallelism.model_copy(
        update={"zero": 1})})
    f1, u1, st1, pr1, dp1 = _parts(job1, spec)
    assert float(M.allocated(f1, u1, st1, pr1, dp1, two)) - float(
        M.allocated(f1, u1, st1, pr1, dp1, one)) == 0.0


def test_reserved_is_allocated_over_one_minus_fragmentation_capped_at_the_device():
    job, spec = _job("llama3-8b", 4096, tp=1, pp=1, dp=8, micro_batch=1, zero=3,
                     global_batch=8)
    parts = _parts(job, spec)
    a = float(M.allocated(*parts, _terms("torchtitan")))
    assert float(M.reserved(*parts, _terms("torchtitan"))) == pytest.approx(a / 0.85, rel=1e-12)
    tiny = _parts(job, spec, memory_GiB=10.0)
    assert float(M.reserved(*tiny, _terms("torchtitan"))) == pytest.approx(
        10 * units.GiB - RUNTIME_RESERVE_BYTES)


def test_fit_agrees_with_published_oom_and_fit():
    """torchtitan docs/performance.md (commit 3faaa1a0d): Llama 3.1 405B on 128 H100 with
    94 GB, local batch 2, seq 8192, full AC: 1D FSDP2 (128-way) runs out of memory, 2D
    (FSDP 16 x TP 8) trains. The fit estimate says the same with a margin either way (the
    94 GB read as 94e9 bytes)."""
    cap = 94e9
    one, spec = _job("llama3-405b", 8192, tp=1, pp=1, dp=128, micro_batch=2, zero=3,
                     recompute="full", global_batch=256)
    two, _ = _job("llama3-405b", 8192, tp=8, pp=1, dp=16, micro_batch=2, zero=3,
                  recompute="full", sequence_parallel=True, global_batch=32)
    need_1d = float(M.memory(*_parts(one, spec, cap / units.GiB), _terms("torchtitan")))
    need_2d = float(M.memory(*_parts(two, spec, cap / units.GiB), _terms("torchtitan")))
    assert need_1d > 1.5 * cap
    assert need_2d < 0.9 * cap


def test_stack_without_a_weight_copy_holds_the_fp32_master_only():
    """weight_copy false (MaxText: fp32 parameters cast at each use): the states lose the
    low-precision copy, weight_bytes per parameter on the rank (ZeRO-1 keeps it unsharded)."""
    job, spec = _job("llama3-8b", 4096, tp=2, pp=1, dp=4, micro_batch=1, zero=1,
                     global_batch=64)
    f, u, st, pr, dp = _parts(job, spec)
    base = SM.StackMemory("copy", 6.0, 2.0, 0.0, 0.0)
    cast = SM.StackMemory("cast", 6.0, 2.0, 0.0, 0.0, weight_copy=False)
    gap = float(M.allocated(f, u, st, pr, dp, base) - M.allocated(f, u, st, pr, dp, cast))
    assert gap == pytest.approx(float(dp.copies * pr.first_dense * f["weight_bytes"]),
                                rel=1e-9)


def test_gspmd_gathers_weight_tensors_not_layers():
    """zero3_tensor (GSPMD: each dot's weight operand gathered on its own): live tensors x
    the largest one (a gated MLP's input projection, h x 2 ffn / t) x (weight + gradient
    bytes), against two whole layers under FSDP; the head gathered as before."""
    job, spec = _job("llama3-8b", 4096, tp=1, pp=1, dp=8, micro_batch=1, zero=3,
                     global_batch=8)
    f, u, st, pr, dp = _parts(job, spec)
    none = SM.StackMemory("none", 6.0, 0.0, 0.0, 0.0, zero3_tensor=True,
                          zero3_grad_bytes=2.0)
    two = SM.StackMemory("two", 6.0, 2.0, 0.0, 0.0, zero3_tensor=True, zero3_grad_bytes=2.0)
    gap = float(M.allocated(f, u, st, pr, dp, two) - M.allocated(f, u, st, pr, dp, none))
    assert gap == pytest.approx(2 * 4096 * 14336 * 2 * (2 + 2), rel=1e-9)
    layers = SM.StackMemory("layers", 6.0, 2.0, 0.0, 0.0, zero3_grad_bytes=2.0)
    layer = float(pr.layers + pr.layers_expert) / float(st.Ls)
    assert float(M.allocated(f, u, st, pr, dp, layers) - M.allocated(f, u, st, pr, dp, two)) \
        == pytest.approx(2 * (layer - 4096 * 14336 * 2) * (2 + 2), rel=1e-9)


def test_liveness_planned_buffers_hold_the_larger_of_loss_and_layer_backward():
    """phase_max (XLA's buffer assignment): the logits cost nothing while they fit in the
    space a layer's backward needs anyway, and the sum of both phases otherwise (a caching
    allocator's figures)."""
    job, spec = _job("llama3-8b", 4096, tp=1, pp=1, dp=8, micro_batch=1, zero=1,
                     global_batch=8)
    parts = _parts(job, spec)
    logits = 4096 * 128256.0

    def alloc(lb: float, phase_max: bool) -> float:
        return float(M.allocated(*parts, SM.StackMemory("s", lb, 2.0, 0.0, 0.0,
                                                        phase_max=phase_max)))
    assert alloc(6.0, False) - alloc(0.0, False) == pytest.approx(6.0 * logits, rel=1e-9)
    assert alloc(0.1, True) == alloc(0.0, True)  # 51 MB of logits under a layer's GiB
    big = alloc(60.0, True)
    assert alloc(0.0, True) < big < alloc(60.0, False)
    # above the layer's working set, each logit byte counts again
    assert alloc(61.0, True) - big == pytest.approx(logits, rel=1e-9)


def test_xla_stack_fits_the_published_trillium_layout_a_caching_allocator_would_not():
    """MLPerf Training v4.1 GPT-3 175B on 512 Trillium chips (32 GB, FSDP 512, per-device
    batch 3, full remat; configs/runs/mlperf-training-google.yaml) trained under MaxText:
    it fits with XLA's terms and would not with Megatron's or PyTorch's."""
    spec = load_device("tpu-v6e").spec
    m = TransformerModel(name="gpt3-175b", layers=96, hidden=12288, heads=96,
                         ffn_hidden=49152, vocab=50688, seq_len=2048,
                         tied_embeddings=True, dropout=False)
    job = TrainJob(device=spec.name, model=m, global_batch=1536, precision="fp8",
                   parallelism=Parallelism(tp=1, pp=1, dp=512, micro_batch=3, zero=3,
                                           recompute="full", sequence_parallel=True))
    parts = _parts(job, spec)
    assert float(M.memory(*parts, _terms("maxtext"))) <= spec.memory_bytes
    for stack in (SM.DEFAULT, _terms("torchtitan")):
        assert float(M.memory(*parts, stack)) > 1.3 * spec.memory_bytes


def test_fsdp_with_pipelining_holds_the_stages_gathered_weights_and_gradients():
    """zero3_pp_hold: with pp > 1 every layer of the stage stays gathered with its
    unsharded gradient (weight + gradient bytes per parameter) instead of mem_z3_live
    layers; without pipelining nothing changes."""
    job, spec = _job("llama3-70b", 8192, tp=8, pp=4, dp=4, micro_batch=1, zero=3,
                     recompute="full", sequence_parallel=True, global_batch=64)
    f, u, st, pr, dp = _parts(job, spec)
    live = SM.StackMemory("live", 10.0, 2.0, 0.0, 0.0)
    hold = SM.StackMemory("hold", 10.0, 2.0, 0.0, 0.0, zero3_pp_hold=True)
    layer = float(pr.layers + pr.layers_expert) / float(st.Ls)
    gap = float(M.allocated(f, u, st, pr, dp, hold) - M.allocated(f, u, st, pr, dp, live))
    assert gap == pytest.approx((float(st.Ls) - 2) * layer * (2 + 4), rel=1e-9)
    flat, _ = _job("llama3-70b", 8192, tp=8, pp=1, dp=16, micro_batch=1, zero=3,
                   recompute="full", sequence_parallel=True, global_batch=64)
    parts = _parts(flat, spec)
    assert float(M.allocated(*parts, hold)) == float(M.allocated(*parts, live))


def test_stack_profiles_carry_the_memory_terms_and_tpus_default_to_xla():
    """Megatron-Core's and NeMo's memory blocks are the model's defaults; a job on a Google
    TPU that names no stack gets MaxText's (the vendor's default stack), one that names
    megatron-core gets those."""
    for name in ("megatron-core", "nemo"):
        assert _terms(name).columns() == SM.DEFAULTS
    assert stacks.default_stack("Google").name == "maxtext"
    spec = load_device("tpu-v6e").spec
    m = TransformerModel(name="gpt3-175b", layers=96, hidden=12288, heads=96,
                         ffn_hidden=49152, vocab=50688, seq_len=2048,
                         tied_embeddings=True, dropout=False)
    job = TrainJob(device=spec.name, model=m, global_batch=1536, precision="fp8",
                   parallelism=Parallelism(tp=1, pp=1, dp=512, micro_batch=3, zero=3,
                                           recompute="full", sequence_parallel=True))
    parts = _parts(job, spec)
    want = float(M.memory(*parts, _terms("maxtext")))
    assert estimate(job, spec).memory_per_device_gib * units.GiB == pytest.approx(want)
    meg = job.model_copy(update={"stack": "megatron-core"})
    assert estimate(meg, spec).memory_per_device_gib * units.GiB == pytest.approx(
        float(M.memory(*parts, SM.DEFAULT)))


def test_the_layout_search_runs_the_stacks_memory_terms():
    """train-search on Trillium (GPT-3 175B, 512 chips): every layout that fits under
    Megatron-Core's terms fits under MaxText's (each XLA term is at most Megatron's) and
    some fit only under XLA's; the memory reported per layout differs accordingly."""
    from accelsim.training.search import search_layouts

    spec = load_device("tpu-v6e").spec
    m = TransformerModel(name="gpt3-175b", layers=96, hidden=12288, heads=96,
                         ffn_hidden=49152, vocab=50688, seq_len=2048,
                         tied_embeddings=True, dropout=False)

    def fits(stack: str) -> dict[tuple[Any, ...], tuple[bool, float]]:
        c = search_layouts(m, spec, 512, 1536, "fp8", stack=stack).columns
        keys = ("tp", "pp", "dp", "cp", "micro_batch", "virtual_stages", "recompute", "zero")
        return {tuple(c[k][i] for k in keys): (bool(c["fits_memory"][i]),
                                               float(c["memory_per_device_gib"][i]))
                for i in range(len(c["tp"]))}

    xla, meg = fits("maxtext"), fits("megatron-core")
    common = xla.keys() & meg.keys()
    assert len(common) > 100
    assert all(xla[k][1] <= meg[k][1] for k in common)
    assert all(xla[k][0] for k in common if meg[k][0])
    assert any(xla[k][0] and not meg[k][0] for k in common)


def test_a_bad_memory_block_is_a_one_line_error_naming_the_field(tmp_path):
    """A stack whose allocator would hold more than 90 % beyond what it hands out."""
    import yaml

    from accelsim.errors import AccelsimError

    src = stacks.load_stack("maxtext").model_dump(mode="json", exclude_none=True)
    src["memory"]["fragmentation"]["value"] = 1.2
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(src))
    with pytest.raises(AccelsimError) as e:
        stacks.load_stack(str(path))
    [p] = e.value.problems
    assert p.field == "memory.fragmentation" and "[0, 0.9]" in p.message

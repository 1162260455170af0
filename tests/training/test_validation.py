"""Published training runs (configs/runs, run by ``accelsim validate-runs``), each asserted
within its file's tolerance (README: Validation)."""

import pytest

from accelsim.runs import eq3_flops, load_runs, validate_runs
from accelsim.transformer.model import TransformerModel
from tests.conftest import CONFIGS

RUNS = CONFIGS / "runs"


@pytest.mark.parametrize("name,count", [("narayanan2021-megatron-a100.yaml", 10),
                                        ("korthikanti2022-megatron-a100.yaml", 4),
                                        ("llama3-405b-h100.yaml", 3)])
def test_published_runs_within_10_percent(name, count):
    results = validate_runs([RUNS / name])
    assert len(results) == count and load_runs(RUNS / name).tolerance == 0.10
    bad = [(r.id, f"{100 * r.error:+.1f} %") for r in results if not r.within]
    assert not bad, bad


def test_narayanan_mean_error_is_small():
    errs = [abs(r.error) for r in validate_runs([RUNS / "narayanan2021-megatron-a100.yaml"])]
    assert sum(errs) / len(errs) <= 0.03  # calibration rows: mean |error| <= 3 %


def test_eq3_counts_four_forward_passes_of_the_model_flops():
    """Eq. 3 counts full recomputation (forward, recomputed forward, 2x backward) = 4/3 of
    the model FLOPs (3 forward-equivalents) that :func:`estimate` reports, independently
    derived: GPT-3 175B, batch 1536."""
    from accelsim.training.job import Parallelism, TrainJob
    from tests.training import estimate

    m = TransformerModel(layers=96, hidden=12288, heads=96, ffn_hidden=4 * 12288,
                         vocab=51200, seq_len=2048)
    job = TrainJob(device="a100-80gb-sxm", model=m, global_batch=1536, precision="fp16",
                   parallelism=Parallelism(tp=8, pp=8, dp=8, recompute="full"))
    r = estimate(job)
    model_flops = r.model_tflops_per_device * 1e12 * r.step_time_s * 512
    assert eq3_flops(1536, m) == pytest.approx(4 / 3 * model_flops, rel=0.005)


def test_llama3_layouts_fit_as_they_ran_and_the_held_out_rows_are_close():
    """Llama 3 405B ran TP8 PP16 on 80 GB H100s without activation checkpointing at 8K
    (arXiv 2407.21783, 3.3.2): with the uneven stages, no dropout and flash attention it
    fits; row 1 calibrated the Hopper efficiency, rows 2 (16K GPUs) and 3 (131K context,
    CP16) are held out."""
    results = {r.id: r for r in validate_runs([RUNS / "llama3-405b-h100.yaml"])}
    for r in results.values():
        used, cap = (float(x) for x in r.detail.split(", ")[-1].split(" GiB")[0].split(" of "))
        assert used <= cap
    assert abs(results["llama3-405b-16k-gpus"].error) < 0.03
    assert abs(results["llama3-405b-128k-context"].error) < 0.03


def test_a_run_whose_layout_breaks_a_rule_names_that_rule(tmp_path):
    import yaml

    from accelsim.errors import AccelsimError

    data = yaml.safe_load((RUNS / "llama3-405b-h100.yaml").read_text())
    run = data["runs"][0]
    del run["account_for_embedding"], run["account_for_loss"]
    run["first_stage_layers"], run["last_stage_layers"] = 5, 7  # 114 cannot share 14 x 8
    f = tmp_path / "runs.yaml"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(AccelsimError) as e:
        validate_runs([f])
    assert [p.field for p in e.value.problems] == ["runs[0].first_stage_layers"]


def test_account_for_embedding_beside_first_stage_layers_is_refused(tmp_path):
    """Megatron-Core asserts the two splits are not combined (get_num_layers_to_build)."""
    import yaml

    from accelsim.errors import AccelsimError

    data = yaml.safe_load((RUNS / "llama3-405b-h100.yaml").read_text())
    data["runs"][0]["first_stage_layers"] = 7
    f = tmp_path / "runs.yaml"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(AccelsimError) as e:
        validate_runs([f])
    assert "runs[0].account_for_embedding" in [p.field for p in e.value.problems]

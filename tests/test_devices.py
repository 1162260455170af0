from __future__ import annotations

import pytest

import accelsim
from accelsim import units
from accelsim.devices import catalog_names, device_from_dict, load_device
from accelsim.errors import AccelsimError
from accelsim.precision import PRECISIONS

REQUIRED = {"a100-80gb-sxm", "h100-sxm", "h20", "ascend-910b", "ascend-910c", "inhouse-asic"}


def test_catalog_has_the_required_profiles():
    assert REQUIRED <= set(catalog_names())
    assert set(accelsim.catalog()) == set(catalog_names())


@pytest.mark.parametrize("name", catalog_names())
def test_every_number_has_provenance(name):
    p = load_device(name)
    assert p.name == name
    for key, q in p.quantities().items():
        assert q.source, key
        if q.confidence == "assumption":
            assert q.note, f"{name}: {key} is an assumption without reasoning"
        elif q.source != "assumption":
            # named sources must be defined in the profile's citation list
            assert q.source in p.sources, f"{name}: {key} cites undefined source {q.source!r}"


def test_inhouse_asic_is_an_assumption_available_2026():
    p = load_device("inhouse-asic")
    assert p.available_from == 2026
    perf = [q for k, q in p.quantities().items() if k.split(".")[0] in ("compute", "memory")]
    assert all(q.confidence == "assumption" for q in perf)


def test_si_conversion_happens_once_and_correctly():
    s = load_device("a100-80gb-sxm").spec
    assert s.peak_flops["bf16"] == pytest.approx(312e12)
    assert "fp8" not in s.peak_flops  # unsupported is absent, not zero
    assert s.memory_bytes == 80 * 2**30
    assert s.memory_bw_Bps == pytest.approx(2039e9)
    assert s.scaleup_bw_Bps == pytest.approx(300e9)  # 600 GB/s bidirectional -> 300 per direction
    assert s.scaleout_bw_Bps == pytest.approx(200e9 / 8)
    assert s.scaleup_latency_s == pytest.approx(5 * units.US)


def test_unsupported_precision_is_an_error_not_a_fallback():
    s = load_device("a100-80gb-sxm").spec
    with pytest.raises(AccelsimError, match="does not support fp8"):
        s.flops("fp8")
    assert set(s.peak_flops) <= set(PRECISIONS)


def test_device_by_path(tmp_path, h20_dict):
    h20_dict["name"] = "my-chip"
    h20_dict["compute"]["bf16_tflops"]["value"] = 200
    path = tmp_path / "my-chip.yaml"
    import yaml

    path.write_text(yaml.safe_dump(h20_dict))
    p = load_device(str(path))
    assert p.name == "my-chip"
    assert p.spec.peak_flops["bf16"] == 200e12


def test_unknown_device_suggests_closest():
    with pytest.raises(AccelsimError) as e:
        load_device("ascend-910")
    assert "did you mean 'ascend-910" in str(e.value)


def test_range_must_bracket_value(h20_dict):
    h20_dict["memory"]["memory_GiB"]["range"] = [100, 120]
    with pytest.raises(AccelsimError, match=r"memory\.memory_GiB: range must be"):
        device_from_dict(h20_dict, "x.yaml")


def test_idle_above_tdp_is_rejected(h20_dict):
    h20_dict["power"]["idle_W"] = {"value": 500, "source": "x", "confidence": "B"}
    with pytest.raises(AccelsimError, match="idle_W"):
        device_from_dict(h20_dict, "x.yaml")


def test_model_copy_gives_the_new_numbers():
    p = load_device("h20")
    assert p.spec.price_usd == p.cost.price_usd.value
    cheap = p.model_copy(update={"cost": p.cost.model_copy(update={
        "price_usd": p.cost.price_usd.model_copy(update={"value": 1234.0})})})
    assert cheap.spec.price_usd == 1234.0
    assert p.spec.price_usd != 1234.0


def test_an_edited_profile_is_read_again(tmp_path, h20_dict):
    import yaml

    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(h20_dict))
    assert load_device(path).spec.price_usd == h20_dict["cost"]["price_usd"]["value"]
    h20_dict["cost"]["price_usd"].update(value=4321.0, range=None)
    path.write_text(yaml.safe_dump(h20_dict) + "\n# edited\n")
    assert load_device(path).spec.price_usd == 4321.0


def test_physics_takes_a_resolved_device_not_a_name():
    from accelsim.training import search_layouts
    from accelsim.transformer.model import load_model

    model = load_model("gpt3-175b")
    with pytest.raises(AccelsimError, match="resolve a name or path"):
        search_layouts(model, "a100-80gb-sxm", 64, global_batch=64)  # type: ignore[arg-type]
    with pytest.raises(AccelsimError, match=r"pass its \.spec"):
        search_layouts(model, load_device("a100-80gb-sxm"), 64,  # type: ignore[arg-type]
                       global_batch=64)


def test_python_dash_m_runs_the_cli():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "accelsim", "--version"], capture_output=True,
                       text=True, check=False)
    assert r.returncode == 0 and r.stdout.startswith("accelsim ")

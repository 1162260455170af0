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

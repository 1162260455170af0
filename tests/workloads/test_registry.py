"""A toy third workload, defined here and not shipped, plugs in through the registry and
appears in compare, optimize and a sweep without touching those modules."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
import yaml
from pydantic import Field
from typer.testing import CliRunner

from accelsim import workloads
from accelsim.cli import app
from accelsim.errors import AccelsimError
from accelsim.fleet import compare, load_scenario
from accelsim.sweep import read_results, run_sweep
from accelsim.workloads import DeviceEval, Workload, WorkloadSpec
from tests.conftest import CONFIGS

runner = CliRunner()


class EchoSpec(WorkloadSpec):
    kind: Literal["echo"] = "echo"
    gflop_per_query: float = Field(gt=0)
    peak_qps: float = Field(gt=0)


class Echo(Workload):
    """Queries of a fixed FLOP count at the device's achieved bf16 rate (no state)."""

    kind = "echo"
    unit = "echo queries/s"
    role = "capacity"
    spec_model = EchoSpec

    def demand(self, spec: EchoSpec) -> float:
        return spec.peak_qps

    def _qps(self, spec: EchoSpec, device: Any) -> float:
        s = device.spec
        return s.flops("bf16") * s.eff_compute / (spec.gflop_per_query * 1e9)

    def evaluate(self, spec: EchoSpec, device: Any, ctx: Any) -> DeviceEval:
        return DeviceEval(self._qps(spec, device), 0.5, "echo")

    def prepare_fast(self, spec: EchoSpec, base: dict[str, DeviceEval], ctx: Any) -> None:
        return None

    def evaluate_fast(self, spec: EchoSpec, ref: str, device: Any, state: Any, ctx: Any
                      ) -> DeviceEval:
        return DeviceEval(self._qps(spec, device), 0.5)


@pytest.fixture
def echo_scenario(tmp_path):
    workloads.register(Echo)
    data = yaml.safe_load((CONFIGS / "fleet.yaml").read_text())
    del data["workloads"]["serving"]  # keep the test fast: training + echo
    del data["workloads"]["chatbot"]
    del data["plan"]
    data["workloads"]["echo"] = {"gflop_per_query": 50.0, "peak_qps": 2.0e6}
    data["budget"]["pools"]["domestic"]["devices"] = ["ascend-910c"]
    data["budget"]["pools"]["overseas"]["devices"] = ["h20", "inhouse-asic"]
    data["supply"] = {"inhouse-asic": {"max_units": 100000, "available_from": 2026}}
    data["rentals"] = {}
    data["fleets"] = [f for f in data["fleets"] if "ascend-910b" not in (f.get("spend_usd") or {})
                      and not f.get("rent")]
    data["workloads"]["training"]["model"] = str(CONFIGS / "models" / "gpt3-175b.yaml")
    p = tmp_path / "echo.yaml"
    p.write_text(yaml.safe_dump(data))
    yield p
    workloads.unregister("echo")


def test_toy_workload_in_compare(echo_scenario):
    res = compare(load_scenario(echo_scenario))
    rows = res.devices[res.devices.workload == "echo"]
    assert len(rows) == 3 and (rows.throughput > 0).all()
    assert set(rows.throughput_unit) == {"echo queries/s"}
    assert res.demand["echo"] == 2.0e6
    for f in res.fleets:
        assert f["workloads"]["echo"]["demand"] == 2.0e6
        assert "echo_capacity" in f
        # the capacity workload is covered first (when the fleet can), the rest trains
        if f["workloads"]["echo"]["capacity_whole_fleet"] > 2.2e6:
            assert f["workloads"]["echo"]["served_fraction"] == 1.0
    r = runner.invoke(app, ["compare", str(echo_scenario)])
    assert r.exit_code == 0 and "echo" in r.stdout


def test_toy_workload_in_optimize(echo_scenario):
    r = runner.invoke(app, ["optimize", str(echo_scenario), "--json", "--year", "2026"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out["capacity"]) == {"training", "echo"}
    assert out["capacity"]["echo"] >= 2.0e6 * out["served_fraction"]["echo"] - 1e-6


def test_toy_workload_in_a_sweep(echo_scenario, tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "echo", "base": str(echo_scenario),
        "parameters": {"devices.h20.perf_scale": {"values": [0.5, 1.0, 2.0]}},
        "metrics": ["device.h20.echo.throughput", "fleet.all-h20.echo_capacity"]}))
    run_sweep(sweep, tmp_path / "o", workers=1)
    df = read_results(tmp_path / "o")
    thr = df["device.h20.echo.throughput"].to_numpy()
    assert thr[1] == pytest.approx(2 * thr[0]) and thr[2] == pytest.approx(2 * thr[1])
    base = compare(load_scenario(echo_scenario))
    h20 = base.devices[(base.devices.ref == "h20") & (base.devices.workload == "echo")]
    assert thr[1] == pytest.approx(float(h20.throughput.iloc[0]), rel=1e-12)


def test_unknown_workload_kind_is_one_line(tmp_path):
    data = yaml.safe_load((CONFIGS / "fleet.yaml").read_text())
    data["workloads"]["chat"] = {"kind": "llm_chat", "model": "x"}
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(AccelsimError) as e:
        load_scenario(p)
    assert str(e.value).startswith(f"{p}: workloads.chat.kind: unknown workload kind")
    assert "recsys_serving, training" in str(e.value)


def test_a_workload_block_error_names_its_field(tmp_path):
    data = yaml.safe_load((CONFIGS / "fleet.yaml").read_text())
    data["workloads"]["training"]["tokens"] = -1
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(AccelsimError) as e:
        load_scenario(p)
    assert f"{p}: workloads.training.tokens: " in str(e.value)

"""compare's device table for a spreadsheet: what each note says for people (layout, MFU,
goodput, MTBF, confidence interval) is also a field, and no number in the console or the
notes is printed with an exponent."""

import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from accelsim.cli import app
from tests.conftest import CONFIGS

runner = CliRunner()
FLEET = CONFIGS / "fleet.yaml"


def test_layout_mfu_goodput_mtbf_and_ci_are_fields_matching_the_notes(tmp_path):
    r = runner.invoke(app, ["compare", str(FLEET), "--json", "--csv", str(tmp_path)])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["devices"]
    by = {(d["device"], d["workload"]): d for d in rows}
    for (dev, w), row in by.items():
        d, note = row["details"], row["note"]
        if row["throughput"] <= 0:
            continue
        if w == "training":
            layout = (f"tp{d['tp']} pp{d['pp']} dp{d['dp']} mb{d['micro_batch']} "
                      f"v{d['virtual_stages']} {d['recompute']} zero{d['zero']}")
            assert note.startswith(layout), (dev, note)
            assert f"MFU {d['mfu']:.2f}" in note and 0 < d["mfu"] < 1
            assert f"goodput {100 * d['goodput_fraction']:.1f} %" in note
            assert f"MTBF {d['mtbf_s'] / 3600:.3g} h" in note
            assert 0 < d["checkpoint_interval_s"] < d["mtbf_s"]
            # per device: tokens/s of the cluster at its best layout x goodput, so the
            # goodput field is the one the throughput carries
            assert 0 < d["goodput_fraction"] < 1
        elif w == "chatbot":
            assert d["weight_format"] in ("fp8", "int8", "bf16")
            lo, mid, hi = (d["ci95_low_rps_per_replica"], d["rps_per_replica"],
                           d["ci95_high_rps_per_replica"])
            assert lo <= mid <= hi and f"[{lo:.3g}, {hi:.3g}]" in note
            # requests/s per device = per replica / devices per replica x replicas up
            devices = d["tp"] * d["dp"]
            assert row["throughput"] == pytest.approx(mid / devices * d["replicas_up_share"],
                                                      rel=1e-9)
        elif w == "serving":
            lo, mid, hi = (d["ci95_low_qps_per_server"], d["qps_per_server"],
                           d["ci95_high_qps_per_server"])
            assert lo <= mid <= hi and f"{mid:,.0f} qps/server" in note
    # the seed serves the chatbot in FP8 on the H20 and W8A8 INT8 on Ascend
    assert by[("h20", "chatbot")]["details"]["weight_format"] == "fp8"
    assert by[("ascend-910c", "chatbot")]["details"]["weight_format"] == "int8"
    csv = pd.read_csv(tmp_path / "devices.csv")
    assert {"details.mfu", "details.mtbf_s", "details.goodput_fraction",
            "details.ci95_low_rps_per_replica", "details.qps_per_server"} <= set(csv.columns)
    train = csv[csv["workload"] == "training"]
    mfu = train["details.mfu"]
    assert pd.api.types.is_numeric_dtype(mfu) and mfu.notna().all()


def test_compare_prints_no_number_with_an_exponent():
    r = runner.invoke(app, ["compare", str(FLEET)])
    assert r.exit_code == 0, r.output
    assert not re.search(r"\d(\.\d+)?e[+-]\d", r.stdout), re.findall(r"\S*\de[+-]\d\S*",
                                                                     r.stdout)

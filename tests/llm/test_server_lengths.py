"""MLPerf Server rows of the AMD vLLM harness (held out): the Server metric is samples/s, so a
row's output lengths must carry its own log's generated mean, and its request count the log's
min_duration at the published rate (docs/_notes/mlperf-inference-v5-heldout.md)."""

import re

import pytest

from accelsim.runs import load_runs
from accelsim.traffic import dist_mean
from tests.conftest import CONFIGS

HELDOUT = CONFIGS / "runs" / "heldout"
FILES = [HELDOUT / "mlperf-inference-v5-amd-server.yaml", HELDOUT / "mlperf-inference-v5-llm.yaml"]


def _amd_server_rows():
    for path in FILES:
        for run in load_runs(path).runs:
            if run.kind == "llm_server" and run.replica.device in ("mi300x", "mi325x"):
                yield path, run


@pytest.mark.parametrize("path,run", list(_amd_server_rows()), ids=lambda x: getattr(x, "id", ""))
def test_output_mean_and_run_length_are_the_logs(path, run):
    tokens = float(re.search(r"([\d.]+) generated tokens per sample", run.source).group(1))
    assert dist_mean(run.output_tokens) == pytest.approx(tokens, rel=0.005)
    seconds = float(re.search(r"min_duration ([\d,]+) s", run.source).group(1).replace(",", ""))
    assert run.requests == pytest.approx(run.published.value * seconds, rel=0.005)


def test_every_amd_harness_server_row_is_held_out():
    """The selection: AMD, ASUSTeK, GigaComputing, MiTAC, QCT (MI325X), Dell (MI300X) and Vultr."""
    ids = {run.id for _, run in _amd_server_rows()}
    assert len(ids) == 7 and "mlperf51-llama2-70b-vultr-mi325x-server" in ids

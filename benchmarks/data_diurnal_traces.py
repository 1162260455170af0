"""Hourly load curves of published inference traces, for the shared fleet's shape check.

Writes ``tests/data/diurnal/<name>.csv`` (hour, load as a share of the curve's peak hour)
from two public sources (citations in ``tests/data/diurnal/README.md``):

- ``alibaba-genai-qps``: Alibaba's GenAI serving trace (alibaba/clusterdata,
  ``cluster-trace-v2026-GenAI/qps.tar.gz``, the gateway's QPS samples of one day): the QPS of
  all containers summed per 10-minute window, averaged per hour. The trace's timestamps are
  shifted by an unpublished offset, so its hour of day is not the local one.
- ``azure-llm-2024-conv`` and ``azure-llm-2024-code``: Azure's LLM inference traces of May
  2024 (DynamoLLM, HPCA 2025), a week of invocations per minute, in UTC. The raw week is not
  in the repository; its figure is (``analysis/AzureLLMInferenceDataset2024.ipynb``, cell
  "Analysis over time", invocations per minute): the curve is digitised from that plot (the
  line's pixels per column, the y axis calibrated on its grid lines, the x axis spanning the
  week's 7 days exactly) and averaged per hour of day over the 7 days.

    python benchmarks/data_diurnal_traces.py qps.csv AzureLLMInferenceDataset2024.ipynb
"""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "diurnal"


def genai_hourly(qps_csv: str) -> np.ndarray:
    q = pd.read_csv(qps_csv)
    t = pd.to_datetime(q["timestamp_anon"], unit="s")
    s = q.set_index(t)["value"].resample("10min").sum()
    s = s[s.index >= t.min().floor("10min")]
    hourly = s.groupby(s.index.hour).mean()
    return hourly.reindex(range(24)).to_numpy()


def _png(nb_path: str, title: str) -> bytes:
    nb = json.loads(Path(nb_path).read_text())
    cell = next(c for c in nb["cells"] if "plt_invocations_time(df_trace)" in "".join(c["source"]))
    order = {"Coding": 0, "Conversation": 1}  # TRACE_NAMES order in the notebook
    pngs = [o["data"]["image/png"] for o in cell["outputs"] if "image/png" in o.get("data", {})]
    return base64.b64decode(pngs[order[title]])


def digitise(png: bytes, days: int = 7) -> np.ndarray:
    """Hourly mean of a matplotlib line plot (default blue, C0) over ``days`` days, the y axis
    starting at 0 (the notebook sets ylim=0) and scaled on its lowest grid line (1000)."""
    from PIL import Image

    im = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    dark = im.sum(axis=2) < 150
    rows = [y for y in range(im.shape[0]) if dark[y].sum() > 0.5 * im.shape[1]]
    cols = [x for x in range(im.shape[1]) if dark[:, x].sum() > 0.5 * (rows[-1] - rows[0])]
    y0, x0, x1 = rows[-1], cols[0], cols[-1]  # bottom spine (y = 0), left and right spines
    grey = (np.abs(im - 0xB0) < 20).all(axis=2)
    grid = [y for y in range(rows[0] + 1, y0) if grey[y, x0:x1].sum() > 0.2 * (x1 - x0)]
    per_px = 1000.0 / (y0 - grid[-1])  # the lowest grid line is 1000 invocations per minute
    c0 = np.array([0x1F, 0x77, 0xB4])
    line = (np.abs(im - c0) < 40).all(axis=2)
    xs = np.arange(x0 + 1, x1)
    v = np.array([(y0 - np.flatnonzero(line[:, x]).mean()) * per_px if line[:, x].any()
                  else np.nan for x in xs])
    hour = np.floor((xs - x0) / (x1 - x0) * days * 24 % 24).astype(int)
    return np.array([np.nanmean(v[hour == h]) for h in range(24)])


def write(name: str, load: np.ndarray, unit: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    peak = np.nanmax(load)
    with open(OUT / f"{name}.csv", "w") as f:
        f.write(f"hour,load,{unit}\n")
        for h, x in enumerate(load):
            f.write(f"{h},{'' if np.isnan(x) else f'{x / peak:.4f}'},"
                    f"{'' if np.isnan(x) else f'{x:.1f}'}\n")


def main() -> None:
    qps_csv, notebook = sys.argv[1], sys.argv[2]
    write("alibaba-genai-qps", genai_hourly(qps_csv), "qps_sum_per_10min")
    write("azure-llm-2024-conv", digitise(_png(notebook, "Conversation")),
          "invocations_per_min")
    write("azure-llm-2024-code", digitise(_png(notebook, "Coding")), "invocations_per_min")


if __name__ == "__main__":
    main()

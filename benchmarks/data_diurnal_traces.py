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
- ``burstgpt-chatgpt-conv``: BurstGPT (HPMLL/BurstGPT; Wang et al., KDD 2025, arXiv
  2401.17644), ChatGPT conversation requests on Azure OpenAI per hour of day in local time,
  a box per hour over the trace's days (``img/Fig3-4.png``, left panel): the medians
  digitised (the median line of each box; from 3 to 7 h the boxes collapse onto their
  whiskers and the middle line, or the whiskers' midpoint, stands in, a few requests of a
  188-request peak).

    python benchmarks/data_diurnal_traces.py qps.csv AzureLLMInferenceDataset2024.ipynb \
        BurstGPT-Fig3-4.png
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


def box_medians(png: bytes, hours: int = 24) -> np.ndarray:
    """Medians of the first panel's box plot (seaborn: one box per hour, dark outlines and
    median line), the y axis calibrated on its tick marks (0, 100, 200 requests)."""
    from PIL import Image

    im = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    g = im.sum(axis=2)
    dark = g < 200
    spines = [x for x in range(im.shape[1]) if dark[:, x].sum() > 0.6 * im.shape[0]]
    x0 = spines[1]  # the first panel's left spine (2 px wide) and its right one
    x1 = next(x for x in spines if x > x0 + 10)
    rows = [y for y in range(im.shape[0]) if dark[y, x0:x1].sum() > 0.7 * (x1 - x0)]
    top, bottom = rows[1], rows[-2]
    ticks = [y for y in range(top, bottom + 3) if (g[y, x0 - 20:x0] < 400).sum() >= 5]
    marks = [float(np.mean(c)) for c in _clusters(ticks)]  # 200, 100, 0 from the top
    per_px = 100.0 / (marks[-1] - marks[-2])
    w = (x1 - x0) / hours
    out = []
    for h in range(hours):
        xs = np.arange(int(x0 + (h + 0.5) * w - 6), int(x0 + (h + 0.5) * w + 7))
        lines = [y for y in range(top + 1, bottom) if (g[y, xs] < 350).sum() >= len(xs) - 1]
        mids = [float(np.mean(c)) for c in _clusters(lines)]
        # cap, box top, median, box bottom, cap; a collapsed box: cap, box, cap (or 2 caps)
        y = mids[2] if len(mids) == 5 else mids[1] if len(mids) == 3 else float(np.mean(mids))
        out.append((marks[-1] - y) * per_px)
    return np.array(out)


def _clusters(ys: list[int], gap: int = 2) -> list[list[int]]:
    out: list[list[int]] = []
    for y in ys:
        if out and y - out[-1][-1] <= gap:
            out[-1].append(y)
        else:
            out.append([y])
    return out


def write(name: str, load: np.ndarray, unit: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    peak = np.nanmax(load)
    with open(OUT / f"{name}.csv", "w") as f:
        f.write(f"hour,load,{unit}\n")
        for h, x in enumerate(load):
            f.write(f"{h},{'' if np.isnan(x) else f'{x / peak:.4f}'},"
                    f"{'' if np.isnan(x) else f'{x:.1f}'}\n")


def main() -> None:
    qps_csv, notebook, burst_png = sys.argv[1], sys.argv[2], sys.argv[3]
    write("alibaba-genai-qps", genai_hourly(qps_csv), "qps_sum_per_10min")
    write("azure-llm-2024-conv", digitise(_png(notebook, "Conversation")),
          "invocations_per_min")
    write("azure-llm-2024-code", digitise(_png(notebook, "Coding")), "invocations_per_min")
    write("burstgpt-chatgpt-conv", box_medians(Path(burst_png).read_bytes()),
          "median_requests_per_hour")


if __name__ == "__main__":
    main()

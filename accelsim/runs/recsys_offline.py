"""``recsys_offline`` -- MLPerf Inference Offline: samples/s of ``devices`` devices at the
batch that maximises throughput within device memory
(:func:`accelsim.serving.recsys.offline`), items/s divided by the mean sample size."""

from __future__ import annotations

from typing import Literal

from accelsim.runs.base import Prediction, RunKind, register
from accelsim.runs.recsys import RecsysRun, recsys_files


class RecsysOfflineRun(RecsysRun):
    kind: Literal["recsys_offline"]
    """MLPerf Offline: throughput with every sample available at once."""


def predict(run: RecsysOfflineRun, file: str) -> Prediction:
    from accelsim.devices import load_device
    from accelsim.serving.rec_model import load_model
    from accelsim.serving.recsys import offline

    model = load_model(run.model, relative_to=file, where=file, field="model")
    spec = load_device(run.device, where=file, field="device", relative_to=file).spec
    o = offline(model, spec, where=file)
    return Prediction(run.devices * o["items_per_s"] / run.mean_items,
                      f"{o['items_per_s'] / 1e6:.3g} M items/s per device at batch "
                      f"{o['batch_items']:,} (memory bound {o['batch_memory_bound_items']:,}); "
                      f"period {o['period_s'] * 1e3:.3g} ms")


register(RunKind("recsys_offline", RecsysOfflineRun, predict, recsys_files))

"""Shared by the recommendation run kinds: the model, the device, the sample size."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from accelsim.runs.base import Loader, RunBase
from accelsim.traffic import Dist, dist_mean


class RecsysRun(RunBase):
    model: str
    """Recommendation model: catalog name or path."""
    device: str
    """Device: catalog name or path."""
    devices: int = Field(ge=1, le=100_000)
    """Devices in the published system (one replica each)."""
    sample_items: Dist
    """Items (user-item pairs) per sample: the published figure counts samples."""

    @property
    def mean_items(self) -> float:
        return float(dist_mean(self.sample_items))


def recsys_files(run: Any) -> list[tuple[str, str, Loader]]:
    from accelsim.devices import load_device
    from accelsim.serving.rec_model import load_model

    return [("model", run.model, load_model), ("device", run.device, load_device)]

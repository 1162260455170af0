"""Shared scenario cuts of the fleet tests."""

from typing import Any

import yaml

from tests.conftest import CONFIGS


def h20_and_910c_seed(**chatbot: Any) -> dict[str, Any]:
    """The seed scenario cut to the H20 and the 910C (no rentals, no plan), its chatbot
    simulated short (1,200 requests, one replication) with ``chatbot`` fields set."""
    data = yaml.safe_load((CONFIGS / "fleet.yaml").read_text())
    data["budget"]["pools"]["domestic"]["devices"] = ["ascend-910c"]
    data["budget"]["pools"]["overseas"]["devices"] = ["h20"]
    data["supply"] = {k: v for k, v in data["supply"].items() if k in ("h20", "ascend-910c")}
    data["rentals"] = {}
    data.pop("plan")
    chat = data["workloads"]["chatbot"]
    chat["sim"] = {"requests": 1200, "warmup": 200, "replications": 1, "seed": 1}
    chat.update(chatbot)
    return data

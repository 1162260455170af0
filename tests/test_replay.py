"""A fleet command whose inputs did not change prints its recorded output (accelsim.replay):
the same bytes, in a few hundredths of a second; an edited scenario or device file, another
option, --no-cache or an unwritable cache runs the command again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from accelsim import cache
from tests.conftest import CONFIGS


@pytest.fixture
def setup(tmp_path):
    """A two-device training scenario with its own copy of the H20 profile, and an
    environment with a cache of its own."""
    dev = tmp_path / "h20.yaml"
    shutil.copy(CONFIGS / "devices" / "h20.yaml", dev)
    data = yaml.safe_load((CONFIGS / "fleet.yaml").read_text())
    data["workloads"] = {"training": {**data["workloads"]["training"],
                                      "model": str(CONFIGS / "models" / "gpt3-175b.yaml")}}
    data["budget"]["pools"] = {"overseas": {"usd": 6.8e9, "devices": [str(dev), "h100-sxm"],
                                            "region": "sea"}}
    data["supply"], data["rentals"] = {}, {}
    data["fleets"] = [{"name": "one", "spend_usd": {str(dev): 1.0e9}}]
    del data["plan"]
    sc = tmp_path / "sc.yaml"
    sc.write_text(yaml.safe_dump(data))
    env = {**os.environ, cache.ENV_DIR: str(tmp_path / "cache")}
    env.pop(cache.ENV_OFF, None)
    return sc, dev, env, tmp_path / "cache"


def _run(env, *args):
    r = subprocess.run([sys.executable, "-m", "accelsim", *args], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _entries(folder):
    return sorted(p.name for p in (folder / f"v{cache.FORMAT}" / "output").rglob("*.pkl"))


def test_an_unchanged_run_is_replayed_and_a_changed_input_is_not(setup):
    sc, dev, env, folder = setup
    first = _run(env, "compare", str(sc), "--json")
    assert len(_entries(folder)) == 1
    assert _run(env, "compare", str(sc), "--json") == first  # replayed
    assert len(_entries(folder)) == 1
    # an edited device price: a new output (the evaluation is still valid, the price not)
    dev.write_text(dev.read_text().replace("price_usd: {value: 10000", "price_usd: {value: 11000"))
    assert "11000" in dev.read_text()
    second = _run(env, "compare", str(sc), "--json")
    assert second != first
    # an edited scenario: a new output
    sc.write_text(sc.read_text().replace("1000000000.0", "2000000000.0"))
    assert _run(env, "compare", str(sc), "--json") != second
    # another option: a separate entry
    _run(env, "compare", str(sc))
    assert len(_entries(folder)) == 2


def test_no_cache_neither_replays_nor_records(setup):
    sc, _dev, env, folder = setup
    _run(env, "compare", str(sc), "--json", "--no-cache")
    assert not folder.exists()
    env = {**env, cache.ENV_OFF: "1"}
    _run(env, "compare", str(sc), "--json")
    assert not folder.exists()

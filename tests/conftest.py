from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from accelsim import cache

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
REFERENCE = ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session", autouse=True)
def _cache_in_a_tmp_folder(tmp_path_factory):
    """The evaluation cache (accelsim.cache) in a folder of this test session, never the
    user's: tests and the CLI calls they make (in process or in subprocesses) share it."""
    before = {k: os.environ.get(k) for k in (cache.ENV_DIR, cache.ENV_OFF)}
    os.environ[cache.ENV_DIR] = str(tmp_path_factory.mktemp("accelsim-cache"))
    os.environ.pop(cache.ENV_OFF, None)
    yield
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def write_yaml(tmp_path: Path):
    """Write a mapping (or raw text) to a YAML file in tmp_path and return its path."""

    def _write(content: object, name: str = "input.yaml") -> Path:
        path = tmp_path / name
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text)
        return path

    return _write


@pytest.fixture
def h20_dict() -> dict:
    return yaml.safe_load((CONFIGS / "devices" / "h20.yaml").read_text())

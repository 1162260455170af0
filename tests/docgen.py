"""The docs generator (scripts/gen_docs.py, not a package) as a module for the tests, and the
text of a marked block."""

from __future__ import annotations

import importlib.util
import re

from tests.conftest import ROOT


def _load():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load()


def block(text: str, name: str) -> str:
    """What lies between ``<!-- name:begin -->`` and ``<!-- name:end -->``, stripped."""
    m = re.search(rf"<!-- {re.escape(name)}:begin -->\n(.*?)<!-- {re.escape(name)}:end -->",
                  text, re.S)
    assert m, f"no {name} block"
    return m.group(1).strip()

"""The studies' headline figures come from code: (a) docs/studies.md and the README quote what
each study's ``headline`` gives on its committed CSVs, and (b) re-running each study's sweep on
the points its headline reads reproduces those CSVs' headline within REL (a tenth of a per
cent; the docs quote three or four significant figures, and the runs are seeded, so on one
machine they agree exactly). The software-maturity re-run (24 uncertainty draws at two
points, about 70 s on one core) starts in a subprocess at the first test and runs on one core
while the other three (about 30 s together) run on the other."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.docgen import block, gen

REL = 1e-3
BENCHMARKS = ROOT / "benchmarks"
STUDIES = {name: script for name, script, _ in gen.STUDIES}
# In-process re-runs first; the background one last, so it overlaps them.
ORDER = ["split", "asic_breakeven", "export_ban", "shared_fleet", "rent_or_buy",
         "software_maturity"]
BACKGROUND = "software_maturity"


def test_docs_quote_the_committed_results():
    sentences = gen.study_sentences()
    studies = (ROOT / "docs" / "studies.md").read_text(encoding="utf-8")
    for name, text in sentences.items():
        assert block(studies, f"study:{name}") == text.strip(), (
            f"docs/studies.md: {name} is stale: run python scripts/gen_docs.py")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert block(readme, "studies") == gen.readme_studies(sentences).strip(), (
        "README.md studies block is stale: run python scripts/gen_docs.py")


@pytest.fixture(scope="module")
def background(tmp_path_factory):
    """The slow re-run, started once in its own process; yields (folder, process)."""
    out = tmp_path_factory.mktemp(BACKGROUND)
    code = (f"import sys; from pathlib import Path; sys.path.insert(0, {str(BENCHMARKS)!r}); "
            f"import {STUDIES[BACKGROUND]} as m; m.rerun(Path({str(out)!r}), workers=1)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    yield out, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def same(new: object, old: object) -> bool:
    if isinstance(old, bool) or not isinstance(old, int | float):
        return new == old
    return math.isclose(float(new), float(old), rel_tol=REL, abs_tol=1e-12)


@pytest.mark.parametrize("name", ORDER)
def test_headline_reproduces(name, background, tmp_path):
    study = gen.study_module(STUDIES[name])
    if name == BACKGROUND:
        out, proc = background
        log, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, log
    else:
        out = tmp_path
        study.rerun(out)
    new, old = study.headline_of(Path(out)), study.headline_of()
    assert new.keys() == old.keys()
    differ = {k: (new[k], old[k]) for k in old if not same(new[k], old[k])}
    assert not differ, f"{name}: re-run vs committed CSV: {differ}"

"""The docs say what the code computes: docs/validation.md and the README's validation block
equal what scripts/gen_docs.py generates from ``accelsim validate-runs --json`` now, the
generator takes records it has never seen (a new run kind, a new key, many rows), and every
``accelsim`` line in the code blocks of the README and docs/ parses as that command would
parse it, naming files that exist."""

from __future__ import annotations

import itertools
import math
import re
import shlex

import pytest
import typer.main

from accelsim.cli import app
from tests.conftest import ROOT
from tests.docgen import block, gen

# Options whose value is a file the command writes (not one the README must ship).
OUTPUT_OPTIONS = {"-o", "--out", "--output", "--csv", "--plot"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The generator's files, written to a temporary folder (about 15 s: three validate-runs
    and the held-out one)."""
    out = tmp_path_factory.mktemp("docs")
    asserted, misses = gen.validate_runs(ROOT)
    heldout = gen.heldout_runs(ROOT)
    page = gen.validation_page(asserted, misses, ROOT, heldout)
    summary = gen.readme_validation(asserted, misses, ROOT, heldout)
    (out / "validation.md").write_text(page, encoding="utf-8")
    (out / "readme_block.md").write_text(summary, encoding="utf-8")
    return out


def test_validation_page_is_what_the_code_predicts(generated):
    committed = (ROOT / "docs" / "validation.md").read_text(encoding="utf-8")
    assert committed == (generated / "validation.md").read_text(encoding="utf-8"), (
        "docs/validation.md is stale: run python scripts/gen_docs.py")


def test_readme_validation_block_is_what_the_code_predicts(generated):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert block(readme, "validation") == (generated / "readme_block.md").read_text(
        encoding="utf-8").strip(), "README.md validation block is stale: run scripts/gen_docs.py"


def _run(i: int, file: str, **extra) -> dict:
    return {"file": str(ROOT / file), "id": f"run-{i}", "kind": "future_kind",
            "published": 1000.0 + i, "predicted": 1000.0 + 2 * i,
            "unit": "widgets/s", "error": i / 1000.0, "tolerance": 0.1,
            "within": i < 100, "detail": "layout | detail", "source": f"Paper 2027, row {i}",
            **extra}


def test_generator_takes_new_kinds_keys_and_many_rows(tmp_path):
    """A run kind it has never seen, a ``vendor`` key on every record (varying in one file,
    constant in the other), a nested value, NaN and 500 rows: one section per file, each
    extra key shown, no row lost."""
    a = [_run(i, "configs/runs/future-a.yaml", vendor=["NVIDIA", "Huawei"][i % 2],
              extra={"k": i}) for i in range(400)]
    b = [_run(i, "configs/runs/future-b.yaml", vendor="AMD") for i in range(100)]
    b[0]["predicted"] = math.nan
    page = gen.validation_page(a + b, [], tmp_path)
    assert page.count("### future-a") == 1 and page.count("### future-b") == 1
    assert page.count("| `run-") == 500
    assert "vendor: AMD" in page  # constant within its file: stated once
    assert "| Huawei |" in page and "| NVIDIA |" in page  # varying: a column
    assert "future_kind" in page and "n/a" in page and "layout \\| detail" in page
    assert "100 of 400 within tolerance" in page
    readme = gen.readme_validation(a + b, [], tmp_path)
    assert "500 runs in 2 files" in readme


def test_generator_refuses_notes_for_a_missing_run_file(tmp_path):
    notes = tmp_path / gen.NOTES
    notes.parent.mkdir(parents=True)
    notes.write_text("## no-such-run-file\n\ntext\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no-such-run-file"):
        gen.validation_page([_run(1, "configs/runs/a.yaml")], [], tmp_path)


# ------------------------------------------------------------------------------ README commands


def shown_commands(*pages: str) -> list[list[str]]:
    """Every ``accelsim ...`` command in the pages' shell code blocks, as argument lists
    (continuation lines joined, ``&&`` chains split, comments and redirections dropped)."""
    text = "\n".join((ROOT / p).read_text(encoding="utf-8") for p in pages)
    out = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S):
        if lang not in ("bash", "sh", "console", ""):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            for part in re.split(r"&&|;|\|", line):
                args = shlex.split(part, comments=True)
                cut = [i for i, a in enumerate(args) if re.match(r"\d?[<>]", a)]
                args = args[:cut[0]] if cut else args
                if args and args[0] == "accelsim":
                    out.append(args)
    return out


PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
COMMANDS = shown_commands(*PAGES)


def test_readme_shows_every_command():
    shown = {c[1] for c in shown_commands("README.md") if len(c) > 1}
    assert shown >= set(typer.main.get_command(app).commands)


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c[1:3]) for c in COMMANDS])
def test_shown_command_parses(args, monkeypatch):
    """Parsed by the command itself (its options, their values and types, the count of its
    arguments); each input file it names exists in the repository."""
    monkeypatch.chdir(ROOT)
    cmd, rest, path = typer.main.get_command(app), args[1:], ["accelsim"]
    while hasattr(cmd, "commands"):
        assert rest and rest[0] in cmd.commands, f"{' '.join(path)}: no command {rest[:1]}"
        path.append(rest[0])
        cmd, rest = cmd.commands[rest[0]], rest[1:]
    try:
        cmd.make_context(" ".join(path), list(rest))
    except Exception as exc:  # click's usage errors (typer vendors its own click)
        pytest.fail(f"{' '.join(args)}: {exc}")
    outputs = {v for o, v in itertools.pairwise(rest) if o in OUTPUT_OPTIONS}
    written = {v for c in COMMANDS for o, v in itertools.pairwise(c)
               if o in OUTPUT_OPTIONS}
    for a in rest:
        if re.search(r"\.(ya?ml|csv)$", a) and a not in outputs | written:
            assert (ROOT / a).is_file(), f"{' '.join(args)}: {a} is not in the repository"

"""Output paths: refused up front with one line naming the path and option, before any work;
OS errors while writing become the same kind of line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.errors import AccelsimError
from accelsim.outputs import check_dir, check_file, writing
from tests.conftest import CONFIGS

runner = CliRunner()
JOB = CONFIGS / "jobs" / "serve-rmc2-h20.yaml"


def _line(fn, *args) -> str:
    with pytest.raises(AccelsimError) as e:
        fn(*args)
    assert len(e.value.problems) == 1
    return str(e.value.problems[0])


def test_file_in_a_missing_folder(tmp_path):
    msg = _line(check_file, tmp_path / "nope" / "out.csv", "--csv")
    assert msg.startswith(f"{tmp_path / 'nope' / 'out.csv'}: --csv: folder ")
    assert "does not exist" in msg


def test_file_where_a_folder_is_given(tmp_path):
    assert "is a folder, expected a file name" in _line(check_file, tmp_path, "--csv")


def test_folder_where_a_file_is(tmp_path):
    f = tmp_path / "results"
    f.write_text("x")
    assert "is a file, expected a folder" in _line(check_dir, f, "--out")
    assert "is a file, expected a folder" in _line(check_dir, f / "sub", "--out")


@pytest.mark.parametrize("path", ["/proc/accelsim-out", "/proc/self/accelsim/out"])
def test_unwritable_places_are_found_by_trying(path):
    # /proc refuses new files even for root, for whom permission bits mean nothing
    assert "cannot write in folder" in _line(check_dir, path, "--out")


def test_a_creatable_folder_is_accepted_and_not_created(tmp_path):
    target = tmp_path / "a" / "b"
    assert check_dir(target, "--out") == target and not target.exists()


def test_os_errors_while_writing_are_one_line(tmp_path):
    with pytest.raises(AccelsimError) as e, writing(tmp_path / "x.csv", "--csv"):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.csv"))
    assert str(e.value).startswith(f"{tmp_path / 'x.csv'}: --csv: cannot write")


def test_serve_trace_out_into_a_missing_folder_fails_before_simulating(tmp_path):
    r = runner.invoke(app, ["serve", str(JOB), "--trace-out", str(tmp_path / "no" / "t.csv")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.stderr.count("\n") == 1 and "--trace-out: folder" in r.stderr


def test_compare_csv_into_a_file_fails_before_evaluating(tmp_path):
    f = tmp_path / "taken"
    f.write_text("")
    r = runner.invoke(app, ["compare", str(CONFIGS / "fleet.yaml"), "--csv", str(f)])
    assert r.exit_code == 2
    assert r.stderr.strip() == f"{f}: --csv: is a file, expected a folder"


def test_plot_output_into_proc(tmp_path):
    r = runner.invoke(app, ["plot", str(tmp_path), "-o", "/proc/accelsim.png"])
    assert r.exit_code == 2 and "--output: cannot write in folder /proc" in r.stderr

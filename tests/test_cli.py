from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from accelsim import __version__
from accelsim.cli import app
from accelsim.devices import catalog_names

runner = CliRunner()


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.stdout


def test_devices_list_table():
    r = runner.invoke(app, ["devices", "list"])
    assert r.exit_code == 0
    for name in ("h20", "ascend-910b", "inhouse-asic"):
        assert name in r.stdout


def test_devices_list_json_has_full_profiles_with_sources():
    r = runner.invoke(app, ["devices", "list", "--json"])
    assert r.exit_code == 0
    profiles = json.loads(r.stdout)
    assert {p["name"] for p in profiles} == set(catalog_names())
    for p in profiles:
        assert p["sources"] or p["identity"]["source"]
        assert p["compute"]["bf16_tflops"]["source"]


def test_devices_show_lists_every_field_with_source():
    r = runner.invoke(app, ["devices", "show", "h20"])
    assert r.exit_code == 0
    assert "memory.memory_bandwidth_GBps" in r.stdout
    assert "seed-004" in r.stdout


def test_validate_shipped_configs():
    from tests.conftest import CONFIGS

    for path in sorted(CONFIGS.rglob("*.yaml")):
        r = runner.invoke(app, ["validate", str(path)])
        assert r.exit_code == 0, (path, r.stderr)


def test_schema_is_json_schema():
    r = runner.invoke(app, ["schema", "device"])
    assert r.exit_code == 0
    s = json.loads(r.stdout)
    assert "compute" in s["properties"]


def test_schema_unknown_kind():
    r = runner.invoke(app, ["schema", "toaster"])
    assert r.exit_code == 2
    assert "unknown kind 'toaster'" in r.stderr


# ------------------------------------------------------------------ hardening

def _main(monkeypatch, capsys, *args):
    """Run the real entry point (usage errors are handled there, not by typer's runner)."""
    import pytest

    from accelsim.cli import main

    monkeypatch.setattr("sys.argv", ["accelsim", *args])
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_bad_option_values_are_one_line_with_exit_2(monkeypatch, capsys):
    from tests.conftest import CONFIGS

    model = str(CONFIGS / "models" / "gpt3-175b.yaml")
    for args, want in [
        (["train-search", model, "--device", "h20", "--devices", "8", "--global-batch", "0"],
         "accelsim train-search: Invalid value for '--global-batch'"),
        (["train-search", model, "--device", "h20", "--devices", "0"],
         "accelsim train-search: Invalid value for '--devices'"),
        (["no-such-command"], "accelsim: No such command 'no-such-command'"),
        (["compare"], "accelsim compare: Missing argument"),
    ]:
        code, _, err = _main(monkeypatch, capsys, *args)
        assert code == 2 and err.count("\n") == 1 and err.startswith(want), (args, err)


def test_the_executable_answers_version_without_importing_the_cli():
    import subprocess
    import sys

    code = ("import sys; sys.argv = ['accelsim', '--version']; from accelsim.entry import main; "
            "main(); print(sorted(m for m in sys.modules if m.startswith(('typer', 'pydantic', "
            "'numpy'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.splitlines() == [f"accelsim {__version__}", "[]"]


HEAVY = ("pandas", "scipy", "matplotlib", "dask", "distributed", "numba", "pyarrow", "simpy")


def test_train_search_and_validate_import_no_heavy_library():
    import subprocess
    import sys

    from tests.conftest import CONFIGS

    for args in (["train-search", str(CONFIGS / "models" / "gpt3-175b.yaml"), "--device",
                  "h100-sxm", "--devices", "64"], ["validate", str(CONFIGS / "fleet.yaml")]):
        code = (f"import sys; sys.argv = {['accelsim', *args]!r}\n"
                "from accelsim.cli import main\n"
                "try:\n    main()\nexcept SystemExit:\n    pass\n"
                f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})), "
                "file=sys.stderr)")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert r.stderr.strip().splitlines()[-1] == "[]", (args, r.stderr)


def _imported(args: list[str], names: tuple[str, ...]) -> list[str]:
    """The top-level packages among ``names`` that ``accelsim ARGS`` imports (run in a new
    interpreter, output discarded)."""
    import ast
    import subprocess
    import sys

    code = (f"import contextlib, io, sys; sys.argv = {['accelsim', *args]!r}\n"
            "from accelsim.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main()\n    except SystemExit:\n        pass\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({names!r})))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return list(ast.literal_eval(r.stdout.strip().splitlines()[-1]))


def test_help_imports_neither_heavy_libraries_nor_the_config_models():
    # the fleet commands import the device models (pydantic) when they run, not at start-up
    assert _imported(["--help"], (*HEAVY, "pydantic", "yaml", "jinja2")) == []


def test_serve_llm_on_a_small_job_imports_no_heavy_library():
    from tests.conftest import CONFIGS

    job = str(CONFIGS / "jobs" / "chatbot-llama2-70b-h100.yaml")
    # a small job runs on the event engine: neither numba (the compiled scheduler) nor the
    # scipy.linalg its BLAS check imports is loaded
    assert _imported(["serve-llm", job], (*HEAVY, "jinja2")) == []


def test_a_fleet_command_leaves_numba_to_its_worker_processes(monkeypatch):
    from tests.conftest import CONFIGS

    # the compiled simulators run in the workers; the evaluations they hand back (or the
    # cache holds) unpickle here without loading numba (0.1 s on a cold run's critical path)
    monkeypatch.setenv("ACCELSIM_WORKERS", "2")
    assert _imported(["optimize", str(CONFIGS / "fleet.yaml"), "--json"],
                     ("numba", "llvmlite")) == []


def test_exit_now_runs_the_exit_handlers_flushes_and_keeps_the_code():
    import subprocess
    import sys

    def run(body: str) -> subprocess.CompletedProcess[str]:
        code = ("import atexit, sys, threading, time\n"
                "from accelsim.entry import exit_now\n"
                "atexit.register(lambda: print('handler ran'))\n"
                "sys.stdout.write('buffered ')\n" + body)
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    r = run("exit_now(3)")
    assert (r.returncode, r.stdout, r.stderr) == (3, "buffered handler ran\n", "")
    r = run("exit_now('no such file')")
    assert (r.returncode, r.stdout, r.stderr) == (1, "buffered handler ran\n",
                                                  "no such file\n")
    # a thread still running: the ordinary exit, which waits for it
    r = run("threading.Thread(target=lambda: (time.sleep(0.2), print('thread'))).start()\n"
            "exit_now(None)")
    assert (r.returncode, r.stdout) == (0, "buffered thread\nhandler ran\n")


def test_output_to_a_full_disk_or_a_closed_pipe_is_not_a_traceback():
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "accelsim", "schema", "device"], stdout=full,
                           stderr=subprocess.PIPE, text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == "accelsim: cannot write the output (No space left on device)"
    p = subprocess.Popen([sys.executable, "-m", "accelsim", "schema", "scenario"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.readline()
    p.stdout.close()  # the reader leaves, like `| head -1`
    err = p.stderr.read()
    p.wait()
    assert "Traceback" not in err


def test_validate_runs_passes_on_the_shipped_runs_and_fails_past_tolerance(tmp_path):
    import yaml

    from tests.conftest import CONFIGS

    shipped = CONFIGS / "runs" / "mlperf-inference-dlrm.yaml"
    data = yaml.safe_load(shipped.read_text())
    data["runs"] = [r for r in data["runs"] if r["kind"] == "recsys_offline"]
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(data))
    r = runner.invoke(app, ["validate-runs", str(ok), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["failed"] == 0 and len(out["runs"]) == 3
    data["runs"][0]["published"]["value"] *= 2  # the model now misses by ~50 %
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    r = runner.invoke(app, ["validate-runs", str(bad)])
    assert r.exit_code == 1
    assert r.stderr.startswith(f"{bad}: dlrm-v1-a100x8-offline: predicted ")
    assert "expected within 15 %" in r.stderr


def test_validate_runs_bad_file_is_one_line(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("name: x\ntolerance: 0.1\nruns:\n  - {id: a, kind: recsys_offline, "
                 "source: s, published: {value: -1, unit: x}, model: rmc1, device: h20, "
                 "devices: 1, sample_items: {dist: fixed, value: 1}}\n")
    r = runner.invoke(app, ["validate-runs", str(p)])
    assert r.exit_code == 2
    assert r.stderr.strip() == (f"{p}: runs[0].published.value: Input should "
                                "be greater than 0 (got -1)")


def test_serve_offline_reports_the_memory_bounded_batch(tmp_path):
    from tests.conftest import CONFIGS

    r = runner.invoke(app, ["serve", str(CONFIGS / "jobs" / "serve-rmc2-h20.yaml"),
                            "--offline", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    d = out["devices"][0]
    assert d["device"] == "h20" and d["replicas"] == 8
    assert d["batch_items"] <= d["batch_memory_bound_items"]
    assert out["items_per_s"] == pytest.approx(8 * d["items_per_s"])
    assert d["period_ms"] <= d["latency_ms"]


def test_validate_runs_on_another_kind_of_file_says_what_it_got():
    from tests.conftest import CONFIGS

    r = runner.invoke(app, ["validate-runs", str(CONFIGS / "fleet.yaml")])
    assert r.exit_code == 2
    assert r.stderr.strip() == (f"{CONFIGS / 'fleet.yaml'}: runs: expected a published runs "
                                "file (with a top-level 'runs'), got a fleet scenario file")


def test_without_colours_highlighting_changes_no_printed_byte():
    """The CLI's console highlights nothing when it has no colours (piped output): rich's
    highlighting only adds styles, which print nothing without a colour system."""
    import io

    from rich.console import Console

    from accelsim.cli.common import console

    line = ("2026: export-ban-2026: within the rules and meets demand, TCO 2.29 B USD/yr, "
            "headroom +5 %, trains in 57.1 of 60 days; 'h20' (None) [1.5, 2e-3] True")
    out = []
    for highlight in (True, False):
        c = Console(file=io.StringIO(), color_system=None, highlight=highlight, width=80)
        c.print(line)
        out.append(c.file.getvalue())
    assert out[0] == out[1]
    if console.color_system is None:
        assert console._highlight is False


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="threads listed in /proc")
@pytest.mark.parametrize("preset", [None, "2"])
def test_the_executable_runs_one_blas_thread_unless_told_otherwise(preset):
    """``accelsim`` sets ``OPENBLAS_NUM_THREADS=1`` before numpy loads (OpenBLAS's threads
    spin after they start, beside the worker processes), keeping a value the user set."""
    import subprocess
    import sys

    code = ("import atexit, os, sys\n"
            "sys.argv = ['accelsim', 'schema', 'device']\n"
            "from accelsim import entry\n"
            "def show():\n"
            "    import numpy  # noqa: F401  (loads OpenBLAS and its threads)\n"
            "    sys.stderr.write(os.environ.get('OPENBLAS_NUM_THREADS', '') + ' '\n"
            "                     + str(len(os.listdir('/proc/self/task'))))\n"
            "atexit.register(show)\n"
            "entry.main()\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    value, threads = r.stderr.split()
    assert value == (preset or "1")
    if preset is None:
        assert threads == "1"  # the main thread alone

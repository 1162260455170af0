"""The evaluation cache (accelsim.cache): content-addressed (a device, block, model file,
version or stack change misses; nothing else does), atomic and safe under concurrent
writers, bypassed by --no-cache and ACCELSIM_NO_CACHE, and the fleet's evaluations from it
equal the ones it stores. Every test points the cache at its own tmp folder."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil

import pytest
import yaml
from typer.testing import CliRunner

import accelsim
from accelsim import cache
from accelsim.cli import app
from accelsim.devices import device_from_dict
from accelsim.fleet import evaluate_full, load_scenario
from accelsim.fleet.evaluation import evaluation_key, resolve_devices
from accelsim.workloads import training
from tests.conftest import CONFIGS

runner = CliRunner()


@pytest.fixture
def folder(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv(cache.ENV_DIR, str(d))
    monkeypatch.delenv(cache.ENV_OFF, raising=False)
    return d


@pytest.fixture
def small(tmp_path):
    """The seed scenario with its training workload on two devices, its model a copy."""
    data = yaml.safe_load((CONFIGS / "fleet.yaml").read_text())
    model = tmp_path / "model.yaml"
    shutil.copy(CONFIGS / "models" / "gpt3-175b.yaml", model)
    data["workloads"] = {"training": {**data["workloads"]["training"], "model": str(model)}}
    data["budget"]["pools"] = {"overseas": {"usd": 6.8e9, "devices": ["h20", "h100-sxm"],
                                            "region": "sea"}}
    data["supply"], data["fleets"], data["rentals"] = {}, [], {}
    del data["plan"]
    p = tmp_path / "small.yaml"
    p.write_text(yaml.safe_dump(data))
    return p, model


@pytest.fixture
def calls(monkeypatch):
    """How many times the training workload's full evaluation ran (in this process)."""
    n = [0]
    real = training.Training.evaluate

    def counted(self, spec, device, ctx):
        n[0] += 1
        return real(self, spec, device, ctx)

    monkeypatch.setattr(training.Training, "evaluate", counted)
    monkeypatch.setenv("ACCELSIM_WORKERS", "1")  # count in this process
    return n


def _key(sc, profiles, ref="h20", stack=None):
    spec = sc.workloads["training"]
    return evaluation_key(spec, profiles[ref], sc.context(), stack)


def test_the_key_moves_with_every_input_and_only_with_them(small, folder, monkeypatch):
    path, model = small
    sc = load_scenario(path)
    prof = resolve_devices(sc)
    k = _key(sc, prof)
    assert _key(load_scenario(path), resolve_devices(sc)) == k  # same inputs, same key
    assert _key(sc, prof, "h100-sxm") != k
    d = prof["h20"].model_dump(mode="json")
    d["efficiency"]["compute"]["value"] = 0.55
    assert _key(sc, {**prof, "h20": device_from_dict(d)}) != k  # an edited device
    d = prof["h20"].model_dump(mode="json")
    d["description"] = "edited prose"
    assert _key(sc, {**prof, "h20": device_from_dict(d)}) == k  # no number changed
    other = sc.model_copy(update={"workloads": {"training": sc.workloads["training"]
                                                .model_copy(update={"tokens": 1e12})}})
    assert _key(other, prof) != k  # another block
    assert _key(sc, prof, stack={"name": "cuda-12"}) != k  # a software stack joins it
    model.write_text(model.read_text().replace("layers: 96", "layers: 95"))
    assert _key(sc, prof) != k  # an edited model file
    model.write_text(model.read_text().replace("layers: 95", "layers: 96"))
    assert _key(sc, prof) == k
    monkeypatch.setattr(accelsim, "__version__", "99.0")
    assert _key(sc, prof) != k  # a new version


def test_a_second_evaluation_comes_from_the_cache_and_equals_the_first(small, folder, calls):
    path, _ = small
    sc = load_scenario(path)
    first, _ = evaluate_full(sc)
    assert calls[0] == 2 and any(folder.rglob("*.pkl"))
    second, evals = evaluate_full(load_scenario(path))
    assert calls[0] == 2  # nothing evaluated again
    assert second.equals(first)
    assert evals["training"]["h20"].state.columns is not None  # the fast path's state too


def test_an_edited_input_is_evaluated_again(small, folder, calls):
    path, model = small
    evaluate_full(load_scenario(path))
    model.write_text(model.read_text().replace("layers: 96", "layers: 80"))
    evaluate_full(load_scenario(path))
    assert calls[0] == 4


def test_no_cache_reads_and_writes_nothing(small, folder, calls):
    path, _ = small
    with cache.disabled():
        evaluate_full(load_scenario(path))
    assert not folder.exists()
    monkeypatch_env = os.environ.get(cache.ENV_OFF)
    assert monkeypatch_env is None  # restored after the block
    r = runner.invoke(app, ["compare", str(path), "--json", "--no-cache"])
    assert r.exit_code == 0, r.output
    assert not folder.exists() and calls[0] == 4
    r = runner.invoke(app, ["compare", str(path), "--json"])
    assert r.exit_code == 0 and folder.exists() and calls[0] == 6


def test_an_unreadable_entry_is_a_miss_and_is_replaced(small, folder, calls):
    path, _ = small
    evaluate_full(load_scenario(path))
    for p in folder.rglob("*.pkl"):
        p.write_bytes(b"not a pickle")
    a, _ = evaluate_full(load_scenario(path))
    assert calls[0] == 4
    b, _ = evaluate_full(load_scenario(path))
    assert calls[0] == 4 and a.equals(b)


def _writer(folder: str, i: int) -> None:
    os.environ[cache.ENV_DIR] = folder
    for _ in range(200):
        cache.put("test", "k" * 64, list(range(1000)))
        got = cache.get("test", "k" * 64)
        assert got is None or got == list(range(1000))


def test_concurrent_writers_never_leave_half_an_entry(folder):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(folder), i)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert cache.get("test", "k" * 64) == list(range(1000))
    assert not list(folder.rglob("*.tmp"))


def test_an_unwritable_folder_is_not_an_error(tmp_path, monkeypatch):
    f = tmp_path / "file"
    f.write_text("")
    monkeypatch.setenv(cache.ENV_DIR, str(f / "below-a-file"))
    cache.put("test", "a" * 64, 1)
    assert cache.get("test", "a" * 64) is None


def test_the_default_folder_is_the_users_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.ENV_DIR, raising=False)
    monkeypatch.delenv(cache.ENV_OFF, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.folder() == tmp_path / "accelsim"
    monkeypatch.setenv(cache.ENV_OFF, "1")
    assert cache.folder() is None


def test_devices_in_worker_processes_give_the_serial_table(small, folder, monkeypatch):
    path, _ = small
    monkeypatch.setenv(cache.ENV_OFF, "1")
    monkeypatch.setenv("ACCELSIM_WORKERS", "1")
    serial, _ = evaluate_full(load_scenario(path))
    monkeypatch.setenv("ACCELSIM_WORKERS", "2")
    parallel, _ = evaluate_full(load_scenario(path))
    assert json.dumps(serial.to_dict("records")) == json.dumps(parallel.to_dict("records"))


def test_the_key_and_the_replay_inputs_follow_the_default_stack_files(small, folder, tmp_path,
                                                                       monkeypatch):
    """A device evaluation that names no stack depends on its vendor's default stacks: an
    edit of one of their files moves the key, and the scenario's inputs (what a replayed
    output is checked against) hold them."""
    from accelsim import refs, stacks

    path, _ = small
    configs = tmp_path / "configs"
    shutil.copytree(refs.configs_dir(), configs)
    monkeypatch.setattr(refs, "configs_dir", lambda: configs)
    sc = load_scenario(path)
    prof = resolve_devices(sc)
    k = _key(sc, prof)
    default = configs / "stacks" / f"{stacks.DEFAULT_BY_VENDOR['NVIDIA']}.yaml"
    assert default in sc.input_files()
    assert configs / "stacks" / "tensorrt-llm.yaml" in sc.input_files()
    default.write_text(default.read_text() + "\n# an edit\n")
    assert _key(sc, prof) != k

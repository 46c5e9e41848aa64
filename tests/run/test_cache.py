"""The cache of oracle outputs (gatecheck.run.cache): a verdict read from it is the verdict computed afresh,
every component of its key is a miss when it changes, and a damaged entry is a miss with a warning."""

import importlib
import shutil
import warnings

import numpy as np
import pytest

import tests.inprocess  # noqa: F401 (torch before tensorflow, as every in-process test imports them)
from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES
from gatecheck.families import get
from gatecheck.run import cache
from gatecheck.run import outcome as oc
from gatecheck.run.grid import grid
from gatecheck.tools import check as chk

ORT = ORACLES["ort-lstm"]
CASE = Case("ort-lstm", 2, 3, 4, 5, "f32", 0)
OBSERVES = ("h", "c")


@pytest.fixture
def folder(tmp_path):
    """The cache on, in a folder of the test's own (and off again after it)."""
    with cache.using(tmp_path / "cache") as path:
        yield path
    assert cache.directory_in_use() is None


def _fresh_key(case=CASE, oracle=ORT, observes=OBSERVES):
    cache._key.cache_clear()
    return cache.key(case, oracle, observes)


def test_each_part_of_a_case_is_in_the_key():
    base = _fresh_key()
    assert _fresh_key() == base  # (the same request, the same key: the changes below are what differ)
    others = [_fresh_key(CASE._replace(**{field: value}))
              for field, value in (("B", 3), ("T", 4), ("D", 5), ("H", 6), ("dtype", "f64"), ("seed", 1),
                                   ("regime", "small"), ("options", ("nobias",)))]
    others += [_fresh_key(observes=("h",)), _fresh_key(CASE._replace(oracle="ort-gru"), ORACLES["ort-gru"])]
    assert len({base, *others}) == len(others) + 1


@pytest.mark.parametrize("setting", cache.SETTINGS)
def test_each_setting_is_in_the_key(setting, monkeypatch):
    monkeypatch.delenv(setting, raising=False)
    base = _fresh_key()
    monkeypatch.setenv(setting, "2")
    assert _fresh_key() != base


def test_versions_locations_python_and_platform_are_in_the_key(monkeypatch):
    cache.versions.cache_clear()
    base = _fresh_key()
    found = cache.versions()
    other = tuple((d, "0.0.1" if d == "onnxruntime" else v, where) for d, v, where in found)
    real = cache.importlib.util.find_spec
    changes = [
        (cache, "versions", lambda: other),
        # (a module that shadows an engine's package: another install earlier on the path, or a stub)
        (cache.importlib.util, "find_spec", lambda name, *a: None if name == "numpy" else real(name, *a)),
        (cache.sys, "version", "3.0.0 (another Python)"),
        (cache.platform, "machine", lambda: "another-machine"),
    ]
    clear = cache.versions.cache_clear
    for target, name, value in changes:
        monkeypatch.setattr(target, name, value)
        clear()
        assert _fresh_key() != base, name
        monkeypatch.undo()
    cache.versions.cache_clear()
    assert _fresh_key() == base


def _digest_of_copy(tmp_path, monkeypatch, edit=None):
    """The key of CASE with gatecheck's source read from a copy of the package (``edit``: (relative file, text to
    append) changed in that copy)."""
    root = tmp_path / "gatecheck"
    if not root.exists():
        shutil.copytree(cache._ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    if edit:
        path = root / edit[0]
        path.write_text(path.read_text() + edit[1])
    monkeypatch.setattr(cache, "_ROOT", root)
    cache.closure.cache_clear()
    cache.code_digest.cache_clear()
    try:
        return _fresh_key()
    finally:
        monkeypatch.undo()
        cache.closure.cache_clear()
        cache.code_digest.cache_clear()
        cache._key.cache_clear()


@pytest.mark.parametrize("module", ["engines/onnx/layout.py", "engines/onnx/oracles.py", "core/cases.py",
                                    "reference/lstm.py", "families/lstm/record.py"])
def test_a_changed_remap_oracle_or_input_generator_is_a_miss(module, tmp_path, monkeypatch):
    """The ONNX remap, the oracle's module, the case-input generator, the reference and the family record that
    build the inputs: a change to any is a new key; another engine's module is not in it."""
    same = _digest_of_copy(tmp_path, monkeypatch)
    assert same == _fresh_key()  # (the copy, unchanged, gives the installed package's key)
    changed = _digest_of_copy(tmp_path, monkeypatch, (module, "\nCHANGED = 1\n"))
    assert changed != same
    other = _digest_of_copy(tmp_path / "other", monkeypatch, ("engines/keras/layout.py", "\nCHANGED = 1\n"))
    assert other == same


def test_the_modules_of_an_oracle_bound_to_another_engines_runner():
    """OpenVINO's ONNX oracles run the onnx engine's runner with OpenVINO's functions: both engines are keyed."""
    found = cache.modules(ORACLES["openvino-onnx-lstm"])
    assert {"gatecheck.engines.onnx.oracles", "gatecheck.engines.openvino.oracles"} <= set(found)
    assert "gatecheck.engines.onnx.layout" in cache.closure("gatecheck.engines.onnx.oracles")


def _values():
    rng = np.random.default_rng(0)
    return {"h": rng.standard_normal((2, 3, 5)).astype(np.float32), "c": rng.standard_normal((2, 3, 5))}


def test_a_stored_entry_is_read_back_exactly(folder):
    calls = []

    def compute():
        calls.append(1)
        return _values()

    first = cache.expected(CASE, ORT, OBSERVES, compute)
    again = cache.expected(CASE, ORT, OBSERVES, compute)
    assert len(calls) == 1 and cache.held(CASE, ORT, OBSERVES)
    for name, value in _values().items():
        assert first[name].dtype == again[name].dtype == value.dtype
        np.testing.assert_array_equal(again[name], value)
    assert cache.info(folder)["entries"] == 1 and cache.info(folder)["bytes"] > 0
    assert cache.clear(folder) == 1 and not cache.held(CASE, ORT, OBSERVES)


@pytest.mark.parametrize("damage", [b"not an npz", b"", "truncated"])
def test_a_damaged_entry_is_a_miss_with_a_warning(damage, folder):
    cache.expected(CASE, ORT, OBSERVES, _values)
    store, name = cache.store(), cache.key(CASE, ORT, OBSERVES)
    store.set(name, store.get(name)[:40] if damage == "truncated" else damage)
    with pytest.warns(cache.CacheWarning, match="cannot be read"):
        values = cache.expected(CASE, ORT, OBSERVES, _values)
    np.testing.assert_array_equal(values["h"], _values()["h"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (written again: the next read is a plain hit)
        np.testing.assert_array_equal(cache.expected(CASE, ORT, OBSERVES, _values)["c"], _values()["c"])


def test_an_entry_of_other_quantities_is_a_miss(folder):
    store = cache.store()
    cache.expected(CASE, ORT, OBSERVES, _values)
    store.set(cache.key(CASE, ORT, OBSERVES), cache._encode({"h": _values()["h"]}))
    with pytest.warns(cache.CacheWarning, match="expected"):
        assert set(cache.expected(CASE, ORT, OBSERVES, _values)) == set(OBSERVES)


def test_off_computes_every_time():
    assert cache.directory_in_use() is None  # (no front end's run: off, as in the battery without a candidate)
    calls = []
    for _ in range(2):
        cache.expected(CASE, ORT, OBSERVES, lambda: calls.append(1) or _values())
    assert len(calls) == 2 and not cache.held(CASE, ORT, OBSERVES)


# The engines of the equality run: one oracle of each kind of engine (graphs run by a runtime, a framework's layer,
# a traced program), every case of their ci grid. (A converter's oracle, keras-onnx, costs minutes cold: its outputs
# are arrays like any other's, kept the same way.)
EQUAL_ORACLES = ["ort-lstm", "torch-lstm-layer", "keras-lstm-layer", "jax-lstm"]
FIELDS = ("id", "status", "reason", "ratio", "compared", "message", "deviation")


@pytest.mark.parametrize("spec", ["gatecheck.examples.course:run", "gatecheck.examples.course_buggy:run"])
def test_cold_and_warm_runs_give_the_same_records(spec, folder):
    """The ci battery of a passing and a failing candidate, cold (every entry computed) then warm (every entry read,
    in two processes): every record the same (status, ratio, the first divergence's message)."""
    family = get("lstm")
    fn = importlib.import_module(spec.split(":")[0]).run
    cold = chk.battery(fn, spec, family, "ci", EQUAL_ORACLES)
    entries = cache.info(folder)["entries"]
    assert entries == len({r["id"] for r in cold if r["status"] not in oc.NOT_RUN})  # (a missing engine: none)
    warm = chk.battery(fn, spec, family, "ci", EQUAL_ORACLES, n=2)
    assert cache.info(folder)["entries"] == entries  # (nothing computed again)
    assert [{k: r.get(k) for k in FIELDS} for r in warm] == [{k: r.get(k) for k in FIELDS} for r in cold]
    statuses = {r["status"] for r in cold}
    assert ("mismatch" in statuses) == spec.endswith("buggy:run")
    assert len(cold) == len(grid("ci", family, EQUAL_ORACLES))


def test_the_command_keeps_entries_in_its_folder_and_says_their_size(tmp_path, capsys):
    """verify with --cache-dir stores the oracle's output there (and with --no-cache nothing); `cache info` counts the
    entries and their size, `cache clear` removes them; the cache is off again after each command."""
    from gatecheck.frontends.cli import main

    folder = str(tmp_path / "c")
    base = ["verify", "gatecheck.examples.course:run", "--family", "lstm", "--oracle", "reference-lstm"]
    assert main(base + ["--no-cache"]) == 0
    assert main(["cache", "info", "--cache-dir", folder]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"cache {folder}: 0 entries")
    for _ in range(2):
        assert main(base + ["--cache-dir", folder]) == 0
        assert cache.directory_in_use() is None
    assert main(["cache", "info", "--cache-dir", folder]) == 0
    assert f"cache {folder}: 1 entries" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache-dir", folder]) == 0
    assert f"cache {folder}: 1 entries removed" in capsys.readouterr().out


def test_the_default_folder_is_gatecheck_cache_dir_else_the_platforms(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.ENV_DIR, str(tmp_path))
    assert cache.default_dir() == tmp_path
    monkeypatch.delenv(cache.ENV_DIR)
    assert cache.default_dir().parts[-2:] == ("gatecheck", "oracles")


def test_the_python_api_takes_a_folder_or_false(tmp_path):
    import gatecheck

    folder = tmp_path / "api"
    result = gatecheck.check("gatecheck.examples.course:run", family="lstm", oracles=["reference-lstm"],
                             dtypes="f64", options="none", cache=folder)
    assert result.exit_code == 0 and cache.info(folder)["entries"] == len(result.records)
    assert cache.directory_in_use() is None
    with pytest.raises(ValueError, match="cache: expected True, False or a folder"):
        gatecheck.check("gatecheck.examples.course:run", family="lstm", cache=3)

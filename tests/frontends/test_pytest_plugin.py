"""The pytest plugin as an installed package ships it (gatecheck.frontends.pytest_plugin, under the ``pytest11``
entry point): inert where gatecheck is not in use, registered once whether the entry point or the
repository's conftest brings it, and the battery from any folder with no clone (tests/run/test_outcome.py
runs it there on every kind of outcome)."""

import os
import subprocess
import sys
import types
from pathlib import Path

from gatecheck.frontends import pytest_plugin

REPO = Path(__file__).resolve().parents[2]


def _installed(folder):
    """A folder that makes ``gatecheck.frontends.pytest_plugin`` an installed pytest11 entry point, as
    ``pip install gatecheck`` does (a distribution's metadata with the pyproject's entry point)."""
    dist = folder / "gatecheck_entry_point-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gatecheck-entry-point\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\ngatecheck = gatecheck.frontends.pytest_plugin\n")
    (dist / "RECORD").write_text("gatecheck/__init__.py,,\n")  # pytest marks a plugin's package for rewriting
    return folder


def _pytest(cwd, *args, path=()):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GATECHECK_") and k != "PYTEST_ADDOPTS" or k == "GATECHECK_CACHE_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, path), str(REPO)])
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


USER_TESTS = '''
import sys


def test_nothing_of_gatecheck_is_imported():
    loaded = sorted(m for m in sys.modules if m.startswith("gatecheck"))
    assert loaded == ["gatecheck", "gatecheck.frontends", "gatecheck.frontends.pytest_plugin"], loaded
'''


def test_installed_but_not_used_the_plugin_is_inert(tmp_path):
    """A user's own tests in a folder of theirs: the plugin (loaded from the entry point) imports
    nothing of gatecheck beyond itself, prints no line and collects nothing of its own; its options
    are there."""
    (tmp_path / "test_mine.py").write_text(USER_TESTS)
    site = _installed(tmp_path / "site")
    done = _pytest(tmp_path, "-v", path=[site])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "test_mine.py::test_nothing_of_gatecheck_is_imported PASSED" in done.stdout
    assert "1 passed" in done.stdout and "gatecheck:" not in done.stdout, done.stdout
    assert "--gatecheck-candidate=MODULE:CALLABLE" in _pytest(tmp_path, "--help", path=[site]).stdout


def test_the_entry_point_and_the_conftest_register_it_once(tmp_path):
    """In the repository with the entry point installed, the conftest does not register the plugin a
    second time (pytest refuses a plugin registered twice): one summary line."""
    site = _installed(tmp_path / "site")
    case = "torch-lstm-cell-B1-T1-D1-H1-f64-s0"
    done = _pytest(REPO, str(REPO / "tests" / "battery" / "test_battery.py"), "-q", "-k", f"[{case}]", path=[site])
    assert "registered" not in done.stderr, done.stderr[-3000:]
    assert done.stdout.count("gatecheck: candidate: each family's reference") == 1, done.stdout[-3000:]


def test_pytest_started_where_gatecheck_is_imported_already_runs(tmp_path):
    """pytest marks an installed plugin's package for assertion rewriting; where gatecheck is imported
    before pytest starts (a notebook, pytester in gatecheck's own suite, a script calling pytest.main), a
    package that could not be rewritten would be a warning, an error under ``-W error``: gatecheck's
    package asks not to be rewritten (PYTEST_DONT_REWRITE), so the run goes on."""
    (tmp_path / "test_mine.py").write_text("def test_one():\n    assert True\n")
    site = _installed(tmp_path / "site")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GATECHECK_") and k != "PYTEST_ADDOPTS" or k == "GATECHECK_CACHE_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])
    code = "import sys, gatecheck, pytest; sys.exit(pytest.main(['-q', '-W', 'error', '-p', 'no:cacheprovider']))"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]


def test_xdist_keeps_its_own_scheduler_where_gatecheck_is_not_in_use():
    assert pytest_plugin.pytest_xdist_make_scheduler(config=types.SimpleNamespace(), log=None) is None


def test_the_cache_options_need_a_candidate(tmp_path):
    """--gatecheck-cache-dir without --gatecheck-candidate: a usage error that says why (the battery of the engines
    reads no cache)."""
    done = _pytest(REPO, str(REPO / "tests" / "battery" / "test_battery.py"), "-q", "--gatecheck-cache-dir",
                   str(tmp_path), "--co")
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert "--gatecheck-cache-dir / --gatecheck-no-cache: expected with --gatecheck-candidate" in done.stderr


def test_a_candidates_battery_fills_the_cache_and_reads_it(tmp_path, request):
    """With a candidate, the battery's oracle outputs go to --gatecheck-cache-dir; a second run gives the same
    outcome from them."""
    from conftest import require_framework
    from gatecheck.run import cache

    require_framework(request.config, "torch")  # (its cases: torch-lstm-cell's)

    args = (str(REPO / "tests" / "battery" / "test_battery.py"), "-q", "-p", "no:randomly", "--gatecheck-candidate",
            "gatecheck.examples.course:run", "-k", "torch-lstm-cell and B1-T1", "--gatecheck-cache-dir", str(tmp_path))
    first = _pytest(REPO, *args)
    entries = cache.info(tmp_path)["entries"]
    second = _pytest(REPO, *args)
    assert first.returncode == second.returncode == 0, first.stdout[-2000:]
    assert entries > 0 and cache.info(tmp_path)["entries"] == entries
    tail = [line for line in first.stdout.splitlines() if " passed" in line]
    assert tail and tail[-1].split(" in ")[0] == [line for line in second.stdout.splitlines()
                                                  if " passed" in line][-1].split(" in ")[0]

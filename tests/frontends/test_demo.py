"""A first run with nothing of one's own: `python -m gatecheck demo` checks the implementations
that ship in the package (gatecheck/examples/), the `gatecheck` console script runs the same
command line, and the package a wheel installs holds them."""

import ast
import re
import sys
from importlib import import_module
from pathlib import Path

import pytest

from gatecheck.core.exit_codes import FAIL, PASS
from gatecheck.frontends import demo
from gatecheck.frontends.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as the package tomli (the test extra installs it there)
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())

# OpenBLAS can raise the floating-point "invalid" flag inside a matrix product whose result is finite (it reads
# lanes past the operands; numpy/numpy#24067, OpenMathLib/OpenBLAS#1924), and NumPy then warns from `@`. Whether
# it does depends on what memory held, so two runs of the same command may differ by that line and nothing else:
# the report says so, rightly; comparing two runs' reports leaves that one line out.
_BLAS_FLAG = re.compile(r"^ *candidate warned \(in \d+ cases?\): RuntimeWarning: invalid value encountered in matmul .*\n",
                        re.MULTILINE)


def _without_blas_flag(report):
    return _BLAS_FLAG.sub("", report)


def test_the_demo_prints_both_reports_as_check_prints_them(capsys, monkeypatch):
    # NumPy's reference alone, whose digits two runs repeat (the choice of oracles: the next test)
    monkeypatch.setattr(demo, "_installed", lambda dist: False)
    chosen, said = demo.oracles("lstm")
    reports = []
    for spec in (demo.DEMOS["lstm"].correct, demo.DEMOS["lstm"].buggy):
        main(["check", spec, "--family", "lstm", "--oracles", ",".join(chosen)])
        reports.append(_without_blas_flag(capsys.readouterr().out))
    assert main(["demo"]) == PASS
    out = _without_blas_flag(capsys.readouterr().out)
    assert said in out.splitlines()[0]
    for report in reports:
        assert report in out, (report, out)
    assert reports[0].startswith("PASS: ") and reports[1].startswith("FAIL: ")
    assert "matches the known bug 'tanh-derivative-of-g-wrong'" in reports[1]  # the slip it ships, named


def test_the_demo_names_its_oracles_and_what_it_left_out(monkeypatch):
    monkeypatch.setattr(demo, "_installed", lambda dist: False)
    chosen, said = demo.oracles("lstm")
    assert chosen == ["reference-lstm"] and "torch-lstm-cell (PyTorch) is left out: torch is not installed" in said
    monkeypatch.setattr(demo, "_installed", lambda dist: True)
    chosen, said = demo.oracles("lstm")
    assert chosen == ["reference-lstm", "torch-lstm-cell"] and "torch-lstm-cell (PyTorch)" in said and "left out" not in said


@pytest.mark.parametrize("correct,buggy,code", [
    ("gatecheck.examples.course:run", "gatecheck.examples.course:run", FAIL),  # the slip goes unnoticed
    ("tests.tools.test_check:forward_only", "gatecheck.examples.course_buggy:run", 3),  # the correct one does not pass
])
def test_the_demo_fails_when_a_verdict_is_not_what_it_should_be(correct, buggy, code, monkeypatch, capsys):
    monkeypatch.setitem(demo.DEMOS, "lstm", demo.DEMOS["lstm"]._replace(correct=correct, buggy=buggy))
    monkeypatch.setattr(demo, "_installed", lambda dist: False)  # the reference alone: quick
    assert main(["demo"]) == code
    assert "demo: NOT as it should be" in capsys.readouterr().out


def test_the_console_script_runs_the_command_line(capsys, monkeypatch):
    module, _, attr = PYPROJECT["project"]["scripts"]["gatecheck"].partition(":")
    script = getattr(import_module(module), attr)
    monkeypatch.setattr(demo, "_installed", lambda dist: False)
    assert script(["demo"]) == main(["demo"]) == PASS
    first, second = capsys.readouterr().out.split("gatecheck demo: ")[1:]
    assert _without_blas_flag(first) == _without_blas_flag(second)


def test_the_packaged_examples_import_nothing_else_from_gatecheck():
    """They are candidates, like anyone's code: numpy and each other only."""
    for path in sorted((REPO / "gatecheck" / "examples").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name == "numpy" or name.startswith("gatecheck.examples"), f"{path.name} imports {name}"


def test_the_repository_example_is_the_packaged_one():
    from examples import course as old
    from gatecheck.examples import course

    assert old.run is course.run and old.lstm_cell_forward is course.lstm_cell_forward


def test_the_wheel_holds_every_package_under_gatecheck():
    from setuptools import find_packages

    found = set(find_packages(where=REPO, **PYPROJECT["tool"]["setuptools"]["packages"]["find"]))
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "gatecheck").rglob("__init__.py")}
    assert "gatecheck.examples" in on_disk and on_disk <= found

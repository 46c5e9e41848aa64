"""The candidate cannot stop or fool the suite (gatecheck.run.isolation): the adversarial
candidates of tests/adversarial*.py each end as a clear candidate error within the timeout,
in `verify`/`check` and under pytest, and the run goes on."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gatecheck.core import candidate as cand
from gatecheck.core.cases import Case
from gatecheck.families.lstm.record import LSTM
from gatecheck.frontends.cli import main
from gatecheck.run.grid import grid
from gatecheck.run.isolation import Isolated
from gatecheck.tools import check as chk
from gatecheck.truth.views import case_inputs
from tests import inprocess

REPO = Path(__file__).resolve().parents[2]

# (candidate, exit code of verify, what it says)
ADVERSARIAL = [
    ("exits", 1, "tests.adversarial:exits called sys.exit(0) (at "),
    ("exits_3", 1, "called sys.exit(3)"),
    ("hard_exit", 1, "tests.adversarial:hard_exit: its process exited with code 0 while running"),
    ("segfault", 1, "its process was killed by signal SIGSEGV while running"),
    ("hangs", 1, "tests.adversarial:hangs did not return within 0.5 s (the timeout; --timeout sets it)"),
    ("raises_base", 1, "raised NotAnException: a BaseException that is not an Exception (at "),
    ("lying_mapping", 1, "tests.adversarial:lying_mapping: 'h' has shape (1,); expected (3, 7, 5)"),
    ("patches_reference", 1, "first divergence: db gate i"),
    ("huge_output", 0, "candidate warned: printed 20000001 characters; first line: 'xxxx"),
]


@pytest.mark.parametrize("name,code,says", ADVERSARIAL, ids=[a[0] for a in ADVERSARIAL])
def test_verify_turns_each_into_a_candidate_error(name, code, says, capsys):
    assert main(["verify", f"tests.adversarial:{name}", "--family", "lstm", "--timeout", "0.5"]) == code
    out = capsys.readouterr().out
    assert says in out, out
    assert len(out) < 10_000  # the huge output is not passed on


def test_a_module_that_exits_at_import_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["verify", "tests.adversarial_import_exit:run", "--family", "lstm"])
    assert exc.value.code == chk.USAGE
    assert "'tests.adversarial_import_exit:run': importing it raised SystemExit: 0" in capsys.readouterr().err


def test_a_module_that_parses_argv_at_import_sees_only_its_own_name(capsys):
    assert main(["verify", "tests.adversarial_argv:run", "--family", "lstm"]) == chk.PASS


def test_the_run_goes_on_after_a_crash_or_a_hang():
    """Every case of a candidate that dies or hangs is its own candidate error, each within
    the timeout; the worker is started again for the next case."""
    cases = [c for c in grid("ci", LSTM, oracles=["reference-lstm"]) if c.T == 7][:2]
    for name in ("hard_exit", "hangs"):
        fn = Isolated(f"tests.adversarial:{name}", LSTM, timeout=0.5)
        records = chk.run_cases(fn, name, LSTM, cases)
        fn.close()
        assert [r["status"] for r in records] == ["candidate error", "candidate error"], records
    assert "did not return within 0.5 s" in records[1]["reason"]


def test_outputs_are_copied_before_anything_calls_the_candidate_again():
    """A candidate that writes every result into the same arrays: the diagnosis reruns it
    (23 gate orders and more) and still judges the first result, in-process too."""
    from gatecheck.tools.diagnose import diagnose
    from tests import adversarial

    _, text = diagnose(adversarial.reuses_buffers, Case("reference-lstm", 3, 7, 4, 5, "f64", 0), LSTM, "reuses")
    assert "consistent with a missing output tanh" in text, text


def test_the_contract_check_does_bounded_work_on_a_lying_mapping():
    from tests import adversarial

    inputs = case_inputs(Case("-", 2, 3, 4, 5, "f64", 0), LSTM)
    with pytest.raises(cand.CandidateError, match=r"'h' has shape \(1,\); expected \(2, 3, 5\)"):
        cand.call(adversarial.lying_mapping, inputs, LSTM)


SHADOW = '''
import numpy as np
from gatecheck.reference import lstm

def run(**kw):  # db averaged over the batch
    out = lstm.run(**kw)
    return dict(out, db=out["db"] / kw["x"].shape[0])
'''
FAKE_REFERENCE = '''
def run(**kw):  # agrees with the candidate, whatever it is
    import mine
    return mine.run(**kw)
'''


def test_a_users_folder_cannot_stand_in_for_the_reference(tmp_path):
    """A folder with its own reference/ and oracles/ packages, from which the user runs
    gatecheck: the verdict still uses gatecheck.reference, and the bug is found."""
    (tmp_path / "mine.py").write_text(SHADOW)
    for pkg in ("reference", "oracles"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "reference" / "lstm.py").write_text(FAKE_REFERENCE)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "gatecheck", "verify", "mine:run", "--family", "lstm"],
                            cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode == chk.FAIL, result.stdout + result.stderr
    assert "first divergence: db gate i" in result.stdout


# What pytest reports for each case of tests.adversarial:every_way (one misbehaviour per shape).
UNDER_PYTEST = {
    "B1-T1-D1-H1": "called sys.exit(0)",
    "B1-T1-D3-H2": "its process exited with code 0 while running",
    "B1-T5-D1-H4": "its process was killed by signal SIGSEGV while running",
    "B2-T3-D4-H1": "did not return within 0.5 s",
    "B4-T6-D5-H3": "raised NotAnException",
    "B2-T12-D3-H3": "first divergence: db gate i",
    "B5-T4-D2-H6": "first divergence: h t=0",
    "B3-T64-D4-H5": "'h' has shape (1,)",
}


def test_under_pytest_every_misbehaviour_is_a_failure_and_the_run_goes_on(pytester, monkeypatch):
    """One pytest run meets every misbehaviour (serial, in this process: nothing to hide an
    exit): each is its case's failure with its reason, the huge output and the correct shape pass, and the
    session ends normally with its summary."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.chdir(REPO)
    result = inprocess.runpytest(
        pytester, monkeypatch, str(REPO / "tests" / "battery" / "test_battery.py"), "-q", "-n", "0",
        "--gatecheck-candidate", "tests.adversarial:every_way", "--gatecheck-candidate-timeout", "0.5",
        "-k", "torch-lstm-cell and f64 and s0 and not zero and not longmem and not sat")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == len(UNDER_PYTEST) and outcomes.get("passed") == 2, outcomes
    text = result.stdout.str()
    for shape, says in UNDER_PYTEST.items():
        block = text.split(f"torch-lstm-cell-{shape}-f64-s0: ", 1)[1][:400]
        assert says in block, (shape, block)
    result.stdout.fnmatch_lines(["gatecheck: candidate tests.adversarial:every_way as the lstm family: "
                                 "10 battery cases: 2 match, 2 mismatch, 6 candidate error"])


def test_under_pytest_argv_parsing_at_import_is_harmless(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.chdir(REPO)
    result = inprocess.runpytest(
        pytester, monkeypatch, str(REPO / "tests" / "battery" / "test_battery.py"), "-q",
        "--gatecheck-candidate", "tests.adversarial_argv:run", "-k", "torch-lstm-cell-B3-T7-D4-H5-f64-s0")
    assert result.parseoutcomes().get("passed") == 3, result.stdout.str()[-2000:]


def test_loading_is_bounded_by_the_load_timeout_not_the_call_timeout():
    """Starting the worker and importing the candidate take far longer than 0.01 s; only calls
    are bounded by the call timeout (loading by LOAD_TIMEOUT)."""
    fn = Isolated("tests.adversarial:hangs", LSTM, timeout=0.01)
    fn.close()

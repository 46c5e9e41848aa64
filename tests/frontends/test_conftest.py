"""The pytest wiring: options, skips with reasons, required frameworks, candidates. A run that
fakes a framework needs an interpreter of its own (a subprocess); the others run in this
process (tests.inprocess)."""

import os
from pathlib import Path

import pytest

from tests import inprocess

REPO = Path(__file__).resolve().parents[2]
ONE_TORCH_CASE = "torch-lstm-cell-B1-T1-D1-H1-f64-s0 and not zero"


def run(pytester, monkeypatch, *args, fake_torch, env=None):
    """Run pytest on the battery in a subprocess (a fresh interpreter) with ``fake_torch``, the
    source of a stand-in ``torch`` module, first on the path."""
    fake = pytester.mkdir("fake")
    (fake / "torch.py").write_text(fake_torch)
    path = [str(fake), str(REPO)]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path + [os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("GATECHECK_REQUIRE", raising=False)
    monkeypatch.delenv("GATECHECK_PROFILE", raising=False)
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    return pytester.runpytest_subprocess(
        str(REPO / "tests" / "battery" / "test_battery.py"), "--rootdir", str(REPO), "-p", "no:cacheprovider", "-ra", *args
    )


def battery(pytester, monkeypatch, *args, env=None):
    return inprocess.runpytest(pytester, monkeypatch, str(REPO / "tests" / "battery" / "test_battery.py"), "-ra", *args, env=env)


def test_unknown_profile_lists_the_valid_ones(pytester, monkeypatch):
    result = battery(pytester, monkeypatch, "--gatecheck-profile", "fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown profile 'fast'; expected one of ['ci', 'nightly']" in result.stderr.str()


def test_unknown_required_framework_is_a_usage_error(pytester, monkeypatch):
    result = battery(pytester, monkeypatch, env={"GATECHECK_REQUIRE": "torch,mxnet"})
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "GATECHECK_REQUIRE: unknown framework(s) ['mxnet']" in result.stderr.str()


def test_bad_candidate_fails_the_battery_with_the_reason_and_hides_nothing(pytester, monkeypatch):
    """The battery's tests fail with the reason; the tests that do not use the candidate are
    deselected, and the summary says so."""
    result = inprocess.runpytest(
        pytester, monkeypatch, str(REPO / "tests" / "battery" / "test_battery.py"), str(REPO / "tests" / "engines" / "test_layout.py"), "-k",
        "torch-lstm-cell-B1-T1-D1-H1-f64-s0 or round_trip",
        "--gatecheck-candidate", "no_such_module_xyz:run")
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors") == 2 and outcomes.get("deselected", 0) >= 8 and "passed" not in outcomes, outcomes
    result.stdout.fnmatch_lines(["*--gatecheck-candidate 'no_such_module_xyz:run': module 'no_such_module_xyz' does "
                                 "not import*"])
    result.stdout.fnmatch_lines(["gatecheck: CANDIDATE ERROR: --gatecheck-candidate 'no_such_module_xyz:run'*"])


def test_missing_framework_skips_with_the_reason(pytester, monkeypatch):
    result = run(pytester, monkeypatch, "-k", ONE_TORCH_CASE,
                 fake_torch="raise ImportError('No module named torch')\n")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*torch unavailable: torch is not installed*"])


def test_required_framework_missing_is_an_error(pytester, monkeypatch):
    result = run(pytester, monkeypatch, "-k", ONE_TORCH_CASE,
                 fake_torch="raise ImportError('No module named torch')\n",
                 env={"GATECHECK_REQUIRE": "torch"})
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*torch is required (GATECHECK_REQUIRE) but unavailable: torch is not installed*"])


def test_unsupported_version_skips_with_the_reason(pytester, monkeypatch):
    result = run(pytester, monkeypatch, "-k", ONE_TORCH_CASE, fake_torch="__version__ = '1.13.1'\n")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*torch 1.13.1 is not supported (need >= 2.1*"])


def test_header_names_versions_and_settings(pytester, monkeypatch):
    result = battery(pytester, monkeypatch, "--collect-only", "--gatecheck-profile", "nightly")
    result.stdout.fnmatch_lines([
        "gatecheck: numpy *, torch *, tensorflow* *, keras *",
        "gatecheck: threads per framework 1 (GATECHECK_THREADS=*",
        "gatecheck: profile nightly (* battery cases); candidate: each family's reference (lstm, lstm-identity, "
        "lstm-head, rnn, gru, gru-reset-before); required frameworks*",
    ])


CANDIDATES = '''
import numpy as np
from gatecheck.reference import lstm, rnn


def warns(**kw):
    np.exp(np.array([1000.0]))  # a hand-written sigmoid overflowing: the candidate's own warning
    return lstm.run(**kw)


def rnn_no_recurrent(**kw):
    out = rnn.run(**kw)
    return dict(out, dh=kw["gh"].copy())  # dh_t without what flows back from t+1


def rnn_bisum_l2(**kw):
    return rnn.run(**kw)


rnn_bisum_l2.options = {"bisum", "L2"}  # and with them their combination, which no grid has
'''


def run_candidate(pytester, monkeypatch, *args, tests="tests", subprocess=False):
    """pytest with ``--gatecheck-candidate mine:...``; ``subprocess`` for a fresh interpreter's output."""
    folder = pytester.mkdir("user")
    (folder / "mine.py").write_text(CANDIDATES)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), str(REPO), os.environ.get("PYTHONPATH", "")]))
    if not subprocess:
        monkeypatch.syspath_prepend(str(folder))
        return inprocess.runpytest(pytester, monkeypatch, str(REPO / tests), "-q", *args)
    monkeypatch.delenv("GATECHECK_REQUIRE", raising=False)
    return pytester.runpytest_subprocess(str(REPO / tests), "--rootdir", str(REPO), "-p", "no:cacheprovider",
                                         "-q", *args)


def test_candidate_of_another_family_runs_that_family_and_is_called(pytester, monkeypatch):
    """--gatecheck-family rnn runs the rnn battery with the candidate (a wrong dh is caught, so it was
    called), every other test is deselected, and with -q the summary still has its own line
    for the candidate's cases."""
    result = run_candidate(pytester, monkeypatch, "--gatecheck-candidate", "mine:rnn_no_recurrent",
                           "--gatecheck-family", "rnn", "-k", "torch-rnn-cell and B3", subprocess=True)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 6 and "passed" not in outcomes and outcomes.get("deselected", 0) > 500, outcomes
    result.stdout.fnmatch_lines([
        "*first divergence: dh t=5*",
        "whole comparison: python -m gatecheck verify mine:rnn_no_recurrent --family rnn --oracle torch-rnn-cell "
        "--shape 3,7,4,5 --dtype f32 --seed 0 --regime std",
        "gatecheck: candidate mine:rnn_no_recurrent as the rnn family: 6 battery cases: 6 mismatch",
        "gatecheck: * tests that do not use the candidate were deselected",
        "gatecheck: first failing case torch-rnn-cell-B3-T7-D4-H5-f32-s0*",
    ])
    assert "oneDNN" not in result.stdout.str() + result.stderr.str()


def test_candidate_warnings_are_shown_not_failures_under_pytest(pytester, monkeypatch):
    """The suite runs with every warning an error; a candidate's own warning is recorded and
    the case compared (the same as under python -m gatecheck)."""
    result = run_candidate(pytester, monkeypatch, "--gatecheck-candidate", "mine:warns", "--gatecheck-family", "lstm",
                           "-k", "torch-lstm-cell-B3-T7 and f64", tests="tests/battery/test_battery.py")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 5 and "failed" not in outcomes and "errors" not in outcomes, outcomes
    result.stdout.fnmatch_lines([
        "gatecheck: candidate mine:warns as the lstm family: 5 battery cases: 5 match",
        "gatecheck: the candidate warned (in 5 cases): RuntimeWarning: overflow encountered in exp (*mine.py:7)",
    ])


def test_under_xdist_a_group_of_cases_is_one_unit_of_work(request):
    """The cases of one oracle, D, H and dtype (one traced graph) go to one worker; the
    other tests are units of their own."""
    import conftest
    from gatecheck.run.grid import group

    cases = conftest.battery_cases(request.config)
    scopes = conftest.group_scopes(request.config)
    scope = {c.id: conftest.xdist_scope(scopes, f"tests/battery/test_battery.py::test_candidate_matches_oracle[{c.id}]")
             for c in cases}
    for a, b in zip(cases, cases[1:] + cases[:1]):
        assert (scope[a.id] == scope[b.id]) == (group(a) == group(b)), (a.id, b.id)
    assert len(set(scope.values())) == len({group(c) for c in cases}) < len(cases)
    other = "tests/core/test_cases.py::test_bad_shard_is_named[0/3]"
    assert conftest.xdist_scope(scopes, other) == other


def test_a_declared_set_no_case_ran_is_named_in_the_summary(pytester, monkeypatch):
    """The plugin's summary names a declared combination of options that no case ran, with why and how to run
    one of its cases (as check does)."""
    result = run_candidate(pytester, monkeypatch, "--gatecheck-candidate", "mine:rnn_bisum_l2",
                           "--gatecheck-family", "rnn", "-k", "torch-rnn-cell and B3 and f64 and not relu",
                           tests="tests/battery/test_battery.py")
    result.stdout.fnmatch_lines(["gatecheck: not run: declared combination of options bisum+L2: in no grid of "
                                 "gatecheck, so nothing checks it; one case against the reference: python -m gatecheck "
                                 "verify mine:rnn_bisum_l2 --family rnn --options bisum+L2"])

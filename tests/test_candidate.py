"""Loading and calling a candidate: every contract breach is a clear CandidateError."""

import numpy as np
import pytest

from gatecheck.core import candidate as cand
from gatecheck.truth.views import case_inputs
from gatecheck.core.cases import Case
from gatecheck.families.lstm.record import LSTM
from gatecheck.reference import lstm

INPUTS = case_inputs(Case("-", 2, 3, 4, 5, "f64", 0), LSTM)


def altered(**changes):
    def run(**kwargs):
        out = lstm.run(**kwargs)
        for k, v in changes.items():
            if v is None:
                del out[k]
            else:
                out[k] = v(out[k])
        return out
    return run


def raises(**kwargs):
    raise RuntimeError("boom")


BREACHES = [
    ("raises", raises, r"candidate raised RuntimeError: boom"),
    ("not-a-mapping", lambda **kw: [1, 2], r"candidate returned a list; expected a mapping"),
    ("missing-key", altered(dc=None), r"candidate returned no \['dc'\]"),
    ("wrong-shape", altered(dW=lambda a: a[:, :, :2]), r"'dW' has shape \(4, 4, 2\); expected \(4, 4, 5\)"),
    ("wrong-dtype", altered(h=lambda a: a.astype(np.float32)), r"'h' has dtype float32; expected float64"),
    ("not-array", altered(db=lambda a: a.tolist()), r"'db' is a list; expected a numpy.ndarray"),
    ("nan", altered(dx=lambda a: np.where(a == a.flat[5], np.nan, a)), r"'dx' holds nan at \(0, 1, 1\)"),
]


@pytest.mark.parametrize("fn,match", [b[1:] for b in BREACHES], ids=[b[0] for b in BREACHES])
def test_contract_breach_is_named(fn, match):
    with pytest.raises(cand.CandidateError, match=match):
        cand.call(fn, INPUTS, LSTM)


def test_candidate_cannot_alter_our_inputs():
    def vandal(**kw):
        kw["x"][...] = 0
        return lstm.run(**kw)
    before = INPUTS["x"].copy()
    cand.call(vandal, INPUTS, LSTM)
    assert np.array_equal(INPUTS["x"], before)


@pytest.mark.parametrize("spec,match", [
    ("nocolon", r"expected 'module:callable', got 'nocolon'"),
    ("a:b:c", r"expected 'module:callable'"),
    ("no_such_module_xyz:run", r"module 'no_such_module_xyz' does not import: ModuleNotFoundError"),
    ("gatecheck.reference.lstm:nothing", r"gatecheck.reference.lstm has no attribute 'nothing'"),
    ("gatecheck.reference.lstm:GATES", r"'GATES' is a tuple, not callable"),
])
def test_bad_spec_is_named(spec, match):
    with pytest.raises(cand.CandidateError, match=match):
        cand.load(spec)


def test_reference_spec_loads():
    assert cand.load("gatecheck.reference.lstm:run") is lstm.run


def warns(**kw):
    """A candidate whose own arithmetic overflows (a plain 1 / (1 + exp(-x)) on a saturated
    input), as many hand-written sigmoids do."""
    np.exp(np.array([1000.0]))
    return lstm.run(**kw)


def test_candidate_warnings_are_recorded_not_raised():
    """pytest runs this file with every warning an error (pyproject filterwarnings): the
    candidate's own warning is recorded with its file and line, and the call succeeds."""
    out = cand.call(warns, INPUTS, LSTM)
    assert len(out.warnings) == 1
    assert out.warnings[0].startswith("RuntimeWarning: overflow encountered in exp (")
    assert "test_candidate.py:" in out.warnings[0]


def _helper_that_fails(x):
    return x @ np.ones((3, 3))  # the shapes do not fit


def raises_deep(**kw):
    return _helper_that_fails(kw["x"])


def test_candidate_exception_names_its_own_file_and_line():
    with pytest.raises(cand.CandidateError) as info:
        cand.call(raises_deep, INPUTS, LSTM)
    text = str(info.value)
    assert text.startswith("candidate raised ValueError: matmul: ")
    assert "(at " in text and "test_candidate.py:" in text
    assert "in _helper_that_fails: return x @ np.ones((3, 3))" in text  # the innermost frame of the candidate's code


def test_a_candidate_that_declares_everything_unobservable_compares_nothing():
    def blind(**kw):
        out = lstm.run(**kw)
        return {k: out[k] for k in ("h", "c")}
    blind.cannot_observe = {k: "not computed" for k in LSTM.contract}
    with pytest.raises(cand.CandidateError, match="nothing can be compared"):
        cand.coverage(("h", "c", "dW"), blind, LSTM)
    forward_only = lambda **kw: blind(**kw)  # noqa: E731
    forward_only.cannot_observe = {k: "not computed" for k in LSTM.contract if k not in ("h", "c")}
    assert cand.coverage(("h", "c", "dW"), forward_only, LSTM) == (("h", "c"), False)

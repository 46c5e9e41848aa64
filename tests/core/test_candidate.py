"""Loading and calling a candidate: every contract breach is a clear CandidateError."""

import numpy as np
import pytest

from gatecheck.core import candidate as cand
from gatecheck.core.cases import Case
from gatecheck.families.lstm.record import LSTM
from gatecheck.model import options as opts
from gatecheck.reference import lstm
from gatecheck.truth.views import case_inputs

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


# --- cannot_observe under layer options: a family's key covers every direction and layer -------------

def _without(declared, *dropped):
    """An LSTM candidate (every set of layer options) that returns none of ``dropped`` (keys, or base
    keys: every direction's and layer's copy) and declares ``declared`` unobservable."""
    from tests import layered

    def run(**inputs):
        out = dict(layered.lstm(**inputs))
        return {k: v for k, v in out.items() if k not in dropped and cand.base_key(k) not in dropped}

    run.cannot_observe = {k: "kept inside the loop" for k in declared}
    return run


def _call_under(fn, options):
    from gatecheck.model.options import under

    record = under(LSTM, options)  # (the call gets its keywords: merge_mode="concat", num_layers=2)
    return cand.call(fn, case_inputs(Case("-", 2, 3, 4, 5, "f64", 0, "std", options), record), record)


def test_a_family_key_covers_its_quantity_in_every_direction_and_layer():
    """Declaring dc excuses dc, dc_r, dc_l1 and dc_r_l1 (a bi case used to fail: "returned no ['dc_r']");
    declaring the suffixed dc_r excuses that one only and is simply absent where the case has no reverse
    direction (the cases without options used to fail)."""
    from gatecheck.model.options import under

    base = _without({"dc"}, "dc")
    for options in ((), ("bi",), ("L2",), ("bi", "L2")):
        got = _call_under(base, options)
        assert not [k for k in got if cand.base_key(k) == "dc"], options
        record = under(LSTM, options)
        assert set(cand.excused(base, record)) == {k for k in record.contract if cand.base_key(k) == "dc"}
    reverse_only = _without({"dc_r"}, "dc_r")
    for options in ((), ("L2",), ("bi",)):
        got = _call_under(reverse_only, options)
        assert "dc" in got and "dc_r" not in got
    assert cand.excused(reverse_only, under(LSTM, ("bi", "L2"))) == {"dc_r": "kept inside the loop"}
    with pytest.raises(cand.CandidateError, match=r"returned no \['dc_r_l1'\]"):
        _call_under(_without({"dc_r"}, "dc_r", "dc_r_l1"), ("bi", "L2"))
    assert cand.comparable(("h", "dc", "dc_r", "dc_l1", "dh_r"), base, under(LSTM, ("bi", "L2"))) == ("h", "dh_r")


@pytest.mark.parametrize("key", ["dWr", "dc_r_r", "dh_l2", "bogus"])
def test_a_key_in_no_option_set_of_the_family_is_named_with_the_valid_keys(key):
    from gatecheck.families import FAMILIES

    fn = _without({key})
    with pytest.raises(cand.CandidateError, match=rf"cannot_observe: \['{key}'\] is not a key of the gru contract "
                                                  r"under any of its option sets; expected keys from \['h', 'dh'"):
        opts.declared(fn, FAMILIES["gru"])
    assert opts.declared(_without({"dWr_r_l1", "dc_l1", "y"}), LSTM)  # an LSTM's under proj, L2, bi
